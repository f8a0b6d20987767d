//! File-system primitives every layer uses: the one judge of whether a path that came
//! from elsewhere may be written ([`confined`]), and atomic writes ([`write_atomic`]).
//!
//! Anything read from a store, a remote, a seed index, an entry or a recipe is hostile
//! input: a name it gives is joined to a directory only through [`confined`], which
//! refuses every way out of that directory (absolute paths, `..`, a drive or UNC prefix,
//! a symbolic link on the way, NUL bytes).

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Why a name was refused by [`confined`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Escape {
    #[error("an empty name")]
    Empty,
    #[error("{0:?} is not a relative path inside the directory")]
    NotRelative(String),
    #[error("{0:?} holds a NUL byte")]
    Nul(String),
    #[error("{0:?} passes through a symbolic link ({1})")]
    Symlink(String, PathBuf),
}

/// `base` joined with the relative name `rel`, if the result stays inside `base`: `rel`
/// must be made of plain components only (no root, no prefix, no `..`, no `.`), and no
/// directory between `base` and the result may be a symbolic link now (a link planted
/// in a store-controlled directory would lead a later write elsewhere). The last
/// component may not be a link either. `base` itself is trusted: the caller chose it.
pub fn confined(base: &Path, rel: &str) -> Result<PathBuf, Escape> {
    if rel.is_empty() {
        return Err(Escape::Empty);
    }
    if rel.contains('\0') {
        return Err(Escape::Nul(rel.to_string()));
    }
    // Windows spellings are refused everywhere: a store may be shared across systems.
    if rel.contains('\\') || rel.as_bytes().get(1) == Some(&b':') {
        return Err(Escape::NotRelative(rel.to_string()));
    }
    if rel.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(Escape::NotRelative(rel.to_string()));
    }
    let path = Path::new(rel);
    let mut out = base.to_path_buf();
    for c in path.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                if let Ok(m) = std::fs::symlink_metadata(&out)
                    && m.file_type().is_symlink()
                {
                    return Err(Escape::Symlink(rel.to_string(), out));
                }
            }
            _ => return Err(Escape::NotRelative(rel.to_string())),
        }
    }
    // `a/` or `a//b` are spelled oddly but stay inside; `.` alone is not a name.
    if out == base {
        return Err(Escape::Empty);
    }
    Ok(out)
}

/// True when `name` is a single plain file name (no separator at all).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && name != "."
        && name != ".."
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A temp path next to `dest`, for writing a file that is renamed into place.
pub fn temp_beside(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".xcache-tmp-{}-{n}", std::process::id()));
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_out_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        assert_eq!(
            confined(base, "debug/deps/x").unwrap(),
            base.join("debug/deps/x")
        );
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "C:\\x",
            "c:x",
            "\\\\server\\share",
            "a\\..\\b",
            "a\0b",
            "//x",
        ] {
            assert!(confined(base, bad).is_err(), "{bad:?} was let through");
        }
        // A link on the way (or at the end) leads elsewhere.
        std::fs::create_dir_all(base.join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", base.join("link")).unwrap();
        assert!(matches!(confined(base, "link/x"), Err(Escape::Symlink(..))));
        assert!(matches!(confined(base, "link"), Err(Escape::Symlink(..))));
        assert!(confined(base, "real/x").is_ok());
        assert!(is_plain_name("libfoo.rlib"));
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
