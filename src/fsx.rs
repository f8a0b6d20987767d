//! File-system primitives every layer uses: the one judge of whether a path that came
//! from elsewhere may be written ([`confined`]), and atomic writes ([`write_atomic`],
//! [`write_new_atomic`]).
//!
//! Anything read from a store, a remote, a seed index, an entry or a recipe is hostile
//! input: a name it gives is joined to a directory only through [`confined`], which
//! refuses every way out of that directory (absolute paths, `..`, a drive or UNC prefix,
//! a symbolic link on the way, NUL bytes).

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Why a name was refused by [`confined`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Escape {
    #[error("an empty name")]
    Empty,
    #[error("{0:?} is not a relative path inside the directory")]
    NotRelative(String),
    #[error("{0:?} holds a NUL byte")]
    Nul(String),
    #[error("{0:?} passes through a symbolic link ({1})")]
    Symlink(String, PathBuf),
}

/// `base` joined with the relative name `rel`, if the result stays inside `base`: `rel`
/// must be made of plain components only (no root, no prefix, no `..`, no `.`), and no
/// directory between `base` and the result may be a symbolic link now (a link planted
/// in a store-controlled directory would lead a later write elsewhere). The last
/// component may not be a link either. `base` itself is trusted: the caller chose it.
pub fn confined(base: &Path, rel: &str) -> Result<PathBuf, Escape> {
    if rel.is_empty() {
        return Err(Escape::Empty);
    }
    if rel.contains('\0') {
        return Err(Escape::Nul(rel.to_string()));
    }
    // Windows spellings are refused everywhere: a store may be shared across systems.
    if rel.contains('\\') || rel.as_bytes().get(1) == Some(&b':') {
        return Err(Escape::NotRelative(rel.to_string()));
    }
    if rel.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(Escape::NotRelative(rel.to_string()));
    }
    let path = Path::new(rel);
    let mut out = base.to_path_buf();
    for c in path.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                if let Ok(m) = std::fs::symlink_metadata(&out)
                    && m.file_type().is_symlink()
                {
                    return Err(Escape::Symlink(rel.to_string(), out));
                }
            }
            _ => return Err(Escape::NotRelative(rel.to_string())),
        }
    }
    // `a/` or `a//b` are spelled oddly but stay inside; `.` alone is not a name.
    if out == base {
        return Err(Escape::Empty);
    }
    Ok(out)
}

/// True when `name` is a single plain file name (no separator at all).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && name != "."
        && name != ".."
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` to `path` atomically, as [`write_atomic`], unless something is there
/// already, which is left as it is: `Ok(false)`. Of several processes writing at once,
/// the first rename wins and the others see it.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

/// Opens a file of a hostile directory (a store's lock, ledger or log) with `opts`, never
/// through a link planted at its name (`O_NOFOLLOW`), never waiting on a FIFO
/// (`O_NONBLOCK`, which a regular file ignores), and only if what is opened is a
/// regular file: a write through a planted link would land outside the directory, an
/// open of a FIFO would hang the build.
pub fn open_in_place(path: &Path, opts: &mut std::fs::OpenOptions) -> io::Result<std::fs::File> {
    let f = open_unfollowed(path, opts)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Takes an exclusive lock on `file` (`flock`), waiting while another holds it, at most
/// `wait`: `false` when the wait ran out or the lock cannot be taken (the caller then
/// goes on without it).
pub fn lock_within(file: &std::fs::File, wait: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let busy = match file.try_lock() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) => true,
            // A signal came: try again at once.
            Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(_) => return false,
        };
        if std::time::Instant::now() >= deadline {
            return false;
        }
        if busy {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// [`open_in_place`] whatever the file is: for a caller that judges what it opened
/// itself (a store's object that is no regular file is a forged one, not an unreadable
/// one).
pub fn open_unfollowed(path: &Path, opts: &mut std::fs::OpenOptions) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Reads into `buf` until it is full or the reader ends: how many bytes it holds.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The text of a small file of a hostile directory ([`open_in_place`]): an error when it
/// is longer than `limit` bytes, rather than reading whatever it is into memory.
pub fn read_small(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_small_bytes(path, limit)?).map_err(io::Error::other)
}

/// [`read_small`] as bytes.
pub fn read_small_bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = open_in_place(path, std::fs::OpenOptions::new().read(true))?;
    if f.metadata()?.len() > limit {
        return Err(io::Error::other(format!(
            "{} is longer than {limit} bytes",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The most a store's record (a manifest, a seed record, a unit's key history, the
/// builds log) may hold to be read: a record longer is unreadable, as a damaged one is.
pub const RECORD_LIMIT: u64 = 16 * 1024 * 1024;

/// A temp path next to `dest`, for writing a file that is renamed into place.
pub fn temp_beside(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".xcache-tmp-{}-{n}", std::process::id()));
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link or a FIFO planted at a store file's name is never opened through, nor
    /// waited on; a long file is not read whole.
    #[test]
    fn a_planted_link_or_fifo_is_not_opened() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"the user's file\n").unwrap();
        let link = d.path().join("gc.added");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let append = || open_in_place(&link, std::fs::OpenOptions::new().create(true).append(true));
        assert!(append().is_err());
        assert!(read_small(&link, 1024).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"the user's file\n");
        let fifo = d.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Would block forever without O_NONBLOCK (no reader, no writer).
        assert!(open_in_place(&fifo, std::fs::OpenOptions::new().write(true)).is_err());
        assert!(read_small(&fifo, 1024).is_err());
        let long = d.path().join("long");
        std::fs::write(&long, vec![b'1'; 2048]).unwrap();
        assert!(read_small(&long, 1024).is_err());
        std::fs::write(&long, b"12\n").unwrap();
        assert_eq!(read_small(&long, 1024).unwrap(), "12\n");
    }

    #[test]
    fn every_way_out_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        assert_eq!(
            confined(base, "debug/deps/x").unwrap(),
            base.join("debug/deps/x")
        );
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "C:\\x",
            "c:x",
            "\\\\server\\share",
            "a\\..\\b",
            "a\0b",
            "//x",
        ] {
            assert!(confined(base, bad).is_err(), "{bad:?} was let through");
        }
        // A link on the way (or at the end) leads elsewhere.
        std::fs::create_dir_all(base.join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", base.join("link")).unwrap();
        assert!(matches!(confined(base, "link/x"), Err(Escape::Symlink(..))));
        assert!(matches!(confined(base, "link"), Err(Escape::Symlink(..))));
        assert!(confined(base, "real/x").is_ok());
        assert!(is_plain_name("libfoo.rlib"));
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
