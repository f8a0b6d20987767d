//! The remote store URI (`XCACHE_REMOTE`, `remote = "…"`, `--remote`), parsed into a
//! service description. Credentials may sit in the URI (`redis://:secret@host`); they are
//! kept apart and never appear in [`RemoteSpec::display`], a log, a report or an error.

use std::fmt;

use url::Url;

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
const UPLOADS_VALUES: &str = "uploads=objects or uploads=bundles";

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
    /// [`DEFAULT_TIMEOUT`]. Uploads, which run beside the build and are waited for only
    /// after cargo ends, get [`UPLOAD_TIMEOUT_FACTOR`] times as long.
    pub timeout: std::time::Duration,
    display: String,
    /// Every credential the URI or the environment gave, so that a message from a
    /// service (which may quote an endpoint or a header) can be scrubbed of them.
    secrets: Vec<Secret>,
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

/// How long a request may stall unless `XCACHE_REMOTE_TIMEOUT` says otherwise: long
/// enough for a busy server on the other side of the world, short enough that a remote
/// that hangs costs a build a couple of seconds, once.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Uploads run beside the build's compiles (which may leave them little CPU) and are
/// waited for only after cargo ends: each of their requests may stall this many times
/// [`RemoteSpec::timeout`] before the remote is given up.
pub const UPLOAD_TIMEOUT_FACTOR: u32 = 5;

/// A timeout as `XCACHE_REMOTE_TIMEOUT` takes it: `500ms`, `2s`, `1m`, or a number of
/// seconds; between 100 ms and 10 minutes.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| "not a duration; write it as 500ms, 2s or 1m".to_string())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        other => {
            return Err(format!(
                "unknown unit `{other}`; write it as 500ms, 2s or 1m"
            ));
        }
    };
    if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
        return Err("out of range; it must lie between 100ms and 10m".into());
    }
    Ok(d)
}

/// The schemes understood, for error messages.
pub const SCHEMES: &str = "s3://, gcs://, azblob://, redis://, rediss://, redis+cluster://, rediss+cluster://, memcached://, webdav://, webdavs://, grpc://, grpcs://, ghac, file://";

impl RemoteSpec {
    /// The URI without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Parses a remote URI. `defaults` supplies values the URI may leave out (for S3:
    /// `AWS_ENDPOINT_URL`, `AWS_REGION`). The error is a sentence saying what is wrong
    /// and how to write it instead.
    pub fn parse(uri: &str, defaults: &RemoteDefaults) -> Result<RemoteSpec, String> {
        let timeout = match &defaults.timeout {
            Some(t) => parse_timeout(t).map_err(|e| format!("XCACHE_REMOTE_TIMEOUT={t}: {e}"))?,
            None => DEFAULT_TIMEOUT,
        };
        let mut spec = Self::parse_uri(uri, defaults)?;
        spec.timeout = timeout;
        Ok(spec)
    }

    fn parse_uri(uri: &str, defaults: &RemoteDefaults) -> Result<RemoteSpec, String> {
        let uri = uri.trim();
        let (bare, query) = uri.split_once('?').unwrap_or((uri, ""));
        if bare == "ghac" || bare == "ghac://" {
            let uploads = match query {
                "" | "uploads=bundles" => Uploads::Bundles,
                "uploads=objects" => Uploads::Objects,
                q if q.starts_with("uploads=") => {
                    return Err(format!(
                        "ghac: option `{q}` is not understood; write {UPLOADS_VALUES}"
                    ));
                }
                q => {
                    let name = q.split(['=', '&']).next().unwrap_or_default();
                    return Err(format!(
                        "ghac: unknown option `{name}`; ghac takes {UPLOADS_VALUES} only"
                    ));
                }
            };
            return Ok(RemoteSpec {
                timeout: DEFAULT_TIMEOUT,
                kind: RemoteKind::Ghac,
                uploads,
                writes: Writes::Once,
                display: "ghac".into(),
                secrets: defaults.secrets.clone(),
            });
        }
        if let Some((scheme, rest)) = uri.split_once("://")
            && let Some(node_scheme) = scheme.strip_suffix("+cluster")
        {
            return parse_cluster(node_scheme, rest, defaults);
        }
        let url = Url::parse(uri).map_err(|e| {
            format!("not a URI ({e}); expected one of {SCHEMES}, for example s3://bucket/prefix")
        })?;
        let display = redact(&url);
        // Every option a scheme understands; any other is an error that names it.
        let known: &[&str] = match url.scheme() {
            "s3" => &[
                "endpoint",
                "region",
                "virtual_host_style",
                "uploads",
                "writes",
            ],
            "gcs" | "gs" => &["endpoint", "anonymous", "uploads", "writes"],
            "azblob" => &["endpoint", "account", "uploads", "writes"],
            "webdav" | "webdavs" | "file" => &["uploads", "writes"],
            "grpc" | "grpcs" => &["instance", "auth_header", "uploads"],
            _ => &[],
        };
        if url.query_pairs().any(|(k, _)| k == "writes") && !known.contains(&"writes") {
            let display = display.split('?').next().unwrap_or_default();
            return Err(format!(
                "{display}: option `writes`: {}:// replaces what builds change by its own means, so it takes no writes=; writes=once is for a bucket (s3://, gcs://, azblob://), webdav:// or file:// that keeps each object once",
                url.scheme()
            ));
        }
        if url.query_pairs().any(|(k, _)| k == "uploads") && known.is_empty() {
            let display = display.split('?').next().unwrap_or_default();
            return Err(format!(
                "{display}: option `uploads`: a key-value store serves no ranges of a value, which bundled uploads need, so {}:// URIs take no options; use a bucket (s3://, gcs://, azblob://), webdav:// or file:// for uploads=bundles",
                url.scheme()
            ));
        }
        if let Some((k, _)) = url
            .query_pairs()
            .find(|(k, _)| !known.contains(&k.as_ref()))
        {
            let scheme = url.scheme();
            if matches!(scheme, "grpc" | "grpcs") && is_secret_name(&k) {
                let display = display.split('?').next().unwrap_or_default();
                return Err(format!(
                    "{display}: option `{k}`: a credential never goes in the URI; put the token in XCACHE_REMOTE_TOKEN (sent as authorization: Bearer TOKEN, or in the header auth_header= names)"
                ));
            }
            // The value of an option not understood may be a misspelt credential: the
            // URI is shown without its options.
            let display = display.split('?').next().unwrap_or_default();
            return Err(if known.is_empty() {
                format!("{display}: unknown option `{k}`; {scheme}:// URIs take no options")
            } else {
                format!(
                    "{display}: unknown option `{k}`; {scheme}:// URIs take {}",
                    known.join(", ")
                )
            });
        }
        let flag = |name: &str| -> Result<bool, String> {
            match url.query_pairs().find(|(k, _)| k == name) {
                None => Ok(false),
                Some((_, v)) if v == "true" => Ok(true),
                Some((_, v)) if v == "false" => Ok(false),
                Some((_, v)) => Err(format!(
                    "{display}: option `{name}` is `{v}`; write {name}=true or {name}=false"
                )),
            }
        };
        let mut secrets = defaults.secrets.clone();
        if let Some(p) = url.password() {
            secrets.push(Secret(decode(p)));
        }
        for (k, v) in url.query_pairs() {
            if is_secret_name(&k) {
                secrets.push(Secret(v.into_owned()));
            } else if let Ok(inner) = Url::parse(&v)
                && let Some(p) = inner.password()
            {
                secrets.push(Secret(p.to_string()));
                secrets.push(Secret(decode(p)));
            }
        }
        secrets.retain(|s| s.0.len() >= 3);
        let query = |name: &str| -> Option<String> {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let host = || -> Result<String, String> {
            url.host_str()
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{display} names no bucket or host"))
        };
        let root = || -> String {
            let p = url.path().trim_matches('/');
            if p.is_empty() {
                "/".into()
            } else {
                format!("/{p}/")
            }
        };
        let uploads = match query("uploads").as_deref() {
            None | Some("objects") => Uploads::Objects,
            Some("bundles") => Uploads::Bundles,
            Some(v) => {
                return Err(format!(
                    "{display}: option `uploads` is `{v}`; write {UPLOADS_VALUES}"
                ));
            }
        };
        let writes = match query("writes").as_deref() {
            None | Some("replace") => Writes::Replace,
            Some("once") => Writes::Once,
            Some(v) => {
                return Err(format!(
                    "{display}: option `writes` is `{v}`; write writes=once (the store keeps each object once) or writes=replace (the default)"
                ));
            }
        };
        let user =
            || -> Option<String> { (!url.username().is_empty()).then(|| decode(url.username())) };
        let password = || url.password().map(|p| Secret(decode(p)));
        let kind = match url.scheme() {
            "s3" => RemoteKind::S3 {
                bucket: host()?,
                root: root(),
                endpoint: query("endpoint").or_else(|| defaults.aws_endpoint.clone()),
                region: query("region").or_else(|| defaults.aws_region.clone()),
                virtual_host_style: flag("virtual_host_style")?,
            },
            "gcs" | "gs" => RemoteKind::Gcs {
                bucket: host()?,
                root: root(),
                endpoint: query("endpoint"),
                anonymous: flag("anonymous")?,
            },
            "azblob" => RemoteKind::Azblob {
                container: host()?,
                root: root(),
                endpoint: query("endpoint"),
                account: query("account").or_else(|| defaults.azure_account.clone()),
                key: defaults.azure_key.clone(),
            },
            "redis" | "rediss" => {
                let db = url.path().trim_matches('/');
                let db = if db.is_empty() {
                    0
                } else {
                    db.parse::<i64>().map_err(|_| {
                        format!("{display}: the path must be a database number, as in redis://host:6379/0")
                    })?
                };
                let port = url.port().unwrap_or(6379);
                RemoteKind::Redis {
                    endpoint: format!("{}://{}:{port}", url.scheme(), host()?),
                    db,
                    username: user(),
                    password: password(),
                }
            }
            "memcached" => RemoteKind::Memcached {
                endpoint: format!("tcp://{}:{}", host()?, url.port().unwrap_or(11211)),
            },
            "webdav" | "webdavs" => {
                let scheme = if url.scheme() == "webdavs" {
                    "https"
                } else {
                    "http"
                };
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                RemoteKind::Webdav {
                    endpoint: format!("{scheme}://{}{port}", host()?),
                    root: root(),
                    username: user(),
                    password: password(),
                }
            }
            "grpc" | "grpcs" => {
                if !matches!(url.path(), "" | "/") {
                    return Err(format!(
                        "{display}: a REAPI server is named by host and port only; write the instance as grpc://HOST:PORT?instance=NAME"
                    ));
                }
                let port = url.port().ok_or_else(|| {
                    format!("{display} names no port; write grpc://HOST:PORT?instance=NAME")
                })?;
                let header = query("auth_header");
                if let Some(h) = &header
                    && (h.is_empty()
                        || !h
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                {
                    return Err(format!(
                        "{display}: option `auth_header` is `{h}`, not a header name; write auth_header=x-api-key (letters, digits, - and _)"
                    ));
                }
                let scheme = if url.scheme() == "grpcs" {
                    "https"
                } else {
                    "http"
                };
                let host = host()?;
                // An IPv6 address is written in brackets in a URI.
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host
                };
                RemoteKind::Reapi {
                    endpoint: format!("{scheme}://{host}:{port}"),
                    instance: query("instance").unwrap_or_default(),
                    token: defaults.token.clone(),
                    auth_header: header.map(|h| h.to_ascii_lowercase()),
                }
            }
            "file" => {
                // `file://relative/path` reads as host `relative` and path `/path`:
                // never take it for the absolute `/path`.
                if let Some(h) = url
                    .host_str()
                    .filter(|h| !h.is_empty() && *h != "localhost")
                {
                    return Err(format!(
                        "file://{h}{} names the host `{h}`, not a folder; write an absolute path as file:///absolute/path (three slashes)",
                        url.path()
                    ));
                }
                let path = url.path();
                if path.is_empty() || path == "/" {
                    return Err(format!(
                        "{display} names no directory; write file:///absolute/path"
                    ));
                }
                RemoteKind::Fs {
                    root: path.to_string(),
                }
            }
            other => {
                return Err(format!(
                    "unknown scheme `{other}:`; expected one of {SCHEMES}"
                ));
            }
        };
        Ok(RemoteSpec {
            timeout: DEFAULT_TIMEOUT,
            kind,
            uploads,
            writes,
            display,
            secrets,
        })
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

/// `redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,…[/0]` (or `rediss+cluster://`
/// for TLS): `node_scheme` is `redis` or `rediss`, `rest` what follows `://`. The
/// authority holds several hosts, which a URL parser does not take: it is split here,
/// and each node checked as a `redis://` URI of its own.
fn parse_cluster(
    node_scheme: &str,
    rest: &str,
    defaults: &RemoteDefaults,
) -> Result<RemoteSpec, String> {
    let form = "redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT,HOST:PORT";
    if !matches!(node_scheme, "redis" | "rediss") {
        return Err(format!(
            "unknown scheme `{node_scheme}+cluster:`; a Redis Cluster is written {form} (rediss+cluster:// for TLS)"
        ));
    }
    let scheme = format!("{node_scheme}+cluster");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    // Credentials come before the last `@`; the password may hold `@` itself.
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let display = format!("{scheme}://{hosts}");
    if let Some(q) = query {
        // The value may be a misspelt credential: only the option's name is shown.
        let name = q.split(['=', '&']).next().unwrap_or_default();
        let why = if name == "uploads" {
            ": a key-value store serves no ranges of a value, which bundled uploads need, so"
        } else {
            ";"
        };
        return Err(format!(
            "{display}: unknown option `{name}`{why} {scheme}:// URIs take no options"
        ));
    }
    let path = path.trim_matches('/');
    if !path.is_empty() && path != "0" {
        return Err(format!(
            "{display}/{path}: a Redis Cluster has database 0 only; leave the path out or write /0"
        ));
    }
    if hosts.is_empty() {
        return Err(format!("{display} names no node; write {form}"));
    }
    let mut nodes = Vec::new();
    for (i, node) in hosts.split(',').enumerate() {
        let n = i + 1;
        if node.is_empty() {
            return Err(format!(
                "{display}: node {n} is empty (a stray comma?); write {form}"
            ));
        }
        let url = Url::parse(&format!("{node_scheme}://{node}"))
            .ok()
            .filter(|u| {
                u.host_str().is_some_and(|h| !h.is_empty())
                    && u.path().is_empty()
                    && u.username().is_empty()
                    && u.password().is_none()
            })
            .ok_or_else(|| {
                format!("{display}: node {n} `{node}` is not HOST:PORT; write {form}")
            })?;
        let host = url.host_str().unwrap_or_default();
        nodes.push(format!(
            "{node_scheme}://{host}:{}",
            url.port().unwrap_or(6379)
        ));
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (decode(user), Some(Secret(decode(pass)))),
                None => (decode(u), None),
            };
            ((!user.is_empty()).then_some(user), pass)
        }
    };
    let mut secrets = defaults.secrets.clone();
    if let Some((_, raw)) = userinfo.and_then(|u| u.split_once(':')) {
        secrets.push(Secret(raw.to_string()));
    }
    secrets.extend(password.clone());
    secrets.retain(|s| s.0.len() >= 3);
    Ok(RemoteSpec {
        uploads: Uploads::Objects,
        writes: Writes::Replace,
        timeout: DEFAULT_TIMEOUT,
        kind: RemoteKind::RedisCluster {
            nodes,
            username,
            password,
        },
        display,
        secrets,
    })
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

/// Query option names whose values are credentials.
fn is_secret_name(k: &str) -> bool {
    let k = k.to_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "sas",
        "sig",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The URI with user, password and any secret-looking query value removed, written
/// as a person would (no percent-encoding of the query).
fn redact(url: &Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if let Some(h) = url.host_str() {
        out.push_str(h);
    }
    if let Some(p) = url.port() {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(url.path());
    let pairs: Vec<String> = url
        .query_pairs()
        .map(|(k, v)| {
            if is_secret_name(&k) {
                return format!("{k}=***");
            }
            // An endpoint with a user and password in it: shown without them.
            match Url::parse(&v) {
                Ok(mut inner) if !inner.username().is_empty() || inner.password().is_some() => {
                    let _ = inner.set_username("");
                    let _ = inner.set_password(None);
                    format!("{k}={}", inner.as_str().trim_end_matches('/'))
                }
                _ => format!("{k}={v}"),
            }
        })
        .collect();
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RemoteSpec, String> {
        RemoteSpec::parse(s, &RemoteDefaults::default())
    }

    #[test]
    fn uploads_are_objects_unless_bundles_are_asked_for_and_ghac_bundles() {
        for uri in [
            "s3://b/p",
            "gcs://b/p",
            "azblob://c/p",
            "webdav://127.0.0.1:8080/p",
            "file:///tmp/x",
            "redis://127.0.0.1",
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
            "memcached://127.0.0.1",
            "ghac?uploads=objects",
        ] {
            assert_eq!(parse(uri).unwrap().uploads, Uploads::Objects, "{uri}");
        }
        for uri in [
            "s3://b/p?uploads=bundles",
            "gcs://b/p?anonymous=true&uploads=bundles",
            "azblob://c/p?uploads=bundles",
            "webdavs://example.com/p?uploads=bundles",
            "file:///tmp/x?uploads=bundles",
            "ghac",
            "ghac?uploads=bundles",
        ] {
            assert_eq!(parse(uri).unwrap().uploads, Uploads::Bundles, "{uri}");
        }
        // A value not understood is an error naming both values.
        for uri in ["s3://b/p?uploads=bundle", "ghac?uploads=yes"] {
            let e = parse(uri).unwrap_err();
            assert!(
                e.contains("uploads=objects or uploads=bundles"),
                "{uri}: {e}"
            );
        }
        // Key-value stores serve no ranges: the option is refused, saying why.
        for uri in [
            "redis://127.0.0.1?uploads=bundles",
            "memcached://127.0.0.1?uploads=bundles",
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?uploads=bundles",
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.contains("serves no ranges"), "{uri}: {e}");
        }
        let e = parse("ghac?version=2").unwrap_err();
        assert!(e.contains("unknown option `version`"), "{e}");
    }

    #[test]
    fn writes_replace_unless_once_is_asked_for_and_ghac_keeps_each_name_once() {
        for uri in [
            "s3://b/p",
            "gcs://b/p",
            "azblob://c/p",
            "file:///tmp/x",
            "redis://h",
        ] {
            assert_eq!(parse(uri).unwrap().writes, Writes::Replace, "{uri}");
        }
        assert_eq!(
            parse("s3://b/p?writes=replace").unwrap().writes,
            Writes::Replace
        );
        for uri in [
            "s3://b/p?writes=once",
            "gcs://b/p?anonymous=true&writes=once",
            "azblob://c/p?writes=once&uploads=bundles",
            "webdav://127.0.0.1:8080/p?writes=once",
            "file:///tmp/x?writes=once",
            "ghac",
            "ghac?uploads=objects",
        ] {
            assert_eq!(parse(uri).unwrap().writes, Writes::Once, "{uri}");
        }
        // A value not understood is an error naming both values.
        let e = parse("s3://b/p?writes=never").unwrap_err();
        assert!(
            e.contains("writes=once") && e.contains("writes=replace"),
            "{e}"
        );
        // Services that replace by their own compare-and-swap take no writes=.
        for uri in [
            "redis://127.0.0.1?writes=once",
            "memcached://127.0.0.1?writes=once",
            "grpc://127.0.0.1:8980?writes=once",
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?writes=once",
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.contains("writes"), "{uri}: {e}");
        }
    }

    #[test]
    fn parses_each_service() {
        let s3 = parse("s3://bucket/some/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1")
            .unwrap();
        assert_eq!(
            s3.kind,
            RemoteKind::S3 {
                bucket: "bucket".into(),
                root: "/some/prefix/".into(),
                endpoint: Some("http://127.0.0.1:8333".into()),
                region: Some("us-east-1".into()),
                virtual_host_style: false,
            }
        );
        let redis = parse("redis://:hunter2@127.0.0.1:6400/3").unwrap();
        assert_eq!(
            redis.kind,
            RemoteKind::Redis {
                endpoint: "redis://127.0.0.1:6400".into(),
                db: 3,
                username: None,
                password: Some(Secret("hunter2".into())),
            }
        );
        assert!(!redis.display().contains("hunter2"), "{}", redis.display());
        assert!(!format!("{redis:?}").contains("hunter2"));
        assert!(!format!("{:?}", redis.kind).contains("hunter2"));
        assert_eq!(
            parse("memcached://127.0.0.1:11300").unwrap().kind,
            RemoteKind::Memcached {
                endpoint: "tcp://127.0.0.1:11300".into()
            }
        );
        assert_eq!(
            parse("file:///srv/cache").unwrap().kind,
            RemoteKind::Fs {
                root: "/srv/cache".into()
            }
        );
        assert_eq!(parse("ghac").unwrap().kind, RemoteKind::Ghac);
        assert!(matches!(
            parse("gcs://b/p").unwrap().kind,
            RemoteKind::Gcs { .. }
        ));
        assert!(matches!(
            parse("azblob://c/p?account=a").unwrap().kind,
            RemoteKind::Azblob { .. }
        ));
        assert!(matches!(
            parse("webdavs://h:8443/dav").unwrap().kind,
            RemoteKind::Webdav { .. }
        ));
    }

    #[test]
    fn the_timeout_comes_from_its_variable_and_bad_values_are_named() {
        use std::time::Duration;
        assert_eq!(parse("s3://b/p").unwrap().timeout, DEFAULT_TIMEOUT);
        for (v, d) in [
            ("500ms", Duration::from_millis(500)),
            ("3s", Duration::from_secs(3)),
            ("7", Duration::from_secs(7)),
            ("1m", Duration::from_secs(60)),
        ] {
            let defaults = RemoteDefaults {
                timeout: Some(v.into()),
                ..RemoteDefaults::default()
            };
            let spec = RemoteSpec::parse("redis://127.0.0.1:6379/0", &defaults).unwrap();
            assert_eq!(spec.timeout, d, "{v}");
        }
        for v in ["", "fast", "2h", "10ms", "11m", "-1s", "1.5s"] {
            let defaults = RemoteDefaults {
                timeout: Some(v.into()),
                ..RemoteDefaults::default()
            };
            let e = RemoteSpec::parse("s3://b/p", &defaults).unwrap_err();
            assert!(e.starts_with("XCACHE_REMOTE_TIMEOUT="), "{v}: {e}");
            assert!(e.contains("500ms") || e.contains("between"), "{v}: {e}");
        }
    }

    #[test]
    fn bad_uris_say_how_to_fix_them() {
        let e = parse("ftp://x").unwrap_err();
        assert!(e.contains("unknown scheme") && e.contains("s3://"), "{e}");
        let e = parse("redis://h/notanumber").unwrap_err();
        assert!(e.contains("database number"), "{e}");
        let e = parse("not a uri").unwrap_err();
        assert!(e.contains("s3://bucket/prefix"), "{e}");
        let e = parse("s3://bucket?secret_key=abc").unwrap_err();
        assert!(e.contains("unknown option `secret_key`"), "{e}");
        assert!(!e.contains("abc"), "{e}");
        let e = parse("redis://h:1/0?tls=yes").unwrap_err();
        assert!(e.contains("`tls`") && e.contains("take no options"), "{e}");
        let e = parse("gcs://b/p?anonymous=yes").unwrap_err();
        assert!(e.contains("anonymous=true"), "{e}");
        // `file://relative/path` is host `relative` and path `/path`: never `/path`.
        let e = parse("file://relative/path").unwrap_err();
        assert!(e.contains("`relative`") && e.contains("file:///"), "{e}");
        assert!(parse("file://localhost/srv/c").is_ok());
    }

    #[test]
    fn redis_cluster_uris() {
        let c = parse("redis+cluster://:pw%40secret@127.0.0.1:7000,localhost:7001,[::1]:7002/0")
            .unwrap();
        assert_eq!(
            c.kind,
            RemoteKind::RedisCluster {
                nodes: vec![
                    "redis://127.0.0.1:7000".into(),
                    "redis://localhost:7001".into(),
                    "redis://[::1]:7002".into(),
                ],
                username: None,
                password: Some(Secret("pw@secret".into())),
            }
        );
        assert_eq!(
            c.display(),
            "redis+cluster://127.0.0.1:7000,localhost:7001,[::1]:7002"
        );
        assert!(c.is_key_value());
        assert_eq!(c.scrub("a pw@secret b pw%40secret"), "a *** b ***");
        let c = parse("rediss+cluster://app:pw@h1,h2:7001").unwrap();
        assert_eq!(
            c.kind,
            RemoteKind::RedisCluster {
                nodes: vec!["rediss://h1:6379".into(), "rediss://h2:7001".into()],
                username: Some("app".into()),
                password: Some(Secret("pw".into())),
            }
        );
        // Malformed: each error names the URI (without its password) and the form.
        for (uri, want) in [
            ("redis+cluster://", "names no node"),
            ("redis+cluster://:hunter2@", "names no node"),
            ("redis+cluster://h:1,,h:2", "node 2 is empty"),
            (
                "redis+cluster://:hunter2@h:1,h:x",
                "node 2 `h:x` is not HOST:PORT",
            ),
            ("redis+cluster://h:1,h:2/3", "database 0 only"),
            (
                "redis+cluster://h:1?password=hunter2",
                "unknown option `password`",
            ),
            (
                "memcached+cluster://h:1",
                "unknown scheme `memcached+cluster:`",
            ),
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.contains(want), "{uri}: {e}");
            assert!(!e.contains("hunter2"), "{uri}: {e}");
            if !want.starts_with("unknown scheme") {
                assert!(e.starts_with("redis+cluster://"), "{e}");
            }
        }
    }

    #[test]
    fn credentials_never_reach_the_display_and_are_scrubbed() {
        let s = parse("s3://b/p?endpoint=http://user:hunter22@127.0.0.1:9000").unwrap();
        assert!(!s.display().contains("hunter22"), "{}", s.display());
        assert!(
            s.display().contains("endpoint=http://127.0.0.1:9000"),
            "{}",
            s.display()
        );
        assert_eq!(
            s.scrub("error at http://user:hunter22@127.0.0.1:9000/x"),
            "error at http://user:***@127.0.0.1:9000/x"
        );
        let d = RemoteDefaults {
            secrets: vec![Secret("envsecret".into())],
            ..RemoteDefaults::default()
        };
        let s = RemoteSpec::parse("redis://:pw%40x@h:1/0", &d).unwrap();
        assert_eq!(s.scrub("a envsecret b pw@x c"), "a *** b *** c");
        let gcs = parse("gcs://b/p?endpoint=http://127.0.0.1:4443&anonymous=true").unwrap();
        assert!(matches!(
            gcs.kind,
            RemoteKind::Gcs {
                anonymous: true,
                endpoint: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn grpc_uris_name_a_reapi_server_and_its_instance() {
        let spec = parse("grpc://127.0.0.1:8980?instance=main").unwrap();
        assert_eq!(
            spec.kind,
            RemoteKind::Reapi {
                endpoint: "http://127.0.0.1:8980".into(),
                instance: "main".into(),
                token: None,
                auth_header: None,
            }
        );
        assert_eq!(spec.display(), "grpc://127.0.0.1:8980?instance=main");
        let tls =
            parse("grpcs://cache.example.com:443?auth_header=X-Api-Key&uploads=bundles").unwrap();
        assert_eq!(tls.uploads, Uploads::Bundles);
        match tls.kind {
            RemoteKind::Reapi {
                endpoint,
                instance,
                auth_header,
                ..
            } => {
                assert_eq!(endpoint, "https://cache.example.com:443");
                assert_eq!(instance, "");
                assert_eq!(auth_header.as_deref(), Some("x-api-key"));
            }
            other => panic!("{other:?}"),
        }
        let defaults = RemoteDefaults {
            token: Some(Secret("tok-12345".into())),
            ..Default::default()
        };
        let spec = RemoteSpec::parse("grpc://h:1", &defaults).unwrap();
        assert!(matches!(
            spec.kind,
            RemoteKind::Reapi { token: Some(_), .. }
        ));
    }

    #[test]
    fn bad_grpc_uris_say_how_to_write_them() {
        for (uri, says) in [
            ("grpc://host", "names no port"),
            ("grpc://host:1/main", "?instance=NAME"),
            ("grpc://host:1?instanse=main", "unknown option `instanse`"),
            ("grpc://host:1?token=sekrit-value", "XCACHE_REMOTE_TOKEN"),
            ("grpc://host:1?auth_header=a%20b", "not a header name"),
        ] {
            let e = parse(uri).unwrap_err();
            assert!(e.contains(says), "{uri}: {e}");
            assert!(!e.contains("sekrit-value"), "{uri}: {e}");
        }
    }
}
