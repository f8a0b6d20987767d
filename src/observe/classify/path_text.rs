//! Paths as texts: an absolute path's text as `Path` compares it ([`normal_path`]),
//! so that maps of a run's many paths compare bytes, and the walk up such a text.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `p` (absolute) as `Path` compares it: without empty components, `.` components and a
/// separator at the end. Two texts name the same `Path` exactly when they are the same
/// here, so a map keyed by it compares bytes where a map of `PathBuf`s parses components.
pub(super) fn normal_path(p: &str) -> std::borrow::Cow<'_, str> {
    let plain = !p.contains("//")
        && !p.contains("/./")
        && !p.ends_with("/.")
        && (p.len() == 1 || !p.ends_with('/'));
    if plain {
        std::borrow::Cow::Borrowed(p)
    } else {
        let normal: PathBuf = Path::new(p).components().collect();
        std::borrow::Cow::Owned(normal.to_string_lossy().into_owned())
    }
}

/// Whether one of the proper ancestors of `path` (a [`normal_path`]) is in `dirs`, as
/// `Path::ancestors` gives them.
pub(super) fn below_any(path: &str, dirs: &BTreeSet<String>) -> bool {
    if dirs.is_empty() {
        return false;
    }
    let mut s = path;
    while s.len() > 1
        && let Some(i) = s.rfind('/')
    {
        s = if i == 0 { "/" } else { &s[..i] };
        if dirs.contains(s) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts the maps are keyed by name the same path exactly when `Path` says so,
    /// and the made directories found above a path are `Path::ancestors`' own.
    #[test]
    fn paths_are_keyed_and_walked_up_as_path_compares_them() {
        let texts = [
            "/",
            "/.",
            "//",
            "/a",
            "/a/",
            "/a//",
            "/a/.",
            "/a/./",
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/b/",
            "/a/b/.",
            "/a/../b",
            "/a/..",
            "/a/b/..",
            "/ab",
            "/a.b",
            "/a/.b",
            "/a/b./c",
            "/a//./b//",
            "/tmp/x/y.o",
            "/tmp/x",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(
                    normal_path(a) == normal_path(b),
                    Path::new(a) == Path::new(b),
                    "{a} and {b}"
                );
            }
        }
        for dirs in [
            vec!["/"],
            vec!["/a"],
            vec!["/a/b", "/tmp/x"],
            vec!["/a/.."],
            vec![],
        ] {
            let set: BTreeSet<String> = dirs.iter().map(|d| normal_path(d).into_owned()).collect();
            for p in texts {
                let by_path = Path::new(p)
                    .ancestors()
                    .skip(1)
                    .any(|a| dirs.iter().any(|d| Path::new(d) == a));
                assert_eq!(
                    below_any(&normal_path(p), &set),
                    by_path,
                    "{p} below {dirs:?}"
                );
            }
        }
    }
}
