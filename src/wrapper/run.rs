//! The wrapper's flow for one rustc invocation.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use super::linked::LinkPlan;
use super::remote_tier::{RemoteTier, remote_paths};
use super::restore::{replay_text, restore_entry};
use super::shim::install_shim;
use super::{
    Outcome, RUSTC_FAILED, Uncacheable, UnitEvent, UnitPlace, UnitRecord, Warning, append_event,
};
use crate::config::{Env, WrapperConfig};
use crate::errors::CacheError;
use crate::key::{
    CompilerId, CrateKind, DepInfo, InputDigest, Key, KeyEnv, PathMap, Root, RootKind,
    RustcInvocation, UnitIdentity, artifact_identity, compiler_id, content_identity, entry_key,
    hash_file, key_identity, l1_key, link_input_identity, linked_entry_key, parse_rustc_args,
    prediction_key, seed_key, write_artifact_identity,
};
use crate::store::{EntryFile, EntryMeta, EntrySource, LocalStore, Manifest, Variant, VariantEnv};

/// Runs one rustc invocation through the cache and returns the exit code to give cargo.
/// `rustc` is the compiler cargo asked for; `args` follow it.
pub fn run_wrapper(rustc: PathBuf, args: Vec<String>, env: Env, cwd: PathBuf) -> i32 {
    let inv = parse_rustc_args(&args);
    // Version queries, `--print`, probe compiles from stdin: straight through. So are
    // compiles started by build scripts (autocfg-style feature probes, which may fail on
    // purpose): cargo sets `CARGO_CFG_*` only for build-script runs, never for its own
    // rustc invocations.
    if inv.is_query || env.get("CARGO_CFG_TARGET_ARCH").is_some() {
        return passthrough(&rustc, &args);
    }
    let cfg = WrapperConfig::resolve(env, cwd);
    let mut unit = Unit::new(rustc, inv, cfg);
    unit.run()
}

fn passthrough(rustc: &Path, args: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let err = Command::new(rustc).args(args).exec();
    eprintln!("error: xcache: failed to run {}: {err}", rustc.display());
    1
}

struct Unit {
    /// cargo asked for `-C incremental` (even if `XCACHE_DROP_INCREMENTAL` removed it).
    asked_incremental: bool,
    rustc: PathBuf,
    inv: RustcInvocation,
    cfg: WrapperConfig,
    pm: PathMap,
    warnings: Vec<Warning>,
    started: Instant,
    started_at: SystemTime,
    rustc_ms: u64,
    remote: Option<RemoteTier>,
    bytes_down: u64,
    bytes_up: u64,
    compiler: Option<CompilerId>,
    l1: Option<Key>,
    /// For a unit that links and is keyed: what its link adds to the keys.
    link: Option<LinkPlan>,
    uploaded_later: bool,
}

/// Bytes stored, and the identity of each library artifact.
type Stored = (u64, Vec<(PathBuf, String)>);

struct Compiled {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Unit {
    fn new(rustc: PathBuf, mut inv: RustcInvocation, cfg: WrapperConfig) -> Unit {
        let asked_incremental = inv.incremental;
        if cfg.drop_incremental && inv.incremental {
            inv.drop_incremental();
        }
        let target_root = inv
            .out_dir
            .as_deref()
            .map(|d| target_root(&cfg.cwd.join(d)));
        let pm = PathMap::new(&cfg.cwd, target_root.as_deref(), cfg.cargo_home.as_deref());
        let remote = RemoteTier::new(&cfg);
        Unit {
            asked_incremental,
            rustc,
            inv,
            cfg,
            pm,
            warnings: Vec::new(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            rustc_ms: 0,
            remote,
            bytes_down: 0,
            bytes_up: 0,
            compiler: None,
            l1: None,
            link: None,
            uploaded_later: false,
        }
    }

    fn warn(&mut self, e: &CacheError) {
        self.warnings.push(Warning {
            code: e.code().to_string(),
            message: e.to_string(),
        });
    }

    fn run(&mut self) -> i32 {
        if let Some(message) = self.cfg.remote_error.clone() {
            self.warn(&CacheError::RemoteConfig(message));
        }
        let store = match (&self.cfg.store_dir, self.cfg.disabled) {
            (_, true) | (None, _) => None,
            (Some(dir), false) => match LocalStore::open(dir) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.warn(&e);
                    None
                }
            },
        };
        let compiler = match compiler_id(
            &self.rustc,
            store.as_ref().map(|s| s.compilers_dir()).as_deref(),
            self.cfg.rustup_toolchain.as_deref(),
            self.cfg.env.path_var().map(|p| p.as_os_str()),
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                self.warn(&e);
                None
            }
        };
        let mut reason = self.inv.uncacheable;
        if self.cfg.disabled && reason.is_none() {
            reason = Some(Uncacheable::Disabled);
        }
        // `cargo xcache warm` builds workspace packages from placeholder sources.
        if self.cfg.placeholder {
            reason = Some(Uncacheable::Placeholder);
        }
        // Keys are needed to cache the unit, or to identify it to its dependents
        // (proc-macros, dylibs); executables need neither. Without a store, a `.so` is
        // identified by its contents (the linker identity is remembered in the store).
        let needs_key = reason.is_none()
            || (self.linked_lib_output().is_some() && (store.is_some() || !self.inv.links()));
        let memo_dir = store.as_ref().map(|s| s.linkers_dir());
        let l1 = compiler.as_ref().filter(|_| needs_key).and_then(|c| {
            match self.l1(c, memo_dir.as_deref()) {
                Ok(k) => Some(k),
                Err(u) => {
                    reason.get_or_insert(u);
                    None
                }
            }
        });
        self.compiler = compiler;
        self.l1 = l1;
        // A key exists only with a compiler identity; a reason means no caching.
        let cacheable_store = store.filter(|_| reason.is_none() && l1.is_some());

        if let (Some(store), Some(l1)) = (&cacheable_store, &l1)
            && let Some(code) = self.try_hit(store, l1)
        {
            return code;
        }
        // An incremental unit was looked up as if it were not incremental (its key
        // leaves `-C incremental` out): a hit restores what a non-incremental build
        // stored. A miss compiles incrementally, as asked, and is never stored:
        // incremental outputs differ from build to build.
        if self.inv.incremental {
            reason.get_or_insert(Uncacheable::Incremental);
        }

        let t = Instant::now();
        let compiled = match self.compile() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: xcache: failed to run {}: {e}", self.rustc.display());
                return 1;
            }
        };
        self.rustc_ms = t.elapsed().as_millis() as u64;
        if compiled.code != 0 {
            if let Some(plan) = &self.link {
                plan.discard();
            }
            self.emit(Outcome::Error, Some(RUSTC_FAILED.to_string()), None, 0);
            return compiled.code;
        }

        // Identify the outputs by their inputs, so dependents can key on them.
        let mut bytes = 0;
        let mut entry = l1
            .as_ref()
            .and_then(|l1| self.entry_key_after_compile(l1, &mut reason));
        let mut identities: Vec<(PathBuf, String)> = Vec::new();
        if let (Some(store), Some(l1), Some((key, variant)), None) =
            (&cacheable_store, &l1, &mut entry, reason)
        {
            match self.store_entry(store, l1, key, variant, &compiled) {
                Ok(Ok((n, files))) => {
                    bytes = n;
                    identities = files;
                    if let Err(e) = store.add_variant(l1, variant.clone()) {
                        self.warn(&e);
                    }
                    self.upload(store, l1, key, variant);
                }
                Ok(Err(u)) => reason = Some(u),
                Err(e) => self.warn(&e),
            }
        }
        if let Some((key, _)) = &entry
            && let Some(so) = self.linked_lib_output()
        {
            identities.push((so, key_identity(key)));
        }
        self.write_identities(identities);
        self.install_shim(None);
        let outcome = if reason.is_some() {
            Outcome::Uncacheable
        } else {
            Outcome::Miss
        };
        let key = entry.map(|(k, _)| k);
        self.emit(outcome, reason.map(|r| r.code().to_string()), key, bytes);
        0
    }

    /// The first-level key. A unit that links identifies its link first (and keeps the
    /// plan for after the compile).
    fn l1(&mut self, compiler: &CompilerId, memo_dir: Option<&Path>) -> Result<Key, Uncacheable> {
        if self.inv.links() {
            let memo_dir = memo_dir.ok_or(Uncacheable::UnknownLinker)?;
            self.link = Some(LinkPlan::new(
                &self.inv, &self.cfg, compiler, &self.pm, memo_dir,
            )?);
        }
        let kenv = KeyEnv {
            path_map: &self.pm,
            compiler,
            vars: self.cfg.env.all(),
            cwd: &self.cfg.cwd,
            link: self.link.as_ref().map(|p| &p.key),
        };
        l1_key(&self.inv, &kenv).map(|k| k.l1)
    }

    /// Looks the unit up, locally then remotely, and restores it. `Some(exit code)` on
    /// a hit.
    fn try_hit(&mut self, store: &LocalStore, l1: &Key) -> Option<i32> {
        let out_dir = self.cfg.cwd.join(self.inv.out_dir.as_ref()?);
        let t = Instant::now();
        let (key, tier) = match self.lookup(&store.read_manifest(l1), l1) {
            Some(key) if store.entry_size(&key).is_some() => (key, "local"),
            _ => (self.fetch_remote(store, l1)?, "remote"),
        };
        match restore_entry(store, &key, &out_dir, &self.pm) {
            Ok(Some(restored)) => {
                let restore_ms = t.elapsed().as_millis() as u64;
                let mut ids: Vec<(PathBuf, String)> = restored
                    .files
                    .iter()
                    .filter(|(p, _)| is_lib_artifact(p))
                    .map(|(p, d)| (p.clone(), content_identity(d)))
                    .collect();
                if let Some(so) = self.linked_lib_output() {
                    ids.push((so, key_identity(&key)));
                }
                let exe_digest = self.build_script_output().and_then(|bin| {
                    restored
                        .files
                        .iter()
                        .find(|(p, _)| *p == bin)
                        .map(|(_, d)| *d)
                });
                self.install_shim(exe_digest);
                // Before replaying: the replayed metadata message lets cargo start
                // dependents, which read these.
                self.write_identities(ids);
                let want_ansi = self
                    .inv
                    .args
                    .iter()
                    .any(|a| a.starts_with("--json") && a.contains("diagnostic-rendered-ansi"));
                let m = &restored.meta;
                let out = replay_text(&m.stdout, &self.pm, m.ansi, want_ansi);
                let err = replay_text(&m.stderr, &self.pm, m.ansi, want_ansi);
                let _ = io::stdout().write_all(out.as_bytes());
                let _ = io::stderr().write_all(err.as_bytes());
                let mut ev = self.event(Outcome::Hit, None, Some(key), restored.bytes);
                ev.unit.compile_ms = Some(m.compile_ms);
                ev.unit.restore_ms = Some(restore_ms);
                ev.unit.tier = Some(tier.to_string());
                ev.unit.non_incremental_restore = self.inv.incremental;
                self.finish_event(ev);
                Some(0)
            }
            Ok(None) => None,
            Err(e) => {
                self.warn(&e);
                None
            }
        }
    }

    /// Looks the unit up in the remote tier and downloads its entry into the local
    /// store. Returns the entry key on success.
    fn fetch_remote(&mut self, store: &LocalStore, l1: &Key) -> Option<Key> {
        // Prefetch already asked the remote's index about this unit, and it had nothing.
        if let (Some(list), Some(upk)) = (&self.cfg.prefetch_absent, self.prediction_key())
            && std::fs::read_to_string(list).is_ok_and(|t| t.lines().any(|l| l == upk.to_hex()))
        {
            return None;
        }
        let mut tier = self.remote.take()?;
        let result = tier.fetch(store, l1, |m| self.lookup(m, l1));
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

    /// Uploads a stored entry and its input set to the remote tier (or leaves that to
    /// `cargo xcache build`, which uploads in the background).
    fn upload(&mut self, store: &LocalStore, l1: &Key, key: &Key, variant: &Variant) {
        if self.cfg.defer_upload && self.cfg.events.is_some() {
            self.uploaded_later = self.remote.as_ref().is_some_and(|r| !r.read_only);
            return;
        }
        let Some(mut tier) = self.remote.take() else {
            return;
        };
        if !tier.read_only {
            let result = (|| -> Result<u64, crate::errors::CacheError> {
                let Some(remote) = tier.usable()? else {
                    return Ok(0);
                };
                let (manifest_path, entry_path) = remote_paths(l1, key);
                let n = remote.put_file(&entry_path, &store.entry_path(key))?;
                let mut manifest: Manifest = remote
                    .get_bytes(&manifest_path)?
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                manifest.add(variant.clone());
                let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
                remote.put_bytes(&manifest_path, bytes)?;
                Ok(n)
            })();
            match result {
                Ok(n) => self.bytes_up += n,
                Err(e) => {
                    let e = tier.fail(e);
                    self.warn(&e);
                }
            }
        }
        self.remote = Some(tier);
    }

    /// Finds the entry key whose recorded inputs match the files on disk now.
    fn lookup(&self, manifest: &Manifest, l1: &Key) -> Option<Key> {
        let mut digests: HashMap<String, Option<String>> = HashMap::new();
        'variants: for v in &manifest.variants {
            let env = self.current_env(v.env.iter().map(|e| e.name.as_str()));
            for (e, (_, now)) in v.env.iter().zip(&env) {
                if &e.value != now {
                    continue 'variants;
                }
            }
            for input in &v.inputs {
                let now = digests.entry(input.path.clone()).or_insert_with(|| {
                    let real = self.pm.expand_path(&input.path);
                    if PathMap::has_token(&real.to_string_lossy()) {
                        return None;
                    }
                    hash_file(&real).ok().map(|k| k.to_hex())
                });
                if now.as_deref() != Some(input.digest.as_str()) {
                    continue 'variants;
                }
            }
            if self.link.is_none() {
                return Some(entry_key(l1, &v.inputs, &env));
            }
            // Files the link read: rlibs by their identity sidecars, places the
            // linker looked in vain must still hold nothing.
            for input in &v.link_inputs {
                let real = self.pm.expand_path(&input.path);
                if PathMap::has_token(&real.to_string_lossy()) {
                    continue 'variants;
                }
                if link_input_identity(&real).ok().as_deref() != Some(input.digest.as_str()) {
                    continue 'variants;
                }
            }
            return Some(linked_entry_key(l1, &v.inputs, &env, &v.link_inputs));
        }
        None
    }

    /// `(name, normalized current value)` for each variable.
    fn current_env<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Vec<(String, Option<String>)> {
        names
            .map(|n| {
                // A root an entry is bound to (`store_entry`): its real path, as is.
                if let Some(kind) = RootKind::from_token(n) {
                    return (n.to_string(), self.pm.real_of(kind).map(str::to_string));
                }
                let v = self.cfg.env.all().get(n).map(|v| self.pm.normalize_text(v));
                (n.to_string(), v)
            })
            .collect()
    }

    /// Runs rustc, passing its output through as it comes (cargo starts dependents as
    /// soon as it sees the metadata artifact message) and keeping a copy.
    fn compile(&self) -> io::Result<Compiled> {
        let print_link = self.link.as_ref().map(LinkPlan::rustc_args);
        let mut child = Command::new(&self.rustc)
            .args(self.pm.remap_args())
            .args(&self.inv.args)
            .args(print_link.into_iter().flatten())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut child_out = child.stdout.take().expect("piped");
        let child_err = child.stderr.take().expect("piped");
        let out_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = child_out.read_to_end(&mut buf);
            buf
        });
        let mut stderr = Vec::new();
        let mut reader = BufReader::new(child_err);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let mut e = io::stderr().lock();
            let _ = e.write_all(&line);
            let _ = e.flush();
            stderr.extend_from_slice(&line);
        }
        let status = child.wait()?;
        let stdout = out_thread.join().unwrap_or_default();
        let _ = io::stdout().write_all(&stdout);
        Ok(Compiled {
            code: status.code().unwrap_or(101),
            stdout,
            stderr,
        })
    }

    /// Reads the dep-info and computes the entry key with the manifest variant. Sets
    /// `reason` when the unit turns out uncacheable.
    fn entry_key_after_compile(
        &self,
        l1: &Key,
        reason: &mut Option<Uncacheable>,
    ) -> Option<(Key, Variant)> {
        let d_path = self.cfg.cwd.join(self.inv.depinfo_path()?);
        let text = match std::fs::read_to_string(&d_path) {
            Ok(t) => t,
            Err(_) => {
                reason.get_or_insert(Uncacheable::MissingOutput);
                return None;
            }
        };
        let link_inputs = match &self.link {
            None => None,
            Some(plan) => {
                match plan.inputs_after_link(&self.inv, &self.cfg.cwd, &self.pm, self.started_at) {
                    Ok(inputs) => Some(inputs),
                    Err(u) => {
                        reason.get_or_insert(u);
                        return None;
                    }
                }
            }
        };
        let info = DepInfo::parse(&text, &self.cfg.cwd);
        let mut inputs = Vec::with_capacity(info.files.len());
        for f in &info.files {
            let changed = std::fs::metadata(f)
                .and_then(|m| m.modified())
                .map(|m| m > self.started_at)
                .unwrap_or(true);
            if changed {
                reason.get_or_insert(Uncacheable::InputChangedDuringBuild);
            }
            let Ok(digest) = hash_file(f) else {
                reason.get_or_insert(Uncacheable::UnreadableInput);
                return None;
            };
            inputs.push(InputDigest {
                path: self.pm.normalize_path(f),
                digest: digest.to_hex(),
            });
        }
        inputs.sort();
        let env: Vec<(String, Option<String>)> = info
            .env
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.value.as_deref().map(|v| self.pm.normalize_text(v)),
                )
            })
            .collect();
        let key = match &link_inputs {
            Some(link) => linked_entry_key(l1, &inputs, &env, link),
            None => entry_key(l1, &inputs, &env),
        };
        let variant = Variant {
            inputs,
            link_inputs: link_inputs.unwrap_or_default(),
            env: env
                .into_iter()
                .map(|(name, value)| VariantEnv { name, value })
                .collect(),
            entry: key.to_hex(),
        };
        Some((key, variant))
    }

    /// Stores the outputs. `Ok(Err(reason))` when they turn out not to be cacheable.
    ///
    /// An output that still holds one of this machine's roots after remapping (a crate
    /// that embeds `env!("CARGO_MANIFEST_DIR")`) is right only where that root has the
    /// same real path. Such an entry is *bound* to the root: the root's token joins the
    /// variant's environment with the real path as its value, so the entry key covers
    /// the path and a lookup matches only where the root is the same (a CI runner or a
    /// Docker image with a fixed `CARGO_HOME`). `key` and `variant` are updated.
    fn store_entry(
        &self,
        store: &LocalStore,
        l1: &Key,
        key: &mut Key,
        variant: &mut Variant,
        compiled: &Compiled,
    ) -> Result<Result<Stored, Uncacheable>, CacheError> {
        let mut outputs: Vec<(&'static str, PathBuf, bool)> = self
            .inv
            .outputs()
            .into_iter()
            .map(|o| (o.role, self.cfg.cwd.join(o.path), o.executable))
            .collect();
        // The `.rmeta` goes first: the `.rlib` begins with the same metadata, which the
        // compressor then finds close behind (see `write_entry`).
        outputs.sort_by_key(|(role, _, _)| *role != "rmeta");
        if outputs.iter().any(|(_, p, _)| !p.is_file()) {
            return Ok(Err(Uncacheable::MissingOutput));
        }
        let mut depinfo_text = Vec::new();
        let mut files = Vec::new();
        for (role, path, executable) in &outputs {
            let template = *role == "dep-info";
            if template {
                let text = std::fs::read_to_string(path).map_err(|source| CacheError::Read {
                    path: path.clone(),
                    source,
                })?;
                depinfo_text = self.pm.normalize_text(&text).into_bytes();
            }
            files.push(EntryFile {
                role: role.to_string(),
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                template,
                executable: *executable,
            });
        }
        let sources: Vec<(EntrySource<'_>, bool)> = outputs
            .iter()
            .map(|(role, path, _)| {
                if *role == "dep-info" {
                    (EntrySource::Bytes(&depinfo_text), false)
                } else {
                    (EntrySource::Path(path), true)
                }
            })
            .collect();
        let ansi = self
            .inv
            .args
            .iter()
            .any(|a| a.starts_with("--json") && a.contains("diagnostic-rendered-ansi"));
        let mut meta = EntryMeta {
            format_version: 1,
            key: key.to_hex(),
            files,
            stdout: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&compiled.stdout)),
            stderr: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&compiled.stderr)),
            ansi,
            compile_ms: self.rustc_ms,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        // An artifact that still holds one of this machine's roots after remapping
        // would carry that path to every other machine: it is bound to the root.
        let mut unbound: Vec<&Root> = self
            .pm
            .roots()
            .iter()
            .filter(|r| !variant.env.iter().any(|e| e.name == r.kind.token()))
            .collect();
        let outcome = loop {
            let needles: Vec<Vec<u8>> =
                unbound.iter().map(|r| r.real.as_bytes().to_vec()).collect();
            let outcome = store.put_entry(key, &meta, &sources, &needles)?;
            let Some(found) = outcome.needle_found else {
                break outcome;
            };
            let root = unbound.remove(found);
            variant.env.push(VariantEnv {
                name: root.kind.token().to_string(),
                value: Some(root.real.clone()),
            });
            let env: Vec<(String, Option<String>)> = variant
                .env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect();
            *key = match &self.link {
                Some(_) => linked_entry_key(l1, &variant.inputs, &env, &variant.link_inputs),
                None => entry_key(l1, &variant.inputs, &env),
            };
            variant.entry = key.to_hex();
            meta.key = key.to_hex();
        };
        let ids = outputs
            .iter()
            .zip(&outcome.digests)
            .filter(|((_, p, _), _)| is_lib_artifact(p))
            .map(|((_, p, _), d)| (p.clone(), content_identity(d)))
            .collect();
        Ok(Ok((outcome.bytes, ids)))
    }

    /// The `.so` a proc-macro or dylib unit links, identified by its entry key.
    fn linked_lib_output(&self) -> Option<PathBuf> {
        if !matches!(self.inv.kind(), CrateKind::ProcMacro | CrateKind::Dylib) || !self.inv.links()
        {
            return None;
        }
        let so = self.inv.outputs().into_iter().next()?;
        Some(self.cfg.cwd.join(so.path))
    }

    /// The executable of a build-script unit that links.
    fn build_script_output(&self) -> Option<PathBuf> {
        if self.inv.kind() != CrateKind::BuildScript || !self.inv.links() {
            return None;
        }
        let bin = self.inv.outputs().into_iter().next()?;
        Some(self.cfg.cwd.join(bin.path))
    }

    /// Puts the shim that sends the script's runs through the cache in front of a
    /// build-script executable (`super::shim`), when runs are cached. The build scripts
    /// of `cargo xcache warm`'s placeholder packages are not: their runs are never stored.
    fn install_shim(&mut self, digest: Option<Key>) {
        if !self.cfg.build_runs
            || self.cfg.disabled
            || self.cfg.placeholder
            || self.cfg.store_dir.is_none()
        {
            return;
        }
        let Some(bin) = self.build_script_output() else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        if let Err(source) = install_shim(&bin, &exe, digest) {
            self.warn(&CacheError::Write { path: bin, source });
        }
    }

    /// Writes the identity sidecars of this unit's artifacts.
    fn write_identities(&mut self, ids: Vec<(PathBuf, String)>) {
        for (p, id) in ids {
            if let Err(source) = write_artifact_identity(&p, &id) {
                let e = CacheError::Write { path: p, source };
                self.warn(&e);
            }
        }
    }

    fn event(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        key: Option<Key>,
        bytes: u64,
    ) -> UnitEvent {
        let env = &self.cfg.env;
        let total = self.started.elapsed().as_millis() as u64;
        UnitEvent {
            format_version: 1,
            unit: UnitRecord {
                package: env.get("CARGO_PKG_NAME").unwrap_or("").to_string(),
                version: env.get("CARGO_PKG_VERSION").unwrap_or("").to_string(),
                crate_name: self.inv.crate_name.clone().unwrap_or_default(),
                kind: self.inv.kind().as_str().to_string(),
                target: self.inv.target.clone(),
                outcome,
                reason,
                compile_ms: (outcome != Outcome::Hit).then_some(self.rustc_ms),
                restore_ms: None,
                key: key.map(|k| k.to_hex()),
                tier: None,
                non_incremental_restore: false,
                seeded: false,
            },
            overhead_ms: total.saturating_sub(self.rustc_ms),
            bytes,
            bytes_down: self.bytes_down,
            bytes_up: self.bytes_up,
            upk: self.prediction_key().map(|k| k.to_hex()),
            spk: self.prediction_keys().map(|(_, k)| k.to_hex()),
            l1: self.l1.map(|k| k.to_hex()),
            upload: self.uploaded_later,
            place: self.place(),
            warnings: self.warnings.clone(),
        }
    }

    /// Where cargo keeps this unit, when cargo named its outputs (`-C extra-filename`).
    fn place(&self) -> Option<UnitPlace> {
        let env = &self.cfg.env;
        let out_dir = self.cfg.cwd.join(self.inv.out_dir.as_ref()?);
        let root = target_root(&out_dir);
        let rel = out_dir.strip_prefix(&root).ok()?.to_str()?.to_string();
        let hash = self.inv.extra_filename.strip_prefix('-')?;
        let unit_dir = format!("{}-{hash}", env.get("CARGO_PKG_NAME")?);
        let run_dir = env.get("OUT_DIR").and_then(|d| {
            let d = Path::new(d);
            (d.file_name()? == "out")
                .then(|| d.parent()?.file_name()?.to_str().map(str::to_string))
                .flatten()
        });
        let mut deps = Vec::new();
        for ext in &self.inv.externs {
            let Some(p) = &ext.path else { continue };
            let p = self.cfg.cwd.join(p);
            if p.starts_with(&root) {
                deps.push((self.pm.normalize_path(&p), artifact_identity(&p).ok()?));
            }
        }
        Some(UnitPlace {
            target_root: root,
            out_dir: rel,
            unit_dir,
            run_dir,
            cwd: self.cfg.cwd.clone(),
            manifest_dir: PathBuf::from(env.get("CARGO_MANIFEST_DIR")?),
            deps,
            linker: self.link.as_ref().map(|l| l.linker_used(&self.inv)),
            incremental: self.asked_incremental,
        })
    }

    /// The unit's prediction and seed keys (see `key::prediction_key`, `key::seed_key`).
    fn prediction_keys(&self) -> Option<(Key, Key)> {
        let kind = match self.inv.kind() {
            CrateKind::Lib => "lib",
            CrateKind::ProcMacro => "proc-macro",
            CrateKind::Bin => "bin",
            CrateKind::BuildScript => "build-script",
            _ => return None,
        };
        let compiler = self.compiler.as_ref()?;
        let env = &self.cfg.env;
        let manifest_dir = self
            .pm
            .normalize_path(Path::new(env.get("CARGO_MANIFEST_DIR")?));
        let features = self.inv.features();
        let id = UnitIdentity {
            package: env.get("CARGO_PKG_NAME")?,
            version: env.get("CARGO_PKG_VERSION")?,
            manifest_dir: &manifest_dir,
            crate_name: self.inv.crate_name.as_deref()?,
            kind,
            features: &features,
            target: self.inv.target.as_deref().unwrap_or("host"),
            profile_dir: &self.inv.profile_dir()?,
            compiler: &compiler.key,
        };
        Some((prediction_key(&id), seed_key(&id)))
    }

    fn prediction_key(&self) -> Option<Key> {
        self.prediction_keys().map(|(k, _)| k)
    }

    fn emit(&self, outcome: Outcome, reason: Option<String>, key: Option<Key>, bytes: u64) {
        let ev = self.event(outcome, reason, key, bytes);
        self.finish_event(ev);
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

/// `.rlib` and `.rmeta` files: what dependents name in `--extern`.
fn is_lib_artifact(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("rlib" | "rmeta")
    )
}

/// The target (build) directory an output directory belongs to: the nearest ancestor
/// holding cargo's `CACHEDIR.TAG`, else what cargo's layout says: two levels up from
/// `<target>/<profile>/deps`, three from `<target>/<profile>/build/<unit>`.
///
/// With `--target`, cargo tags `<target>/<triple>` as well as `<target>`: the outer
/// one is the root, so that a unit's paths are relative to the directory the front-end
/// plans (and plants) in.
pub(super) fn target_root(out_dir: &Path) -> PathBuf {
    let tagged = |d: &Path| d.join("CACHEDIR.TAG").is_file();
    for dir in out_dir.ancestors().take(5) {
        if tagged(dir) {
            return match dir.parent() {
                Some(up) if tagged(up) => up.to_path_buf(),
                _ => dir.to_path_buf(),
            };
        }
    }
    let in_build = out_dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "build");
    let up = if in_build { 3 } else { 2 };
    out_dir.ancestors().nth(up).unwrap_or(out_dir).to_path_buf()
}

/// Drop-in mode has no front-end to gather warnings: print each code once per cargo
/// process, using a marker file named for cargo's PID.
pub(super) fn warn_once_per_build(warnings: &[Warning]) {
    let ppid = std::os::unix::process::parent_id();
    for w in warnings {
        let marker = std::env::temp_dir().join(format!("xcache-warned-{ppid}-{}", w.code));
        let first = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            eprintln!(
                "warning: xcache: {} [{}]; compiling without the cache",
                w.message, w.code
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_root_follows_cargo_layout_without_a_tag() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("no-tag-here/target");
        assert_eq!(target_root(&t.join("debug/deps")), t);
        assert_eq!(target_root(&t.join("debug/build/foo-0123")), t);
        std::fs::create_dir_all(t.join("x86_64-unknown-linux-gnu/debug/deps")).unwrap();
        std::fs::write(
            t.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/deps")),
            t
        );
        // Cargo tags the triple's directory too.
        std::fs::write(
            t.join("x86_64-unknown-linux-gnu/CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/deps")),
            t
        );
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/build/foo-0123")),
            t
        );
    }
}
