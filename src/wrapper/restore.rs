//! Restoring an entry into a directory, and replaying what was printed. Main function:
//! [`restore_entry`]: the one restore of every cached thing (a rustc unit's outputs, a
//! build-script run's `OUT_DIR`, a seed pack's files in the target dir).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::errors::CacheError;
use crate::fsx::{Escape, confined};
use crate::key::{Key, PathMap};
use crate::store::objects::Link;
use crate::store::{EntryFile, EntryMeta, LocalStore, ReadError, restore_temp_path};

/// What a successful restore brought back.
pub struct Restored {
    pub meta: EntryMeta,
    pub bytes: u64,
    /// Each restored file with its content digest (as stored, before path expansion).
    pub files: Vec<(PathBuf, Key)>,
    /// The digest of every file of the entry, restored or not, in the entry's order.
    pub digests: Vec<Key>,
    /// The files hard-linked from loose objects (among `files`), and their bytes.
    pub linked: Vec<PathBuf>,
    pub linked_bytes: u64,
}

/// Names, for a file of an entry, the loose object it may be linked from: its content
/// digest and length (`None`: written from the entry).
pub type LinkFn<'a> = dyn Fn(&EntryMeta, &EntryFile) -> Option<Link> + 'a;

/// Which files of an entry to restore, and whether its header is usable here.
pub struct RestoreFilter<'a> {
    /// Files for which this returns false are read past (checked) but not written.
    pub file: &'a dyn Fn(&EntryFile) -> bool,
    /// An entry whose header this refuses is not restored (`Ok(None)`).
    pub meta: &'a dyn Fn(&EntryMeta) -> bool,
    /// Files to take from the store's loose objects by hard link rather than from the
    /// entry (`store::objects`): their content digest and length. A file whose object
    /// is missing or does not check out is restored from the entry.
    pub link: &'a LinkFn<'a>,
}

impl RestoreFilter<'_> {
    pub const ALL: RestoreFilter<'static> = RestoreFilter {
        file: &|_| true,
        meta: &|_| true,
        link: &|_, _| None,
    };
}

/// Restores entry `key` into `dir`: each file at its name below `dir` (a name that would
/// leave `dir` makes the entry corrupt), templates expanded to this machine's roots.
/// Nothing is renamed into place until every digest matched; on any failure the temp
/// files are removed. A corrupt entry is deleted from the store. `Ok(None)`: no such
/// entry, or the filter refused it, or a template names a root this place lacks.
///
/// Files the filter names for linking are linked from their objects first; the entry
/// is then read only as far as its last file that is not linked (the files read are
/// checked against their digests as always; a linked file is checked against its own
/// digest by `store::objects::verified_link`). A link that turns out not to go with the
/// entry (another file than the entry holds, or not from the compile the entry holds)
/// is undone, and the entry restored again without links.
pub fn restore_entry(
    store: &LocalStore,
    key: &Key,
    dir: &Path,
    pm: &PathMap,
    filter: &RestoreFilter<'_>,
) -> Result<Option<Restored>, CacheError> {
    restore_with(store, key, dir, pm, filter, true)
        .or_else(|| restore_with(store, key, dir, pm, filter, false))
        .unwrap_or(Ok(None))
}

/// One restore, with links or without. `None`: undone, because a link did not go with
/// the entry.
fn restore_with(
    store: &LocalStore,
    key: &Key,
    dir: &Path,
    pm: &PathMap,
    filter: &RestoreFilter<'_>,
    links: bool,
) -> Option<Result<Option<Restored>, CacheError>> {
    let mut reader = match store.open_entry(key) {
        Ok(Some(r)) => r,
        Ok(None) => return Some(Ok(None)),
        Err(e) => return Some(Err(e)),
    };
    let meta = reader.meta().clone();
    if !(filter.meta)(&meta) {
        return Some(Ok(None));
    }
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut digests = Vec::new();
    let mut all_digests = Vec::new();
    let mut unexpandable = false;
    let mut mismatched = false;
    let mut object_gone = false;
    let mut unusable = false;
    let mut linked: Vec<PathBuf> = Vec::new();
    let mut linked_bytes = 0u64;
    let mut copied_bytes = 0u64;
    let result = (|| -> Result<(u64, bool), ReadError> {
        let mut dests = Vec::with_capacity(meta.files.len());
        for f in &meta.files {
            dests.push(confined(dir, &f.name).map_err(|e| match e {
                // The entry names a way out: it is damaged or forged.
                Escape::Empty | Escape::NotRelative(_) | Escape::Nul(_) => {
                    ReadError::Corrupt(format!("file name refused: {e}"))
                }
                // A link on the way is this place's, not the entry's.
                Escape::Symlink(..) => ReadError::Io(io::Error::other(e.to_string())),
            })?);
        }
        // Links first: what they cover need not be read from the entry.
        let mut from_object: Vec<Option<Key>> = vec![None; meta.files.len()];
        let mut besides: Vec<Key> = Vec::new();
        for (i, f) in meta.files.iter().enumerate() {
            // A file a thin entry holds by reference comes from its object or not at
            // all: the entry is of no use without it.
            if let Some(o) = f.object {
                if !(filter.file)(f) {
                    continue;
                }
                if let Some(parent) = dests[i].parent() {
                    fs::create_dir_all(parent)?;
                }
                let tmp = restore_temp_path(&dests[i]);
                match place_object(store, &meta, f, &o.digest, o.len, &tmp) {
                    Some(was_linked) => {
                        temps.push((tmp, dests[i].clone()));
                        digests.push(o.digest);
                        from_object[i] = Some(o.digest);
                        if was_linked {
                            linked.push(dests[i].clone());
                            linked_bytes += o.len;
                        } else {
                            copied_bytes += o.len;
                        }
                    }
                    None => {
                        // Gone, or found changed (and removed): the entry can never be
                        // restored again. Present but unreadable now: it stays.
                        object_gone =
                            !crate::store::objects::object_path(store, &o.digest).exists();
                        unusable = true;
                        return Err(ReadError::Io(io::Error::other(
                            "a file the entry holds by reference has no object",
                        )));
                    }
                }
                continue;
            }
            let Some(Link {
                digest,
                len,
                beside,
            }) = (links && (filter.file)(f))
                .then(|| (filter.link)(&meta, f))
                .flatten()
            else {
                continue;
            };
            if let Some(parent) = dests[i].parent() {
                fs::create_dir_all(parent)?;
            }
            let tmp = restore_temp_path(&dests[i]);
            if let Some(was_linked) = place_object(store, &meta, f, &digest, len, &tmp) {
                temps.push((tmp, dests[i].clone()));
                digests.push(digest);
                if was_linked {
                    linked.push(dests[i].clone());
                    linked_bytes += len;
                } else {
                    copied_bytes += len;
                }
                from_object[i] = Some(digest);
                besides.extend(beside);
            }
        }
        // Reading stops where every file left came from an object: each digest is then
        // known, so `all_digests` is whole all the same.
        let last_read = meta
            .files
            .iter()
            .zip(&from_object)
            .rposition(|(f, o)| o.is_none() && f.object.is_none());
        let mut bytes = 0;
        for (i, f) in meta.files.iter().enumerate() {
            if last_read.is_none_or(|last| i > last) {
                all_digests.extend(from_object[i].or(f.object.map(|o| o.digest)));
                continue;
            }
            if f.object.is_some() {
                all_digests.push(reader.skip_object()?.digest);
                continue;
            }
            if let Some(linked) = from_object[i] {
                let (_, digest) = reader.next_file(&mut io::sink())?;
                if digest != linked {
                    // The record named another file than the entry holds.
                    mismatched = true;
                    return Err(ReadError::Io(io::Error::other(
                        "a linked object differs from the entry's file",
                    )));
                }
                all_digests.push(digest);
                continue;
            }
            if !(filter.file)(f) {
                let (_, digest) = reader.next_file(&mut io::sink())?;
                all_digests.push(digest);
                continue;
            }
            let dest = dests[i].clone();
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            let tmp = restore_temp_path(&dest);
            temps.push((tmp.clone(), dest));
            if f.template {
                let mut buf = Vec::new();
                let (n, digest) = reader.next_file(&mut buf)?;
                bytes += n;
                digests.push(digest);
                all_digests.push(digest);
                let text = String::from_utf8(buf)
                    .map_err(|_| ReadError::Corrupt("template is not UTF-8".into()))?;
                let expanded = if f.role == "dep-info" {
                    pm.expand_depinfo(&text)
                } else {
                    pm.expand_text(&text)
                };
                if PathMap::has_token(&expanded) {
                    // Written for a root this place does not have.
                    unexpandable = true;
                    return Err(ReadError::Io(io::Error::other("unexpandable path token")));
                }
                let mut w = create(&tmp, f.executable)?;
                w.write_all(expanded.as_bytes())?;
            } else {
                let mut w = BufWriter::new(create(&tmp, f.executable)?);
                let (n, digest) = reader.next_file(&mut w)?;
                bytes += n;
                digests.push(digest);
                all_digests.push(digest);
                w.flush()?;
            }
        }
        // A link holds only beside the file of the same compile, read from the entry.
        let read: Vec<&Key> = all_digests
            .iter()
            .zip(&from_object)
            .filter(|(_, o)| o.is_none())
            .map(|(d, _)| d)
            .collect();
        if besides.iter().any(|b| !read.contains(&b)) {
            mismatched = true;
            return Err(ReadError::Io(io::Error::other(
                "a linked object is not from the compile the entry holds",
            )));
        }
        let to_the_end = match last_read {
            Some(last) => last + 1 == meta.files.len(),
            None => meta.files.is_empty(),
        };
        Ok((bytes + copied_bytes, to_the_end))
    })()
    .and_then(|(bytes, to_the_end)| {
        // Stopped before the end: every file read was checked; the rest is not used.
        if to_the_end { reader.finish() } else { Ok(()) }.map(|()| bytes)
    });
    if unexpandable || mismatched || unusable {
        for (tmp, _) in &temps {
            let _ = fs::remove_file(tmp);
        }
        if object_gone {
            // A miss; the next compile of the unit stores it anew.
            let _ = fs::remove_file(store.entry_path(key));
        }
        return (!mismatched).then_some(Ok(None));
    }
    let bytes = match commit_restore(store, key, &temps, result) {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    let files = temps
        .into_iter()
        .map(|(_, dest)| dest)
        .zip(digests)
        .collect();
    Some(Ok(Some(Restored {
        meta,
        bytes,
        files,
        digests: all_digests,
        linked,
        linked_bytes,
    })))
}

/// Puts the object of `digest` at `tmp` for the entry's file `f`: `Some(true)` linked,
/// `Some(false)` copied, `None` when there is no sound object. Linked only where
/// `store::objects` says a link is safe (an `.rlib` beside its `.rmeta`, a build
/// script's real executable); everything else a target dir gets is a file of its own
/// (`store::objects::fresh_copy`), with its own time and the usual permissions.
fn place_object(
    store: &LocalStore,
    meta: &crate::store::EntryMeta,
    f: &crate::store::EntryFile,
    digest: &Key,
    len: u64,
    tmp: &Path,
) -> Option<bool> {
    if super::is_real_executable(f) || crate::store::objects::served_by_object(meta, f) {
        return crate::store::objects::link_or_copy(store, digest, len, tmp);
    }
    crate::store::objects::fresh_copy(store, digest, len, tmp, file_mode(f.executable))
        .map(|()| false)
}

/// The mode a restored file is created with: an executable's is the one a linker gives
/// its output, everyone may execute it, less the umask.
fn file_mode(executable: bool) -> u32 {
    if executable { 0o777 } else { 0o666 }
}

/// Creates a file to restore into, with [`file_mode`].
fn create(path: &Path, executable: bool) -> io::Result<File> {
    // A leftover temp file would keep its old mode; a link there would be followed.
    let _ = fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file_mode(executable))
        .open(path)
}

/// Stored messages for this place: tokens expanded to the current paths, and ANSI
/// colour removed when this invocation did not ask for it.
pub fn replay_text(stored: &str, pm: &PathMap, stored_ansi: bool, want_ansi: bool) -> String {
    let text = pm.expand_text(stored);
    if stored_ansi && !want_ansi {
        strip_json_ansi(&text)
    } else {
        text
    }
}

/// Removes ANSI SGR sequences as they appear inside JSON strings (`\u001b[...m`).
fn strip_json_ansi(s: &str) -> String {
    const ESC: &str = "\\u001b[";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(ESC) {
        out.push_str(&rest[..i]);
        let after = &rest[i + ESC.len()..];
        match after.find('m') {
            Some(j) if after[..j].bytes().all(|b| b.is_ascii_digit() || b == b';') => {
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str(ESC);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Ends a restore that wrote `temps` (`(temporary, destination)` pairs): on success
/// every file is renamed into place; on failure the temporary files are removed and the
/// error becomes a cache error (a corrupt entry is discarded from the store).
fn commit_restore<T>(
    store: &LocalStore,
    key: &Key,
    temps: &[(PathBuf, PathBuf)],
    result: Result<T, ReadError>,
) -> Result<T, CacheError> {
    let cleanup = || {
        for (tmp, _) in temps {
            let _ = fs::remove_file(tmp);
        }
    };
    let value = match result {
        Ok(v) => v,
        Err(ReadError::Corrupt(reason)) => {
            cleanup();
            return Err(store.discard(key, reason));
        }
        Err(ReadError::Io(source)) => {
            cleanup();
            return Err(CacheError::Read {
                path: store.entry_path(key),
                source,
            });
        }
    };
    for (tmp, dest) in temps {
        if let Err(source) = fs::rename(tmp, dest) {
            cleanup();
            return Err(CacheError::Write {
                path: dest.clone(),
                source,
            });
        }
        // Renaming a link onto another link of the same file (an object linked there
        // before) leaves both names: the temp one goes.
        if fs::symlink_metadata(tmp).is_ok() {
            let _ = fs::remove_file(tmp);
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi_in_json() {
        let s = r#"{"rendered":"\u001b[0m\u001b[1m\u001b[33mwarning\u001b[0m: x"}"#;
        assert_eq!(strip_json_ansi(s), r#"{"rendered":"warning: x"}"#);
    }
}
