//! What a remote URI parses into ([`RemoteSpec`]): the service and its settings
//! ([`RemoteKind`]), how uploads and writes go, and the credentials, kept apart
//! ([`Secret`]) and scrubbed from messages; the values the environment supplies.

use std::fmt;

/// A credential: compared and passed on, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One remote service and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteKind {
    S3 {
        bucket: String,
        root: String,
        endpoint: Option<String>,
        region: Option<String>,
        virtual_host_style: bool,
    },
    Gcs {
        bucket: String,
        root: String,
        endpoint: Option<String>,
        /// Unsigned requests, for an emulator that needs no credentials.
        anonymous: bool,
    },
    Azblob {
        container: String,
        root: String,
        endpoint: Option<String>,
        account: Option<String>,
        /// The account's shared key (`AZURE_STORAGE_KEY`).
        key: Option<Secret>,
    },
    Redis {
        endpoint: String,
        db: i64,
        username: Option<String>,
        password: Option<Secret>,
    },
    /// A Redis Cluster, reached through any of its nodes (`redis://host:port` each,
    /// `rediss://` for TLS); the client learns the rest of the cluster from them. A
    /// cluster has database 0 only.
    RedisCluster {
        nodes: Vec<String>,
        username: Option<String>,
        password: Option<Secret>,
    },
    Memcached {
        endpoint: String,
    },
    Webdav {
        endpoint: String,
        root: String,
        username: Option<String>,
        password: Option<Secret>,
    },
    Ghac,
    Fs {
        root: String,
    },
    /// A Remote Execution API server's cache (CAS, ActionCache, ByteStream), reached
    /// over gRPC (`grpc://`, `grpcs://` for TLS with the system's roots).
    Reapi {
        /// `http://HOST:PORT` or `https://HOST:PORT`, as the gRPC client takes it.
        endpoint: String,
        /// The server's instance name (`instance=`; empty when left out).
        instance: String,
        /// `XCACHE_REMOTE_TOKEN`, for a server that asks for one.
        token: Option<Secret>,
        /// The header the token goes in (`auth_header=`); `authorization`, as
        /// `Bearer TOKEN`, when `None`.
        auth_header: Option<String>,
    },
}

/// How a build's new objects reach the remote (`uploads=` in the URI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploads {
    /// Each entry, seed pack and manifest on its own while cargo runs, and bundle pieces
    /// of them after it: what any reader (a wrapper, another workspace, an older
    /// version) can find. About three uploads per unit compiled.
    Objects,
    /// Only bundle pieces (16 MiB each, written as they fill while cargo runs) and the
    /// index: a few uploads per build, for a service that limits uploads per minute (the
    /// GitHub Actions cache, its default). Readers fetch ranges of the pieces; a unit
    /// the index does not list is compiled, never looked up by its own key.
    Bundles,
}

/// The values `uploads=` takes, for messages.
pub(super) const UPLOADS_VALUES: &str = "uploads=objects or uploads=bundles";

/// The stores that keep each object whole and serve ranges of it (which `writes=once`
/// and `uploads=bundles` are for), for messages.
pub(super) const OBJECT_STORES: &str = "a bucket (s3://, gcs://, azblob://), webdav:// or file://";

/// Why a key-value store takes no `uploads=`, for messages (a clause ending before the
/// scheme it names).
pub(super) const NO_RANGES: &str =
    "a key-value store serves no ranges of a value, which bundled uploads need, so";

/// Whether the service lets a name be written again (`writes=` in the URI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// A second write replaces the object (the default for buckets, WebDAV and files).
    Replace,
    /// Each name is written once and kept: the GitHub Actions cache always; a bucket
    /// whose policy refuses replacing writes (an S3 bucket policy that requires
    /// `If-None-Match`, an Azure container under an immutability policy, a GCS bucket
    /// under a retention policy) with `writes=once`. Objects named by their key or
    /// content are sent once (a name already there is kept); the records many builds
    /// change (the index, manifests) become chains of versions, each written once.
    Once,
}

/// A parsed remote: the service, and a credential-free rendering for messages.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub kind: RemoteKind,
    pub uploads: Uploads,
    pub writes: Writes,
    /// How long one request (retries included), or one piece of a transfer, may stall
    /// before the remote is given up for the build: `XCACHE_REMOTE_TIMEOUT`, else
    /// [`DEFAULT_TIMEOUT`](super::DEFAULT_TIMEOUT). Uploads, which run beside the build and are waited for only
    /// after cargo ends, get [`UPLOAD_TIMEOUT_FACTOR`](super::UPLOAD_TIMEOUT_FACTOR) times as long.
    pub timeout: std::time::Duration,
    pub(super) display: String,
    /// Every credential the URI or the environment gave, so that a message from a
    /// service (which may quote an endpoint or a header) can be scrubbed of them.
    pub(super) secrets: Vec<Secret>,
}

impl fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteSpec({})", self.display)
    }
}

impl fmt::Display for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl RemoteSpec {
    /// The URI without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `text` with every credential this remote knows of replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if !s.0.is_empty() {
                out = out.replace(&s.0, "***");
            }
        }
        out
    }

    /// True for services that store keys and values without buckets (no listing).
    pub fn is_key_value(&self) -> bool {
        matches!(
            self.kind,
            RemoteKind::Redis { .. }
                | RemoteKind::RedisCluster { .. }
                | RemoteKind::Memcached { .. }
        )
    }
}

/// Values from the environment a URI may leave out.
#[derive(Clone, Debug, Default)]
pub struct RemoteDefaults {
    pub aws_endpoint: Option<String>,
    pub aws_region: Option<String>,
    pub azure_account: Option<String>,
    /// `AZURE_STORAGE_KEY` (or `AZURE_STORAGE_ACCOUNT_KEY`).
    pub azure_key: Option<Secret>,
    /// `XCACHE_REMOTE_TIMEOUT`, as written (checked by [`RemoteSpec::parse`]).
    pub timeout: Option<String>,
    /// `XCACHE_REMOTE_TOKEN`: the token a `grpc://` server may ask for.
    pub token: Option<Secret>,
    /// The values of every secret environment variable (`AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AZURE_STORAGE_KEY`, …): scrubbed from messages.
    pub secrets: Vec<Secret>,
}
