//! From an observed run to the unit's inputs. Main function: [`classify`].
//!
//! Everything the run's processes read is an input — a file's contents, a path probed
//! in vain, a directory's listing, a link's target, a variable's value, a program's
//! executable — except what the key covers otherwise, each exception with its reason:
//! - the compiler's sysroot and the toolchain proxy's home (the compiler identity), and
//!   what the proxy read before it started the real compiler (its choice of toolchain);
//! - `.rlib`, `.rmeta` and `.so` files in the unit's dependency directories (each is
//!   named by its identity in the first-level key or the link's inputs);
//! - the unit's own outputs, and whatever the run itself created or wrote first;
//! - `/proc`, `/sys` and `/dev`, except the CPU description, which becomes a
//!   [`InputKind::HostCpu`] input;
//! - variables that never change a result ([`super::is_ignored_var`]), those the
//!   compiler reads for itself (asked by code in its sysroot; those that change its
//!   output are in the first-level key), and the unit kind's own list.
//!
//! A variable whose value holds a machine root (`CARGO_MANIFEST_DIR`) can be turned
//! into data (`env!("CARGO_MANIFEST_DIR").len()`) that no path remapping reaches: the
//! unit is bound to that root ([`InputKind::Root`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Op, Trace, is_ignored_var};
use crate::key::{Input, InputKind, PathMap, Root, state as st};
use crate::key::{listing_state, path_state};

/// What the run was, for telling its inputs from everything else it touched.
pub struct Scope<'a> {
    pub pm: &'a PathMap,
    /// The environment the run was started with.
    pub env: &'a BTreeMap<String, String>,
    /// Trees the key covers otherwise (the compiler's sysroot, the rustup home).
    pub covered: Vec<PathBuf>,
    /// Directories whose `.rlib`, `.rmeta` and `.so` files are named by identity.
    pub artifact_dirs: Vec<PathBuf>,
    /// The unit's own outputs: a directory and a file-name prefix.
    pub own: Vec<(PathBuf, String)>,
    /// Where the run writes what is stored (a build script's `OUT_DIR`).
    pub out_dir: Option<PathBuf>,
    /// The state of paths below `out_dir` before the run: path and directory-listing
    /// states (see [`before_run`]).
    pub before: HashMap<PathBuf, String>,
    /// Directories where writing is scratch work (temporary directories; a machine
    /// root inside one is not scratch).
    pub scratch: Vec<PathBuf>,
    /// Directories the unit may write in besides `out_dir` (rustc's output directory,
    /// where it keeps its temporary files).
    pub writable: Vec<PathBuf>,
    /// Variables this kind of unit does not key, beyond the common list.
    pub ignored_env: &'a [&'a str],
    /// Variables whose values name a root without binding the unit to it (a build
    /// script's `OUT_DIR`, which it writes into: what it writes is tokenized, or scanned
    /// and bound); an entry ending in `*` is a prefix (`is_unbound`).
    pub unbound_env: &'a [&'a str],
    /// When the run started: an input modified after it may not be what was read.
    pub started: SystemTime,
    /// Variables whose values the unit's first-level key holds already: a run that reads
    /// the environment whole is not keyed on them again.
    pub keyed_env: fn(&str) -> bool,
}

/// What a run read and wrote.
#[derive(Debug, Default)]
pub struct Classified {
    /// Its inputs, normalized (sorted, deduplicated).
    pub inputs: Vec<Input>,
    /// Files below `out_dir` that the run wrote.
    pub written: BTreeSet<PathBuf>,
    /// Directories below `out_dir` that the run made.
    pub made_dirs: BTreeSet<PathBuf>,
    /// Files written outside `out_dir`, the unit's outputs and scratch directories.
    pub wrote_outside: Vec<PathBuf>,
    /// Why the record is incomplete (a process ran unobserved), if it is.
    pub unobserved: Vec<String>,
    /// An input that changed while the run went on.
    pub changed_during: Option<PathBuf>,
    /// The run read the CPU's description: the caller adds a
    /// [`InputKind::HostCpu`] input with what it resolves to.
    pub host_cpu: bool,
    /// The run read its environment whole: what did (an object and its function, or
    /// `/proc/self/environ`). Every variable it could see is then among the inputs.
    pub env_whole: Option<String>,
    /// The `cc` crate copied the environment (`super::cc_env`): the variables its code
    /// may consult are among the inputs.
    pub env_cc: bool,
    /// The roots among the inputs because a C compile may have turned a file's name
    /// into data (`super::file_macros`): each root's token and why.
    pub file_bound: Vec<(String, String)>,
}

/// How a path was first met and what was asked of it.
#[derive(Default)]
struct Seen {
    /// The run made it itself before anything asked about it.
    made: bool,
    /// The run created it at some point (after asking about it, perhaps).
    wrote: bool,
    read: bool,
    asked: bool,
    listed: bool,
    link: bool,
    canonical: bool,
}

/// The states of everything below `out_dir` before a run: each path's state (contents
/// of files) and, for directories, their listing (key `<dir>/`).
pub fn before_run(out_dir: &Path) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    let mut stack = vec![out_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        out.insert(dir.join(""), listing_state(&dir));
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.insert(p.clone(), path_state(&p, true));
        }
    }
    out
}

/// The run's inputs, outputs and escapes.
pub fn classify(trace: &Trace, scope: &Scope<'_>) -> Classified {
    let mut c = Classified {
        unobserved: trace.escapes().into_iter().map(str::to_string).collect(),
        ..Classified::default()
    };
    // Programs of a process that started the compiler from the covered trees (the
    // rustup proxy): what they read chose the toolchain.
    let mut proxies: BTreeSet<(u32, u32)> = BTreeSet::new();
    for e in &trace.events {
        if e.op == Op::Exec && scope.is_covered(Path::new(&e.path)) {
            proxies.insert((e.pid, e.image));
        }
    }
    let mut walkers = super::walkers::Walkers::default();
    // The `cc` crate's copy of the environment is keyed on what cc consults, with PATH
    // keyed by what its searches found: only where those searches went through the PATH
    // the run started with (no process changed it, every entry absolute).
    let cc_eligible = super::cc_env::CcSnapshot::covers_target(scope.env)
        && path_searchable(scope.env.get("PATH").map(String::as_str))
        && !trace
            .events
            .iter()
            .any(|e| e.op == Op::EnvChange && (e.path == "PATH" || e.path == "*"));
    let searches = PathSearches::of(trace, scope, &proxies, &mut walkers, cc_eligible);
    // Keyed by the path's text as `Path` compares it ([`normal_path`]): a C run has tens
    // of thousands of events, and comparing `Path`s component by component was most of
    // the time spent here.
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut made_dirs: BTreeSet<String> = BTreeSet::new();
    let mut vars: BTreeSet<String> = BTreeSet::new();
    if searches.path_whole {
        vars.insert("PATH".to_string());
    }
    let mut host_cpu = false;
    for e in &trace.events {
        if proxies.contains(&(e.pid, e.image)) && e.op != Op::Exec {
            continue;
        }
        match e.op {
            Op::Start
            | Op::Escape
            | Op::Lookup
            | Op::PathVar
            | Op::EnvChange
            | Op::Args
            | Op::EnvList => continue,
            Op::Stat if searches.covers(e) => continue,
            // The compiler's own walks (to start the linker with its environment) are
            // its business, like the variables it reads.
            Op::EnvAll => {
                let what = e.caller.as_deref();
                // Covered code's walks, and walks that only build a child's environment,
                // read nothing; the `cc` crate's copy reads what its code consults.
                let read = !scope.is_covered(Path::new(&e.path))
                    && !what.is_some_and(|w| walkers.builds_child_env(&e.path, w));
                if read && cc_eligible && what.is_some_and(|w| walkers.cc_snapshot(&e.path, w)) {
                    c.env_cc = true;
                } else if read {
                    c.env_whole
                        .get_or_insert_with(|| match e.caller.as_deref() {
                            Some(what) if what != "?" => {
                                let what = what.split_once(" @").map_or(what, |(s, _)| s);
                                format!("{} ({what})", e.path)
                            }
                            _ => e.path.clone(),
                        });
                }
                continue;
            }
            Op::Env => {
                let own = e
                    .caller
                    .as_deref()
                    .is_some_and(|obj| scope.is_covered(Path::new(obj)));
                if !own && !is_ignored_var(&e.path) && !scope.ignored_env.contains(&e.path.as_str())
                {
                    vars.insert(e.path.clone());
                }
                continue;
            }
            _ => {}
        }
        if !e.path.starts_with('/') {
            continue;
        }
        let text = normal_path(&e.path);
        let path = Path::new(text.as_ref());
        if is_environ_file(path) && e.op == Op::Read && e.err == 0 {
            c.env_whole.get_or_insert_with(|| e.path.clone());
            continue;
        }
        if let Some(special) = special(path) {
            host_cpu |= special;
            continue;
        }
        // Below a directory the run made: one of the path's ancestors (its proper
        // prefixes, component by component, as `starts_with` compares) is such a one.
        // Looked up, not compared with each: a C build makes a directory per object.
        if below_any(&text, &made_dirs) {
            // Its own scratch, or an output.
            if e.op == Op::Write && e.err == 0 && scope.in_out_dir(path) {
                c.written.insert(path.to_path_buf());
            }
            continue;
        }
        let entry = seen.entry(text.to_string()).or_default();
        let first = !(entry.made
            || entry.read
            || entry.asked
            || entry.listed
            || entry.link
            || entry.canonical);
        let gone = e.err == libc_enoent() || e.err == libc_enotdir();
        match e.op {
            Op::Write | Op::Mkdir if e.err == 0 => {
                entry.wrote = true;
                if first {
                    entry.made = true;
                }
                if e.op == Op::Mkdir {
                    made_dirs.insert(text.to_string());
                    if scope.in_out_dir(path) {
                        c.made_dirs.insert(path.to_path_buf());
                    } else {
                        c.note_write(path, scope);
                    }
                } else {
                    c.note_write(path, scope);
                }
            }
            // A failed create: `EEXIST` says the path was there, `ENOENT` that its
            // directory was not.
            Op::Write | Op::Mkdir => {
                if e.err == libc_eexist() || gone {
                    entry.asked = true;
                }
            }
            Op::Read | Op::Exec | Op::Spawn => {
                if e.err == 0 {
                    entry.read = true;
                } else {
                    entry.asked = true;
                }
            }
            Op::Stat => entry.asked = true,
            Op::List => {
                if e.err == 0 {
                    entry.listed = true;
                } else {
                    entry.asked = true;
                }
            }
            Op::Readlink => entry.link = true,
            Op::Realpath => entry.canonical = true,
            Op::Start
            | Op::Escape
            | Op::Env
            | Op::EnvAll
            | Op::Lookup
            | Op::PathVar
            | Op::EnvChange
            | Op::Args
            | Op::EnvList => {}
        }
    }

    let pm = scope.pm;
    let mut inputs: Vec<Input> = Vec::new();
    for (text, s) in &seen {
        let path = Path::new(text);
        // A dependency directory is where rustc looks for crates the `--extern`s do
        // not name; what it finds there is covered by their identities.
        let dependency_dir = scope.artifact_dirs.iter().any(|d| d == path);
        if s.made
            || dependency_dir
            || scope.is_covered(path)
            || scope.is_own(path)
            || scope.is_artifact(path)
        {
            continue;
        }
        let name = pm.normalize_path(path);
        let before = scope.in_out_dir(path);
        let state_of = |contents: bool| -> String {
            if before {
                match scope.before.get(path) {
                    Some(s) if contents || !s.starts_with("file:") => s.clone(),
                    Some(_) => st::FILE.to_string(),
                    None => st::ABSENT.to_string(),
                }
            } else {
                path_state(path, contents)
            }
        };
        // A name in a temporary directory that the run created and that is gone: a
        // scratch file it asked about first (`tmpnam`), which tells nothing. A name it
        // only asked about is an input like any other (git's walk up from a checkout
        // in `/tmp` asks for `/tmp/.git`).
        if s.wrote && scope.is_scratch(path) && path_state(path, false) == st::ABSENT {
            continue;
        }
        if s.read || s.asked {
            let state = state_of(s.read);
            if s.read
                && !before
                && state.starts_with("file:")
                && std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m > scope.started)
            {
                c.changed_during.get_or_insert(path.to_path_buf());
            }
            inputs.push(Input::new(InputKind::Path, name.clone(), state));
        }
        if s.listed {
            let state = if before {
                scope
                    .before
                    .get(&path.join(""))
                    .cloned()
                    .unwrap_or_else(|| st::ABSENT.to_string())
            } else {
                listing_state(path)
            };
            inputs.push(Input::new(InputKind::Listing, name.clone(), state));
        }
        // Below the out dir, a path that was not there before the run was absent for
        // whatever asked first; one that was is taken as it is now.
        let absent_before = before && !scope.before.contains_key(path);
        if s.link {
            let state = if absent_before {
                st::ABSENT.to_string()
            } else {
                crate::key::link_state(path, pm)
            };
            inputs.push(Input::new(InputKind::Link, name.clone(), state));
        }
        if s.canonical {
            let state = if absent_before {
                st::ABSENT.to_string()
            } else {
                crate::key::canonical_state(path, pm)
            };
            inputs.push(Input::new(InputKind::Canonical, name, state));
        }
    }
    for name in &vars {
        let value = scope.env.get(name).map(String::as_str);
        inputs.extend(var_inputs(name, value, pm, scope.unbound_env));
    }
    let path_var = scope.env.get("PATH").map(String::as_str);
    for name in &searches.names {
        let state = crate::key::lookup_state(name, path_var);
        inputs.push(Input::new(InputKind::Lookup, name.clone(), state));
    }
    let reach = if c.env_whole.is_some() {
        Some(super::Reach::All)
    } else {
        c.env_cc.then_some(super::Reach::CcSnapshot)
    };
    if let Some(reach) = reach {
        inputs.extend(super::whole_env_inputs(
            scope.env,
            pm,
            scope.unbound_env,
            scope.keyed_env,
            reach,
        ));
    }
    // A directory the run made outside its place and removed before it ended leaves
    // nothing behind (rustc's `rmeta…` directory when a probe writes its metadata to
    // stdout, a temporary directory made in the working directory): scratch of its own,
    // not a write. `mkdir` succeeding says it was not there before; what was moved or
    // linked out of it is a write of its own.
    c.wrote_outside.retain(|p| {
        !made_dirs
            .iter()
            .any(|d| p.starts_with(d) && is_gone(Path::new(d)))
    });
    c.host_cpu = host_cpu;
    // Walks up from a root, named from the root.
    super::above::relate(&mut inputs, pm);
    // A C compile may turn a file's name, root and all, into data no output scan finds.
    for b in super::file_macros::bound_roots(trace, scope) {
        c.file_bound.push((b.input.name.clone(), b.why));
        inputs.push(b.input);
    }
    crate::key::normalize_inputs(&mut inputs);
    c.inputs = inputs;
    c
}

/// The run's searches through PATH, keyed by what they found rather than by the PATH
/// string (see [`InputKind::Lookup`]):
/// - each lookup the observer made for `execvp`, `posix_spawnp` and the like (`L`
///   records), when it searched the PATH the run was started with;
/// - each name a C compiler driver (gcc, clang, collect2, …) probed in PATH's
///   directories after it read PATH by name, as they do to find themselves and the
///   assembler: they read PATH for nothing else;
/// - each name a build script probed in PATH's directories after the `cc` crate read
///   PATH to look for a program (`walkers::Purpose::PathSearch`): the probes stay
///   inputs as they are, the name adds what it resolves to;
///
/// and the drivers' and lookups' probes in PATH's directories, which the lookups stand
/// for. Anything else that reads PATH (a build script, a shell, a changed PATH, one
/// with a relative entry) keys PATH whole.
#[derive(Default)]
struct PathSearches {
    names: BTreeSet<String>,
    /// `(pid, image, path)` of the probes the lookups stand for.
    probes: std::collections::HashSet<(u32, u32, String)>,
    path_whole: bool,
}

impl PathSearches {
    fn of(
        trace: &Trace,
        scope: &Scope<'_>,
        proxies: &BTreeSet<(u32, u32)>,
        walkers: &mut super::walkers::Walkers,
        cc_eligible: bool,
    ) -> PathSearches {
        let mut s = PathSearches::default();
        let run_path = scope.env.get("PATH").map(String::as_str);
        let dirs: Vec<&str> = run_path.map(|p| p.split(':').collect()).unwrap_or_default();
        let searchable = path_searchable(run_path);
        // The directories in front of the run's PATH in a PATH searched, when they lie in
        // covered code (rustc puts its own tool directories in front of PATH for the
        // linker); `None` for a PATH that is neither the run's nor so made from it.
        let front = |value: &str| -> Option<Vec<String>> {
            let run = run_path.filter(|_| searchable)?;
            if value == run {
                return Some(Vec::new());
            }
            let front = value.strip_suffix(run)?.strip_suffix(':')?;
            let front: Vec<String> = front.split(':').map(str::to_string).collect();
            front
                .iter()
                .all(|d| d.starts_with('/') && scope.is_covered(Path::new(d)))
                .then_some(front)
        };
        let mut drivers: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
        let mut searchers: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
        for e in &trace.events {
            if proxies.contains(&(e.pid, e.image)) {
                continue;
            }
            let own = || {
                e.caller
                    .as_deref()
                    .is_some_and(|obj| scope.is_covered(Path::new(obj)))
            };
            match e.op {
                Op::Lookup => match e.caller.as_deref().and_then(front) {
                    Some(front) => {
                        for d in front.iter().map(String::as_str).chain(dirs.iter().copied()) {
                            s.probes.insert((e.pid, e.image, format!("{d}/{}", e.path)));
                        }
                        // Found in covered code's own directories: that code's business.
                        let covered_here = !front.is_empty()
                            && !crate::key::lookup_state(&e.path, Some(&front.join(":")))
                                .ends_with(crate::key::state::ABSENT);
                        if !covered_here {
                            s.names.insert(e.path.clone());
                        }
                    }
                    None => s.path_whole = true,
                },
                Op::PathVar if own() => {}
                Op::PathVar if e.caller.as_deref().is_some_and(|o| scope.is_c_driver(o)) => {
                    match front(&e.path) {
                        Some(front) => {
                            drivers.insert((e.pid, e.image), front);
                        }
                        None => s.path_whole = true,
                    }
                }
                Op::PathVar
                    if e.chain.as_deref().is_some_and(|chain| {
                        walkers.searches_path(e.caller.as_deref().unwrap_or("?"), chain)
                    }) =>
                {
                    match front(&e.path) {
                        Some(front) => {
                            searchers.insert((e.pid, e.image), front);
                        }
                        None => s.path_whole = true,
                    }
                }
                Op::PathVar => s.path_whole = true,
                // The `cc` crate's copy: its searches of PATH (`which`, the GNU prefix
                // probe) are probes in PATH's directories, keyed by what each name
                // resolves to, like those of the functions above.
                Op::EnvAll
                    if cc_eligible
                        && e.caller
                            .as_deref()
                            .is_some_and(|what| walkers.cc_snapshot(&e.path, what)) =>
                {
                    searchers.insert((e.pid, e.image), Vec::new());
                }
                _ => {}
            }
        }
        for e in &trace.events {
            if e.op != Op::Stat {
                continue;
            }
            let p = Path::new(&e.path);
            let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str()))
            else {
                continue;
            };
            let in_path = dirs.iter().any(|d| Path::new(d) == dir);
            if let Some(front) = drivers.get(&(e.pid, e.image)) {
                if in_path {
                    s.names.insert(name.to_string());
                    s.probes.insert((e.pid, e.image, e.path.clone()));
                } else if front.iter().any(|d| Path::new(d) == dir) {
                    // A probe in covered code's directories is that code's business.
                    s.probes.insert((e.pid, e.image, e.path.clone()));
                }
            } else if searchers.contains_key(&(e.pid, e.image)) && in_path {
                // A build script's probe stays an input as it is (the script may have
                // made it for itself); the name is keyed by what it resolves to.
                s.names.insert(name.to_string());
            }
        }
        s
    }

    /// A probe one of the lookups stands for.
    fn covers(&self, e: &super::Event) -> bool {
        !self.probes.is_empty() && self.probes.contains(&(e.pid, e.image, e.path.clone()))
    }
}

/// The programs of a C toolchain that read PATH only to find programs: compiler
/// drivers, their linker and assembler steps, by file name (`x86_64-linux-gnu-gcc-12`
/// is `gcc`); and the shared BFD library (`libbfd-2.40-system.so`), from which binutils'
/// `ar`, `nm` and `objcopy` look for themselves through PATH (libiberty's
/// `make_relative_prefix`) to find their plugin directory.
const C_DRIVERS: &[&str] = &[
    "gcc",
    "g++",
    "cc",
    "c++",
    "cpp",
    "clang",
    "clang++",
    "collect2",
    "lto-wrapper",
    "ld",
    "ld.bfd",
    "ld.gold",
    "ld.lld",
    "as",
];

/// Whether `name` (a file name) is one of [`C_DRIVERS`], maybe with a target prefix and
/// a version suffix.
fn is_c_driver_name(name: &str) -> bool {
    if name.starts_with("libbfd-") || name.starts_with("libbfd.so") {
        return true;
    }
    let base = match name.rsplit_once('-') {
        Some((b, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') => b,
        _ => name,
    };
    C_DRIVERS
        .iter()
        .any(|d| base == *d || base.ends_with(&format!("-{d}")))
}

/// Whether a search of `path` finds programs by absolute paths only: set, with every
/// entry absolute (a relative or empty one finds programs relative to where the search
/// ran).
fn path_searchable(path: Option<&str>) -> bool {
    path.is_some_and(|p| p.split(':').all(|d| d.starts_with('/')))
}

/// Whether `name` is one of `unbound` (names, or prefixes ending in `*`).
pub fn is_unbound(unbound: &[&str], name: &str) -> bool {
    unbound.iter().any(|u| match u.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *u == name,
    })
}

/// The inputs a variable read (or declared) makes: [`env_inputs`], except that one of
/// `unbound` names a place and binds nothing (its normalized value only).
pub fn var_inputs(name: &str, value: Option<&str>, pm: &PathMap, unbound: &[&str]) -> Vec<Input> {
    if is_unbound(unbound, name) {
        vec![Input::env(
            name,
            value.map(|v| pm.normalize_text(v)).as_deref(),
        )]
    } else {
        env_inputs(name, value, pm)
    }
}

/// The inputs a variable read makes: its normalized value, and the roots that value
/// names (which bind the unit to their real paths).
pub fn env_inputs(name: &str, value: Option<&str>, pm: &PathMap) -> Vec<Input> {
    let mut out = vec![Input::env(
        name,
        value.map(|v| pm.normalize_text(v)).as_deref(),
    )];
    if let Some(v) = value {
        out.extend(bound_roots(v, pm));
    }
    out
}

/// The roots `text` names, as [`InputKind::Root`] inputs (each occurrence counted for
/// the most specific root, as normalization replaces it).
pub fn bound_roots(text: &str, pm: &PathMap) -> Vec<Input> {
    let normalized = pm.normalize_text(text);
    pm.roots()
        .iter()
        .filter(|r: &&Root| normalized.contains(r.kind.token()))
        .map(|r| Input::new(InputKind::Root, r.kind.token(), r.real.clone()))
        .collect()
}

/// `p` (absolute) as `Path` compares it: without empty components, `.` components and a
/// separator at the end. Two texts name the same `Path` exactly when they are the same
/// here, so a map keyed by it compares bytes where a map of `PathBuf`s parses components.
fn normal_path(p: &str) -> std::borrow::Cow<'_, str> {
    let plain = !p.contains("//")
        && !p.contains("/./")
        && !p.ends_with("/.")
        && (p.len() == 1 || !p.ends_with('/'));
    if plain {
        std::borrow::Cow::Borrowed(p)
    } else {
        let normal: PathBuf = Path::new(p).components().collect();
        std::borrow::Cow::Owned(normal.to_string_lossy().into_owned())
    }
}

/// Whether one of the proper ancestors of `path` (a [`normal_path`]) is in `dirs`, as
/// `Path::ancestors` gives them.
fn below_any(path: &str, dirs: &BTreeSet<String>) -> bool {
    if dirs.is_empty() {
        return false;
    }
    let mut s = path;
    while s.len() > 1
        && let Some(i) = s.rfind('/')
    {
        s = if i == 0 { "/" } else { &s[..i] };
        if dirs.contains(s) {
            return true;
        }
    }
    false
}

/// Whether nothing is at `p` now.
fn is_gone(p: &Path) -> bool {
    matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A process's environment as the kernel keeps it (`/proc/self/environ`, or another
/// process's).
fn is_environ_file(p: &Path) -> bool {
    p.starts_with("/proc") && p.file_name().is_some_and(|n| n == "environ")
}

/// `Some(true)` for the CPU's description (`/proc/cpuinfo`, the CPU's directories in
/// `/sys`, a process's auxiliary vector, which holds its capabilities), `Some(false)` for the other kernel and
/// device files, `None` for ordinary paths: those of a file system mounted below `/dev`
/// too (`/dev/shm`, where some CI systems build), whose files are read like any.
pub(crate) fn special(p: &Path) -> Option<bool> {
    // Each answer lies below `/proc`, `/sys` or `/dev`: anything else is told by its
    // first two components (most of a run's paths).
    let mut top = p.components().map(|c| c.as_os_str());
    let (Some(root), Some(first)) = (top.next(), top.next()) else {
        return None;
    };
    if root != "/" || !["proc", "sys", "dev"].iter().any(|d| first == *d) {
        return None;
    }
    let auxv = p.starts_with("/proc") && p.file_name().is_some_and(|n| n == "auxv");
    if p == Path::new("/proc/cpuinfo") || p.starts_with("/sys/devices/system/cpu") || auxv {
        return Some(true);
    }
    if p.starts_with("/proc") || p.starts_with("/sys") {
        return Some(false);
    }
    dev_special(p)
}

/// Below `/dev`: devices, pipes, sockets, the kernel's directories of them and terminals
/// (`/dev/pts`) are not inputs; a regular file is, and a directory on a file system
/// mounted there (its device is not `/dev`'s), or below `/dev/shm`. A path that is not
/// there is an ordinary probe. A symbolic link (`/dev/stdin`, `/dev/fd`) is what it
/// leads to.
fn dev_special(p: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(p).ok()?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return match std::fs::canonicalize(p) {
            Ok(real) if real.starts_with("/dev") => dev_special(&real),
            Ok(real) => special(&real),
            // Dangling, or into a process's descriptors.
            Err(_) => Some(false),
        };
    }
    if kind.is_file() {
        return None;
    }
    if !kind.is_dir() {
        return Some(false); // a device, a pipe, a socket
    }
    let kernels = std::fs::metadata("/dev").map(|m| m.dev()).ok() == Some(meta.dev());
    let terminals = p.starts_with("/dev/pts") || p.starts_with("/dev/mqueue");
    if p.starts_with("/dev/shm") || !(kernels || terminals) {
        None
    } else {
        Some(false)
    }
}

impl Classified {
    /// Why the run cannot be stored, if it cannot, with what made it so (said by
    /// `explain`): a process that ran unobserved, a file written outside the run's
    /// place, an input that changed while it ran.
    pub fn refusal(&self) -> Option<(crate::reason::Uncacheable, String)> {
        use crate::reason::Uncacheable;
        if let Some(why) = self.unobserved.first() {
            return Some((Uncacheable::Unobserved, why.clone()));
        }
        if let Some(p) = &self.changed_during {
            let what = format!("{} changed during the build", p.display());
            return Some((Uncacheable::InputChangedDuringBuild, what));
        }
        if let Some(p) = self.wrote_outside.first() {
            return Some((Uncacheable::WritesOutside, format!("wrote {}", p.display())));
        }
        None
    }

    fn note_write(&mut self, path: &Path, scope: &Scope<'_>) {
        if scope.in_out_dir(path) {
            self.written.insert(path.to_path_buf());
        } else if !scope.is_own(path)
            && !scope.is_scratch(path)
            && !scope.writable.iter().any(|d| path.starts_with(d))
        {
            self.wrote_outside.push(path.to_path_buf());
        }
    }
}

impl Scope<'_> {
    pub(super) fn is_covered(&self, p: &Path) -> bool {
        self.covered.iter().any(|d| p.starts_with(d))
    }

    /// A C compiler driver installed outside the build's roots (not something the
    /// build made or unpacked).
    fn is_c_driver(&self, program: &str) -> bool {
        let p = Path::new(program);
        let in_root = self.pm.roots().iter().any(|r| p.starts_with(&r.real));
        !in_root
            && p.is_absolute()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_c_driver_name)
    }

    /// A temporary directory, but no machine root (a checkout may live in `/tmp`).
    fn is_scratch(&self, p: &Path) -> bool {
        let in_root = self.pm.roots().iter().any(|r| p.starts_with(&r.real));
        !in_root && self.scratch.iter().any(|d| p.starts_with(d))
    }

    fn in_out_dir(&self, p: &Path) -> bool {
        self.out_dir
            .as_ref()
            .is_some_and(|d| p.starts_with(d) && p != d)
    }

    fn is_own(&self, p: &Path) -> bool {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            return false;
        };
        self.own
            .iter()
            .any(|(d, prefix)| dir == d && name.starts_with(prefix.as_str()))
    }

    fn is_artifact(&self, p: &Path) -> bool {
        let artifact = matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("rlib" | "rmeta" | "so")
        );
        artifact
            && p.parent()
                .is_some_and(|d| self.artifact_dirs.iter().any(|a| a == d))
    }
}

const fn libc_enoent() -> i64 {
    2
}
const fn libc_enotdir() -> i64 {
    20
}
const fn libc_eexist() -> i64 {
    17
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts the maps are keyed by name the same path exactly when `Path` says so,
    /// and the made directories found above a path are `Path::ancestors`' own.
    #[test]
    fn paths_are_keyed_and_walked_up_as_path_compares_them() {
        let texts = [
            "/",
            "/.",
            "//",
            "/a",
            "/a/",
            "/a//",
            "/a/.",
            "/a/./",
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/b/",
            "/a/b/.",
            "/a/../b",
            "/a/..",
            "/a/b/..",
            "/ab",
            "/a.b",
            "/a/.b",
            "/a/b./c",
            "/a//./b//",
            "/tmp/x/y.o",
            "/tmp/x",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(
                    normal_path(a) == normal_path(b),
                    Path::new(a) == Path::new(b),
                    "{a} and {b}"
                );
            }
        }
        for dirs in [
            vec!["/"],
            vec!["/a"],
            vec!["/a/b", "/tmp/x"],
            vec!["/a/.."],
            vec![],
        ] {
            let set: BTreeSet<String> = dirs.iter().map(|d| normal_path(d).into_owned()).collect();
            for p in texts {
                let by_path = Path::new(p)
                    .ancestors()
                    .skip(1)
                    .any(|a| dirs.iter().any(|d| Path::new(d) == a));
                assert_eq!(
                    below_any(&normal_path(p), &set),
                    by_path,
                    "{p} below {dirs:?}"
                );
            }
        }
    }

    #[test]
    fn reads_probes_and_exceptions() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let target = ws.join("target");
        let sysroot = d.path().join("sysroot");
        std::fs::create_dir_all(ws.join("data")).unwrap();
        std::fs::create_dir_all(target.join("debug/deps")).unwrap();
        std::fs::write(ws.join("data/x.txt"), "hello").unwrap();
        let pm = PathMap::new(&ws, Some(&target), None);
        let env: BTreeMap<String, String> = [
            ("MAC_FLAVOR".to_string(), "sweet".to_string()),
            (
                "CARGO_MANIFEST_DIR".to_string(),
                ws.to_string_lossy().into_owned(),
            ),
        ]
        .into();
        let w = ws.display();
        let t = target.display();
        let s = sysroot.display();
        let text = format!(
            "7 I 6 {s}/bin/rustc\n\
             7 o 0 {s}/lib/libstd.rlib\n\
             7 o 0 {w}/data/x.txt\n\
             7 s 2 {w}/src/foo.rs\n\
             7 s 2 {t}/debug/deps/app-1\n\
             7 o 0 {t}/debug/deps/libmac-1.so\n\
             7 m 0 {t}/debug/deps/rustcAbc\n\
             7 w 0 {t}/debug/deps/rustcAbc/symbols.o\n\
             7 o 0 {t}/debug/deps/rustcAbc/symbols.o\n\
             7 w 0 {t}/debug/deps/app-1.d\n\
             7 o 0 /proc/self/statm\n\
             7 o 0 /proc/cpuinfo\n\
             7 e 1 RUSTC_LOG\t{s}/lib/librustc_driver.so\n\
             7 e 0 MAC_FLAVOR\t{t}/debug/deps/libmac-1.so\n\
             7 e 0 CARGO_MANIFEST_DIR\t{t}/debug/deps/libmac-1.so\n\
             7 e 0 CARGO_MAKEFLAGS\t{s}/lib/librustc_driver.so\n\
             8 X 0 /bin/static: statically linked program\n"
        );
        let trace = Trace::parse(&text, 7);
        let scope = Scope {
            pm: &pm,
            env: &env,
            covered: vec![sysroot.clone()],
            artifact_dirs: vec![target.join("debug/deps")],
            own: vec![(target.join("debug/deps"), "app-1".into())],
            out_dir: None,
            before: HashMap::new(),
            scratch: vec![],
            // rustc makes its temporary directories beside its outputs.
            writable: vec![target.join("debug/deps")],
            ignored_env: &[],
            unbound_env: &[],
            started: SystemTime::now(),
            keyed_env: |_| false,
        };
        let c = classify(&trace, &scope);
        let got: Vec<String> = c
            .inputs
            .iter()
            .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
            .collect();
        let digest = crate::key::hash_file(&ws.join("data/x.txt")).unwrap();
        assert_eq!(
            got,
            [
                format!("path @@xcache:ws@@/data/x.txt file:{digest}"),
                "path @@xcache:ws@@/src/foo.rs absent".to_string(),
                "env CARGO_MANIFEST_DIR =@@xcache:ws@@".to_string(),
                "env MAC_FLAVOR =sweet".to_string(),
                format!("root @@xcache:ws@@ {w}"),
            ]
        );
        assert!(c.host_cpu);
        assert_eq!(c.unobserved, ["/bin/static: statically linked program"]);
        assert!(c.wrote_outside.is_empty(), "{:?}", c.wrote_outside);
    }

    #[test]
    fn c_drivers_by_file_name() {
        for n in [
            "gcc",
            "x86_64-linux-gnu-gcc-12",
            "clang-16",
            "collect2",
            "libbfd-2.40-system.so",
            "ld.bfd",
            "c++",
        ] {
            assert!(is_c_driver_name(n), "{n}");
        }
        for n in [
            "python3",
            "gcc-ar",
            "build-script-build",
            "make",
            "sh",
            "cc1",
        ] {
            assert!(!is_c_driver_name(n), "{n}");
        }
    }

    /// A program found through PATH is keyed by what was found, not by PATH; the places
    /// looked in vain are not inputs of their own. A changed PATH keys PATH whole.
    #[test]
    fn searches_through_path_are_keyed_by_what_they_find() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let bin = d.path().join("bin");
        let other = d.path().join("other");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\necho one\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pm = PathMap::new(&ws, None, None);
        let path = format!("{}:{}", other.display(), bin.display());
        let env: BTreeMap<String, String> = [("PATH".to_string(), path.clone())].into();
        let scope = |env| Scope {
            pm: &pm,
            env,
            covered: vec![],
            artifact_dirs: vec![],
            own: vec![],
            out_dir: None,
            before: HashMap::new(),
            scratch: vec![],
            writable: vec![],
            ignored_env: &[],
            unbound_env: &["PATH"],
            started: SystemTime::now(),
            keyed_env: |_| false,
        };
        let (o, t) = (other.display(), tool.display());
        let text = format!(
            "7 I 6 /bin/script\n\
             7 s 2 {o}/tool\n\
             7 L 0 tool\t{path}\n\
             7 p 0 {t}\n\
             7 s 2 {o}/nothing\n\
             7 s 2 {b}/nothing\n\
             7 L 2 nothing\t{path}\n",
            b = bin.display()
        );
        let c = classify(&Trace::parse(&text, 7), &scope(&env));
        let got: Vec<String> = c
            .inputs
            .iter()
            .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
            .collect();
        let digest = crate::key::hash_file(&tool).unwrap();
        assert_eq!(
            got,
            [
                format!("path {t} file:{digest}"),
                "lookup nothing absent".to_string(),
                format!("lookup tool file:{digest}"),
            ]
        );
        // The same search through a PATH the run changed: PATH is keyed whole.
        let changed = text.replace(&format!("\t{path}"), &format!("\t/x:{path}"));
        let c = classify(&Trace::parse(&changed, 7), &scope(&env));
        assert!(
            c.inputs
                .iter()
                .any(|i| i.kind == InputKind::Env && i.name == "PATH"),
            "{:?}",
            c.inputs
        );
        assert!(!c.inputs.iter().any(|i| i.kind == InputKind::Lookup));

        // rustc starts its linker with its own tool directory in front of the run's PATH:
        // what is found through the run's PATH is keyed so; what is found in the covered
        // directory is the compiler's business.
        let sys = d.path().join("sysroot/bin");
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::copy(&tool, sys.join("own")).unwrap();
        let derived = format!("{}:{path}", sys.display());
        let text = format!(
            "7 I 6 /bin/rustc\n\
             7 L 0 tool\t{derived}\n\
             7 L 0 own\t{derived}\n"
        );
        let mut covered = scope(&env);
        covered.covered = vec![d.path().join("sysroot")];
        let c = classify(&Trace::parse(&text, 7), &covered);
        let got: Vec<String> = c
            .inputs
            .iter()
            .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
            .collect();
        assert_eq!(got, [format!("lookup tool file:{digest}")]);
    }

    /// A file system mounted below `/dev` (`/dev/shm`) holds ordinary files: a checkout
    /// or a script's data there is read like any (they were taken for device files, and
    /// a build that read them was keyed on nothing of them).
    #[test]
    fn files_below_dev_shm_are_ordinary() {
        let shm = Path::new("/dev/shm");
        assert!(shm.is_dir(), "this test needs /dev/shm");
        let d = tempfile::tempdir_in(shm).unwrap();
        let file = d.path().join("data.txt");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(special(&file), None);
        assert_eq!(special(d.path()), None);
        assert_eq!(special(&d.path().join("absent.txt")), None);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(special(&link), None);
    }

    #[test]
    fn the_environment_and_the_machine_read_without_a_name() {
        assert_eq!(special(Path::new("/proc/self/auxv")), Some(true));
        assert_eq!(special(Path::new("/proc/1234/auxv")), Some(true));
        assert_eq!(special(Path::new("/proc/self/status")), Some(false));
        // Told component by component, as `starts_with` compares.
        assert_eq!(special(Path::new("//proc/./cpuinfo")), Some(true));
        assert_eq!(
            special(Path::new("/sys/devices/system/cpu/cpu0")),
            Some(true)
        );
        assert_eq!(special(Path::new("/dev/null")), Some(false));
        assert_eq!(special(Path::new("/dev/stdin")), Some(false));
        assert_eq!(special(Path::new("/dev")), Some(false));
        assert_eq!(special(Path::new("/proc")), Some(false));
        assert_eq!(special(Path::new("/procfs/cpuinfo")), None);
        assert_eq!(special(Path::new("/home/proc/cpuinfo")), None);
        assert_eq!(special(Path::new("/")), None);
        assert!(is_environ_file(Path::new("/proc/self/environ")));
        assert!(is_environ_file(Path::new("/proc/77/environ")));
        assert!(!is_environ_file(Path::new("/ws/environ")));
    }
}
