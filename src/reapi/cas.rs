//! The content-addressable storage by digest: blobs read whole or in ranges (batch
//! calls when small, ByteStream otherwise), each whole blob checked against its digest
//! as it arrives; blobs written unless the server holds them; what to write
//! ([`Source`]), streamed from memory or files, never whole in memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream::{
    ReadRequest, WriteRequest, byte_stream_client::ByteStreamClient,
};
use futures_util::StreamExt;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

use super::Reapi;
use super::client::BATCH_MAX;
use crate::errors::CacheError;

/// The bytes of one `ByteStream.Write` message.
const CHUNK: usize = 1 << 20;

/// A transfer may take this long per started 8 MiB piece, times the timeout.
const PIECE: u64 = 8 << 20;

/// How reading a blob failed.
pub(crate) enum ReadError {
    /// The bytes are not what the digest says (what is wrong with them).
    Damaged(String),
    Failed(CacheError),
}

impl From<CacheError> for ReadError {
    fn from(e: CacheError) -> ReadError {
        ReadError::Failed(e)
    }
}

impl Reapi {
    /// Streams the bytes `range` of the blob `digest` (all of it when `None`) to `sink`,
    /// a whole blob checked against its digest as it goes (the caller drops what it
    /// wrote when this fails). `Ok(None)` if the server lacks it; the bytes received
    /// otherwise.
    pub(crate) async fn read_blob(
        &self,
        digest: &re::Digest,
        range: Option<std::ops::Range<u64>>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, ReadError> {
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
                return Err(ReadError::Damaged(
                    "its blob does not hash to its digest".into(),
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
            Err(s) => return Err(self.fail(&s).into()),
            Ok(s) => s,
        };
        let mut hasher = whole.then(Sha256::new);
        let mut n = 0u64;
        loop {
            let msg = match tokio::time::timeout(self.timeout, stream.next()).await {
                Err(_) => return Err(self.timed_out().into()),
                Ok(None) => break,
                Ok(Some(Err(s))) if s.code() == Code::NotFound && n == 0 => return Ok(None),
                Ok(Some(Err(s))) => return Err(self.fail(&s).into()),
                Ok(Some(Ok(m))) => m,
            };
            if let Some(h) = &mut hasher {
                h.update(&msg.data);
            }
            sink(&msg.data)?;
            n += msg.data.len() as u64;
        }
        if n != end - start {
            return Err(ReadError::Damaged(format!(
                "{n} bytes came where {} were asked for",
                end - start
            )));
        }
        if let Some(h) = hasher
            && hex::encode(h.finalize()) != digest.hash
        {
            return Err(ReadError::Damaged(
                "its blob does not hash to its digest".into(),
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

    /// One small blob in one `BatchUpdateBlobs`.
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

    /// One whole blob, checked against its digest; `None` if the server lacks it.
    pub(crate) async fn blob(&self, digest: &re::Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let mut data = Vec::with_capacity(
            usize::try_from(digest.size_bytes)
                .unwrap_or(0)
                .min(BATCH_MAX as usize),
        );
        let got = self
            .read_blob(digest, None, &mut |chunk| {
                data.extend_from_slice(chunk);
                Ok(())
            })
            .await
            .map_err(|e| self.blob_error(digest, e))?;
        Ok(got.map(|_| data))
    }

    /// Streams one whole blob to `sink`, checked against its digest as it goes (the
    /// caller drops what it wrote when this fails); `None` if the server lacks it.
    pub(crate) async fn blob_to(
        &self,
        digest: &re::Digest,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
    ) -> Result<Option<u64>, CacheError> {
        self.read_blob(digest, None, sink)
            .await
            .map_err(|e| self.blob_error(digest, e))
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

    /// A failed read of a blob as an error that names it.
    fn blob_error(&self, digest: &re::Digest, e: ReadError) -> CacheError {
        match e {
            ReadError::Failed(e) => e,
            ReadError::Damaged(what) => CacheError::Remote {
                code: "remote-entry-damaged",
                uri: self.spec.display().to_string(),
                message: format!(
                    "blob {}/{} is damaged ({what}); it was not used",
                    digest.hash, digest.size_bytes
                ),
            },
        }
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
/// other (entries, bundle pieces), read 1 MiB at a time.
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

#[cfg(test)]
mod tests {
    use super::*;

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
