//! The records many builds change at once (a workspace's index, a manifest): merged
//! with what the object holds when written, by conditional writes where the service
//! takes them, by its own compare-and-swap (Redis, memcached), as chains of versions on
//! a store that keeps each name once (`super::crate::store::chain`), and read back elsewhere.

use std::time::Duration;

use opendal::ErrorKind;

use super::{Client, RemoteStore, remote_failure};
use crate::config::Writes;
use crate::errors::CacheError;
use crate::key::Key;

/// How many rounds [`RemoteStore::update_bytes`] makes at most.
pub const UPDATE_ATTEMPTS: u32 = 8;

/// How long a writer without conditional writes waits before it reads its change back a
/// second time: longer than another writer takes from its read to its write, on a busy
/// machine. Paid only by a build that changed the object.
pub const UPDATE_SETTLE: Duration = Duration::from_millis(300);

/// Which version of an object a read saw, for a conditional write.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Version {
    /// The object was absent.
    Absent,
    /// The object's ETag, or its generation on GCS ([`Conditions::Generation`]).
    Tag(String),
    /// Not known (a service without conditional writes, or one that gave no ETag): the
    /// write is plain, and read back.
    Unknown,
    /// It changed while it was read.
    Changed,
}

/// [`RemoteStore::update_bytes`] through the service's own compare-and-swap: read,
/// merge, write only if the object is still as read; a lost race reads again.
fn update_by_swap(
    swap: &crate::store::swap::Swap,
    path: &str,
    merge: &dyn Fn(Option<&[u8]>) -> Vec<u8>,
    holds: &dyn Fn(&[u8]) -> bool,
) -> Result<(), crate::store::swap::SwapError> {
    // A failure is tried again once: a service that does not answer is not waited for
    // round after round.
    let mut failed = None;
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(crate::store::chain::update_backoff(attempt));
        }
        let round = || -> Result<bool, crate::store::swap::SwapError> {
            let (now, seen) = swap.read(path)?;
            if now.as_deref().is_some_and(holds) {
                return Ok(true);
            }
            let bytes = merge(now.as_deref());
            swap.write(path, now.as_deref(), &seen, &bytes)
        };
        match round() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(crate::store::swap::SwapError::Refused) => {
                return Err(crate::store::swap::SwapError::Refused);
            }
            // A timeout or a dropped connection: the next round asks again, once.
            Err(e) if failed.is_some() => return Err(e),
            Err(e) => failed = Some(e),
        }
    }
    failed.map_or(Ok(()), Err)
}

/// How opendal takes conditional writes on a service ([`update_by_swap`] serves Redis
/// and memcached, which it writes without).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Conditions {
    /// None (WebDAV, the GHA cache, files; Redis and memcached without their own
    /// compare-and-swap): written, then read back.
    None,
    /// `If-Match` on the ETag read, `If-None-Match: *` for a new object (S3, Azure Blob).
    Etag,
    /// A generation precondition on the generation read, `0` for a new object (GCS's
    /// `ifGenerationMatch`); the object is read back after the write all the same.
    Generation,
}

/// How one conditional write went.
enum Written {
    Done,
    /// Another writer changed the object between the read and the write.
    Lost,
}

impl RemoteStore {
    /// A record many builds change (a workspace's index, a manifest) as it is now:
    /// `None` if absent. On a store that keeps each name once, the newest version of
    /// its chain (`crate::store::chain`).
    pub fn get_record(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
        if self.spec.writes == Writes::Once {
            return crate::store::chain::newest(self, path);
        }
        self.get_bytes(path)
    }

    /// Whether an object has this name.
    pub(super) fn has_object(&self, path: &str) -> Result<bool, CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(_) => return Ok(self.get_bytes(path)?.is_some()),
        };
        match self.rt.block_on(op.stat(path)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(remote_failure(&self.spec, e)),
        }
    }

    /// Writes an object only if no object has its name (where the service takes the
    /// condition; the GitHub Actions cache refuses a second write of a name by itself):
    /// false when one had. A write refused otherwise counts as taken when the name is
    /// there after it (a bucket's policy refusing a replacing write).
    pub(super) fn create(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError> {
        // A REAPI server's names are action results, which take no condition (and
        // `writes=once` is refused for `grpc://`).
        let Client::Dal(op) = &self.client else {
            return self.put_bytes(path, bytes).map(|()| true);
        };
        let conditional = op.info().capability().write_with_if_not_exists;
        match self.write_small(op, path, bytes, conditional) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists
                ) =>
            {
                Ok(false)
            }
            Err(e) => match self.has_object(path) {
                Ok(true) => Ok(false),
                _ => Err(remote_failure(&self.spec, e)),
            },
        }
    }

    /// Changes a small object that many builds change at once (a workspace's index, a
    /// manifest): `merge` makes the new bytes from what the object holds now (`None`:
    /// absent), and `holds` says whether bytes keep this writer's change. An object that
    /// holds it already is not written (a warm build's index). No writer's change is lost
    /// to another's: where the service takes conditional writes (S3 and Azure `If-Match`
    /// with `If-None-Match` for a new object; GCS a generation precondition, `0` for a
    /// new object; Redis a script that compares and sets in one step; memcached `cas`,
    /// and `add` for a new object) the write names the version read, and one that lost
    /// the race reads, merges and writes again. Elsewhere (WebDAV, the GHA cache, files,
    /// `rediss://`, or a Redis or memcached that refuses its compare-and-swap: scripts
    /// refused by its ACL, memcached started with `-C`) the object is read back after
    /// the write, and again
    /// after `UPDATE_SETTLE` (300 ms), by when a writer that read it before this write has
    /// written too (`settle`: the index's writers pay it; a manifest's, written by each
    /// compile, read back once only); while it does not hold the change it is merged and
    /// written again. At most `UPDATE_ATTEMPTS` (8) rounds, each after a short random wait;
    /// a change still not held then costs a prefetch later, never a wrong build. A
    /// compare-and-swap that fails otherwise (a timeout, a dropped connection) is tried
    /// again once, then is an error: a write without the condition could undo another
    /// writer's swap, which is not read back.
    pub fn update_bytes(
        &self,
        path: &str,
        merge: &dyn Fn(Option<&[u8]>) -> Vec<u8>,
        holds: &dyn Fn(&[u8]) -> bool,
        settle: bool,
    ) -> Result<(), CacheError> {
        if self.spec.writes == Writes::Once {
            return crate::store::chain::update(self, path, merge, holds);
        }
        if let Some(swap) = self.swapper() {
            return match update_by_swap(swap, path, merge, holds) {
                Ok(()) => Ok(()),
                // The service refuses its compare-and-swap (so it does to every
                // writer): written and read back from here on.
                Err(crate::store::swap::SwapError::Refused) => {
                    self.swap_failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.update_bytes(path, merge, holds, settle)
                }
                // Never written without the condition instead: that could undo
                // another writer's swap, which nobody reads back.
                Err(crate::store::swap::SwapError::Failed(message)) => Err(CacheError::Remote {
                    code: "remote-unavailable",
                    uri: self.display().to_string(),
                    message,
                }),
            };
        }
        let conditional = self.conditions();
        // Under a precondition a lost race is refused, not left to a settling wait.
        let settle = settle && conditional == Conditions::None;
        let mut wrote = false;
        // Another writer came between: the next round waits a little first.
        let mut collided = false;
        for attempt in 0..UPDATE_ATTEMPTS {
            if collided {
                std::thread::sleep(crate::store::chain::update_backoff(attempt));
            }
            collided = true;
            let (now, version) = self.read_versioned(path, conditional)?;
            if now.as_deref().is_some_and(holds) {
                if !wrote || !settle {
                    return Ok(());
                }
                std::thread::sleep(UPDATE_SETTLE);
                if self.get_bytes(path)?.is_some_and(|b| holds(&b)) {
                    return Ok(());
                }
                continue;
            }
            if version == Version::Changed {
                continue;
            }
            let bytes = merge(now.as_deref());
            match self.write_versioned(path, bytes, &version, conditional)? {
                // The service kept it only if nobody wrote between: done. (A generation
                // precondition is read back once all the same: GCS's emulator,
                // fake-gcs-server, takes an upload whatever `ifGenerationMatch` says.)
                Written::Done if version != Version::Unknown && conditional == Conditions::Etag => {
                    return Ok(());
                }
                // Read back at once.
                Written::Done => {
                    wrote = true;
                    collided = false;
                }
                Written::Lost => {}
            }
        }
        Ok(())
    }

    /// Adds an input set to the manifest of a first-level key, keeping what other
    /// builds add at once ([`RemoteStore::update_bytes`], without its settling wait: two
    /// builds compile one unit at one moment seldom, and each compile waits here).
    pub fn add_variant(&self, l1: &Key, v: &crate::store::Variant) -> Result<(), CacheError> {
        let manifest = |bytes: Option<&[u8]>| {
            bytes
                .map(crate::store::Manifest::from_slice)
                .unwrap_or_default()
        };
        self.update_bytes(
            &Self::manifest_path(l1),
            &|now| {
                let mut m = manifest(now);
                m.add(v.clone());
                serde_json::to_vec(&m).unwrap_or_default()
            },
            &|bytes| {
                let m = manifest(Some(bytes));
                m.variants.len() >= crate::store::manifest::MAX_VARIANTS
                    || m.variants.iter().any(|x| x.entry == v.entry)
            },
            false,
        )
    }

    /// The service's own compare-and-swap, unless it has none or it failed once.
    fn swapper(&self) -> Option<&crate::store::swap::Swap> {
        if self.swap_failed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.swap
            .get_or_init(|| crate::store::swap::Swap::open(&self.spec))
            .as_ref()
    }

    /// Whether the service writes only when the object is as read or absent, and how.
    fn conditions(&self) -> Conditions {
        let Client::Dal(op) = &self.client else {
            return Conditions::None;
        };
        let cap = op.info().capability();
        if !cap.write_with_if_not_exists {
            Conditions::None
        } else if cap.write_with_if_match && cap.read_with_if_match {
            Conditions::Etag
        } else if cap.write_with_if_version_match && cap.read_with_if_version_match {
            Conditions::Generation
        } else {
            Conditions::None
        }
    }

    /// An object's bytes (`None`: absent) and, under `conditions`, the version they are.
    fn read_versioned(
        &self,
        path: &str,
        conditions: Conditions,
    ) -> Result<(Option<Vec<u8>>, Version), CacheError> {
        let op = match &self.client {
            Client::Dal(op) if conditions != Conditions::None => op,
            _ => return Ok((self.get_bytes(path)?, Version::Unknown)),
        };
        let tag = match self.rt.block_on(op.stat(path)) {
            Ok(meta) if conditions == Conditions::Etag => meta.etag().map(str::to_string),
            Ok(meta) => meta.version().map(str::to_string),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, Version::Absent)),
            Err(e) => return Err(remote_failure(&self.spec, e)),
        };
        let Some(tag) = tag else {
            return Ok((self.get_bytes(path)?, Version::Unknown));
        };
        let read = self.rt.block_on(async {
            let read = op.read_with(path);
            if conditions == Conditions::Etag {
                read.if_match(&tag).await
            } else {
                read.if_version_match(&tag).await
            }
        });
        match read {
            Ok(buf) => Ok((Some(buf.to_vec()), Version::Tag(tag))),
            // Changed (or gone) since the stat: the round is made again.
            Err(e) if matches!(e.kind(), ErrorKind::ConditionNotMatch | ErrorKind::NotFound) => {
                Ok((None, Version::Changed))
            }
            Err(e) => Err(remote_failure(&self.spec, e)),
        }
    }

    /// Writes `bytes`, only if the object is still `version` where that is known.
    fn write_versioned(
        &self,
        path: &str,
        bytes: Vec<u8>,
        version: &Version,
        conditions: Conditions,
    ) -> Result<Written, CacheError> {
        let op = match (&self.client, version) {
            (Client::Dal(op), Version::Absent | Version::Tag(_)) => op,
            _ => {
                self.put_bytes(path, bytes)?;
                return Ok(Written::Done);
            }
        };
        let write = op.write_with(path, opendal::Buffer::from(bytes));
        let write = match version {
            Version::Tag(tag) if conditions == Conditions::Etag => write.if_match(tag),
            Version::Tag(generation) => write.if_version_match(generation),
            _ => write.if_not_exists(true),
        };
        match self.rt.block_on(async { write.await }) {
            Ok(_) => Ok(Written::Done),
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Ok(Written::Lost),
            Err(e) => Err(remote_failure(&self.spec, e)),
        }
    }
}
