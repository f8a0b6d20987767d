//! The run's searches through PATH ([`PathSearches`]), keyed by what they found
//! rather than by the PATH string.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::scope::Scope;
use crate::observe::walkers::Walkers;
use crate::observe::{Event, Op, Trace};

/// The run's searches through PATH, keyed by what they found rather than by the PATH
/// string (see [`InputKind::Lookup`](crate::key::InputKind::Lookup)):
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
pub(super) struct PathSearches {
    pub(super) names: BTreeSet<String>,
    /// `(pid, image, path)` of the probes the lookups stand for.
    pub(super) probes: std::collections::HashSet<(u32, u32, String)>,
    pub(super) path_whole: bool,
}

impl PathSearches {
    pub(super) fn of(
        trace: &Trace,
        scope: &Scope<'_>,
        proxies: &BTreeSet<(u32, u32)>,
        walkers: &mut Walkers,
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
    pub(super) fn covers(&self, e: &Event) -> bool {
        !self.probes.is_empty() && self.probes.contains(&(e.pid, e.image, e.path.clone()))
    }
}

/// Whether a search of `path` finds programs by absolute paths only: set, with every
/// entry absolute (a relative or empty one finds programs relative to where the search
/// ran).
pub(super) fn path_searchable(path: Option<&str>) -> bool {
    path.is_some_and(|p| p.split(':').all(|d| d.starts_with('/')))
}
