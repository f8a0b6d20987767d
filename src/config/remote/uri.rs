//! A remote URI parsed ([`RemoteSpec::parse`]): its scheme, host, path and options
//! checked, each mistake said with how to write it instead. Redis Cluster URIs, which
//! a URL parser does not take, are `cluster`'s.

use url::Url;

use super::cluster::parse_cluster;
use super::credentials::{decode, is_secret_name, redact};
use super::spec::{
    NO_RANGES, OBJECT_STORES, RemoteDefaults, RemoteKind, RemoteSpec, Secret, UPLOADS_VALUES,
    Uploads, Writes,
};
use super::timeout::{DEFAULT_TIMEOUT, parse_timeout};

/// The schemes understood, for error messages.
pub const SCHEMES: &str = "s3://, gcs:// (or gs://), azblob://, redis://, rediss://, redis+cluster://, rediss+cluster://, memcached://, webdav://, webdavs://, grpc://, grpcs://, ghac, file://";

impl RemoteSpec {
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
                "{display}: option `writes`: {}:// replaces what builds change by its own means, so it takes no writes=; writes=once is for {OBJECT_STORES} that keeps each object once",
                url.scheme()
            ));
        }
        if url.query_pairs().any(|(k, _)| k == "uploads") && known.is_empty() {
            let display = display.split('?').next().unwrap_or_default();
            return Err(format!(
                "{display}: option `uploads`: {NO_RANGES} {}:// URIs take no options; use {OBJECT_STORES} for uploads=bundles",
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
}
