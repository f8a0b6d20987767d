//! The remote tier, through opendal: S3 and compatibles, GCS, Azure Blob, Redis,
//! memcached, WebDAV, the GitHub Actions cache, a shared folder; and a Remote Execution
//! API server's cache through its own client (`reapi`). Main type: [`RemoteStore`].
//!
//! The wrapper is synchronous and short-lived, so the store drives opendal's async API
//! on a small current-thread runtime of its own. The front-end's prefetch opens one store
//! for all its downloads ([`RemoteStore::open_shared`]): one runtime and one pool of
//! connections that many threads use at once, so a connection opened for one request
//! (a round trip for its handshake) serves the next. Transfers stream in 8 MiB pieces
//! between the remote and a file; an entry is never held in memory whole.
//!
//! Every request, retries included, and every piece of a transfer must answer within
//! the spec's timeout ([`RemoteSpec::timeout`], 2 s unless `XCACHE_REMOTE_TIMEOUT` says
//! otherwise; uploads, which run beside the build, get [`UPLOAD_TIMEOUT_FACTOR`] times as
//! long). The first request that does not marks the remote down for the whole build
//! (the callers share a state file), so a remote that stops answering at any point
//! costs a build about that long once, not once per request.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator, services};

use crate::config::{RemoteKind, RemoteSpec, UPLOAD_TIMEOUT_FACTOR, Writes};
use crate::errors::CacheError;
use crate::key::Key;

const PIECE: usize = 8 << 20;

/// A remote store.
pub struct RemoteStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    spec: RemoteSpec,
    display: String,
    key_value: bool,
    /// WebDAV servers need a collection before a PUT into it; opendal makes it, but two
    /// uploads racing to make the same one can lose (seen here about once in four full
    /// test runs against SeaweedFS). A failed write is retried once after making it.
    needs_dirs: bool,
    /// The service's own compare-and-swap (Redis, memcached), made at the first update;
    /// `None` where there is none, or after it failed once (updates then write and read
    /// back).
    swap: std::sync::OnceLock<Option<super::swap::Swap>>,
    swap_failed: std::sync::atomic::AtomicBool,
}

/// How many rounds [`RemoteStore::update_bytes`] makes at most.
pub const UPDATE_ATTEMPTS: u32 = 8;

/// How long a writer without conditional writes waits before it reads its change back a
/// second time: longer than another writer takes from its read to its write, on a busy
/// machine. Paid only by a build that changed the object.
pub const UPDATE_SETTLE: Duration = Duration::from_millis(300);

/// The wait before round `attempt` of an update: random, growing with the attempt
/// (10-40 ms, then 20-80 ms, …, at most 640 ms), so that writers that collided do not
/// collide again.
pub(super) fn update_backoff(attempt: u32) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let base = 10u64 << attempt.min(6).saturating_sub(1);
    let spread = u64::from(u16::from_le_bytes(b)) % (3 * base + 1);
    Duration::from_millis(base + spread)
}

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
    swap: &super::swap::Swap,
    path: &str,
    merge: &dyn Fn(Option<&[u8]>) -> Vec<u8>,
    holds: &dyn Fn(&[u8]) -> bool,
) -> Result<(), super::swap::SwapError> {
    // A failure is tried again once: a service that does not answer is not waited for
    // round after round.
    let mut failed = None;
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(update_backoff(attempt));
        }
        let round = || -> Result<bool, super::swap::SwapError> {
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
            Err(super::swap::SwapError::Refused) => return Err(super::swap::SwapError::Refused),
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

/// What speaks to the service: opendal, or a REAPI client (`super::reapi`).
enum Client {
    Dal(Operator),
    /// Boxed: a REAPI client holds its channel, limits and token, a few hundred bytes.
    Reapi(Box<super::reapi::Reapi>),
}

/// One object of a remote listing ([`RemoteStore::list`]).
#[derive(Clone, Debug)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    /// When it was last written, if the service says.
    pub modified: Option<std::time::SystemTime>,
}

impl RemoteStore {
    /// Builds the client for one thread. Nothing is sent yet.
    pub fn open(spec: &RemoteSpec) -> Result<RemoteStore, CacheError> {
        Self::open_with(spec, false, spec.timeout)
    }

    /// Builds a client that many threads use at once (it is `Sync`): its runtime runs
    /// the connections in the background, so a connection one thread opened stays alive
    /// for the next request of any thread. Nothing is sent yet.
    pub fn open_shared(spec: &RemoteSpec) -> Result<RemoteStore, CacheError> {
        Self::open_with(spec, true, spec.timeout)
    }

    /// [`RemoteStore::open_shared`] for what is written after the build's compiles
    /// started (uploads, bundles, the index): those requests compete with rustc for the
    /// CPU and nothing waits for them until cargo ends, so each may stall
    /// [`UPLOAD_TIMEOUT_FACTOR`] times as long as a read before the remote is given up.
    /// Measured here: at a load average of 5 to 20 on 2 cores, uploads to a SeaweedFS on
    /// the same machine stalled past 2 s in every cold build of the benchmark project.
    pub fn open_for_uploads(spec: &RemoteSpec) -> Result<RemoteStore, CacheError> {
        Self::open_with(spec, true, spec.timeout * UPLOAD_TIMEOUT_FACTOR)
    }

    fn open_with(
        spec: &RemoteSpec,
        shared: bool,
        timeout: Duration,
    ) -> Result<RemoteStore, CacheError> {
        // The HTTP client for the HTTP-based services (a no-op after the first call).
        opendal::install_default();
        let display = spec.display().to_string();
        let rt = if shared {
            // Two workers drive the connections; the callers' threads drive their own
            // requests (`block_on`).
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .map_err(|e| CacheError::Remote {
            code: "remote-unavailable",
            uri: display.clone(),
            message: format!("failed to start the I/O runtime: {e}"),
        })?;
        let client = match &spec.kind {
            RemoteKind::Reapi { .. } => {
                // The client's connection is a task of this runtime.
                let _in_rt = rt.enter();
                Client::Reapi(Box::new(super::reapi::Reapi::new(spec, timeout)?))
            }
            _ => Client::Dal(operator(spec, timeout)?),
        };
        Ok(RemoteStore {
            rt,
            client,
            spec: spec.clone(),
            key_value: spec.is_key_value(),
            needs_dirs: matches!(spec.kind, RemoteKind::Webdav { .. }),
            display,
            swap: std::sync::OnceLock::new(),
            swap_failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The URI, without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Object path of an entry.
    pub fn entry_path(key: &Key) -> String {
        format!("{}/entries/{}.xce", super::LAYOUT, key.to_hex())
    }

    /// Object path of a manifest.
    pub fn manifest_path(l1: &Key) -> String {
        format!("{}/manifests/{}.json", super::LAYOUT, l1.to_hex())
    }

    /// One round trip that tells a working remote from a broken one: a missing bucket,
    /// refused credentials or an unreachable server are errors here, where a plain
    /// lookup could not tell them from a miss.
    pub fn check(&self) -> Result<(), CacheError> {
        match &self.spec.kind {
            RemoteKind::Redis {
                endpoint,
                db,
                username,
                password,
            } => redis_check(
                &self.spec,
                std::slice::from_ref(endpoint),
                *db,
                username.as_deref(),
                password,
            )?,
            RemoteKind::RedisCluster {
                nodes,
                username,
                password,
            } => redis_check(&self.spec, nodes, 0, username.as_deref(), password)?,
            _ => {}
        }
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => return self.rt.block_on(r.check()),
        };
        // A service that cannot list (key-value stores, the GitHub Actions cache) is
        // asked for one key instead: a listing would fail as unsupported.
        let by_key = self.key_value || !op.info().capability().list;
        let result = self.rt.block_on(async {
            if by_key {
                match op.stat(&format!("{}/probe", super::LAYOUT)).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    other => other.map(|_| ()),
                }
            } else {
                // One page of one entry: `list_with` would walk every page, one round
                // trip each, before answering.
                let mut lister = op
                    .lister_with(&format!("{}/", super::LAYOUT))
                    .limit(1)
                    .await?;
                lister.try_next().await.map(|_| ())
            }
        });
        result.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                CacheError::Remote {
                    code: "remote-bucket-missing",
                    uri: self.display.clone(),
                    message: "the bucket or container does not exist; create it or fix the name"
                        .into(),
                }
            } else {
                classify(&self.spec, e)
            }
        })
    }

    /// Deletes an object (used by `doctor` for its probe). On a REAPI server, whose
    /// clients delete nothing, the object's name is made to lead nowhere.
    pub fn delete(&self, path: &str) -> Result<(), CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => return self.rt.block_on(r.delete(path)),
        };
        self.rt
            .block_on(op.delete(path))
            .map_err(|e| classify(&self.spec, e))
    }

    /// Every object under `v1/`, with its size and when it was last written (for `cargo
    /// xcache gc --remote`). `Ok(None)` for services that cannot list their objects
    /// (key-value stores, REAPI servers).
    pub fn list(&self) -> Result<Option<Vec<Listed>>, CacheError> {
        let op = match &self.client {
            Client::Dal(op) if !self.key_value && op.info().capability().list => op,
            _ => return Ok(None),
        };
        self.rt.block_on(async {
            let entries = match op
                .list_with(&format!("{}/", super::LAYOUT))
                .recursive(true)
                .await
            {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Some(Vec::new())),
                Err(e) => return Err(classify(&self.spec, e)),
            };
            let mut out = Vec::new();
            for e in entries {
                if e.metadata().is_dir() {
                    continue;
                }
                let mut meta = e.metadata().clone();
                // Some services list names only: their times come from a stat.
                if meta.last_modified().is_none() {
                    meta = op
                        .stat(e.path())
                        .await
                        .map_err(|err| classify(&self.spec, err))?;
                }
                out.push(Listed {
                    path: e.path().to_string(),
                    size: meta.content_length(),
                    modified: meta.last_modified().map(std::time::SystemTime::from),
                });
            }
            Ok(Some(out))
        })
    }

    /// A record many builds change (a workspace's index, a manifest) as it is now:
    /// `None` if absent. On a store that keeps each name once, the newest version of
    /// its chain (`super::chain`).
    pub fn get_record(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
        if self.spec.writes == Writes::Once {
            return super::chain::newest(self, path);
        }
        self.get_bytes(path)
    }

    /// Whether an object has this name.
    fn exists(&self, path: &str) -> Result<bool, CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(_) => return Ok(self.get_bytes(path)?.is_some()),
        };
        match self.rt.block_on(op.stat(path)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(classify(&self.spec, e)),
        }
    }

    /// Writes an object only if no object has its name (where the service takes the
    /// condition; the GitHub Actions cache refuses a second write of a name by itself):
    /// false when one had. A write refused otherwise counts as taken when the name is
    /// there after it (a bucket's policy refusing a replacing write).
    fn create(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(_) => {
                self.put_bytes(path, bytes)?;
                return Ok(true);
            }
        };
        let conditional = op.info().capability().write_with_if_not_exists;
        let write = op
            .write_with(path, opendal::Buffer::from(bytes))
            .if_not_exists(conditional);
        match self.rt.block_on(async { write.await }) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConditionNotMatch | ErrorKind::AlreadyExists
                ) =>
            {
                Ok(false)
            }
            Err(e) => match self.exists(path) {
                Ok(true) => Ok(false),
                _ => Err(classify(&self.spec, e)),
            },
        }
    }

    /// Small objects (manifests): `None` if absent.
    pub fn get_bytes(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => {
                let mut out = Vec::new();
                let got = self.rt.block_on(r.read(path, None, &mut |chunk| {
                    out.extend_from_slice(chunk);
                    Ok(())
                }))?;
                return Ok(got.map(|_| out));
            }
        };
        match self.rt.block_on(op.read(path)) {
            Ok(buf) => Ok(Some(buf.to_vec())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify(&self.spec, e)),
        }
    }

    /// Writes a small object. On a store that keeps each name once, a name already
    /// there is kept: every object written this way is named by its key or content.
    pub fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<(), CacheError> {
        if self.spec.writes == Writes::Once {
            return self.create(path, bytes).map(|_| ());
        }
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => {
                let source = super::reapi::Source::Bytes(std::sync::Arc::new(bytes));
                return self.rt.block_on(r.write(path, source)).map(|_| ());
            }
        };
        // A Buffer clones by reference count, not by copying the bytes.
        let bytes = opendal::Buffer::from(bytes);
        let first = self.rt.block_on(op.write(path, bytes.clone()));
        match first {
            Ok(_) => Ok(()),
            Err(e) if self.make_parent_after(e.kind(), path) => self
                .rt
                .block_on(op.write(path, bytes))
                .map(|_| ())
                .map_err(|e| classify(&self.spec, e)),
            Err(e) => Err(classify(&self.spec, e)),
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
            return super::chain::update(self, path, merge, holds);
        }
        if let Some(swap) = self.swapper() {
            return match update_by_swap(swap, path, merge, holds) {
                Ok(()) => Ok(()),
                // The service refuses its compare-and-swap (so it does to every
                // writer): written and read back from here on.
                Err(super::swap::SwapError::Refused) => {
                    self.swap_failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.update_bytes(path, merge, holds, settle)
                }
                // Never written without the condition instead: that could undo
                // another writer's swap, which nobody reads back.
                Err(super::swap::SwapError::Failed(message)) => Err(CacheError::Remote {
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
                std::thread::sleep(update_backoff(attempt));
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
    pub fn add_variant(&self, l1: &Key, v: &super::Variant) -> Result<(), CacheError> {
        let manifest =
            |bytes: Option<&[u8]>| bytes.map(super::Manifest::from_slice).unwrap_or_default();
        self.update_bytes(
            &Self::manifest_path(l1),
            &|now| {
                let mut m = manifest(now);
                m.add(v.clone());
                serde_json::to_vec(&m).unwrap_or_default()
            },
            &|bytes| {
                let m = manifest(Some(bytes));
                m.variants.len() >= super::manifest::MAX_VARIANTS
                    || m.variants.iter().any(|x| x.entry == v.entry)
            },
            false,
        )
    }

    /// The service's own compare-and-swap, unless it has none or it failed once.
    fn swapper(&self) -> Option<&super::swap::Swap> {
        if self.swap_failed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.swap
            .get_or_init(|| super::swap::Swap::open(&self.spec))
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
            Err(e) => return Err(classify(&self.spec, e)),
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
            Err(e) => Err(classify(&self.spec, e)),
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
            Err(e) => Err(classify(&self.spec, e)),
        }
    }

    /// For a store that needs directories: after a failed write that was not refused
    /// for lack of permission, makes the object's parent and says the write may be
    /// tried again.
    fn make_parent_after(&self, kind: ErrorKind, path: &str) -> bool {
        let Client::Dal(op) = &self.client else {
            return false;
        };
        if !self.needs_dirs || kind == ErrorKind::PermissionDenied {
            return false;
        }
        let Some((parent, _)) = path.rsplit_once('/') else {
            return false;
        };
        self.rt
            .block_on(op.create_dir(&format!("{parent}/")))
            .is_ok()
    }

    /// Streams an object into `dest`. `Ok(None)` if absent; the bytes received otherwise.
    /// With the size known in advance, the object is read without asking for its size
    /// first (one request instead of two).
    pub fn get_file(
        &self,
        path: &str,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<Option<u64>, CacheError> {
        self.get_file_once(path, dest, size).map_err(|(_, e)| e)
    }

    /// Streams an entry (or seed pack) into `dest` and checks its header before anyone
    /// adopts it. An object that is empty, shorter than the index says, or not an entry
    /// of this key is `remote-entry-damaged`: not used, and replaced by the next build
    /// that stores the unit; the remote stays in use.
    pub fn get_entry(
        &self,
        key: &Key,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<Option<u64>, CacheError> {
        let path = Self::entry_path(key);
        let mut whole_check = size.is_none();
        let got = match self.get_file_once(&path, dest, size) {
            // The index's size is a hint: entries are not byte-for-byte reproducible,
            // and another build may have stored the same key since. An object shorter
            // than the hint (a range past its end fails, or comes back short) is read
            // again whole and checked whole: damaged only if it does not hold.
            Ok(Some(n)) if size.is_some_and(|s| s != n) => {
                whole_check = true;
                self.get_file_once(&path, dest, None)
            }
            Err((Some(kind), e))
                if size.is_some()
                    && kind != ErrorKind::PermissionDenied
                    && e.code() == "remote-unavailable" =>
            {
                whole_check = true;
                self.get_file_once(&path, dest, None)
            }
            other => other,
        };
        let Some(n) = got.map_err(|(_, e)| e)? else {
            return Ok(None);
        };
        if n == 0 {
            let _ = std::fs::remove_file(dest);
            return Err(self.damaged(&path, "it is empty"));
        }
        if let Err(what) = verify_entry(dest, key, whole_check) {
            let _ = std::fs::remove_file(dest);
            return Err(self.damaged(&path, &what));
        }
        Ok(Some(n))
    }

    /// The error for an object that is not what it claims to be.
    pub fn damaged(&self, path: &str, what: &str) -> CacheError {
        damaged(&self.spec, path, what)
    }

    /// [`RemoteStore::get_file`] without the damage checks; a failure of the remote
    /// comes back with opendal's error kind.
    fn get_file_once(
        &self,
        path: &str,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<Option<u64>, (Option<ErrorKind>, CacheError)> {
        let werr = |source| CacheError::Write {
            path: dest.to_path_buf(),
            source,
        };
        let mut file = None;
        let got = self.stream_once(path, self.whole(size), &mut |chunk| {
            let f = match &mut file {
                Some(f) => f,
                None => file.insert(std::fs::File::create(dest).map_err(werr)?),
            };
            f.write_all(chunk).map_err(werr)
        });
        let empty = file.is_none();
        drop(file);
        match got {
            Ok(Some(n)) => {
                if empty {
                    std::fs::File::create(dest).map_err(|e| (None, werr(e)))?;
                }
                Ok(Some(n))
            }
            other => {
                let _ = std::fs::remove_file(dest);
                other
            }
        }
    }

    /// Streams an object to `sink`, piece by piece as it arrives, never whole in
    /// memory. `Ok(None)` if absent; the bytes received otherwise. With `size` known,
    /// an object store is asked for exactly that many bytes (no length query first).
    /// An error of `sink` ends the transfer and comes back as it is.
    pub fn get_stream(
        &self,
        path: &str,
        size: Option<u64>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        self.stream_once(path, self.whole(size), sink)
            .map_err(|(_, e)| e)
    }

    /// Streams the bytes `range` of an object to `sink`, as [`RemoteStore::get_stream`]
    /// does. Object stores only: a key-value store serves whole values, and is refused.
    pub fn get_range(
        &self,
        path: &str,
        range: std::ops::Range<u64>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        if self.key_value {
            return Err(CacheError::Remote {
                code: "remote-unavailable",
                uri: self.display.clone(),
                message: format!("{path}: a key-value store serves no ranges of a value"),
            });
        }
        self.stream_once(path, Some(range), sink)
            .map_err(|(_, e)| e)
    }

    /// The range that reads a whole object of `size` bytes, when asking for it saves a
    /// request. A key-value store is asked for the whole value in one GET: a range,
    /// even `0..len`, costs it a length query first (one more round trip per entry).
    /// An object store reads exactly the indexed size, when it is known.
    fn whole(&self, size: Option<u64>) -> Option<std::ops::Range<u64>> {
        // A REAPI blob's size comes with its digest: it is read whole, and checked.
        let sized = !self.key_value && matches!(self.client, Client::Dal(_));
        size.filter(|_| sized).map(|n| 0..n)
    }

    /// [`RemoteStore::get_stream`] of `range`, else of the whole object; a failure of
    /// the remote comes back with opendal's error kind.
    fn stream_once(
        &self,
        path: &str,
        range: Option<std::ops::Range<u64>>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, (Option<ErrorKind>, CacheError)> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => {
                return self
                    .rt
                    .block_on(r.read(path, range, sink))
                    .map_err(|e| (None, e));
            }
        };
        let spec = &self.spec;
        let display = &self.display;
        let fail = |e: opendal::Error| (Some(e.kind()), classify(spec, e));
        self.rt.block_on(async {
            // One request per object, streamed: a chunked reader would ask for its
            // length first when it is not known (a HEAD, one more round trip) and then
            // fetch it piece by piece, one round trip after another; a key-value store
            // hands a value back whole anyway.
            let reader = match op.reader(path).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            let stream = match range {
                Some(r) => reader.into_bytes_stream(r).await,
                None => reader.into_bytes_stream(..).await,
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            let mut n = 0u64;
            loop {
                let chunk = match stream.try_next().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        // The stream wraps opendal's error in an io::Error.
                        let inner = e.get_ref().and_then(|i| i.downcast_ref::<opendal::Error>());
                        let not_found = e.kind() == std::io::ErrorKind::NotFound
                            || inner.is_some_and(|o| o.kind() == ErrorKind::NotFound);
                        if not_found {
                            return Ok(None);
                        }
                        return Err(
                            match e
                                .into_inner()
                                .and_then(|b| b.downcast::<opendal::Error>().ok())
                            {
                                Some(oe) => fail(*oe),
                                None => (
                                    Some(ErrorKind::Unexpected),
                                    CacheError::Remote {
                                        code: "remote-unavailable",
                                        uri: display.clone(),
                                        message: "the remote did not answer as expected".into(),
                                    },
                                ),
                            },
                        );
                    }
                };
                sink(&chunk).map_err(|e| (None, e))?;
                n += chunk.len() as u64;
            }
            Ok(Some(n))
        })
    }

    /// Streams a file to an object.
    pub fn put_file(&self, path: &str, src: &Path) -> Result<u64, CacheError> {
        self.put_files(path, &[src])
    }

    /// Streams files, one after the other, to one object (a bundle piece). On a store
    /// that keeps each name once, a name already there is kept (0 bytes sent): every
    /// object written this way is named by its key or content.
    pub fn put_files(&self, path: &str, srcs: &[&Path]) -> Result<u64, CacheError> {
        let result = match self.put_file_once(path, srcs) {
            Err((Some(kind), _)) if self.make_parent_after(kind, path) => {
                self.put_file_once(path, srcs)
            }
            r => r,
        };
        match result {
            Ok(n) => Ok(n),
            Err((Some(_), _)) if self.spec.writes == Writes::Once && self.exists(path)? => Ok(0),
            Err((_, e)) => Err(e),
        }
    }

    /// One upload; a failure of the remote comes back with opendal's error too.
    fn put_file_once(
        &self,
        path: &str,
        srcs: &[&Path],
    ) -> Result<u64, (Option<ErrorKind>, CacheError)> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => {
                return self
                    .rt
                    .block_on(r.write(path, srcs.into()))
                    .map_err(|e| (None, e));
            }
        };
        let spec = &self.spec;
        let remote_err = |e: opendal::Error| (Some(e.kind()), classify(spec, e));
        self.rt.block_on(async {
            let mut w = op
                .writer_with(path)
                .chunk(PIECE)
                .if_not_exists(
                    self.spec.writes == Writes::Once
                        && op.info().capability().write_with_if_not_exists,
                )
                .await
                .map_err(remote_err)?;
            let mut buf = vec![0u8; PIECE];
            let mut n = 0u64;
            for src in srcs {
                let rerr = |source| {
                    (
                        None,
                        CacheError::Read {
                            path: src.to_path_buf(),
                            source,
                        },
                    )
                };
                let mut file = std::fs::File::open(src).map_err(rerr)?;
                loop {
                    let got = crate::fsx::read_full(&mut file, &mut buf).map_err(rerr)?;
                    if got == 0 {
                        break;
                    }
                    w.write(buf[..got].to_vec()).await.map_err(remote_err)?;
                    n += got as u64;
                }
            }
            w.close().await.map_err(remote_err)?;
            Ok(n)
        })
    }
}

impl super::chain::Versions for RemoteStore {
    fn exists(&self, path: &str) -> Result<bool, CacheError> {
        RemoteStore::exists(self, path)
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.get_bytes(path)
    }
    fn create(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError> {
        RemoteStore::create(self, path, bytes)
    }
}

/// The error for an object of `spec` that is not what it claims to be.
pub(super) fn damaged(spec: &RemoteSpec, path: &str, what: &str) -> CacheError {
    CacheError::Remote {
        code: "remote-entry-damaged",
        uri: spec.display().to_string(),
        message: if spec.writes == Writes::Once {
            format!(
                "object {path} is damaged ({what}); it was not used, and it stays until the store drops it (the store keeps each name once, so no build can replace it)"
            )
        } else {
            format!(
                "object {path} is damaged ({what}); it was not used, and the next build that stores the unit replaces it"
            )
        },
    }
}

/// Whether the entry file at `path` is an entry of `key`: its header always, every
/// file's digest too when `whole` (when its length was not known in advance; a restore
/// checks every digest anyway). What is wrong, otherwise.
pub fn verify_entry(path: &Path, key: &Key, whole: bool) -> Result<(), String> {
    let check = || -> Result<(), super::entry::ReadError> {
        let mut r = super::entry::EntryReader::open(path, key)?;
        if whole {
            for _ in 0..r.meta().files.len() {
                r.next_file(&mut std::io::sink())?;
            }
            r.finish()?;
        }
        Ok(())
    };
    check().map_err(|e| match e {
        super::entry::ReadError::Corrupt(c) => c,
        other => format!("{other:?}"),
    })
}

/// The key prefix and the login of a Redis (or Redis Cluster) client.
fn redis_login(
    b: services::Redis,
    username: &Option<String>,
    password: &Option<crate::config::Secret>,
) -> services::Redis {
    let mut b = b.root("/xcache/");
    if let Some(u) = username {
        b = b.username(u);
    }
    if let Some(p) = password {
        b = b.password(&p.0);
    }
    b
}

/// Whether a Redis server takes these credentials and this database: a direct
/// connection that says so at once. (opendal's connection pool retries a refused login
/// until the request times out, and then cannot tell a wrong password from a server
/// that does not answer.) For a cluster (`RemoteKind::RedisCluster`), the first of its
/// `nodes` that accepts a connection is asked too whether it is a cluster node and
/// whether the cluster serves every slot. `rediss://` nodes are left to opendal.
fn redis_check(
    spec: &RemoteSpec,
    nodes: &[String],
    db: i64,
    username: Option<&str>,
    password: &Option<crate::config::Secret>,
) -> Result<(), CacheError> {
    let fail = |code: &'static str, what: String| CacheError::Remote {
        code,
        uri: spec.display().to_string(),
        message: spec.scrub(&what),
    };
    let cluster = matches!(spec.kind, RemoteKind::RedisCluster { .. });
    let timeout = spec.timeout;
    let addrs: Vec<(String, u16)> = nodes
        .iter()
        .filter_map(|n| {
            let (h, p) = n.strip_prefix("redis://")?.rsplit_once(':')?;
            let h = h.trim_start_matches('[').trim_end_matches(']');
            Some((h.to_string(), p.parse::<u16>().ok()?))
        })
        .collect();
    if addrs.is_empty() {
        return Ok(());
    }
    let settings = super::swap::redis_settings(db, username, password);
    use redis::IntoConnectionInfo;
    let clients = addrs
        .into_iter()
        .map(|(h, p)| {
            redis::ConnectionAddr::Tcp(h, p)
                .into_connection_info()
                .map(|i| i.set_redis_settings(settings.clone()))
                .and_then(redis::Client::open)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            fail(
                "remote-config-invalid",
                format!("the Redis URI is not usable ({e})"),
            )
        })?;
    // The client's timeout bounds each read of its handshake, not the handshake: the
    // whole check is bounded here (the thread ends by itself, its reads time out).
    // A node that refuses the connection hands over to the next one.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut last = None;
        for client in clients {
            match client.get_connection_with_timeout(timeout) {
                Ok(mut conn) => {
                    let info = if cluster {
                        redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut conn)
                    } else {
                        Ok(String::new())
                    };
                    let _ = tx.send(info);
                    return;
                }
                Err(e) if e.is_connection_refusal() => last = Some(e),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if let Some(e) = last {
            let _ = tx.send(Err(e));
        }
    });
    let result = rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer",
        )))
    });
    let result = match result {
        Ok(info) if cluster && !info.lines().any(|l| l.trim() == "cluster_state:ok") => {
            return Err(fail(
                "remote-unavailable",
                "the Redis Cluster does not serve every hash slot (cluster_state is not ok); check `redis-cli cluster info` on its nodes".into(),
            ));
        }
        Ok(_) => Ok(()),
        Err(e)
            if cluster
                && e.to_string()
                    .to_lowercase()
                    .contains("cluster support disabled") =>
        {
            return Err(fail(
                "remote-config-invalid",
                format!(
                    "the server is not a cluster node ({}); for a single Redis server write redis://host:port/db",
                    first_line(&e.to_string())
                ),
            ));
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == redis::ErrorKind::AuthenticationFailed
                || e.code()
                    .is_some_and(|c| matches!(c, "WRONGPASS" | "NOAUTH" | "NOPERM")) =>
        {
            Err(fail(
                "remote-denied",
                format!(
                    "Redis refused the login ({}); {}",
                    first_line(&e.to_string()),
                    redis_login_form(cluster)
                ),
            ))
        }
        Err(e) if e.to_string().to_lowercase().contains("db index") => Err(fail(
            "remote-database-invalid",
            format!(
                "Redis has no database {db} ({}); use a number below the server's `databases` setting (16 by default) in redis://host:port/DB",
                first_line(&e.to_string())
            ),
        )),
        Err(e) if e.is_timeout() => Err(fail(
            "remote-timed-out",
            format!(
                "Redis did not answer within {:?}; the remote is left out of this build",
                timeout
            ),
        )),
        Err(e) => Err(fail(
            "remote-unavailable",
            format!(
                "Redis did not answer as expected ({})",
                first_line(&e.to_string())
            ),
        )),
    }
}

/// Where a Redis password goes, for the advice on a refused login.
fn redis_login_form(cluster: bool) -> &'static str {
    if cluster {
        "put the password in the URI as redis+cluster://:PASSWORD@host:port,host:port,… (or redis+cluster://USER:PASSWORD@… for an ACL user)"
    } else {
        "put the password in the URI as redis://:PASSWORD@host:port/db (or redis://USER:PASSWORD@… for an ACL user)"
    }
}

/// What to check for refused credentials, in the remote's own terms.
fn denied_advice(kind: &RemoteKind) -> &'static str {
    match kind {
        RemoteKind::S3 { .. } => {
            "the credentials were refused; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        }
        RemoteKind::Gcs { .. } => {
            "the credentials were refused; check GOOGLE_APPLICATION_CREDENTIALS (or anonymous=true for an emulator)"
        }
        RemoteKind::Azblob { .. } => {
            "the credentials were refused; check account= (or AZURE_STORAGE_ACCOUNT) and AZURE_STORAGE_KEY"
        }
        RemoteKind::Redis { .. } => {
            "Redis refused the login; check the password in redis://:PASSWORD@host:port/db"
        }
        RemoteKind::RedisCluster { .. } => {
            "Redis refused the login; check the password in redis+cluster://:PASSWORD@host:port,host:port,…"
        }
        RemoteKind::Memcached { .. } => "memcached refused the request",
        RemoteKind::Webdav { .. } => {
            "the WebDAV server refused the login; check webdav://USER:PASSWORD@host/path"
        }
        RemoteKind::Ghac => {
            "the cache service refused the token; run inside a GitHub Actions job (ACTIONS_RUNTIME_TOKEN)"
        }
        RemoteKind::Fs { .. } => "the folder is not readable or writable by this user",
        RemoteKind::Reapi { .. } => {
            "the server refused the request; set XCACHE_REMOTE_TOKEN to a token it accepts"
        }
    }
}

/// What to set when no credentials were found at all.
fn missing_advice(kind: &RemoteKind) -> &'static str {
    match kind {
        RemoteKind::Gcs { .. } => {
            "no credentials were found; set GOOGLE_APPLICATION_CREDENTIALS, run where instance credentials exist, or add anonymous=true for an emulator"
        }
        RemoteKind::Azblob { .. } => {
            "no credentials were found; set AZURE_STORAGE_KEY (and account= or AZURE_STORAGE_ACCOUNT)"
        }
        _ => {
            "no credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or run where instance credentials exist"
        }
    }
}

/// Names the class of a remote failure, with a sentence saying what to check in that
/// remote's own terms. Credentials are scrubbed from the service's message.
fn classify(spec: &RemoteSpec, e: opendal::Error) -> CacheError {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let (code, what) = if lower.contains("timeout reached") {
        (
            "remote-timed-out",
            "the remote stopped answering; it is left out of the rest of this build",
        )
    } else if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || (lower.contains("listobjects") && lower.contains("status: 404"))
    {
        (
            "remote-bucket-missing",
            "the bucket or container does not exist; create it or fix the name",
        )
    } else if lower.contains("authorizationheadermalformed")
        || lower.contains("permanentredirect")
        || lower.contains("wrong region")
    {
        (
            "remote-wrong-region",
            "the bucket lives in another region; set region= in the URI or AWS_REGION",
        )
    } else if lower.contains("failed to load signing credential")
        || lower.contains("no valid credential")
    {
        ("remote-denied", missing_advice(&spec.kind))
    } else if e.kind() == ErrorKind::PermissionDenied
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("accessdenied")
        || lower.contains("authenticationfailed")
        || lower.contains("authorizationfailure")
        || lower.contains("noauth")
        || lower.contains("wrongpass")
        || lower.contains("status: 401")
        || lower.contains("status: 403")
    {
        ("remote-denied", denied_advice(&spec.kind))
    } else if lower.contains("too large")
        || lower.contains("entitytoolarge")
        // memcached's binary protocol: status 3 is "value too large".
        || (lower.contains("service: memcached") && lower.contains("message: 3"))
    {
        (
            "remote-entry-too-large",
            "the entry is larger than the backend accepts; it stays in the local store",
        )
    } else if e.kind() == ErrorKind::ConfigInvalid {
        (
            "remote-config-invalid",
            "the remote's configuration is invalid",
        )
    } else {
        (
            "remote-unavailable",
            "the remote did not answer as expected",
        )
    };
    CacheError::Remote {
        code,
        uri: spec.display().to_string(),
        message: spec.scrub(&format!("{what} ({})", first_line(&text))),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// The opendal operator of a service, with its retries and time limits.
fn operator(spec: &RemoteSpec, timeout: Duration) -> Result<Operator, CacheError> {
    let cfg_err = |e: opendal::Error| classify(spec, e);
    let op = match &spec.kind {
        RemoteKind::S3 {
            bucket,
            root,
            endpoint,
            region,
            virtual_host_style,
        } => {
            let mut b = services::S3::default().bucket(bucket).root(root);
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            // opendal needs a region; S3-compatible servers accept any.
            b = b.region(region.as_deref().unwrap_or("us-east-1"));
            if *virtual_host_style {
                b = b.enable_virtual_host_style();
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Gcs {
            bucket,
            root,
            endpoint,
            anonymous,
        } => {
            let mut b = services::Gcs::default().bucket(bucket).root(root);
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            if *anonymous {
                b = b
                    .skip_signature()
                    .disable_vm_metadata()
                    .disable_config_load();
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Azblob {
            container,
            root,
            endpoint,
            account,
            key,
        } => {
            let mut b = services::Azblob::default().container(container).root(root);
            if let Some(k) = key {
                b = b.account_key(&k.0);
            }
            if let Some(a) = account {
                b = b.account_name(a);
                if endpoint.is_none() {
                    b = b.endpoint(&format!("https://{a}.blob.core.windows.net"));
                }
            }
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Redis {
            endpoint,
            db,
            username,
            password,
        } => {
            let b = services::Redis::default().endpoint(endpoint).db(*db);
            Operator::new(redis_login(b, username, password)).map_err(cfg_err)?
        }
        RemoteKind::RedisCluster {
            nodes,
            username,
            password,
        } => {
            // The client asks these nodes for the slot map and follows redirections
            // to the others.
            let b = services::Redis::default().cluster_endpoints(&nodes.join(","));
            Operator::new(redis_login(b, username, password)).map_err(cfg_err)?
        }
        RemoteKind::Memcached { endpoint } => Operator::new(
            services::Memcached::default()
                .endpoint(endpoint)
                .root("/xcache/"),
        )
        .map_err(cfg_err)?,
        RemoteKind::Webdav {
            endpoint,
            root,
            username,
            password,
        } => {
            let mut b = services::Webdav::default().endpoint(endpoint).root(root);
            if let Some(u) = username {
                b = b.username(u);
            }
            if let Some(p) = password {
                b = b.password(&p.0);
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Ghac => {
            Operator::new(services::Ghac::default().root("/xcache/")).map_err(cfg_err)?
        }
        RemoteKind::Fs { root } => {
            Operator::new(services::Fs::default().root(root)).map_err(cfg_err)?
        }
        RemoteKind::Reapi { .. } => {
            return Err(CacheError::RemoteConfig(format!(
                "{spec}: a REAPI server is reached through its own client, not opendal"
            )));
        }
    };
    // Temporary failures (a reset connection, a busy server) are retried twice,
    // quickly, inside the time limit: a remote that hangs costs `timeout` per
    // request, retries included, never three timeouts in a row. A transfer may take
    // longer as a whole, but each of its pieces must answer within the limit.
    let op = op
        .layer(
            RetryLayer::new()
                .with_max_times(2)
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(300))
                .with_jitter(),
        )
        .layer(
            TimeoutLayer::new()
                .with_timeout(timeout)
                .with_io_timeout(timeout),
        );
    Ok(op)
}
