//! What a run was, for telling its inputs from everything else it touched ([`Scope`]):
//! the trees the key covers otherwise, the unit's own outputs and places, and the C
//! toolchain's drivers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::key::PathMap;
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

impl Scope<'_> {
    pub(in crate::observe) fn is_covered(&self, p: &Path) -> bool {
        self.covered.iter().any(|d| p.starts_with(d))
    }

    /// A C compiler driver installed outside the build's roots (not something the
    /// build made or unpacked).
    pub(super) fn is_c_driver(&self, program: &str) -> bool {
        let p = Path::new(program);
        let in_root = self.pm.roots().iter().any(|r| p.starts_with(&r.real));
        !in_root
            && p.is_absolute()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_c_driver_name)
    }

    /// A temporary directory, but no machine root (a checkout may live in `/tmp`).
    pub(super) fn is_scratch(&self, p: &Path) -> bool {
        let in_root = self.pm.roots().iter().any(|r| p.starts_with(&r.real));
        !in_root && self.scratch.iter().any(|d| p.starts_with(d))
    }

    pub(super) fn in_out_dir(&self, p: &Path) -> bool {
        self.out_dir
            .as_ref()
            .is_some_and(|d| p.starts_with(d) && p != d)
    }

    pub(super) fn is_own(&self, p: &Path) -> bool {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            return false;
        };
        self.own
            .iter()
            .any(|(d, prefix)| dir == d && name.starts_with(prefix.as_str()))
    }

    pub(super) fn is_artifact(&self, p: &Path) -> bool {
        let artifact = matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("rlib" | "rmeta" | "so")
        );
        artifact
            && p.parent()
                .is_some_and(|d| self.artifact_dirs.iter().any(|a| a == d))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
