//! The compiler's identity: `rustc -vV`, and the standard library it links against.
//!
//! Running `rustc -vV` for every unit would cost a process per unit, so the identity is
//! remembered in the store, keyed by the rustc binary's path, size, modification time
//! and the rustup toolchain name, and checked at each use against a stamp of the
//! sysroot it named (the real `rustc`, the compiler driver library, the standard
//! library directory): a toolchain updated in place behind the same `rustc` (a rustup
//! proxy keeps its path, size and time) is a new identity.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use super::{Key, KeyHasher};
use crate::errors::CacheError;

/// The identity of one rustc, as a key plus its `-vV` text for the report.
#[derive(Clone, Debug)]
pub struct CompilerId {
    pub key: Key,
    pub version: String,
    /// `rustc --print sysroot`: where the linker identity finds rustc's own linker.
    pub sysroot: PathBuf,
}

impl CompilerId {
    /// The `host:` line of `rustc -vV`.
    pub fn host(&self) -> Option<&str> {
        self.version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .map(str::trim)
    }
}

/// Computes (or reads back) the identity of `rustc`. `memo_dir` is where identities are
/// remembered (inside the store); `rustup_toolchain` is `RUSTUP_TOOLCHAIN`; `search_path`
/// is `PATH`, for a bare program name.
pub fn compiler_id(
    rustc: &Path,
    memo_dir: Option<&Path>,
    rustup_toolchain: Option<&str>,
    search_path: Option<&OsStr>,
) -> Result<CompilerId, CacheError> {
    let resolved = resolve_program(rustc, search_path);
    let meta = fs::metadata(&resolved).map_err(|e| CacheError::Compiler {
        rustc: rustc.to_path_buf(),
        message: e.to_string(),
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // `-v3`: the memo holds the sysroot and its stamp.
    let memo_key = KeyHasher::new("compiler-memo-v3")
        .str("path", &resolved.to_string_lossy())
        .str("len", &meta.len().to_string())
        .str("mtime", &mtime.to_string())
        .str("rustup-toolchain", rustup_toolchain.unwrap_or(""))
        .finish();
    let memo_path = memo_dir.map(|d| d.join(memo_key.to_hex()));
    let remembered = || {
        let text = fs::read_to_string(memo_path.as_ref()?).ok()?;
        let (hex, rest) = text.split_once('\n')?;
        let (sysroot, rest) = rest.split_once('\n')?;
        let (stamp, version) = rest.split_once('\n')?;
        let key = Key::from_hex(hex)?;
        (sysroot_stamp(Path::new(sysroot)) == stamp).then(|| CompilerId {
            key,
            version: version.to_string(),
            sysroot: PathBuf::from(sysroot),
        })
    };
    // One probe at a time (the first compiles of a build on a new machine start
    // together): whoever waited reads the memo the other wrote.
    let _lock = match crate::private_dir::memo_or_lock(memo_path.as_deref(), remembered) {
        Ok(id) => return Ok(id),
        Err(lock) => lock,
    };
    let id = probe(rustc)?;
    if let Some(p) = memo_path {
        let _ = crate::fsx::write_atomic(
            &p,
            format!(
                "{}\n{}\n{}\n{}",
                id.key.to_hex(),
                id.sysroot.display(),
                sysroot_stamp(&id.sysroot),
                id.version
            )
            .as_bytes(),
        );
    }
    Ok(id)
}

/// Size and modification time of what a toolchain update replaces: the real `rustc`,
/// the driver library, and the standard library directory of every target.
fn sysroot_stamp(sysroot: &Path) -> String {
    let mut parts = Vec::new();
    let mut add = |p: &Path| {
        let (len, mtime) = fs::metadata(p)
            .map(|m| {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                (m.len(), t)
            })
            .unwrap_or((0, 0));
        parts.push(format!("{}:{len}:{mtime}", p.display()));
    };
    add(&sysroot.join("bin").join("rustc"));
    if let Ok(rd) = fs::read_dir(sysroot.join("lib")) {
        let mut libs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("librustc_driver") || n.starts_with("libLLVM"))
            })
            .collect();
        libs.sort();
        libs.iter().for_each(|p| add(p));
    }
    if let Ok(rd) = fs::read_dir(sysroot.join("lib").join("rustlib")) {
        let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("lib")).collect();
        dirs.sort();
        dirs.iter().for_each(|p| add(p));
    }
    parts.join(" ")
}

fn probe(rustc: &Path) -> Result<CompilerId, CacheError> {
    let err = |message: String| CacheError::Compiler {
        rustc: rustc.to_path_buf(),
        message,
    };
    let run = |args: &[&str]| -> Result<String, CacheError> {
        let out = Command::new(rustc)
            .args(args)
            .output()
            .map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            return Err(err(format!(
                "`{} {}` failed: {}",
                rustc.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let version = run(&["-vV"])?;
    let sysroot = run(&["--print", "sysroot"])?.trim().to_string();
    // The standard libraries shipped in the sysroot, by name and size: their file names
    // carry hashes, so this changes whenever they do.
    let mut libs = Vec::new();
    let rustlib = Path::new(&sysroot).join("lib").join("rustlib");
    if let Ok(targets) = fs::read_dir(&rustlib) {
        for t in targets.flatten() {
            if let Ok(files) = fs::read_dir(t.path().join("lib")) {
                for f in files.flatten() {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    libs.push(format!(
                        "{}/{}:{len}",
                        t.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    ));
                }
            }
        }
    }
    libs.sort();
    let key = KeyHasher::new("compiler")
        .str("version", &version)
        .list("sysroot-libs", libs.iter().map(String::as_str))
        .finish();
    Ok(CompilerId {
        key,
        version,
        sysroot: PathBuf::from(sysroot),
    })
}

/// A bare program name is looked up on PATH, as `Command` would.
pub(super) fn resolve_program(p: &Path, search_path: Option<&OsStr>) -> PathBuf {
    if p.components().count() > 1 {
        return p.to_path_buf();
    }
    if let Some(paths) = search_path {
        for dir in std::env::split_paths(paths) {
            let cand = dir.join(p);
            if cand.is_file() {
                return cand;
            }
        }
    }
    p.to_path_buf()
}

/// Cargo's version (`cargo -V`), remembered in `memo_dir` per cargo binary (path, size,
/// modification time): seeds hold cargo's own records, whose meaning is cargo's.
pub fn cargo_version(
    cargo: &Path,
    memo_dir: Option<&Path>,
    search_path: Option<&OsStr>,
) -> Option<String> {
    let resolved = resolve_program(cargo, search_path);
    let meta = fs::metadata(&resolved).ok()?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let memo_key = KeyHasher::new("cargo-memo")
        .str("path", &resolved.to_string_lossy())
        .str("len", &meta.len().to_string())
        .str("mtime", &mtime.to_string())
        .finish();
    let memo = memo_dir.map(|d| d.join(format!("cargo-{}", memo_key.to_hex())));
    if let Some(v) = memo.as_ref().and_then(|p| fs::read_to_string(p).ok()) {
        return Some(v);
    }
    let out = Command::new(cargo).arg("-V").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if let Some(p) = memo {
        let _ = crate::fsx::write_atomic(&p, version.as_bytes());
    }
    Some(version)
}
