//! The remote tier on a Remote Execution API server (`grpc://`, `grpcs://`): how our
//! named objects map onto its content-addressable storage and action cache. Main type:
//! [`Reapi`], which [`super::RemoteStore`] drives for every remote operation.
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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream::{
    ReadRequest, WriteRequest, byte_stream_client::ByteStreamClient,
};
use futures_util::StreamExt;
use re::action_cache_client::ActionCacheClient;
use re::capabilities_client::CapabilitiesClient;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use sha2::{Digest as _, Sha256};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::config::{RemoteKind, RemoteSpec};
use crate::errors::CacheError;

/// The name of the one output file of an object's action result.
pub const OBJECT: &str = "object";

/// Blobs up to this size travel in batch calls (and whole in memory); larger ones are
/// streamed through ByteStream. Below gRPC's usual 4 MiB message limit, with room for
/// the message around the bytes; a server that allows less in a batch lowers it.
const BATCH_MAX: u64 = 2 << 20;

/// The bytes of one `ByteStream.Write` message.
const CHUNK: usize = 1 << 20;

/// Calls one client has in flight at most; the prefetch's other downloads wait their
/// turn here, not at the server. A REAPI server serves a bounded number of calls at
/// once and refuses the rest (`RESOURCE_EXHAUSTED`): BuildGrid's thread pool holds five
/// per core, at least ten, and the prefetch alone runs 64 downloads at once.
const IN_FLIGHT: usize = 8;

/// The bytes a server may send on one stream before this client acknowledges them.
const STREAM_WINDOW: u32 = 8 << 20;

/// A transfer may take this long per started 8 MiB piece, times the timeout.
const PIECE: u64 = 8 << 20;

/// What the server's capabilities allow this client.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// The largest blob sent or read in a batch call.
    batch: u64,
    /// Whether the server takes `UpdateActionResult` from clients.
    updates: bool,
}

/// A client of one REAPI instance: one HTTP/2 connection (made on first use, remade
/// after a failure) that every request of every thread shares.
pub struct Reapi {
    channel: Channel,
    instance: String,
    auth: Option<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
    spec: RemoteSpec,
    limits: tokio::sync::OnceCell<Result<Limits, (&'static str, String)>>,
    slots: tokio::sync::Semaphore,
}

impl Reapi {
    /// The client for `spec` (a [`RemoteKind::Reapi`]); must run inside the runtime
    /// that drives it. Nothing is sent yet.
    pub fn new(spec: &RemoteSpec, timeout: Duration) -> Result<Reapi, CacheError> {
        let RemoteKind::Reapi {
            endpoint,
            instance,
            token,
            auth_header,
        } = &spec.kind
        else {
            return Err(CacheError::RemoteConfig(format!(
                "{spec} is not a grpc:// remote"
            )));
        };
        let invalid = |what: String| CacheError::Remote {
            code: "remote-config-invalid",
            uri: spec.display().to_string(),
            message: spec.scrub(&what),
        };
        let mut ep = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| invalid(format!("the address {endpoint} is not usable ({e})")))?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            // HTTP/2's default window (64 KiB a stream) lets a stream carry one window
            // per round trip: 2 MB/s at 30 ms. A bundle piece streams 16 MiB.
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(STREAM_WINDOW * IN_FLIGHT as u32);
        if endpoint.starts_with("https://") {
            ep = ep
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| invalid(format!("TLS could not be set up ({e})")))?;
        }
        let auth = match token {
            None => None,
            Some(t) => {
                let (name, value) = match auth_header {
                    Some(h) => (h.as_str(), t.0.clone()),
                    None => ("authorization", format!("Bearer {}", t.0)),
                };
                let key = AsciiMetadataKey::from_bytes(name.as_bytes())
                    .map_err(|_| invalid(format!("`{name}` is not a header name")))?;
                let mut value = AsciiMetadataValue::try_from(value).map_err(|_| {
                    invalid("XCACHE_REMOTE_TOKEN holds characters a header cannot carry".into())
                })?;
                // Never indexed by HTTP/2's header compression, never shown by a log.
                value.set_sensitive(true);
                Some((key, value))
            }
        };
        Ok(Reapi {
            channel: ep.connect_lazy(),
            instance: instance.clone(),
            auth,
            timeout,
            spec: spec.clone(),
            limits: tokio::sync::OnceCell::new(),
            slots: tokio::sync::Semaphore::new(IN_FLIGHT),
        })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some((k, v)) = &self.auth {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
        r
    }

    /// One unary call, bounded by the timeout (retries included); a server that
    /// refuses the connection or resets it is asked twice more, quickly.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, CacheError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_status(f).await.map_err(|s| self.fail(&s))
    }

    /// [`Reapi::call`] with the server's status as it is (a timeout as
    /// `DEADLINE_EXCEEDED`).
    async fn call_status<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let _slot = self.slot().await;
        self.retrying(f).await
    }

    /// [`Reapi::call_status`] for a caller that holds a slot already.
    async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            match tokio::time::timeout_at(deadline, f()).await {
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "no answer within {:?}",
                        self.timeout
                    )));
                }
                Ok(Ok(r)) => return Ok(r.into_inner()),
                // A busy server (all its workers taken: BuildGrid answers so when more
                // calls come at once than its thread pool serves) is asked again until
                // the deadline, backing off; one that refused the connection twice more.
                Ok(Err(s))
                    if (s.code() == Code::ResourceExhausted
                        || (s.code() == Code::Unavailable && attempt < 2))
                        && tokio::time::Instant::now() + delay < deadline =>
                {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(400));
                }
                Ok(Err(s)) => return Err(s),
            }
        }
    }

    /// A place among the calls this client has in flight ([`IN_FLIGHT`]); waiting for
    /// one is not part of a call's time limit.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.acquire().await.ok()
    }

    /// What the server allows: asked once per client, and a failure is kept too (the
    /// threads waiting on the first answer would otherwise each ask again, one timeout
    /// after another, where the remote is given up at the first).
    async fn limits(&self) -> Result<Limits, CacheError> {
        let got = self
            .limits
            .get_or_init(|| async {
                self.ask_limits().await.map_err(|e| match e {
                    CacheError::Remote { code, message, .. } => (code, message),
                    other => ("remote-unavailable", other.to_string()),
                })
            })
            .await;
        got.clone().map_err(|(code, message)| CacheError::Remote {
            code,
            uri: self.spec.display().to_string(),
            message,
        })
    }

    /// One `GetCapabilities`: the digest function, the batch limit, whether clients
    /// may update the action cache.
    async fn ask_limits(&self) -> Result<Limits, CacheError> {
        let caps = self
            .call(|| {
                let mut c = CapabilitiesClient::new(self.channel.clone());
                let r = self.req(re::GetCapabilitiesRequest {
                    instance_name: self.instance.clone(),
                });
                async move { c.get_capabilities(r).await }
            })
            .await?;
        let Some(cache) = caps.cache_capabilities else {
            return Err(self.config(
                "the server offers no cache on this instance (no cache capabilities); check instance=",
            ));
        };
        let sha256 = re::digest_function::Value::Sha256 as i32;
        // An empty list is an old server's way of saying SHA-256.
        if !cache.digest_functions.is_empty() && !cache.digest_functions.contains(&sha256) {
            return Err(self.config(
                "the server does not hash blobs with SHA-256, the only digest function this client speaks",
            ));
        }
        let server_max = u64::try_from(cache.max_batch_total_size_bytes).unwrap_or(0);
        // Room for the digest and the message around the bytes.
        let batch = match server_max {
            0 => BATCH_MAX,
            n => BATCH_MAX.min(n.saturating_sub(4096)),
        };
        Ok(Limits {
            batch,
            updates: cache
                .action_cache_update_capabilities
                .is_none_or(|u| u.update_enabled),
        })
    }

    /// One round trip and a lookup: the server answers, serves this instance, hashes
    /// with SHA-256, and lets this client read its action cache.
    pub async fn check(&self) -> Result<(), CacheError> {
        self.limits().await?;
        self.lookup(&format!("{}/probe", super::LAYOUT))
            .await
            .map(|_| ())
    }

    /// The blob an object's name leads to, if any.
    async fn lookup(&self, path: &str) -> Result<Option<re::Digest>, CacheError> {
        let got = self
            .call_status(|| {
                let mut c = ActionCacheClient::new(self.channel.clone());
                let r = self.req(re::GetActionResultRequest {
                    instance_name: self.instance.clone(),
                    action_digest: Some(name_digest(path)),
                    ..Default::default()
                });
                async move { c.get_action_result(r).await }
            })
            .await;
        match got {
            Ok(result) => Ok(result
                .output_files
                .into_iter()
                .find(|f| f.path == OBJECT)
                .and_then(|f| f.digest)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.fail(&s)),
        }
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
        self.read_digest(path, &digest, range, sink).await
    }

    /// [`Reapi::read`] of the blob `digest` (`path` names it in errors).
    async fn read_digest(
        &self,
        path: &str,
        digest: &re::Digest,
        range: Option<std::ops::Range<u64>>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        let size = u64::try_from(digest.size_bytes).unwrap_or(0);
        let (start, end) = match &range {
            Some(r) => (r.start.min(size), r.end.min(size)),
            None => (0, size),
        };
        let whole = start == 0 && end == size;
        if start == end {
            return Ok(Some(0));
        }
        if whole && size <= self.limits().await?.batch {
            let Some(data) = self.batch_read(digest).await? else {
                return Ok(None);
            };
            if hex::encode(Sha256::digest(&data)) != digest.hash {
                return Err(super::remote::damaged(
                    &self.spec,
                    path,
                    "its blob does not hash to its digest",
                ));
            }
            sink(&data)?;
            return Ok(Some(data.len() as u64));
        }
        let resource = format!("{}blobs/{}/{}", self.prefix(), digest.hash, size);
        // The slot is held while the stream runs: the server's worker is taken as long.
        let _slot = self.slot().await;
        let opened = self
            .retrying(|| {
                let mut c = ByteStreamClient::new(self.channel.clone());
                let r = self.req(ReadRequest {
                    resource_name: resource.clone(),
                    read_offset: start as i64,
                    read_limit: (end - start) as i64,
                });
                async move { c.read(r).await }
            })
            .await;
        let mut stream = match opened {
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(self.fail(&s)),
            Ok(s) => s,
        };
        let mut hasher = whole.then(Sha256::new);
        let mut n = 0u64;
        loop {
            let msg = match tokio::time::timeout(self.timeout, stream.next()).await {
                Err(_) => return Err(self.timed_out()),
                Ok(None) => break,
                Ok(Some(Err(s))) if s.code() == Code::NotFound && n == 0 => return Ok(None),
                Ok(Some(Err(s))) => return Err(self.fail(&s)),
                Ok(Some(Ok(m))) => m,
            };
            if let Some(h) = &mut hasher {
                h.update(&msg.data);
            }
            sink(&msg.data)?;
            n += msg.data.len() as u64;
        }
        if n != end - start {
            return Err(super::remote::damaged(
                &self.spec,
                path,
                &format!("{n} bytes came where {} were asked for", end - start),
            ));
        }
        if let Some(h) = hasher
            && hex::encode(h.finalize()) != digest.hash
        {
            return Err(super::remote::damaged(
                &self.spec,
                path,
                "its blob does not hash to its digest",
            ));
        }
        Ok(Some(n))
    }

    /// One small blob, `None` if the server does not hold it.
    async fn batch_read(&self, digest: &re::Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let got = self
            .call(|| {
                let mut c = ContentAddressableStorageClient::new(self.channel.clone());
                let r = self.req(re::BatchReadBlobsRequest {
                    instance_name: self.instance.clone(),
                    digests: vec![digest.clone()],
                    ..Default::default()
                });
                async move { c.batch_read_blobs(r).await }
            })
            .await?;
        let Some(resp) = got.responses.into_iter().next() else {
            return Err(self.unexpected("BatchReadBlobs answered nothing"));
        };
        match resp.status.as_ref().map_or(0, |s| s.code) {
            0 => Ok(Some(resp.data)),
            5 => Ok(None),
            _ => Err(self.fail(&blob_status(resp.status))),
        }
    }

    /// Stores `source` under the object name `path`: its blob unless the server holds
    /// it already, then the action result that names it. The bytes written.
    pub async fn write(&self, path: &str, source: Source) -> Result<u64, CacheError> {
        let limits = self.limits().await?;
        if !limits.updates {
            return Err(CacheError::Remote {
                code: "remote-denied",
                uri: self.spec.display().to_string(),
                message: "the server takes no action results from clients (its action cache is read-only); use --read-only, or allow updates on the server".into(),
            });
        }
        let digest = self.put_blob(source).await?;
        let size = digest.size_bytes as u64;
        self.record(path, Some(digest)).await?;
        Ok(size)
    }

    /// Whether the server lacks a blob (`FindMissingBlobs`).
    async fn missing(&self, digest: &re::Digest) -> Result<bool, CacheError> {
        let got = self
            .call(|| {
                let mut c = ContentAddressableStorageClient::new(self.channel.clone());
                let r = self.req(re::FindMissingBlobsRequest {
                    instance_name: self.instance.clone(),
                    blob_digests: vec![digest.clone()],
                    ..Default::default()
                });
                async move { c.find_missing_blobs(r).await }
            })
            .await?;
        Ok(!got.missing_blob_digests.is_empty())
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
        self.call(|| {
            let mut c = ActionCacheClient::new(self.channel.clone());
            let r = self.req(re::UpdateActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(name_digest(path)),
                action_result: Some(result.clone()),
                ..Default::default()
            });
            async move { c.update_action_result(r).await }
        })
        .await
        .map(|_| ())
    }

    /// Makes an object name lead nowhere (REAPI deletes nothing: the server's eviction
    /// collects the blob once nothing names it).
    pub async fn delete(&self, path: &str) -> Result<(), CacheError> {
        self.record(path, None).await
    }

    async fn batch_write(&self, digest: &re::Digest, source: &Source) -> Result<(), CacheError> {
        let mut data = Vec::with_capacity(digest.size_bytes as usize);
        for chunk in source.chunks() {
            data.extend_from_slice(&chunk?);
        }
        let got = self
            .call(|| {
                let mut c = ContentAddressableStorageClient::new(self.channel.clone());
                let r = self.req(re::BatchUpdateBlobsRequest {
                    instance_name: self.instance.clone(),
                    requests: vec![re::batch_update_blobs_request::Request {
                        digest: Some(digest.clone()),
                        data: data.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                async move { c.batch_update_blobs(r).await }
            })
            .await?;
        match got.responses.into_iter().next() {
            None => Err(self.unexpected("BatchUpdateBlobs answered nothing")),
            Some(r) if r.status.as_ref().is_none_or(|s| s.code == 0) => Ok(()),
            Some(r) => Err(self.fail(&blob_status(r.status))),
        }
    }

    /// Streams a large blob through `ByteStream.Write`, [`CHUNK`] bytes a message.
    async fn stream_write(&self, digest: &re::Digest, source: Source) -> Result<(), CacheError> {
        let size = digest.size_bytes as u64;
        let resource = format!(
            "{}uploads/{}/blobs/{}/{}",
            self.prefix(),
            uuid_v4(),
            digest.hash,
            size
        );
        // A file that cannot be read ends the stream early (the server then refuses the
        // short blob); the read error is what is reported.
        let local_err: Arc<Mutex<Option<CacheError>>> = Arc::default();
        let slot = local_err.clone();
        let mut offset = 0i64;
        let mut first = true;
        let messages = futures_util::stream::iter(source.chunks().map_while(move |chunk| {
            let data = match chunk {
                Ok(d) => d,
                Err(e) => {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return None;
                }
            };
            let msg = WriteRequest {
                resource_name: if first {
                    resource.clone()
                } else {
                    String::new()
                },
                write_offset: offset,
                finish_write: offset + data.len() as i64 == size as i64,
                data,
            };
            first = false;
            offset = msg.write_offset + msg.data.len() as i64;
            Some(msg)
        }));
        let _slot = self.slot().await;
        let mut c = ByteStreamClient::new(self.channel.clone());
        // Each started piece may take the timeout.
        let limit = self.timeout * size.div_ceil(PIECE).max(1) as u32;
        let got = tokio::time::timeout(limit, c.write(self.req(messages))).await;
        if let Some(e) = local_err.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        match got {
            Err(_) => Err(self.timed_out()),
            Ok(Err(s)) => Err(self.fail(&s)),
            // A server that held the blob already may answer early, with its size.
            Ok(Ok(r)) if r.get_ref().committed_size == size as i64 => Ok(()),
            Ok(Ok(r)) => Err(self.unexpected(&format!(
                "ByteStream.Write committed {} of {size} bytes",
                r.get_ref().committed_size
            ))),
        }
    }

    /// `INSTANCE/` for resource names (nothing for the default instance).
    fn prefix(&self) -> String {
        if self.instance.is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance)
        }
    }

    fn timed_out(&self) -> CacheError {
        CacheError::Remote {
            code: "remote-timed-out",
            uri: self.spec.display().to_string(),
            message: format!(
                "the remote stopped answering (no answer within {:?}); it is left out of the rest of this build",
                self.timeout
            ),
        }
    }

    fn config(&self, what: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-config-invalid",
            uri: self.spec.display().to_string(),
            message: what.to_string(),
        }
    }

    fn unexpected(&self, what: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-unavailable",
            uri: self.spec.display().to_string(),
            message: format!("the remote did not answer as expected ({what})"),
        }
    }

    /// Names the class of a failed call, with what to check in REAPI's terms; the
    /// server's message is scrubbed of the token.
    fn fail(&self, s: &Status) -> CacheError {
        let said = first_line(s.message());
        let lower = said.to_lowercase();
        let (code, what) = match s.code() {
            Code::DeadlineExceeded => (
                "remote-timed-out",
                "the remote stopped answering; it is left out of the rest of this build".to_string(),
            ),
            Code::Unauthenticated | Code::PermissionDenied => (
                "remote-denied",
                "the server refused the request; set XCACHE_REMOTE_TOKEN to a token it accepts (sent as authorization: Bearer TOKEN, or in the header auth_header= names)".to_string(),
            ),
            Code::InvalidArgument | Code::NotFound if lower.contains("instance") => (
                "remote-config-invalid",
                format!(
                    "the server serves no instance `{}`; set instance= in the URI to one it serves",
                    self.instance
                ),
            ),
            Code::Unimplemented => (
                "remote-config-invalid",
                "the server does not offer the REAPI cache services (CAS, ActionCache, ByteStream, Capabilities) here; check the port and instance=".to_string(),
            ),
            _ => (
                "remote-unavailable",
                "the remote did not answer as expected".to_string(),
            ),
        };
        CacheError::Remote {
            code,
            uri: self.spec.display().to_string(),
            message: self.spec.scrub(&format!("{what} ({:?}: {said})", s.code())),
        }
    }
}

/// The CAS by digest, for remote execution (`crate::exec`, `crate::worker`): the same
/// connection, limits, retries and error classes as the object store above. What is
/// read is checked against its digest before anyone uses it.
impl Reapi {
    /// The connection, for the Execution and Bots clients that share it.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The instance name requests carry.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The remote as the user wrote it (its token left out).
    pub(crate) fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    /// A request carrying the token, if any.
    pub(crate) fn request<T>(&self, msg: T) -> Request<T> {
        self.req(msg)
    }

    /// One whole blob, checked against its digest; `None` if the server lacks it.
    pub(crate) async fn blob(&self, digest: &re::Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let mut data = Vec::with_capacity(
            usize::try_from(digest.size_bytes)
                .unwrap_or(0)
                .min(BATCH_MAX as usize),
        );
        let what = format!("blob {}/{}", digest.hash, digest.size_bytes);
        let got = self
            .read_digest(&what, digest, None, &mut |chunk| {
                data.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
        Ok(got.map(|_| data))
    }

    /// Streams one whole blob to `sink`, checked against its digest as it goes (the
    /// caller drops what it wrote when this fails); `None` if the server lacks it.
    pub(crate) async fn blob_to(
        &self,
        digest: &re::Digest,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        let what = format!("blob {}/{}", digest.hash, digest.size_bytes);
        self.read_digest(&what, digest, None, sink).await
    }

    /// Puts `source` in the CAS unless the server holds it already; its digest.
    pub(crate) async fn put_blob(&self, source: Source) -> Result<re::Digest, CacheError> {
        let batch = self.limits().await?.batch;
        let digest = source.digest()?;
        if digest.size_bytes as u64 <= batch {
            // A small blob is sent at once: asking whether the server has it would cost
            // the same round trip as sending it.
            self.batch_write(&digest, &source).await?;
        } else if self.missing(&digest).await? {
            self.stream_write(&digest, source).await?;
        }
        Ok(digest)
    }

    /// The blobs of `digests` the server lacks (`FindMissingBlobs`).
    pub(crate) async fn missing_of(
        &self,
        digests: Vec<re::Digest>,
    ) -> Result<Vec<re::Digest>, CacheError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let got = self
            .call(|| {
                let mut c = ContentAddressableStorageClient::new(self.channel.clone());
                let r = self.req(re::FindMissingBlobsRequest {
                    instance_name: self.instance.clone(),
                    blob_digests: digests.clone(),
                    ..Default::default()
                });
                async move { c.find_missing_blobs(r).await }
            })
            .await?;
        Ok(got.missing_blob_digests)
    }

    /// A failed call of the Execution or Bots service, classed as every other call is.
    pub(crate) fn failed(&self, s: &Status) -> CacheError {
        self.fail(s)
    }
}

/// The digest (SHA-256 and size) of `bytes`.
pub(crate) fn digest_of(bytes: &[u8]) -> re::Digest {
    re::Digest {
        hash: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as i64,
    }
}

/// The bytes of an object to write: in memory (small objects) or files one after the
/// other (entries, bundle pieces), read [`CHUNK`] bytes at a time.
#[derive(Clone)]
pub enum Source {
    Bytes(Arc<Vec<u8>>),
    Files(Vec<PathBuf>),
}

impl Source {
    /// Its digest (SHA-256 and size): a first pass over the bytes, streamed, never whole
    /// in memory.
    pub(crate) fn digest(&self) -> Result<re::Digest, CacheError> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        for chunk in self.chunks() {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(re::Digest {
            hash: hex::encode(hasher.finalize()),
            size_bytes: size as i64,
        })
    }

    fn chunks(&self) -> Chunks {
        Chunks {
            source: self.clone(),
            next: 0,
            file: None,
        }
    }
}

/// The pieces of a [`Source`], in order.
struct Chunks {
    source: Source,
    /// The next file to open, or the offset in the bytes.
    next: usize,
    file: Option<(std::fs::File, PathBuf)>,
}

impl Iterator for Chunks {
    type Item = Result<Vec<u8>, CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &self.source {
            Source::Bytes(b) => {
                let end = b.len().min(self.next + CHUNK);
                let chunk = b.get(self.next..end).filter(|c| !c.is_empty())?.to_vec();
                self.next = end;
                Some(Ok(chunk))
            }
            Source::Files(paths) => loop {
                if self.file.is_none() {
                    let path = paths.get(self.next)?.clone();
                    self.next += 1;
                    match std::fs::File::open(&path) {
                        Ok(f) => self.file = Some((f, path)),
                        Err(source) => return Some(Err(CacheError::Read { path, source })),
                    }
                }
                let (f, path) = self.file.as_mut()?;
                let mut buf = vec![0u8; CHUNK];
                let mut got = 0;
                while got < CHUNK {
                    match f.read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(source) => {
                            let path = path.clone();
                            return Some(Err(CacheError::Read { path, source }));
                        }
                    }
                }
                if got == 0 {
                    self.file = None;
                    continue;
                }
                buf.truncate(got);
                return Some(Ok(buf));
            },
        }
    }
}

impl From<&[&Path]> for Source {
    fn from(paths: &[&Path]) -> Source {
        Source::Files(paths.iter().map(|p| p.to_path_buf()).collect())
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

/// The status of one blob of a batch call, as a gRPC status.
fn blob_status(s: Option<bazel_remote_apis::google::rpc::Status>) -> Status {
    match s {
        Some(s) => Status::new(Code::from_i32(s.code), s.message),
        None => Status::unknown("no status"),
    }
}

/// A random (version 4) UUID, as ByteStream upload names take it.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // Uniqueness between concurrent uploads of one blob is all that matters here: a
    // failed random source falls back to the time and the process.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..8].copy_from_slice(&(t as u64).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
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

    #[test]
    fn chunks_cover_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, vec![1u8; CHUNK + 3]).unwrap();
        std::fs::write(&b, b"xyz").unwrap();
        let src = Source::from(&[a.as_path(), b.as_path()][..]);
        let sizes: Vec<usize> = src.chunks().map(|c| c.unwrap().len()).collect();
        assert_eq!(sizes, [CHUNK, 3, 3]);
        let bytes = Source::Bytes(Arc::new(vec![0; 5]));
        assert_eq!(bytes.chunks().count(), 1);
        assert_eq!(Source::Bytes(Arc::new(Vec::new())).chunks().count(), 0);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
