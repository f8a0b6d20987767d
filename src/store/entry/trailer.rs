//! The signing trailer after a signed entry's stream, and the message its signature
//! covers.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a signature covers (see the module docs).
pub(super) fn signed_message(key: &Key, stream_len: u64, digest: &blake3::Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_ENTRY.len() + 4 + 32 + 8 + 32);
    m.extend_from_slice(SIGNED_ENTRY);
    m.extend_from_slice(&TRAILER_FORMAT.to_le_bytes());
    m.extend_from_slice(&key.0);
    m.extend_from_slice(&stream_len.to_le_bytes());
    m.extend_from_slice(digest.as_bytes());
    m
}

/// A signature trailer as found at the end of an entry file.
pub(super) struct Trailer {
    pub(super) signer: PublicKey,
    pub(super) signature: [u8; SIGNATURE_LEN],
    pub(super) stream_len: u64,
}

/// Reads the trailer of a file of `len` bytes, if it has one.
pub(super) fn read_trailer(file: &mut File, len: u64) -> Result<Option<Trailer>, ReadError> {
    use std::io::{Seek, SeekFrom};
    if len < TRAILER_LEN as u64 {
        return Ok(None);
    }
    let mut t = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64))
        .map_err(ReadError::Io)?;
    file.read_exact(&mut t).map_err(ReadError::Io)?;
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    if &t[TRAILER_LEN - TRAILER_MAGIC.len()..] != TRAILER_MAGIC {
        return Ok(None);
    }
    let format = u32::from_le_bytes(t[0..4].try_into().expect("4 bytes"));
    if format != TRAILER_FORMAT {
        return Err(ReadError::Corrupt(format!(
            "unknown signature format {format}"
        )));
    }
    let mut at = 4;
    let mut take = |n: usize| {
        let s = &t[at..at + n];
        at += n;
        s
    };
    let signer = PublicKey(take(PUBLIC_KEY_LEN).try_into().expect("32 bytes"));
    let signature: [u8; SIGNATURE_LEN] = take(SIGNATURE_LEN).try_into().expect("64 bytes");
    let stream_len = u64::from_le_bytes(take(8).try_into().expect("8 bytes"));
    if stream_len != len - TRAILER_LEN as u64 {
        return Err(ReadError::Corrupt(
            "signature trailer names another stream length".into(),
        ));
    }
    Ok(Some(Trailer {
        signer,
        signature,
        stream_len,
    }))
}

/// True when the file at `path` is a signed entry (whoever signed it).
pub fn is_signed(path: &Path) -> bool {
    let Ok(mut f) = crate::fsx::open_in_place(path, std::fs::OpenOptions::new().read(true)) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    matches!(read_trailer(&mut f, len), Ok(Some(_)))
}
