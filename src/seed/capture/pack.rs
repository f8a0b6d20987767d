//! A unit's pack: its files as they travel ([`PackFile`]), the pack written to the
//! store, and the files planting may hard-link from loose objects instead.

use std::fs;
use std::path::{Path, PathBuf};

use super::stats::Skip;
use crate::key::{Key, Layout, PathMap, identity_digest, recorded_identity};
use crate::seed::record::LinkableFile;
use crate::store::{EntryFile, EntryMeta, EntrySource, LocalStore, ReadAs};

/// Where a pack file's bytes come from.
pub(super) enum Src {
    /// Text with machine paths replaced by tokens.
    Text(String),
    File(PathBuf),
}

pub(super) struct PackFile {
    /// Relative to the target root.
    pub(super) rel: String,
    pub(super) src: Src,
    pub(super) exec: bool,
    /// The file as it was before it was read.
    pub(super) stamp: ReadAs,
}

/// Whether a pack file is a build script's real executable (`*.xcache-real`, behind
/// the shim cargo runs).
pub(super) fn is_real_executable(f: &PackFile) -> bool {
    f.exec && matches!(f.src, Src::File(_)) && f.rel.ends_with(crate::wrapper::REAL_SUFFIX)
}

/// Writes the pack of `files`, whose digests and states when hashed are `listed` and
/// `read_as` (in the same order).
pub(super) fn write_pack(
    store: &LocalStore,
    pack: &Key,
    files: &[PackFile],
    listed: &[(String, Key, bool)],
    read_as: &[Option<ReadAs>],
) -> Result<(), Skip> {
    let meta = EntryMeta::with_files(
        pack,
        files
            .iter()
            .map(|f| EntryFile {
                role: if f.exec { "exec" } else { "file" }.to_string(),
                name: f.rel.clone(),
                template: matches!(&f.src, Src::Text(t) if PathMap::has_token(t)),
                executable: f.exec,
                object: None,
            })
            .collect(),
    );
    // A large file a run wrote (a C library under `OUT_DIR`) is held by reference: the
    // store keeps a copy of it as an object (`store::objects`), and planting copies it
    // out with `copy_file_range` instead of decompressing it. So is a build script's
    // real executable, whose object is made already (when it was compiled, and
    // `linkable_executables`): planting links it. Other executables (cargo's hard link
    // to the shim, the shim) stay in the stream.
    // Held by reference: the digest taken when the file was searched, if it is still
    // as it was then (the store checks), so it is not read a second time.
    let by_reference = |i: usize, p| match read_as[i] {
        Some(read) => EntrySource::Known(p, listed[i].1, read),
        None => EntrySource::Object(p),
    };
    let sources: Vec<(EntrySource<'_>, bool)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.src {
            Src::Text(t) => (EntrySource::Bytes(t.as_bytes()), false),
            Src::File(p) if is_real_executable(f) => (by_reference(i, p), false),
            // (Its length as it was searched: the store checks it still is.)
            Src::File(p)
                if !f.exec
                    && read_as[i]
                        .is_some_and(|r| r.len >= crate::store::objects::OBJECT_MIN_LEN) =>
            {
                (by_reference(i, p), false)
            }
            Src::File(p) => (EntrySource::Path(p), false),
        })
        .collect();
    store
        .put_entry(pack, &meta, &sources, &[])
        .map(|_| ())
        .map_err(|_| Skip::Io)
}

/// The `.rlib` of a library unit, when planting may hard-link it from a loose object
/// (`store::objects`): its `.rmeta` is beside it (planted with the plant's time, it is
/// the unit's newest output for cargo) and the wrapper recorded the content digests of
/// both in sidecars that still match them (the `.rmeta`'s is what the link must be
/// restored beside). The file becomes the object of its digest here.
pub(super) fn linkable_rlib(
    store: &LocalStore,
    root: &Path,
    out_dir: &str,
    crate_name: &str,
    unit_dir: &str,
) -> Vec<LinkableFile> {
    let hash = Layout::hash_of_unit(unit_dir);
    if hash.is_empty() {
        return Vec::new();
    }
    let dir = root.join(out_dir);
    let name = format!("lib{crate_name}-{hash}.rlib");
    let rlib = dir.join(&name);
    let rmeta = dir.join(format!("lib{crate_name}-{hash}.rmeta"));
    let digest_of = |p: &Path| recorded_identity(p).and_then(|id| identity_digest(&id));
    let (Some(digest), Some(beside), Ok(meta)) = (
        digest_of(&rlib),
        digest_of(&rmeta),
        fs::symlink_metadata(&rlib),
    ) else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    crate::store::objects::adopt(store, &rlib, &digest);
    vec![LinkableFile {
        name,
        digest,
        len: meta.len(),
        beside: Some(beside),
    }]
}

/// A build script's real executable in its pack, when planting may hard-link it from a
/// loose object: cargo never reads its time (its outputs are the shim and the hard link
/// to it, planted with the plant's time), and nothing rewrites it in place (a new
/// script is renamed over it). The file becomes the object of its digest here.
pub(super) fn linkable_executables(
    store: &LocalStore,
    files: &[PackFile],
    listed: &[(String, Key, bool)],
) -> Vec<LinkableFile> {
    files
        .iter()
        .zip(listed)
        .filter(|(f, _)| is_real_executable(f))
        .filter_map(|(f, (name, digest, _))| {
            let Src::File(path) = &f.src else {
                return None;
            };
            let meta = fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
            crate::store::objects::adopt(store, path, digest);
            Some(LinkableFile {
                name: name.clone(),
                digest: *digest,
                len: meta.len(),
                beside: None,
            })
        })
        .collect()
}
