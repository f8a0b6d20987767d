//! The C libraries preloaded into the processes the cache runs: the observer
//! (`preload.c` and its parts in `preload/`: what a compile or a build-script run reads, one record per event, for
//! `crate::observe`) and the aliasing library (`alias.c`: a build script's path check,
//! which shows the run another checkout, for `crate::wrapper`'s run check). `build.rs`
//! builds both for this platform and the executable carries their bytes (empty where
//! observation is not supported); each is written into the private directory and
//! checked byte for byte before every use.

use std::io;
use std::path::{Path, PathBuf};

/// The observer library.
pub const OBSERVER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libxcache_observe.so"));

/// The aliasing library.
pub const ALIAS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libxcache_alias.so"));

/// A library this binary carries (`bytes`), written into the private directory `dir`
/// under `<prefix>-<digest>.so` and checked byte for byte before every use.
pub fn private_library(dir: &Path, prefix: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let digest = blake3::hash(bytes).to_hex();
    let path = dir.join(format!("{prefix}-{}.so", &digest[..16]));
    let same = std::fs::read(&path).is_ok_and(|b| b == bytes);
    if !same {
        crate::fsx::write_atomic(&path, bytes)?;
    }
    Ok(path)
}
