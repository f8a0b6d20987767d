//! The local store: a directory on this machine, shared by every build that uses it.
//!
//! Concurrency: every write goes to a temp file that is renamed into place, so readers
//! see a whole entry or none; two builds writing the same key write the same bytes.
//!
//! Policy (from [`StoreDir`]): entries are signed when this process has a signing key,
//! and read only when a trusted key signed them if it has trusted keys; the store is
//! kept under its size by evicting what was used least recently (`super::gc`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::entry::{OpenError, ReadError, is_signed, write_entry};
use super::{EntryMeta, EntryReader, EntrySource, Manifest, PutOutcome};
use crate::config::StoreDir;
use crate::errors::CacheError;
use crate::key::Key;
use crate::sign::Trust;

/// The layout version, part of every path in the store.
pub const LAYOUT: &str = "v2";

/// A file used this long ago is marked used again when read (its modification time is
/// set to now): least-recently-used eviction goes by that time. Coarse, so that a store
/// read over and over is not written each time.
const TOUCH_AFTER: Duration = Duration::from_secs(10 * 60);

/// A store at `dir` without a size limit, for tests.
#[cfg(test)]
pub(crate) fn unbounded_store(dir: &Path) -> LocalStore {
    let mut sd = StoreDir::new(dir);
    sd.max_size = None;
    LocalStore::open(&sd).unwrap()
}

/// A local store rooted at a directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    trust: Trust,
    max_size: Option<u64>,
}

impl LocalStore {
    /// Opens (creating if needed) the store `dir` describes. A store whose settings
    /// were not understood is refused (fail closed).
    pub fn open(dir: &StoreDir) -> Result<LocalStore, CacheError> {
        if let Some(problem) = &dir.problem {
            return Err(CacheError::Setting(problem.clone()));
        }
        let root = dir.path().join(LAYOUT);
        for sub in ["entries", "manifests", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|source| CacheError::Write { path: p, source })?;
        }
        Ok(LocalStore {
            root,
            trust: dir.trust.clone(),
            max_size: dir.max_size,
        })
    }

    /// The size this store is kept under, if any.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// The versioned root (`<dir>/v1`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where compiler identities are remembered: not in the store, whose writers must not
    /// decide what a compiler is (`crate::private_dir`). `None` when there is no such
    /// place: every identity is then probed.
    pub fn compilers_dir(&self) -> Option<PathBuf> {
        crate::private_dir::compilers_dir()
    }

    /// Scratch space (downloads, observation records), cleaned of old leftovers.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where linker identities are remembered (like [`LocalStore::compilers_dir`]).
    pub fn linkers_dir(&self) -> Option<PathBuf> {
        crate::private_dir::linkers_dir()
    }

    /// The path of an entry.
    /// Whether entries are read only when a trusted key signed them: then nothing the
    /// signatures do not cover (loose objects) stands in for an entry's files.
    pub fn checks_signatures(&self) -> bool {
        self.trust.trusted.is_some()
    }

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
        let path = self.manifest_path(l1);
        let manifest = crate::fsx::read_small_bytes(&path, crate::fsx::RECORD_LIMIT)
            .ok()
            .map(|b| Manifest::from_slice(&b));
        if manifest.as_ref().is_some_and(|m| !m.variants.is_empty()) {
            touch(&path);
        }
        manifest.unwrap_or_default()
    }

    /// Adds an input set to a manifest (read, modify, rename into place, under the
    /// record's lock: builds adding at once each keep theirs).
    pub fn add_variant(&self, l1: &Key, v: super::Variant) -> Result<(), CacheError> {
        let path = self.manifest_path(l1);
        let _lock = self.record_lock(&path);
        let mut m = self.read_manifest(l1);
        m.add(v);
        let bytes = serde_json::to_vec(&m).map_err(|e| CacheError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::fsx::write_atomic(&path, &bytes).map_err(|source| CacheError::Write { path, source })
    }

    /// The lock under which a record many builds update (a manifest, a seed record, a
    /// unit's key history) is read, changed and renamed into place, so that no writer's
    /// change is lost to another's. One lock per record kind and shard
    /// (`locks/<kind>-<shard>.lock`): held for the milliseconds of one update. A lock
    /// not had within `RECORD_LOCK_WAIT` (2 s) (a writer stopped while holding it; a store
    /// whose lock files cannot be made) is gone without: the update then may lose a
    /// racing one, which costs a miss later, never a wrong build.
    pub fn record_lock(&self, record: &Path) -> Option<fs::File> {
        let kind = record
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)?
            .to_str()?;
        let shard = record.parent().and_then(Path::file_name)?.to_str()?;
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).ok()?;
        let f = crate::fsx::open_in_place(
            &dir.join(format!("{kind}-{shard}.lock")),
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true),
        )
        .ok()?;
        crate::fsx::lock_within(&f, RECORD_LOCK_WAIT).then_some(f)
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
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(werr)?;
        // A large file the store copies (a program, a proc-macro) is copied while it is
        // hashed, on another thread: the copy and the read no longer follow each other,
        // which is time the build waits for when it is the last unit's.
        let copied_by_object = |i: usize| !super::objects::served_by_object(meta, &meta.files[i]);
        let (outcome, mut precopies) = std::thread::scope(|s| {
            let copies: Vec<_> = sources
                .iter()
                .enumerate()
                .filter_map(|(i, (source, _))| match source {
                    EntrySource::Object(p)
                        if copied_by_object(i)
                            && fs::symlink_metadata(p)
                                .is_ok_and(|m| m.len() >= super::objects::PRECOPY_MIN_LEN) =>
                    {
                        Some((i, s.spawn(move || super::objects::precopy(self, p))))
                    }
                    _ => None,
                })
                .collect();
            let outcome = write_entry(
                tmp.as_file(),
                meta,
                sources,
                needles,
                self.trust.signer.as_deref(),
            );
            let precopies: std::collections::HashMap<usize, super::objects::Precopy> = copies
                .into_iter()
                .filter_map(|(i, h)| Some((i, h.join().ok()??)))
                .collect();
            (outcome, precopies)
        });
        let mut outcome = outcome.map_err(werr)?;
        if outcome.needle_found.is_some() {
            return Ok(outcome);
        }
        // A file held by reference holds only if it is now the object of its digest;
        // the others go into the stream after all (an `.rlib` that cannot be linked
        // into a store on another file system), in an entry written again.
        let adopted: Vec<usize> = outcome
            .objects
            .iter()
            .filter(|o| match &sources[o.index].0 {
                EntrySource::Object(p) | EntrySource::Known(p, ..) => {
                    let how = if super::objects::served_by_object(meta, &meta.files[o.index]) {
                        super::objects::Adopt::Link
                    } else {
                        super::objects::Adopt::Copy
                    };
                    // A copy made during the hash is of the bytes hashed only if the
                    // file is still as it was when the hash began.
                    let precopied = precopies.remove(&o.index).filter(|_| {
                        fs::symlink_metadata(p)
                            .is_ok_and(|m| super::entry::ReadAs::of(&m) == o.read)
                    });
                    super::objects::adopt_read(
                        self,
                        p,
                        &outcome.digests[o.index],
                        &o.read,
                        how,
                        precopied,
                    )
                }
                _ => false,
            })
            .map(|o| o.index)
            .collect();
        if adopted.len() != outcome.objects.len() {
            let fewer: Vec<(EntrySource<'_>, bool)> = sources
                .iter()
                .enumerate()
                .map(|(i, &(s, scan))| match s {
                    EntrySource::Object(p) | EntrySource::Known(p, ..) if !adopted.contains(&i) => {
                        (EntrySource::Path(p), scan)
                    }
                    other => (other, scan),
                })
                .collect();
            tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(werr)?;
            outcome = write_entry(
                tmp.as_file(),
                meta,
                &fewer,
                needles,
                self.trust.signer.as_deref(),
            )
            .map_err(werr)?;
            if outcome.needle_found.is_some() {
                return Ok(outcome);
            }
        }
        if !outcome.objects.is_empty() {
            // Which objects the entry needs, for `gc` (an object lives as long as an
            // entry that lists it is kept).
            let beside = meta
                .files
                .iter()
                .position(|f| f.role == "rmeta")
                .map(|i| outcome.digests[i]);
            let listed: Vec<super::objects::LinkableFile> = outcome
                .objects
                .iter()
                .map(|o| super::objects::LinkableFile {
                    name: meta.files[o.index].name.clone(),
                    digest: outcome.digests[o.index],
                    len: o.len,
                    beside,
                })
                .collect();
            super::objects::record_entry_objects(self, key, &listed);
        }
        // An unsigned write never replaces a signed entry: a reader that refused it
        // (it trusts other keys) would otherwise take it from readers that trust its
        // writer.
        if self.trust.signer.is_none() && is_signed(&dest) {
            return Ok(outcome);
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(werr)?;
        }
        tmp.persist(&dest).map_err(|e| werr(e.error))?;
        super::gc::collect_now_and_then(self);
        Ok(outcome)
    }

    /// Opens an entry. `Ok(None)` if there is none; a corrupt entry is deleted and
    /// reported as [`CacheError::Corrupt`]. With trusted keys, an entry none of them
    /// signed is [`CacheError::Untrusted`] (left in place: it may be good for a reader
    /// that trusts its writer, and the next writer of the key replaces it).
    pub fn open_entry(&self, key: &Key) -> Result<Option<EntryReader>, CacheError> {
        let path = self.entry_path(key);
        match EntryReader::open_checked(&path, key, self.trust.trusted.as_ref()) {
            Ok(r) => {
                touch(&path);
                Ok(Some(r))
            }
            Err(OpenError::Read(ReadError::Io(e))) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(OpenError::Read(ReadError::Io(source))) => Err(CacheError::Read { path, source }),
            Err(OpenError::Read(ReadError::Corrupt(reason))) => Err(self.discard(key, reason)),
            Err(OpenError::Untrusted(why)) => Err(CacheError::Untrusted {
                path,
                reason: why.to_string(),
            }),
        }
    }

    /// Deletes a corrupt entry and returns the error that reports it.
    pub fn discard(&self, key: &Key, reason: String) -> CacheError {
        let path = self.entry_path(key);
        let _ = fs::remove_file(&path);
        CacheError::Corrupt { path, reason }
    }

    /// Makes entry `key` whole if it is thin (some files held by reference, as the
    /// store's loose objects): what leaves this machine must hold its bytes. True when
    /// the entry file may be sent as it is now (whole, or not an entry this can read:
    /// its readers judge it); false when a thin entry could not be made whole: an
    /// object gone or found changed (the entry is then removed, as a restore would),
    /// one that cannot be read now, or a signed entry this unsigned writer may not
    /// replace (left as they are).
    pub fn ensure_whole(&self, key: &Key) -> bool {
        let path = self.entry_path(key);
        let Ok(mut reader) = EntryReader::open(&path, key) else {
            return true;
        };
        if !reader.is_thin() {
            return true;
        }
        let mut object_gone = false;
        let made = (|| -> Option<()> {
            let dir = tempfile::Builder::new()
                .prefix("whole-")
                .tempdir_in(self.root.join("tmp"))
                .ok()?;
            let mut meta = reader.meta().clone();
            let mut paths = Vec::with_capacity(meta.files.len());
            for i in 0..meta.files.len() {
                let p = dir.path().join(i.to_string());
                match reader.next_object() {
                    Some(o) => {
                        if super::objects::link_or_copy(self, &o.digest, o.len, &p).is_none() {
                            object_gone = !super::objects::object_path(self, &o.digest).exists();
                            return None;
                        }
                        reader.skip_object().ok()?;
                    }
                    None => {
                        let mut f = std::io::BufWriter::new(File::create(&p).ok()?);
                        reader.next_file(&mut f).ok()?;
                        std::io::Write::flush(&mut f).ok()?;
                    }
                }
                paths.push(p);
            }
            reader.finish().ok()?;
            for f in &mut meta.files {
                f.object = None;
            }
            let sources: Vec<_> = paths
                .iter()
                .map(|p| (EntrySource::Path(p), false))
                .collect();
            self.put_entry(key, &meta, &sources, &[]).ok()?;
            // An unsigned write leaves a signed entry as it was.
            EntryReader::open(&path, key)
                .ok()
                .filter(|r| !r.is_thin())
                .map(|_| ())
        })();
        if object_gone {
            let _ = fs::remove_file(&path);
        }
        made.is_some()
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

    /// A shared hold on the store for the length of a build: `super::gc` evicts
    /// recently used entries only when no build holds one (see the book's Size section).
    /// `None` if the lock file cannot be opened (eviction then stays conservative).
    ///
    /// The build also holds a lease file of its own, `leases/<pid>-<nanos>.lease`,
    /// locked for as long as it runs and dated when it began: a collection keeps
    /// everything used since the oldest running build began, however long ago
    /// (`gc::oldest_lease`). The kernel releases a killed build's lock; the next
    /// collection removes its file.
    pub fn lease(&self) -> Option<Lease> {
        let f = crate::fsx::open_in_place(
            &self.root.join("lock"),
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true),
        )
        .ok()?;
        f.lock_shared().ok()?;
        let own = self.own_lease();
        Some(Lease { _store: f, own })
    }

    /// This build's lease file, locked (see [`Self::lease`]); `None` if it cannot be
    /// made (collections then keep what the last [`super::gc::GRACE`] used).
    fn own_lease(&self) -> Option<(File, PathBuf)> {
        let dir = self.root.join(super::gc::LEASES);
        fs::create_dir_all(&dir).ok()?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let name = format!("{}-{nanos}.lease", std::process::id());
        // Locked before it has its name: a collection that takes the lock of a file
        // still being made removes it, and the rename then fails (no lease file: the
        // fixed grace applies), never leaving a lease that looks like a killed build's.
        let making = dir.join(format!(".{name}"));
        let f =
            crate::fsx::open_in_place(&making, fs::OpenOptions::new().create_new(true).write(true))
                .ok()?;
        let path = dir.join(name);
        if f.try_lock().is_err() || fs::rename(&making, &path).is_err() {
            let _ = fs::remove_file(&making);
            return None;
        }
        Some((f, path))
    }

    /// Size of an entry file on disk, if present and whole: what the remote holds of
    /// the key when this machine uploaded it. `None` for a thin entry, which never
    /// leaves as it is (see [`Self::ensure_whole`]).
    pub fn whole_size(&self, key: &Key) -> Option<u64> {
        let size = self.entry_size(key)?;
        match EntryReader::open(&self.entry_path(key), key) {
            Ok(r) if r.is_thin() => None,
            _ => Some(size),
        }
    }

    /// Size of an entry file on disk, if present.
    pub fn entry_size(&self, key: &Key) -> Option<u64> {
        crate::fsx::open_in_place(&self.entry_path(key), fs::OpenOptions::new().read(true))
            .and_then(|f| f.metadata())
            .map(|m| m.len())
            .ok()
    }
}

/// A build's shared hold on a store ([`LocalStore::lease`]); released when dropped, or by
/// the kernel when the process dies (`kill -9` included).
#[derive(Debug)]
pub struct Lease {
    _store: File,
    /// This build's lease file, locked, and its path (removed when dropped).
    own: Option<(File, PathBuf)>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((f, path)) = self.own.take() {
            let _ = fs::remove_file(&path);
            drop(f);
        }
    }
}

/// How long an update waits for a record's lock ([`LocalStore::record_lock`]).
pub const RECORD_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Marks a file used now, if it was last marked longer than [`TOUCH_AFTER`] ago. Best
/// effort: a store this process may read but not write stays as it is.
fn touch(path: &Path) {
    let Ok(f) = crate::fsx::open_in_place(path, fs::OpenOptions::new().read(true)) else {
        return;
    };
    let stale = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age > TOUCH_AFTER);
    if stale {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod record_lock_tests {
    use super::*;

    /// Builds adding to one manifest at once each keep theirs: all 12 writers'
    /// variants, added at one moment, are there after them.
    #[test]
    fn writers_at_once_each_keep_their_variant() {
        let dir = tempfile::tempdir().unwrap();
        let store = unbounded_store(dir.path());
        let l1 = Key::from_hex(&"ab".repeat(32)).unwrap();
        let start = std::sync::Barrier::new(12);
        std::thread::scope(|s| {
            for n in 0..12 {
                let (store, start) = (store.clone(), &start);
                s.spawn(move || {
                    let v = super::super::Variant {
                        inputs: Vec::new(),
                        entry: format!("writer-{n}"),
                        bound_by: Vec::new(),
                    };
                    start.wait();
                    store.add_variant(&l1, v).unwrap();
                });
            }
        });
        let m = store.read_manifest(&l1);
        let mut found: Vec<&str> = m.variants.iter().map(|v| v.entry.as_str()).collect();
        found.sort();
        let mut all: Vec<String> = (0..12).map(|n| format!("writer-{n}")).collect();
        all.sort();
        assert_eq!(found, all);
        assert!(store.root().join("locks/manifests-ab.lock").is_file());
    }
}
