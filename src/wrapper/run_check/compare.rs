//! The comparison of a path check: what the second run, or an earlier run at roots of
//! other lengths ([`paired`]), printed and wrote against the first run ([`PathVerdict`]).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::aliases::Aliases;
use crate::key::{Input, InputKind, Key, PathMap, RootKind, without_roots};
use crate::store::LocalStore;
use crate::wrapper::lifecycle::{OutFile, OutSource};

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::wrapper) enum PathVerdict {
    /// The second run printed and wrote what the first did, roots aside.
    PathsOnly,
    /// It did not: what differed.
    Differs(String),
    /// It could not be made (why).
    Unchecked(String),
    /// No second run: an earlier run of the same script on the same inputs, at places
    /// of these roots of other lengths, printed and wrote the same (`paired`).
    PairedWith(Vec<RootKind>),
}

/// A run too long to make twice, checked against an earlier run instead: a variant of
/// the same first-level key, stored bound to its roots, whose other inputs are this
/// run's and whose roots lie at paths of other lengths than here. Two real runs at two
/// places are the check's two runs: if the earlier one printed and wrote what this one
/// did, tokenized, the roots that differed in length (and so in bytes) were used as paths
/// only. `None` when there is no such variant, or its entry cannot be read.
pub(in crate::wrapper) fn paired(
    store: &LocalStore,
    l1: &Key,
    pm: &PathMap,
    inputs: &[Input],
    stdout: &[u8],
    files: &[OutFile],
) -> Option<PathVerdict> {
    let ours = without_roots(inputs);
    let now = pm.normalize_text(&String::from_utf8_lossy(stdout));
    let manifest = store.read_manifest(l1);
    for variant in &manifest.variants {
        let rooted: Vec<&Input> = variant
            .inputs
            .iter()
            .filter(|i| i.kind == InputKind::Root)
            .collect();
        if rooted.is_empty() || without_roots(&variant.inputs) != ours {
            continue;
        }
        // The roots that were elsewhere, at a path of another length.
        let moved: Vec<RootKind> = pm
            .roots()
            .iter()
            .filter(|r| {
                rooted
                    .iter()
                    .any(|i| i.name == r.kind.token() && i.state.len() != r.real.len())
            })
            .map(|r| r.kind)
            .collect();
        if moved.is_empty() {
            continue;
        }
        let Some(key) = Key::from_hex(&variant.entry) else {
            continue;
        };
        let Ok(Some(mut reader)) = store.open_entry(&key) else {
            continue;
        };
        let meta = reader.meta().clone();
        let stored_names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        let our_names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        if directives(&meta.stdout) != directives(&now) || !same_names(&stored_names, &our_names) {
            return Some(PathVerdict::Differs(
                "what it printed, against an earlier run".into(),
            ));
        }
        for stored in &meta.files {
            if reader.next_object().is_some() {
                return None;
            }
            let mut bytes = Vec::new();
            if reader.next_file(&mut bytes).is_err() {
                return None;
            }
            if is_probe_leftover(&stored.name) {
                continue;
            }
            let ours = files.iter().find(|f| f.name == stored.name)?;
            let same = stored.executable == ours.executable
                && match &ours.source {
                    OutSource::Text(t) => bytes == t.as_bytes(),
                    OutSource::File(p) => std::fs::read(p).is_ok_and(|b| b == bytes),
                };
            if !same {
                return Some(PathVerdict::Differs(format!(
                    "{} in OUT_DIR, against an earlier run",
                    ours.name
                )));
            }
        }
        return Some(PathVerdict::PairedWith(moved));
    }
    None
}

/// The lines of a run's output cargo acts on (`cargo:` and `cargo::` directives), in
/// order. The rest cargo only keeps in the run's `output` file; the `cc` crate prints
/// there which variables it looked up, as often as it ran `ar`, which it does once per
/// so many bytes of object paths: a number the roots' lengths change.
pub(super) fn directives(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("cargo:")).collect()
}

/// The files the second run wrote in `out_dir` against the first run's.
pub(super) fn compare_files(
    aliases: &Aliases,
    pm: &PathMap,
    files: &[OutFile],
    out_dir: &Path,
) -> io::Result<PathVerdict> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![out_dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                dirs.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    let mut names: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(out_dir).ok()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let first: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    if !same_names(&names, &first) {
        return Ok(PathVerdict::Differs("which files it wrote".into()));
    }
    for f in files.iter().filter(|f| !is_probe_leftover(&f.name)) {
        let path = out_dir.join(&f.name);
        let executable = std::fs::metadata(&path)?.permissions().mode() & 0o111 != 0;
        let same = executable == f.executable
            && match &f.source {
                OutSource::Text(t) => String::from_utf8(std::fs::read(&path)?)
                    .is_ok_and(|s| aliases.tokenize(pm, &s) == *t),
                OutSource::File(p) => same_bytes(p, &path)?,
            };
        if !same {
            return Ok(PathVerdict::Differs(format!("{} in OUT_DIR", f.name)));
        }
    }
    Ok(PathVerdict::PathsOnly)
}

/// What autocfg leaves in `OUT_DIR`: the output of each probe crate it compiled
/// (`rustc --crate-name autocfg_<id>_<n> --out-dir $OUT_DIR --emit=llvm-ir -` from its own
/// source on stdin: `autocfg_<id>_<n>.ll`; `libautocfg_<id>_<n>.rmeta` where metadata is
/// emitted), named by an id autocfg draws at random in every run, so two runs never write
/// the same names. Only a listing of `OUT_DIR` could find them, and autocfg asks only
/// whether the compile succeeded: the check counts them instead of pairing them by name
/// and bytes. The files replayed are the first run's, as a run could have written.
pub(super) fn is_probe_leftover(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("libautocfg_")
        .and_then(|r| r.strip_suffix(".rmeta"))
        .or_else(|| {
            name.strip_prefix("autocfg_")
                .and_then(|r| r.strip_suffix(".ll"))
        })
    else {
        return false;
    };
    let Some((id, n)) = rest.split_once('_') else {
        return false;
    };
    id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// Whether two runs wrote the same files: the same names but autocfg's probe leftovers
/// ([`is_probe_leftover`]), and as many of those.
pub(super) fn same_names(a: &[&str], b: &[&str]) -> bool {
    fn split<'a>(v: &[&'a str]) -> (usize, Vec<&'a str>) {
        let (left, mut rest): (Vec<&str>, Vec<&str>) = v.iter().partition(|n| is_probe_leftover(n));
        rest.sort_unstable();
        (left.len(), rest)
    }
    split(a) == split(b)
}

/// Whether the file at `first` (the first run's; unreadable: not the same) holds the
/// bytes of the one at `second`, read side by side a block at a time: a C library's
/// objects and archive are megabytes, read whole twice before.
fn same_bytes(first: &Path, second: &Path) -> io::Result<bool> {
    let mut b = std::fs::File::open(second)?;
    let Ok(mut a) = std::fs::File::open(first) else {
        return Ok(false);
    };
    if a.metadata().map(|m| m.len()).ok() != Some(b.metadata()?.len()) {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let Ok(n) = crate::fsx::read_full(&mut a, &mut x) else {
            return Ok(false);
        };
        let m = crate::fsx::read_full(&mut b, &mut y)?;
        if x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}
