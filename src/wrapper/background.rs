//! Cache work after cargo has been let go. Once a compile (or a build-script run) has
//! succeeded and everything cargo and the next units read from it is in place, the
//! wrapper forks: the parent exits with the compile's status, so cargo starts what waited
//! for the unit and hands its job slot on; the child, at the lowest CPU priority (in the
//! time the build leaves a core idle), judges what the unit read, stores the entry and
//! writes the unit's event. Only under `cargo xcache build`, which waits for every such
//! child ([`wait_all`]) before it reads the events: nothing is left running when it
//! exits, and no other cargo of the front-end's starts before the stores are done.
//!
//! Each child holds an exclusive `flock` on a file of its own in the pending directory
//! (`XCACHE_PENDING`), taken by the parent before the fork and held by the child's copy
//! of the descriptor until it has written its event.
//!
//! What the child stores is what cargo was handed: [`Stamps`] of the outputs are taken
//! before the fork and compared after the entry is written; an output changed in
//! between (another cargo in the same target dir once ours exited) is never recorded.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{FlockOperation, flock};

/// A wrapper's cache work that goes on after cargo was let go (the child's side).
pub(super) struct Pending {
    lock: File,
    /// When the parent exited: the unit's end as cargo saw it.
    pub released: Instant,
    pub released_at: SystemTime,
    /// The outputs as cargo was handed them.
    pub stamps: Stamps,
    /// The CPU times of the process that let cargo go, at the fork.
    pub cpu_at_fork: super::event::CpuTimes,
}

impl Pending {
    /// The work is done and its event written: the front-end may go on (the lock goes
    /// with this process). The file stays: removed now, it would free an inode in the
    /// target dir while cargo and rustc create files there, and ext4 without a journal
    /// scans past every inode freed in the last minute each time it allocates one (the
    /// book's overhead page). [`wait_all`] removes them all once cargo has exited; a
    /// later wrapper given the same process id takes the same file again.
    pub fn done(self) {
        drop(self.lock);
    }
}

/// Which side of the fork this process is.
pub(super) enum Release {
    /// The wrapper cargo started: exit now with the unit's status.
    Parent,
    /// The copy that finishes the cache work.
    Child(Pending),
    /// No fork (another thread is running, the pending file or the fork failed): the
    /// work is done before exiting, as always.
    Stay,
}

/// What changes when a file is written again: the writers of a target dir (rustc, the
/// linkers, cargo) write a new file and rename it into place or unlink the old one
/// first, which gives another inode, and a rewrite changes the size. Not its times:
/// cargo sets the modification time of a `check` build's `.rmeta` once the unit is
/// done, and hard-links a finished binary into the profile directory, with the same
/// contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stamps(Vec<(PathBuf, Option<Stamp>)>);

/// Device, inode, size.
type Stamp = (u64, u64, u64);

impl Stamps {
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Stamps {
        Stamps(
            paths
                .into_iter()
                .map(|p| (p.to_path_buf(), stamp(p)))
                .collect(),
        )
    }

    /// The paths whose file is not what it was when stamped.
    pub fn changed(&self) -> Option<&Path> {
        self.0
            .iter()
            .find(|(p, s)| stamp(p) != *s)
            .map(|(p, _)| p.as_path())
    }
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = fs::symlink_metadata(p).ok()?;
    Some((m.dev(), m.ino(), m.size()))
}

/// Lets cargo go on while this process finishes the unit's cache work (see the module
/// documentation). `stamps`: the outputs the child will store.
pub(super) fn release(dir: &Path, stamps: Stamps) -> Release {
    // A fork copies only the calling thread: with another one running (holding a lock
    // the child would wait on forever), the work stays in the foreground.
    if fs::read_dir("/proc/self/task").map_or(true, |d| d.count() != 1) {
        return Release::Stay;
    }
    let path = dir.join(format!("{}.pending", std::process::id()));
    let lock = fs::create_dir_all(dir).and_then(|()| File::create(&path));
    let Ok(lock) = lock else {
        return Release::Stay;
    };
    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        let _ = fs::remove_file(&path);
        return Release::Stay;
    }
    // Nothing buffered may be written twice.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let released = Instant::now();
    let released_at = SystemTime::now();
    let cpu_at_fork = super::event::CpuTimes::now();
    match fork() {
        -1 => {
            let _ = fs::remove_file(&path);
            Release::Stay
        }
        0 => {
            // cargo waits for the end of the unit's output pipes, not just the parent:
            // the child lets go of them. Its warnings travel in its event.
            if let Ok(null) = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                let _ = rustix::stdio::dup2_stdin(&null);
                let _ = rustix::stdio::dup2_stdout(&null);
                let _ = rustix::stdio::dup2_stderr(&null);
            }
            lower_this_threads_priority();
            Release::Child(Pending {
                lock,
                released,
                released_at,
                stamps,
                cpu_at_fork,
            })
        }
        _ => Release::Parent,
    }
}

/// `fork(2)`: the child's 0, the parent's child pid, or -1.
#[allow(unsafe_code)]
fn fork() -> i32 {
    // SAFETY: called only when this process has one thread (see `release`), so the
    // child's copy of the address space holds no lock another thread took, and it goes
    // on with ordinary code. Nothing else here needs `unsafe`.
    unsafe { libc::fork() }
}

/// Waits until every wrapper that went on in the background under `dir` is done, at most
/// `limit`. Returns how many were waited for and whether any was still running at the
/// limit (its unit then has no event: the report counts it as unfinished).
pub fn wait_all(dir: &Path, limit: Duration) -> (usize, bool) {
    let deadline = Instant::now() + limit;
    let mut waited = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, false);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        waited += 1;
        loop {
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = fs::remove_file(&path);
                break;
            }
            if Instant::now() >= deadline {
                return (waited, true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    (waited, false)
}

/// Gives the calling thread the lowest priority (nice 19), and so every process it
/// starts from now on: on Linux a thread's nice value is its own, and a child inherits
/// its parent thread's. Work that can wait (the plan of a build cargo already runs, the
/// capture while cargo runs) takes only what the compiles leave of the cores.
pub fn lower_this_threads_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_or_replaced_output_is_seen() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, "one").unwrap();
        fs::write(&b, "two").unwrap();
        let s = Stamps::of([a.as_path(), b.as_path()]);
        assert_eq!(s.changed(), None);
        // Written in place (a linker's truncate and write).
        fs::write(&b, "two and more").unwrap();
        assert_eq!(s.changed(), Some(b.as_path()));
        // Replaced by another file of the same content (rustc's rename into place).
        let t = Stamps::of([a.as_path()]);
        let c = d.path().join("c");
        fs::write(&c, "one").unwrap();
        fs::rename(&c, &a).unwrap();
        assert_eq!(t.changed(), Some(a.as_path()));
        // Linked elsewhere (cargo's uplifting of a binary), its times set (cargo after
        // a `check`): the same contents.
        let u = Stamps::of([b.as_path()]);
        fs::hard_link(&b, d.path().join("uplifted")).unwrap();
        fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(u.changed(), None);
        // Removed.
        fs::remove_file(&b).unwrap();
        assert_eq!(u.changed(), Some(b.as_path()));
    }

    #[test]
    fn waiting_ends_when_the_holder_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("1.pending");
        let held = File::create(&path).unwrap();
        flock(&held, FlockOperation::LockExclusive).unwrap();
        let (n, late) = wait_all(d.path(), Duration::from_millis(50));
        assert_eq!((n, late), (1, true));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
        });
        let (n, late) = wait_all(d.path(), Duration::from_secs(10));
        t.join().unwrap();
        assert_eq!((n, late), (1, false));
        assert!(!path.exists());
    }
}
