//! Keeping the local store under its size: entries are evicted least recently used
//! first, and temp files that killed builds left behind are removed. Main function:
//! [`collect`]; `cargo xcache gc` calls it, so does a build when it ends (one that wrote to
//! the store when what it added may take the store near its size by the last count and
//! the ledger of builds since, [`room_for`]; any, when no collection ran for an hour:
//! [`counted_within`]), and a store write now and then (`collect_now_and_then`, for the
//! drop-in mode).
//!
//! What is never removed (the book's "Store layout and entry format", Size, says why):
//! - an entry a running process has open: on Unix a removed file stays readable
//!   through the handles open on it, so a restore in progress always completes;
//! - an entry used (read, written or downloaded) within [`GRACE`], or since the oldest
//!   running build began (by its lease file, `oldest_lease`), while any `cargo xcache
//!   build` holds a lease on the store ([`super::LocalStore::lease`]): a build may have
//!   planned to restore it minutes later (prefetch, seeding), or stored it and not
//!   uploaded it yet. With no lease held, the margin is [`QUIET_GRACE`] (a drop-in
//!   wrapper between its lookup and its read). A collection holds the store's lock
//!   exclusively while it removes, so a build starting meanwhile waits for it
//!   (milliseconds), then sees a consistent store;
//! - a temp file younger than [`TEMP_GRACE`]: it may be a write in progress.
//!
//! Manifests, seed records and remembered identities are small (a few KB per unit) and
//! are counted in the size but not evicted.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::LocalStore;

/// How recently used an entry must be to be kept while builds hold leases.
pub const GRACE: Duration = Duration::from_secs(60 * 60);
/// The directory of running builds' lease files ([`super::LocalStore::lease`]).
pub const LEASES: &str = "leases";
/// How recently used an entry must be to be kept when no build holds a lease.
pub const QUIET_GRACE: Duration = Duration::from_secs(60);
/// How old a temp file must be to count as left behind.
pub const TEMP_GRACE: Duration = Duration::from_secs(60 * 60);
/// How often a store write may start a collection.
const EVERY: Duration = Duration::from_secs(5 * 60);
/// How long builds that wrote nothing new may go without a collection.
pub const IDLE_EVERY: Duration = Duration::from_secs(60 * 60);
/// Written by every collection when it ends: when the store was last counted (its
/// time) and the bytes it held then (its text).
const COUNTED: &str = "gc.counted";
/// What builds that wrote to the store said they added since the last count: a number
/// of bytes a line ([`room_for`]).
const ADDED: &str = "gc.added";
/// How full, by the last count and the ledger, a store may get before a build that
/// wrote to it collects (nine tenths of its size).
const ROOM_TENTHS: u64 = 9;
/// The longest count or ledger read (a line per build that wrote within the hour);
/// longer, a collection is due.
const LEDGER_LIMIT: u64 = 64 * 1024;

/// What to collect.
#[derive(Clone, Debug, Default)]
pub struct GcOptions {
    /// Evict down to this size (`None`: evict nothing, only remove temp files).
    pub max_size: Option<u64>,
    /// Say what would be removed, remove nothing.
    pub dry_run: bool,
}

/// What a collection found and removed (or would remove, for a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Another collection held the store: nothing was done.
    pub busy: bool,
    /// Every file in the store before, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Entries in the store before.
    pub entries: usize,
    pub evicted: usize,
    pub evicted_bytes: u64,
    /// Entries past the size that were kept for being used within the grace period.
    pub kept_recent: usize,
    /// Loose objects removed (`super::objects`), with the lists that name them: those
    /// no kept entry lists go first, oldest first, when the store is over its size; the
    /// others with the last entry that lists them.
    pub objects_evicted: usize,
    pub objects_evicted_bytes: u64,
    /// Temp files left behind, removed.
    pub temps: usize,
    pub temp_bytes: u64,
    /// The grace period that applied.
    pub grace: Duration,
}

impl GcReport {
    /// Bytes the store holds after the collection.
    pub fn bytes_after(&self) -> u64 {
        self.bytes - self.evicted_bytes - self.objects_evicted_bytes - self.temp_bytes
    }
}

struct Found {
    path: PathBuf,
    len: u64,
    age: Duration,
}

/// Evicts entries least recently used first until the store fits `opts.max_size`, and
/// removes temp files left behind.
pub fn collect(store: &LocalStore, opts: &GcOptions) -> io::Result<GcReport> {
    let root = store.root();
    let Some(_gc) = try_lock(&root.join("gc.lock"))? else {
        return Ok(GcReport {
            busy: true,
            ..GcReport::default()
        });
    };
    // Exclusive for the whole collection: new builds wait for it to end.
    let quiet = try_lock(&root.join("lock"))?;
    let now = SystemTime::now();
    let grace = if quiet.is_some() {
        QUIET_GRACE
    } else {
        // Everything used since the oldest running build began, with a margin for
        // what it had planned from the moment before.
        let since = oldest_lease(root, opts.dry_run)
            .and_then(|t| now.duration_since(t).ok())
            .map_or(Duration::ZERO, |d| d + QUIET_GRACE);
        GRACE.max(since)
    };
    let mut report = GcReport {
        grace,
        ..GcReport::default()
    };
    // What builds add from now on the next collection counts (a build's bytes are in
    // the store before its line is in the ledger: counted twice at worst, never missed).
    let counting = root.join(format!("{ADDED}.counting"));
    if !opts.dry_run {
        let _ = fs::rename(root.join(ADDED), &counting);
    }
    let mut entries = Vec::new();
    let mut objects = Vec::new();
    let mut lists = Vec::new();
    let mut temps = Vec::new();
    walk(root, 0, &mut |path, meta| {
        let len = meta.len();
        report.files += 1;
        report.bytes += len;
        let age = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let found = Found {
            path: path.to_path_buf(),
            len,
            age,
        };
        let rel = path.strip_prefix(root).unwrap_or(path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_temp(rel, name) {
            temps.push(found);
        } else if rel.starts_with("entries") && name.ends_with(".xce") {
            entries.push(found);
        } else if rel.starts_with("objects/by-entry") {
            lists.push(found);
        } else if rel.starts_with("objects") {
            objects.push(found);
        }
    })?;
    report.entries = entries.len();
    for t in temps.iter().filter(|t| t.age > TEMP_GRACE) {
        if opts.dry_run || remove(&t.path) {
            report.temps += 1;
            report.temp_bytes += t.len;
        }
    }
    if let Some(max) = opts.max_size {
        let mut size = report.bytes - report.temp_bytes;
        // An object an entry lists (a thin entry's file, or a linked `.rlib`) lives as
        // long as the entry; the others are an acceleration only.
        let needs = Needs::read(&entries, &lists);
        let mut users: std::collections::HashMap<&str, usize> = Default::default();
        for digests in needs.by_entry.values() {
            for d in digests {
                *users.entry(d.as_str()).or_default() += 1;
            }
        }
        let digest_of = |o: &Found| {
            o.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string()
        };
        let by_digest: std::collections::HashMap<String, &Found> =
            objects.iter().map(|o| (digest_of(o), o)).collect();
        // Unlisted objects first, oldest first (their times are never set after they
        // are made), with the lists of entries that are gone.
        let mut loose: Vec<&Found> = objects
            .iter()
            .filter(|o| !users.contains_key(digest_of(o).as_str()))
            .chain(needs.orphan_lists.iter().copied())
            .collect();
        loose.sort_by_key(|e| std::cmp::Reverse(e.age));
        for o in loose {
            if size <= max {
                break;
            }
            if opts.dry_run || remove(&o.path) {
                report.objects_evicted += 1;
                report.objects_evicted_bytes += o.len;
                size -= o.len;
            }
        }
        // Then entries, oldest use first, each with its list and the objects no other
        // entry kept lists.
        entries.sort_by_key(|e| std::cmp::Reverse(e.age));
        for e in &entries {
            if size <= max {
                break;
            }
            if e.age < grace {
                report.kept_recent = entries.iter().filter(|x| x.age < grace).count();
                break;
            }
            if !(opts.dry_run || remove(&e.path)) {
                continue;
            }
            report.evicted += 1;
            report.evicted_bytes += e.len;
            size -= e.len;
            let Some((list, digests)) = needs.of(&e.path) else {
                continue;
            };
            if opts.dry_run || remove(&list.path) {
                report.objects_evicted_bytes += list.len;
                size -= list.len;
            }
            for d in digests {
                let n = users.get_mut(d.as_str()).expect("counted");
                *n -= 1;
                if *n > 0 {
                    continue;
                }
                if let Some(o) = by_digest.get(d.as_str())
                    && (opts.dry_run || remove(&o.path))
                {
                    report.objects_evicted += 1;
                    report.objects_evicted_bytes += o.len;
                    size -= o.len;
                }
            }
        }
    }
    if !opts.dry_run {
        // Renamed into place: a link planted at the name is replaced, never written through.
        let _ = crate::fsx::write_atomic(
            &root.join(COUNTED),
            format!("{}\n", report.bytes_after()).as_bytes(),
        );
        let _ = fs::remove_file(&counting);
    }
    Ok(report)
}

/// True when a build that added at most `adding` bytes to the store leaves it within
/// nine tenths of `max` by the last count and the ledger of what builds added since:
/// then it need not walk the store, whose cost grows with it (0.2 s for 60 000 files,
/// at the end of every build that compiled anything); [`note_added`] puts `adding` in
/// the ledger.
/// False, a collection due, when the store has no count with its size (none ran, or
/// one older than the ledger did), when the last count is older than [`IDLE_EVERY`]
/// (what keeps no ledger: the drop-in mode's writes, another tool), or when the ledger
/// cannot be read. The ledger is the store's word, like all of it: a false one can
/// only put a collection off until the hourly count.
pub fn room_for(store: &LocalStore, max: u64, adding: u64) -> bool {
    let root = store.root();
    if !counted_within(store, IDLE_EVERY) {
        return false;
    }
    let Some(counted) = crate::fsx::read_small(&root.join(COUNTED), LEDGER_LIMIT)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    else {
        return false;
    };
    // With the lines a collection took to count (one running now, or one that died
    // before it wrote its count).
    let mut ledger = 0u64;
    for name in [ADDED.to_string(), format!("{ADDED}.counting")] {
        match crate::fsx::read_small(&root.join(name), LEDGER_LIMIT) {
            Ok(text) => match text
                .lines()
                .map(|l| l.trim().parse::<u64>())
                .sum::<Result<u64, _>>()
            {
                Ok(n) => ledger = ledger.saturating_add(n),
                Err(_) => return false,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return false,
        }
    }
    let total = counted.saturating_add(ledger).saturating_add(adding);
    total <= max / 10 * ROOM_TENTHS
}

/// Adds `adding` bytes to the ledger of what builds added since the last count (see
/// [`room_for`]). Best effort: a ledger that cannot be written leaves the count to the
/// hourly collection.
pub fn note_added(store: &LocalStore, adding: u64) {
    use std::io::Write;
    // One short line appended: the lines of builds ending together do not mix.
    let _ = crate::fsx::open_in_place(
        &store.root().join(ADDED),
        fs::OpenOptions::new().create(true).append(true),
    )
    .and_then(|mut f| f.write_all(format!("{adding}\n").as_bytes()));
}

/// True when a collection ended within `period` (by `gc.counted`'s time; a time in the
/// future, or none, counts as long ago). A build that wrote nothing new to the store
/// collects only when this is false (one that wrote: [`room_for`]): the collection walks
/// every file of the store, and reads every entry's list of objects, so its cost grows
/// with the store, while such a build added at most the objects of entries it restored.
pub fn counted_within(store: &LocalStore, period: Duration) -> bool {
    fs::metadata(store.root().join(COUNTED))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < period)
}

/// Which objects each entry's list (`objects/by-entry/`) names.
struct Needs<'a> {
    /// Entry file name (`<key>.xce`) → the list and the digests it names.
    by_entry: std::collections::HashMap<String, Vec<String>>,
    lists: std::collections::HashMap<String, &'a Found>,
    /// Lists whose entry is gone (or that do not parse).
    orphan_lists: Vec<&'a Found>,
}

impl<'a> Needs<'a> {
    fn read(entries: &[Found], lists: &'a [Found]) -> Needs<'a> {
        let present: std::collections::HashSet<String> = entries
            .iter()
            .filter_map(|e| e.path.file_name()?.to_str().map(str::to_string))
            .collect();
        let mut needs = Needs {
            by_entry: Default::default(),
            lists: Default::default(),
            orphan_lists: Vec::new(),
        };
        for l in lists {
            let Some(key) = l.path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let entry = format!("{key}.xce");
            let digests = super::objects::read_list(&l.path).filter(|_| present.contains(&entry));
            match digests {
                Some(files) => {
                    needs.by_entry.insert(
                        entry.clone(),
                        files.iter().map(|f| f.digest.to_hex()).collect(),
                    );
                    needs.lists.insert(entry, l);
                }
                None => needs.orphan_lists.push(l),
            }
        }
        needs
    }

    /// The list of the entry at `path` and the digests it names.
    fn of(&self, path: &Path) -> Option<(&'a Found, &Vec<String>)> {
        let name = path.file_name()?.to_str()?;
        Some((*self.lists.get(name)?, self.by_entry.get(name)?))
    }
}

/// Starts a collection when the store has a size and none ran for a while: called
/// after a store write, so that the drop-in mode (no `cargo xcache build` to collect
/// at its end) keeps the store bounded too.
pub(super) fn collect_now_and_then(store: &LocalStore) {
    let Some(max) = store.max_size() else { return };
    let stamp = store.root().join("gc.stamp");
    let due = fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age > EVERY);
    if !due {
        return;
    }
    // Marked first, so the wrappers that store next do not all start one.
    if crate::fsx::write_atomic(&stamp, b"").is_err() {
        return;
    }
    let _ = collect(
        store,
        &GcOptions {
            max_size: Some(max),
            dry_run: false,
        },
    );
}

/// A temp file of the store: in `tmp/`, or a name a rename-into-place uses.
fn is_temp(rel: &Path, name: &str) -> bool {
    rel.starts_with("tmp") || name.starts_with(".tmp") || name.contains(".xcache-tmp-")
}

fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        // Someone else removed it: it is gone all the same, but not freed by us.
        Err(_) => false,
    }
}

/// Calls `f` on every regular file under `dir` (the store's layout is two levels deep
/// under its subdirectories; a little more is allowed, links are not followed).
fn walk(dir: &Path, depth: usize, f: &mut impl FnMut(&Path, &fs::Metadata)) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if depth > 0 && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd.flatten() {
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() && depth < 4 {
            walk(&e.path(), depth + 1, f)?;
        } else if meta.is_file() {
            f(&e.path(), &meta);
        }
    }
    Ok(())
}

/// When the oldest build still running began, by its lease file: a file whose lock can
/// be taken is a killed build's, removed here (unless `dry_run`).
pub(super) fn oldest_lease(root: &Path, dry_run: bool) -> Option<SystemTime> {
    let mut oldest: Option<SystemTime> = None;
    for e in fs::read_dir(root.join(LEASES)).ok()?.flatten() {
        let path = e.path();
        // Read only: another user's lease file counts too.
        let Ok(f) = crate::fsx::open_in_place(&path, fs::OpenOptions::new().read(true)) else {
            continue;
        };
        match f.try_lock() {
            Ok(()) => {
                if !dry_run {
                    let _ = fs::remove_file(&path);
                }
            }
            Err(fs::TryLockError::WouldBlock) => {
                if let Ok(t) = f.metadata().and_then(|m| m.modified()) {
                    oldest = Some(oldest.map_or(t, |o| o.min(t)));
                }
            }
            Err(fs::TryLockError::Error(_)) => {}
        }
    }
    oldest
}

/// Takes `path`'s lock exclusively if no one holds it; `None` if someone does.
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let f = crate::fsx::open_in_place(
        path,
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
    )?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the temp files killed builds left under `dir` (restores in progress write
/// `*.xcache-tmp-*` next to their destination in the target dir), if they are older than
/// [`TEMP_GRACE`]. Returns how many files and bytes went.
pub fn sweep_temp_files(dir: &Path) -> (usize, u64) {
    let now = SystemTime::now();
    let mut out = (0, 0);
    let _ = walk(dir, 0, &mut |path, meta| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let old = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > TEMP_GRACE);
        if old && name.contains(".xcache-tmp-") && remove(path) {
            out.0 += 1;
            out.1 += meta.len();
        }
    });
    out
}

/// `1.5 GiB`, `320.0 MiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;
    use crate::store::{EntryFile, EntryMeta, EntrySource};

    fn put(store: &LocalStore, i: u32, len: usize, age: Duration) -> PathBuf {
        let key = Key::digest(&i.to_le_bytes());
        let meta = EntryMeta::for_test(&key, &[("rlib", "f", false)]);
        // Incompressible, so the entry's size is about `len`.
        let mut bytes = vec![0u8; len];
        blake3::Hasher::new()
            .update(&i.to_le_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        store
            .put_entry(&key, &meta, &[(EntrySource::Bytes(&bytes), false)], &[])
            .unwrap();
        let path = store.entry_path(&key);
        set_age(&path, age);
        path
    }

    /// A store at `dir` with no size of its own (each test passes the size it collects to).
    use crate::store::local::unbounded_store;

    fn set_age(path: &Path, age: Duration) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn evicts_least_recently_used_and_spares_recent_and_leased() {
        let dir = tempfile::tempdir().unwrap();
        let store = unbounded_store(dir.path());
        let hour = Duration::from_secs(3600);
        let old: Vec<PathBuf> = (0..4)
            .map(|i| put(&store, i, 100_000, hour * (10 - i)))
            .collect();
        let recent = put(&store, 9, 100_000, Duration::from_secs(1));
        // A temp file of a killed build, and one being written.
        let dead = store.root().join("tmp/dl-1-2-3");
        fs::write(&dead, vec![0u8; 5000]).unwrap();
        set_age(&dead, hour * 2);
        let live = store.root().join("tmp/dl-4-5-6");
        fs::write(&live, b"x").unwrap();

        let opts = |max, dry_run| GcOptions {
            max_size: Some(max),
            dry_run,
        };
        let dry = collect(&store, &opts(250_000, true)).unwrap();
        assert_eq!((dry.evicted, dry.temps), (3, 1), "{dry:?}");
        assert!(old.iter().all(|p| p.exists()) && dead.exists());

        // A build holds a lease: what was used within the hour stays, even past the size.
        let lease = store.lease().unwrap();
        let r = collect(&store, &opts(0, false)).unwrap();
        assert_eq!(r.grace, GRACE);
        assert_eq!((r.evicted, r.kept_recent, r.temps), (4, 1, 1), "{r:?}");
        assert!(old.iter().all(|p| !p.exists()));
        assert!(recent.exists() && live.exists() && !dead.exists());
        drop(lease);
        // No build: only the last minute is spared.
        set_age(&recent, Duration::from_secs(120));
        let r = collect(&store, &opts(0, false)).unwrap();
        assert_eq!((r.evicted, r.grace), (1, QUIET_GRACE), "{r:?}");
        assert!(!recent.exists() && live.exists());
    }

    /// A build that has run for three hours keeps what it stored two hours ago, past
    /// the fixed grace, until it ends; a killed build's lease (its lock released)
    /// holds nothing and its file goes.
    #[test]
    fn a_long_build_keeps_what_it_stored_and_a_killed_ones_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = unbounded_store(dir.path());
        let hour = Duration::from_secs(3600);
        let before = put(&store, 1, 100_000, hour * 4);
        let stored = put(&store, 2, 100_000, hour * 2);
        let lease = store.lease().unwrap();
        let leases: Vec<PathBuf> = fs::read_dir(store.root().join(LEASES))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(leases.len(), 1, "{leases:?}");
        set_age(&leases[0], hour * 3);
        // A build killed long ago: its file is there, nobody holds its lock.
        let killed = store.root().join(LEASES).join("1-1.lease");
        fs::write(&killed, b"").unwrap();
        set_age(&killed, hour * 10);
        let opts = GcOptions {
            max_size: Some(0),
            dry_run: false,
        };
        let r = collect(&store, &opts).unwrap();
        assert!(r.grace > hour * 3 && r.grace < hour * 4, "{r:?}");
        assert_eq!((r.evicted, r.kept_recent), (1, 1), "{r:?}");
        assert!(!before.exists() && stored.exists() && !killed.exists());
        assert!(leases[0].exists());
        drop(lease);
        assert!(!leases[0].exists());
        let r = collect(&store, &opts).unwrap();
        assert_eq!((r.evicted, r.grace), (1, QUIET_GRACE), "{r:?}");
        assert!(!stored.exists());
    }

    /// A thin entry's object goes with the entry, not before it; objects no entry
    /// lists go first.
    #[test]
    fn an_object_lives_as_long_as_an_entry_that_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = unbounded_store(&dir.path().join("store"));
        let hour = Duration::from_secs(3600);
        let thin = |i: u8, age: Duration| -> (PathBuf, PathBuf, PathBuf) {
            let key = Key::digest(&[i]);
            let rlib = dir.path().join(format!("lib{i}.rlib"));
            let mut bytes = vec![0u8; 100_000];
            blake3::Hasher::new()
                .update(&[i])
                .finalize_xof()
                .fill(&mut bytes);
            fs::write(&rlib, &bytes).unwrap();
            let file = |role: &str| EntryFile {
                role: role.into(),
                name: format!("lib{i}.{role}"),
                template: false,
                executable: false,
                object: None,
            };
            let meta = EntryMeta {
                format_version: 1,
                key: key.to_hex(),
                files: vec![file("rmeta"), file("rlib")],
                stdout: String::new(),
                stderr: String::new(),
                ansi: false,
                compile_ms: 0,
                xcache_version: "t".into(),
            };
            let out = store
                .put_entry(
                    &key,
                    &meta,
                    &[
                        (EntrySource::Bytes(b"rmeta"), false),
                        (EntrySource::Object(&rlib), false),
                    ],
                    &[],
                )
                .unwrap();
            assert_eq!(out.objects.len(), 1);
            let entry = store.entry_path(&key);
            set_age(&entry, age);
            let object = crate::store::objects::object_path(&store, &out.digests[1]);
            let hex = key.to_hex();
            let list = store
                .root()
                .join("objects/by-entry")
                .join(&hex[..2])
                .join(&hex);
            assert!(object.exists() && list.exists());
            (entry, object, list)
        };
        let old = thin(1, hour * 10);
        let newer = thin(2, hour * 2);
        // An object no entry lists (a seed's, say), older than both.
        let loose = dir.path().join("loose");
        fs::write(&loose, vec![3u8; 50_000]).unwrap();
        let digest = Key::digest(&fs::read(&loose).unwrap());
        crate::store::objects::adopt(&store, &loose, &digest);
        let loose = crate::store::objects::object_path(&store, &digest);
        set_age(&loose, hour * 20);

        let before = collect(&store, &GcOptions::default()).unwrap().bytes;
        // Room for one thin entry and its object, not for the loose object too.
        let r = collect(
            &store,
            &GcOptions {
                max_size: Some(before - 120_000),
                dry_run: false,
            },
        )
        .unwrap();
        assert_eq!((r.evicted, r.objects_evicted), (1, 2), "{r:?}");
        assert!(!loose.exists());
        assert!(!old.0.exists() && !old.1.exists() && !old.2.exists());
        assert!(newer.0.exists() && newer.1.exists() && newer.2.exists());
    }

    /// A build that wrote collects only when what it added may take the store past nine
    /// tenths of its size by the last count and the ledger, when there is no count with
    /// a size, or when the count is an hour old; a collection starts a new ledger.
    #[test]
    fn a_build_collects_only_when_the_ledger_says_the_store_may_be_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = unbounded_store(dir.path());
        let max = 1_000_000;
        // No count yet (a store no collection counted, or one that only touched it).
        assert!(!room_for(&store, max, 1));
        fs::write(store.root().join(COUNTED), b"").unwrap();
        assert!(!room_for(&store, max, 1));
        put(&store, 1, 300_000, Duration::from_secs(1));
        let opts = GcOptions {
            max_size: Some(max),
            dry_run: false,
        };
        let r = collect(&store, &opts).unwrap();
        let counted: u64 = fs::read_to_string(store.root().join(COUNTED))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(counted, r.bytes_after());
        assert!(counted >= 300_000);
        // Room: the builds' lines add up in the ledger.
        for _ in 0..2 {
            assert!(room_for(&store, max, 200_000));
            note_added(&store, 200_000);
        }
        // Past nine tenths with the ledger (counted + 400 000 + 200 000 > 900 000).
        assert!(!room_for(&store, max, 200_000));
        let ledger = fs::read_to_string(store.root().join(ADDED)).unwrap();
        assert_eq!(
            ledger, "200000\n200000\n",
            "a refused build's line is not kept"
        );
        // A collection counts again and starts a new ledger.
        collect(&store, &opts).unwrap();
        assert!(!store.root().join(ADDED).exists());
        assert!(room_for(&store, max, 200_000));
        note_added(&store, 200_000);
        // Lines a collection took and never finished counting still count.
        fs::rename(
            store.root().join(ADDED),
            store.root().join(format!("{ADDED}.counting")),
        )
        .unwrap();
        assert!(room_for(&store, max, 200_000));
        note_added(&store, 200_000);
        assert!(!room_for(&store, max, 200_000));
        // A ledger line that is no number: collect.
        collect(&store, &opts).unwrap();
        fs::write(store.root().join(ADDED), b"lots\n").unwrap();
        assert!(!room_for(&store, max, 1));
        // An hour after the last count: collect, whatever the ledger says.
        collect(&store, &opts).unwrap();
        assert!(room_for(&store, max, 1));
        set_age(
            &store.root().join(COUNTED),
            IDLE_EVERY + Duration::from_secs(60),
        );
        assert!(!room_for(&store, max, 1));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 30), "10.0 GiB");
    }
}
