//! The toolchain a library compile carries to the worker
//! (`XCACHE_EXECUTOR_TOOLCHAIN=ship`, the default): the parts of this machine's sysroot
//! a compile that does not link reads ([`Shipped`]), put in the input root under
//! [`TOOLCHAIN_DIR`](crate::exec::wire::TOOLCHAIN_DIR), and sent to the server once
//! ([`ensure_sent`]).
//!
//! What is shipped: `bin/rustc`, the files directly in `lib/` (the driver, LLVM), and
//! the standard library of each target the compile names (`lib/rustlib/<target>/lib`,
//! whole). Nothing of the sysroot's tool directories goes: a compile that links (a
//! proc-macro) keeps the installed route and the linker identity, because its link
//! reads the worker's C toolchain and C library at their absolute places. What the
//! worker's record says the compile read of its copy is judged against exactly this
//! list ([`Shipped::agreed`]): a path of the sysroot that was not shipped was not there
//! for the worker's run, so it must be absent here too.

use std::path::{Path, PathBuf};

use super::inputs::input_file;
use super::outcome::{Fallback, Fell};
use crate::exec::observed::Agreed;
use crate::exec::{Executor, InputRoot};

/// Beyond this many files the sysroot is not shipped (a sysroot has about a hundred).
const MAX_FILES: usize = 5_000;

/// The files of a toolchain to ship, by their path inside the toolchain (`bin/rustc`).
#[derive(Debug)]
pub(super) struct Shipped {
    pub files: Vec<(String, PathBuf)>,
    /// The directories shipped whole (`lib/rustlib/<target>/lib`), inside the
    /// toolchain.
    pub whole: Vec<String>,
}

impl Shipped {
    /// The parts of `sysroot` a compile for `targets` reads.
    pub(super) fn of(sysroot: &Path, targets: &[&str]) -> Result<Shipped, String> {
        let mut s = Shipped {
            files: Vec::new(),
            whole: Vec::new(),
        };
        let rustc = sysroot.join("bin").join("rustc");
        if !rustc.is_file() {
            return Err(format!("the toolchain has no {}", rustc.display()));
        }
        s.files.push(("bin/rustc".into(), rustc));
        let lib = sysroot.join("lib");
        let entries = std::fs::read_dir(&lib)
            .map_err(|e| format!("the toolchain's {} cannot be read ({e})", lib.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file()
                && let Some(name) = p.file_name().and_then(|n| n.to_str())
            {
                s.files.push((format!("lib/{name}"), p.clone()));
            }
        }
        for t in targets {
            if !crate::fsx::is_plain_name(t) {
                return Err(format!("the target `{t}` is not a plain name"));
            }
            let rel = format!("lib/rustlib/{t}/lib");
            let dir = sysroot.join(&rel);
            if !dir.is_dir() {
                return Err(format!(
                    "the toolchain has no standard library for {t} ({})",
                    dir.display()
                ));
            }
            s.walk(&dir, &rel, 0)?;
            s.whole.push(rel);
        }
        s.files.sort();
        s.files.dedup_by(|a, b| a.0 == b.0);
        s.whole.sort();
        s.whole.dedup();
        Ok(s)
    }

    fn walk(&mut self, dir: &Path, rel: &str, depth: usize) -> Result<(), String> {
        if depth > 8 {
            return Err(format!("{} is nested too deep", dir.display()));
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{} cannot be read ({e})", dir.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                return Err(format!("{} has a name that is not UTF-8", p.display()));
            };
            if p.is_dir() {
                self.walk(&p, &format!("{rel}/{name}"), depth + 1)?;
            } else if p.is_file() {
                self.files.push((format!("{rel}/{name}"), p));
            }
            if self.files.len() > MAX_FILES {
                return Err(format!("the toolchain has over {MAX_FILES} files"));
            }
        }
        Ok(())
    }

    /// The toolchain as a tree of its own: the `toolchain/` directory of every action
    /// that ships it, the same blobs for all.
    pub(super) fn tree(&self) -> Result<InputRoot, String> {
        let memo = crate::private_dir::private_subdir("exec-digests").ok();
        let mut root = InputRoot::default();
        for (rel, p) in &self.files {
            let meta = std::fs::metadata(p)
                .map_err(|e| format!("{} cannot be read ({e})", p.display()))?;
            root.add(rel, input_file(p, &meta, memo.as_deref()))?;
        }
        Ok(root)
    }

    /// What the worker's run may read of its copy at `worker_sysroot`: the files
    /// shipped, the directories shipped whole, and the directories on the way to them
    /// looked at (not listed).
    pub(super) fn agreed(&self, worker_sysroot: &str, agreed: &mut Agreed) {
        let at = |rel: &str| format!("{worker_sysroot}/{rel}");
        for w in &self.whole {
            agreed.trees.push(at(w));
        }
        for (rel, _) in &self.files {
            agreed.files.insert(at(rel));
        }
        agreed.dirs.insert(worker_sysroot.to_string());
        for rel in self
            .files
            .iter()
            .map(|(r, _)| r.as_str())
            .chain(self.whole.iter().map(String::as_str))
        {
            let mut p = Path::new(rel);
            while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                agreed.dirs.insert(at(&parent.to_string_lossy()));
                p = parent;
            }
        }
    }
}

/// Makes sure the server has the toolchain `tree` before an action names it: one
/// question for its blobs (a later build's whole cost); when some are missing, they
/// are sent by one compile of this machine at a time (a lock per server and toolchain),
/// and a compile that finds another sending them runs here instead of waiting. The
/// bytes sent.
/// `checked` is told whether any were missing, once the server answered.
pub(super) async fn ensure_sent(
    ex: &Executor,
    tree: &InputRoot,
    server: &str,
    sysroot: &Path,
    fell: &dyn Fn(crate::errors::CacheError) -> Fell,
    checked: &dyn Fn(bool),
) -> Result<u64, Fell> {
    let missing = ex.missing_of_tree(tree).await.map_err(fell)?;
    checked(missing > 0);
    if missing == 0 {
        return Ok(0);
    }
    let id = crate::key::KeyHasher::new("exec-toolchain-sending")
        .str("server", server)
        .str("sysroot", &sysroot.to_string_lossy())
        .finish()
        .to_hex();
    let lock = crate::private_dir::private_subdir("exec-toolchains")
        .and_then(|d| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(d.join(format!("{}.lock", &id[..32])))
        })
        .map_err(|e| {
            (
                Fallback::Failed,
                format!("no lock for sending the toolchain ({e})"),
            )
        })?;
    let busy = || {
        (
            Fallback::ToolchainSending,
            "another compile of this machine is sending the toolchain to the server".to_string(),
        )
    };
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| busy())?;
    // Sent meanwhile by the compile that held the lock before.
    let (_, sent) = ex.send_tree(tree).await.map_err(fell)?;
    Ok(sent)
}

/// Sends the toolchain of `compiler` (for its host) to the executor of `spec` before the
/// build's compiles need it: what a compile that finds it missing would do, once, by the
/// front-end. `checked` is told whether the server lacked any of it, once it answered.
/// The bytes sent; an error says why not (the compiles then find out for themselves).
pub fn send_ahead(
    spec: &crate::config::ExecutorSpec,
    compiler: &crate::key::CompilerId,
    checked: &dyn Fn(bool),
) -> Result<u64, String> {
    let host = compiler.host().ok_or("rustc -vV names no host")?;
    let shipped = Shipped::of(&compiler.sysroot, &[host])?;
    let tree = shipped.tree()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no I/O runtime ({e})"))?;
    rt.block_on(async {
        let ex = Executor::new(&spec.server, spec.deadline).map_err(|e| e.to_string())?;
        let fell = |e: crate::errors::CacheError| (Fallback::Failed, e.to_string());
        ensure_sent(
            &ex,
            &tree,
            spec.server.display(),
            &compiler.sysroot,
            &fell,
            checked,
        )
        .await
        .map_err(|(_, why)| why)
    })
}

/// The targets a compile reads the standard library of: its `--target` and the host.
pub(super) fn targets<'a>(target: Option<&'a str>, host: &'a str) -> Vec<&'a str> {
    let mut t = vec![host];
    if let Some(x) = target.filter(|x| *x != host) {
        t.push(x);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysroot() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, rel).unwrap();
        };
        w("bin/rustc");
        w("bin/cargo");
        w("lib/librustc_driver-1.so");
        w("lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd-1.rlib");
        w("lib/rustlib/x86_64-unknown-linux-gnu/lib/self-contained/crt1.o");
        w("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
        w("lib/rustlib/wasm32-unknown-unknown/lib/libstd-2.rlib");
        w("share/doc/rust/README.md");
        d
    }

    #[test]
    fn a_compile_ships_rustc_its_libraries_and_its_targets_standard_library() {
        let d = sysroot();
        let s = Shipped::of(d.path(), &targets(None, "x86_64-unknown-linux-gnu")).unwrap();
        let names: Vec<&str> = s.files.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin/rustc",
                "lib/librustc_driver-1.so",
                "lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd-1.rlib",
                "lib/rustlib/x86_64-unknown-linux-gnu/lib/self-contained/crt1.o",
            ]
        );
        let cross = Shipped::of(
            d.path(),
            &targets(Some("wasm32-unknown-unknown"), "x86_64-unknown-linux-gnu"),
        )
        .unwrap();
        assert!(cross.files.iter().any(|(r, _)| r.contains("wasm32")));
        assert!(
            Shipped::of(d.path(), &["aarch64-unknown-linux-gnu"])
                .unwrap_err()
                .contains("no standard library for aarch64")
        );
        assert!(Shipped::of(d.path(), &["../x"]).is_err());
    }

    #[test]
    fn only_what_was_shipped_is_agreed() {
        let d = sysroot();
        let s = Shipped::of(d.path(), &["x86_64-unknown-linux-gnu"]).unwrap();
        let mut a = Agreed::default();
        s.agreed("/w/tc", &mut a);
        assert!(a.files.contains("/w/tc/bin/rustc"));
        assert!(!a.files.contains("/w/tc/bin/cargo"));
        assert_eq!(a.trees, ["/w/tc/lib/rustlib/x86_64-unknown-linux-gnu/lib"]);
        for dir in ["/w/tc", "/w/tc/bin", "/w/tc/lib", "/w/tc/lib/rustlib"] {
            assert!(a.dirs.contains(dir), "{dir}");
        }
        assert!(
            !a.dirs
                .contains("/w/tc/lib/rustlib/x86_64-unknown-linux-gnu/bin")
        );
    }
}
