//! One build-script run through the cache. Main entry: [`run_build_script`].
//!
//! cargo runs the shim (`super::shim`) with the package directory as working directory
//! and the build-script environment (`OUT_DIR`, `CARGO_*`, `TARGET`, …). The run is
//! keyed (`key::run_l1_key`, then `key::entry_key` over what the script declared on
//! its last run); a hit writes the stored `OUT_DIR` files back and prints what the
//! script printed; a miss runs the real executable, passes its output through, and
//! stores `OUT_DIR` with that output. Anything the cache cannot vouch for is reported
//! uncacheable with a reason, and the run's own result stands.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use memchr::memmem;

use super::remote_tier::RemoteTier;
use super::restore::commit_restore;
use super::run::{target_root, warn_once_per_build};
use super::shim::real_executable;
use super::{
    BUILD_SCRIPT_FAILED, Outcome, Uncacheable, UnitEvent, UnitRecord, Warning, append_event,
};
use crate::config::{Env, WrapperConfig};
use crate::errors::CacheError;
use crate::key::{
    InputDigest, Key, LinkerRequest, PathMap, RunKeyInput, TreeError, artifact_identity,
    c_tool_names, compiler_id, entry_key, linker_id, run_env, run_l1_key, tool_identity,
    tree_digest,
};
use crate::store::{
    EntryFile, EntryMeta, EntrySource, LocalStore, Manifest, ReadError, Variant, VariantEnv,
    restore_temp_path,
};

/// The most files a run's inputs (a directory it declared, its package) or its
/// `OUT_DIR` may hold for the run to be cached.
const MAX_FILES: usize = 10_000;

/// Text outputs up to this size are stored with their paths tokenized; larger files are
/// stored as bytes (and must not name a machine path).
const MAX_TEXT: u64 = 8 * 1024 * 1024;

/// Runs the build script cargo started as `ran` (the shim's path) through the cache and
/// returns its exit code.
pub fn run_build_script(ran: PathBuf, args: Vec<OsString>, env: Env, cwd: PathBuf) -> i32 {
    let Some(real) = real_executable(&ran) else {
        eprintln!(
            "error: xcache: failed to find the build-script executable next to {} (a `*{}` file)\n  hint: remove that directory and build again",
            ran.display(),
            super::REAL_SUFFIX
        );
        return 1;
    };
    let cfg = WrapperConfig::resolve(env, cwd);
    let out_dir = cfg.env.get("OUT_DIR").map(PathBuf::from);
    let (Some(out_dir), Some(store_dir)) = (out_dir, cfg.store_dir.clone()) else {
        return exec_real(&real, &ran, &args);
    };
    if cfg.disabled || !cfg.build_runs {
        return exec_real(&real, &ran, &args);
    }
    let store = match LocalStore::open(&store_dir) {
        Ok(s) => s,
        Err(e) => {
            warn_once_per_build(&[Warning {
                code: e.code().to_string(),
                message: e.to_string(),
            }]);
            return exec_real(&real, &ran, &args);
        }
    };
    let target_root = target_root(out_dir.parent().unwrap_or(&out_dir));
    let pm = PathMap::new(&cfg.cwd, Some(&target_root), cfg.cargo_home.as_deref());
    let mut run = Run {
        real,
        ran,
        args,
        cfg,
        out_dir,
        target_root,
        pm,
        store,
        started: Instant::now(),
        // File times come from the kernel's coarse clock, which lags the precise one by
        // up to a tick (4-10 ms): a file the script writes at once could look older than
        // the run. With the margin, a file written just before the run only makes the
        // run uncacheable.
        started_at: SystemTime::now() - std::time::Duration::from_millis(50),
        script_ms: 0,
        warnings: Vec::new(),
        remote: None,
        bytes_down: 0,
    };
    run.remote = RemoteTier::new(&run.cfg);
    run.run()
}

/// Runs the real executable in this process's place (same arguments, environment and
/// working directory).
fn exec_real(real: &Path, ran: &Path, args: &[OsString]) -> i32 {
    let err = Command::new(real).arg0(ran).args(args).exec();
    eprintln!("error: xcache: failed to run {}: {err}", real.display());
    1
}

struct Run {
    real: PathBuf,
    ran: PathBuf,
    args: Vec<OsString>,
    cfg: WrapperConfig,
    out_dir: PathBuf,
    target_root: PathBuf,
    pm: PathMap,
    store: LocalStore,
    started: Instant,
    /// When the run started, less a margin (see `run_build_script`): files modified
    /// after it may have been written by the script.
    started_at: SystemTime,
    script_ms: u64,
    warnings: Vec<Warning>,
    remote: Option<RemoteTier>,
    bytes_down: u64,
}

/// What the real script did.
struct Ran {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// What a run declared it read, as the entry key takes it.
struct Declared {
    inputs: Vec<InputDigest>,
    env: Vec<(String, Option<String>)>,
}

impl Run {
    fn warn(&mut self, e: &CacheError) {
        if !self.warnings.iter().any(|w| w.code == e.code()) {
            self.warnings.push(Warning {
                code: e.code().to_string(),
                message: e.to_string(),
            });
        }
    }

    fn run(&mut self) -> i32 {
        if let Some(message) = self.cfg.remote_error.clone() {
            self.warn(&CacheError::RemoteConfig(message));
        }
        let l1 = self.l1();
        let found =
            l1.as_ref()
                .ok()
                .and_then(|l1| match self.lookup(&self.store.read_manifest(l1), l1) {
                    Some(key) => Some((*l1, key, "local")),
                    None => self.fetch_remote(l1).map(|key| (*l1, key, "remote")),
                });
        if let Some((l1, key, tier)) = &found {
            let t = Instant::now();
            match self.restore(key) {
                Ok(Some((meta, bytes))) => {
                    let out = self.pm.expand_text(&meta.stdout);
                    let err = self.pm.expand_text(&meta.stderr);
                    let _ = io::stdout().write_all(out.as_bytes());
                    let _ = io::stderr().write_all(err.as_bytes());
                    let mut ev = self.event(Outcome::Hit, None, Some(*key), bytes, Some(*l1));
                    ev.unit.compile_ms = Some(meta.compile_ms);
                    ev.unit.restore_ms = Some(t.elapsed().as_millis() as u64);
                    ev.unit.tier = Some(tier.to_string());
                    self.finish_event(ev);
                    return 0;
                }
                Ok(None) => {}
                Err(e) => self.warn(&e),
            }
        }

        let t = Instant::now();
        let ran = match self.run_real() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: xcache: failed to run {}: {e}", self.real.display());
                return 1;
            }
        };
        self.script_ms = t.elapsed().as_millis() as u64;
        if ran.code != 0 {
            let ev = self.event(
                Outcome::Error,
                Some(BUILD_SCRIPT_FAILED.to_string()),
                None,
                0,
                None,
            );
            self.finish_event(ev);
            return ran.code;
        }
        let stored = l1.and_then(|l1| {
            let declared = self.declared(&ran.stdout)?;
            let key = entry_key(&l1, &declared.inputs, &declared.env);
            let bytes = self.store_run(&key, &ran)?;
            let variant = Variant {
                inputs: declared.inputs,
                link_inputs: Vec::new(),
                env: declared
                    .env
                    .into_iter()
                    .map(|(name, value)| VariantEnv { name, value })
                    .collect(),
                entry: key.to_hex(),
            };
            if let Err(e) = self.store.add_variant(&l1, variant) {
                self.warn(&e);
            }
            Ok((l1, key, bytes))
        });
        let ev = match stored {
            Ok((l1, key, bytes)) => {
                let mut ev = self.event(Outcome::Miss, None, Some(key), bytes, Some(l1));
                // `cargo xcache build` uploads stored entries in the background.
                ev.upload = self.cfg.defer_upload
                    && self.cfg.events.is_some()
                    && self.remote.as_ref().is_some_and(|r| !r.read_only);
                ev
            }
            Err(u) => self.event(
                Outcome::Uncacheable,
                Some(u.code().to_string()),
                None,
                0,
                None,
            ),
        };
        self.finish_event(ev);
        0
    }

    /// The first-level key: the script, the variables cargo set, the toolchains.
    fn l1(&self) -> Result<Key, Uncacheable> {
        let vars = self.cfg.env.all();
        let path_var = self.cfg.env.path_var().map(|p| p.as_os_str());
        let script =
            artifact_identity(&self.real).map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        let rustc = self
            .cfg
            .env
            .get("RUSTC")
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?;
        let compiler = compiler_id(
            Path::new(rustc),
            Some(&self.store.compilers_dir()),
            self.cfg.rustup_toolchain.as_deref(),
            path_var,
        )
        .map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        let host = compiler
            .host()
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?
            .to_string();
        let target = self.cfg.env.get("TARGET").unwrap_or(&host).to_string();
        let c_runtime = linker_id(
            &LinkerRequest {
                program: "cc",
                cwd: &self.cfg.cwd,
                sysroot: &compiler.sysroot,
                host: &host,
                target: &target,
                fuse_ld: &[],
                path_var,
                vars,
            },
            Some(&self.store.linkers_dir()),
        )
        .ok()
        .map(|l| l.key);
        let env = run_env(vars, &self.pm);
        let tools: Vec<(String, String)> = c_tool_names(vars)
            .into_iter()
            .map(|n| {
                let id = tool_identity(&n, &self.cfg.cwd, path_var);
                (n, id)
            })
            .collect();
        let mut dep_trees = Vec::new();
        for (k, v) in vars {
            let p = Path::new(v);
            if k.starts_with("DEP_") && p.is_absolute() && p.starts_with(&self.target_root) {
                let d = tree_digest(p, &self.out_dir, MAX_FILES).map_err(tree_reason)?;
                dep_trees.push((k.clone(), d));
            }
        }
        Ok(run_l1_key(&RunKeyInput {
            script: &script,
            compiler: &compiler.key,
            c_runtime: c_runtime.as_ref(),
            env: &env,
            tools: &tools,
            dep_trees: &dep_trees,
        }))
    }

    /// The entry whose recorded inputs match what is on disk now, if it is stored.
    fn lookup(&self, manifest: &Manifest, l1: &Key) -> Option<Key> {
        self.matching(manifest, l1)
            .find(|key| self.store.entry_size(key).is_some())
    }

    /// The entry whose recorded inputs match what is on disk now, stored or not.
    fn lookup_inputs(&self, manifest: &Manifest, l1: &Key) -> Option<Key> {
        self.matching(manifest, l1).next()
    }

    /// The entry keys of the variants whose inputs match now, newest first.
    fn matching<'a>(
        &'a self,
        manifest: &'a Manifest,
        l1: &'a Key,
    ) -> impl Iterator<Item = Key> + 'a {
        manifest
            .variants
            .iter()
            .filter_map(move |v| self.variant_key(v, l1))
    }

    fn variant_key(&self, v: &Variant, l1: &Key) -> Option<Key> {
        let mut env = Vec::with_capacity(v.env.len());
        for e in &v.env {
            let now = self.env_value(&e.name);
            if now != e.value {
                return None;
            }
            env.push((e.name.clone(), now));
        }
        for input in &v.inputs {
            let real = self.pm.expand_path(&input.path);
            if PathMap::has_token(&real.to_string_lossy()) {
                return None;
            }
            match tree_digest(&real, &self.target_root, MAX_FILES) {
                Ok(d) if d == input.digest => {}
                _ => return None,
            }
        }
        Some(entry_key(l1, &v.inputs, &env))
    }

    /// Looks the run up in the remote tier and downloads its entry into the local
    /// store. Returns the entry key on success.
    fn fetch_remote(&mut self, l1: &Key) -> Option<Key> {
        let mut tier = self.remote.take()?;
        let result = tier.fetch(&self.store, l1, |m| self.lookup_inputs(m, l1));
        self.remote = Some(tier);
        match result {
            Ok(Some((key, n))) => {
                self.bytes_down += n;
                Some(key)
            }
            Ok(None) => None,
            Err(e) => {
                self.warn(&e);
                None
            }
        }
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.cfg
            .env
            .all()
            .get(name)
            .map(|v| self.pm.normalize_text(v))
    }

    /// Writes the entry's files into `OUT_DIR`. Nothing is renamed into place until
    /// every digest matched. Returns the header and the bytes restored.
    fn restore(&self, key: &Key) -> Result<Option<(EntryMeta, u64)>, CacheError> {
        let Some(mut reader) = self.store.open_entry(key)? else {
            return Ok(None);
        };
        let meta = reader.meta().clone();
        if PathMap::has_token(&self.pm.expand_text(&meta.stdout)) {
            return Ok(None);
        }
        let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
        let result = (|| -> Result<u64, ReadError> {
            let mut bytes = 0;
            for f in &meta.files {
                if !is_relative_inside(&f.name) {
                    return Err(ReadError::Corrupt(format!("bad file name {:?}", f.name)));
                }
                let dest = self.out_dir.join(&f.name);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(ReadError::Io)?;
                }
                let tmp = restore_temp_path(&dest);
                temps.push((tmp.clone(), dest));
                if f.template {
                    let mut buf = Vec::new();
                    let (n, _) = reader.next_file(&mut buf)?;
                    bytes += n;
                    let text = String::from_utf8(buf)
                        .map_err(|_| ReadError::Corrupt("template is not UTF-8".into()))?;
                    let expanded = self.pm.expand_text(&text);
                    if PathMap::has_token(&expanded) {
                        return Err(ReadError::Io(io::Error::other("unexpandable path token")));
                    }
                    write_new(&tmp, f.executable, expanded.as_bytes()).map_err(ReadError::Io)?;
                } else {
                    let mut w = BufWriter::new(create(&tmp, f.executable).map_err(ReadError::Io)?);
                    let (n, _) = reader.next_file(&mut w)?;
                    bytes += n;
                    w.flush().map_err(ReadError::Io)?;
                }
            }
            Ok(bytes)
        })()
        .and_then(|bytes| reader.finish().map(|()| bytes));
        let bytes = commit_restore(&self.store, key, &temps, result)?;
        Ok(Some((meta, bytes)))
    }

    /// Runs the real script with the same arguments, environment and working directory,
    /// passing its output through and keeping a copy. C objects compiled by the `cc`
    /// crate get the cache's path remapping (cargo's `trim-paths` variables, which `cc`
    /// turns into `-f*-prefix-map` flags when the compiler supports them).
    fn run_real(&self) -> io::Result<Ran> {
        let mut cmd = Command::new(&self.real);
        cmd.arg0(&self.ran)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let vars = self.cfg.env.all();
        if !vars.contains_key("CARGO_TRIM_PATHS_SCOPE")
            && !vars.contains_key("CARGO_TRIM_PATHS_REMAP")
        {
            let pairs: Vec<String> = self
                .pm
                .roots()
                .iter()
                .rev()
                .filter(|r| !r.real.contains(':') && !r.real.contains('='))
                .map(|r| format!("{}={}", r.real, r.kind.remap_target()))
                .collect();
            cmd.env("CARGO_TRIM_PATHS_SCOPE", "object")
                .env("CARGO_TRIM_PATHS_REMAP", pairs.join(":"));
        }
        let mut child = cmd.spawn()?;
        let child_out = child.stdout.take().expect("piped");
        let child_err = child.stderr.take().expect("piped");
        let out_thread = std::thread::spawn(move || tee(child_out, io::stdout()));
        let stderr = tee(child_err, io::stderr());
        let status = child.wait()?;
        let stdout = out_thread.join().unwrap_or_default();
        Ok(Ran {
            code: status.code().unwrap_or(101),
            stdout,
            stderr,
        })
    }

    /// What the script declared it read, with digests now. The run is uncacheable when
    /// a declared path lies outside the known roots, when its directives name a system
    /// path, or when it changed files of its package.
    fn declared(&self, stdout: &[u8]) -> Result<Declared, Uncacheable> {
        let text = String::from_utf8_lossy(stdout);
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut vars: Vec<String> = Vec::new();
        for line in text.lines() {
            let Some(d) = line
                .strip_prefix("cargo::")
                .or_else(|| line.strip_prefix("cargo:"))
            else {
                continue;
            };
            if let Some(p) = d.strip_prefix("rerun-if-changed=") {
                paths.push(self.cfg.cwd.join(p));
            } else if let Some(v) = d.strip_prefix("rerun-if-env-changed=") {
                vars.push(v.to_string());
            }
            if !d.starts_with("warning=") && names_system_path(&self.pm.normalize_text(d)) {
                return Err(Uncacheable::BuildScriptProbesSystem);
            }
        }
        let pkg = self.cfg.cwd.clone();
        // cargo's rule for a script that named no file: any file of the package.
        if paths.is_empty() {
            paths.push(pkg.clone());
        }
        self.check_package_untouched(&pkg)?;
        let mut inputs = Vec::with_capacity(paths.len());
        for p in &paths {
            let path = self.pm.normalize_path(p);
            if !PathMap::has_token(&path) {
                return Err(Uncacheable::BuildScriptInputOutside);
            }
            let changed = fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > self.started_at);
            if changed {
                return Err(Uncacheable::InputChangedDuringBuild);
            }
            let digest = tree_digest(p, &self.target_root, MAX_FILES).map_err(tree_reason)?;
            inputs.push(InputDigest { path, digest });
        }
        inputs.sort();
        inputs.dedup();
        vars.sort();
        vars.dedup();
        let env = vars
            .into_iter()
            .map(|v| {
                let value = self.env_value(&v);
                (v, value)
            })
            .collect();
        Ok(Declared { inputs, env })
    }

    /// A file of the package (outside the target dir) modified since the run started:
    /// the script wrote outside `OUT_DIR` (which a restore would not repeat), or
    /// someone edited the package while it ran.
    fn check_package_untouched(&self, pkg: &Path) -> Result<(), Uncacheable> {
        let mut stack = vec![pkg.to_path_buf()];
        let mut n = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let path = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    if e.file_name() != ".git" && !path.starts_with(&self.target_root) {
                        stack.push(path);
                    }
                    continue;
                }
                n += 1;
                if n > MAX_FILES {
                    return Err(Uncacheable::BuildScriptTooManyFiles);
                }
                let newer = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m > self.started_at);
                if newer {
                    return Err(Uncacheable::BuildScriptWritesOutside);
                }
            }
        }
        Ok(())
    }

    /// Stores `OUT_DIR` and what the script printed under `key`. Returns the bytes
    /// stored.
    fn store_run(&mut self, key: &Key, ran: &Ran) -> Result<u64, Uncacheable> {
        let files = out_dir_files(&self.out_dir)?;
        let roots: Vec<String> = self.pm.roots().iter().map(|r| r.real.clone()).collect();
        let mut texts: Vec<Option<String>> = Vec::with_capacity(files.len());
        let mut entry_files = Vec::with_capacity(files.len());
        for (rel, path, len, executable) in &files {
            let text = if *len <= MAX_TEXT {
                fs::read(path)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .map(|t| self.pm.normalize_text(&t))
            } else {
                None
            };
            if let Some(t) = &text {
                if roots.iter().any(|r| t.contains(r.as_str())) {
                    return Err(Uncacheable::EmbedsAbsolutePath);
                }
                // Generated text may quote example paths (`/path/to/my/files` in a C
                // header's comment); one that exists here is what the script found.
                if names_existing_system_path(t) {
                    return Err(Uncacheable::BuildScriptProbesSystem);
                }
            }
            entry_files.push(EntryFile {
                role: "out".to_string(),
                name: rel.clone(),
                template: text.as_deref().is_some_and(PathMap::has_token),
                executable: *executable,
            });
            texts.push(text);
        }
        let sources: Vec<(EntrySource<'_>, bool)> = files
            .iter()
            .zip(&texts)
            .map(|((_, path, _, _), text)| match text {
                Some(t) => (EntrySource::Bytes(t.as_bytes()), false),
                None => (EntrySource::Path(path), true),
            })
            .collect();
        let stdout = self
            .pm
            .normalize_text(&String::from_utf8_lossy(&ran.stdout));
        let stderr = self
            .pm
            .normalize_text(&String::from_utf8_lossy(&ran.stderr));
        let meta = EntryMeta {
            format_version: 1,
            key: key.to_hex(),
            files: entry_files,
            stdout,
            stderr,
            ansi: false,
            compile_ms: self.script_ms,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let needles: Vec<Vec<u8>> = roots.iter().map(|r| r.as_bytes().to_vec()).collect();
        match self.store.put_entry(key, &meta, &sources, &needles) {
            Ok(o) if o.needle_found.is_some() => Err(Uncacheable::EmbedsAbsolutePath),
            Ok(o) => Ok(o.bytes),
            Err(e) => {
                self.warn(&e);
                Err(Uncacheable::MissingOutput)
            }
        }
    }

    fn event(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        key: Option<Key>,
        bytes: u64,
        l1: Option<Key>,
    ) -> UnitEvent {
        let env = &self.cfg.env;
        let total = self.started.elapsed().as_millis() as u64;
        let crate_name = self
            .real
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .unwrap_or("build_script_build")
            .to_string();
        UnitEvent {
            format_version: 1,
            unit: UnitRecord {
                package: env.get("CARGO_PKG_NAME").unwrap_or("").to_string(),
                version: env.get("CARGO_PKG_VERSION").unwrap_or("").to_string(),
                crate_name,
                kind: "build-script-run".to_string(),
                target: None,
                outcome,
                reason,
                compile_ms: (outcome != Outcome::Hit).then_some(self.script_ms),
                restore_ms: None,
                key: key.map(|k| k.to_hex()),
                tier: None,
                non_incremental_restore: false,
                seeded: false,
            },
            overhead_ms: total.saturating_sub(self.script_ms),
            bytes,
            bytes_down: self.bytes_down,
            bytes_up: 0,
            upk: None,
            spk: None,
            l1: l1.map(|k| k.to_hex()),
            upload: false,
            place: None,
            warnings: self.warnings.clone(),
        }
    }

    fn finish_event(&self, ev: UnitEvent) {
        match &self.cfg.events {
            Some(path) => {
                let _ = append_event(path, &ev);
            }
            None => warn_once_per_build(&ev.warnings),
        }
    }
}

fn tree_reason(e: TreeError) -> Uncacheable {
    match e {
        TreeError::TooManyFiles => Uncacheable::BuildScriptTooManyFiles,
        TreeError::Io(_) => Uncacheable::UnreadableInput,
    }
}

/// Every file under `OUT_DIR`: (relative name, path, length, executable), sorted.
fn out_dir_files(out_dir: &Path) -> Result<Vec<(String, PathBuf, u64, bool)>, Uncacheable> {
    let mut out = Vec::new();
    let mut stack = vec![out_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = fs::read_dir(&dir).map_err(|_| Uncacheable::MissingOutput)?;
        for e in rd {
            let e = e.map_err(|_| Uncacheable::MissingOutput)?;
            let path = e.path();
            let ft = e.file_type().map_err(|_| Uncacheable::MissingOutput)?;
            if ft.is_dir() {
                stack.push(path);
                continue;
            }
            if !ft.is_file() {
                return Err(Uncacheable::BuildScriptUnsupportedOutput);
            }
            let rel = path
                .strip_prefix(out_dir)
                .ok()
                .and_then(Path::to_str)
                .ok_or(Uncacheable::BuildScriptUnsupportedOutput)?
                .to_string();
            // Our own temp files from an interrupted restore are not outputs.
            if rel.contains(".xcache-tmp-") {
                continue;
            }
            let meta = e.metadata().map_err(|_| Uncacheable::MissingOutput)?;
            out.push((
                rel,
                path,
                meta.len(),
                meta.permissions().mode() & 0o111 != 0,
            ));
            if out.len() > MAX_FILES {
                return Err(Uncacheable::BuildScriptTooManyFiles);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// True when `text` (with the known roots already tokenized) holds an absolute path of
/// at least two components (`/usr/lib`) where a path can start: at the beginning, or
/// after whitespace, `=`, `:`, `,`, `;`, a quote or a bracket. `//` comments and URLs do
/// not match.
pub(super) fn names_system_path(text: &str) -> bool {
    system_paths(text).next().is_some()
}

/// True when `text` names an absolute path (see [`names_system_path`]) that exists on
/// this machine.
fn names_existing_system_path(text: &str) -> bool {
    system_paths(text).any(|p| Path::new(p.trim_end_matches(['.', ','])).exists())
}

/// The absolute paths of at least two components in `text`, each up to the next
/// whitespace, quote, bracket or separator.
fn system_paths(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let is_part = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'+');
    let ends = |c: u8| c.is_ascii_whitespace() || b"\"'`()<>[]{},;:=".contains(&c);
    memmem::find_iter(b, b"/").filter_map(move |i| {
        let starts = i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t' | b'\n' | b'=' | b':' | b',' | b';' | b'"' | b'\'' | b'(' | b'<'
            );
        if !starts {
            return None;
        }
        let rest = &b[i + 1..];
        let comp = rest.iter().take_while(|c| is_part(**c)).count();
        let two = comp > 0
            && rest.get(comp) == Some(&b'/')
            && rest.get(comp + 1).is_some_and(|c| is_part(*c));
        if !two {
            return None;
        }
        let len = b[i..].iter().take_while(|c| !ends(**c)).count();
        text.get(i..i + len)
    })
}

/// A relative path that stays inside the directory it is joined to.
fn is_relative_inside(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn create(path: &Path, executable: bool) -> io::Result<File> {
    let _ = fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o777 } else { 0o666 })
        .open(path)
}

fn write_new(path: &Path, executable: bool, bytes: &[u8]) -> io::Result<()> {
    create(path, executable)?.write_all(bytes)
}

/// Copies `from` to `to` as it comes, and returns a copy.
fn tee(mut from: impl Read, mut to: impl Write) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = to.write_all(&buf[..n]);
                let _ = to.flush();
                kept.extend_from_slice(&buf[..n]);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_paths_are_recognised() {
        assert!(names_system_path(
            "rustc-link-search=native=/usr/lib/x86_64"
        ));
        assert!(names_system_path("include=/opt/ssl/include"));
        assert!(!names_system_path(
            "rustc-link-search=native=@@xcache:target@@/debug/build/a-1/out"
        ));
        assert!(!names_system_path("// a comment\nlet x = 1 / 2;"));
        assert!(!names_system_path("see https://example.com/a/b"));
        assert!(!names_system_path("rustc-link-lib=static=foo"));
        // In generated text only a path that exists counts.
        assert!(!names_existing_system_path(
            " *   zstd -b1e3 -r /path/to/my/files -D /path/to/my/dictionary"
        ));
        assert!(
            names_existing_system_path("#include </usr/include/stdio.h>")
                == Path::new("/usr/include/stdio.h").exists()
        );
        assert!(names_existing_system_path(
            "let root = \"/tmp\"; let x = \"/proc/self\";"
        ));
    }
}
