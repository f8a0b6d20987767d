//! Observing an input's state now, in the words inputs are recorded in
//! (`key::input::state`).

use std::fs;
use std::io;
use std::path::Path;

use super::{Key, KeyHasher, PathMap, RootKind, above, hash_file, state as st, tree_digest};

/// The most files a declared tree may hold to be described.
pub const MAX_TREE_FILES: usize = 10_000;

fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(20) // ENOTDIR on older toolchains' mapping
}

/// A path's state, following symbolic links as a read would: `absent`, `dir`, `other`,
/// and for a file its contents (`file:<digest>`) or, when `contents` is false, `file`.
pub fn path_state(p: &Path, contents: bool) -> String {
    match fs::metadata(p) {
        Err(e) if gone(&e) => st::ABSENT.into(),
        Err(_) => "unreadable".into(),
        Ok(m) if m.is_dir() => st::DIR.into(),
        Ok(m) if m.is_file() => {
            if contents {
                hash_file(p).map_or_else(|_| "unreadable".into(), |d| st::contents(&d))
            } else {
                st::FILE.into()
            }
        }
        Ok(_) => st::OTHER.into(),
    }
}

/// A directory's listing: the names of its entries with their kinds (not followed),
/// digested; `absent`, or `not-dir` for something else.
pub fn listing_state(p: &Path) -> String {
    let rd = match fs::read_dir(p) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return st::ABSENT.into(),
        Err(e) if gone(&e) => return "not-dir".into(),
        Err(_) => return "unreadable".into(),
    };
    let mut names: Vec<String> = Vec::new();
    for e in rd {
        let Ok(e) = e else {
            return "unreadable".into();
        };
        let kind = match e.file_type() {
            Ok(t) if t.is_symlink() => 'l',
            Ok(t) if t.is_dir() => 'd',
            Ok(t) if t.is_file() => 'f',
            _ => 'o',
        };
        names.push(format!("{}\0{kind}", e.file_name().to_string_lossy()));
    }
    names.sort();
    let d: Key = KeyHasher::new("listing")
        .list("entries", names.iter().map(String::as_str))
        .finish();
    format!("list:{d}")
}

/// The listing state of an empty directory.
pub fn empty_listing_state() -> String {
    let d: Key = KeyHasher::new("listing")
        .list("entries", std::iter::empty::<&str>())
        .finish();
    format!("list:{d}")
}

/// A declared file or tree (see `key::tree_digest`), skipping the target dir.
pub fn tree_state(p: &Path, pm: &PathMap) -> String {
    let skip = pm
        .real_of(RootKind::Target)
        .map(Path::new)
        .unwrap_or(Path::new("/nonexistent-target-root"));
    tree_digest(p, skip, MAX_TREE_FILES, pm).unwrap_or_else(|_| "unreadable".into())
}

/// Where a symbolic link points (tokenized), `not-link` or `absent`.
pub fn link_state(p: &Path, pm: &PathMap) -> String {
    match fs::symlink_metadata(p) {
        Err(e) if gone(&e) => st::ABSENT.into(),
        Err(_) => "unreadable".into(),
        Ok(m) if m.file_type().is_symlink() => match fs::read_link(p) {
            Ok(t) => format!("link:{}", pm.normalize_text(&t.to_string_lossy())),
            Err(_) => "unreadable".into(),
        },
        Ok(_) => st::NOT_LINK.into(),
    }
}

/// What looking `name` up through `path` (a PATH value; unset: the C library's
/// `/bin:/usr/bin`) finds, as `execvp` searches: the first executable regular file's
/// contents, or `absent`; before it, anything else that exists under that name in an
/// earlier directory (`f:<contents>` for a file that is not executable, `d` a
/// directory, `o` anything else), since a search that asks only whether the name exists
/// (the `cc` crate's) stops there. Only for PATH values whose entries are all absolute
/// (`observe::classify` keys any other PATH whole).
pub fn lookup_state(name: &str, path: Option<&str>) -> String {
    let mut before: Vec<String> = Vec::new();
    let mut found = None;
    for dir in path.unwrap_or("/bin:/usr/bin").split(':') {
        let cand = Path::new(dir).join(name);
        let Ok(meta) = fs::metadata(&cand) else {
            continue;
        };
        let contents =
            || hash_file(&cand).map_or_else(|_| "unreadable".into(), |d| st::contents(&d));
        let executable = rustix::fs::access(&cand, rustix::fs::Access::EXEC_OK).is_ok();
        if meta.is_file() && executable {
            found = Some(contents());
            break;
        }
        before.push(if meta.is_file() {
            format!("f:{}", contents())
        } else if meta.is_dir() {
            "d".into()
        } else {
            "o".into()
        });
    }
    let found = found.unwrap_or_else(|| st::ABSENT.into());
    if before.is_empty() {
        found
    } else {
        format!("{}>{found}", before.join(","))
    }
}

/// What an [`InputKind::Above`](crate::key::InputKind::Above) input names now, above
/// `anchor` (a real path): the directories above it are its lexical ancestors, as a
/// program that walks up from a directory it got from `getcwd` finds them.
/// - every one: the state of `rel` in each when it is the same everywhere, else
///   `differs:<dir>:<state>` for the first that differs from the nearest;
/// - the `n`th: the state of `rel` in it, `beyond-top` if there are fewer;
/// - how many there are.
pub fn above_state(anchor: &Path, spec: above::Spec, rel: &str, contents: bool) -> String {
    let at = |dir: &Path| {
        if rel.is_empty() {
            path_state(dir, contents)
        } else {
            path_state(&dir.join(rel), contents)
        }
    };
    let mut dirs = above::dirs(anchor);
    match spec {
        above::Spec::Depth => above::depth_state(dirs.count()),
        above::Spec::Level(n) => dirs
            .nth(n.saturating_sub(1))
            .map_or_else(|| "beyond-top".to_string(), at),
        above::Spec::Every => {
            let mut first: Option<String> = None;
            for dir in dirs {
                let s = at(dir);
                match &first {
                    None => first = Some(s),
                    Some(f) if *f != s => return format!("differs:{}:{s}", dir.display()),
                    Some(_) => {}
                }
            }
            first.unwrap_or_else(|| "beyond-top".to_string())
        }
    }
}

/// The real path a path resolves to (tokenized), or `absent`.
pub fn canonical_state(p: &Path, pm: &PathMap) -> String {
    match fs::canonicalize(p) {
        Ok(real) => format!("real:{}", pm.normalize_path(&real)),
        Err(e) if gone(&e) => st::ABSENT.into(),
        Err(_) => "unreadable".into(),
    }
}
