//! Who walked the environment, or read PATH. Main functions:
//! [`Walkers::builds_child_env`], [`Walkers::searches_path`].
//!
//! The observer records every walk of `environ` with the chain of calls, inside the
//! walking object, that led to it (`preload.c`, `note_env_walk`). Rust's `Command`
//! walks the whole environment when a program changed the command's variables
//! (`cmd.env("LC_ALL", "C")`, as the `cc` and `pkg-config` crates do for every compiler
//! and tool they start): it copies every variable into the child's environment, changed
//! as asked, and reads none of them itself. The child is observed, and what it reads is
//! keyed. So a walk whose callers include the standard library's capture of a
//! command's environment is no read of the whole environment; any other walk is.
//!
//! Likewise a build script's read of PATH is recorded with its chain of calls: when the
//! `cc` crate reads it to look for a compiler or archiver, the probes it makes in PATH's
//! directories are a search, keyed by what each name resolves to (see
//! `classify::path_searches`).

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSymbol};

/// Why a chain of calls is looked at: which functions it must pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A walk of the environment that only builds a child's: the standard library's
    /// `CommandEnv::capture`, and `Command::capture_env` where it is not inlined.
    ChildEnv,
    /// A read of PATH that only searches it for a program by probing `<dir>/<name>`:
    /// the `cc` crate's `Build::which` and `Build::find_working_gnu_prefix` (every
    /// version up to its environment snapshot, which reads PATH without `getenv`).
    PathSearch,
    /// The `cc` crate's copy of the environment (`super::cc_env`).
    CcSnapshot,
    /// The `cc` function that consults a variable its caller names.
    CcNamedByCaller,
}

impl Purpose {
    /// The functions (demangled, as `crate::Type>::function`, without the hash; the
    /// standard library's by their tail).
    fn functions(self) -> &'static [&'static str] {
        match self {
            Purpose::ChildEnv => &["::CommandEnv>::capture", "::Command>::capture_env"],
            Purpose::PathSearch => &["cc::Build>::which", "cc::Build>::find_working_gnu_prefix"],
            Purpose::CcSnapshot => &[super::cc_env::CAPTURE],
            Purpose::CcNamedByCaller => &[super::cc_env::NAMED_BY_CALLER],
        }
    }

    /// Every purpose, for the one pass over an object's symbols.
    const ALL: [Purpose; 4] = [
        Purpose::ChildEnv,
        Purpose::PathSearch,
        Purpose::CcSnapshot,
        Purpose::CcNamedByCaller,
    ];

    /// Whether a symbol (legacy or v0 mangling) is one of [`Purpose::functions`].
    #[cfg(test)]
    fn names(self, mangled: &str) -> bool {
        may_name_any(mangled) && function_path(mangled).is_some_and(|path| self.matches(&path))
    }

    /// Whether a function path (as [`function_path`] gives it) is one of
    /// [`Purpose::functions`]. The standard library's are matched by suffix (its module
    /// paths move between releases; no crate of a program can be named `std`), the `cc`
    /// crate's exactly.
    fn matches(self, path: &str) -> bool {
        match self {
            Purpose::ChildEnv => {
                path.starts_with("std::") && self.functions().iter().any(|f| path.ends_with(f))
            }
            _ => self.functions().contains(&path),
        }
    }
}

/// Whether a mangled symbol may be one of any purpose's functions: it spells out the
/// function's own name. Both manglings write a function's name as it is (an ASCII
/// identifier: v0 refers back to paths, types and constants, never to an identifier),
/// so a symbol without any of those names demangles to none of the functions. An
/// object's symbol table has thousands of symbols; demangling each one cost a build
/// script's run more than the rest of its record.
fn may_name_any(mangled: &str) -> bool {
    // The functions' own names, split out once rather than for each symbol.
    static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        Purpose::ALL
            .iter()
            .flat_map(|p| p.functions())
            .filter_map(|f| f.rsplit("::").next())
            .collect()
    });
    NAMES.iter().any(|name| mangled.contains(name))
}

/// A symbol's function as `crate::…::Type>::function`, without the hash: the same
/// path for `<std::…::CommandEnv>::capture` (v0 mangling) and
/// `std::…::CommandEnv::capture` (legacy). `None` for what does not demangle.
fn function_path(mangled: &str) -> Option<String> {
    let name = format!("{:#}", rustc_demangle::try_demangle(mangled).ok()?);
    match name.strip_prefix('<') {
        Some(path) => Some(path.to_string()),
        // Legacy: no angle brackets around the type.
        None => {
            let (ty, f) = name.rsplit_once("::")?;
            Some(format!("{ty}>::{f}"))
        }
    }
}

/// What the walkers need of one object, from one read of it.
#[derive(Default)]
struct ObjectFacts {
    /// The address ranges of the functions of each purpose, from its symbol table
    /// (none when it cannot be read or has none: no chain then passes through them).
    ranges: HashMap<Purpose, Vec<(u64, u64)>>,
    /// Whether its `cc` code is code the model of `super::cc_env` holds for.
    cc_audited: bool,
}

impl ObjectFacts {
    /// Read in parts, never whole: the symbol table through a cache of the ranges the
    /// parser asks for, the rest streamed past the cc audit (a C library's build
    /// script runs a compiler, and both can be tens of MB).
    fn of(object: &Path) -> ObjectFacts {
        let Ok(f) = std::fs::File::open(object) else {
            return ObjectFacts::default();
        };
        let mut ranges: HashMap<Purpose, Vec<(u64, u64)>> = HashMap::new();
        let cache = object::ReadCache::new(f);
        if let Ok(file) = object::File::parse(&cache) {
            let base = file.relative_address_base();
            for s in file.symbols().filter(|s| s.size() > 0) {
                let Some(path) = s
                    .name()
                    .ok()
                    .filter(|n| may_name_any(n))
                    .and_then(function_path)
                else {
                    continue;
                };
                for purpose in Purpose::ALL.into_iter().filter(|p| p.matches(&path)) {
                    let lo = s.address() - base;
                    ranges.entry(purpose).or_default().push((lo, lo + s.size()));
                }
            }
        }
        // The same descriptor, from its start, for the cc audit.
        let mut f = cache.into_inner();
        let named = ranges.contains_key(&Purpose::CcNamedByCaller);
        ObjectFacts {
            cc_audited: std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))
                .is_ok_and(|_| super::cc_env::CcSnapshot::of_reader(f, named)),
            ranges,
        }
    }
}

/// Remembers what it learnt of each object asked about.
#[derive(Default)]
pub struct Walkers {
    objects: HashMap<String, ObjectFacts>,
}

impl Walkers {
    fn facts(&mut self, object: &str) -> &ObjectFacts {
        self.objects
            .entry(object.to_string())
            .or_insert_with(|| ObjectFacts::of(Path::new(object)))
    }

    /// Whether the walk `object` made, recorded as `what` (`sym @ +0x… +0x…`: the
    /// faulting instruction, then the return addresses of its callers in that object,
    /// as offsets from where it was loaded), only built a child's environment.
    pub fn builds_child_env(&mut self, object: &str, what: &str) -> bool {
        let Some((_, chain)) = what.split_once(" @") else {
            return false;
        };
        self.passes_through(object, chain, Purpose::ChildEnv, 1)
    }

    /// Whether the walk `object` made (recorded as for [`Walkers::builds_child_env`]) is
    /// the `cc` crate's copy of the environment, in an executable whose `cc` is one the
    /// model of `super::cc_env` was audited for.
    pub fn cc_snapshot(&mut self, object: &str, what: &str) -> bool {
        let Some((_, chain)) = what.split_once(" @") else {
            return false;
        };
        self.passes_through(object, chain, Purpose::CcSnapshot, 1) && self.facts(object).cc_audited
    }

    /// Whether a read of PATH by `object`, with the return addresses `chain`
    /// (`+0x… +0x…`), was made by a known search for a program ([`Purpose::PathSearch`]).
    pub fn searches_path(&mut self, object: &str, chain: &str) -> bool {
        self.passes_through(object, chain, Purpose::PathSearch, 0)
    }

    /// Whether a return address of `chain`, after the first `skip`, lies in a function of
    /// `purpose`. A chain that does not parse passes through nothing.
    fn passes_through(&mut self, object: &str, chain: &str, purpose: Purpose, skip: usize) -> bool {
        let offsets: Option<Vec<u64>> = chain
            .split_whitespace()
            .map(|f| u64::from_str_radix(f.strip_prefix("+0x")?, 16).ok())
            .collect();
        let Some(offsets) = offsets else {
            return false;
        };
        let Some(ranges) = self.facts(object).ranges.get(&purpose) else {
            return false;
        };
        // Return addresses point just past their call.
        offsets.iter().skip(skip).any(|&ret| {
            let at = ret.wrapping_sub(1);
            ranges.iter().any(|&(lo, hi)| at >= lo && at < hi)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter before demangling drops no symbol of a purpose: over every symbol of
    /// this test program (which starts commands with changed variables, so the standard
    /// library's capture is in it), each one that demangles to a purpose's function
    /// passes it.
    #[test]
    fn no_function_of_a_purpose_is_filtered_out_before_demangling() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let file = object::File::parse(&*exe).unwrap();
        let mut matched = 0;
        let mut total = 0;
        for s in file.symbols() {
            let Ok(name) = s.name() else { continue };
            total += 1;
            let Some(path) = function_path(name) else {
                continue;
            };
            if Purpose::ALL.iter().any(|p| p.matches(&path)) {
                matched += 1;
                assert!(may_name_any(name), "{name}");
            }
        }
        assert!(
            matched > 0,
            "no function of a purpose among {total} symbols"
        );
        assert!(total > 1000);
    }

    #[test]
    fn only_the_standard_librarys_capture_builds_a_child_env() {
        assert!(
            Purpose::ChildEnv
                .names("_ZN3std3sys7process3env10CommandEnv7capture17h0123456789abcdefE")
        );
        assert!(
            Purpose::ChildEnv
                .names("_ZN3std3sys7process4unix6common7Command11capture_env17h0123456789abcdefE")
        );
        assert!(!Purpose::ChildEnv.names("_ZN7mycrate10CommandEnv7capture17h0123456789abcdefE"));
        assert!(!Purpose::ChildEnv.names("_ZN3std3env7vars_os17h0123456789abcdefE"));
        // v0 mangling, as the standard library of Rust 1.95 is built.
        assert!(Purpose::ChildEnv.names(
            "_RNvMs_NtNtNtNtCsjrHSEGnQ3l9_3std3sys7process4unix6commonNtB4_7Command11capture_env"
        ));
        assert!(!Purpose::ChildEnv.names("_RNvNtCsjrHSEGnQ3l9_3std3env7vars_os"));
        assert!(Purpose::PathSearch.names("_ZN2cc5Build5which17h0123456789abcdefE"));
        assert!(
            Purpose::PathSearch.names("_ZN2cc5Build23find_working_gnu_prefix17h0123456789abcdefE")
        );
        assert!(!Purpose::PathSearch.names("_ZN6mycrate5Build5which17h0123456789abcdefE"));
        assert!(!Purpose::PathSearch.names("_ZN2cc5Build6getenv17h0123456789abcdefE"));
        assert!(!Purpose::ChildEnv.names("_ZN2cc5Build5which17h0123456789abcdefE"));
        let mut w = Walkers::default();
        assert!(!w.searches_path("/nonexistent", "+0x10 +0x20"));
        // No chain, or a chain in an object that cannot be read: a read.
        assert!(!w.builds_child_env("/nonexistent", "+0x10"));
        assert!(!w.builds_child_env("/nonexistent", "+0x10 @ +0x10 +0x20"));
    }
}
