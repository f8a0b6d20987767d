//! The connection to one REAPI instance: its token, its limits (asked once), retries,
//! the calls one client has in flight, and how a failed call is named.

use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use re::action_cache_client::ActionCacheClient;
use re::capabilities_client::CapabilitiesClient;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::config::{RemoteKind, RemoteSpec};
use crate::errors::CacheError;

/// Blobs up to this size travel in batch calls (and whole in memory); larger ones are
/// streamed through ByteStream. Below gRPC's usual 4 MiB message limit, with room for
/// the message around the bytes; a server that allows less in a batch lowers it.
pub(super) const BATCH_MAX: u64 = 2 << 20;

/// Calls one client has in flight at most; the prefetch's other downloads wait their
/// turn here, not at the server. A REAPI server serves a bounded number of calls at
/// once and refuses the rest (`RESOURCE_EXHAUSTED`): BuildGrid's thread pool holds five
/// per core, at least ten, and the prefetch alone runs 64 downloads at once.
const IN_FLIGHT: usize = 8;

/// The bytes a server may send on one stream before this client acknowledges them.
const STREAM_WINDOW: u32 = 8 << 20;

/// What the server's capabilities allow this client.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// The largest blob sent or read in a batch call.
    pub(super) batch: u64,
    /// Whether the server takes `UpdateActionResult` from clients.
    pub(super) updates: bool,
}

/// A client of one REAPI instance: one HTTP/2 connection (made on first use, remade
/// after a failure) that every request of every thread shares.
pub struct Reapi {
    pub(super) channel: Channel,
    pub(super) instance: String,
    auth: Option<(AsciiMetadataKey, AsciiMetadataValue)>,
    pub(super) timeout: Duration,
    pub(super) spec: RemoteSpec,
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

    pub(super) fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some((k, v)) = &self.auth {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
        r
    }

    /// One unary call, bounded by the timeout (retries included); a server that
    /// refuses the connection or resets it is asked twice more, quickly.
    pub(super) async fn call<T, F, Fut>(&self, f: F) -> Result<T, CacheError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_status(f).await.map_err(|s| self.fail(&s))
    }

    /// [`Reapi::call`] with the server's status as it is (a timeout as
    /// `DEADLINE_EXCEEDED`).
    pub(super) async fn call_status<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let _slot = self.slot().await;
        self.retrying(f).await
    }

    /// [`Reapi::call_status`] for a caller that holds a slot already.
    pub(super) async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T, Status>
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
    pub(super) async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.acquire().await.ok()
    }

    /// What the server allows: asked once per client, and a failure is kept too (the
    /// threads waiting on the first answer would otherwise each ask again, one timeout
    /// after another, where the remote is given up at the first).
    pub(super) async fn limits(&self) -> Result<Limits, CacheError> {
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

    /// Whether the server serves this instance, hashes with SHA-256 and answers at all
    /// (its capabilities, asked once).
    pub(crate) async fn check_capabilities(&self) -> Result<(), CacheError> {
        self.limits().await.map(|_| ())
    }

    /// Whether the server takes `UpdateActionResult` from clients.
    pub(crate) async fn takes_updates(&self) -> Result<bool, CacheError> {
        Ok(self.limits().await?.updates)
    }

    /// The action result recorded for `digest`; `None` if there is none.
    pub(crate) async fn action_result(
        &self,
        digest: re::Digest,
    ) -> Result<Option<re::ActionResult>, CacheError> {
        let got = self
            .call_status(|| {
                let mut c = ActionCacheClient::new(self.channel.clone());
                let r = self.req(re::GetActionResultRequest {
                    instance_name: self.instance.clone(),
                    action_digest: Some(digest.clone()),
                    ..Default::default()
                });
                async move { c.get_action_result(r).await }
            })
            .await;
        match got {
            Ok(result) => Ok(Some(result)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.fail(&s)),
        }
    }

    /// Records `result` for `digest` (`UpdateActionResult`).
    pub(crate) async fn update_action_result(
        &self,
        digest: re::Digest,
        result: re::ActionResult,
    ) -> Result<(), CacheError> {
        self.call(|| {
            let mut c = ActionCacheClient::new(self.channel.clone());
            let r = self.req(re::UpdateActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(digest.clone()),
                action_result: Some(result.clone()),
                ..Default::default()
            });
            async move { c.update_action_result(r).await }
        })
        .await
        .map(|_| ())
    }

    /// `INSTANCE/` for resource names (nothing for the default instance).
    pub(super) fn prefix(&self) -> String {
        if self.instance.is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance)
        }
    }

    pub(super) fn timed_out(&self) -> CacheError {
        CacheError::Remote {
            code: "remote-timed-out",
            uri: self.spec.display().to_string(),
            message: format!(
                "the remote stopped answering (no answer within {:?}); it is left out of the rest of this build",
                self.timeout
            ),
        }
    }

    pub(super) fn config(&self, what: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-config-invalid",
            uri: self.spec.display().to_string(),
            message: what.to_string(),
        }
    }

    pub(super) fn unexpected(&self, what: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-unavailable",
            uri: self.spec.display().to_string(),
            message: format!("the remote did not answer as expected ({what})"),
        }
    }

    /// Names the class of a failed call, with what to check in REAPI's terms; the
    /// server's message is scrubbed of the token.
    pub(super) fn fail(&self, s: &Status) -> CacheError {
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

/// What the Execution and Bots clients share (remote execution and the worker).
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

    /// A failed call of the Execution or Bots service, classed as every other call is.
    pub(crate) fn failed(&self, s: &Status) -> CacheError {
        self.fail(s)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}
