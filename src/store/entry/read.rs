//! Reading an entry: its trailer checked first when a signature is required, then the
//! stream, every part against its digest, each file renamed into place only once all
//! matched.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The compressed stream of an entry file (never its trailer), digested as it is read
/// when the digest was checked against a signature before.
pub(super) struct Stream {
    pub(super) inner: io::Take<File>,
    pub(super) hasher: Option<blake3::Hasher>,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Why an entry was not opened: it could not be read, or it is not signed by a key the
/// reader trusts.
#[derive(Debug)]
pub enum OpenError {
    Read(ReadError),
    Untrusted(Untrusted),
}

impl From<ReadError> for OpenError {
    fn from(e: ReadError) -> Self {
        OpenError::Read(e)
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Read(e.into())
    }
}

/// Reads an entry file by file, checking every digest.
pub struct EntryReader {
    z: zstd::stream::read::Decoder<'static, BufReader<Stream>>,
    meta: EntryMeta,
    next_file: usize,
    /// The stream digest a trusted signature covers, checked again at [`Self::finish`]:
    /// the bytes decompressed are the bytes verified, even if the file changed between.
    verified: Option<blake3::Hash>,
}

/// Why an entry could not be read: I/O trouble, or bytes that are not a valid entry.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Corrupt(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        // A truncated or garbled zstd stream surfaces as an I/O error of the decoder.
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
                ReadError::Corrupt(e.to_string())
            }
            _ => ReadError::Io(e),
        }
    }
}

impl EntryReader {
    /// Opens an entry and checks its header; a signature, if any, is not checked.
    pub fn open(path: &Path, expected: &Key) -> Result<EntryReader, ReadError> {
        match Self::open_checked(path, expected, None) {
            Ok(r) => Ok(r),
            Err(OpenError::Read(e)) => Err(e),
            Err(OpenError::Untrusted(u)) => Err(ReadError::Corrupt(u.to_string())),
        }
    }

    /// Opens an entry and checks its header. With `trusted`, the entry must carry a
    /// valid signature by one of those keys, checked before anything is decompressed.
    pub fn open_checked(
        path: &Path,
        expected: &Key,
        trusted: Option<&TrustedKeys>,
    ) -> Result<EntryReader, OpenError> {
        // Never through a planted link, never waiting on a planted FIFO.
        let mut file = crate::fsx::open_in_place(path, std::fs::OpenOptions::new().read(true))
            .map_err(ReadError::Io)?;
        let len = file.metadata().map_err(ReadError::Io)?.len();
        let trailer = read_trailer(&mut file, len)?;
        let stream_len = trailer.as_ref().map_or(len, |t| t.stream_len);
        let mut verified = None;
        if let Some(trusted) = trusted {
            let Some(t) = &trailer else {
                return Err(OpenError::Untrusted(Untrusted::Unsigned));
            };
            if !trusted.keys().contains(&t.signer) {
                return Err(OpenError::Untrusted(Untrusted::UnknownKey(t.signer)));
            }
            let mut hasher = blake3::Hasher::new();
            io::copy(&mut (&mut file).take(stream_len), &mut hasher).map_err(ReadError::Io)?;
            let digest = hasher.finalize();
            sign::verify(
                &signed_message(expected, stream_len, &digest),
                &t.signer,
                &t.signature,
                trusted,
            )
            .map_err(OpenError::Untrusted)?;
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(0)).map_err(ReadError::Io)?;
            verified = Some(digest);
        }
        let stream = Stream {
            inner: file.take(stream_len),
            hasher: verified.map(|_| blake3::Hasher::new()),
        };
        let mut z = zstd::stream::read::Decoder::new(stream)?;
        let mut magic = [0u8; 8];
        z.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(ReadError::Corrupt("not an xcache entry".into()).into());
        }
        let format = read_u32(&mut z)?;
        if ![FORMAT, FORMAT_THIN, FORMAT_THIN_COPIED].contains(&format) {
            return Err(ReadError::Corrupt(format!("unknown entry format {format}")).into());
        }
        let meta_len = read_u32(&mut z)? as usize;
        if meta_len > 64 * 1024 * 1024 {
            return Err(ReadError::Corrupt("header too large".into()).into());
        }
        let mut meta_json = vec![0u8; meta_len];
        z.read_exact(&mut meta_json)?;
        let mut digest = [0u8; 32];
        z.read_exact(&mut digest)?;
        if blake3::hash(&meta_json).as_bytes() != &digest {
            return Err(ReadError::Corrupt("header digest mismatch".into()).into());
        }
        let meta: EntryMeta = serde_json::from_slice(&meta_json)
            .map_err(|e| ReadError::Corrupt(format!("header: {e}")))?;
        if meta.key != expected.to_hex() {
            return Err(ReadError::Corrupt("entry holds another key".into()).into());
        }
        if thin_format(&meta) != format {
            return Err(ReadError::Corrupt(format!(
                "the files it holds by reference do not make a format {format} entry"
            ))
            .into());
        }
        Ok(EntryReader {
            z,
            meta,
            next_file: 0,
            verified,
        })
    }

    pub fn meta(&self) -> &EntryMeta {
        &self.meta
    }

    /// True if some file is held by reference ([`ObjectRef`]): the entry can only be
    /// restored with the local store's objects.
    pub fn is_thin(&self) -> bool {
        self.meta.files.iter().any(|f| f.object.is_some())
    }

    /// The next file's reference, if it is held as a loose object.
    pub fn next_object(&self) -> Option<ObjectRef> {
        self.meta.files.get(self.next_file).and_then(|f| f.object)
    }

    /// Passes a file held by reference: the stream holds nothing of it. Returns the
    /// reference (its digest is checked by whoever reads the object).
    pub fn skip_object(&mut self) -> Result<ObjectRef, ReadError> {
        let object = self
            .next_object()
            .ok_or_else(|| ReadError::Io(io::Error::other("the entry holds this file's bytes")))?;
        self.next_file += 1;
        Ok(object)
    }

    /// Streams the next file into `out`, checking its digest. Returns its length and
    /// digest. A file held by reference is an error here ([`Self::skip_object`]).
    pub fn next_file(&mut self, out: &mut impl Write) -> Result<(u64, Key), ReadError> {
        if self.next_file >= self.meta.files.len() {
            return Err(ReadError::Corrupt(
                "more files asked for than stored".into(),
            ));
        }
        if self.next_object().is_some() {
            return Err(ReadError::Io(io::Error::other(
                "the file is held by reference, as a loose object of the local store",
            )));
        }
        self.next_file += 1;
        let mut len_bytes = [0u8; 8];
        self.z.read_exact(&mut len_bytes)?;
        let len = u64::from_le_bytes(len_bytes);
        let mut hasher = blake3::Hasher::new();
        let mut left = len;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            self.z.read_exact(&mut buf[..want])?;
            hasher.update(&buf[..want]);
            out.write_all(&buf[..want]).map_err(ReadError::Io)?;
            left -= want as u64;
        }
        let mut digest = [0u8; 32];
        self.z.read_exact(&mut digest)?;
        if hasher.finalize().as_bytes() != &digest {
            return Err(ReadError::Corrupt("file digest mismatch".into()));
        }
        Ok((len, Key(digest)))
    }

    /// Checks the end marker after the last file.
    pub fn finish(mut self) -> Result<(), ReadError> {
        let mut end = [0u8; 4];
        self.z.read_exact(&mut end)?;
        if &end != END {
            return Err(ReadError::Corrupt("missing end marker".into()));
        }
        if let Some(expected) = self.verified {
            // What the decoder has not consumed yet is digested too.
            let mut stream = self.z.finish().into_inner();
            io::copy(&mut stream, &mut io::sink())?;
            let digest = stream.hasher.map(|h| h.finalize());
            if digest != Some(expected) {
                return Err(ReadError::Corrupt(
                    "the entry changed after its signature was checked".into(),
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}
