//! The identity of a built artifact, for the units that depend on it.
//!
//! A dependent's key names each `--extern` by the *entry key* of the unit that produced
//! it, read from a small sidecar file (`<artifact>.xcache-key`) the wrapper writes next to
//! every output. The sidecar records the artifact's size and modification time; if the
//! artifact changed since (another tool rewrote it), the sidecar is ignored and the
//! artifact's content digest is used instead. Either way the identity is sound: equal
//! identities mean equal inputs or equal bytes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{Key, hash_file};

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format_version: u32,
    key: String,
    len: u64,
    mtime_ns: u128,
}

fn sidecar_path(artifact: &Path) -> PathBuf {
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
    let (len, mtime_ns) = stamp(artifact)?;
    if let Ok(text) = fs::read_to_string(sidecar_path(artifact))
        && let Ok(s) = serde_json::from_str::<Sidecar>(&text)
        && s.format_version == 1
        && s.len == len
        && s.mtime_ns == mtime_ns
    {
        return Ok(format!("key:{}", s.key));
    }
    Ok(format!("content:{}", hash_file(artifact)?))
}

/// Records that `artifact`, as it is now on disk, was produced from `key`.
pub fn write_artifact_identity(artifact: &Path, key: &Key) -> io::Result<()> {
    let (len, mtime_ns) = stamp(artifact)?;
    let s = Sidecar {
        format_version: 1,
        key: key.to_hex(),
        len,
        mtime_ns,
    };
    let text = serde_json::to_vec(&s).map_err(io::Error::other)?;
    crate::store::write_atomic(&sidecar_path(artifact), &text)
}
