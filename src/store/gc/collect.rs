//! A collection ([`collect`]): the store walked, temp files left behind removed, and
//! entries evicted least recently used first with the objects only they list, sparing
//! what was used within the grace; and a collection now and then after a store write.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::leases::oldest_lease;
use super::ledger::{ADDED, COUNTED};
use crate::store::LocalStore;

/// How recently used an entry must be to be kept while builds hold leases.
pub const GRACE: Duration = Duration::from_secs(60 * 60);
/// How recently used an entry must be to be kept when no build holds a lease.
pub const QUIET_GRACE: Duration = Duration::from_secs(60);
/// How old a temp file must be to count as left behind.
pub const TEMP_GRACE: Duration = Duration::from_secs(60 * 60);
/// How often a store write may start a collection.
const EVERY: Duration = Duration::from_secs(5 * 60);

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
    /// Loose objects removed (`crate::store::objects`), with the lists that name them: those
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
            let digests =
                crate::store::objects::read_list(&l.path).filter(|_| present.contains(&entry));
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
pub(in crate::store) fn collect_now_and_then(store: &LocalStore) {
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
