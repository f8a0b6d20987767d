//! Digests of large inputs remembered between actions ([`memo_digest`]): the crates
//! every action sends are not hashed again for each. The memo stays bounded.

use std::path::Path;

/// Files smaller than this are hashed each time (cheaper than a memo's file).
pub(super) const MEMO_MIN: u64 = 64 * 1024;

/// The digest of the file at `p`, from the memo when it knows the file as it is now:
/// by path, device, inode, size, modification and change time (the change time moves on
/// every write, and cannot be set back). Every action sends the crates of its
/// dependency directories, hundreds of MB deep in a large graph: hashing them again for
/// each action would cost more than many compiles. A file changed less than 2 s ago is
/// not remembered (a write in the same clock tick would leave every time as it was). A
/// wrong digest could only fail the upload (checked against it) or, where the server has
/// that blob, give the worker the old bytes; the memo lives in the private directory,
/// which only this user may write.
pub(super) fn memo_digest(
    memo: &Path,
    p: &Path,
    meta: &std::fs::Metadata,
) -> Option<bazel_remote_apis::build::bazel::remote::execution::v2::Digest> {
    use std::os::unix::fs::MetadataExt;
    let name = crate::key::KeyHasher::new("exec-digest-memo-v1")
        .str("path", &p.to_string_lossy())
        .str("dev", &meta.dev().to_string())
        .str("ino", &meta.ino().to_string())
        .str("size", &meta.len().to_string())
        .str("mtime", &format!("{}.{}", meta.mtime(), meta.mtime_nsec()))
        .str("ctime", &format!("{}.{}", meta.ctime(), meta.ctime_nsec()))
        .finish()
        .to_hex();
    let file = memo.join(&name[..2]).join(&name);
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Some((hash, size)) = text.trim().split_once(' ')
        && let Ok(size) = size.parse::<i64>()
        && hash.len() == 64
        && size == meta.len() as i64
    {
        return Some(
            bazel_remote_apis::build::bazel::remote::execution::v2::Digest {
                hash: hash.to_string(),
                size_bytes: size,
            },
        );
    }
    let digest = crate::exec::digest_file(p).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    // Hashed as it was when looked at: the same size, and not changed since.
    let after = std::fs::metadata(p).ok()?;
    let unchanged = after.len() == meta.len()
        && after.ctime() == meta.ctime()
        && after.ctime_nsec() == meta.ctime_nsec()
        && digest.size_bytes == meta.len() as i64;
    if !unchanged {
        return None;
    }
    if meta.ctime() + 2 < now {
        let shard = file.parent()?;
        let _ = std::fs::create_dir_all(shard);
        prune_memo_shard(shard, std::time::SystemTime::now());
        let _ = crate::fsx::write_atomic(
            &file,
            format!("{} {}\n", digest.hash, digest.size_bytes).as_bytes(),
        );
    }
    Some(digest)
}

/// A memo shard holding more than this many digests is pruned when one is added.
const MEMO_SHARD_MAX: usize = 64;

/// Digests remembered longer than this are dropped from a full shard: a file still
/// there is hashed again once (a memo entry names one version of one file, and every
/// rebuild of a crate makes a new one).
const MEMO_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the digests in `shard` written more than [`MEMO_AGE`] before `now`, when it
/// holds more than [`MEMO_SHARD_MAX`]: the memo stays bounded by what a day of builds
/// adds.
fn prune_memo_shard(shard: &Path, now: std::time::SystemTime) {
    let Ok(rd) = std::fs::read_dir(shard) else {
        return;
    };
    let entries: Vec<std::fs::DirEntry> = rd.flatten().collect();
    if entries.len() <= MEMO_SHARD_MAX {
        return;
    }
    for e in entries {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > MEMO_AGE));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_the_files_and_a_file_just_written_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let (memo, file) = (dir.path().join("memo"), dir.path().join("big.rlib"));
        std::fs::create_dir(&memo).unwrap();
        std::fs::write(&file, vec![7u8; 100_000]).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let d = memo_digest(&memo, &file, &meta).unwrap();
        assert_eq!(d, crate::exec::digest_file(&file).unwrap());
        // Changed less than 2 s ago: a write in the same clock tick could follow.
        assert_eq!(std::fs::read_dir(&memo).unwrap().count(), 0);
    }

    #[test]
    fn a_full_memo_shard_drops_digests_older_than_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path();
        let now = std::time::SystemTime::now();
        let two_days = now - std::time::Duration::from_secs(2 * 24 * 3600);
        let write = |name: &str, at: std::time::SystemTime| {
            let p = shard.join(name);
            std::fs::write(&p, "h 1\n").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(at)
                .unwrap();
        };
        for i in 0..40 {
            write(&format!("old{i}"), two_days);
            write(&format!("new{i}"), now);
        }
        let count = || std::fs::read_dir(shard).unwrap().count();
        prune_memo_shard(shard, now);
        assert_eq!(
            count(),
            40,
            "the old digests are gone, the recent ones stay"
        );
        // A shard within its bound is left alone, old digests and all.
        write("old-again", two_days);
        prune_memo_shard(shard, now);
        assert_eq!(count(), 41);
    }
}
