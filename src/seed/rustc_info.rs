//! cargo's rustc probes, carried from one target dir to the next: [`RustcInfo`].
//!
//! Before it builds anything, cargo asks the compiler who it is (`rustc -vV`) and what
//! the target looks like (`rustc - --print=cfg …`), through the rustc wrapper, and keeps
//! the answers in `<target dir>/.rustc_info.json`. A new target dir has none, so every
//! build of a fresh checkout pays both probes (about 50 ms here, the largest part of
//! cargo's own no-op), and so does `cargo metadata` before it.
//!
//! The judge of that file is cargo's: it holds a fingerprint of the compiler's and the
//! wrappers' paths and modification times (and rustup's toolchain), and each answer is
//! keyed by the probe's arguments (flags, target) and the variables cargo set for it; a
//! file whose fingerprint differs is thrown away and the probes run. What we add is only
//! the file cargo wrote at the end of the last build, copied from the private directory
//! (which only this user writes) into a target dir that has none. It is remembered per
//! cargo version and per value of every `RUST*` variable (`RUSTC_BOOTSTRAP`,
//! `RUST_TARGET_PATH`, `RUSTFLAGS`, … which cargo's key leaves to the target dir's
//! continuity), so a file is only ever handed to a build that cargo would have handed
//! it to had it run in the same target dir.
//!
//! `cargo metadata` runs with the same wrapper as the build (see `plan::graph`), so
//! the two share one fingerprint instead of each throwing away the other's file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::Env;

/// cargo's name for the file, in the target dir's root.
const FILE: &str = ".rustc_info.json";

/// A file larger than this is not cargo's probe cache (it holds a few KiB).
const MAX_LEN: u64 = 1 << 20;

/// The memory of cargo's probe answers for one cargo and one set of `RUST*` variables.
pub struct RustcInfo {
    memo: PathBuf,
}

impl RustcInfo {
    /// The memo for this build, or `None` when there is no private directory.
    pub fn for_build(cargo_version: &str, env: &Env) -> Option<RustcInfo> {
        let dir = crate::private_dir::private_subdir("rustc-info").ok()?;
        Some(RustcInfo {
            memo: dir.join(format!("{}.json", memo_key(cargo_version, env))),
        })
    }

    /// Puts the remembered file in `target_dir` if it has none; true if it did. Never
    /// replaces a file (cargo's own, or another build's being written).
    pub fn plant(&self, target_dir: &Path) -> bool {
        let Some(bytes) = read_small(&self.memo) else {
            return false;
        };
        let dest = target_dir.join(FILE);
        let Ok(mut f) = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
        else {
            return false;
        };
        if f.write_all(&bytes).is_err() {
            drop(f);
            let _ = fs::remove_file(&dest);
            return false;
        }
        true
    }

    /// Remembers the file cargo left in `target_dir`, if it is a regular file of this
    /// user's (a shared target dir's file from someone else is not carried anywhere).
    /// Answers remembered before under the same fingerprint stay beside the new ones
    /// (a build with other flags or another `--target` asks other probes).
    pub fn remember(&self, target_dir: &Path) {
        let Some(bytes) = read_small(&target_dir.join(FILE)) else {
            return;
        };
        let old = read_small(&self.memo);
        if old.as_deref() == Some(bytes.as_slice()) {
            return;
        }
        let merged = old.and_then(|old| merge(&old, &bytes));
        crate::private_dir::write_memo(&self.memo, merged.as_deref().unwrap_or(&bytes));
    }
}

/// cargo's file `new` with the answers of `old` it lacks, when both hold the same
/// compiler fingerprint (`rustc_fingerprint`) and their answers (`outputs`) are maps;
/// `None` otherwise (then `new` alone is kept), or when the union would pass
/// [`MAX_LEN`].
fn merge(old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let old: Value = serde_json::from_slice(old).ok()?;
    let mut new: Value = serde_json::from_slice(new).ok()?;
    let same = old.get("rustc_fingerprint")?;
    if new.get("rustc_fingerprint")? != same {
        return None;
    }
    let old_outputs = old.get("outputs")?.as_object()?;
    let outputs = new.get_mut("outputs")?.as_object_mut()?;
    for (k, v) in old_outputs {
        outputs.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let bytes = serde_json::to_vec(&new).ok()?;
    (bytes.len() as u64 <= MAX_LEN).then_some(bytes)
}

/// A file put where `cargo metadata` will most likely look before the plan says where
/// the target dir is; [`Guess::settle`] takes it back if that was not the place.
pub struct Guess {
    dir: PathBuf,
    made_dir: bool,
    planted: bool,
}

impl RustcInfo {
    /// Plants the file in the target dir `cargo metadata` will most likely use, so its
    /// probes are answered too: `target_dir` when the command or `CARGO_TARGET_DIR`
    /// names one, else `<cwd>/target` when `cwd` is a workspace's root (its manifest says
    /// `[workspace]`, or no directory above it holds a manifest) and nothing cargo reads
    /// could move the target dir (see `default_target_dir_likely`). Anything else: no
    /// guess.
    pub fn plant_before_metadata(
        &self,
        cwd: &Path,
        target_dir: Option<&Path>,
        env: &Env,
    ) -> Option<Guess> {
        let dir = match target_dir {
            Some(d) => cwd.join(d),
            None if default_target_dir_likely(cwd, env) => cwd.join("target"),
            None => return None,
        };
        let made_dir = !dir.exists();
        if made_dir && fs::create_dir(&dir).is_err() {
            return None;
        }
        let planted = self.plant(&dir);
        Some(Guess {
            dir,
            made_dir,
            planted,
        })
    }
}

impl Guess {
    /// The directory the guess made (it did not exist), if it made one.
    pub fn made_dir(&self) -> Option<&Path> {
        self.made_dir.then_some(self.dir.as_path())
    }

    /// Whether the guess made `target_dir` (so it is a new target dir, for all that it
    /// exists now).
    pub fn made(&self, target_dir: &Path) -> bool {
        self.made_dir && self.dir == target_dir
    }

    /// Takes back what was put in a dir that is not `target_dir` (an empty dir made for
    /// it, the file planted in it); leaves it where the guess was right. True when it was
    /// (nothing is left to plant there).
    pub fn settle(self, target_dir: &Path) -> bool {
        if self.dir == target_dir {
            return true;
        }
        if self.planted {
            let _ = fs::remove_file(self.dir.join(FILE));
        }
        if self.made_dir {
            let _ = fs::remove_dir(&self.dir);
        }
        false
    }
}

/// `<cwd>/target` is the target dir unless something moves it: true when `cwd` holds
/// the workspace's root manifest, `CARGO_BUILD_TARGET_DIR` is not set, and no cargo
/// configuration file cargo reads from here (`.cargo/config.toml` or `.cargo/config` in
/// `cwd` or a directory above it, and in `CARGO_HOME`) names `target-dir`. Most projects
/// that carry a configuration file carry it for other things (linkers, flags, aliases);
/// one that cannot be read counts as moving it. A wrong guess costs nothing but the
/// probes it meant to save ([`Guess::settle`]).
fn default_target_dir_likely(cwd: &Path, env: &Env) -> bool {
    let Ok(manifest) = fs::read_to_string(cwd.join("Cargo.toml")) else {
        return false;
    };
    let root = manifest.lines().any(|l| l.trim() == "[workspace]")
        || cwd
            .ancestors()
            .skip(1)
            .all(|d| !d.join("Cargo.toml").exists());
    if !root || env.get("CARGO_BUILD_TARGET_DIR").is_some() {
        return false;
    }
    let home = env
        .get("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".cargo")));
    let configs = cwd
        .ancestors()
        .map(|d| d.join(".cargo"))
        .chain(home)
        .flat_map(|d| [d.join("config.toml"), d.join("config")]);
    for file in configs {
        match fs::read_to_string(&file) {
            Ok(text) if text.contains("target-dir") => return false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Something there that this process cannot read as text (a file it may not
            // read, one that is not UTF-8): cargo may read it, so no guess.
            Err(_) => return false,
        }
    }
    true
}

/// The bytes of `path` if it is a regular file (not a link) of this user's, no larger
/// than [`MAX_LEN`].
fn read_small(path: &Path) -> Option<Vec<u8>> {
    let m = fs::symlink_metadata(path).ok()?;
    let ours = m.uid() == rustix::process::geteuid().as_raw();
    if !m.file_type().is_file() || !ours || m.len() > MAX_LEN {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    (bytes.len() as u64 <= MAX_LEN).then_some(bytes)
}

/// blake3 over the cargo version and every `RUST*` variable (name and value, sorted).
/// Schema: bump the tag when the fields change (no test pins the value).
fn memo_key(cargo_version: &str, env: &Env) -> String {
    let mut vars: Vec<(&str, &str)> = env
        .all()
        .iter()
        .filter(|(name, _)| name.starts_with("RUST"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    vars.sort_unstable();
    let mut h = blake3::Hasher::new();
    h.update(b"xcache rustc-info v1\0");
    h.update(cargo_version.as_bytes());
    h.update(b"\0");
    for (name, value) in vars {
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dir: &Path) -> RustcInfo {
        RustcInfo {
            memo: dir.join("memo.json"),
        }
    }

    /// What cargo left is planted in a target dir without one, and never over one.
    #[test]
    fn a_remembered_file_goes_only_where_there_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let ri = info(tmp.path());
        assert!(!ri.plant(&b), "nothing remembered yet");
        fs::write(a.join(FILE), b"{\"cargo\":1}").unwrap();
        ri.remember(&a);
        assert!(ri.plant(&b));
        assert_eq!(fs::read(b.join(FILE)).unwrap(), b"{\"cargo\":1}");
        fs::write(b.join(FILE), b"{\"cargo\":2}").unwrap();
        assert!(!ri.plant(&b), "cargo's own file stays");
        assert_eq!(fs::read(b.join(FILE)).unwrap(), b"{\"cargo\":2}");
    }

    /// The guess plants in `<cwd>/target` of a workspace root, and takes back all it
    /// made when the target dir turns out to be elsewhere.
    #[test]
    fn a_wrong_guess_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let ri = info(tmp.path());
        let env = home_env(tmp.path());
        fs::write(&ri.memo, b"{}").unwrap();
        let ws = tmp.path().join("ws");
        fs::create_dir_all(&ws).unwrap();
        fs::write(ws.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let g = ri.plant_before_metadata(&ws, None, &env).unwrap();
        assert!(g.made(&ws.join("target")));
        assert!(ws.join("target").join(FILE).is_file());
        assert!(!g.settle(&tmp.path().join("elsewhere")));
        assert!(!ws.join("target").exists(), "the dir it made is gone");
        // Right: it stays.
        let g = ri.plant_before_metadata(&ws, None, &env).unwrap();
        assert!(g.settle(&ws.join("target")));
        assert!(ws.join("target").join(FILE).is_file());
        // A target dir that was there keeps what it had.
        fs::remove_file(ws.join("target").join(FILE)).unwrap();
        fs::write(ws.join("target/keep"), b"x").unwrap();
        let g = ri.plant_before_metadata(&ws, None, &env).unwrap();
        assert!(!g.made(&ws.join("target")));
        assert!(!g.settle(&tmp.path().join("elsewhere")));
        assert!(ws.join("target/keep").is_file());
        assert!(!ws.join("target").join(FILE).exists());
    }

    /// An environment whose `CARGO_HOME` is under `dir`.
    fn home_env(dir: &Path) -> Env {
        let home = dir.join("cargo-home").display().to_string();
        Env::from_pairs([("PATH", "/bin"), ("CARGO_HOME", home.as_str())])
    }

    /// No guess in a member below a workspace root, nor where a cargo configuration file
    /// (above the workspace or in `CARGO_HOME`) or `CARGO_BUILD_TARGET_DIR` names the
    /// target dir; a configuration file that names something else leaves the guess.
    #[test]
    fn no_guess_where_the_target_dir_may_be_elsewhere() {
        let tmp = tempfile::tempdir().unwrap();
        let ri = info(tmp.path());
        let env = home_env(tmp.path());
        let ws = tmp.path().join("ws");
        let member = ws.join("member");
        fs::create_dir_all(&member).unwrap();
        fs::write(ws.join("Cargo.toml"), "[workspace]\n").unwrap();
        fs::write(member.join("Cargo.toml"), "[package]\nname = \"m\"\n").unwrap();
        assert!(ri.plant_before_metadata(&member, None, &env).is_none());
        assert!(!member.join("target").exists());

        // A configuration for a linker and flags (ripgrep carries one): the guess stands.
        fs::create_dir_all(ws.join(".cargo")).unwrap();
        let config = ws.join(".cargo/config.toml");
        fs::write(
            &config,
            "[target.x86_64-pc-windows-msvc]\nrustflags = [\"-Ctarget-feature=+crt-static\"]\n",
        )
        .unwrap();
        let g = ri.plant_before_metadata(&ws, None, &env).unwrap();
        assert!(g.settle(&ws.join("target")));
        fs::remove_dir_all(ws.join("target")).unwrap();

        fs::write(&config, "[build]\ntarget-dir = \"t\"\n").unwrap();
        assert!(ri.plant_before_metadata(&ws, None, &env).is_none());
        assert!(!ws.join("target").exists());
        fs::remove_file(&config).unwrap();

        // The user's own configuration, in CARGO_HOME, in its older spelling.
        let home = tmp.path().join("cargo-home");
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join("config"), "build.target-dir = \"/elsewhere\"\n").unwrap();
        assert!(ri.plant_before_metadata(&ws, None, &env).is_none());
        fs::remove_file(home.join("config")).unwrap();

        let moved = env.with(&[("CARGO_BUILD_TARGET_DIR".into(), "/elsewhere".into())]);
        assert!(ri.plant_before_metadata(&ws, None, &moved).is_none());
        assert!(!ws.join("target").exists());
        assert!(ri.plant_before_metadata(&ws, None, &env).is_some());
    }

    /// Answers under one fingerprint accumulate; another fingerprint starts afresh.
    #[test]
    fn answers_under_one_fingerprint_are_kept_together() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        fs::create_dir_all(&a).unwrap();
        let ri = info(tmp.path());
        let write = |text: &str| fs::write(a.join(FILE), text).unwrap();
        let memo = || -> serde_json::Value {
            serde_json::from_slice(&fs::read(&ri.memo).unwrap()).unwrap()
        };
        write(r#"{"rustc_fingerprint":7,"outputs":{"1":{"stdout":"host"}}}"#);
        ri.remember(&a);
        write(r#"{"rustc_fingerprint":7,"outputs":{"2":{"stdout":"flags"}}}"#);
        ri.remember(&a);
        let m = memo();
        assert_eq!(m["outputs"]["1"]["stdout"], "host");
        assert_eq!(m["outputs"]["2"]["stdout"], "flags");
        write(r#"{"rustc_fingerprint":8,"outputs":{"3":{"stdout":"new rustc"}}}"#);
        ri.remember(&a);
        let m = memo();
        assert_eq!(m["rustc_fingerprint"], 8);
        assert!(m["outputs"].get("1").is_none(), "{m}");
        // Not cargo's format: kept as it is, never merged.
        write("not json");
        ri.remember(&a);
        assert_eq!(fs::read(&ri.memo).unwrap(), b"not json");
    }

    /// A link in the target dir's place is not followed when remembering.
    #[test]
    fn a_link_is_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        fs::create_dir_all(&a).unwrap();
        fs::write(tmp.path().join("elsewhere"), b"{}").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), a.join(FILE)).unwrap();
        let ri = info(tmp.path());
        ri.remember(&a);
        assert!(!ri.memo.exists());
    }

    /// Another value of a `RUST*` variable, or another cargo, is another memo.
    #[test]
    fn the_memo_follows_rust_variables_and_cargo() {
        let base = Env::from_pairs([("PATH", "/bin"), ("RUSTFLAGS", "-Cdebuginfo=0")]);
        let other_flags = Env::from_pairs([("PATH", "/bin"), ("RUSTFLAGS", "")]);
        let bootstrap = Env::from_pairs([
            ("PATH", "/bin"),
            ("RUSTFLAGS", "-Cdebuginfo=0"),
            ("RUSTC_BOOTSTRAP", "1"),
        ]);
        let other_path = Env::from_pairs([("PATH", "/usr/bin"), ("RUSTFLAGS", "-Cdebuginfo=0")]);
        let k = memo_key("cargo 1.95.0", &base);
        assert_ne!(k, memo_key("cargo 1.95.0", &other_flags));
        assert_ne!(k, memo_key("cargo 1.95.0", &bootstrap));
        assert_ne!(k, memo_key("cargo 1.96.0", &base));
        assert_eq!(k, memo_key("cargo 1.95.0", &other_path));
    }
}
