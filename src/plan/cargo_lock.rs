//! cargo's locks on its build directory, which let cargo start while seeding plants.
//! Main types: [`CargoLocks`] (which files cargo locks, learned from cargo) and
//! [`HeldLocks`] (those files, locked by the front-end).
//!
//! A cargo with nothing to compile spends most of its time resolving the workspace
//! (as long as `cargo metadata` takes) before it locks its build directory and reads a
//! single fingerprint. The front-end can let it resolve while planting, if it holds
//! those locks itself until everything is planted: cargo waits for them ("Blocking
//! waiting for file lock on build directory"), then finds every planted unit in place.
//! Which files cargo locks depends on the cargo (their names changed with the new
//! layout) and on whether the build dir is the target dir, so it is learned from cargo
//! itself, once per cargo and configuration ([`learn`], remembered in the private
//! directory): the same cargo, with the same switches, checks an empty library in a
//! directory of its own; the lock files it made in the profile directories are its
//! locks; then, with those held, it is run again, and it must say that it waits for
//! them. A cargo that does not (or one that could not be asked) starts after planting,
//! as before.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::layout::{PROBE_TIMEOUT, Probe, end_group, spawn_in_group, wait_bounded};

/// The lock files cargo takes in a profile directory (`debug`, `<triple>/release`, …)
/// of the build dir and, where it is apart, of the target dir.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CargoLocks {
    pub build: Vec<String>,
    pub artifact: Vec<String>,
}

impl CargoLocks {
    /// The files to lock for the profile directories `profiles` (relative to the build
    /// dir and the target dir).
    pub fn files(&self, build_dir: &Path, target_dir: &Path, profiles: &[String]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in profiles {
            out.extend(self.build.iter().map(|n| build_dir.join(p).join(n)));
            if build_dir != target_dir {
                out.extend(self.artifact.iter().map(|n| target_dir.join(p).join(n)));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn to_memo(&self) -> String {
        let mut s = String::new();
        for n in &self.build {
            s.push_str(&format!("build {n}\n"));
        }
        for n in &self.artifact {
            s.push_str(&format!("artifact {n}\n"));
        }
        s
    }

    fn from_memo(text: &str) -> Option<Option<CargoLocks>> {
        if text == "none\n" {
            return Some(None);
        }
        let mut locks = CargoLocks::default();
        for line in text.lines() {
            let (role, name) = line.split_once(' ')?;
            if !is_lock_name(name) {
                return None;
            }
            match role {
                "build" => locks.build.push(name.to_string()),
                "artifact" => locks.artifact.push(name.to_string()),
                _ => return None,
            }
        }
        (!locks.build.is_empty()).then_some(Some(locks))
    }
}

/// A name cargo gives a lock file in a profile directory: `.cargo-lock`,
/// `.cargo-build-lock`, `.cargo-artifact-lock`, … (one path component).
fn is_lock_name(name: &str) -> bool {
    name.starts_with(".cargo") && name.ends_with("lock") && !name.contains('/') && name.len() <= 64
}

/// Which files the probe's cargo locks with the build dir apart from the target dir
/// (`apart`) or not, remembered; `None` where cargo could not be asked or did not wait
/// for the files it made.
pub fn learn(probe: &Probe<'_>, apart: bool) -> Option<CargoLocks> {
    let memo = memo_path(probe, apart);
    let read = || read_memo(memo.as_deref());
    let _lock = match crate::private_dir::memo_or_lock(memo.as_deref(), read) {
        Ok(locks) => return locks,
        Err(lock) => lock,
    };
    let locks = ask(probe, apart);
    if let (Some(m), Ok(found)) = (&memo, &locks) {
        let text = found
            .as_ref()
            .map_or_else(|| "none\n".to_string(), CargoLocks::to_memo);
        crate::private_dir::write_memo(m, text.as_bytes());
    }
    locks.ok().flatten()
}

/// What an earlier [`learn`] found for the probe's cargo and configuration (`None`: it
/// was not asked yet).
pub fn remembered(probe: &Probe<'_>, apart: bool) -> Option<Option<CargoLocks>> {
    read_memo(memo_path(probe, apart).as_deref())
}

fn memo_path(probe: &Probe<'_>, apart: bool) -> Option<PathBuf> {
    let dir = crate::private_dir::private_subdir("cargo-locks").ok()?;
    // Lock files are named whatever the checkout's place.
    let key = probe.memo_key_with(false);
    Some(dir.join(format!("{key}-{}", if apart { "apart" } else { "same" })))
}

fn read_memo(memo: Option<&Path>) -> Option<Option<CargoLocks>> {
    CargoLocks::from_memo(&std::fs::read_to_string(memo?).ok()?)
}

/// Asks cargo: `Ok(None)` when it did not wait for the lock files it made (remembered);
/// `Err` when it could not be asked (not remembered: asked again next time).
fn ask(probe: &Probe<'_>, apart: bool) -> Result<Option<CargoLocks>, String> {
    let dir = tempfile::Builder::new()
        .prefix("xcache-lock-probe-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let root = dir.path();
    let manifest = probe.write_empty_library(root)?;
    let target_dir = root.join("target");
    let build_dir = if apart {
        root.join("build")
    } else {
        target_dir.clone()
    };
    // Not quiet: cargo says that it waits for a lock only among its status lines.
    let command = || {
        let mut cmd = probe.check_command(&manifest, &target_dir, &build_dir, false);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    // The first check makes the profile directory and cargo's lock files in it.
    let mut first =
        spawn_in_group(command().stderr(std::process::Stdio::null())).map_err(|e| e.to_string())?;
    let status = wait_bounded(&mut first)?;
    if !status.success() {
        return Err(format!("checking an empty library failed ({status})"));
    }
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("debug"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_lock_name(n))
            .collect();
        v.sort();
        v
    };
    let locks = CargoLocks {
        build: names(&build_dir),
        artifact: if apart {
            names(&target_dir)
        } else {
            Vec::new()
        },
    };
    if locks.build.is_empty() {
        return Ok(None);
    }
    // Then, with those held, cargo must say that it waits.
    let held = HeldLocks::hold(&locks.files(&build_dir, &target_dir, &["debug".to_string()]))
        .ok_or("the probe's lock files could not be locked")?;
    let mut child = spawn_in_group(&mut command()).map_err(|e| e.to_string())?;
    let stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let Some(err) = stderr else { return };
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if is_lock_wait(&line) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let waited = loop {
        if rx.recv_timeout(Duration::from_millis(5)).is_ok() {
            break Ok(true);
        }
        if !matches!(child.try_wait(), Ok(None)) {
            // Done without a word of waiting: cargo does not lock these (remembered).
            break Ok(rx.try_recv().is_ok());
        }
        if Instant::now() >= deadline {
            // Too busy a machine to tell: asked again next time.
            break Err("cargo neither waited nor ended".to_string());
        }
    };
    end_group(&mut child);
    drop(held);
    Ok(waited?.then_some(locks))
}

/// Whether a line of cargo's stderr says that it waits for its build directory's lock
/// (or its target dir's): what cargo prints while the front-end holds them.
pub fn is_lock_wait(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("Blocking waiting for file lock on")
        && line.ends_with("directory")
        && !line.contains("package cache")
}

/// Lock files of cargo, locked by this process until dropped.
#[derive(Debug)]
pub struct HeldLocks {
    _files: Vec<File>,
}

impl HeldLocks {
    /// Locks every file of `paths` (made where missing, with its directory), or none:
    /// `None` when one cannot be made or another process holds it (another cargo in the
    /// same build dir: this build's cargo then starts after planting, and waits for
    /// that one as it would anyway).
    pub fn hold(paths: &[PathBuf]) -> Option<HeldLocks> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            std::fs::create_dir_all(p.parent()?).ok()?;
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .ok()?;
            rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
            files.push(f);
        }
        Some(HeldLocks { _files: files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_round_trips_and_refuses_what_is_not_a_lock_name() {
        let locks = CargoLocks {
            build: vec![".cargo-build-lock".into()],
            artifact: vec![".cargo-artifact-lock".into()],
        };
        assert_eq!(
            CargoLocks::from_memo(&locks.to_memo()),
            Some(Some(locks.clone()))
        );
        assert_eq!(CargoLocks::from_memo("none\n"), Some(None));
        assert_eq!(CargoLocks::from_memo("build ../../etc/x-lock\n"), None);
        assert_eq!(CargoLocks::from_memo("artifact .cargo-lock\n"), None);
        assert_eq!(CargoLocks::from_memo("builds .cargo-lock\n"), None);
    }

    #[test]
    fn files_are_per_profile_and_the_target_dirs_only_when_apart() {
        let locks = CargoLocks {
            build: vec![".cargo-build-lock".into()],
            artifact: vec![".cargo-artifact-lock".into()],
        };
        let profiles = [
            "debug".to_string(),
            "x86_64-unknown-linux-gnu/debug".to_string(),
        ];
        let apart = locks.files(Path::new("/b"), Path::new("/t"), &profiles);
        assert_eq!(apart.len(), 4);
        assert!(apart.contains(&PathBuf::from(
            "/t/x86_64-unknown-linux-gnu/debug/.cargo-artifact-lock"
        )));
        let same = locks.files(Path::new("/t"), Path::new("/t"), &profiles);
        assert_eq!(
            same,
            vec![
                PathBuf::from("/t/debug/.cargo-build-lock"),
                PathBuf::from("/t/x86_64-unknown-linux-gnu/debug/.cargo-build-lock")
            ]
        );
    }

    #[test]
    fn lock_waits_are_told_from_other_lines() {
        assert!(is_lock_wait(
            "    Blocking waiting for file lock on build directory"
        ));
        assert!(is_lock_wait(
            "    Blocking waiting for file lock on artifact directory"
        ));
        assert!(!is_lock_wait(
            "    Blocking waiting for file lock on package cache"
        ));
        assert!(!is_lock_wait("   Compiling serde v1.0.0"));
    }

    #[test]
    fn a_held_lock_is_refused_to_a_second_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![dir.path().join("debug/.cargo-lock")];
        let held = HeldLocks::hold(&files).expect("a free lock is taken");
        assert!(HeldLocks::hold(&files).is_none(), "held twice");
        drop(held);
        assert!(HeldLocks::hold(&files).is_some(), "not freed");
    }
}
