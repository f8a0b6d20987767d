//! Laying a [`Recipe`] out as files ([`lay_out`]), and taking the placeholders' build
//! outputs back out of a target dir ([`remove_local_artifacts`]).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use super::format::{PlaceholderKind, Recipe};
use crate::errors::CliError;

/// What a placeholder library holds.
const LIB_PLACEHOLDER: &str = "// A placeholder written by `cargo xcache warm`.\n";
/// What a placeholder binary, example, test, bench or build script holds.
const MAIN_PLACEHOLDER: &str = "// A placeholder written by `cargo xcache warm`.\nfn main() {}\n";

/// A skeleton on disk.
#[derive(Clone, Debug)]
pub struct Skeleton {
    pub root: PathBuf,
    /// The local packages' directories, absolute: their units are placeholders.
    pub local_dirs: Vec<PathBuf>,
}

/// Writes the recipe's files and placeholders under `root` (path dependencies outside
/// the workspace land outside `root`, where `..` puts them). A file that exists with
/// other contents is not overwritten: the skeleton is for a directory that holds no
/// sources yet.
///
/// A recipe is input from elsewhere: every file it names must land inside `bound` (the
/// workspace root, or the directory the user named with `--skeleton-root`), judged by
/// [`crate::fsx::confined`], symbolic links on the way included. A recipe that reaches
/// further is refused before anything is written.
pub fn lay_out(recipe: &Recipe, root: &Path, bound: &Path) -> Result<Skeleton, CliError> {
    let writes = recipe
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.contents.as_str()))
        .chain(recipe.placeholders.iter().map(|p| {
            let contents = match p.kind {
                PlaceholderKind::Lib => LIB_PLACEHOLDER,
                PlaceholderKind::Main => MAIN_PLACEHOLDER,
            };
            (p.path.as_str(), contents)
        }));
    // Every file is checked before any is written.
    let mut todo = Vec::new();
    for (rel, contents) in writes {
        let outside = || CliError::SkeletonOutside {
            name: rel.to_string(),
            bound: bound.to_path_buf(),
        };
        let path = normalize(&root.join(rel));
        let inside = path.strip_prefix(bound).map_err(|_| outside())?;
        let inside = inside.to_str().ok_or_else(outside)?;
        let path = crate::fsx::confined(bound, inside).map_err(|_| outside())?;
        match std::fs::read(&path) {
            Ok(existing) if existing == contents.as_bytes() => continue,
            Ok(_) => return Err(CliError::SkeletonConflict { path }),
            Err(_) => todo.push((path, contents)),
        }
    }
    for (path, contents) in todo {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CliError::SkeletonWrite {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, contents).map_err(|source| CliError::SkeletonWrite {
            path: path.clone(),
            source,
        })?;
    }
    let local_dirs = recipe
        .local_packages
        .iter()
        .map(|p| {
            let d = normalize(&root.join(&p.dir));
            std::fs::canonicalize(&d).unwrap_or(d)
        })
        .collect();
    Ok(Skeleton {
        root: root.to_path_buf(),
        local_dirs,
    })
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Removes every build output of the recipe's local packages from `target_dir`: their
/// units (found by the hashes of their `.fingerprint` directories) wherever cargo put
/// them, and the copies cargo uplifted next to the profile directory. Returns how many
/// files and directories went.
pub fn remove_local_artifacts(recipe: &Recipe, target_dir: &Path) -> usize {
    let packages: HashSet<String> = recipe
        .local_packages
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut targets: HashSet<String> = HashSet::new();
    for p in &recipe.local_packages {
        for t in &p.targets {
            targets.insert(t.clone());
            targets.insert(t.replace('-', "_"));
        }
    }
    let mut removed = 0;
    for profile in profile_dirs(target_dir) {
        // The unit hashes of the local packages: `.fingerprint/<package>-<hash>`.
        let mut hashes: HashSet<String> = HashSet::new();
        for e in read_dir(&profile.join(".fingerprint")) {
            if let Some((name, hash)) = e.rsplit_once('-')
                && is_hash(hash)
                && packages.contains(name)
            {
                hashes.insert(hash.to_string());
            }
        }
        for sub in [".fingerprint", "deps", "build", "examples", "incremental"] {
            let dir = profile.join(sub);
            for e in read_dir(&dir) {
                let stem = e.split('.').next().unwrap_or("");
                let unit = stem
                    .rsplit_once('-')
                    .is_some_and(|(_, h)| hashes.contains(h));
                // `incremental/<crate>-<hash>` uses a hash of its own.
                let incremental = sub == "incremental"
                    && stem
                        .rsplit_once('-')
                        .is_some_and(|(c, _)| targets.contains(c));
                let uplifted =
                    sub == "examples" && is_uplifted(&e, &targets) && dir.join(&e).is_file();
                if unit || incremental || uplifted {
                    removed += remove(&dir.join(&e));
                }
            }
        }
        // cargo's new layout keeps each unit in `build/<package>/<hash>/`.
        for p in &packages {
            let dir = profile.join("build").join(p);
            let units = read_dir(&dir);
            if !units.is_empty() && units.iter().all(|h| is_hash(h)) {
                removed += remove(&dir);
            }
        }
        for e in read_dir(&profile) {
            if is_uplifted(&e, &targets) && profile.join(&e).is_file() {
                removed += remove(&profile.join(&e));
            }
        }
    }
    removed
}

/// `app`, `app.d`, `libcore.rlib`, `libcore.d`: what cargo copies out of `deps/`.
fn is_uplifted(file: &str, targets: &HashSet<String>) -> bool {
    let (stem, ext) = match file.split_once('.') {
        Some((s, e)) => (s, Some(e)),
        None => (file, None),
    };
    if targets.contains(stem) && matches!(ext, None | Some("d" | "exe" | "pdb" | "dwp")) {
        return true;
    }
    stem.strip_prefix("lib")
        .is_some_and(|s| targets.contains(s))
        && matches!(ext, Some("rlib" | "rmeta" | "d" | "so" | "a" | "dylib"))
}

/// The directories cargo keeps one profile's units (or its uplifted copies) in: those
/// with a `.fingerprint` (the legacy layout), or with one of cargo's locks (a target
/// dir apart from the build dir, the new layout, a build dir apart in it).
fn profile_dirs(target_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(target_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        // cargo's records, or one of its locks (a build dir apart in the new layout
        // holds only `.cargo-build-lock`).
        let locked = [".cargo-lock", ".cargo-build-lock", ".cargo-artifact-lock"]
            .iter()
            .any(|l| dir.join(l).is_file());
        if dir.join(".fingerprint").is_dir() || (depth > 0 && locked) {
            out.push(dir);
            continue;
        }
        if depth >= 2 {
            continue;
        }
        for e in read_dir(&dir) {
            let p = dir.join(&e);
            if p.is_dir() && !p.is_symlink() {
                stack.push((p, depth + 1));
            }
        }
    }
    out
}

fn read_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn remove(p: &Path) -> usize {
    let gone = if p.is_dir() && !p.is_symlink() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    };
    usize::from(gone.is_ok())
}

fn is_hash(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_climbs() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }

    #[test]
    fn uplifted_names() {
        let t: HashSet<String> = ["app".to_string(), "core".to_string()].into();
        assert!(is_uplifted("app", &t));
        assert!(is_uplifted("app.d", &t));
        assert!(is_uplifted("libcore.rlib", &t));
        assert!(!is_uplifted("libc.rlib", &t));
        assert!(!is_uplifted("build", &t));
    }
}
