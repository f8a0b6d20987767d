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
    },
    Azblob {
        container: String,
        root: String,
        endpoint: Option<String>,
        account: Option<String>,
    },
    Redis {
        endpoint: String,
        db: i64,
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
}

/// A parsed remote: the service, and a credential-free rendering for messages.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub kind: RemoteKind,
    display: String,
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

/// The schemes understood, for error messages.
pub const SCHEMES: &str = "s3://, gcs://, azblob://, redis://, rediss://, memcached://, webdav://, webdavs://, ghac, file://";

impl RemoteSpec {
    /// The URI without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Parses a remote URI. `defaults` supplies values the URI may leave out (for S3:
    /// `AWS_ENDPOINT_URL`, `AWS_REGION`). The error is a sentence saying what is wrong
    /// and how to write it instead.
    pub fn parse(uri: &str, defaults: &RemoteDefaults) -> Result<RemoteSpec, String> {
        let uri = uri.trim();
        if uri == "ghac" || uri == "ghac://" {
            return Ok(RemoteSpec {
                kind: RemoteKind::Ghac,
                display: "ghac".into(),
            });
        }
        let url = Url::parse(uri).map_err(|e| {
            format!("not a URI ({e}); expected one of {SCHEMES}, for example s3://bucket/prefix")
        })?;
        let display = redact(&url);
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
        let user =
            || -> Option<String> { (!url.username().is_empty()).then(|| decode(url.username())) };
        let password = || url.password().map(|p| Secret(decode(p)));
        let kind = match url.scheme() {
            "s3" => RemoteKind::S3 {
                bucket: host()?,
                root: root(),
                endpoint: query("endpoint").or_else(|| defaults.aws_endpoint.clone()),
                region: query("region").or_else(|| defaults.aws_region.clone()),
                virtual_host_style: query("virtual_host_style").as_deref() == Some("true"),
            },
            "gcs" | "gs" => RemoteKind::Gcs {
                bucket: host()?,
                root: root(),
            },
            "azblob" => RemoteKind::Azblob {
                container: host()?,
                root: root(),
                endpoint: query("endpoint"),
                account: query("account").or_else(|| defaults.azure_account.clone()),
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
            "file" => {
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
        Ok(RemoteSpec { kind, display })
    }

    /// True for services that store keys and values without buckets (no listing).
    pub fn is_key_value(&self) -> bool {
        matches!(
            self.kind,
            RemoteKind::Redis { .. } | RemoteKind::Memcached { .. }
        )
    }
}

/// Values from the environment a URI may leave out.
#[derive(Clone, Debug, Default)]
pub struct RemoteDefaults {
    pub aws_endpoint: Option<String>,
    pub aws_region: Option<String>,
    pub azure_account: Option<String>,
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
            let secret = ["key", "secret", "token", "password", "sas", "sig"]
                .iter()
                .any(|s| k.to_lowercase().contains(s));
            format!("{k}={}", if secret { "***".into() } else { v.into_owned() })
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
    fn bad_uris_say_how_to_fix_them() {
        let e = parse("ftp://x").unwrap_err();
        assert!(e.contains("unknown scheme") && e.contains("s3://"), "{e}");
        let e = parse("redis://h/notanumber").unwrap_err();
        assert!(e.contains("database number"), "{e}");
        let e = parse("not a uri").unwrap_err();
        assert!(e.contains("s3://bucket/prefix"), "{e}");
        let e = parse("s3://bucket?secret_key=abc")
            .map(|s| s.display().to_string())
            .unwrap();
        assert!(!e.contains("abc"), "{e}");
    }
}
