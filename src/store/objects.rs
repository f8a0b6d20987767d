//! Loose objects: what compiles write (a library's `.rlib` and `.rmeta`, a proc-macro, a
//! program, a build script's real executable) and the large files a build-script run
//! writes ([`OBJECT_MIN_LEN`]) kept whole in the local store, named by content digest, so that
//! planting and the wrapper's restores hand it to a target dir by hard link or by the
//! kernel's copy (`copy_file_range`: a reflink where the file system has them) instead
//! of decompressing and writing it (`<dir>/v2/objects/<2 hex>/<digest>`).
//!
//! Where an entry holds the same file, an object is only an acceleration: anything
//! wrong with it (gone, another file system, changed, not ours) means the entry is
//! decompressed as before. A *thin* entry (`super::entry`) holds such files only by
//! reference: the wrapper that stores a unit makes the files it just compiled the
//! objects of their digests ([`adopt_read`]) instead of compressing them into the entry,
//! which takes most of a cold build's store work away. Such an entry is restored from
//! its objects or not at all: an object gone or changed makes it a miss, and it is
//! removed. `gc` keeps an object as long as an entry that lists it
//! (`objects/by-entry/`).
//!
//! Which files are linked. cargo judges a unit fresh by comparing modification times:
//! its outputs against its sources (through the dep-info file) and against its
//! dependencies' outputs, taking the newest of each unit's outputs. A hard-linked file
//! shares its time with every other link: setting it in one target dir would move it in
//! all the others, and a newer time can hide a change there. And rustc refuses to write
//! over a read-only output ("output file … is not writeable"), which an object, and so
//! a link of one, is. So only two kinds of file are linked, both ways (the compiled
//! file becomes the object, [`Adopt::Link`]; a restore links it):
//! - the `.rlib` of a unit whose `.rmeta` is put beside it with the restore's time
//!   ([`served_by_object`]): never the unit's newest output, and cargo removes it before
//!   rustc writes it again (for a library whose outputs include an `.rmeta`);
//! - a build script's real executable (behind the shim): no output of cargo's or
//!   rustc's; cargo never reads its time, and a new script is renamed over it.
//!
//! An object's time is fixed when it is made and nothing of ours ever sets it again.
//! Every other file (an `.rmeta`, a proc-macro, a program) is copied into the store
//! ([`Adopt::Copy`]: the file the compile wrote stays the user's, writable) and out of
//! it ([`fresh_copy`]: a file of its own, with its own time).
//!
//! A store is hostile input: an object is linked or copied into a temp name in the
//! target dir first, and used only if it is a regular file of the expected length and
//! content digest; a link only if it is also owned by this user and writable by no one
//! (`verified_link`).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EntryFile, EntryMeta, LocalStore, ReadAs};
use crate::key::Key;

/// The smallest file of a build-script run's output (in its entry or its seed pack)
/// held by reference as a loose object: below it, an object costs more system calls
/// (and, in a new store, a directory) than compressing and decompressing the file;
/// above it, a copy in and out with `copy_file_range` costs a fraction of compressing
/// it (a C library under `OUT_DIR`: SQLite's object is some megabytes).
pub const OBJECT_MIN_LEN: u64 = 64 * 1024;

/// A file of an entry (or a seed pack) that may come from a loose object: its name in
/// the entry, its content digest and length.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkableFile {
    pub name: String,
    pub digest: Key,
    pub len: u64,
    /// For a library's `.rlib`: the digest of the `.rmeta` the same compile made. The
    /// link holds only beside that `.rmeta`, read from the entry: an entry made again
    /// by a compile that gave other bytes (or a list that names another file) then
    /// fails the restore instead of pairing two compiles' files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<Key>,
}

impl LinkableFile {
    /// What a restore needs to link it.
    pub fn link(&self) -> Link {
        Link {
            digest: self.digest,
            len: self.len,
            beside: self.beside,
        }
    }
}

/// A file a restore takes from its loose object: its content digest and length, and the
/// digest another file of the entry (read from it) must have for the link to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub digest: Key,
    pub len: u64,
    pub beside: Option<Key>,
}

/// Whether a file of a rustc entry may be linked from an object: a library's `.rlib`
/// when the entry puts its `.rmeta` beside it (written or copied now, the unit's newest
/// output for cargo). The one rule, for the store's objects, seeding and the wrapper's
/// restores alike.
pub fn served_by_object(meta: &EntryMeta, f: &EntryFile) -> bool {
    f.role == "rlib" && meta.files.iter().any(|m| m.role == "rmeta")
}

/// Where the objects of a rustc entry's files are listed (`objects/by-entry/`), for
/// the wrapper's restores, which know the entry but not its files' digests.
fn entry_list_path(store: &LocalStore, entry: &Key) -> PathBuf {
    let hex = entry.to_hex();
    store
        .root()
        .join("objects")
        .join("by-entry")
        .join(&hex[..2])
        .join(hex)
}

/// Records that `files` of entry `entry` have objects. Best effort. Like the entry
/// itself, the list is the store's word: an object it names is still checked against
/// the digest it names before it is used.
pub fn record_entry_objects(store: &LocalStore, entry: &Key, files: &[LinkableFile]) {
    if files.is_empty() {
        return;
    }
    let path = entry_list_path(store, entry);
    if path.exists() {
        return;
    }
    if let Ok(text) = serde_json::to_vec(files) {
        let _ = crate::fsx::write_atomic(&path, &text);
    }
}

/// The files of entry `entry` that have objects, as [`record_entry_objects`] listed
/// them (none when there is no list or it does not parse).
pub fn entry_objects(store: &LocalStore, entry: &Key) -> Vec<LinkableFile> {
    read_list(&entry_list_path(store, entry)).unwrap_or_default()
}

/// The list at `path` (`objects/by-entry/…`), if it is one.
pub(super) fn read_list(path: &Path) -> Option<Vec<LinkableFile>> {
    let f = crate::fsx::open_unfollowed(path, File::options().read(true)).ok()?;
    // A list is a few hundred bytes; anything much larger is not one of ours.
    let mut text = Vec::new();
    use std::io::Read;
    f.take(64 * 1024).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The object of a digest.
pub fn object_path(store: &LocalStore, digest: &Key) -> PathBuf {
    let hex = digest.to_hex();
    store.root().join("objects").join(&hex[..2]).join(hex)
}

/// Makes `file` (an `.rlib` just planted or compiled, or a build script's real
/// executable: a file whose time will never be set again and that nothing writes in
/// place) the object of `digest`, by hard link, and takes write permission away from it.
/// Best effort: nothing happens when the object exists, the store is on another file
/// system, or anything else fails.
pub fn adopt(store: &LocalStore, file: &Path, digest: &Key) {
    let dest = object_path(store, digest);
    if dest.exists() {
        return;
    }
    let Ok(meta) = fs::symlink_metadata(file) else {
        return;
    };
    if !meta.is_file() {
        return;
    }
    if let Some(parent) = dest.parent()
        && fs::create_dir_all(parent).is_err()
    {
        return;
    }
    let readonly = meta.permissions().mode() & !0o222;
    let _ = fs::set_permissions(file, fs::Permissions::from_mode(readonly));
    let _ = fs::hard_link(file, &dest);
}

/// How an object is made of a file a compile wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopt {
    /// The file itself becomes the object (a hard link, made read-only): an `.rlib`
    /// beside its `.rmeta`, which cargo removes before rustc writes it again.
    Link,
    /// A copy of it does (`copy_file_range`), and the file stays the user's, writable:
    /// an `.rmeta` or a proc-macro, which rustc writes over where they are and refuses
    /// to when they are read-only.
    Copy,
}

/// Makes the file at `file`, whose contents hashed to `digest` when it was read as the
/// inode `read`, the object of `digest`, as `how` says. True when the object is there
/// afterwards: this very file (or a copy of it as it was read), or a sound object of
/// the digest made before. False when the file changed since it was read, the object
/// could not be made (a link to another file system), or another user's object of the
/// digest is in the way: a thin entry must not then name it.
pub fn adopt_read(
    store: &LocalStore,
    file: &Path,
    digest: &Key,
    read: &ReadAs,
    how: Adopt,
    precopied: Option<Precopy>,
) -> bool {
    let dest = object_path(store, digest);
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
        // Made before: a thin entry may name it only if it is sound (and this user's:
        // another user's object is never linked, and a bad one of theirs is not this
        // user's to remove).
        match check(&dest, digest, read.len) {
            Some(true) => return true,
            Some(false) if owned(&dest) => {
                // Ours and changed: made again from this file below.
                let _ = fs::remove_file(&dest);
            }
            _ => return false,
        }
    }
    if how == Adopt::Copy {
        // The copy made while the file was hashed is of the bytes hashed when the file
        // was the same then as when it was read, and is still (its time would have
        // moved): the caller checked the file after the hash.
        // (A link never replaces an object made meanwhile; the object's directory may
        // not be there yet in a new store.)
        if let Some(pre) = precopied.filter(|p| p.before == *read)
            && dest.parent().is_some_and(|d| fs::create_dir_all(d).is_ok())
            && fs::hard_link(&pre.tmp, &dest).is_ok()
        {
            pre.made.remember(digest);
            return true;
        }
        return match copy_in(store, file, digest) {
            // The bytes copied are those hashed, unless the file was written since (its
            // time would have moved).
            Some((made, before)) if before == *read => {
                made.remember(digest);
                true
            }
            Some(_) => {
                let _ = fs::remove_file(&dest);
                false
            }
            None => false,
        };
    }
    let same = |p: &Path| {
        fs::symlink_metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == (read.dev, read.ino))
    };
    if !same(file) {
        return false;
    }
    adopt(store, file, digest);
    if same(&dest) {
        // The bytes hashed are this inode's, unless it was written since (its time
        // would have moved).
        if let Ok(m) = fs::symlink_metadata(&dest) {
            ReadAs::of(&m).remember_if(read, digest);
        }
        return true;
    }
    // Replaced between the check and the link: not the bytes that were read.
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) && !same(&dest) {
        let _ = fs::remove_file(&dest);
    }
    false
}

/// A copy of a file the store is about to hold, made while the file is hashed (before
/// its digest is known) in the store's temp directory; [`adopt_read`] makes it the
/// object of the digest when the file was not changed since. Removed when dropped
/// unused.
pub struct Precopy {
    tmp: PathBuf,
    /// The file as it was when it was opened (and, the copy checked, at its end).
    before: ReadAs,
    made: ReadAs,
}

impl Drop for Precopy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Files this long or longer (a program, a proc-macro) are copied into the store at the
/// same time as they are hashed (the last unit of a build is one: its store is waited
/// for); shorter ones, after.
pub const PRECOPY_MIN_LEN: u64 = 4 << 20;

/// Copies `file` into the store's temp directory by the kernel (`copy_file_range`),
/// checking that it did not change while copied. `None` when it could not be made.
pub fn precopy(store: &LocalStore, file: &Path) -> Option<Precopy> {
    let tmp = crate::fsx::temp_beside(&store.root().join("tmp").join("precopy"));
    let (made, before) = copy_to(file, &tmp)?;
    Some(Precopy { tmp, before, made })
}

/// Copies `file` to `tmp` (which must not exist) by the kernel, read-only: the copy's
/// state and the file's before the copy, when the file did not change while it was
/// copied; `None` (and nothing left at `tmp`) otherwise.
fn copy_to(file: &Path, tmp: &Path) -> Option<(ReadAs, ReadAs)> {
    let src = crate::fsx::open_unfollowed(file, File::options().read(true)).ok()?;
    let before = src.metadata().ok().filter(fs::Metadata::is_file)?;
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(before.mode() & 0o555 | 0o444)
        .open(tmp)
        .ok()?;
    let before = ReadAs::of(&before);
    let copied = copy_unchanged(&src, &before, &mut out);
    let made = out.metadata().ok().map(|m| ReadAs::of(&m));
    match made.filter(|_| copied) {
        Some(made) => Some((made, before)),
        None => {
            let _ = fs::remove_file(tmp);
            None
        }
    }
}

/// The copy of [`Adopt::Copy`]: the object's state when it was made from a file that
/// did not change while it was copied, with the file's state before the copy.
fn copy_in(store: &LocalStore, file: &Path, digest: &Key) -> Option<(ReadAs, ReadAs)> {
    let dest = object_path(store, digest);
    if fs::symlink_metadata(&dest).is_ok() {
        return None;
    }
    fs::create_dir_all(dest.parent()?).ok()?;
    let tmp = crate::fsx::temp_beside(&dest);
    let (made, before) = copy_to(file, &tmp)?;
    // Never over an object made meanwhile (by another build): the same bytes.
    let linked = fs::hard_link(&tmp, &dest).is_ok();
    let _ = fs::remove_file(&tmp);
    linked.then_some((made, before))
}

/// Copies all of `src`, which was `before` when opened, into `out` by the kernel
/// (`copy_file_range`): true when every byte was copied and `src` is still as it was.
fn copy_unchanged(mut src: &File, before: &ReadAs, out: &mut File) -> bool {
    std::io::copy(&mut src, out).is_ok_and(|n| n == before.len)
        && src.metadata().is_ok_and(|m| ReadAs::of(&m) == *before)
}

/// Whether the file at `p` (not followed) is this user's.
fn owned(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| is_ours(&m))
}

fn is_ours(m: &fs::Metadata) -> bool {
    m.uid() == rustix::process::geteuid().as_raw()
}

/// Puts the object of `digest` at `tmp` (which must not exist): a hard link when the
/// target dir is on the store's file system, a checked copy otherwise. True when it is
/// there, checked as [`verified_link`] checks: `Some(true)` linked, `Some(false)`
/// copied; `None` when there is no such object (or it was found changed, and removed).
pub fn link_or_copy(store: &LocalStore, digest: &Key, len: u64, tmp: &Path) -> Option<bool> {
    if verified_link(store, digest, len, tmp).is_some() {
        return Some(true);
    }
    verified_copy(store, digest, len, tmp).map(|()| false)
}

/// Copies the object of `digest` to `tmp` (which must not exist) as a file of its own,
/// with its own time, created with `mode`: how a file that must carry the time of its
/// restore (a unit's newest output: an `.rmeta`, a proc-macro) or stay writable comes
/// out of a thin entry. Checked for its length and digest (see [`link_or_copy`]);
/// `None` when there is no such object (or it was found changed, and removed).
pub fn fresh_copy(store: &LocalStore, digest: &Key, len: u64, tmp: &Path, mode: u32) -> Option<()> {
    copy_checked(store, digest, len, tmp, mode)
}

/// Copies the object of `digest` to `tmp`, checking that the bytes copied are `len`
/// long and hash to `digest`. The copy is this user's own file (read-only, like a link),
/// so the object may be anyone's: in a store several users write, one user's thin entry
/// restores for the others by copy.
fn verified_copy(store: &LocalStore, digest: &Key, len: u64, tmp: &Path) -> Option<()> {
    copy_checked(store, digest, len, tmp, 0o444)
}

/// The copy of [`verified_copy`] and [`fresh_copy`]. An object of this user's, read-only
/// and remembered as sound while unchanged (see [`ReadAs`]'s memory), is copied by the
/// kernel (`copy_file_range`) without being read here, and is still as it was after the
/// copy; any other is read, hashed and written.
fn copy_checked(store: &LocalStore, digest: &Key, len: u64, tmp: &Path, mode: u32) -> Option<()> {
    use std::io::{Read, Write};
    let object = object_path(store, digest);
    let src = crate::fsx::open_unfollowed(&object, File::options().read(true)).ok()?;
    let meta = src.metadata().ok()?;
    if !meta.is_file() || meta.len() != len {
        return None;
    }
    let _ = fs::remove_file(tmp);
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .ok()?;
    let before = ReadAs::of(&meta);
    if is_ours(&meta) && meta.mode() & 0o222 == 0 && before.is_remembered(digest) {
        if copy_unchanged(&src, &before, &mut out) {
            return Some(());
        }
        // Changed under the copy, or the copy failed: read it the slow way.
        drop(out);
        let _ = fs::remove_file(tmp);
        out = File::options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(tmp)
            .ok()?;
        std::io::Seek::seek(&mut &src, std::io::SeekFrom::Start(0)).ok()?;
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    let mut src = src;
    let ok = (|| -> std::io::Result<()> {
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            copied += n as u64;
        }
    })();
    if ok.is_err() || copied != len || Key(*hasher.finalize().as_bytes()) != *digest {
        let _ = fs::remove_file(tmp);
        if ok.is_ok() && is_ours(&meta) {
            // Ours and changed: never used again.
            let _ = fs::remove_file(&object);
        }
        return None;
    }
    if is_ours(&meta)
        && meta.mode() & 0o222 == 0
        && let Ok(after) = src.metadata()
    {
        ReadAs::of(&after).remember_if(&before, digest);
    }
    Some(())
}

/// Links the object of `digest` to `tmp` (which must not exist), and checks the link:
/// a regular file owned by this user, not writable by anyone, `len` bytes long, whose
/// contents hash to `digest`. `None` (and `tmp` removed) when there is no such object
/// or the link cannot be made; an object found changed is removed from the store.
pub fn verified_link(store: &LocalStore, digest: &Key, len: u64, tmp: &Path) -> Option<()> {
    let object = object_path(store, digest);
    let _ = fs::remove_file(tmp);
    fs::hard_link(&object, tmp).ok()?;
    let ok = check(tmp, digest, len);
    if ok != Some(true) {
        let ours =
            fs::symlink_metadata(tmp).is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw());
        let _ = fs::remove_file(tmp);
        if ok == Some(false) && ours {
            // Ours and changed since it was made: never used again. (Another user's is
            // not linked, but may still be copied: see `verified_copy`.)
            let _ = fs::remove_file(&object);
        }
        return None;
    }
    Some(())
}

/// `Some(true)`: the file at `path` is the object it should be; `Some(false)`: it is not
/// (changed or forged); `None`: it could not be read.
fn check(path: &Path, digest: &Key, len: u64) -> Option<bool> {
    let f = crate::fsx::open_unfollowed(path, File::options().read(true)).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || !is_ours(&meta) || meta.mode() & 0o222 != 0 || meta.len() != len {
        return Some(false);
    }
    if ReadAs::of(&meta).is_remembered(digest) {
        return Some(true);
    }
    // As `key::hash_file` hashes, but through the descriptor just checked.
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&f).ok()?;
    let sound = Key(*hasher.finalize().as_bytes()) == *digest;
    if sound && let Ok(after) = f.metadata() {
        ReadAs::of(&after).remember_if(&ReadAs::of(&meta), digest);
    }
    Some(sound)
}

/// The memory of objects found sound: an object file as it was when its contents were
/// found to hash to its digest (device, inode, length and modification time),
/// remembered in the private directory (which only this user writes; a store is hostile
/// input), so that the next use of the same unchanged file need not read it again: an
/// object is owned by this user and writable by no one, and a change of its bytes (a
/// write, which only its owner could allow) moves its modification time; a file put in
/// its place (a copy, a store restored from an archive) is another inode, read and
/// checked again. On `bench/project` a warm build checks 323 MB of objects.
impl ReadAs {
    fn line(&self) -> String {
        format!("{} {} {} {}\n", self.dev, self.ino, self.len, self.mtime_ns)
    }

    fn memo(digest: &Key) -> Option<PathBuf> {
        let hex = digest.to_hex();
        let dir = crate::private_dir::private_dir().ok()?;
        Some(dir.join("checked-objects").join(&hex[..2]).join(hex))
    }

    /// True when the file was found sound as it is now.
    fn is_remembered(&self, digest: &Key) -> bool {
        Self::memo(digest)
            .and_then(|p| fs::read_to_string(p).ok())
            .is_some_and(|text| text == self.line())
    }

    /// Remembers the file as found sound, if it did not change while it was read
    /// (`self`: after reading; `before`: before).
    fn remember_if(&self, before: &ReadAs, digest: &Key) {
        if self == before {
            self.remember(digest);
        }
    }

    /// Remembers the file as found sound as it is now.
    fn remember(&self, digest: &Key) {
        if let Some(p) = Self::memo(digest) {
            crate::private_dir::write_memo(&p, self.line().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file found sound is not read again while it is unchanged; written since, it
    /// is read (and refused), and so is another file with the same name and length.
    #[test]
    fn a_checked_object_is_read_again_only_once_changed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object");
        let mut bytes = vec![0u8; 300_000];
        blake3::Hasher::new()
            .update(dir.path().to_str().unwrap().as_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        let digest = Key::digest(&bytes);
        let readonly = |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode));
        fs::write(&path, &bytes).unwrap();
        readonly(&path, 0o444).unwrap();
        assert_eq!(check(&path, &digest, bytes.len() as u64), Some(true));
        let m = fs::metadata(&path).unwrap();
        assert!(ReadAs::of(&m).is_remembered(&digest));
        assert_eq!(check(&path, &digest, bytes.len() as u64), Some(true));

        // Written in place (by its owner, who made it writable first): its time moves.
        std::thread::sleep(std::time::Duration::from_millis(10));
        readonly(&path, 0o644).unwrap();
        let mut f = File::options().write(true).open(&path).unwrap();
        f.write_all(b"changed").unwrap();
        drop(f);
        readonly(&path, 0o444).unwrap();
        assert_eq!(check(&path, &digest, bytes.len() as u64), Some(false));

        // Another inode at the same place, with other bytes of the same length.
        let other = dir.path().join("other");
        fs::write(&other, vec![1u8; bytes.len()]).unwrap();
        readonly(&other, 0o444).unwrap();
        fs::rename(&other, &path).unwrap();
        assert_eq!(check(&path, &digest, bytes.len() as u64), Some(false));
    }

    fn noise(seed: &[u8], len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        blake3::Hasher::new()
            .update(seed)
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    }

    /// A large program a thin entry copies (copied while it is hashed) becomes the
    /// object of its digest: a copy of its own, read-only, the file left as it was,
    /// nothing left in the store's temp directory.
    #[test]
    fn a_large_program_is_copied_while_it_is_hashed() {
        use crate::store::{EntryMeta, EntrySource};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::unbounded_store(&dir.path().join("store"));
        let program = dir.path().join("app");
        let bytes = noise(b"app", PRECOPY_MIN_LEN as usize + 12_345);
        fs::write(&program, &bytes).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        let key = Key::digest(b"entry");
        let meta = EntryMeta::for_test(&key, &[("bin", "app", true)]);
        let out = store
            .put_entry(&key, &meta, &[(EntrySource::Object(&program), true)], &[])
            .unwrap();
        assert_eq!(out.objects.len(), 1);
        let digest = Key::digest(&bytes);
        assert_eq!(out.digests, vec![digest]);
        let object = object_path(&store, &digest);
        assert_eq!(fs::read(&object).unwrap(), bytes);
        let (o, p) = (
            fs::metadata(&object).unwrap(),
            fs::metadata(&program).unwrap(),
        );
        assert_ne!(o.ino(), p.ino(), "copied, not linked");
        assert_eq!(o.mode() & 0o777, 0o555);
        assert_eq!(p.mode() & 0o777, 0o755, "the user's file stays writable");
        assert_eq!(check(&object, &digest, bytes.len() as u64), Some(true));
        assert_no_temp_left(&store);
    }

    /// Nothing is left in the store's temp directory (a copy made and not used is gone).
    fn assert_no_temp_left(store: &LocalStore) {
        let left: Vec<_> = fs::read_dir(store.root().join("tmp")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Makes the object of `digest` from `file` as it is now, by copy, given the copy
    /// `pre` made while it was hashed.
    fn adopt_copy_of(store: &LocalStore, file: &Path, digest: &Key, pre: Precopy) -> bool {
        let read = ReadAs::of(&fs::metadata(file).unwrap());
        adopt_read(store, file, digest, &read, Adopt::Copy, Some(pre))
    }

    /// A new store beside the file `app` holding `bytes`, and a copy of it made as while
    /// it was hashed.
    fn app_and_its_copy(dir: &Path, bytes: &[u8]) -> (LocalStore, PathBuf, Precopy) {
        let store = crate::store::local::unbounded_store(&dir.join("store"));
        let file = dir.join("app");
        fs::write(&file, bytes).unwrap();
        let pre = precopy(&store, &file).unwrap();
        (store, file, pre)
    }

    /// A copy made while a file was hashed is not the object when the file changed
    /// after the copy: the object is made again from the file as it is, and the copy is
    /// removed.
    #[test]
    fn a_copy_of_a_file_changed_since_is_not_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let old = noise(b"old", 100_000);
        let (store, file, pre) = app_and_its_copy(dir.path(), &old);
        let tmp = pre.tmp.clone();
        assert_eq!(fs::read(&tmp).unwrap(), old);
        // Written again (a new inode, as the linkers write), then read and hashed.
        let new = noise(b"new", 100_000);
        let next = dir.path().join("app.next");
        fs::write(&next, &new).unwrap();
        fs::rename(&next, &file).unwrap();
        let digest = Key::digest(&new);
        assert!(adopt_copy_of(&store, &file, &digest, pre));
        assert_eq!(fs::read(object_path(&store, &digest)).unwrap(), new);
        assert!(!tmp.exists());
    }

    /// A copy made while an unchanged file was hashed is itself the object, in a new
    /// store whose object directories are not there yet: it is not copied again.
    #[test]
    fn a_copy_of_an_unchanged_file_becomes_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = noise(b"app", 100_000);
        let (store, file, pre) = app_and_its_copy(dir.path(), &bytes);
        let copy = fs::metadata(&pre.tmp).unwrap().ino();
        let digest = Key::digest(&bytes);
        let object = object_path(&store, &digest);
        assert!(!object.parent().unwrap().exists());
        assert!(adopt_copy_of(&store, &file, &digest, pre));
        assert_eq!(fs::metadata(&object).unwrap().ino(), copy);
        assert_eq!(fs::read(&object).unwrap(), bytes);
        assert_no_temp_left(&store);
    }
}
