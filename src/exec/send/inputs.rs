//! What a compile may read, gathered into its input root ([`input_root`]): the
//! package's files, the crates it may load, the native search directories and
//! `OUT_DIR`, within a bound of files and bytes.

use std::path::{Path, PathBuf};

use super::job::{Job, Origin};
use super::memo::{MEMO_MIN, memo_digest};
use super::roots::Roots;
use crate::exec::{Bytes, InputFile, InputRoot};

use crate::key::RootKind;

/// Beyond these, a package is not sent (its directory is walked whole).
const MAX_FILES: usize = 20_000;
const MAX_BYTES: u64 = 1 << 30;

/// What the compile may read: the package's files, the crates it may load, the
/// native search directories and `OUT_DIR`; and the toolchain, when it ships one.
pub(super) fn input_root(
    cx: &dyn Origin,
    job: &Job<'_>,
    roots: &Roots,
    toolchain: Option<&InputRoot>,
) -> Result<InputRoot, String> {
    let cwd = cx.cwd();
    let mut files = Files {
        root: InputRoot::default(),
        roots,
        count: 0,
        bytes: 0,
        target: cx.path_map().real_of(RootKind::Target).map(PathBuf::from),
        memo: crate::private_dir::private_subdir("exec-digests").ok(),
    };
    let manifest_dir = cx
        .env()
        .get("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("cargo named no package directory (CARGO_MANIFEST_DIR)")?;
    files.walk(&manifest_dir)?;
    if let Some(input) = &job.inv.input {
        files.add(&cwd.join(input), true)?;
    }
    for e in &job.inv.externs {
        if let Some(p) = &e.path {
            files.add(&cwd.join(p), true)?;
        }
    }
    for dir in &job.inv.dependency_dirs {
        files.crates_in(&cwd.join(dir))?;
    }
    for (kind, dir) in &job.inv.search_paths {
        if matches!(kind.as_str(), "native" | "all" | "crate") {
            files.flat(&cwd.join(dir))?;
        }
    }
    if let Some(out_dir) = cx.env().get("OUT_DIR") {
        files.walk(Path::new(out_dir))?;
    }
    if let Some(t) = toolchain {
        files.root.graft(crate::exec::wire::TOOLCHAIN_DIR, t)?;
    }
    Ok(files.root)
}

/// The file at `p` as an input: its digest from the memo when it is large and the memo
/// knows it as it is now, else hashed when the tree is made.
pub(super) fn input_file(p: &Path, meta: &std::fs::Metadata, memo: Option<&Path>) -> InputFile {
    use std::os::unix::fs::PermissionsExt;
    let bytes = match memo.filter(|_| meta.len() >= MEMO_MIN) {
        Some(memo) => match memo_digest(memo, p, meta) {
            Some(d) => Bytes::Hashed(p.to_path_buf(), d),
            None => Bytes::File(p.to_path_buf()),
        },
        None => Bytes::File(p.to_path_buf()),
    };
    InputFile {
        bytes,
        executable: meta.permissions().mode() & 0o111 != 0,
    }
}

struct Files<'a> {
    root: InputRoot,
    roots: &'a Roots,
    count: usize,
    bytes: u64,
    target: Option<PathBuf>,
    /// Where digests of large inputs are remembered (`memo_digest`).
    memo: Option<PathBuf>,
}

impl Files<'_> {
    /// Adds the file at `p` (a symbolic link as the file it leads to). `needed`: a file
    /// under no root is an error, not skipped.
    fn add(&mut self, p: &Path, needed: bool) -> Result<(), String> {
        let Some(rel) = self.roots.rel(p) else {
            return if needed {
                Err(format!("{} is under no root", p.display()))
            } else {
                Ok(())
            };
        };
        let Ok(meta) = std::fs::metadata(p) else {
            return if needed {
                Err(format!("{} cannot be read", p.display()))
            } else {
                Ok(())
            };
        };
        if !meta.is_file() {
            return Ok(());
        }
        self.count += 1;
        self.bytes += meta.len();
        if self.count > MAX_FILES || self.bytes > MAX_BYTES {
            return Err(format!(
                "more than {MAX_FILES} files or {} MiB to send",
                MAX_BYTES >> 20
            ));
        }
        self.root
            .add(&rel, input_file(p, &meta, self.memo.as_deref()))
    }

    /// Every file below `dir`, but not the target dir, a nested one (`CACHEDIR.TAG`),
    /// or `.git`. A symbolic link is sent as what it leads to, under its own name (the
    /// input root holds no links): a source tree may link data from elsewhere.
    fn walk(&mut self, dir: &Path) -> Result<(), String> {
        self.walk_at(dir, 0)
    }

    fn walk_at(&mut self, dir: &Path, depth: usize) -> Result<(), String> {
        // Links may make a loop; the file and byte limits bound the rest.
        if depth > 64 {
            return Err(format!("{} is nested too deep", dir.display()));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() || (ft.is_symlink() && p.is_dir()) {
                let name = e.file_name();
                if name == ".git"
                    || self.target.as_deref() == Some(p.as_path())
                    || p.join("CACHEDIR.TAG").is_file()
                {
                    continue;
                }
                self.walk_at(&p, depth + 1)?;
            } else {
                self.add(&p, false)?;
            }
        }
        Ok(())
    }

    /// The files directly in `dir`.
    fn flat(&mut self, dir: &Path) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            self.add(&e.path(), false)?;
        }
        Ok(())
    }

    /// The crates in a `-L dependency=` directory: rustc finds the crates `--extern`
    /// does not name (the dependencies' own dependencies) there by name.
    fn crates_in(&mut self, dir: &Path) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let is_crate = name.starts_with("lib")
                && [".rlib", ".rmeta", ".so"].iter().any(|x| name.ends_with(x));
            if is_crate {
                self.add(&e.path(), false)?;
            }
        }
        Ok(())
    }
}
