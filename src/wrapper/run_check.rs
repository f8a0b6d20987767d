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

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::lifecycle::{OutFile, OutSource};
use super::script_build::Recipe;
use crate::key::{Input, InputKind, Key, PathMap, RootKind, replace_root, without_roots};
use crate::observe::{Op, Trace};
use crate::store::LocalStore;

use crate::interpose::ALIAS as LIBRARY;

/// The aliasing library, written once into the private directory.
pub(super) fn alias_library() -> io::Result<PathBuf> {
    if LIBRARY.is_empty() {
        return Err(io::Error::other("no aliasing library on this platform"));
    }
    crate::interpose::private_library(&crate::private_dir::private_dir()?, "alias", LIBRARY)
}

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

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PathVerdict {
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
) -> Option<PathVerdict> {
    let ours = without_roots(inputs);
    let now = pm.normalize_text(&String::from_utf8_lossy(stdout));
    let manifest = store.read_manifest(l1);
    for variant in &manifest.variants {
        let rooted: Vec<&Input> = variant
            .inputs
            .iter()
            .filter(|i| i.kind == InputKind::Root)
            .collect();
        if rooted.is_empty() || without_roots(&variant.inputs) != ours {
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
        let stored_names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        let our_names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        if directives(&meta.stdout) != directives(&now) || !same_names(&stored_names, &our_names) {
            return Some(PathVerdict::Differs(
                "what it printed, against an earlier run".into(),
            ));
        }
        for stored in &meta.files {
            if reader.next_object().is_some() {
                return None;
            }
            let mut bytes = Vec::new();
            if reader.next_file(&mut bytes).is_err() {
                return None;
            }
            if is_probe_leftover(&stored.name) {
                continue;
            }
            let ours = files.iter().find(|f| f.name == stored.name)?;
            let same = stored.executable == ours.executable
                && match &ours.source {
                    OutSource::Text(t) => bytes == t.as_bytes(),
                    OutSource::File(p) => std::fs::read(p).is_ok_and(|b| b == bytes),
                };
            if !same {
                return Some(PathVerdict::Differs(format!(
                    "{} in OUT_DIR, against an earlier run",
                    ours.name
                )));
            }
        }
        return Some(PathVerdict::PairedWith(moved));
    }
    None
}

/// Runs the script again at aliased roots and compares (see the module).
pub(super) fn check(
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

/// The aliases of one check, removed when it is dropped.
struct Aliases {
    base: crate::private_dir::RemovedLater,
    /// `(real, alias, token)`, most specific real first (the map's order).
    roots: Vec<(String, String, &'static str)>,
    /// The scratch directory standing for the target dir, holding `OUT_DIR`.
    scratch_target: String,
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
            base: crate::private_dir::RemovedLater::new(base.clone()),
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

/// A compile of one file the first run made (`-c`, `-o` in its `OUT_DIR`), which the
/// second run may take from it instead of compiling again: the compile's own paths are
/// the C checks' (`observe::file_macros`, the prefix maps and the output scan), so what
/// a second compile would give differs from the first only where the script gave it
/// something else. So only when the second run starts it with the same arguments,
/// environment and working directory (each told at the aliases) is the object copied,
/// and only if what the compile read that the run made is the same: nothing written by
/// the run outside `OUT_DIR` (a C file in the temporary directory), and each file of
/// `OUT_DIR` it read (headers the script copied or generated there) written before the
/// compile started and never after, and found with the same bytes in the second run's
/// `OUT_DIR` when the second run starts the compile; each name it looked for there in
/// vain, still absent then.
pub(super) struct Compile {
    cwd: String,
    argv: Vec<String>,
    env: Vec<String>,
    /// The object the first run's compile wrote.
    output: PathBuf,
    /// Files of `OUT_DIR` the compile read, relative to it: the second run's must have
    /// the same bytes.
    same: Vec<PathBuf>,
    /// Names in `OUT_DIR` the compile looked for and did not find, relative to it: the
    /// second run's must be absent too.
    absent: Vec<PathBuf>,
    /// For a step of an archive's making ([`archives`]): which.
    chain: Option<Step>,
    /// For the step that appends an archive's members (`ar cq ARCHIVE`, whose arguments
    /// then end at the archive): the members, in order, in whatever batches the second
    /// run gives them ([`appends_as_one`]).
    members: Vec<String>,
}

/// A step of the making of an archive: the chain's number in the memo, the step's place
/// in it and the number of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Step {
    chain: usize,
    step: usize,
    steps: usize,
}

/// The CPU time process `pid` has used, with that of the children it has waited for
/// (`/proc/<pid>/stat`: user, system, and the same of waited-for children), if known.
fn cpu_used(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_of_stat(&stat, rustix::param::clock_ticks_per_second())
}

/// [`cpu_used`] from the text of a `stat` file, in clock ticks of `hz`.
fn cpu_of_stat(stat: &str, hz: u64) -> Option<Duration> {
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

/// The fields of an [`Op::Args`] or [`Op::EnvList`] record, when whole: separated by
/// 0x1f, within which 0x1b escapes 0x1f (`1`) and itself (`preload.c`, `note_fields`).
fn fields(path: &str) -> Option<Vec<String>> {
    let mut it = path.split('\u{1f}');
    let n: usize = it.next()?.parse().ok()?;
    let v: Vec<String> = it
        .map(|f| {
            let mut out = String::with_capacity(f.len());
            let mut chars = f.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\u{1b}' => match chars.next()? {
                        '1' => out.push('\u{1f}'),
                        '\u{1b}' => out.push('\u{1b}'),
                        _ => return None,
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

/// What the first run's record says of its processes, for finding the compiles and
/// archives the second run may take.
struct Processes<'t> {
    parent: HashMap<u32, u32>,
    /// Where in the record each process started and made its last call.
    started: HashMap<u32, usize>,
    last: HashMap<u32, usize>,
    args: HashMap<(u32, u32), Vec<String>>,
    envs: HashMap<(u32, u32), Vec<String>>,
    /// What each process read (programs it ran included), with its place in the record.
    reads: HashMap<u32, Vec<(Op, &'t str, usize)>>,
    /// The names it looked for in vain.
    probes: HashMap<u32, Vec<(&'t str, usize)>>,
    /// Every write, with its place in the record and its process.
    written: HashMap<&'t str, Vec<(usize, u32)>>,
    escaped: HashSet<u32>,
}

impl<'t> Processes<'t> {
    fn of(trace: &'t Trace) -> Processes<'t> {
        let mut p = Processes {
            parent: HashMap::new(),
            started: HashMap::new(),
            last: HashMap::new(),
            args: HashMap::new(),
            envs: HashMap::new(),
            reads: HashMap::new(),
            probes: HashMap::new(),
            written: HashMap::new(),
            escaped: HashSet::new(),
        };
        for (at, e) in trace.events.iter().enumerate() {
            p.last.insert(e.pid, at);
            match e.op {
                Op::Start => {
                    p.parent.insert(e.pid, e.err as u32);
                    p.started.entry(e.pid).or_insert(at);
                    // A program is read too: one the run wrote has to be compared.
                    p.reads
                        .entry(e.pid)
                        .or_default()
                        .push((Op::Start, &e.path, at));
                }
                Op::Exec | Op::Spawn => p.reads.entry(e.pid).or_default().push((e.op, &e.path, at)),
                Op::Args => {
                    if let Some(f) = fields(&e.path) {
                        p.args.insert((e.pid, e.image), f);
                    }
                }
                Op::EnvList => {
                    if let Some(f) = fields(&e.path) {
                        p.envs.insert((e.pid, e.image), f);
                    }
                }
                Op::Read | Op::List if e.err == 0 => {
                    p.reads.entry(e.pid).or_default().push((e.op, &e.path, at));
                }
                Op::Read | Op::Stat | Op::Readlink | Op::List if e.err != 0 => {
                    p.probes.entry(e.pid).or_default().push((&e.path, at));
                }
                Op::Write | Op::Mkdir if e.err == 0 => {
                    p.written.entry(&e.path).or_default().push((at, e.pid));
                }
                Op::Escape => {
                    p.escaped.insert(e.pid);
                }
                _ => {}
            }
        }
        p
    }

    /// A process and every process started below it.
    fn tree(&self, pid: u32) -> HashSet<u32> {
        let mut tree: HashSet<u32> = HashSet::from([pid]);
        loop {
            let before = tree.len();
            for (child, p) in &self.parent {
                if tree.contains(p) {
                    tree.insert(*child);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        tree
    }

    /// Where in the record processes of `tree` (`own`) or others wrote `path`.
    fn writes_of(&self, path: &str, tree: &HashSet<u32>, own: bool) -> Vec<usize> {
        self.written
            .get(path)
            .into_iter()
            .flatten()
            .filter(|(_, p)| tree.contains(p) == own)
            .map(|(at, _)| *at)
            .collect()
    }

    /// The files of `OUT_DIR` (relative to it) the processes of `tree` read that the
    /// second run's must hold the same bytes, and the names there they looked for in
    /// vain; `None` when what they read cannot be compared: a file the run wrote again
    /// after `start` (or outside `OUT_DIR` at all), a program or a listing of
    /// `OUT_DIR`. Paths in `internal` are left to the caller.
    fn inputs(
        &self,
        tree: &HashSet<u32>,
        start: usize,
        out_dir: &Path,
        internal: &[&str],
    ) -> Option<(Vec<PathBuf>, Vec<PathBuf>)> {
        let mut same: Vec<PathBuf> = Vec::new();
        for (op, r, _) in tree
            .iter()
            .flat_map(|p| self.reads.get(p).into_iter().flatten())
        {
            if internal.contains(r) {
                continue;
            }
            let others = self.writes_of(r, tree, false);
            match in_out_dir(r, out_dir) {
                // A file of `OUT_DIR` read and not written by the tree itself: compared,
                // if the run wrote it before `start` and never again.
                Some(rel) if *op == Op::Read && self.writes_of(r, tree, true).is_empty() => {
                    if others.iter().any(|at| *at > start) {
                        return None;
                    }
                    same.push(rel);
                }
                // A program or a directory listing of `OUT_DIR`.
                Some(_) if *op != Op::Read => return None,
                // A file the tree wrote there itself and read back.
                Some(_) => {}
                None if !others.is_empty() => return None,
                None => {}
            }
        }
        same.sort();
        same.dedup();
        let mut absent: Vec<PathBuf> = tree
            .iter()
            .flat_map(|p| self.probes.get(p).into_iter().flatten())
            .filter_map(|(p, _)| in_out_dir(p, out_dir))
            .collect();
        absent.sort();
        absent.dedup();
        Some((same, absent))
    }
}

/// A path in `OUT_DIR`, relative to it, made of names only (a `..` would not stay below
/// it).
fn in_out_dir(p: &str, out_dir: &Path) -> Option<PathBuf> {
    let rel = Path::new(p).strip_prefix(out_dir).ok()?;
    let names = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (names && !rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// The compiles (and archives) of the first run the second may take (see [`Compile`]).
pub(super) fn compiles(trace: &Trace, out_dir: &Path) -> Vec<Compile> {
    let procs = Processes::of(trace);
    let mut out = Vec::new();
    for ((pid, image), a) in &procs.args {
        let (Some(cwd), Some(env)) = (a.first(), procs.envs.get(&(*pid, *image))) else {
            continue;
        };
        let argv = a[1..].to_vec();
        if archive_of(&argv).is_some() {
            continue;
        }
        let Some(o) = argv
            .iter()
            .rposition(|x| x == "-o")
            .and_then(|i| argv.get(i + 1))
        else {
            continue;
        };
        let output = Path::new(cwd).join(o);
        if !output.starts_with(out_dir) || !output.is_file() {
            continue;
        }
        let tree = procs.tree(*pid);
        if tree.iter().any(|p| procs.escaped.contains(p)) {
            continue;
        }
        let start = procs.started.get(pid).copied().unwrap_or(0);
        if !procs
            .writes_of(&output.to_string_lossy(), &tree, false)
            .is_empty()
        {
            continue;
        }
        let Some((same, absent)) = procs.inputs(&tree, start, out_dir, &[]) else {
            continue;
        };
        out.push(Compile {
            cwd: cwd.clone(),
            argv,
            env: env.clone(),
            output,
            same,
            absent,
            chain: None,
            members: Vec::new(),
        });
    }
    out.extend(archives(&procs, out_dir));
    out
}

/// The archive an archiver's arguments make (`ar cq ARCHIVE member…`, `ar s ARCHIVE`),
/// when they are of the forms whose archive holds only the members' names and bytes:
/// the operation `q`, `r` or `s` with the modifiers `c`, `s` and `D` only (not `P` or
/// `T`, which keep the members' paths, nor `u`, `o`, `U`, which read or keep times,
/// nor `a`, `b`, `i`, `N`, which take a further argument), no option before the
/// archive and no `@file`.
fn archive_of(argv: &[String]) -> Option<&str> {
    let program = Path::new(argv.first()?).file_name()?.to_str()?;
    if program != "ar" && !program.ends_with("-ar") {
        return None;
    }
    let op = argv.get(1)?;
    let letters = op.strip_prefix('-').unwrap_or(op);
    let known = !letters.is_empty() && letters.chars().all(|c| "qrscD".contains(c));
    let operation = letters.chars().filter(|c| "qr".contains(*c)).count() <= 1
        && letters.chars().any(|c| "qrs".contains(c));
    let archive = argv.get(2)?;
    let plain = argv[2..]
        .iter()
        .all(|a| !a.starts_with('-') && !a.starts_with('@') && !a.is_empty());
    (known && operation && plain).then_some(archive.as_str())
}

/// The archives of `OUT_DIR` the first run made with an archiver, which the second may
/// take whole: each archive's makers, in order (`ar cq` of the members, then `ar s` to
/// index them, as the `cc` crate runs them), are a chain of steps the second run takes
/// only from the first and in order (`alias.c`): the first step puts the first run's
/// archive in place, each later one finds it there unchanged and does nothing.
///
/// A chain is taken only if: the first step found no archive (it looked, in vain); no
/// other process read or wrote the archive from the chain's first start to its last
/// call, nor wrote it after; the steps did not overlap; and what each step read of what
/// the run made is compared as a compile's is. The archive's bytes are then a function
/// of the members' names (not their paths: see [`archive_of`]) and bytes, which the
/// second run's steps give as the first's did, told at the aliases.
fn archives(procs: &Processes<'_>, out_dir: &Path) -> Vec<Compile> {
    let mut by_archive: HashMap<PathBuf, Vec<(usize, u32, u32)>> = HashMap::new();
    for ((pid, image), a) in &procs.args {
        let Some(cwd) = a.first() else { continue };
        let Some(archive) = archive_of(&a[1..]) else {
            continue;
        };
        let path = Path::new(cwd).join(archive);
        let start = procs.started.get(pid).copied().unwrap_or(0);
        by_archive
            .entry(path)
            .or_default()
            .push((start, *pid, *image));
    }
    let mut out = Vec::new();
    let mut chains = 0;
    let mut by_archive: Vec<_> = by_archive.into_iter().collect();
    by_archive.sort();
    for (archive, mut steps) in by_archive {
        if in_out_dir(&archive.to_string_lossy(), out_dir).is_none() || !archive.is_file() {
            continue;
        }
        steps.sort();
        let name = archive.to_string_lossy().into_owned();
        let mut chain: Vec<Compile> = Vec::new();
        let mut ok = true;
        let first_start = steps[0].0;
        let mut end = 0;
        let mut trees: HashSet<u32> = HashSet::new();
        for (i, (start, pid, image)) in steps.iter().enumerate() {
            let tree = procs.tree(*pid);
            let last = tree
                .iter()
                .filter_map(|p| procs.last.get(p))
                .max()
                .copied()
                .unwrap_or(*start);
            // Steps one after the other, each a process of its own.
            ok &= *start > end || i == 0;
            ok &= !tree.iter().any(|p| procs.escaped.contains(p));
            end = last;
            let (Some(a), Some(env)) = (
                procs.args.get(&(*pid, *image)),
                procs.envs.get(&(*pid, *image)),
            ) else {
                ok = false;
                break;
            };
            let Some((same, absent)) = procs.inputs(&tree, *start, out_dir, &[&name]) else {
                ok = false;
                break;
            };
            if i == 0 {
                // The first step made the archive anew: it looked for it in vain before
                // it read it.
                let looked = procs
                    .probes
                    .get(pid)
                    .into_iter()
                    .flatten()
                    .filter(|(p, _)| *p == name)
                    .map(|(_, at)| *at)
                    .min();
                let read = procs
                    .reads
                    .get(pid)
                    .into_iter()
                    .flatten()
                    .filter(|(_, p, _)| *p == name)
                    .map(|(_, _, at)| *at)
                    .min();
                ok &= looked.is_some_and(|l| read.is_none_or(|r| l < r));
            }
            trees.extend(tree);
            chain.push(Compile {
                cwd: a[0].clone(),
                argv: a[1..].to_vec(),
                env: env.clone(),
                output: archive.clone(),
                same,
                absent,
                chain: Some(Step {
                    chain: chains,
                    step: i,
                    steps: steps.len(),
                }),
                members: Vec::new(),
            });
        }
        // Nobody else touched the archive from the first step on.
        let touched_by_others = procs
            .written
            .get(name.as_str())
            .into_iter()
            .flatten()
            .any(|(at, p)| *at >= first_start && !trees.contains(p))
            || procs.reads.iter().any(|(p, reads)| {
                !trees.contains(p)
                    && reads
                        .iter()
                        .any(|(_, r, at)| *r == name && *at >= first_start && *at <= end)
            });
        if ok && !touched_by_others {
            out.extend(appends_as_one(chain));
            chains += 1;
        }
    }
    out
}

/// An archive's chain with its first steps that append members (`ar cq ARCHIVE m…`, the
/// same program, operation, archive, environment and working directory each time) made
/// one step listing every member in order: the `cc` crate appends in batches of so many
/// bytes of paths, which at the second run's aliases (of other lengths) fall elsewhere.
/// Appending the same members in the same order in other batches makes the same archive
/// (GNU `ar` writes the whole archive again each time); the second run's batches are
/// taken when they give the members in order (`alias.c`).
fn appends_as_one(chain: Vec<Compile>) -> Vec<Compile> {
    let appends = |c: &Compile| c.argv.get(1).is_some_and(|op| op.contains('q'));
    let n = chain
        .iter()
        .take_while(|c| {
            appends(c)
                && c.argv.len() > 3
                && c.argv[..3] == chain[0].argv[..3]
                && c.env == chain[0].env
                && c.cwd == chain[0].cwd
        })
        .count();
    if n == 0 {
        return chain;
    }
    let steps = chain.len() - n + 1;
    let mut rest = chain.into_iter();
    let mut first = rest.next().expect("at least one appending step");
    first.members = first.argv.split_off(3);
    for b in rest.by_ref().take(n - 1) {
        first.members.extend(b.argv.into_iter().skip(3));
        first.same.extend(b.same);
        first.absent.extend(b.absent);
    }
    first.same.sort();
    first.same.dedup();
    first.absent.sort();
    first.absent.dedup();
    let mut out = vec![first];
    out.extend(rest);
    for (i, c) in out.iter_mut().enumerate() {
        if let Some(s) = c.chain.as_mut() {
            s.step = i;
            s.steps = steps;
        }
    }
    out
}

/// Variables a compile's environment is compared without: the two runs' own (the
/// libraries each preloads and what they read) and the jobserver's, which the second
/// run does not get; none changes what a compile writes. `alias.c` leaves out the same.
const NOT_COMPARED: &[&str] = &[
    "LD_PRELOAD=",
    "XCACHE_OBSERVE_LOG=",
    "XCACHE_ALIAS_MAP=",
    "XCACHE_CC_MEMO=",
    "XCACHE_RUSTC_QUERY=",
    "CARGO_MAKEFLAGS=",
    "MAKEFLAGS=",
    "MFLAGS=",
];

/// The memo the aliasing library reads (`XCACHE_CC_MEMO`): for each compile, its working
/// directory, arguments and sorted environment told at the aliases, the first run's
/// object and where the second run's compile writes it, the files of `OUT_DIR` it read
/// (the first run's and the second's names) and the names there it did not find. Lines
/// `C` (a new compile), then `w`, `a`…, `e`…, `s`, `o`, (`f`, `g`)…, `n`…, and for a step
/// of an archive's making `k <chain> <step>`, each followed
/// by a space and its value, in which `\` and newlines are escaped (`\\`, `\n`).
fn memo(
    compiles: &[Compile],
    tell: impl Fn(&str) -> String,
    out_dir: &Path,
    second_out: &Path,
) -> String {
    let mut text = String::new();
    for c in compiles {
        let Ok(rel) = c.output.strip_prefix(out_dir) else {
            continue;
        };
        let mut env: Vec<String> = c
            .env
            .iter()
            .filter(|e| !NOT_COMPARED.iter().any(|n| e.starts_with(n)))
            .map(|e| tell(e))
            .collect();
        env.sort();
        let mut lines = vec![format!("w {}", tell(&c.cwd))];
        lines.extend(c.argv.iter().map(|a| format!("a {}", tell(a))));
        lines.extend(env.iter().map(|e| format!("e {e}")));
        lines.push(format!("s {}", c.output.display()));
        lines.push(format!("o {}", second_out.join(rel).display()));
        for f in &c.same {
            lines.push(format!("f {}", out_dir.join(f).display()));
            lines.push(format!("g {}", second_out.join(f).display()));
        }
        lines.extend(
            c.absent
                .iter()
                .map(|f| format!("n {}", second_out.join(f).display())),
        );
        lines.extend(c.members.iter().map(|m| format!("m {}", tell(m))));
        if let Some(s) = c.chain {
            lines.push(format!("k {} {}", s.chain, s.step));
        }
        text.push_str("C\n");
        for l in lines {
            // One line each: `\` and newlines escaped (`alias.c` reads them back).
            text.push_str(&l.replace('\\', "\\\\").replace('\n', "\\n"));
            text.push('\n');
        }
    }
    text
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
    // A jobserver of the second run's own where the first had cargo's (or make's).
    let jobs = std::env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
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
        .strip_suffix(super::shim::REAL_SUFFIX)
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

/// Whether the second run began taking an archive's making from the first run but did
/// not finish (`alias.c` marks what it takes: `<memo>.chain-<n>-<step>` for each step,
/// `<memo>.chain-<n>-at-<count>` for the members appended so far): the archive it left is
/// not what its own steps would have made, so the second run says nothing.
fn archives_in_part(compiles: &[Compile], memo_path: &Path) -> Option<String> {
    let dir = memo_path.parent()?;
    let name = memo_path.file_name()?.to_string_lossy().into_owned();
    let marks: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!("{name}.chain-")))
        .collect();
    compiles.iter().filter_map(|c| c.chain).find_map(|s| {
        let prefix = format!("{name}.chain-{}-", s.chain);
        let begun = marks.iter().any(|m| m.starts_with(&prefix));
        let finished = marks.contains(&format!("{prefix}{}", s.steps - 1));
        (s.step == 0 && begun && !finished).then(|| {
            "the second run took part of an archive's making from the first run, not all of it"
                .to_string()
        })
    })
}

/// The lines of a run's output cargo acts on (`cargo:` and `cargo::` directives), in
/// order. The rest cargo only keeps in the run's `output` file; the `cc` crate prints
/// there which variables it looked up, as often as it ran `ar`, which it does once per
/// so many bytes of object paths: a number the roots' lengths change.
fn directives(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("cargo:")).collect()
}

/// The files the second run wrote in `out_dir` against the first run's.
fn compare_files(
    aliases: &Aliases,
    pm: &PathMap,
    files: &[OutFile],
    out_dir: &Path,
) -> io::Result<PathVerdict> {
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
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let first: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    if !same_names(&names, &first) {
        return Ok(PathVerdict::Differs("which files it wrote".into()));
    }
    for f in files.iter().filter(|f| !is_probe_leftover(&f.name)) {
        let path = out_dir.join(&f.name);
        let executable = std::fs::metadata(&path)?.permissions().mode() & 0o111 != 0;
        let same = executable == f.executable
            && match &f.source {
                OutSource::Text(t) => String::from_utf8(std::fs::read(&path)?)
                    .is_ok_and(|s| aliases.tokenize(pm, &s) == *t),
                OutSource::File(p) => same_bytes(p, &path)?,
            };
        if !same {
            return Ok(PathVerdict::Differs(format!("{} in OUT_DIR", f.name)));
        }
    }
    Ok(PathVerdict::PathsOnly)
}

/// What autocfg leaves in `OUT_DIR`: the output of each probe crate it compiled
/// (`rustc --crate-name autocfg_<id>_<n> --out-dir $OUT_DIR --emit=llvm-ir -` from its own
/// source on stdin: `autocfg_<id>_<n>.ll`; `libautocfg_<id>_<n>.rmeta` where metadata is
/// emitted), named by an id autocfg draws at random in every run, so two runs never write
/// the same names. Only a listing of `OUT_DIR` could find them, and autocfg asks only
/// whether the compile succeeded: the check counts them instead of pairing them by name
/// and bytes. The files replayed are the first run's, as a run could have written.
fn is_probe_leftover(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("libautocfg_")
        .and_then(|r| r.strip_suffix(".rmeta"))
        .or_else(|| {
            name.strip_prefix("autocfg_")
                .and_then(|r| r.strip_suffix(".ll"))
        })
    else {
        return false;
    };
    let Some((id, n)) = rest.split_once('_') else {
        return false;
    };
    id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// Whether two runs wrote the same files: the same names but autocfg's probe leftovers
/// ([`is_probe_leftover`]), and as many of those.
fn same_names(a: &[&str], b: &[&str]) -> bool {
    fn split<'a>(v: &[&'a str]) -> (usize, Vec<&'a str>) {
        let (left, mut rest): (Vec<&str>, Vec<&str>) = v.iter().partition(|n| is_probe_leftover(n));
        rest.sort_unstable();
        (left.len(), rest)
    }
    split(a) == split(b)
}

/// Whether the file at `first` (the first run's; unreadable: not the same) holds the
/// bytes of the one at `second`, read side by side a block at a time: a C library's
/// objects and archive are megabytes, read whole twice before.
fn same_bytes(first: &Path, second: &Path) -> io::Result<bool> {
    let mut b = std::fs::File::open(second)?;
    let Ok(mut a) = std::fs::File::open(first) else {
        return Ok(false);
    };
    if a.metadata().map(|m| m.len()).ok() != Some(b.metadata()?.len()) {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let Ok(n) = crate::fsx::read_full(&mut a, &mut x) else {
            return Ok(false);
        };
        let m = crate::fsx::read_full(&mut b, &mut y)?;
        if x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record in the observer's words (`<pid> <op> <errno> <path>`), parsed.
    fn trace(lines: &[String]) -> Trace {
        Trace::parse(&(lines.join("\n") + "\n"), 1)
    }

    fn fields(parts: &[&str]) -> String {
        let mut s = parts.len().to_string();
        for p in parts {
            s.push('\u{1f}');
            s.push_str(p);
        }
        s
    }

    /// A temporary directory holding the aliasing library, and the library's path.
    fn alias_library() -> (tempfile::TempDir, PathBuf) {
        assert!(
            !LIBRARY.is_empty(),
            "the aliasing library is built on Linux"
        );
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("libalias.so");
        std::fs::write(&lib, LIBRARY).unwrap();
        (d, lib)
    }

    /// The aliasing library answers `--version`, `-V`, `-vV` and `--version --verbose` of
    /// the compiler it is given (here a path where nothing is) from the answers' files,
    /// by `cat`; any other arguments, or another program, start the program itself.
    #[test]
    fn version_probes_of_the_runs_compiler_are_answered_without_starting_it() {
        let (d, lib) = alias_library();
        let short = d.path().join("rustc-V");
        let long = d.path().join("rustc-vV");
        std::fs::write(&short, "rustc 9.9.9 (test)\n").unwrap();
        std::fs::write(&long, "rustc 9.9.9 (test)\nbinary: rustc\n").unwrap();
        let rustc = d.path().join("no-such-dir/rustc");
        let other = d.path().join("no-such-dir/other");
        let script = format!(
            "r='{r}'; o='{o}'; $r --version; $r -V; $r -vV; $r --version --verbose; \
             $r --print sysroot 2>/dev/null || echo started; \
             $r --version --color 2>/dev/null || echo started; \
             $o --version 2>/dev/null || echo started",
            r = rustc.display(),
            o = other.display()
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("LD_PRELOAD", &lib)
            .env(
                "XCACHE_RUSTC_QUERY",
                format!(
                    "{}\n{}\n{}\n",
                    short.display(),
                    long.display(),
                    rustc.display()
                ),
            )
            .output()
            .unwrap();
        let v = "rustc 9.9.9 (test)\n";
        let vv = "rustc 9.9.9 (test)\nbinary: rustc\n";
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{v}{v}{vv}{vv}started\nstarted\nstarted\n")
        );
    }

    /// Two compiles into `OUT_DIR`: one of a source in the package, one of a source the
    /// script wrote into the temporary directory first. Only the first may be taken.
    #[test]
    fn a_compile_of_what_the_run_made_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a.o"), "a").unwrap();
        std::fs::write(out.join("b.o"), "b").unwrap();
        let o = |n: &str| out.join(n).display().to_string();
        let lines = vec![
            "1 I 0 /ws/target/build-script-build".to_string(),
            "1 w 0 /tmp/gen.c".to_string(),
            "10 I 1 /usr/bin/cc".to_string(),
            format!(
                "10 a 0 {}",
                fields(&["/ws", "cc", "-c", "-o", &o("a.o"), "src/a.c"])
            ),
            format!("10 A 0 {}", fields(&["PATH=/usr/bin"])),
            "10 o 0 /ws/src/a.c".to_string(),
            format!("10 w 0 {}", o("a.o")),
            "11 I 1 /usr/bin/cc".to_string(),
            format!(
                "11 a 0 {}",
                fields(&["/ws", "cc", "-c", "-o", &o("b.o"), "/tmp/gen.c"])
            ),
            format!("11 A 0 {}", fields(&["PATH=/usr/bin"])),
            // The driver's child, cc1, reads the source.
            "12 I 11 /usr/lib/gcc/cc1".to_string(),
            "12 o 0 /tmp/gen.c".to_string(),
            format!("11 w 0 {}", o("b.o")),
        ];
        let found = compiles(&trace(&lines), &out);
        let outputs: Vec<&Path> = found.iter().map(|c| c.output.as_path()).collect();
        assert_eq!(outputs, [out.join("a.o").as_path()]);
        assert_eq!(found[0].argv, ["cc", "-c", "-o", &o("a.o"), "src/a.c"]);
        assert_eq!(found[0].env, ["PATH=/usr/bin"]);
        assert_eq!(found[0].cwd, "/ws");
    }

    /// Headers the script wrote into `OUT_DIR`: a compile that read one written before
    /// it started is taken if the second run's has the same bytes (it is listed, with
    /// the names it looked for there in vain); one the script wrote again after the
    /// compile started is not taken.
    #[test]
    fn a_compile_of_a_header_in_out_dir_is_taken_when_the_header_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("include")).unwrap();
        std::fs::write(out.join("a.o"), "a").unwrap();
        std::fs::write(out.join("b.o"), "b").unwrap();
        let o = |n: &str| out.join(n).display().to_string();
        let compile = |pid: u32, obj: &str| {
            vec![
                format!("{pid} I 1 /usr/bin/cc"),
                format!(
                    "{pid} a 0 {}",
                    fields(&["/ws", "cc", "-I", &o("include"), "-c", "-o", &o(obj), "s.c"])
                ),
                format!("{pid} A 0 {}", fields(&["PATH=/usr/bin"])),
                format!("{pid} o 2 {}", o("include/stdio.h")),
                format!("{pid} o 0 {}", o("include/h.h")),
                format!("{pid} w 0 {}", o(obj)),
            ]
        };
        let mut lines = vec![
            "1 I 0 /ws/target/build-script-build".to_string(),
            format!("1 w 0 {}", o("include/h.h")),
        ];
        lines.extend(compile(10, "a.o"));
        // Written again while a compile runs: what it read is no longer there.
        let mut again = lines.clone();
        again.extend(compile(11, "b.o").into_iter().take(3));
        again.push(format!("1 w 0 {}", o("include/h.h")));
        again.extend(compile(11, "b.o").into_iter().skip(3));
        let found = compiles(&trace(&again), &out);
        assert!(
            found.is_empty(),
            "{:?}",
            found.iter().map(|c| &c.output).collect::<Vec<_>>()
        );
        let found = compiles(&trace(&lines), &out);
        let outputs: Vec<&Path> = found.iter().map(|c| c.output.as_path()).collect();
        assert_eq!(outputs, [out.join("a.o").as_path()]);
        assert_eq!(found[0].same, [Path::new("include/h.h")]);
        assert_eq!(found[0].absent, [Path::new("include/stdio.h")]);
        let memo_text = memo(&found, |s| s.to_string(), &out, Path::new("/second"));
        assert!(
            memo_text.contains(&format!("f {}\n", o("include/h.h"))),
            "{memo_text}"
        );
        assert!(memo_text.contains("g /second/include/h.h\n"), "{memo_text}");
        assert!(
            memo_text.contains("n /second/include/stdio.h\n"),
            "{memo_text}"
        );
    }

    /// Values holding 0x1f (cargo's encoded flags) or a newline (a package's description)
    /// come through the record and the memo.
    #[test]
    fn separators_and_newlines_in_a_compile_s_environment_come_through() {
        let record = "2\u{1f}CARGO_ENCODED_RUSTFLAGS=-C\u{1b}1debuginfo=1\u{1f}E=\u{1b}\u{1b}";
        assert_eq!(
            super::fields(record).unwrap(),
            ["CARGO_ENCODED_RUSTFLAGS=-C\u{1f}debuginfo=1", "E=\u{1b}"]
        );
        assert!(super::fields("1\u{1f}bad\u{1b}x").is_none());
        let c = Compile {
            cwd: "/ws".into(),
            argv: vec!["cc".into()],
            env: vec!["CARGO_PKG_DESCRIPTION=two\nlines \\ and a tab\t".into()],
            output: PathBuf::from("/out/a.o"),
            same: Vec::new(),
            absent: Vec::new(),
            chain: None,
            members: Vec::new(),
        };
        let text = memo(
            &[c],
            |s| s.to_string(),
            Path::new("/out"),
            Path::new("/second"),
        );
        assert!(
            text.contains("e CARGO_PKG_DESCRIPTION=two\\nlines \\\\ and a tab\t\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    /// The archivers' forms whose archive holds the members' names and bytes only.
    #[test]
    fn an_archive_is_taken_only_in_forms_that_keep_names_and_bytes() {
        let of = |a: &str| -> Option<String> {
            let v: Vec<String> = a.split(' ').map(str::to_string).collect();
            archive_of(&v).map(str::to_string)
        };
        for ok in [
            "ar cq lib.a a.o b.o",
            "ar s lib.a",
            "ar crs lib.a a.o",
            "ar -rcs lib.a a.o",
            "ar rcD lib.a a.o",
            "/usr/bin/x86_64-linux-gnu-ar cq lib.a a.o",
            "gcc-ar qc lib.a a.o",
        ] {
            assert_eq!(of(ok).as_deref(), Some("lib.a"), "{ok}");
        }
        for refused in [
            "ar rcsP lib.a a.o",
            "ar rcT lib.a a.o",
            "ar rcsu lib.a a.o",
            "ar rcU lib.a a.o",
            "ar rco lib.a a.o",
            "ar rcsa m.o lib.a a.o",
            "ar x lib.a",
            "ar t lib.a",
            "ar d lib.a a.o",
            "ar qr lib.a a.o",
            "ar cq lib.a @list",
            "ar --plugin p.so cq lib.a a.o",
            "ar cq lib.a -a.o",
            "ranlib lib.a",
            "car cq lib.a a.o",
            "ar",
            "ar cq",
        ] {
            assert_eq!(of(refused), None, "{refused}");
        }
    }

    /// The record of the `cc` crate's archiving: the script removes the archive, `ar cq`
    /// looks for it in vain, makes it through a temporary file and reads it back, `ar s`
    /// indexes it. Both steps are one chain; variants where the archive was there before,
    /// was read or written by another process between or after the steps, or the steps
    /// overlapped, are not taken.
    #[test]
    fn an_archive_s_steps_are_one_chain_taken_only_when_nobody_else_touched_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a.o"), "a").unwrap();
        std::fs::write(out.join("lib.a"), "archive").unwrap();
        let o = |n: &str| out.join(n).display().to_string();
        let env = || format!("A 0 {}", fields(&["PATH=/usr/bin"]));
        let step1 = |pid: u32| {
            vec![
                format!("{pid} I 1 /usr/bin/ar"),
                format!(
                    "{pid} a 0 {}",
                    fields(&["/ws", "ar", "cq", &o("lib.a"), &o("a.o")])
                ),
                format!("{pid} {}", env()),
                "{pid} o 0 /usr/lib/bfd-plugins/liblto_plugin.so"
                    .replace("{pid}", &pid.to_string()),
                format!("{pid} s 2 {}", o("lib.a")),
                format!("{pid} w 0 {}", o("lib.a")),
                format!("{pid} o 0 {}", o("lib.a")),
                format!("{pid} o 0 {}", o("a.o")),
                format!("{pid} w 0 {}", o("stAbCdEf")),
                format!("{pid} w 0 {}", o("lib.a")),
                format!("{pid} w 0 {}", o("stAbCdEf")),
            ]
        };
        let step2 = |pid: u32| {
            vec![
                format!("{pid} I 1 /usr/bin/ar"),
                format!("{pid} a 0 {}", fields(&["/ws", "ar", "s", &o("lib.a")])),
                format!("{pid} {}", env()),
                format!("{pid} o 0 {}", o("lib.a")),
                format!("{pid} w 0 {}", o("stGhIjKl")),
                format!("{pid} w 0 {}", o("lib.a")),
                format!("{pid} w 0 {}", o("stGhIjKl")),
            ]
        };
        let script = |extra: &[String]| {
            let mut l = vec![
                "1 I 0 /ws/target/build-script-build".to_string(),
                format!("1 w 0 {}", o("a.o")),
                format!("1 w 0 {}", o("lib.a")),
            ];
            l.extend(extra.iter().cloned());
            l
        };
        let both: Vec<String> = step1(10).into_iter().chain(step2(11)).collect();
        let found = compiles(&trace(&script(&both)), &out);
        let steps: Vec<(Vec<String>, Option<Step>)> =
            found.iter().map(|c| (c.argv.clone(), c.chain)).collect();
        assert_eq!(
            steps,
            [
                (
                    vec!["ar".into(), "cq".into(), o("lib.a")],
                    Some(Step {
                        chain: 0,
                        step: 0,
                        steps: 2
                    })
                ),
                (
                    vec!["ar".into(), "s".into(), o("lib.a")],
                    Some(Step {
                        chain: 0,
                        step: 1,
                        steps: 2
                    })
                ),
            ]
        );
        assert_eq!(found[0].members, [o("a.o")]);
        assert_eq!(found[0].same, [Path::new("a.o")]);
        assert_eq!(found[0].absent, [Path::new("lib.a")]);
        assert!(found[1].same.is_empty(), "{:?}", found[1].same);
        let memo_text = memo(&found, |s| s.to_string(), &out, Path::new("/second"));
        assert!(
            memo_text.contains("k 0 0\n") && memo_text.contains("k 0 1\n"),
            "{memo_text}"
        );
        assert!(memo_text.contains("o /second/lib.a\n"), "{memo_text}");

        // The archive was there when the first step started: it appended to it.
        let mut there = step1(10);
        there.retain(|l| !l.contains(" s 2 "));
        there.insert(3, format!("10 o 0 {}", o("lib.a")));
        let v: Vec<String> = there.into_iter().chain(step2(11)).collect();
        assert!(
            compiles(&trace(&script(&v)), &out).is_empty(),
            "existing archive"
        );
        // Another process read it between the steps.
        let mut between = step1(10);
        between.push(format!("1 o 0 {}", o("lib.a")));
        between.extend(step2(11));
        assert!(
            compiles(&trace(&script(&between)), &out).is_empty(),
            "read between"
        );
        // Another process wrote it after the last step.
        let mut after = both.clone();
        after.push(format!("1 w 0 {}", o("lib.a")));
        assert!(
            compiles(&trace(&script(&after)), &out).is_empty(),
            "written after"
        );
        // The steps overlapped: the second started before the first's last call.
        let mut overlap = step1(10);
        let last = overlap.pop().unwrap();
        overlap.extend(step2(11));
        overlap.push(last);
        assert!(
            compiles(&trace(&script(&overlap)), &out).is_empty(),
            "overlapping"
        );
        // A member the run wrote again after the first step started.
        let mut rewritten = step1(10);
        rewritten.insert(2, format!("1 w 0 {}", o("a.o")));
        rewritten.extend(step2(11));
        assert!(
            compiles(&trace(&script(&rewritten)), &out).is_empty(),
            "member rewritten"
        );
    }

    /// The aliasing library, with real `ar` behind a stand-in that records being run:
    /// the `cc` crate's two steps in order are both taken (the first run's archive put in
    /// place, nothing run, both steps marked); in another order, or with another member,
    /// the archiver runs and a chain begun and not finished is reported.
    #[test]
    fn the_second_run_takes_an_archive_s_steps_in_order_only() {
        let (d, lib) = alias_library();
        let first = d.path().join("first");
        let second = d.path().join("second");
        let bin = d.path().join("bin");
        for dir in [&first, &second, &bin] {
            std::fs::create_dir_all(dir).unwrap();
        }
        for dir in [&first, &second] {
            std::fs::write(dir.join("a.o"), "member a\n").unwrap();
            std::fs::write(dir.join("b.o"), "member b\n").unwrap();
        }
        let ar = |args: &[&str], cwd: &Path| {
            let st = Command::new("ar")
                .args(args)
                .current_dir(cwd)
                .status()
                .unwrap();
            assert!(st.success());
        };
        ar(&["cq", "lib.a", "a.o", "b.o"], &first);
        ar(&["s", "lib.a"], &first);
        let made = std::fs::read(first.join("lib.a")).unwrap();
        // The stand-in: logs, then runs the real archiver.
        let log = d.path().join("ran");
        let real_ar = String::from_utf8(
            Command::new("sh")
                .args(["-c", "command -v ar"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::fs::write(
            bin.join("ar"),
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
                log.display(),
                real_ar.trim()
            ),
        )
        .unwrap();
        std::fs::set_permissions(bin.join("ar"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let step = |args: &[&str], step: usize, same: Vec<PathBuf>, absent: Vec<PathBuf>| Compile {
            cwd: second.display().to_string(),
            argv: args.iter().map(|a| a.to_string()).collect(),
            env: vec![format!("PATH={path}"), format!("PWD={}", second.display())],
            output: first.join("lib.a"),
            same,
            absent,
            chain: Some(Step {
                chain: 0,
                step,
                steps: 2,
            }),
            members: Vec::new(),
        };
        // The first run appended in two batches.
        let chain = appends_as_one(vec![
            step(
                &["ar", "cq", "lib.a", "a.o"],
                0,
                vec!["a.o".into()],
                vec!["lib.a".into()],
            ),
            step(&["ar", "cq", "lib.a", "b.o"], 1, vec!["b.o".into()], vec![]),
            step(&["ar", "s", "lib.a"], 2, vec![], vec![]),
        ]);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].members, ["a.o", "b.o"]);
        let run = |script: &str, tag: &str| -> (String, Option<String>) {
            let memo_path = d.path().join(format!("memo-{tag}"));
            std::fs::write(&memo_path, memo(&chain, |s| s.to_string(), &first, &second)).unwrap();
            let _ = std::fs::remove_file(second.join("lib.a"));
            let _ = std::fs::remove_file(&log);
            let st = Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&second)
                .env_clear()
                .env("PATH", &path)
                .env("LD_PRELOAD", &lib)
                .env("XCACHE_CC_MEMO", &memo_path)
                .status()
                .unwrap();
            assert!(st.success(), "{tag}");
            (
                std::fs::read_to_string(&log).unwrap_or_default(),
                archives_in_part(&chain, &memo_path),
            )
        };
        let (ran, part) = run(
            "ar cq lib.a a.o && ar cq lib.a b.o && ar s lib.a",
            "in-order",
        );
        assert_eq!(ran, "", "both steps taken");
        assert_eq!(part, None);
        assert_eq!(std::fs::read(second.join("lib.a")).unwrap(), made);
        // Out of order: the index first runs (on nothing), then the first step is taken,
        // and the chain is left begun and not finished.
        let (ran, part) = run("ar s lib.a 2>/dev/null; ar cq lib.a a.o b.o", "reversed");
        assert_eq!(ran, "s lib.a\n");
        assert!(part.is_some());
        // The members in other batches: taken all the same.
        let (ran, part) = run("ar cq lib.a a.o b.o && ar s lib.a", "one-batch");
        assert_eq!(ran, "", "both steps taken");
        assert_eq!(part, None);
        assert_eq!(std::fs::read(second.join("lib.a")).unwrap(), made);
        // The members out of order: nothing is taken (the archive is there when the
        // batch with the first member comes).
        let (ran, part) = run(
            "ar cq lib.a b.o && ar cq lib.a a.o && ar s lib.a",
            "swapped",
        );
        assert_eq!(ran, "cq lib.a b.o\ncq lib.a a.o\ns lib.a\n");
        assert_eq!(part, None);
        // A batch taken, the rest never given: the index runs (over no archive), and
        // the chain is left begun and not finished.
        let (ran, part) = run("ar cq lib.a a.o; ar s lib.a 2>/dev/null; true", "cut");
        assert_eq!(ran, "s lib.a\n");
        assert!(part.is_some());
        // The archive already the first run's when the index comes, but the first step
        // was never taken: the index runs.
        let script = format!("cp {} lib.a && ar s lib.a", first.join("lib.a").display());
        let (ran, part) = run(&script, "no-first-step");
        assert_eq!(ran, "s lib.a\n");
        assert_eq!(part, None);
        // A member changed after the first batch was taken: the last batch runs, and the
        // chain is left begun and not finished.
        let (ran, part) = run(
            "ar cq lib.a a.o && echo changed > b.o && ar cq lib.a b.o && ar s lib.a",
            "changed-between",
        );
        assert_eq!(ran, "cq lib.a b.o\ns lib.a\n");
        assert!(part.is_some());
        // Another member in the second run: nothing is taken, the archiver makes it.
        std::fs::write(second.join("b.o"), "member b, changed\n").unwrap();
        let (ran, part) = run("ar cq lib.a a.o b.o && ar s lib.a", "changed");
        assert_eq!(ran, "cq lib.a a.o b.o\ns lib.a\n");
        assert_eq!(part, None);
        assert_ne!(std::fs::read(second.join("lib.a")).unwrap(), made);
    }

    /// A record cut short (its count says more fields) is no compile.
    #[test]
    fn autocfgs_probe_leftovers_are_counted_not_named() {
        let a = [
            "gen.rs",
            "libautocfg_586730a5eb88ba99_0.rmeta",
            "autocfg_586730a5eb88ba99_1.ll",
        ];
        let b = [
            "autocfg_9773048dc12fae19_1.ll",
            "gen.rs",
            "libautocfg_9773048dc12fae19_0.rmeta",
        ];
        assert!(same_names(&a, &b));
        assert!(!same_names(&a, &b[..2]), "as many of them");
        assert!(!same_names(&["gen.rs"], &["other.rs"]));
        for not in [
            "libautocfg_586730a5eb88ba99_0.rlib",
            "autocfg_586730a5eb88ba99_0.rmeta",
            "libautocfg_586730a5eb88ba99_0.ll",
            "libautocfg_586730a5eb88ba9_0.rmeta",
            "libautocfg_586730a5eb88ba99_.rmeta",
            "libautocfg_586730a5eb88ba9z_0.rmeta",
        ] {
            assert!(!is_probe_leftover(not), "{not}");
        }
    }

    #[test]
    fn a_cut_record_is_not_a_compile() {
        assert_eq!(
            super::fields(&fields(&["/ws", "cc", "-c"])).unwrap().len(),
            3
        );
        let cut = fields(&["/ws", "cc", "-c"]).replacen('3', "5", 1);
        assert!(super::fields(&cut).is_none());
    }

    /// The CPU a second run used: its own and its waited-for children's, from the
    /// fields after the command name, whatever that name holds.
    #[test]
    fn cpu_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (build (script) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    150 50 270 30 20 0 1 0 100 1000 200";
        assert_eq!(
            super::cpu_of_stat(stat, 100),
            Some(Duration::from_millis(5000))
        );
        assert_eq!(super::cpu_of_stat("4242 (cut) S 1", 100), None);
        assert_eq!(super::cpu_of_stat(stat, 0), None);
    }

    /// A process that works is seen to use CPU; one that waits is not.
    #[test]
    fn a_working_process_is_seen_to_use_cpu() {
        let mut busy = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 30",
            ])
            .spawn()
            .unwrap();
        let mut idle = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(60);
        let mut used = Duration::ZERO;
        while used < Duration::from_millis(100) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            used = super::cpu_used(busy.id()).unwrap();
        }
        let idle_used = super::cpu_used(idle.id()).unwrap();
        for c in [&mut busy, &mut idle] {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert!(used >= Duration::from_millis(100), "{used:?}");
        assert!(idle_used < Duration::from_millis(100), "{idle_used:?}");
    }
}
