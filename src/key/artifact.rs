//! The identity of a built artifact, for the units that depend on it.
//!
//! A dependent's key names each `--extern` by an identity:
//! - `.rlib`/`.rmeta`: the *content digest*. Cargo starts dependents as soon as rustc
//!   announces the metadata file, before the producing wrapper has finished; a content
//!   digest is the same whoever computes it and whenever, so no timing can change a key.
//!   Remapped, non-incremental libraries compile to the same bytes anywhere.
//! - proc-macro and dylib `.so` files: the producing unit's *entry key* (cargo waits for
//!   those units to finish), because linked files need not be byte-identical.
//!
//! The wrapper records the identity in a sidecar (`<artifact>.xcache-key`) with the
//! artifact's size and modification time, so dependents need not hash it again. A
//! sidecar that no longer matches its artifact is ignored and the content digested.
//! Either way the identity is sound: equal identities mean equal bytes or equal inputs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{Key, hash_file};

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format_version: u32,
    identity: String,
    len: u64,
    mtime_ns: u128,
    /// For a [`rooted_identity`]: the content digest of the file it was given to, so
    /// that a planted copy of that file (same bytes, another time) keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// The identity the sidecar beside `artifact` names, whatever size and time it records
/// (a sidecar planted from a seed pack records those of the file it was captured with).
pub fn sidecar_identity(artifact: &Path) -> Option<String> {
    let text = fs::read_to_string(sidecar_path(artifact)).ok()?;
    let s = serde_json::from_str::<Sidecar>(&text).ok()?;
    (s.format_version == 1).then_some(s.identity)
}

/// Where the sidecar of `artifact` is.
pub fn sidecar_path(artifact: &Path) -> PathBuf {
    let mut s = artifact.as_os_str().to_owned();
    s.push(".xcache-key");
    PathBuf::from(s)
}

fn stamp(artifact: &Path) -> io::Result<(u64, u128)> {
    let m = fs::metadata(artifact)?;
    let mtime = m
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((m.len(), mtime))
}

/// `key:<entry key>` from a valid sidecar, else `content:<digest>`.
pub fn artifact_identity(artifact: &Path) -> io::Result<String> {
    if let Some(identity) = recorded_identity(artifact) {
        return Ok(identity);
    }
    Ok(content_identity(&hash_file(artifact)?))
}

/// The identity a valid sidecar records for `artifact` (one that still matches its
/// size and modification time), without hashing anything.
pub fn recorded_identity(artifact: &Path) -> Option<String> {
    let (len, mtime_ns) = stamp(artifact).ok()?;
    let text = fs::read_to_string(sidecar_path(artifact)).ok()?;
    let s = serde_json::from_str::<Sidecar>(&text).ok()?;
    (s.format_version == 1 && s.len == len && s.mtime_ns == mtime_ns).then_some(s.identity)
}

/// The content digest a `content:` identity names.
pub fn identity_digest(identity: &str) -> Option<Key> {
    Key::from_hex(identity.strip_prefix("content:")?)
}

/// The identity of an artifact known by its content digest.
pub fn content_identity(digest: &Key) -> String {
    format!("content:{digest}")
}

/// The identity of an artifact known by the entry key of the unit that produced it.
pub fn key_identity(key: &Key) -> String {
    format!("key:{key}")
}

/// The identity of a build script's executable that holds one of its machine's roots
/// as text (`env!("CARGO_MANIFEST_DIR")`): the key of its compile with the roots
/// tokenized (`entry_key` over the compile's inputs but the roots). Compiled at other
/// roots, the executable differs in bytes and has this identity all the same; a run
/// keyed on it is stored free of its roots only when the script compiled at aliases of
/// the roots, run there, printed and wrote the same (`wrapper::run_check`).
pub fn rooted_identity(key: &Key) -> String {
    format!("rooted:{key}")
}

/// True for a [`rooted_identity`].
pub fn is_rooted_identity(identity: &str) -> bool {
    identity.starts_with("rooted:")
}

/// The key a [`rooted_identity`] names.
pub fn rooted_key(identity: &str) -> Option<Key> {
    Key::from_hex(identity.strip_prefix("rooted:")?)
}

/// The content digest a sidecar records beside a [`rooted_identity`].
pub fn sidecar_content(artifact: &Path) -> Option<Key> {
    let text = fs::read_to_string(sidecar_path(artifact)).ok()?;
    let s = serde_json::from_str::<Sidecar>(&text).ok()?;
    Key::from_hex(s.content.as_deref()?)
}

/// Records `identity` for `artifact` as it is now on disk.
pub fn write_artifact_identity(artifact: &Path, identity: &str) -> io::Result<()> {
    write_identity(artifact, identity, None)
}

/// Records a [`rooted_identity`] for `artifact`, whose content digest is `content`.
pub fn write_rooted_identity(artifact: &Path, key: &Key, content: &Key) -> io::Result<()> {
    write_identity(artifact, &rooted_identity(key), Some(content))
}

fn write_identity(artifact: &Path, identity: &str, content: Option<&Key>) -> io::Result<()> {
    let (len, mtime_ns) = stamp(artifact)?;
    let s = Sidecar {
        format_version: 1,
        identity: identity.to_string(),
        len,
        mtime_ns,
        content: content.map(Key::to_hex),
    };
    let text = serde_json::to_vec(&s).map_err(io::Error::other)?;
    crate::fsx::write_atomic(&sidecar_path(artifact), &text)
}
