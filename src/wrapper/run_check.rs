//! The path check of a build-script run: did the run use its machine roots only as
//! paths? Main function: [`check`].
//!
//! A run finds things through its roots — `OUT_DIR`, `CARGO_MANIFEST_DIR`, its working
//! directory, the `DEP_*` directories — and what it prints or writes naming them is
//! tokenized, so its record replays wherever the roots are. A script can also turn a
//! root into data no scan finds (its length, a digest of it); such a record, replayed
//! at another root, hands cargo the first place's number. So, after a run, the script
//! runs a second time, unobserved and in the background, with every root seen through
//! an alias of another length (a symbolic link to it): the variables name the aliases,
//! its working directory is the alias of its own, and the aliasing library
//! (`alias.c`) tells `getcwd`, `realpath` and links read (`/proc/self/exe`) under them
//! too; `OUT_DIR` is a scratch directory of another length. What it printed and wrote
//! is compared with the first run's, each with its roots tokenized: the same, and the
//! roots were paths only; otherwise the caller binds the record to its roots
//! (`InputKind::Root`), which then holds only where they are the same.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::lifecycle::{OutFile, OutSource};
use crate::key::{Input, InputKind, Key, PathMap, RootKind, normalize_inputs, replace_root};
use crate::store::LocalStore;

/// The aliasing library, built for this platform by `build.rs`.
const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libxcache_alias.so"));

/// Variables the second run does not get: the jobserver's descriptors belong to the
/// first run's cargo, and the observer's record to the first run.
const DROPPED: &[&str] = &[
    "OUT_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    crate::observe::LOG_VAR,
];

/// What the second run is made of: the first run's program, arguments, working
/// directory and environment.
pub(super) struct Second<'a> {
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
}

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The second run printed and wrote what the first did, roots aside.
    PathsOnly,
    /// It did not: what differed.
    Differs(String),
    /// It could not be made (why).
    Unchecked(String),
    /// No second run: an earlier run of the same script on the same inputs, at places
    /// of these roots of other lengths, printed and wrote the same (`paired`).
    PairedWith(Vec<RootKind>),
}

/// A run too long to make twice, checked against an earlier run instead: a variant of
/// the same first-level key, stored bound to its roots, whose other inputs are this
/// run's and whose roots lie at paths of other lengths than here. Two real runs at two
/// places are the check's two runs: if the earlier one printed and wrote what this one
/// did, tokenized, the roots that differed in length (and so in bytes) were used as paths
/// only. `None` when there is no such variant, or its entry cannot be read.
pub(super) fn paired(
    store: &LocalStore,
    l1: &Key,
    pm: &PathMap,
    inputs: &[Input],
    stdout: &[u8],
    files: &[OutFile],
) -> Option<Verdict> {
    let unrooted = |v: &[Input]| -> Vec<Input> {
        let mut v: Vec<Input> = v
            .iter()
            .filter(|i| i.kind != InputKind::Root)
            .cloned()
            .collect();
        normalize_inputs(&mut v);
        v
    };
    let ours = unrooted(inputs);
    let manifest = store.read_manifest(l1);
    for variant in &manifest.variants {
        let rooted: Vec<&Input> = variant
            .inputs
            .iter()
            .filter(|i| i.kind == InputKind::Root)
            .collect();
        if rooted.is_empty() || unrooted(&variant.inputs) != ours {
            continue;
        }
        // The roots that were elsewhere, at a path of another length.
        let moved: Vec<RootKind> = pm
            .roots()
            .iter()
            .filter(|r| {
                rooted
                    .iter()
                    .any(|i| i.name == r.kind.token() && i.state.len() != r.real.len())
            })
            .map(|r| r.kind)
            .collect();
        if moved.is_empty() {
            continue;
        }
        let Some(key) = Key::from_hex(&variant.entry) else {
            continue;
        };
        let Ok(Some(mut reader)) = store.open_entry(&key) else {
            continue;
        };
        let meta = reader.meta().clone();
        if meta.stdout != pm.normalize_text(&String::from_utf8_lossy(stdout))
            || meta.files.len() != files.len()
        {
            return Some(Verdict::Differs(
                "what it printed, against an earlier run".into(),
            ));
        }
        for (stored, ours) in meta.files.iter().zip(files) {
            if reader.next_object().is_some() {
                return None;
            }
            let mut bytes = Vec::new();
            if reader.next_file(&mut bytes).is_err() {
                return None;
            }
            let same = stored.name == ours.name
                && stored.executable == ours.executable
                && match &ours.source {
                    OutSource::Text(t) => bytes == t.as_bytes(),
                    OutSource::File(p) => std::fs::read(p).is_ok_and(|b| b == bytes),
                };
            if !same {
                return Some(Verdict::Differs(format!(
                    "{} in OUT_DIR, against an earlier run",
                    ours.name
                )));
            }
        }
        return Some(Verdict::PairedWith(moved));
    }
    None
}

/// Runs the script again at aliased roots and compares (see the module).
pub(super) fn check(
    second: &Second<'_>,
    pm: &PathMap,
    stdout: &[u8],
    files: &[OutFile],
) -> Verdict {
    match check_inner(second, pm, stdout, files) {
        Ok(v) => v,
        Err(e) => Verdict::Unchecked(e.to_string()),
    }
}

/// The aliases of one check, removed when it is dropped.
struct Aliases {
    base: PathBuf,
    /// `(real, alias, token)`, most specific real first (the map's order).
    roots: Vec<(String, String, &'static str)>,
    /// The scratch directory standing for the target dir, holding `OUT_DIR`.
    scratch_target: String,
}

impl Drop for Aliases {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// `path` made a different length from `than` by appending `x`s.
fn other_length(mut path: String, than: &str) -> String {
    while path.len() == than.len() {
        path.push('x');
    }
    path
}

impl Aliases {
    fn new(pm: &PathMap, target_root: &Path) -> io::Result<Aliases> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let base = crate::private_dir::private_dir()?
            .join("run-check")
            .join(format!("{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&base)?;
        let mut a = Aliases {
            base: base.clone(),
            roots: Vec::new(),
            scratch_target: String::new(),
        };
        for (i, r) in pm.roots().iter().enumerate() {
            let alias = other_length(base.join(format!("root{i}")).display().to_string(), &r.real);
            std::os::unix::fs::symlink(&r.real, &alias)?;
            a.roots.push((r.real.clone(), alias, r.kind.token()));
        }
        a.scratch_target = other_length(
            base.join("target").display().to_string(),
            &target_root.display().to_string(),
        );
        std::fs::create_dir_all(&a.scratch_target)?;
        Ok(a)
    }

    /// Text of the first run told at the aliases.
    fn to_alias(&self, pm: &PathMap, text: &str) -> String {
        let mut t = pm.normalize_text(text);
        for (_, alias, token) in &self.roots {
            t = t.replace(token, alias);
        }
        t
    }

    /// Text of the second run with its roots tokenized; real roots it learned some
    /// other way too.
    fn tokenize(&self, pm: &PathMap, text: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .roots
            .iter()
            .map(|(_, alias, token)| (alias.as_str(), *token))
            .collect();
        pairs.push((
            self.scratch_target.as_str(),
            crate::key::RootKind::Target.token(),
        ));
        pairs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut t = text.to_string();
        for (prefix, token) in pairs {
            t = replace_root(&t, prefix, token);
        }
        pm.normalize_text(&t)
    }

    /// The `XCACHE_ALIAS_MAP` value: `real<TAB>alias` lines, most specific first.
    fn map(&self) -> String {
        let mut out = String::new();
        for (real, alias, _) in &self.roots {
            out.push_str(real);
            out.push('\t');
            out.push_str(alias);
            out.push('\n');
        }
        out
    }
}

fn check_inner(
    second: &Second<'_>,
    pm: &PathMap,
    stdout: &[u8],
    files: &[OutFile],
) -> io::Result<Verdict> {
    if LIBRARY.is_empty() {
        return Ok(Verdict::Unchecked(
            "no aliasing library on this platform".into(),
        ));
    }
    let lib =
        crate::observe::private_library(&crate::private_dir::private_dir()?, "alias", LIBRARY)?;
    let aliases = Aliases::new(pm, second.target_root)?;
    let rel = second
        .out_dir
        .strip_prefix(second.target_root)
        .unwrap_or(Path::new("out"));
    let out_dir = Path::new(&aliases.scratch_target).join(rel);
    std::fs::create_dir_all(&out_dir)?;

    let text = |s: &std::ffi::OsStr| aliases.to_alias(pm, &s.to_string_lossy());
    let mut cmd = Command::new(second.program);
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
    let mut preload = lib.display().to_string();
    for (k, v) in &second.env {
        let name = k.to_string_lossy();
        if DROPPED.contains(&name.as_ref()) {
            continue;
        }
        if name == "LD_PRELOAD" {
            if !v.is_empty() {
                preload.push(':');
                preload.push_str(&text(v));
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
    cmd.env("OUT_DIR", &out_dir)
        .env("LD_PRELOAD", preload)
        .env("XCACHE_ALIAS_MAP", aliases.map());
    let mut child = cmd.spawn()?;
    let mut pipe = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + second.timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Verdict::Unchecked(format!(
                "the second run took longer than {:?}",
                second.timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let second_stdout = reader.join().unwrap_or_default();
    if !status.success() {
        return Ok(Verdict::Differs(format!(
            "the second run failed ({status})"
        )));
    }
    let first = pm.normalize_text(&String::from_utf8_lossy(stdout));
    let again = aliases.tokenize(pm, &String::from_utf8_lossy(&second_stdout));
    if first != again {
        return Ok(Verdict::Differs("what it printed".into()));
    }
    compare_files(&aliases, pm, files, &out_dir)
}

/// The files the second run wrote in `out_dir` against the first run's.
fn compare_files(
    aliases: &Aliases,
    pm: &PathMap,
    files: &[OutFile],
    out_dir: &Path,
) -> io::Result<Verdict> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![out_dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                dirs.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    let mut names: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(out_dir).ok()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    let mut first: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    first.sort();
    if names != first {
        return Ok(Verdict::Differs("which files it wrote".into()));
    }
    for f in files {
        let path = out_dir.join(&f.name);
        let bytes = std::fs::read(&path)?;
        let executable = std::fs::metadata(&path)?.permissions().mode() & 0o111 != 0;
        let same = executable == f.executable
            && match &f.source {
                OutSource::Text(t) => {
                    String::from_utf8(bytes).is_ok_and(|s| aliases.tokenize(pm, &s) == *t)
                }
                OutSource::File(p) => std::fs::read(p).is_ok_and(|b| b == bytes),
            };
        if !same {
            return Ok(Verdict::Differs(format!("{} in OUT_DIR", f.name)));
        }
    }
    Ok(Verdict::PathsOnly)
}
