//! The second run of a path check ([`Second`], [`check`]): the script again at aliased
//! roots, unobserved and bounded in time and CPU, compiled again at the aliases first
//! when its executable holds a root.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::aliases::Aliases;
use super::compare::{PathVerdict, compare_files, directives};
use super::compiles::Compile;
use super::memo::{archives_in_part, memo};
use crate::interpose::ALIAS as LIBRARY;
use crate::key::{PathMap, replace_root};
use crate::wrapper::lifecycle::OutFile;
use crate::wrapper::script_build::Recipe;

/// Variables the second run does not get as they were: the jobserver's descriptors
/// belong to the first run's cargo (the second gets a jobserver of its own), and the
/// observer's record to the first run.
const DROPPED: &[&str] = &[
    "OUT_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    crate::observe::LOG_VAR,
];

/// What the second run is made of: the first run's program, arguments, working
/// directory and environment.
pub(in crate::wrapper) struct Second<'a> {
    pub program: &'a Path,
    pub arg0: &'a Path,
    pub args: &'a [OsString],
    pub cwd: &'a Path,
    /// The first run's environment, `OUT_DIR` aside.
    pub env: Vec<(OsString, OsString)>,
    pub out_dir: &'a Path,
    pub target_root: &'a Path,
    /// How long the second run may take before it is given up.
    pub timeout: Duration,
    /// How much CPU it may use before it is given up (its own and that of the
    /// processes it started and waited for), if bounded so.
    pub cpu_budget: Option<Duration>,
    /// The first run's compiles the second may take from it ([`compiles`]).
    pub compiles: Vec<Compile>,
    /// The run's compiler and its `rustc -vV`, where it is the sysroot's own rustc
    /// (`RUSTC`, as the run saw it): its version probes are answered from that
    /// (`alias.c`, `XCACHE_RUSTC_QUERY`) instead of starting rustc again.
    pub rustc: Option<(String, String)>,
    /// The script's executable holds a root (`key::rooted_identity`): the second run is
    /// of the script compiled at the aliases, from this recipe (`None`: there is none,
    /// and the run is not checked).
    pub rooted: Option<Option<&'a Recipe>>,
}

/// Runs the script again at aliased roots and compares (see the module).
pub(in crate::wrapper) fn check(
    second: &Second<'_>,
    pm: &PathMap,
    stdout: &[u8],
    files: &[OutFile],
) -> PathVerdict {
    match check_inner(second, pm, stdout, files) {
        Ok(v) => v,
        Err(e) => PathVerdict::Unchecked(e.to_string()),
    }
}

/// The CPU time process `pid` has used, with that of the children it has waited for
/// (`/proc/<pid>/stat`: user, system, and the same of waited-for children), if known.
pub(super) fn cpu_used(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_of_stat(&stat, rustix::param::clock_ticks_per_second())
}

/// [`cpu_used`] from the text of a `stat` file, in clock ticks of `hz`.
pub(super) fn cpu_of_stat(stat: &str, hz: u64) -> Option<Duration> {
    // After the command name, which may hold spaces and parentheses: the state is the
    // third field, user and system time the 14th and 15th, the children's the 16th
    // and 17th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    (hz > 0).then(|| Duration::from_millis(ticks * 1000 / hz))
}

fn check_inner(
    second: &Second<'_>,
    pm: &PathMap,
    stdout: &[u8],
    files: &[OutFile],
) -> io::Result<PathVerdict> {
    if LIBRARY.is_empty() {
        return Ok(PathVerdict::Unchecked(
            "no aliasing library on this platform".into(),
        ));
    }
    let lib =
        crate::interpose::private_library(&crate::private_dir::private_dir()?, "alias", LIBRARY)?;
    let aliases = Aliases::new(pm, second.target_root)?;
    let rel = second
        .out_dir
        .strip_prefix(second.target_root)
        .unwrap_or(Path::new("out"));
    let out_dir = Path::new(&aliases.scratch_target).join(rel);
    std::fs::create_dir_all(&out_dir)?;

    let text = |s: &std::ffi::OsStr| aliases.to_alias(pm, &s.to_string_lossy());
    // What the first run's compiles are, told as the second run will start them: its
    // `OUT_DIR` is the scratch one, the roots their aliases.
    let tell = |s: &str| {
        aliases.to_alias(
            pm,
            &replace_root(
                s,
                &second.out_dir.display().to_string(),
                &out_dir.display().to_string(),
            ),
        )
    };
    let memo_text = memo(&second.compiles, tell, second.out_dir, &out_dir);
    let memo_path = aliases.base.path().join("compiles");
    std::fs::write(&memo_path, memo_text)?;
    let program = match second.rooted {
        None => second.program.to_path_buf(),
        Some(None) => {
            return Ok(PathVerdict::Unchecked(
                "the script holds a root, and how it was compiled is not known here".into(),
            ));
        }
        Some(Some(recipe)) => match compile_at_aliases(second, recipe, &aliases, pm, &lib) {
            Ok(p) => p,
            Err(e) => {
                return Ok(PathVerdict::Unchecked(format!(
                    "the script could not be compiled at the aliases: {e}"
                )));
            }
        },
    };
    let mut cmd = Command::new(&program);
    cmd.arg0(text(second.arg0.as_os_str()))
        .args(second.args)
        .current_dir(text(second.cwd.as_os_str()))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // A group of its own, so that a second run given up is ended whole (the
        // compilers it started too).
        .process_group(0);
    let preload = aliased_env(&mut cmd, &second.env, |_| true, &aliases, pm, &lib);
    // A jobserver of the second run's own where the first had cargo's (or make's), as
    // wide as the run was told (its `NUM_JOBS`).
    let jobs = second
        .env
        .iter()
        .find(|(k, _)| k == "NUM_JOBS")
        .and_then(|(_, n)| n.to_str()?.parse::<usize>().ok())
        .unwrap_or(2)
        .max(1);
    let had = |name: &str| second.env.iter().any(|(k, _)| k == name);
    let jobserver = (had("CARGO_MAKEFLAGS") || had("MAKEFLAGS"))
        .then(|| jobserver::Client::new(jobs))
        .transpose()?;
    if let Some(client) = &jobserver {
        if had("MAKEFLAGS") {
            client.configure_make(&mut cmd);
        } else {
            client.configure(&mut cmd);
        }
    }
    cmd.env("OUT_DIR", &out_dir)
        .env("LD_PRELOAD", preload)
        .env("XCACHE_ALIAS_MAP", aliases.map())
        .env("XCACHE_CC_MEMO", &memo_path);
    if let Some((rustc, vv)) = &second.rustc
        && let Some(version) = vv.lines().next()
        && !rustc.contains('\n')
    {
        let short = aliases.base.path().join("rustc-V");
        let long = aliases.base.path().join("rustc-vV");
        std::fs::write(&short, format!("{version}\n"))?;
        std::fs::write(&long, vv)?;
        // As the second run names it (its variables told at the aliases) and as it is.
        let told = aliases.to_alias(pm, rustc);
        cmd.env(
            "XCACHE_RUSTC_QUERY",
            format!("{}\n{}\n{told}\n{rustc}\n", short.display(), long.display()),
        );
    }
    let mut child = cmd.spawn()?;
    let mut pipe = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let deadline = started + second.timeout;
    let mut polls = 0u32;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        // The CPU it used, every 50 ms: at the lowest priority, on a machine the build
        // keeps busy, a second run may wait long for a core without costing anything.
        polls += 1;
        let over_cpu = second
            .cpu_budget
            .filter(|_| polls.is_multiple_of(10))
            .and_then(|budget| {
                cpu_used(child.id())
                    .filter(|used| *used > budget)
                    .map(|_| format!("the second run used more than {budget:?} of CPU"))
            });
        let over_time = (Instant::now() > deadline)
            .then(|| format!("the second run took longer than {:?}", second.timeout));
        if let Some(why) = over_cpu.or(over_time) {
            end_group(&mut child);
            return Ok(PathVerdict::Unchecked(why));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let second_stdout = reader.join().unwrap_or_default();
    if let Some(why) = archives_in_part(&second.compiles, &memo_path) {
        return Ok(PathVerdict::Unchecked(why));
    }
    if !status.success() {
        return Ok(PathVerdict::Differs(format!(
            "the second run failed ({status})"
        )));
    }
    let first = pm.normalize_text(&String::from_utf8_lossy(stdout));
    let again = aliases.tokenize(pm, &String::from_utf8_lossy(&second_stdout));
    if directives(&first) != directives(&again) {
        return Ok(PathVerdict::Differs("what it printed".into()));
    }
    compare_files(&aliases, pm, files, &out_dir)
}

/// Ends a process started in a group of its own, with the group (the compilers it
/// started too), and reaps it.
fn end_group(child: &mut std::process::Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Gives `cmd` the variables of `env` that `keep` names, told at the aliases (the
/// second run's own aside: `DROPPED`), and returns the `LD_PRELOAD` it is to have: the
/// aliasing library `lib` first, then what `env` preloaded.
fn aliased_env(
    cmd: &mut Command,
    env: &[(OsString, OsString)],
    keep: impl Fn(&str) -> bool,
    aliases: &Aliases,
    pm: &PathMap,
    lib: &Path,
) -> String {
    let mut preload = lib.display().to_string();
    for (k, v) in env {
        let name = k.to_string_lossy();
        if !keep(&name) || DROPPED.contains(&name.as_ref()) {
            continue;
        }
        if name == "LD_PRELOAD" {
            if !v.is_empty() {
                preload.push(':');
                preload.push_str(&aliases.to_alias(pm, &v.to_string_lossy()));
            }
            continue;
        }
        // A value that is not text is passed on as it is (it names no root the map
        // could find either).
        match v.to_str() {
            Some(s) => cmd.env(k, aliases.to_alias(pm, s)),
            None => cmd.env(k, v),
        };
    }
    preload
}

/// Compiles the script again from `recipe` with its roots at their aliases, for a
/// script whose executable holds a root: what the second run then runs is the script
/// as it would be were the roots there. The executable is put where the real one is,
/// under the scratch target directory (so it names itself, `/proc/self/exe`, as the
/// first did, tokenized). Bounded by the second run's time.
fn compile_at_aliases(
    second: &Second<'_>,
    recipe: &Recipe,
    aliases: &Aliases,
    pm: &PathMap,
    lib: &Path,
) -> io::Result<PathBuf> {
    let rustc = second
        .env
        .iter()
        .find(|(k, _)| k == "RUSTC")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| io::Error::other("the run names no RUSTC"))?;
    let name = second
        .program
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("the script's name is not text"))?;
    let built_name = name
        .strip_suffix(crate::wrapper::shim::REAL_SUFFIX)
        .ok_or_else(|| io::Error::other("not a real executable"))?;
    let rel = second
        .program
        .parent()
        .and_then(|p| p.strip_prefix(second.target_root).ok())
        .ok_or_else(|| io::Error::other("the script is outside the target directory"))?;
    let dir = Path::new(&aliases.scratch_target).join(rel);
    std::fs::create_dir_all(&dir)?;
    let told: Vec<String> = recipe
        .args
        .iter()
        .map(|a| aliases.to_alias(pm, a))
        .collect();
    let mut inv = crate::key::parse_rustc_args(&told).with_out_dir(&dir);
    inv.drop_incremental();
    let mut cmd = Command::new(&rustc);
    cmd.args(pm.remap_args()).args(&inv.args);
    // After the others: rustc applies the last that matches, and the aliases lie
    // inside none of them.
    for (real, alias, _) in &aliases.roots {
        if let Some(r) = pm.roots().iter().find(|r| r.real == *real) {
            cmd.arg(format!("--remap-path-prefix={alias}={}", r.remap));
        }
    }
    cmd.current_dir(aliases.to_alias(pm, &recipe.cwd))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let preload = aliased_env(
        &mut cmd,
        &second.env,
        |name| recipe.names.iter().any(|n| n == name),
        aliases,
        pm,
        lib,
    );
    for (k, v) in &recipe.cargo_vars {
        cmd.env(k, aliases.to_alias(pm, v));
    }
    cmd.env("LD_PRELOAD", preload)
        .env("XCACHE_ALIAS_MAP", aliases.map());
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + second.timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            end_group(&mut child);
            return Err(io::Error::other(format!(
                "the compile took longer than {:?}",
                second.timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        return Err(io::Error::other(format!("rustc failed ({status})")));
    }
    let program = dir.join(name);
    std::fs::rename(dir.join(built_name), &program)?;
    Ok(program)
}
