//! The directory only this user's cargo-xcache writes: where what steers a build and is
//! not shared lives — the observer library that is loaded into every compile and
//! build-script run, the observation records, and the memos of local probes (compiler,
//! linker and cargo identities; digests of files sent to remote execution). Main
//! function: [`private_dir`].
//!
//! A store directory is hostile input (CI caches of it are restored across branches, and
//! many builds share it): nothing in it may decide what runs. So these live elsewhere:
//! `$XDG_RUNTIME_DIR/xcache` when that is a directory of this user's, else
//! `<temp dir>/xcache-<uid>`, made with mode 0700 and used only when it is a real
//! directory (not a link), owned by this user, that nobody else may write. When no such
//! directory can be had, a new one is made for the process (costlier, never wrong).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The layout version of the private directory.
const LAYOUT: &str = "v1";

/// The private directory (created on first use), or why there is none.
pub fn private_dir() -> io::Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| find().map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

fn find() -> io::Result<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let mut candidates = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && run.is_absolute()
        && is_ours(&run, uid).is_ok()
    {
        candidates.push(run.join("xcache"));
    }
    candidates.push(std::env::temp_dir().join(format!("xcache-{uid}")));
    let mut last = io::Error::other("no candidate");
    for dir in candidates {
        match make_ours(&dir, uid) {
            Ok(()) => {
                let v = dir.join(LAYOUT);
                make_ours(&v, uid)?;
                return Ok(v);
            }
            Err(e) => last = e,
        }
    }
    // A directory of the process's own: made fresh, so nobody else had it before.
    let dir = tempfile::Builder::new()
        .prefix("xcache-private-")
        .tempdir()
        .map_err(|e| io::Error::other(format!("{last}; and a fresh one failed: {e}")))?;
    Ok(dir.keep())
}

/// Makes `dir` (mode 0700) if it is missing, then checks it is ours.
fn make_ours(dir: &Path, uid: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    is_ours(dir, uid)
}

/// A real directory (not a link), owned by `uid`, that no one else may write.
fn is_ours(dir: &Path, uid: u32) -> io::Result<()> {
    let m = fs::symlink_metadata(dir)?;
    if !m.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a link or a file)",
            dir.display()
        )));
    }
    if m.uid() != uid {
        return Err(io::Error::other(format!(
            "{} belongs to another user ({})",
            dir.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "{} may be written by others (mode {:o})",
            dir.display(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// A subdirectory of the private directory, made if missing.
pub fn private_subdir(name: &str) -> io::Result<PathBuf> {
    let d = private_dir()?.join(name);
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&d)?;
    Ok(d)
}

/// Where compiler (and cargo) identities are remembered; `None` when there is no
/// private directory (every identity is then probed).
pub fn compilers_dir() -> Option<PathBuf> {
    private_subdir("compilers").ok()
}

/// Where linker identities are remembered.
pub fn linkers_dir() -> Option<PathBuf> {
    private_subdir("linkers").ok()
}

/// The right to compute the memo at a path: an exclusive lock on a file beside it
/// (`<memo>.lock`), held while the identity is probed and its memo written. Two processes
/// that find no memo (the first compiles of a build on a new machine, and the front-end
/// identifying the linker while cargo starts) probe once: the second waits for the first
/// and reads its memo. Released when dropped.
pub struct MemoLock {
    _file: fs::File,
}

/// How long [`MemoLock::acquire`] waits for another process's probe before probing on
/// its own: a probe takes a fraction of a second; one that hangs must not hang the build.
const MEMO_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

impl MemoLock {
    /// Takes the lock of the memo at `memo`, waiting while another process holds it
    /// (at most `MEMO_LOCK_WAIT`, 20 s). `None` when the lock file cannot be made or the wait
    /// ran out: the caller then probes without it, as before there was a lock.
    pub fn acquire(memo: &Path) -> Option<MemoLock> {
        let mut name = memo.file_name()?.to_os_string();
        name.push(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(memo.with_file_name(name))
            .ok()?;
        crate::fsx::lock_within(&file, MEMO_LOCK_WAIT).then_some(MemoLock { _file: file })
    }
}

/// The memo `read` reads (at `memo`), or, when there is none, the lock to hold while
/// probing: taken once any other probe of it has ended, and the memo read again then
/// (`Err(None)`: no lock could be had; probe all the same).
pub fn memo_or_lock<T>(
    memo: Option<&Path>,
    read: impl Fn() -> Option<T>,
) -> Result<T, Option<MemoLock>> {
    if let Some(v) = read() {
        return Ok(v);
    }
    let lock = memo.and_then(MemoLock::acquire);
    read().ok_or(lock)
}

/// How long a memo nobody wrote again may stay: a memo still right is only written
/// again (its file read and hashed once more) after this.
pub const MEMO_AGE: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// Writes a memo (a small file in a shard directory of the private directory) and, once
/// every 64 writes or so, removes the memos of its shard not written for [`MEMO_AGE`]:
/// the memos of files that are gone (a target dir's old outputs) do not pile up.
pub fn write_memo(path: &Path, bytes: &[u8]) {
    let _ = crate::fsx::write_atomic(path, bytes);
    // A random draw (the standard library's hasher keys are random per process).
    use std::hash::BuildHasher;
    let draw = std::collections::hash_map::RandomState::new().hash_one(path);
    if draw.is_multiple_of(64)
        && let Some(shard) = path.parent()
    {
        prune_shard(shard, MEMO_AGE);
    }
}

/// Removes the regular files of `shard` last written longer than `age` ago.
fn prune_shard(shard: &Path, age: std::time::Duration) {
    let Ok(rd) = fs::read_dir(shard) else { return };
    let now = std::time::SystemTime::now();
    for e in rd.flatten() {
        let old = e
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|a| a > age);
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The variable `cargo xcache build` sets for its wrappers: a directory of this build's
/// inside the private directory where [`remove_later`] puts what it is given.
pub const LATER_VAR: &str = "XCACHE_LATER";

/// Removes `path` (a file, or a directory with what it holds) — under `cargo xcache
/// build`, once cargo has exited. ext4 without a journal scans past every inode freed in
/// the last minute each time it allocates one, so what a wrapper deletes while cargo and
/// rustc create files makes each of their files dearer (the book's overhead page). Under
/// the front-end ([`LATER_VAR`] naming a directory inside the private directory) `path`
/// is renamed into that directory (a rename frees nothing), which the front-end removes
/// after cargo; anywhere else, or when the rename fails, it is removed now.
pub fn remove_later(path: &Path) {
    remove_later_into(path, std::env::var_os(LATER_VAR).map(PathBuf::from));
}

/// [`remove_later`] with the directory named (or not).
fn remove_later_into(path: &Path, later: Option<PathBuf>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let later = later
        .filter(|d| d.is_absolute())
        .filter(|d| !d.components().any(|c| c == std::path::Component::ParentDir))
        .filter(|d| private_dir().is_ok_and(|p| d.starts_with(&p) && *d != p));
    if let Some(dir) = later {
        let name = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if fs::rename(path, dir.join(name)).is_ok() {
            return;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// A path given to [`remove_later`] when this is dropped.
pub struct RemovedLater(PathBuf);

impl RemovedLater {
    pub fn new(path: PathBuf) -> RemovedLater {
        RemovedLater(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RemovedLater {
    fn drop(&mut self) {
        remove_later(&self.0);
    }
}

/// The directory a front-end's wrappers put what they remove into ([`remove_later`]),
/// made new for process `pid` inside the private directory.
pub fn later_dir(pid: u32) -> io::Result<PathBuf> {
    fresh_pid_dir("later", pid)
}

/// The directory of one build's wrappers' files when cargo starts before the target dir
/// is known (their events, the locks of their background work), made new for process
/// `pid` inside the private directory.
pub fn run_dir(pid: u32) -> io::Result<PathBuf> {
    fresh_pid_dir("runs", pid)
}

/// `<private>/<sub>/<pid>`, made new (what an earlier process of the same id left there
/// goes).
fn fresh_pid_dir(sub: &str, pid: u32) -> io::Result<PathBuf> {
    let d = private_subdir(sub)?.join(pid.to_string());
    match fs::DirBuilder::new().mode(0o700).create(&d) {
        Ok(()) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A build of an earlier process of the same id that did not finish.
            fs::remove_dir_all(&d)?;
            fs::DirBuilder::new().mode(0o700).create(&d)?;
            Ok(d)
        }
        Err(e) => Err(e),
    }
}

/// Removes what builds that never reached their end (killed, or their machine stopped)
/// left to be removed later, and their run directories: each `later/<pid>` and
/// `runs/<pid>` whose process is gone. Called by a
/// front-end after cargo, beside the removal of its own. A directory whose process id
/// now belongs to another process waits until that one is gone too.
pub fn remove_stale_later_dirs() {
    for sub in ["later", "runs"] {
        if let Ok(dir) = private_subdir(sub) {
            remove_stale_in(&dir);
        }
    }
}

fn remove_stale_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // `/proc/<pid>` is there for every running process (and a zombie).
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memo's lock is held by one caller at a time: the second takes it only once the
    /// first let it go, and a link planted at the lock's name is not followed.
    #[test]
    fn a_memo_lock_waits_for_its_holder() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("abc");
        let released = AtomicBool::new(false);
        let held = MemoLock::acquire(&memo).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let lock = MemoLock::acquire(&memo);
                (lock.is_some(), released.load(Ordering::SeqCst))
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            drop(held);
            assert_eq!(waiter.join().unwrap(), (true, true));
        });
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"kept\n").unwrap();
        let planted = d.path().join("planted");
        std::os::unix::fs::symlink(&outside, d.path().join("planted.lock")).unwrap();
        assert!(MemoLock::acquire(&planted).is_none());
        assert_eq!(std::fs::read(&outside).unwrap(), b"kept\n");
    }

    #[test]
    fn a_dead_builds_later_directory_is_removed_a_running_ones_kept() {
        let scratch = tempfile::tempdir_in(private_dir().unwrap()).unwrap();
        // A process id that was in use and is no more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = scratch.path().join(dead.to_string());
        let mine = scratch.path().join(std::process::id().to_string());
        let other = scratch.path().join("not-a-pid");
        for d in [&gone, &mine, &other] {
            fs::create_dir(d).unwrap();
            fs::write(d.join("record"), b"x").unwrap();
        }
        remove_stale_in(scratch.path());
        assert!(!gone.exists(), "a dead build's directory stayed");
        assert!(
            mine.join("record").exists(),
            "a running build's directory went"
        );
        assert!(
            other.exists(),
            "a name that is no process id is not ours to judge"
        );
    }

    #[test]
    fn what_is_removed_later_waits_in_the_builds_directory_only_inside_the_private_one() {
        // In the private directory, as what wrappers remove is (a rename stays on one
        // file system).
        let scratch = tempfile::tempdir_in(private_dir().unwrap()).unwrap();
        let make = |name: &str| {
            let d = scratch.path().join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join("record"), b"secret=1").unwrap();
            d
        };
        // No build's directory: removed now, a directory with what it holds.
        let now = make("now");
        remove_later_into(&now.join("record"), None);
        assert!(!now.join("record").exists());
        remove_later_into(&now, None);
        assert!(!now.exists());
        // The build's directory inside the private one: moved there, nothing freed.
        let later = later_dir(u32::MAX - 7).unwrap();
        let moved = make("moved");
        remove_later_into(&moved, Some(later.clone()));
        assert!(!moved.exists());
        let kept: Vec<_> = fs::read_dir(&later).unwrap().flatten().collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            fs::read(kept[0].path().join("record")).unwrap(),
            b"secret=1"
        );
        // A directory anywhere else (a variable set by someone else), or one that
        // climbs out of the private directory: removed now, never moved out of its reach.
        let outside = tempfile::tempdir().unwrap();
        let climbing = later.join("..").join("..").join("..").join("..");
        for target in [outside.path().to_path_buf(), climbing] {
            let elsewhere = make("elsewhere");
            remove_later_into(&elsewhere, Some(target));
            assert!(!elsewhere.exists());
        }
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&later).unwrap().count(), 1);
        // A new build of the same process id starts with an empty directory.
        assert_eq!(
            fs::read_dir(later_dir(u32::MAX - 7).unwrap())
                .unwrap()
                .count(),
            0
        );
        fs::remove_dir_all(&later).unwrap();
    }

    /// A memo not written for longer than the age goes; the others stay.
    #[test]
    fn old_memos_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        fs::write(&old, b"x").unwrap();
        fs::write(&new, b"y").unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(then)
            .unwrap();
        prune_shard(dir.path(), std::time::Duration::from_secs(60));
        assert!(!old.exists());
        assert!(new.exists());
    }

    #[test]
    fn only_a_private_directory_of_ours_is_used() {
        let uid = rustix::process::geteuid().as_raw();
        let t = tempfile::tempdir().unwrap();
        let good = t.path().join("good");
        make_ours(&good, uid).unwrap();
        let open = t.path().join("open");
        fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        assert!(
            is_ours(&open, uid)
                .unwrap_err()
                .to_string()
                .contains("written by others")
        );
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(
            is_ours(&link, uid)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
        assert!(is_ours(&good, uid + 1).is_err());
        let dir = private_dir().unwrap();
        is_ours(&dir, uid).unwrap();
    }
}
