//! The remote tier, through opendal: S3 and compatibles, GCS, Azure Blob, Redis,
//! memcached, WebDAV, the GitHub Actions cache, a shared folder. Main type:
//! [`RemoteStore`].
//!
//! The wrapper is synchronous and short-lived, so the store drives opendal's async API
//! on a small current-thread runtime of its own. Transfers stream in 8 MiB pieces between
//! the remote and a file; an entry is never held in memory whole. Every request has a
//! timeout, so a remote that stops answering costs seconds, not the build.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator, services};

use crate::config::{RemoteKind, RemoteSpec};
use crate::errors::CacheError;
use crate::key::Key;

const PIECE: usize = 8 << 20;

/// A remote store.
pub struct RemoteStore {
    rt: tokio::runtime::Runtime,
    op: Operator,
    quick: Operator,
    display: String,
    key_value: bool,
    /// WebDAV servers need a collection before a PUT into it; opendal makes it, but two
    /// uploads racing to make the same one can lose (seen here about once in four full
    /// test runs against SeaweedFS). A failed write is retried once after making it.
    needs_dirs: bool,
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
    /// Builds the client. Nothing is sent yet.
    pub fn open(spec: &RemoteSpec) -> Result<RemoteStore, CacheError> {
        // The HTTP client for the HTTP-based services (a no-op after the first call).
        opendal::install_default();
        let display = spec.display().to_string();
        let cfg_err = |e: opendal::Error| classify(&display, e);
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
            RemoteKind::Gcs { bucket, root } => {
                Operator::new(services::Gcs::default().bucket(bucket).root(root))
                    .map_err(cfg_err)?
            }
            RemoteKind::Azblob {
                container,
                root,
                endpoint,
                account,
            } => {
                let mut b = services::Azblob::default().container(container).root(root);
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
                let mut b = services::Redis::default()
                    .endpoint(endpoint)
                    .db(*db)
                    .root("/xcache/");
                if let Some(u) = username {
                    b = b.username(u);
                }
                if let Some(p) = password {
                    b = b.password(&p.0);
                }
                Operator::new(b).map_err(cfg_err)?
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
        };
        // The health check gives up fast and does not retry: a remote that hangs must
        // cost a build seconds, not minutes.
        let quick = op.clone().layer(
            TimeoutLayer::new()
                .with_timeout(Duration::from_secs(2))
                .with_io_timeout(Duration::from_secs(2)),
        );
        // Temporary failures (a reset connection, a busy server) are retried twice,
        // quickly: a remote that is really down still costs well under a second more.
        let op = op
            .layer(
                // Generous for transfers: measured here, 16 concurrent 40 MB uploads to
                // SeaweedFS on 2 cores took ~5 s each, and a 5 s limit gave the remote
                // up in the middle of a cold build.
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(30))
                    .with_io_timeout(Duration::from_secs(30)),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(2)
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_millis(300))
                    .with_jitter(),
            );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CacheError::Remote {
                code: "remote-unavailable",
                uri: display.clone(),
                message: format!("failed to start the I/O runtime: {e}"),
            })?;
        Ok(RemoteStore {
            rt,
            op,
            quick,
            key_value: spec.is_key_value(),
            needs_dirs: matches!(spec.kind, RemoteKind::Webdav { .. }),
            display,
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
        let result = self.rt.block_on(async {
            if self.key_value {
                match self.quick.stat(&format!("{}/probe", super::LAYOUT)).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    other => other.map(|_| ()),
                }
            } else {
                self.quick
                    .list_with(&format!("{}/", super::LAYOUT))
                    .limit(1)
                    .await
                    .map(|_| ())
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
                classify(&self.display, e)
            }
        })
    }

    /// Deletes an object (used by `doctor` for its probe).
    pub fn delete(&self, path: &str) -> Result<(), CacheError> {
        self.rt
            .block_on(self.op.delete(path))
            .map_err(|e| classify(&self.display, e))
    }

    /// Every object under `v1/`, with its size and when it was last written (for `cargo
    /// xcache gc --remote`). `Ok(None)` for services that cannot list their objects.
    pub fn list(&self) -> Result<Option<Vec<Listed>>, CacheError> {
        if self.key_value || !self.op.info().capability().list {
            return Ok(None);
        }
        self.rt.block_on(async {
            let entries = match self
                .op
                .list_with(&format!("{}/", super::LAYOUT))
                .recursive(true)
                .await
            {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Some(Vec::new())),
                Err(e) => return Err(classify(&self.display, e)),
            };
            let mut out = Vec::new();
            for e in entries {
                if e.metadata().is_dir() {
                    continue;
                }
                let mut meta = e.metadata().clone();
                // Some services list names only: their times come from a stat.
                if meta.last_modified().is_none() {
                    meta = self
                        .op
                        .stat(e.path())
                        .await
                        .map_err(|err| classify(&self.display, err))?;
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
        match self.rt.block_on(self.op.read(path)) {
            Ok(buf) => Ok(Some(buf.to_vec())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify(&self.display, e)),
        }
    }

    pub fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<(), CacheError> {
        // A Buffer clones by reference count, not by copying the bytes.
        let bytes = opendal::Buffer::from(bytes);
        let first = self.rt.block_on(self.op.write(path, bytes.clone()));
        match first {
            Ok(_) => Ok(()),
            Err(e) if self.make_parent_after(e.kind(), path) => self
                .rt
                .block_on(self.op.write(path, bytes))
                .map(|_| ())
                .map_err(|e| classify(&self.display, e)),
            Err(e) => Err(classify(&self.display, e)),
        }
    }

    /// For a store that needs directories: after a failed write that was not refused
    /// for lack of permission, makes the object's parent and says the write may be
    /// tried again.
    fn make_parent_after(&self, kind: ErrorKind, path: &str) -> bool {
        if !self.needs_dirs || kind == ErrorKind::PermissionDenied {
            return false;
        }
        let Some((parent, _)) = path.rsplit_once('/') else {
            return false;
        };
        self.rt
            .block_on(self.op.create_dir(&format!("{parent}/")))
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
        let display = &self.display;
        self.rt.block_on(async {
            // One request per object, streamed: a chunked reader would ask for its
            // length first when it is not known (a HEAD, one more round trip) and then
            // fetch it piece by piece, one round trip after another; a key-value store
            // hands a value back whole anyway.
            let reader = match self.op.reader(path).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(classify(display, e)),
            };
            // A key-value store is asked for the whole value in one GET: a range, even
            // `0..len`, costs it a length query first (one more round trip per entry).
            // An object store reads exactly the indexed size, when it is known.
            let stream = match size {
                Some(n) if !self.key_value => reader.into_bytes_stream(0..n).await,
                _ => reader.into_bytes_stream(..).await,
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(classify(display, e)),
            };
            let mut file = std::fs::File::create(dest).map_err(|source| CacheError::Write {
                path: dest.to_path_buf(),
                source,
            })?;
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
                        drop(file);
                        let _ = std::fs::remove_file(dest);
                        if not_found {
                            return Ok(None);
                        }
                        return Err(
                            match e
                                .into_inner()
                                .and_then(|b| b.downcast::<opendal::Error>().ok())
                            {
                                Some(oe) => classify(display, *oe),
                                None => CacheError::Remote {
                                    code: "remote-unavailable",
                                    uri: display.clone(),
                                    message: "the remote did not answer as expected".into(),
                                },
                            },
                        );
                    }
                };
                file.write_all(&chunk).map_err(|source| CacheError::Write {
                    path: dest.to_path_buf(),
                    source,
                })?;
                n += chunk.len() as u64;
            }
            Ok(Some(n))
        })
    }

    /// Streams a file to an object.
    pub fn put_file(&self, path: &str, src: &Path) -> Result<u64, CacheError> {
        match self.put_file_once(path, src) {
            Err((Some(kind), _)) if self.make_parent_after(kind, path) => {
                self.put_file_once(path, src).map_err(|(_, c)| c)
            }
            r => r.map_err(|(_, c)| c),
        }
    }

    /// One upload; a failure of the remote comes back with opendal's error too.
    fn put_file_once(
        &self,
        path: &str,
        src: &Path,
    ) -> Result<u64, (Option<ErrorKind>, CacheError)> {
        let display = &self.display;
        let remote_err = |e: opendal::Error| (Some(e.kind()), classify(display, e));
        self.rt.block_on(async {
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
            let mut w = self
                .op
                .writer_with(path)
                .chunk(PIECE)
                .await
                .map_err(remote_err)?;
            let mut buf = vec![0u8; PIECE];
            let mut n = 0u64;
            loop {
                let got = read_full(&mut file, &mut buf).map_err(rerr)?;
                if got == 0 {
                    break;
                }
                w.write(buf[..got].to_vec()).await.map_err(remote_err)?;
                n += got as u64;
            }
            w.close().await.map_err(remote_err)?;
            Ok(n)
        })
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while filled < buf.len() {
        let n = f.read(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Names the class of a remote failure, with a sentence saying what to check.
fn classify(display: &str, e: opendal::Error) -> CacheError {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let (code, what) = if lower.contains("nosuchbucket")
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
    } else if lower.contains("failed to load signing credential") {
        (
            "remote-denied",
            "no credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or run where instance credentials exist",
        )
    } else if e.kind() == ErrorKind::PermissionDenied
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("accessdenied")
        || lower.contains("noauth")
        || lower.contains("wrongpass")
    {
        (
            "remote-denied",
            "the credentials were refused; check the access key and secret (or the profile)",
        )
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
        uri: display.to_string(),
        message: format!("{what} ({})", first_line(&text)),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}
