//! Paths as the recipe names them: canonical where they exist, relative to a base
//! (climbing out with `..`), with `/` separators.

use std::path::{Component, Path, PathBuf};

/// The path with symlinks resolved when it exists; as given otherwise.
pub(super) fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `path` relative to `base`, with `..` where it lies outside.
pub(super) fn relative(path: &Path, base: &Path) -> PathBuf {
    let path = canonical(path);
    let base = canonical(base);
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// A relative path with `/` separators, as the recipe stores it.
pub(super) fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/d")),
            PathBuf::from("../b/c")
        );
        assert_eq!(
            relative(Path::new("/a/d"), Path::new("/a/d")),
            PathBuf::new()
        );
    }
}
