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
use opendal::{ErrorKind, Operator};

use crate::config::{RemoteKind, RemoteSpec, UPLOAD_TIMEOUT_FACTOR, Writes};
use crate::errors::CacheError;
use crate::key::Key;

mod advice;
pub(super) mod service;
mod update;

use advice::BUCKET_MISSING;
use service::{damaged, operator, redis_check, remote_failure};

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

/// What speaks to the service: opendal, or a REAPI client (`super::reapi`).
enum Client {
    Dal(Operator),
    /// Boxed: a REAPI client holds its channel, limits and token, a few hundred bytes.
    Reapi(Box<super::reapi::ReapiObjects>),
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
                Client::Reapi(Box::new(super::reapi::ReapiObjects::new(spec, timeout)?))
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
                    message: BUCKET_MISSING.into(),
                }
            } else {
                remote_failure(&self.spec, e)
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
            .map_err(|e| remote_failure(&self.spec, e))
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
                Err(e) => return Err(remote_failure(&self.spec, e)),
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
                        .map_err(|err| remote_failure(&self.spec, err))?;
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
            Err(e) => Err(remote_failure(&self.spec, e)),
        }
    }

    /// Writes a small object. On a store that keeps each name once, a name already
    /// there is kept: every object written this way is named by its key or content.
    pub fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<(), CacheError> {
        let op = match &self.client {
            Client::Dal(op) => op,
            Client::Reapi(r) => {
                let source = crate::reapi::Source::Bytes(std::sync::Arc::new(bytes));
                return self.rt.block_on(r.write(path, source)).map(|_| ());
            }
        };
        if self.spec.writes == Writes::Once {
            return self.create(path, bytes).map(|_| ());
        }
        self.write_small(op, path, bytes, false)
            .map_err(|e| remote_failure(&self.spec, e))
    }

    /// One write of a small object (only if no object has its name, when
    /// `if_not_exists`), made again once after making a WebDAV collection that was not
    /// there ([`RemoteStore::make_parent_after`]).
    fn write_small(
        &self,
        op: &Operator,
        path: &str,
        bytes: Vec<u8>,
        if_not_exists: bool,
    ) -> opendal::Result<()> {
        // A Buffer clones by reference count, not by copying the bytes.
        let bytes = opendal::Buffer::from(bytes);
        let write = |bytes: opendal::Buffer| {
            self.rt.block_on(async {
                op.write_with(path, bytes)
                    .if_not_exists(if_not_exists)
                    .await
                    .map(|_| ())
            })
        };
        match write(bytes.clone()) {
            Err(e) if self.make_parent_after(e.kind(), path) => write(bytes),
            other => other,
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
        let fail = |e: opendal::Error| (Some(e.kind()), remote_failure(spec, e));
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
            Err((Some(_), _)) if self.spec.writes == Writes::Once && self.has_object(path)? => {
                Ok(0)
            }
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
        let remote_err = |e: opendal::Error| (Some(e.kind()), remote_failure(spec, e));
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
    fn has_version(&self, path: &str) -> Result<bool, CacheError> {
        self.has_object(path)
    }
    fn read_version(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.get_bytes(path)
    }
    fn create_version(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError> {
        RemoteStore::create(self, path, bytes)
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
