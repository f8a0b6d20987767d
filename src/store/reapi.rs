//! The remote tier on a Remote Execution API server (`grpc://`, `grpcs://`): how our
//! named objects map onto its content-addressable storage and action cache. Main type:
//! [`ReapiObjects`], which [`super::RemoteStore`] drives for every remote operation,
//! through the one REAPI client (`crate::reapi`).
//!
//! # The mapping, and why it is safe
//!
//! Every object the store writes (entry, seed pack, manifest, bundle piece, index) has a
//! name (`v2/entries/<key>.xce`, …). REAPI finds bytes by their digest only, so:
//!
//! - the bytes go to the CAS as one blob, under the SHA-256 of their content: small
//!   blobs at once with `BatchUpdateBlobs` (asking first would cost the same round
//!   trip), large ones streamed through `ByteStream.Write` once `FindMissingBlobs` said
//!   the server lacks them (a large blob it holds is never sent again);
//! - the name becomes an action digest, the SHA-256 of `cargo-xcache/<name>` (never an
//!   `Action` of a real build: those hash a serialized message, which never starts with
//!   these bytes), and `UpdateActionResult` records an `ActionResult` whose one output
//!   file [`OBJECT`] names the blob by digest.
//!
//! A read asks `GetActionResult` for the name, then reads the blob it names
//! (`BatchReadBlobs` when small, `ByteStream.Read` with an offset and a limit for large
//! ones and for ranges of bundle pieces), checking that a whole blob hashes to its
//! digest. A server may evict a blob that an action result still names (BuildGrid
//! drops such results on read; others keep them): the blob then reads as absent, which
//! is a miss like any other, and the next build that stores the unit uploads it again.
//! Nothing read is trusted for being in the action cache: a blob is checked against its
//! digest, an entry against its key (and its signature when keys are trusted) before
//! use, as on every other backend. `delete` records an action result with no output
//! file, which reads as absent: REAPI has no deletion, and the server's own eviction
//! (LRU, TTL) collects the blobs nothing names any more.

use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use sha2::{Digest as _, Sha256};

use crate::config::RemoteSpec;
use crate::errors::CacheError;
use crate::reapi::{ReadError, Reapi, Source};

/// The name of the one output file of an object's action result.
pub const OBJECT: &str = "object";

/// The store's named objects on a REAPI server.
pub struct ReapiObjects {
    client: Reapi,
}

impl ReapiObjects {
    /// The client for `spec` (a `grpc://` remote); must run inside the runtime that
    /// drives it. Nothing is sent yet.
    pub fn new(spec: &RemoteSpec, timeout: Duration) -> Result<ReapiObjects, CacheError> {
        Ok(ReapiObjects {
            client: Reapi::new(spec, timeout)?,
        })
    }

    /// One round trip and a lookup: the server answers, serves this instance, hashes
    /// with SHA-256, and lets this client read its action cache.
    pub async fn check(&self) -> Result<(), CacheError> {
        self.client.check_capabilities().await?;
        self.lookup(&format!("{}/probe", super::LAYOUT))
            .await
            .map(|_| ())
    }

    /// The blob an object's name leads to, if any.
    async fn lookup(&self, path: &str) -> Result<Option<re::Digest>, CacheError> {
        Ok(self
            .client
            .action_result(name_digest(path))
            .await?
            .and_then(|result| {
                result
                    .output_files
                    .into_iter()
                    .find(|f| f.path == OBJECT)
                    .and_then(|f| f.digest)
            }))
    }

    /// Streams the bytes `range` of an object (the whole object when `None`) to
    /// `sink`. `Ok(None)` if absent, its blob included; the bytes received otherwise.
    pub async fn read(
        &self,
        path: &str,
        range: Option<std::ops::Range<u64>>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        let Some(digest) = self.lookup(path).await? else {
            return Ok(None);
        };
        match self.client.read_blob(&digest, range, sink).await {
            Ok(got) => Ok(got),
            Err(ReadError::Failed(e)) => Err(e),
            Err(ReadError::Damaged(what)) => Err(super::remote::service::damaged(
                self.client.spec(),
                path,
                &what,
            )),
        }
    }

    /// Stores `source` under the object name `path`: its blob unless the server holds
    /// it already, then the action result that names it. The bytes written.
    pub async fn write(&self, path: &str, source: Source) -> Result<u64, CacheError> {
        if !self.client.takes_updates().await? {
            return Err(CacheError::Remote {
                code: "remote-denied",
                uri: self.client.spec().display().to_string(),
                message: "the server takes no action results from clients (its action cache is read-only); use --read-only, or allow updates on the server".into(),
            });
        }
        let digest = self.client.put_blob(source).await?;
        let size = digest.size_bytes as u64;
        self.record(path, Some(digest)).await?;
        Ok(size)
    }

    /// Records the action result of an object name: naming `digest`, or nothing.
    async fn record(&self, path: &str, digest: Option<re::Digest>) -> Result<(), CacheError> {
        let result = re::ActionResult {
            output_files: digest
                .into_iter()
                .map(|d| re::OutputFile {
                    path: OBJECT.into(),
                    digest: Some(d),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.client
            .update_action_result(name_digest(path), result)
            .await
    }

    /// Makes an object name lead nowhere (REAPI deletes nothing: the server's eviction
    /// collects the blob once nothing names it).
    pub async fn delete(&self, path: &str) -> Result<(), CacheError> {
        self.record(path, None).await
    }
}

/// The action digest an object name maps to.
fn name_digest(path: &str) -> re::Digest {
    let name = format!("cargo-xcache/{path}");
    re::Digest {
        hash: hex::encode(Sha256::digest(name.as_bytes())),
        size_bytes: name.len() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_distinct_digests_of_their_own() {
        let a = name_digest("v2/entries/00.xce");
        let b = name_digest("v2/manifests/00.json");
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 64);
        assert_eq!(a.size_bytes, "cargo-xcache/v2/entries/00.xce".len() as i64);
    }
}
