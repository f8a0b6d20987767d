//! How many of the compiles that could go to the workers run here at once
//! (`XCACHE_EXECUTOR_LOCAL`): the main type is [`Slot`], taken by [`take`].
//!
//! With remote execution every library compile that misses went to the workers, even
//! while this machine's cores sat idle: on a small farm the build was slower than
//! without it. Now up to N of them run here, and the rest go to the workers; cargo's
//! `-j` says how many run at all. A slot is an exclusive lock (`flock`) on one of N files
//! in the target dir's `xcache/local-slots`, held while the compile runs: the kernel
//! lets it go when the descriptor closes, so a wrapper killed mid-compile leaves no slot
//! taken, and two builds in one target dir (cargo's lock forbids it) would share the N.
//! No daemon, no counter to keep right: the files are the state.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// A local compile's slot, held until dropped. Drop it before forking: a child would
/// hold the lock on (a descriptor shared by fork).
pub struct Slot {
    _file: File,
}

/// Takes one of `n` slots in `dir` if one is free; `None` when all are taken (or none
/// can be had: the compile goes to the workers, as it did before slots).
pub fn take(dir: &Path, n: usize) -> Option<Slot> {
    if n == 0 {
        return None;
    }
    fs::create_dir_all(dir).ok()?;
    for i in 0..n {
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("slot-{i}")))
        else {
            continue;
        };
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            return Some(Slot { _file: file });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// N slots can be held at once, no more; a slot let go is free again.
    #[test]
    fn at_most_n_are_held() {
        let dir = tempfile::tempdir().unwrap();
        assert!(take(dir.path(), 0).is_none());
        let a = take(dir.path(), 2).expect("a first slot");
        let b = take(dir.path(), 2).expect("a second slot");
        assert!(take(dir.path(), 2).is_none(), "a third while two are held");
        drop(a);
        let c = take(dir.path(), 2).expect("the slot let go");
        assert!(take(dir.path(), 2).is_none());
        drop((b, c));
        assert!(take(dir.path(), 2).is_some());
    }
}
