//! The local store: a directory on this machine, shared by every build that uses it.
//!
//! Concurrency: every write goes to a temp file that is renamed into place, so readers
//! see a whole entry or none; two builds writing the same key write the same bytes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::entry::{ReadError, write_entry};
use super::{EntryMeta, EntryReader, EntrySource, Manifest, PutOutcome};
use crate::errors::CacheError;
use crate::key::Key;

/// The layout version, part of every path in the store.
pub const LAYOUT: &str = "v1";

/// A local store rooted at a directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<LocalStore, CacheError> {
        let root = dir.join(LAYOUT);
        for sub in ["entries", "manifests", "compilers", "linkers", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|source| CacheError::Write { path: p, source })?;
        }
        Ok(LocalStore { root })
    }

    /// The versioned root (`<dir>/v1`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where compiler identities are remembered.
    pub fn compilers_dir(&self) -> PathBuf {
        self.root.join("compilers")
    }

    /// Where linker identities are remembered.
    pub fn linkers_dir(&self) -> PathBuf {
        self.root.join("linkers")
    }

    /// The path of an entry.
    pub fn entry_path(&self, key: &Key) -> PathBuf {
        let hex = key.to_hex();
        self.root
            .join("entries")
            .join(&hex[..2])
            .join(format!("{hex}.xce"))
    }

    fn manifest_path(&self, l1: &Key) -> PathBuf {
        let hex = l1.to_hex();
        self.root
            .join("manifests")
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    /// The manifest of a first-level key; empty if there is none or it is unreadable.
    pub fn read_manifest(&self, l1: &Key) -> Manifest {
        fs::read(self.manifest_path(l1))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds an input set to a manifest (read, modify, rename into place). Two builds
    /// racing here can lose one variant: that costs a miss later, never a wrong hit.
    pub fn add_variant(&self, l1: &Key, v: super::Variant) -> Result<(), CacheError> {
        let mut m = self.read_manifest(l1);
        m.add(v);
        let path = self.manifest_path(l1);
        let bytes = serde_json::to_vec(&m).map_err(|e| CacheError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        super::write_atomic(&path, &bytes).map_err(|source| CacheError::Write { path, source })
    }

    /// Writes an entry atomically. If a scanned file holds a needle, nothing is kept and
    /// the outcome says which needle.
    pub fn put_entry(
        &self,
        key: &Key,
        meta: &EntryMeta,
        sources: &[(EntrySource<'_>, bool)],
        needles: &[Vec<u8>],
    ) -> Result<PutOutcome, CacheError> {
        let dest = self.entry_path(key);
        let tmp_dir = self.root.join("tmp");
        let werr = |source| CacheError::Write {
            path: dest.clone(),
            source,
        };
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(werr)?;
        let outcome = write_entry(tmp.as_file(), meta, sources, needles).map_err(werr)?;
        if outcome.needle_found.is_some() {
            return Ok(outcome);
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(werr)?;
        }
        tmp.persist(&dest).map_err(|e| werr(e.error))?;
        Ok(outcome)
    }

    /// Opens an entry. `Ok(None)` if there is none; a corrupt entry is deleted and
    /// reported as [`CacheError::Corrupt`].
    pub fn open_entry(&self, key: &Key) -> Result<Option<EntryReader>, CacheError> {
        let path = self.entry_path(key);
        match EntryReader::open(&path, key) {
            Ok(r) => Ok(Some(r)),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(ReadError::Io(source)) => Err(CacheError::Read { path, source }),
            Err(ReadError::Corrupt(reason)) => Err(self.discard(key, reason)),
        }
    }

    /// Deletes a corrupt entry and returns the error that reports it.
    pub fn discard(&self, key: &Key, reason: String) -> CacheError {
        let path = self.entry_path(key);
        let _ = fs::remove_file(&path);
        CacheError::Corrupt { path, reason }
    }

    /// A fresh temp path inside the store, for a download.
    pub fn temp_path(&self) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.root
            .join("tmp")
            .join(format!("dl-{}-{t:x}-{n}", std::process::id()))
    }

    /// Moves a downloaded entry file into place. Its contents are checked on restore,
    /// like any entry's.
    pub fn adopt_entry(&self, key: &Key, tmp: &Path) -> Result<(), CacheError> {
        let dest = self.entry_path(key);
        let werr = |source| CacheError::Write {
            path: dest.clone(),
            source,
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(werr)?;
        }
        fs::rename(tmp, &dest).map_err(werr)
    }

    /// Size of an entry file on disk, if present.
    pub fn entry_size(&self, key: &Key) -> Option<u64> {
        File::open(self.entry_path(key))
            .and_then(|f| f.metadata())
            .map(|m| m.len())
            .ok()
    }
}
