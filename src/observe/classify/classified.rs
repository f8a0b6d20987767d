//! What a run read and wrote ([`Classified`]), and [`classify`], the one pass over a
//! run's record that makes it: each path met, how it was first met, and the input it
//! makes; the variables read; what the run wrote and where.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::kernel_files::{is_environ_file, special};
use super::path_searches::{PathSearches, path_searchable};
use super::path_text::{below_any, normal_path};
use super::scope::Scope;
use super::variables::var_inputs;
use crate::key::{Input, InputKind, state as st};
use crate::key::{listing_state, path_state};
use crate::observe::walkers::Walkers;
use crate::observe::{Op, Reach, Trace, is_ignored_var, whole_env_inputs};

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
    /// The `cc` crate copied the environment (`crate::observe::cc_env`): the variables its code
    /// may consult are among the inputs.
    pub env_cc: bool,
    /// The roots among the inputs because a C compile may have turned a file's name
    /// into data (`crate::observe::file_macros`): each root's token and why.
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
    let mut walkers = Walkers::default();
    // The `cc` crate's copy of the environment is keyed on what cc consults, with PATH
    // keyed by what its searches found: only where those searches went through the PATH
    // the run started with (no process changed it, every entry absolute).
    let cc_eligible = crate::observe::cc_env::CcSnapshot::covers_target(scope.env)
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
        Some(Reach::All)
    } else {
        c.env_cc.then_some(Reach::CcSnapshot)
    };
    if let Some(reach) = reach {
        inputs.extend(whole_env_inputs(
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
    crate::observe::above::relate(&mut inputs, pm);
    // A C compile may turn a file's name, root and all, into data no output scan finds.
    for b in crate::observe::file_macros::roots_in_file_names(trace, scope) {
        c.file_bound.push((b.input.name.clone(), b.why));
        inputs.push(b.input);
    }
    crate::key::normalize_inputs(&mut inputs);
    c.inputs = inputs;
    c
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

/// Whether nothing is at `p` now.
fn is_gone(p: &Path) -> bool {
    matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
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
