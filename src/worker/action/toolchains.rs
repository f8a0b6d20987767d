//! The shipped toolchains a worker keeps under `--dir`'s `toolchains/`, shared by every
//! action and every worker of the machine: each made once per digest and held while an
//! action runs with it ([`Toolchains::ready`]), the least recently used beyond
//! `--toolchains-keep` removed ([`Toolchains::collect`]), and what a killed worker left
//! removed ([`Toolchains::sweep`]). Main type: [`Toolchains`].
//!
//! The directory holds:
//! - `<hash>-<size>/`: one toolchain, whole and read only. It is made elsewhere and
//!   renamed to its name, and renamed away before it is removed, so whatever is there
//!   under that name is the whole tree.
//! - `<hash>-<size>.used`: its lock and its last use. An action holds a shared `flock`
//!   on it while it runs with the toolchain, and sets its modification time when it
//!   starts to (not the access time, which `noatime` and `relatime` mounts do not keep
//!   up). A toolchain is removed only under an exclusive lock taken without waiting: never
//!   while an action of any worker sharing the directory runs with it.
//! - `.making-*/`: scratch, a toolchain being made or being removed, held by the process
//!   at work through an exclusive `flock` on the directory itself. One whose lock can be
//!   taken belongs to no live process (a worker killed while making or removing a
//!   toolchain): it is removed.
//! - `.lock`: held shared while a scratch directory is made and locked, exclusive while
//!   the scratch directories are swept, so a sweep never takes one made an instant ago
//!   for a process that has not locked it yet.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::failed::Failed;

/// How many toolchains a worker keeps when `--toolchains-keep` is not given. A shipped
/// toolchain is about 520 MB; three let a farm serve the projects of a team that pins a
/// few toolchains, and a move to a new one, without making any of them again.
pub const DEFAULT_KEEP: usize = 3;

/// The name scratch directories start with.
const SCRATCH: &str = ".making-";

/// The name a toolchain's lock and last-use file ends with.
const USED: &str = ".used";

/// The shipped toolchains of one `--dir`.
#[derive(Clone, Debug)]
pub struct Toolchains {
    dir: PathBuf,
    keep: usize,
}

/// A toolchain an action runs with: its path, and the shared lock that keeps any worker
/// from removing it while this is held.
pub(super) struct InUse {
    pub path: PathBuf,
    _lock: File,
}

impl Toolchains {
    /// The toolchains under `dir`, at most `keep` of them kept once not in use (at least
    /// one: the one just made).
    pub fn new(dir: PathBuf, keep: usize) -> Toolchains {
        Toolchains {
            dir,
            keep: keep.max(1),
        }
    }

    /// The toolchain `name` (a digest's name), held for the caller: made first by `make`
    /// when absent, in a scratch directory of its own (`make` is given the path to make
    /// the tree at), made read only and renamed to its name. After one is made, the
    /// least recently used beyond the bound are removed.
    pub(super) async fn ready<F, Fut>(&self, name: &str, make: F) -> Result<InUse, Failed>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = Result<(), Failed>>,
    {
        let internal = |what: &str, path: &Path, e: io::Error| {
            Failed::internal(format!("{what} {} ({e})", path.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| internal("no directory", &self.dir, e))?;
        let used = self.dir.join(format!("{name}{USED}"));
        let lock = lock_shared(&used).map_err(|e| internal("no lock on", &used, e))?;
        let dest = self.dir.join(name);
        let mut made = false;
        if !dest.is_dir() {
            // Before making one: what a killed worker left goes first.
            self.sweep();
            let scratch = self
                .scratch()
                .map_err(|e| internal("no directory in", &self.dir, e))?;
            let tree = scratch.path.join("t");
            make(tree.clone()).await?;
            set_read_only(&tree, true);
            match std::fs::rename(&tree, &dest) {
                Ok(()) => made = true,
                // Made meanwhile by another worker of the machine: the same tree (the
                // scratch directory goes with what this one made).
                Err(_) if dest.is_dir() => {}
                Err(e) => {
                    return Err(Failed::internal(format!(
                        "the toolchain could not be put at {} ({e})",
                        dest.display()
                    )));
                }
            }
        }
        // The last use, for the collection: now.
        let _ = lock.set_modified(SystemTime::now());
        if made {
            self.collect();
        }
        Ok(InUse {
            path: dest,
            _lock: lock,
        })
    }

    /// Removes the toolchains beyond the bound, least recently used first, that no action
    /// of any worker runs with now (one in use stays, and goes in a later collection),
    /// and the lock files left of toolchains that are gone. Failures are left for the
    /// next collection.
    pub fn collect(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut trees = Vec::new();
        let mut locks = Vec::new();
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if let Some(tree) = name.strip_suffix(USED) {
                if meta.is_file() && is_toolchain_name(tree) {
                    locks.push(tree.to_string());
                }
            } else if meta.is_dir() && is_toolchain_name(&name) {
                // A toolchain made before last uses were kept: its making.
                let made = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                trees.push((last_use(&self.dir, &name).unwrap_or(made), name));
            }
        }
        // Most recently used first; the same order on every machine for equal times.
        trees.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, name) in trees.iter().skip(self.keep) {
            self.remove(name);
        }
        for name in locks {
            if trees.iter().any(|(_, t)| *t == name) {
                continue;
            }
            // Gone, and nobody is making it again (a maker holds this lock).
            let used = self.dir.join(format!("{name}{USED}"));
            if let Some(_held) = try_lock_exclusive(&used) {
                let _ = std::fs::remove_file(&used);
            }
        }
    }

    /// Removes what killed workers left: every scratch directory no live process holds.
    pub fn sweep(&self) {
        let Ok(guard) = self.guard() else {
            return;
        };
        if guard.lock().is_err() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut stale = Vec::new();
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(SCRATCH) {
                continue;
            }
            let path = e.path();
            if !path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let Ok(dir) = File::open(&path) else {
                continue;
            };
            if dir.try_lock().is_ok() {
                stale.push(Scratch { path, _lock: dir });
            }
        }
        // Held now, so no other sweep takes them: removed (each as it is dropped)
        // without keeping other workers from making scratch meanwhile.
        drop(guard);
        drop(stale);
    }

    /// Removes the toolchain `name` unless an action runs with it: renamed into a scratch
    /// directory first (a removal cut short leaves scratch, never half a toolchain under
    /// its name), then its lock file, then the tree. Whether it went.
    fn remove(&self, name: &str) -> bool {
        let used = self.dir.join(format!("{name}{USED}"));
        let Some(held) = try_lock_exclusive(&used) else {
            return false;
        };
        let Ok(scratch) = self.scratch() else {
            return false;
        };
        if std::fs::rename(self.dir.join(name), scratch.path.join("t")).is_err() {
            return false;
        }
        // Unlinked while held: whoever opened it before waits for this lock, then finds
        // another file (or none) at the name and opens that (see `lock_shared`).
        let _ = std::fs::remove_file(&used);
        drop(held);
        drop(scratch);
        true
    }

    /// A new scratch directory, locked for this process until dropped (then removed).
    fn scratch(&self) -> io::Result<Scratch> {
        let guard = self.guard()?;
        guard.lock_shared()?;
        let path = tempfile::Builder::new()
            .prefix(SCRATCH)
            .tempdir_in(&self.dir)?
            .keep();
        let lock =
            File::open(&path).and_then(|f| f.try_lock().map(|()| f).map_err(io::Error::from));
        match lock {
            Ok(lock) => Ok(Scratch { path, _lock: lock }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// The file whose lock orders making scratch directories and sweeping them.
    fn guard(&self) -> io::Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        crate::fsx::open_in_place(
            &self.dir.join(".lock"),
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
    }
}

/// A scratch directory this process holds; removed when dropped.
struct Scratch {
    path: PathBuf,
    _lock: File,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// When the toolchain `name` was last used (its lock file's modification time).
fn last_use(dir: &Path, name: &str) -> Option<SystemTime> {
    std::fs::symlink_metadata(dir.join(format!("{name}{USED}")))
        .ok()?
        .modified()
        .ok()
}

/// Whether `name` is a toolchain's: `<hash>-<size>`, as the worker names a digest.
fn is_toolchain_name(name: &str) -> bool {
    name.split_once('-').is_some_and(|(hash, size)| {
        hash.len() == 64
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Opens the lock file at `path` (made if missing) for reading and writing (its time is
/// set through it).
fn open_lock(path: &Path) -> io::Result<File> {
    crate::fsx::open_in_place(
        path,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
}

/// Whether `file` is still the file at `path`: a lock taken on a file a remover unlinked
/// meanwhile guards nothing.
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A shared lock on the lock file at `path`, waiting while a remover holds it (it
/// holds it for two renames).
fn lock_shared(path: &Path) -> io::Result<File> {
    for _ in 0..100 {
        let f = open_lock(path)?;
        f.lock_shared()?;
        if still_at(&f, path) {
            return Ok(f);
        }
    }
    Err(io::Error::other("its lock file kept being replaced"))
}

/// An exclusive lock on the lock file at `path` if nobody holds it now.
fn try_lock_exclusive(path: &Path) -> Option<File> {
    let f = open_lock(path).ok()?;
    f.try_lock().ok()?;
    still_at(&f, path).then_some(f)
}

/// Removes the tree at `path`, giving write permission back first.
fn remove_tree(path: &Path) {
    set_read_only(path, false);
    let _ = std::fs::remove_dir_all(path);
}

/// Takes write permission from everything under `dir` (or gives it back, so that it
/// can be removed). A symbolic link is left as it is: its mode is its target's.
fn set_read_only(dir: &Path, ro: bool) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    let set = |m: u32| {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m));
    };
    if meta.is_dir() {
        // Entered before its entries are changed: given back first, taken last.
        if !ro {
            set(mode | 0o700);
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                set_read_only(&e.path(), ro);
            }
        }
        if ro {
            set(mode & !0o222);
        }
        return;
    }
    set(if ro { mode & !0o222 } else { mode | 0o200 });
}
