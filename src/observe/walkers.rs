//! Who walked the environment. Main function: [`builds_child_env`].
//!
//! The observer records every walk of `environ` with the chain of calls, inside the
//! walking object, that led to it (`preload.c`, `note_env_walk`). Rust's `Command`
//! walks the whole environment when a program changed the command's variables
//! (`cmd.env("LC_ALL", "C")`, as the `cc` and `pkg-config` crates do for every compiler
//! and tool they start): it copies every variable into the child's environment, changed
//! as asked, and reads none of them itself. The child is observed, and what it reads is
//! keyed. So a walk whose callers include the standard library's capture of a
//! command's environment is no read of the whole environment; any other walk is.

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSymbol};

/// The standard library's functions that walk the environment only to build a child's
/// (demangled, without the crate's hash): `CommandEnv::capture`, and
/// `Command::capture_env` where it is not inlined.
const CHILD_ENV_BUILDERS: &[&str] = &["::CommandEnv>::capture", "::Command>::capture_env"];

/// Whether a symbol (legacy or v0 mangling) is one of [`CHILD_ENV_BUILDERS`] of the
/// standard library (a crate of the program cannot be named `std`).
fn is_child_env_builder(mangled: &str) -> bool {
    let Ok(name) = rustc_demangle::try_demangle(mangled) else {
        return false;
    };
    // `<std::sys::process::env::CommandEnv>::capture` (v0) or
    // `std::sys::process::env::CommandEnv::capture` (legacy), the same path either way.
    let name = format!("{name:#}");
    let path = name.strip_prefix('<').unwrap_or(&name);
    let path = if path.len() == name.len() {
        // Legacy: no angle brackets around the type.
        match path.rsplit_once("::") {
            Some((ty, f)) => format!("{ty}>::{f}"),
            None => return false,
        }
    } else {
        path.to_string()
    };
    path.starts_with("std::") && CHILD_ENV_BUILDERS.iter().any(|b| path.ends_with(b))
}

/// The address ranges of [`CHILD_ENV_BUILDERS`] in an object, from its symbol table
/// (empty when it cannot be read or has none: every walk then counts).
fn builder_ranges(object: &Path) -> Vec<(u64, u64)> {
    let Ok(data) = std::fs::read(object) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Vec::new();
    };
    let base = file.relative_address_base();
    file.symbols()
        .filter(|s| s.size() > 0 && s.name().is_ok_and(is_child_env_builder))
        .map(|s| (s.address() - base, s.address() - base + s.size()))
        .collect()
}

/// Remembers the ranges of each object asked about.
#[derive(Default)]
pub struct Walkers {
    ranges: HashMap<String, Vec<(u64, u64)>>,
}

impl Walkers {
    /// Whether the walk `object` made, recorded as `what` (`sym @ +0x… +0x…`: the
    /// faulting instruction, then the return addresses of its callers in that object,
    /// as offsets from where it was loaded), only built a child's environment.
    pub fn builds_child_env(&mut self, object: &str, what: &str) -> bool {
        let Some((_, chain)) = what.split_once(" @") else {
            return false;
        };
        let offsets: Option<Vec<u64>> = chain
            .split_whitespace()
            .map(|f| u64::from_str_radix(f.strip_prefix("+0x")?, 16).ok())
            .collect();
        let Some(offsets) = offsets else {
            return false;
        };
        let ranges = self
            .ranges
            .entry(object.to_string())
            .or_insert_with(|| builder_ranges(Path::new(object)));
        // The callers: return addresses, which point just past their call.
        offsets.iter().skip(1).any(|&ret| {
            let at = ret.wrapping_sub(1);
            ranges.iter().any(|&(lo, hi)| at >= lo && at < hi)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_standard_librarys_capture_builds_a_child_env() {
        assert!(is_child_env_builder(
            "_ZN3std3sys7process3env10CommandEnv7capture17h0123456789abcdefE"
        ));
        assert!(is_child_env_builder(
            "_ZN3std3sys7process4unix6common7Command11capture_env17h0123456789abcdefE"
        ));
        assert!(!is_child_env_builder(
            "_ZN7mycrate10CommandEnv7capture17h0123456789abcdefE"
        ));
        assert!(!is_child_env_builder(
            "_ZN3std3env7vars_os17h0123456789abcdefE"
        ));
        // v0 mangling, as the standard library of Rust 1.95 is built.
        assert!(is_child_env_builder(
            "_RNvMs_NtNtNtNtCsjrHSEGnQ3l9_3std3sys7process4unix6commonNtB4_7Command11capture_env"
        ));
        assert!(!is_child_env_builder(
            "_RNvNtCsjrHSEGnQ3l9_3std3env7vars_os"
        ));
        let mut w = Walkers::default();
        // No chain, or a chain in an object that cannot be read: a read.
        assert!(!w.builds_child_env("/nonexistent", "+0x10"));
        assert!(!w.builds_child_env("/nonexistent", "+0x10 @ +0x10 +0x20"));
    }
}
