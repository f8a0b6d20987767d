//! A file's content digest ([`hash_file`]), remembered for large files that have not
//! changed, so that the same C runtime, libc and compiler driver are not read again by
//! every linking unit of every build.
//!
//! On `bench/project` a warm build judged 40 linking units' recorded inputs (build
//! scripts, proc-macros, the program): each read the linker's own files again (libgcc.a,
//! libc.so.6, the gcc driver, libm, libmvec, collect2: 10 MB each time), 400 MB of
//! reading and hashing for files that had not changed in months.
//!
//! A digest is remembered in the private directory (only this user writes it; a store
//! is hostile input), per (device, inode), with the file's length, modification time
//! and *change* time as they were when it was read. The change time is the kernel's:
//! every write, truncation, rename over, link and permission change moves it, and no
//! program can set it back (`touch` and `cp -p` set only the modification time). A
//! digest is used only when all of them are as remembered. A file changed within
//! [`SETTLE`] of being read is not remembered: a write within the same clock tick as the
//! read would leave every time as it was (git's "racy" rule). Files smaller than
//! [`MIN_REMEMBERED`] are hashed every time: reading the memory costs as much.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Key;

/// The smallest file whose digest is remembered.
pub const MIN_REMEMBERED: u64 = 128 * 1024;

/// How long a file must have stayed unchanged before its digest is remembered.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The blake3 digest of a file's contents.
pub fn hash_file(path: &Path) -> io::Result<Key> {
    digest_open(&File::open(path)?)
}

/// The blake3 digest of an open file's contents (read from where it is to the end: a
/// file just opened, whole), remembered as the module says.
pub fn digest_open(f: &File) -> io::Result<Key> {
    let before = f.metadata()?;
    let seen = Seen::of(&before);
    let memo = (before.is_file() && before.len() >= MIN_REMEMBERED)
        .then(|| memo_path(&seen))
        .flatten();
    if let Some(p) = &memo
        && let Some(d) = recall(p, &seen)
    {
        return Ok(d);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(f)?;
    let digest = Key(*hasher.finalize().as_bytes());
    if let Some(p) = memo
        && let Ok(after) = f.metadata()
        && Seen::of(&after) == seen
        && settled(&seen)
    {
        crate::private_dir::write_memo(&p, seen.line(&digest).as_bytes());
    }
    Ok(digest)
}

/// A file as it was when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Seen {
    fn of(m: &fs::Metadata) -> Seen {
        Seen {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    fn line(&self, digest: &Key) -> String {
        format!(
            "{} {} {} {} {} {}\n",
            self.dev,
            self.ino,
            self.len,
            self.mtime_ns,
            self.ctime_ns,
            digest.to_hex()
        )
    }
}

/// True when the file had not changed for [`SETTLE`] when it was read.
fn settled(seen: &Seen) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let newest = seen.mtime_ns.max(seen.ctime_ns);
    now - newest >= SETTLE.as_nanos() as i128
}

fn memo_path(seen: &Seen) -> Option<PathBuf> {
    let dir = crate::private_dir::private_dir().ok()?;
    let name = format!("{:x}-{:x}", seen.dev, seen.ino);
    let shard = format!("{:02x}", seen.ino & 0xff);
    Some(dir.join("digests").join(shard).join(name))
}

/// The digest remembered for the file, if it is as it was then.
fn recall(p: &Path, seen: &Seen) -> Option<Key> {
    let text = fs::read_to_string(p).ok()?;
    let digest = Key::from_hex(text.trim_end().rsplit_once(' ')?.1)?;
    (text == seen.line(&digest)).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remembered digest is used only while the file is as it was: rewritten in place
    /// with its length and modification time put back (`cp -p` onto it), it is read
    /// again. A file changed just now is not remembered at all.
    #[test]
    fn a_digest_is_remembered_only_for_a_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let a = vec![b'a'; MIN_REMEMBERED as usize + 10];
        fs::write(&path, &a).unwrap();
        // Just written: its change time is now, so nothing is remembered.
        assert_eq!(hash_file(&path).unwrap(), Key::digest(&a));
        let seen = Seen::of(&fs::metadata(&path).unwrap());
        let memo = memo_path(&seen).unwrap();
        assert!(!memo.exists(), "a file changed just now was remembered");

        // A remembered digest is what is returned, without reading the file: plant a
        // memory naming other bytes for the file as it is, and it is believed.
        let other = Key::digest(b"something else");
        fs::create_dir_all(memo.parent().unwrap()).unwrap();
        fs::write(&memo, seen.line(&other)).unwrap();
        assert_eq!(hash_file(&path).unwrap(), other);

        // Rewritten in place with the same length and the old modification time: the
        // change time moved, so the memory does not hold.
        let m = fs::metadata(&path).unwrap();
        let b = vec![b'b'; a.len()];
        fs::write(&path, &b).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(m.modified().unwrap())
            .unwrap();
        assert_eq!(hash_file(&path).unwrap(), Key::digest(&b));
        let _ = fs::remove_file(&memo);
    }

    /// A file unchanged for longer than the settling time is remembered when read, and
    /// the memory names its digest.
    #[test]
    fn a_settled_file_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let a = vec![7u8; MIN_REMEMBERED as usize];
        fs::write(&path, &a).unwrap();
        std::thread::sleep(SETTLE + Duration::from_millis(100));
        assert_eq!(hash_file(&path).unwrap(), Key::digest(&a));
        let seen = Seen::of(&fs::metadata(&path).unwrap());
        let memo = memo_path(&seen).unwrap();
        assert_eq!(recall(&memo, &seen), Some(Key::digest(&a)));
        let _ = fs::remove_file(&memo);
        // A small file is never remembered.
        let small = dir.path().join("small");
        fs::write(&small, b"x").unwrap();
        assert_eq!(hash_file(&small).unwrap(), Key::digest(b"x"));
    }
}
