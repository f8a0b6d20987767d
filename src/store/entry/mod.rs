//! The entry format: one zstd stream holding a header and the unit's files.
//!
//! ```text
//! "XCACHEE\0"  u32 format  u32 meta_len  meta (JSON)  blake3(meta)
//! per file:    u64 len     bytes         blake3(bytes)
//! "END\0"
//! ```
//! Every part carries its digest and is checked on restore; a file is only renamed into
//! place once all digests matched.
//!
//! A signed entry (a writer with `XCACHE_SIGNING_KEY`) is followed, outside the zstd
//! stream, by a fixed-size trailer:
//!
//! ```text
//! u32 trailer format (1)  public key (32)  signature (64)  u64 stream_len  "XCACHES\0"
//! ```
//! The signature is over `"xcache-signed-entry\0"`, the trailer format, the entry key,
//! `stream_len` and the blake3 digest of the compressed stream: it binds the key and
//! every byte of the entry (header, names, modes, diagnostics, each file and its digest).
//! An unsigned entry is the stream alone, as before signatures. A reader that predates
//! them stops at `END` and never looks past the stream, so it reads signed entries as
//! it always did; a reader that requires a trusted signature checks it before anything
//! is decompressed ([`EntryReader::open_checked`]). Files stream through in bounded buffers: an entry is
//! never held in memory whole. The format names files by role, so linked outputs and
//! build-script results fit without a new format.
//!
//! A *thin* entry (format 2) holds some files by reference: such a file's header record
//! names its content digest and length (`object`), and the stream holds nothing of it;
//! its bytes are the local store's loose object of that digest (`super::objects`),
//! checked against the digest wherever they are used. Only the local store writes thin
//! entries (a library's `.rlib`, already linked there as an object, is then neither
//! compressed nor written a second time); whatever leaves the machine is made whole
//! first ([`super::LocalStore::ensure_whole`]). Readers that predate format 2 refuse it.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::sign::{self, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN, Signer, TrustedKeys, Untrusted};

mod read;
mod scan;
mod trailer;
mod write;

pub use read::{EntryReader, OpenError, ReadError};
use scan::Scanner;
pub use scan::digest_and_find;
pub use trailer::is_signed;
use trailer::{read_trailer, signed_message};
use write::pass;
pub use write::write_entry;

const MAGIC: &[u8; 8] = b"XCACHEE\0";
const FORMAT: u32 = 1;
/// An entry holding some files as references to loose objects: only `.rlib` files
/// beside their `.rmeta`, which a restore may link.
const FORMAT_THIN: u32 = 2;
/// A thin entry holding other files by reference too (an `.rmeta`, a proc-macro),
/// which a restore must copy: readers that would link every file by reference (format 2
/// only) refuse it.
const FORMAT_THIN_COPIED: u32 = 3;
const END: &[u8; 4] = b"END\0";
/// The signature trailer's version and its closing magic.
const TRAILER_FORMAT: u32 = 1;
const TRAILER_MAGIC: &[u8; 8] = b"XCACHES\0";
const TRAILER_LEN: usize = 4 + PUBLIC_KEY_LEN + SIGNATURE_LEN + 8 + TRAILER_MAGIC.len();
/// The context tag of an entry signature: no other signed object starts with it.
const SIGNED_ENTRY: &[u8] = b"xcache-signed-entry\0";
/// The largest compression window: 16 MiB (readers accept up to 128 MiB).
const WINDOW_LOG: u32 = 24;

/// One file of an entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryFile {
    /// What the file is (`rlib`, `rmeta`, `dep-info`, …).
    pub role: String,
    /// The file name it is restored under.
    pub name: String,
    /// True if the contents hold path tokens to expand on restore.
    pub template: bool,
    /// True if the file is restored executable (linked outputs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
    /// In a thin entry: the file is not in the stream but is the local store's loose
    /// object of this content digest and length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
}

/// A file of a thin entry held as a loose object: its content digest and length.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRef {
    pub digest: Key,
    pub len: u64,
}

/// The header of an entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryMeta {
    pub format_version: u32,
    /// The entry key, checked against the one asked for.
    pub key: String,
    pub files: Vec<EntryFile>,
    /// What rustc printed, with path tokens.
    pub stdout: String,
    pub stderr: String,
    /// True if the stored diagnostics were rendered with ANSI colours.
    pub ansi: bool,
    /// How long the original compile took.
    pub compile_ms: u64,
    pub xcache_version: String,
}

impl EntryMeta {
    /// The header of an entry of `key` that holds `files` and nothing a compiler said
    /// (a seed pack, a test's entry), written by this version.
    pub fn with_files(key: &Key, files: Vec<EntryFile>) -> EntryMeta {
        EntryMeta {
            format_version: 1,
            key: key.to_hex(),
            files,
            stdout: String::new(),
            stderr: String::new(),
            ansi: false,
            compile_ms: 0,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The header of a test entry of `key` holding `files` (role, name, executable).
    #[cfg(test)]
    pub(crate) fn for_test(key: &Key, files: &[(&str, &str, bool)]) -> EntryMeta {
        let files = files
            .iter()
            .map(|&(role, name, executable)| EntryFile {
                role: role.into(),
                name: name.into(),
                template: false,
                executable,
                object: None,
            })
            .collect();
        EntryMeta::with_files(key, files)
    }
}

/// Where the bytes of one file come from when writing an entry.
#[derive(Clone, Copy)]
pub enum EntrySource<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
    /// A file held by reference (a thin entry): read, digested and scanned, but not
    /// written into the stream. The caller makes it the store's object of its digest.
    Object(&'a Path),
    /// A file held by reference whose digest the caller took from it a moment ago, as
    /// it was then (`ReadAs`): not read again. Written only if the file is still as it
    /// was; not scanned (the caller searched it when it hashed it).
    Known(&'a Path, Key, ReadAs),
}

/// The result of writing an entry.
#[derive(Debug)]
pub struct PutOutcome {
    /// Bytes of file content written (before compression).
    pub bytes: u64,
    /// The index of a needle found in a scanned file, if any.
    pub needle_found: Option<usize>,
    /// Where that needle was found: the index of the first file holding it, and how
    /// many times that file holds it.
    pub needle_file: Option<(usize, u64)>,
    /// The content digest of each file, in order.
    pub digests: Vec<Key>,
    /// The files written by reference ([`EntrySource::Object`]).
    pub objects: Vec<ByReference>,
}

/// A file a thin entry holds by reference, as it was written.
#[derive(Clone, Copy, Debug)]
pub struct ByReference {
    /// Its place among the entry's files.
    pub index: usize,
    pub len: u64,
    /// The file that was read: the one that may become the object.
    pub read: ReadAs,
}

/// A file as it was when it was read: device, inode, length, modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAs {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime_ns: i128,
}

impl ReadAs {
    pub fn of(m: &std::fs::Metadata) -> ReadAs {
        use std::os::unix::fs::MetadataExt;
        ReadAs {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

/// The format of an entry whose header is `meta`: whole, thin with links only, or thin
/// with copies.
fn thin_format(meta: &EntryMeta) -> u32 {
    let mut by_reference = meta.files.iter().filter(|f| f.object.is_some()).peekable();
    if by_reference.peek().is_none() {
        FORMAT
    } else if by_reference.all(|f| super::objects::served_by_object(meta, f)) {
        FORMAT_THIN
    } else {
        FORMAT_THIN_COPIED
    }
}

/// A path next to `dest` for a file being restored.
pub fn restore_temp_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(format!(".xcache-tmp-{}", std::process::id()));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::read::read_u32;
    use super::*;

    /// A file read in pieces: its digest is that of its bytes, and a needle is found
    /// where it lies across two pieces, or not at all.
    #[test]
    fn digest_and_find_reads_in_pieces() {
        let needle = b"/home/someone/.cargo".to_vec();
        let mut data = vec![7u8; 256 * 1024 - 5];
        data.extend_from_slice(&needle);
        data.extend_from_slice(&[9u8; 1000]);
        let (len, digest, found) =
            digest_and_find(&data[..], std::slice::from_ref(&needle)).unwrap();
        assert_eq!(
            (len, digest, found),
            (data.len() as u64, Key::digest(&data), true)
        );
        let other = b"/nowhere".to_vec();
        let (_, _, found) = digest_and_find(&data[..], &[other]).unwrap();
        assert!(!found);
        let (len, digest, found) = digest_and_find(&b""[..], &[needle]).unwrap();
        assert_eq!((len, digest, found), (0, Key::digest(b""), false));
    }

    /// However a file comes in pieces (shorter than a needle, across borders), the
    /// scanner finds a needle in the first file holding one and counts every occurrence
    /// of that needle there; where there is none, it finds none.
    #[test]
    fn needles_are_found_and_counted_whatever_the_pieces() {
        let needles = vec![
            b"/ws/target".to_vec(),
            b"/home/x/.cargo".to_vec(),
            b"/ws".to_vec(),
        ];
        let plain: Vec<u8> = (0..5000u32)
            .map(|i| b"abcdefgh"[(i % 8) as usize])
            .collect();
        let mut second = plain.clone();
        second[998..1012].copy_from_slice(b"/home/x/.cargo");
        second[2047..2050].copy_from_slice(b"/ws");
        second[4000..4014].copy_from_slice(b"/home/x/.cargo");
        let files = [plain.clone(), second.clone(), second.clone()];
        for piece in [1, 3, 7, 13, 14, 1000, 1024, 4096, 10_000] {
            let mut s = Scanner::new(&needles);
            for (i, f) in files.iter().enumerate() {
                let mut window = Vec::new();
                for chunk in f.chunks(piece) {
                    s.scan(i, chunk, &mut window);
                }
            }
            let n = s
                .found
                .unwrap_or_else(|| panic!("pieces of {piece}: nothing found"));
            let (file, count) = s.file.unwrap();
            assert_eq!(file, 1, "pieces of {piece}");
            let expected = memmem::find_iter(&second, &needles[n]).count() as u64;
            assert!(expected > 0, "pieces of {piece}: needle {n}");
            assert_eq!(count, expected, "pieces of {piece}, needle {n}");
        }
        for piece in [1, 5, 13, 4096] {
            let mut s = Scanner::new(&needles);
            let mut window = Vec::new();
            for chunk in plain.chunks(piece) {
                s.scan(0, chunk, &mut window);
            }
            assert_eq!((s.found, s.file), (None, None), "pieces of {piece}");
        }
    }

    fn meta(key: &Key, files: usize) -> EntryMeta {
        EntryMeta {
            format_version: 1,
            key: key.to_hex(),
            files: (0..files)
                .map(|i| EntryFile {
                    role: "rlib".into(),
                    name: format!("f{i}"),
                    template: false,
                    executable: false,
                    object: None,
                })
                .collect(),
            stdout: String::new(),
            stderr: "warn".into(),
            ansi: false,
            compile_ms: 5,
            xcache_version: "test".into(),
        }
    }

    /// The second copy of a block (an `.rlib` repeating its `.rmeta`) costs almost
    /// nothing, even 4 MiB behind the first, beyond the 512 KiB window level 1 would
    /// use by itself and beyond what its match finder keeps track of.
    #[test]
    fn a_repeated_block_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"k");
        // Text like metadata: compressible, but not by repetition at short range.
        let mut block = Vec::new();
        for i in 0u32.. {
            if block.len() >= 4 << 20 {
                break;
            }
            let h = blake3::hash(&i.to_le_bytes());
            block.extend_from_slice(
                format!(
                    "pub fn item_{i}(x: u64) -> u64 {{ x ^ 0x{} }}\n",
                    &h.to_hex()[..16]
                )
                .as_bytes(),
            );
        }
        let mut rlib = b"!<arch>\n".to_vec();
        rlib.extend_from_slice(&block);
        let size_of = |name: &str, sources: &[(EntrySource<'_>, bool)]| {
            let path = dir.path().join(name);
            write_entry(
                File::create(&path).unwrap(),
                &meta(&key, sources.len()),
                sources,
                &[],
                None,
            )
            .unwrap();
            (path.clone(), std::fs::metadata(&path).unwrap().len())
        };
        let (_, once) = size_of("once", &[(EntrySource::Bytes(&block), false)]);
        let (path, twice) = size_of(
            "twice",
            &[
                (EntrySource::Bytes(&block), false),
                (EntrySource::Bytes(&rlib), false),
            ],
        );
        assert!(
            twice < once + once / 10,
            "{twice} bytes for two copies of a block that takes {once} alone"
        );
        let mut r = EntryReader::open(&path, &key).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        r.next_file(&mut a).unwrap();
        r.next_file(&mut b).unwrap();
        r.finish().unwrap();
        assert_eq!((a, b), (block, rlib));
    }

    /// A thin entry: the file given by reference is digested, scanned and named in the
    /// header, and the stream holds nothing of it; reading it as bytes is refused.
    #[test]
    fn files_by_reference_are_named_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"thin");
        let rmeta: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
        let rlib_path = dir.path().join("lib.rlib");
        let mut rlib = vec![7u8; 3_000_000];
        std::fs::write(&rlib_path, &rlib).unwrap();
        let path = dir.path().join("e");
        let write = || {
            write_entry(
                File::create(&path).unwrap(),
                &meta(&key, 2),
                &[
                    (EntrySource::Bytes(&rmeta), true),
                    (EntrySource::Object(&rlib_path), true),
                ],
                &[b"/home/needle".to_vec()],
                None,
            )
            .unwrap()
        };
        let out = write();
        assert_eq!(out.needle_found, None);
        assert_eq!(out.digests[1], Key::digest(&rlib));
        assert_eq!(out.objects.len(), 1);
        assert_eq!(
            (out.objects[0].index, out.objects[0].len),
            (1, rlib.len() as u64)
        );
        let mut r = EntryReader::open(&path, &key).unwrap();
        assert!(r.is_thin());
        assert_eq!(r.meta().files[0].object, None);
        let mut a = Vec::new();
        r.next_file(&mut a).unwrap();
        assert_eq!(a, rmeta);
        assert!(r.next_file(&mut Vec::new()).is_err());
        let o = r.skip_object().unwrap();
        assert_eq!((o.digest, o.len), (Key::digest(&rlib), rlib.len() as u64));
        r.finish().unwrap();

        // A needle in the file by reference is found like anywhere else.
        rlib[2_000_000..2_000_012].copy_from_slice(b"/home/needle");
        std::fs::write(&rlib_path, &rlib).unwrap();
        let out = write();
        assert_eq!((out.needle_found, out.needle_file), (Some(0), Some((1, 1))));
    }

    /// A file by reference whose digest the caller took is named by that digest, not
    /// read again; one that changed since (another inode, another length or time) is
    /// not written at all.
    #[test]
    fn a_known_digest_is_used_only_for_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"known");
        let exe = dir.path().join("build_script_build.xcache-real");
        std::fs::write(&exe, vec![7u8; 5_000]).unwrap();
        let read = ReadAs::of(&std::fs::metadata(&exe).unwrap());
        // Not the file's digest: what is written is the caller's word, unread.
        let said = Key::digest(b"what the caller hashed");
        let path = dir.path().join("e");
        let m = meta(&key, 1);
        let write = || {
            write_entry(
                File::create(&path).unwrap(),
                &m,
                &[(EntrySource::Known(&exe, said, read), false)],
                &[],
                None,
            )
        };
        let out = write().unwrap();
        assert_eq!(out.digests, vec![said]);
        assert_eq!(out.objects.len(), 1);
        assert_eq!((out.objects[0].len, out.objects[0].read), (5_000, read));
        // Written again since (a new file renamed over it): refused.
        let other = dir.path().join("new");
        std::fs::write(&other, vec![8u8; 5_000]).unwrap();
        std::fs::rename(&other, &exe).unwrap();
        let err = write();
        assert!(
            err.is_err(),
            "a changed file was written under the old digest"
        );
    }

    /// Format 2 holds by reference only `.rlib` files beside their `.rmeta` (which a
    /// restore may link, and readers of format 2 link every file by reference); anything
    /// else by reference makes format 3, which those readers refuse. A header that does
    /// not match its format number is damage.
    #[test]
    fn what_is_held_by_reference_decides_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"formats");
        let (rlib, rmeta) = (dir.path().join("a.rlib"), dir.path().join("a.rmeta"));
        std::fs::write(&rlib, vec![1u8; 10_000]).unwrap();
        std::fs::write(&rmeta, vec![2u8; 10_000]).unwrap();
        let mut m = meta(&key, 2);
        m.files[0].role = "rmeta".into();
        let path = dir.path().join("e");
        let format_of = |sources: &[(EntrySource<'_>, bool)]| {
            write_entry(File::create(&path).unwrap(), &m, sources, &[], None).unwrap();
            let mut z = zstd::stream::read::Decoder::new(File::open(&path).unwrap()).unwrap();
            let mut head = [0u8; 12];
            z.read_exact(&mut head).unwrap();
            u32::from_le_bytes(head[8..12].try_into().unwrap())
        };
        let bytes = vec![2u8; 10_000];
        assert_eq!(
            format_of(&[
                (EntrySource::Bytes(&bytes), true),
                (EntrySource::Path(&rlib), true)
            ]),
            FORMAT
        );
        assert_eq!(
            format_of(&[
                (EntrySource::Bytes(&bytes), true),
                (EntrySource::Object(&rlib), true)
            ]),
            FORMAT_THIN
        );
        assert_eq!(
            format_of(&[
                (EntrySource::Object(&rmeta), true),
                (EntrySource::Object(&rlib), true)
            ]),
            FORMAT_THIN_COPIED
        );
        assert!(EntryReader::open(&path, &key).is_ok());
        // The same entry calling itself format 2: refused.
        let mut plain = Vec::new();
        zstd::stream::read::Decoder::new(File::open(&path).unwrap())
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        plain[8..12].copy_from_slice(&FORMAT_THIN.to_le_bytes());
        std::fs::write(&path, zstd::encode_all(&plain[..], 1).unwrap()).unwrap();
        assert!(matches!(
            EntryReader::open(&path, &key),
            Err(ReadError::Corrupt(_))
        ));
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"k");
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("e");
        let needle = b"/home/needle".to_vec();
        let mut with_needle = big.clone();
        // Straddles the 256 KiB chunk border; twice more later, once across the next.
        with_needle[262_140..262_152].copy_from_slice(&needle);
        with_needle[300_000..300_012].copy_from_slice(&needle);
        with_needle[524_280..524_292].copy_from_slice(&needle);
        let out = write_entry(
            File::create(&path).unwrap(),
            &meta(&key, 2),
            &[
                (EntrySource::Bytes(&big), true),
                (EntrySource::Bytes(&with_needle), true),
            ],
            &[needle],
            None,
        )
        .unwrap();
        assert_eq!(out.needle_found, Some(0));
        assert_eq!(out.needle_file, Some((1, 3)));
        // A find ends the write (the caller drops it); without needles it is whole.
        write_entry(
            File::create(&path).unwrap(),
            &meta(&key, 2),
            &[
                (EntrySource::Bytes(&big), true),
                (EntrySource::Bytes(&with_needle), true),
            ],
            &[],
            None,
        )
        .unwrap();
        let mut r = EntryReader::open(&path, &key).unwrap();
        let mut a = Vec::new();
        r.next_file(&mut a).unwrap();
        assert_eq!(a, big);
        let mut b = Vec::new();
        r.next_file(&mut b).unwrap();
        assert_eq!(b, with_needle);
        r.finish().unwrap();

        assert!(matches!(
            EntryReader::open(&path, &Key::digest(b"other")),
            Err(ReadError::Corrupt(_))
        ));
        // Flip a byte in the middle of the compressed stream.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let result = EntryReader::open(&path, &key).and_then(|mut r| {
            let mut sink = Vec::new();
            r.next_file(&mut sink)?;
            r.next_file(&mut sink)?;
            r.finish()
        });
        assert!(matches!(result, Err(ReadError::Corrupt(_))), "{result:?}");
    }

    #[test]
    fn signatures_bind_the_key_and_every_byte() {
        use crate::sign::{Signer, TrustedKeys};
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"k");
        let writer = Signer::generate().unwrap();
        let stranger = Signer::generate().unwrap();
        let trusted = TrustedKeys::parse(&writer.public_key().to_string())
            .unwrap()
            .unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
        let write = |name: &str, signer: Option<&Signer>, key: &Key| {
            let path = dir.path().join(name);
            write_entry(
                File::create(&path).unwrap(),
                &meta(key, 1),
                &[(EntrySource::Bytes(&body), false)],
                &[],
                signer,
            )
            .unwrap();
            path
        };
        let read_all = |mut r: EntryReader| {
            let mut out = Vec::new();
            r.next_file(&mut out)?;
            r.finish().map(|()| out)
        };
        let signed = write("signed", Some(&writer), &key);
        let r = EntryReader::open_checked(&signed, &key, Some(&trusted)).unwrap();
        assert_eq!(read_all(r).unwrap(), body);
        // Without trusted keys, signed and unsigned entries read alike.
        assert_eq!(
            read_all(EntryReader::open(&signed, &key).unwrap()).unwrap(),
            body
        );
        let unsigned = write("unsigned", None, &key);
        assert_eq!(
            read_all(EntryReader::open(&unsigned, &key).unwrap()).unwrap(),
            body
        );

        let untrusted =
            |path: &Path, key: &Key| match EntryReader::open_checked(path, key, Some(&trusted)) {
                Err(OpenError::Untrusted(u)) => u,
                Err(OpenError::Read(e)) => panic!("read error {e:?}"),
                Ok(_) => panic!("accepted"),
            };
        assert_eq!(untrusted(&unsigned, &key), Untrusted::Unsigned);
        let other = write("other", Some(&stranger), &key);
        assert_eq!(
            untrusted(&other, &key),
            Untrusted::UnknownKey(stranger.public_key())
        );
        // A trusted signature over another key's entry, renamed into this key's place.
        let elsewhere = Key::digest(b"elsewhere");
        let moved = write("moved", Some(&writer), &elsewhere);
        assert_eq!(
            untrusted(&moved, &key),
            Untrusted::BadSignature(writer.public_key())
        );
        // Another stream behind a trusted trailer (a forged entry with fresh digests).
        let other_body = b"#!/bin/sh\necho owned\n".to_vec();
        let forged_stream = dir.path().join("forged-stream");
        write_entry(
            File::create(&forged_stream).unwrap(),
            &meta(&key, 1),
            &[(EntrySource::Bytes(&other_body), false)],
            &[],
            None,
        )
        .unwrap();
        let mut forged = std::fs::read(&forged_stream).unwrap();
        let bytes = std::fs::read(&signed).unwrap();
        forged.extend_from_slice(&bytes[bytes.len() - TRAILER_LEN..]);
        let forged_path = dir.path().join("forged");
        std::fs::write(&forged_path, &forged).unwrap();
        // Its length disagrees with the trailer's; with the length forged too, the
        // signature does not hold.
        assert!(matches!(
            EntryReader::open_checked(&forged_path, &key, Some(&trusted)),
            Err(OpenError::Read(ReadError::Corrupt(_)))
        ));
        let n = forged.len();
        let stream_len = (n - TRAILER_LEN) as u64;
        forged[n - 16..n - 8].copy_from_slice(&stream_len.to_le_bytes());
        std::fs::write(&forged_path, &forged).unwrap();
        assert_eq!(
            untrusted(&forged_path, &key),
            Untrusted::BadSignature(writer.public_key())
        );

        // A reader that predates signatures stops at END and never sees the trailer.
        let mut z = zstd::stream::read::Decoder::new(File::open(&signed).unwrap()).unwrap();
        let mut head = [0u8; 8];
        z.read_exact(&mut head).unwrap();
        assert_eq!(&head, MAGIC);
        let _format = read_u32(&mut z).unwrap();
        let meta_len = read_u32(&mut z).unwrap() as usize;
        let mut skip = vec![0u8; meta_len + 32 + 8 + body.len() + 32];
        z.read_exact(&mut skip).unwrap();
        let mut end = [0u8; 4];
        z.read_exact(&mut end).unwrap();
        assert_eq!(&end, END);
    }
}
