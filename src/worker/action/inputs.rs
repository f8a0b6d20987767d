//! The action's input root made from the CAS ([`materialize`]): plain names only, no
//! symbolic links, each file copied from the machine's blob cache, which holds a blob
//! only once it hashed to its digest ([`cached_blob`]); a shipped toolchain made once
//! for the machine instead ([`make_toolchain`]). Main type: [`Caches`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use super::failed::{Failed, missing};
use super::lease::message;
use super::toolchains::{InUse, Toolchains};
use crate::reapi::Reapi;

/// What every worker of a machine shares under its `--dir`: the blob cache and the
/// shipped toolchains.
#[derive(Clone, Debug)]
pub struct Caches {
    /// Blobs by digest (`blobs/`), each held only once it hashed to its digest.
    pub blobs: PathBuf,
    /// The shipped toolchains (`toolchains/`).
    pub toolchains: Toolchains,
}

/// Makes the tree `digest` at `dest`: its directories, and its files copied from the
/// local blob cache (fetched into it first when absent). Copies, not hard links: the
/// command may write where it likes in its directory, and a write through a hard link
/// would change the cached blob for every later action. `keep_out`: a directory at the
/// top of the tree that is not made (a shipped toolchain); its digest is returned.
pub(super) async fn materialize(
    cas: &Reapi,
    digest: &re::Digest,
    dest: &Path,
    blobs: Option<&Path>,
    keep_out: Option<&str>,
) -> Result<Option<re::Digest>, Failed> {
    let mut kept = None;
    let mut todo = vec![(digest.clone(), dest.to_path_buf())];
    let mut files: BTreeMap<PathBuf, (re::Digest, bool)> = BTreeMap::new();
    let mut dirs = 0usize;
    while let Some((d, at)) = todo.pop() {
        dirs += 1;
        if dirs > 100_000 {
            return Err(Failed::invalid(
                "the input tree has over 100000 directories".into(),
            ));
        }
        let dir: re::Directory = message(cas, &d, "Directory").await?;
        std::fs::create_dir_all(&at)
            .map_err(|e| Failed::internal(format!("no directory {} ({e})", at.display())))?;
        if !dir.symlinks.is_empty() {
            return Err(Failed::invalid(
                "the input tree holds a symlink, which this worker does not make".into(),
            ));
        }
        for f in dir.files {
            if !crate::fsx::is_plain_name(&f.name) {
                return Err(Failed::invalid(format!(
                    "the input name `{}` is not a file name",
                    f.name
                )));
            }
            let Some(fd) = f.digest else {
                return Err(Failed::invalid(format!(
                    "the input file `{}` has no digest",
                    f.name
                )));
            };
            files.insert(at.join(&f.name), (fd, f.is_executable));
        }
        for sub in dir.directories {
            if !crate::fsx::is_plain_name(&sub.name) {
                return Err(Failed::invalid(format!(
                    "the input name `{}` is not a directory name",
                    sub.name
                )));
            }
            let Some(sd) = sub.digest else {
                return Err(Failed::invalid(format!(
                    "the input directory `{}` has no digest",
                    sub.name
                )));
            };
            if at == dest && Some(sub.name.as_str()) == keep_out {
                kept = Some(sd);
                continue;
            }
            todo.push((sd, at.join(&sub.name)));
        }
    }
    for (path, (digest, executable)) in files {
        match blobs {
            Some(blobs) => {
                let cached = cached_blob(cas, &digest, blobs).await?;
                std::fs::copy(&cached, &path).map_err(|e| {
                    Failed::internal(format!(
                        "{} not copied to {} ({e})",
                        cached.display(),
                        path.display()
                    ))
                })?;
            }
            None => {
                let dir = path.parent().unwrap_or(dest);
                fetch_blob(cas, &digest, dir, &path).await?;
            }
        }
        let mode = if executable { 0o755 } else { 0o644 };
        let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode));
    }
    Ok(kept)
}

/// The shipped toolchain `digest`, made once for the machine from the CAS (every blob
/// checked against its digest) and held for the action (see [`Toolchains`]).
pub(super) async fn make_toolchain(
    cas: &Reapi,
    digest: &re::Digest,
    caches: &Caches,
) -> Result<InUse, Failed> {
    let name = digest_name(digest)?;
    caches
        .toolchains
        .ready(&name, |tree| async move {
            // Straight into the tree, not through the blob cache: each file would
            // otherwise be kept twice (the toolchain's 520 MB), in the blob cache long
            // after the toolchain itself is collected.
            materialize(cas, digest, &tree, None, None)
                .await
                .map(|_| ())
        })
        .await
}

/// The name a blob or a tree is kept under in the worker's caches: its hash and size.
/// The server names the digest: a hash that is not one is refused.
fn digest_name(digest: &re::Digest) -> Result<String, Failed> {
    if digest.hash.len() != 64 || !digest.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failed::invalid(format!(
            "`{}` is not a SHA-256 digest",
            digest.hash
        )));
    }
    Ok(format!("{}-{}", digest.hash, digest.size_bytes))
}

/// The local copy of a blob, fetched when absent. A blob lands under its digest only
/// once it hashed to it (written to a temporary file first, renamed), so whatever is
/// there under a name holds those bytes — workers of one machine share the folder.
pub(super) async fn cached_blob(
    cas: &Reapi,
    digest: &re::Digest,
    blobs: &Path,
) -> Result<PathBuf, Failed> {
    let path = blobs.join(digest_name(digest)?);
    if path.is_file() {
        return Ok(path);
    }
    fetch_blob(cas, digest, blobs, &path).await?;
    Ok(path)
}

/// Fetches the blob `digest` to `path`, through a temporary file in `dir` renamed once
/// the whole blob hashed to its digest: whatever is at `path` holds those bytes.
async fn fetch_blob(
    cas: &Reapi,
    digest: &re::Digest,
    dir: &Path,
    path: &Path,
) -> Result<(), Failed> {
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Failed::internal(format!("no file in {} ({e})", dir.display())))?;
    let mut file = tmp.as_file();
    let mut write_err = None;
    let got = cas
        .blob_to(digest, &mut |chunk| {
            use std::io::Write;
            if let Err(e) = file.write_all(chunk) {
                write_err = Some(e);
            }
            Ok(())
        })
        .await?;
    if let Some(e) = write_err {
        return Err(Failed::internal(format!(
            "{} could not be written ({e})",
            dir.display()
        )));
    }
    if got.is_none() {
        return Err(missing(digest, "input file"));
    }
    tmp.persist(path)
        .map_err(|e| Failed::internal(format!("{} not kept ({})", path.display(), e.error)))?;
    Ok(())
}
