//! clippy's part of a key: clippy-driver runs in front of rustc for workspace members
//! (`cargo clippy` makes it the `RUSTC_WORKSPACE_WRAPPER`), so the compiler of those
//! units is rustc and clippy together. The wrapper ([`clippy_identity`] of the driver it
//! is given) and the plan (of the driver `cargo clippy` will run) name it alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Key, KeyHasher, hash_file};

/// True for clippy's driver, the one workspace wrapper whose results are cached.
pub fn is_clippy_driver(w: &Path) -> bool {
    w.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "clippy-driver")
}

/// The driver `cargo clippy` runs with the toolchain whose sysroot is `sysroot`:
/// cargo-clippy names the `clippy-driver` beside itself, in the toolchain's `bin`.
pub fn toolchain_clippy_driver(sysroot: &Path) -> PathBuf {
    sysroot.join("bin").join("clippy-driver")
}

/// clippy-driver's identity: the digest of the executable run (found on `path_var`
/// when named bare) and the version it reports (a rustup proxy resolves to a
/// toolchain's driver: its version names the build). `None` when either cannot be read.
pub fn clippy_identity(w: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<Key> {
    let path = if w.components().count() > 1 {
        w.to_path_buf()
    } else {
        std::env::split_paths(path_var?)
            .map(|d| d.join(w))
            .find(|p| p.is_file())?
    };
    let digest = hash_file(&path).ok()?;
    let out = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        KeyHasher::new("clippy-driver")
            .key("executable", &digest)
            .bytes("version", &out.stdout)
            .finish(),
    )
}

/// The compiler key of a unit clippy-driver runs: rustc's identity and clippy's.
pub fn behind_clippy(rustc: &Key, clippy: &Key) -> Key {
    KeyHasher::new("compiler-behind-clippy")
        .key("rustc", rustc)
        .key("clippy", clippy)
        .finish()
}
