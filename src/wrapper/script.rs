//! One build-script run through the cache: the build-script adapter of the lifecycle
//! (`super::lifecycle`). Main entry: [`run_build_script`].
//!
//! cargo runs the shim (`super::shim`) with the package directory as working directory
//! and the build-script environment (`OUT_DIR`, `CARGO_*`, `TARGET`, …). The run is
//! keyed (`key::run_l1_key`, then the entry key over what the script read: everything
//! the observer saw, and what it declared); a hit writes the stored `OUT_DIR` files back
//! and prints what the script printed; a miss runs the real executable observed, passes
//! its output through, and stores the files the run wrote in `OUT_DIR` with that
//! output.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::lifecycle::{
    Cached, Cx, OutFile, OutSource, Ran, Rerun, run_cached, scratch_dirs, target_root, tee,
    warn_once_per_build,
};
use super::restore::Restored;
use super::run_check::{self, PathVerdict, Second};
use super::script_build::read_recipe;
use super::shim::real_executable;
use super::{Outcome, UnitEvent, UnitPlace, UnitRecord, Warning};
use crate::config::{Env, WrapperConfig};
use crate::key::{
    Input, InputKind, Key, LinkerRequest, PathMap, Root, RunKeyInput, TreeError, artifact_identity,
    c_tool_names, compiler_id, is_rooted_identity, linker_id, normalize_inputs, run_env,
    run_key_parts, run_l1_key, run_root, tool_identity, tree_digest,
};
use crate::observe::{Observer, Scope, before_run, classify, var_inputs};
use crate::reason::{BUILD_SCRIPT_FAILED, Uncacheable};
use crate::store::{BoundBy, EntryMeta, LocalStore, PutOutcome};

/// The most files a run's inputs (a directory it declared) or its outputs may hold for
/// the run to be cached.
const MAX_FILES: usize = 10_000;

/// Text outputs up to this size are stored with their paths tokenized; larger files are
/// stored as bytes (and are scanned for machine paths like any binary output).
const MAX_TEXT: u64 = 8 * 1024 * 1024;

/// The file at `path` if it is text (UTF-8). Its first block is read first: a C
/// library's objects and archives (megabytes) are told by it, not read whole.
fn read_text(path: &Path) -> Option<String> {
    let mut f = fs::File::open(path).ok()?;
    let mut head = vec![0u8; 4096];
    let n = crate::fsx::read_full(&mut f, &mut head).ok()?;
    head.truncate(n);
    // Not text: a byte sequence that is no character (one cut at the block's end may
    // still be).
    if std::str::from_utf8(&head).is_err_and(|e| e.error_len().is_some()) {
        return None;
    }
    io::Read::read_to_end(&mut f, &mut head).ok()?;
    String::from_utf8(head).ok()
}

/// The longest run that is made a second time whole for its path check (`run_check`):
/// a longer one (a C library's run compiles for seconds) is made again only when it
/// compiled (the second run takes those compiles from it), else bound to its roots.
const CHECK_LIMIT_MS: u64 = 1000;

/// Variables whose values name a root without binding a run to it: where the run writes,
/// where it runs, where its sources are, where it finds programs and libraries, and
/// what its `links` dependencies' runs passed on (their `OUT_DIR`s, include and library
/// directories, keyed as trees). Names the run uses to find things, not data: what it
/// reads there is observed; what it writes is tokenized, or scanned and bound, and the
/// path check runs it again with each root elsewhere (see the book).
const UNBOUND_ENV: &[&str] = &[
    "OUT_DIR",
    "PWD",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "PATH",
    "LD_LIBRARY_PATH",
    "DEP_*",
];

/// How long the path check's second run may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the build script cargo started as `ran` (the shim's path) through the cache and
/// returns its exit code.
pub fn run_build_script(ran: PathBuf, args: Vec<OsString>, env: Env, cwd: PathBuf) -> i32 {
    let Some(real) = real_executable(&ran) else {
        eprintln!(
            "error: xcache: failed to find the build-script executable next to {} (a `*{}` file)\n  hint: remove that directory and build again",
            ran.display(),
            super::REAL_SUFFIX
        );
        return 1;
    };
    let cfg = WrapperConfig::resolve(env, cwd);
    let Some(out_dir) = cfg.env.get("OUT_DIR").map(PathBuf::from) else {
        return exec_real(&real, &ran, &args, &[]);
    };
    let target_root = target_root(out_dir.parent().unwrap_or(&out_dir));
    // Paths are named from the package's workspace, as they are for its compiles.
    let root_dir = run_root(&cfg.cwd, cfg.cargo_home.as_deref());
    let pm = PathMap::new(&root_dir, Some(&target_root), cfg.cargo_home.as_deref());
    // What the run gets whether it is cached or not, so that its outputs are the same
    // either way (`XCACHE_DISABLE=1` included).
    let added = Added::new(&cfg, &pm);
    let Some(store_dir) = cfg.store_dir.clone() else {
        return exec_real(&real, &ran, &args, &added.vars);
    };
    if cfg.disabled || !cfg.build_runs {
        return exec_real(&real, &ran, &args, &added.vars);
    }
    if let Err(e) = LocalStore::open(&store_dir) {
        warn_once_per_build(&[Warning::from(&e)]);
        return exec_real(&real, &ran, &args, &added.vars);
    }
    // A run planted before cargo started that cargo runs anyway starts from the empty
    // `OUT_DIR` a fresh target dir gives it.
    clear_rejected_plant(&out_dir);
    let mut script = Script {
        real,
        ran,
        args,
        out_dir,
        target_root,
        root_dir,
        before: HashMap::new(),
        written: Vec::new(),
        file_bound: Vec::new(),
        key_parts: None,
        added,
        rooted: false,
    };
    let mut cx = Cx::new(cfg, pm).with_file_clock();
    run_cached(&mut script, &mut cx)
}

/// What the shim adds to a run's environment, and what the key says of it.
struct Added {
    /// The variables set for the run: the C and C++ flag variables with
    /// `-fdebug-prefix-map` for the roots after the user's flags (`key::debug_map_env`)
    /// for the compilers that take the flag.
    vars: Vec<(String, String)>,
    /// The identities of the C tools the run may use (`key::c_tool_names`).
    tools: Vec<(String, String)>,
    /// The flag variables that got the prefix maps (`CFLAGS`, `CXXFLAGS`).
    takes: Vec<&'static str>,
    /// `vars` as the key takes them: which variables get the maps, and the maps by what
    /// they mean (`key::debug_map_meaning`), so that no machine path, nor the order of
    /// the paths' lengths, reaches the key. The user's own part is not in it: it is
    /// keyed when the run reads the variable, as any variable is.
    keyed: Vec<(String, String)>,
}

impl Added {
    fn new(cfg: &WrapperConfig, pm: &PathMap) -> Added {
        let vars = cfg.env.all();
        let path_var = cfg.env.path_var().map(|p| p.as_os_str());
        let memo = crate::private_dir::private_subdir("c-tools").ok();
        let tools: Vec<(String, String)> = c_tool_names(vars)
            .into_iter()
            .map(|n| {
                let id = tool_identity(&n, &cfg.cwd, path_var, memo.as_deref());
                (n, id)
            })
            .collect();
        // Debug information of the C and C++ it compiles names remapped roots, when
        // the compiler takes the flag.
        let private = crate::private_dir::private_subdir("c-compilers").ok();
        let takes: Vec<&'static str> = crate::key::compiler_commands(vars)
            .into_iter()
            .filter(|(_, command)| {
                let first = command.split_whitespace().next().unwrap_or("");
                let id = tools
                    .iter()
                    .find(|(n, _)| n == first)
                    .map_or("absent", |(_, id)| id.as_str());
                crate::key::compiler_takes_debug_map(command, id, &cfg.cwd, private.as_deref())
            })
            .map(|(flags, _)| flags)
            .collect();
        // No trim-paths variables of ours: the `cc` versions that read them turn them
        // into `-fmacro-prefix-map` too, and a C program's `__FILE__` would then print
        // what plain cargo's does not (and each such script would probe its compiler
        // for the two flags, on the build's critical path).
        let added = crate::key::debug_map_env(vars, &crate::key::debug_map_flags(pm), &takes);
        // The key takes which variable gets the maps and the maps by what they mean;
        // the user's own flags in it are keyed as every variable is, when the run reads
        // it (the observer records the value cargo gave, without the maps).
        let named: std::collections::BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| {
                let flags = k.contains("FLAGS");
                (k.clone(), if flags { String::new() } else { v.clone() })
            })
            .collect();
        let keyed = crate::key::debug_map_env(&named, &crate::key::debug_map_meaning(pm), &takes)
            .into_iter()
            .map(|(k, v)| (k, pm.normalize_text(&v)))
            .collect();
        Added {
            vars: added,
            tools,
            takes,
            keyed,
        }
    }
}

/// Runs the real executable in this process's place (same arguments, working directory
/// and environment, with `added`).
fn exec_real(real: &Path, ran: &Path, args: &[OsString], added: &[(String, String)]) -> i32 {
    let err = Command::new(real)
        .arg0(ran)
        .args(args)
        .envs(added.iter().cloned())
        .exec();
    eprintln!("error: xcache: failed to run {}: {err}", real.display());
    1
}

struct Script {
    real: PathBuf,
    ran: PathBuf,
    args: Vec<OsString>,
    out_dir: PathBuf,
    target_root: PathBuf,
    /// The run's root directory: its package's workspace (`key::run_root`).
    root_dir: PathBuf,
    /// What `OUT_DIR` held before the run (see `observe::before_run`).
    before: HashMap<PathBuf, String>,
    /// The files the run wrote and the directories it made in `OUT_DIR`: its outputs.
    written: Vec<PathBuf>,
    /// The roots a C file's name bound the run to, and why (`observe::file_macros`).
    file_bound: Vec<(String, String)>,
    /// What the first-level key was hashed from (for the key history).
    key_parts: Option<crate::key::KeyParts>,
    /// What the run's environment gets (and the key says of it).
    added: Added,
    /// The executable is known by its compile's key, not its content: it holds a root
    /// (`key::rooted_identity`).
    rooted: bool,
}

impl Script {
    /// What the script declared on its output: `rerun-if-changed` paths (keyed as
    /// trees) and `rerun-if-env-changed` variables. cargo reruns on them; the key covers
    /// them whether or not the script read them.
    fn declared(&self, cx: &mut Cx, stdout: &[u8]) -> Result<Vec<Input>, Uncacheable> {
        let text = String::from_utf8_lossy(stdout);
        let mut inputs = Vec::new();
        for line in text.lines() {
            let Some(d) = line
                .strip_prefix("cargo::")
                .or_else(|| line.strip_prefix("cargo:"))
            else {
                continue;
            };
            if let Some(p) = d.strip_prefix("rerun-if-changed=") {
                let p = cx.cfg.cwd.join(p);
                let changed = fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m > cx.started_at);
                if changed {
                    cx.detail = Some(format!("{} changed during the build", p.display()));
                    return Err(Uncacheable::InputChangedDuringBuild);
                }
                let digest =
                    tree_digest(&p, &self.target_root, MAX_FILES, &cx.pm).map_err(tree_reason)?;
                inputs.push(Input::new(
                    InputKind::Tree,
                    cx.pm.normalize_path(&p),
                    digest,
                ));
            } else if let Some(v) = d.strip_prefix("rerun-if-env-changed=") {
                // Declared or read, a name the run finds things by binds nothing: the
                // path check answers for it (ring declares `OUT_DIR`).
                let value = cx.cfg.env.all().get(v).map(String::as_str);
                inputs.extend(var_inputs(v, value, &cx.pm, UNBOUND_ENV));
            }
        }
        Ok(inputs)
    }
}

impl Script {
    /// Runs the real script with the same arguments, environment and working directory
    /// but `out_dir` for `OUT_DIR`, passing its output through as it comes when `echo`
    /// and keeping a copy. C objects compiled by the `cc` crate get the cache's path
    /// remapping of their debug information (`Added`).
    fn spawn(
        &self,
        cx: &Cx,
        out_dir: &Path,
        observer: Option<Observer>,
        echo: bool,
    ) -> io::Result<Ran> {
        let mut cmd = Command::new(&self.real);
        cmd.arg0(&self.ran)
            .args(&self.args)
            .env("OUT_DIR", out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.envs(self.added.vars.iter().cloned());
        if let Some(o) = &observer {
            o.apply(&mut cmd, cx.cfg.env.get("LD_PRELOAD"));
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let child_out = child.stdout.take().expect("piped");
        let child_err = child.stderr.take().expect("piped");
        let (stdout, stderr, status) = if echo {
            let out_thread = std::thread::spawn(move || tee(child_out, io::stdout()));
            let stderr = tee(child_err, io::stderr());
            let status = child.wait()?;
            (out_thread.join().unwrap_or_default(), stderr, status)
        } else {
            let out_thread = std::thread::spawn(move || tee(child_out, io::sink()));
            let stderr = tee(child_err, io::sink());
            let status = child.wait()?;
            (out_thread.join().unwrap_or_default(), stderr, status)
        };
        Ok(Ran {
            code: status.code().unwrap_or(101),
            stdout,
            stderr,
            trace: observer.and_then(|o| o.finish(pid).ok()),
        })
    }

    /// What a run writing into `out_dir` read, and what it wrote there (files, and the
    /// directories it made). `before`: what `out_dir` held before it.
    fn inputs_of(
        &self,
        cx: &mut Cx,
        ran: &Ran,
        out_dir: &Path,
        before: HashMap<PathBuf, String>,
    ) -> Result<Observed, Uncacheable> {
        let trace = ran.trace.as_ref().ok_or(Uncacheable::Unobserved)?;
        let (_, compiler) = cx
            .compiler
            .clone()
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?;
        let mut covered = vec![compiler.sysroot.clone()];
        // This program: in front of rustc it only passes probe compiles through.
        covered.extend(std::env::current_exe().ok());
        covered.extend(
            cx.cfg
                .env
                .get("RUSTUP_HOME")
                .map(PathBuf::from)
                .or_else(|| cx.cfg.env.get("HOME").map(|h| Path::new(h).join(".rustup"))),
        );
        let scope = Scope {
            pm: &cx.pm,
            env: cx.cfg.env.all(),
            covered,
            artifact_dirs: Vec::new(),
            own: Vec::new(),
            out_dir: Some(out_dir.to_path_buf()),
            before,
            scratch: scratch_dirs(&cx.cfg.env),
            writable: Vec::new(),
            ignored_env: &[],
            unbound_env: UNBOUND_ENV,
            started: cx.started_at,
            keyed_env: crate::key::is_run_key_var,
        };
        let c = classify(trace, &scope);
        if let Some((why, what)) = c.refusal() {
            cx.detail = Some(what);
            return Err(why);
        }
        let mut inputs = c.inputs;
        if c.host_cpu {
            inputs.push(cx.host_cpu_input()?);
        }
        inputs.extend(self.declared(cx, &ran.stdout)?);
        normalize_inputs(&mut inputs);
        Ok(Observed {
            inputs,
            written: c.written.into_iter().chain(c.made_dirs).collect(),
            file_bound: c.file_bound,
        })
    }
}

/// What a run's record says: its inputs, what it wrote and made in `OUT_DIR`, and the
/// roots a C file's name bound it to (with why).
struct Observed {
    inputs: Vec<Input>,
    written: Vec<PathBuf>,
    file_bound: Vec<(String, String)>,
}

fn tree_reason(e: TreeError) -> Uncacheable {
    match e {
        TreeError::TooManyFiles => Uncacheable::BuildScriptTooManyFiles,
        TreeError::Io(_) => Uncacheable::UnreadableInput,
    }
}

impl Cached for Script {
    fn record(&self, cx: &Cx) -> UnitRecord {
        let env = &cx.cfg.env;
        let crate_name = self
            .real
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .unwrap_or("build_script_build")
            .to_string();
        UnitRecord::new(
            env.get("CARGO_PKG_NAME").unwrap_or("").to_string(),
            env.get("CARGO_PKG_VERSION").unwrap_or("").to_string(),
            crate_name,
            "build-script-run".to_string(),
            Outcome::Miss,
        )
    }

    fn refusal(&self, _cx: &Cx) -> Option<Uncacheable> {
        None
    }

    /// The first-level key: the script, the variables cargo set, the toolchains.
    fn l1(&mut self, cx: &mut Cx) -> Result<Key, Uncacheable> {
        let store = cx.store.clone().ok_or(Uncacheable::Disabled)?;
        let vars = cx.cfg.env.all();
        let path_var = cx.cfg.env.path_var().map(|p| p.as_os_str());
        let script =
            artifact_identity(&self.real).map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        self.rooted = is_rooted_identity(&script);
        let rustc = cx
            .cfg
            .env
            .get("RUSTC")
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?
            .to_string();
        let compiler = compiler_id(
            Path::new(&rustc),
            store.compilers_dir().as_deref(),
            cx.cfg.rustup_toolchain.as_deref(),
            path_var,
        )
        .map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        let host = compiler
            .host()
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?
            .to_string();
        let target = cx.cfg.env.get("TARGET").unwrap_or(&host).to_string();
        let c_runtime = linker_id(
            &LinkerRequest {
                program: "cc",
                cwd: &cx.cfg.cwd,
                sysroot: &compiler.sysroot,
                host: &host,
                target: &target,
                fuse_ld: &[],
                path_var,
                vars,
            },
            store.linkers_dir().as_deref(),
        )
        .ok()
        .map(|l| l.key);
        let env = run_env(vars, &cx.pm);
        let mut dep_trees = Vec::new();
        for (k, v) in vars {
            let p = Path::new(v);
            if k.starts_with("DEP_") && p.is_absolute() && p.starts_with(&self.target_root) {
                let d = tree_digest(p, &self.out_dir, MAX_FILES, &cx.pm).map_err(tree_reason)?;
                dep_trees.push((k.clone(), d));
            }
        }
        let input = RunKeyInput {
            script: &script,
            compiler: &compiler.key,
            c_runtime: c_runtime.as_ref(),
            env: &env,
            tools: &self.added.tools,
            dep_trees: &dep_trees,
            c_debug_map: &self.added.takes,
            added_env: &self.added.keyed,
        };
        let key = run_l1_key(&input);
        self.key_parts = Some(run_key_parts(&input));
        cx.compiler = Some((PathBuf::from(rustc), compiler));
        Ok(key)
    }

    fn restore_dir(&self, _cx: &Cx) -> Option<PathBuf> {
        Some(self.out_dir.clone())
    }

    fn replayable(&self, cx: &Cx, meta: &EntryMeta) -> bool {
        // cargo reads the directives: every path in them must exist here.
        !PathMap::has_token(&cx.pm.expand_text(&meta.stdout))
    }

    fn restored(&mut self, _cx: &mut Cx, _key: &Key, _restored: &Restored) {}

    fn replay(&self, cx: &Cx, meta: &EntryMeta) {
        let out = cx.pm.expand_text(&meta.stdout);
        let err = cx.pm.expand_text(&meta.stderr);
        let _ = io::stdout().write_all(out.as_bytes());
        let _ = io::stderr().write_all(err.as_bytes());
    }

    /// Runs the real script with the same arguments, environment and working directory,
    /// passing its output through and keeping a copy. C objects compiled by the `cc`
    /// crate get the cache's path remapping (cargo's `trim-paths` variables, which `cc`
    /// turns into `-f*-prefix-map` flags when the compiler supports them).
    fn run(&mut self, cx: &mut Cx, observer: Option<Observer>) -> io::Result<Ran> {
        if observer.is_some() {
            self.before = before_run(&self.out_dir);
        }
        let out_dir = self.out_dir.clone();
        self.spawn(cx, &out_dir, observer, true)
    }

    fn inputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<Input>, Uncacheable> {
        let out_dir = self.out_dir.clone();
        let before = std::mem::take(&mut self.before);
        let observed = self.inputs_of(cx, ran, &out_dir, before)?;
        // The run's outputs are what it wrote: remember which, for `outputs`.
        self.written = observed.written;
        self.file_bound = observed.file_bound;
        Ok(observed.inputs)
    }

    fn bound_by_reads(&mut self) -> Vec<BoundBy> {
        std::mem::take(&mut self.file_bound)
            .into_iter()
            .map(|(root, why)| BoundBy {
                root,
                file: why,
                count: 0,
                c_file_name: true,
            })
            .collect()
    }

    /// The files the run wrote in `OUT_DIR` (what was there before and was not written
    /// again is not the run's output, and is not stored).
    fn outputs(&mut self, cx: &mut Cx, _ran: &Ran) -> Result<Vec<OutFile>, Uncacheable> {
        let mut paths = std::mem::take(&mut self.written);
        if paths.len() > MAX_FILES {
            return Err(Uncacheable::BuildScriptTooManyFiles);
        }
        paths.sort();
        paths.dedup();
        let mut files = Vec::new();
        for path in paths {
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return Err(Uncacheable::MissingOutput),
            };
            if meta.is_dir() {
                // A directory the run made stays only if a file of it is stored.
                let empty = fs::read_dir(&path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true);
                if empty {
                    return Err(Uncacheable::BuildScriptUnsupportedOutput);
                }
                continue;
            }
            if !meta.is_file() {
                return Err(Uncacheable::BuildScriptUnsupportedOutput);
            }
            let rel = path
                .strip_prefix(&self.out_dir)
                .ok()
                .and_then(Path::to_str)
                .ok_or(Uncacheable::BuildScriptUnsupportedOutput)?
                .to_string();
            // Our own temp files from an interrupted restore are not outputs.
            if rel.contains(".xcache-tmp-") {
                continue;
            }
            let text = if meta.len() <= MAX_TEXT {
                read_text(&path).map(|t| cx.pm.normalize_text(&t))
            } else {
                None
            };
            files.push(OutFile {
                role: "out".to_string(),
                name: rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                // A large file that is no program (a C library) is held by reference, as
                // its seed pack holds it: copied into the store and out of it (never
                // linked: a build script's `OUT_DIR` is the crate's to read, and anyone's
                // to edit), not compressed. Small files stay in the entry.
                shared: text.is_none()
                    && meta.permissions().mode() & 0o111 == 0
                    && meta.len() >= crate::store::objects::OBJECT_MIN_LEN,
                source: match text {
                    Some(t) => OutSource::Text(t),
                    None => OutSource::File(path.clone()),
                },
            });
        }
        Ok(files)
    }

    fn finished(&mut self, _cx: &mut Cx, _stored: Option<(&Key, &PutOutcome)>) {}

    fn outputs_follow_inputs(&self) -> bool {
        true
    }

    /// Every file under `OUT_DIR` now (the run's outputs are among them: what it wrote
    /// there). A few files and most of a C library's run's judging (its compiler read
    /// hundreds of headers, each hashed) then leave cargo's critical path.
    fn possible_outputs(&self, _cx: &Cx) -> Option<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.out_dir.clone()];
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).ok()? {
                let e = e.ok()?;
                let t = e.file_type().ok()?;
                if t.is_dir() {
                    dirs.push(e.path());
                } else {
                    out.push(e.path());
                }
                if out.len() + dirs.len() > MAX_FILES {
                    return None;
                }
            }
        }
        Some(out)
    }

    /// cargo reads the run's output (printed already) and `OUT_DIR`, which the store
    /// only reads.
    fn may_store_in_background(&self, _cx: &Cx) -> bool {
        true
    }

    fn failure_code(&self) -> &'static str {
        BUILD_SCRIPT_FAILED
    }

    fn rerun(&mut self, cx: &mut Cx, scratch: &Path) -> Result<Rerun, String> {
        std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
        let observer = cx.observer().map_err(|u| u.to_string())?;
        let ran = self
            .spawn(cx, scratch, Some(observer), false)
            .map_err(|e| e.to_string())?;
        if ran.code != 0 {
            return Err(format!("the uncached run failed ({})", ran.code));
        }
        let Observed {
            mut inputs,
            written,
            ..
        } = self
            .inputs_of(cx, &ran, scratch, HashMap::new())
            .map_err(|u| u.to_string())?;
        // What names the scratch directory names `OUT_DIR` in the recorded run.
        let text = scratch.display().to_string();
        let real = self.out_dir.display().to_string();
        for i in &mut inputs {
            i.name = i.name.replace(&text, &real);
            i.state = i.state.replace(&text, &real);
        }
        let files = written
            .into_iter()
            .filter(|p| p.is_file())
            .filter_map(|p| {
                let rel = p.strip_prefix(scratch).ok()?.to_str()?.to_string();
                Some((rel, p))
            })
            .collect();
        Ok(Rerun {
            files,
            stdout: ran.stdout,
            inputs,
        })
    }

    /// A run is stored free of its roots only when its path check shows it used them
    /// as paths only (`run_check`: the second run starts from an empty `OUT_DIR`, and
    /// must write what the first run wrote), or a run of it at other places did
    /// (`run_check::paired`); else it is bound to them.
    fn roots_to_bind(
        &mut self,
        cx: &mut Cx,
        l1: &Key,
        ran: &Ran,
        inputs: &[Input],
        files: &[OutFile],
    ) -> Option<(Vec<Root>, String)> {
        // A long run is made again only when it compiled, which the second run takes
        // from it: then given half the first's time (at least two seconds) of CPU.
        let long = cx.run_ms > CHECK_LIMIT_MS;
        let compiles = ran
            .trace
            .as_ref()
            .map(|t| run_check::compiles(t, &self.out_dir))
            .unwrap_or_default();
        let recipe = self.rooted.then(|| read_recipe(&self.real)).flatten();
        let verdict = if long && compiles.is_empty() {
            PathVerdict::Unchecked(format!(
                "the run took {} ms; runs over {CHECK_LIMIT_MS} ms are not made twice",
                cx.run_ms
            ))
        } else {
            let env: Vec<(OsString, OsString)> = std::env::vars_os()
                .chain(
                    self.added
                        .vars
                        .iter()
                        .map(|(k, v)| (OsString::from(k), OsString::from(v))),
                )
                .collect();
            let second = Second {
                program: &self.real,
                arg0: &self.ran,
                args: &self.args,
                cwd: &cx.cfg.cwd,
                env,
                out_dir: &self.out_dir,
                target_root: &self.target_root,
                timeout: CHECK_TIMEOUT,
                // Counted in CPU, not in time: the second run waits for a core at the
                // lowest priority while the build keeps them busy.
                cpu_budget: long
                    .then(|| Duration::from_millis((cx.run_ms / 2).max(2 * CHECK_LIMIT_MS))),
                compiles,
                rustc: sysroot_rustc(cx),
                rooted: self.rooted.then_some(recipe.as_ref()),
            };
            run_check::check(&second, &cx.pm, &ran.stdout, files)
        };
        // Too long to make twice: an earlier run of the same script on the same inputs
        // at roots of other lengths, stored bound, is the second run (see
        // `run_check::paired`).
        let verdict = match verdict {
            PathVerdict::Unchecked(why) => match cx.store.as_ref() {
                Some(store) => run_check::paired(store, l1, &cx.pm, inputs, &ran.stdout, files)
                    .unwrap_or(PathVerdict::Unchecked(why)),
                None => PathVerdict::Unchecked(why),
            },
            v => v,
        };
        let why = match &verdict {
            PathVerdict::PathsOnly => None,
            PathVerdict::PairedWith(roots) => {
                let left: Vec<Root> = cx
                    .pm
                    .roots()
                    .iter()
                    .filter(|r| !roots.contains(&r.kind))
                    .cloned()
                    .collect();
                return (!left.is_empty()).then(|| {
                    (
                        left,
                        "path check: paired with an earlier run at other places of the other roots only"
                            .to_string(),
                    )
                });
            }
            PathVerdict::Differs(what) => Some(format!(
                "path check: run again at aliases of its roots, it changed {what}"
            )),
            PathVerdict::Unchecked(why) => Some(format!("path check not made: {why}")),
        };
        why.map(|why| (cx.pm.roots().to_vec(), why))
    }

    /// Where cargo keeps the run: seeding pairs it with the units that read its
    /// `OUT_DIR` (`UnitPlace::run_dir`).
    fn complete_event(&self, cx: &Cx, ev: &mut UnitEvent) {
        ev.key_parts = self.key_parts.clone();
        let (Some(name), Ok(rel)) = (
            crate::key::Place::run_of_out_dir(&self.out_dir, &self.target_root),
            self.out_dir.strip_prefix(&self.target_root),
        ) else {
            return;
        };
        ev.place = Some(UnitPlace {
            target_root: self.target_root.clone(),
            out_dir: rel.to_string_lossy().into_owned(),
            unit_dir: name.clone(),
            run_dir: Some(name),
            cwd: self.root_dir.clone(),
            manifest_dir: cx.cfg.cwd.clone(),
            deps: Vec::new(),
            linker: None,
            incremental: false,
            script_compile: false,
            source: None,
        });
    }
}

/// The run's compiler (`RUSTC`) and its `rustc -vV`, where it is the compiler's own
/// `bin/rustc` in its sysroot: a program whose version answers are built in (not a
/// wrapper or a proxy, which could answer with something made of where it is), so the
/// path check's second run may be given them without starting it.
fn sysroot_rustc(cx: &Cx) -> Option<(String, String)> {
    let (rustc, id) = cx.compiler.as_ref()?;
    let real = std::fs::canonicalize(rustc).ok()?;
    if real != std::fs::canonicalize(id.sysroot.join("bin").join("rustc")).ok()? {
        return None;
    }
    Some((rustc.to_str()?.to_string(), id.version.clone()))
}

/// The file planting leaves in a build-script run's directory (beside its `OUT_DIR`)
/// that it put in place. cargo may still find the run stale (its fingerprint embeds what
/// the cache cannot predict, such as the path of a package in another `CARGO_HOME`) and
/// run the script: then the `OUT_DIR` holds what planting put there, which a fresh
/// target dir would not, and the shim empties it first ([`clear_rejected_plant`]). The
/// front-end removes the markers of the runs cargo used, after the build.
pub const PLANTED_MARKER: &str = "xcache-planted";

/// Empties `out_dir` when planting put it in place in this build and cargo runs the
/// script anyway (see [`PLANTED_MARKER`]), so the run sees what a fresh target dir holds.
pub fn clear_rejected_plant(out_dir: &Path) {
    let Some(marker) = out_dir.parent().map(|d| d.join(PLANTED_MARKER)) else {
        return;
    };
    if !marker.exists() {
        return;
    }
    let _ = fs::remove_dir_all(out_dir);
    let _ = fs::create_dir_all(out_dir);
    let _ = fs::remove_file(marker);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file is text exactly when it is UTF-8 whole, whatever its first block holds: a
    /// character cut at the block's end, a bad byte after it.
    #[test]
    fn a_file_is_text_when_it_is_utf8_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("ascii", b"cargo:rustc-cfg=x\n".to_vec()),
            ("object", b"\x7fELF\x02\x01\x01\0\0\0\xff\xfe".to_vec()),
            ("cut", {
                let mut v = vec![b'a'; 4095];
                v.extend("é and more".as_bytes());
                v
            }),
            ("bad-late", {
                let mut v = vec![b'a'; 5000];
                v.push(0xff);
                v
            }),
            ("bad-at-end-of-block", {
                let mut v = vec![b'a'; 4095];
                v.push(0xc3);
                v.push(b'a');
                v
            }),
        ];
        for (name, bytes) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(read_text(&p), String::from_utf8(bytes).ok(), "{name}");
        }
    }
}
