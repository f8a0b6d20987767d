//! The one lifecycle of a cached unit, whatever it is — a rustc invocation or a
//! build-script run. Main function: [`run_cached`]; a kind of unit plugs in through
//! [`Cached`].
//!
//! In order: a reason known before anything runs; the first-level key; a lookup (every
//! recorded variant judged by `crate::judge`, locally, then in the remote tier); a
//! restore and a replay; or else the real run, observed (`crate::observe`), its inputs
//! and outputs, the entry stored (bound to any machine root its outputs name), the
//! variant recorded; and one event. Each step exists once, here.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::background::{self, Pending, Release, Stamps};
use super::event::CpuTimes;
use super::remote_tier::{RemoteTier, remote_paths};
use super::restore::{RestoreFilter, Restored, restore_entry};
use super::{
    HitVerdict, Outcome, StartEvent, UnitEvent, UnitRecord, Verified, Warning, append_event,
};
use crate::config::{Env, WrapperConfig};
use crate::errors::CacheError;
use crate::judge::{EnvNow, Here, Judge, Mode};
use crate::key::{
    CompilerId, Input, InputKind, Key, PathMap, Root, RootKind, entry_key, host_cpu,
    normalize_inputs, without_roots,
};
use crate::observe::Observer;
use crate::reason::Uncacheable;
use crate::store::{
    BoundBy, EntryFile, EntryMeta, EntrySource, LocalStore, Manifest, PutOutcome, Variant,
};

/// What one run of the real thing did.
pub(super) struct Ran {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The observer's record, when the run was observed.
    pub trace: Option<crate::observe::Trace>,
}

/// One file to store.
pub(super) struct OutFile {
    pub role: String,
    /// Where it is restored, relative to the unit's restore directory.
    pub name: String,
    pub executable: bool,
    /// May be held in the local store by reference, as the object of its digest
    /// (`store::objects`: a library's `.rlib` by hard link, everything else copied, so
    /// a program a user strips or patches where it is leaves the store as it was): a
    /// compiler's output, and a build-script run's large files that are no programs
    /// (`store::objects::OBJECT_MIN_LEN`; its small files stay in the entry).
    pub shared: bool,
    pub source: OutSource,
}

pub(super) enum OutSource {
    /// The file's bytes, scanned for machine roots while stored.
    File(PathBuf),
    /// Text with the roots replaced by tokens (a template if it holds one).
    Text(String),
}

/// The state every kind of unit shares: configuration, roots, store, remote tier,
/// warnings and time.
pub(super) struct Cx {
    pub cfg: WrapperConfig,
    pub pm: PathMap,
    pub store: Option<LocalStore>,
    pub remote: Option<RemoteTier>,
    pub warnings: Vec<Warning>,
    pub started: Instant,
    /// When the run started (for build scripts, from the file clock: [`Cx::with_file_clock`]): an
    /// input modified after it may not be what was read.
    pub started_at: SystemTime,
    pub run_ms: u64,
    /// What made the unit uncacheable, when one thing did (`UnitRecord::detail`).
    pub detail: Option<String>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// The entry was stored locally and the front-end uploads it.
    pub upload_later: bool,
    /// The compiler that decides what `-C target-cpu=native` means.
    pub compiler: Option<(PathBuf, CompilerId)>,
    host_cpu: std::sync::OnceLock<Option<String>>,
    /// Milliseconds of cache work by part (`UnitRecord::overhead`).
    pub phases: BTreeMap<&'static str, u64>,
    /// Time spent in [`Cx::phase`] so far, nested parts included (each part counts only
    /// its own time: an outer one leaves out what its inner ones counted).
    phase_total: Duration,
    /// This process finishes the unit's cache work after cargo was let go
    /// (`background`).
    pub background: Option<Pending>,
    /// The CPU times of the process that let cargo go, when this is its background copy
    /// (whose own count starts from zero).
    cpu_before_fork: CpuTimes,
    /// CPU time of the compile or run itself (`UnitEvent::compile_cpu_ms`).
    compile_cpu_ms: u64,
    /// The remote's manifest of the unit, when the lookup read it (see
    /// [`Cx::rooted_key`]).
    remote_manifest: Option<Manifest>,
}

impl Cx {
    pub fn new(cfg: WrapperConfig, pm: PathMap) -> Cx {
        let remote = RemoteTier::new(&cfg);
        Cx {
            cfg,
            pm,
            store: None,
            remote,
            warnings: Vec::new(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            run_ms: 0,
            detail: None,
            bytes_down: 0,
            bytes_up: 0,
            upload_later: false,
            compiler: None,
            host_cpu: std::sync::OnceLock::new(),
            phases: BTreeMap::new(),
            phase_total: Duration::ZERO,
            background: None,
            cpu_before_fork: CpuTimes::default(),
            compile_cpu_ms: 0,
            remote_manifest: None,
        }
    }

    /// Goes on as the background copy of the wrapper: the remote tier starts again
    /// (an I/O runtime the parent made is not the child's to use).
    fn enter_background(&mut self, pending: Pending) {
        if let Some(tier) = self.remote.take() {
            std::mem::forget(tier);
            self.remote = RemoteTier::new(&self.cfg);
        }
        self.cpu_before_fork = pending.cpu_at_fork;
        self.background = Some(pending);
    }

    /// Runs `f`, adding its time to the part `name` of the unit's cache work, less the
    /// time of the parts `f` runs in turn.
    pub fn phase<T>(&mut self, name: &'static str, f: impl FnOnce(&mut Cx) -> T) -> T {
        let (t, before) = (Instant::now(), self.phase_total);
        let out = f(self);
        let elapsed = t.elapsed();
        let own = elapsed.saturating_sub(self.phase_total - before);
        *self.phases.entry(name).or_default() += own.as_millis() as u64;
        self.phase_total = before + elapsed;
        out
    }

    /// Takes the start from the clock file times come from. The kernel stamps a file
    /// from its coarse clock, which lags the precise one by up to a tick (4-10 ms): a file
    /// a build script writes at once could look older than a precise start. A file
    /// stamped in the start's own tick counts as written during the run (only the run is
    /// lost), one written in an earlier tick before it. (Not for compiles: cargo starts a
    /// unit the moment its dependencies are written, and their files are inputs.)
    pub fn with_file_clock(mut self) -> Cx {
        use rustix::time::{ClockId, clock_gettime};
        let t = clock_gettime(ClockId::RealtimeCoarse);
        let coarse = u64::try_from(t.tv_sec)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::new(s, t.tv_nsec as u32));
        // `m > started_at` is then `m >= the tick the run started in`.
        if let Some(c) = coarse.and_then(|c| c.checked_sub(Duration::from_nanos(1))) {
            self.started_at = c.min(self.started_at);
        }
        self
    }

    /// Records a cache problem (once per code); the unit is compiled regardless.
    pub fn warn(&mut self, e: &CacheError) {
        if !self.warnings.iter().any(|w| w.code == e.code()) {
            self.warnings.push(Warning::from(e));
        }
    }

    fn open_store(&mut self) {
        let Some(dir) = self.cfg.store_dir.clone().filter(|_| !self.cfg.disabled) else {
            return;
        };
        match LocalStore::open(&dir) {
            Ok(s) => self.store = Some(s),
            Err(e) => self.warn(&e),
        }
    }

    /// What `native` means on this host, for the compiler of this unit.
    pub fn host_cpu(&self) -> Option<String> {
        self.host_cpu
            .get_or_init(|| {
                let (rustc, id) = self.compiler.as_ref()?;
                let memo = self.store.as_ref().and_then(LocalStore::compilers_dir);
                host_cpu(rustc, &id.key, memo.as_deref())
            })
            .clone()
    }

    /// A [`InputKind::HostCpu`] input for this host, or why the unit is not cached.
    pub fn host_cpu_input(&self) -> Result<Input, Uncacheable> {
        self.host_cpu()
            .map(|s| Input::new(InputKind::HostCpu, "", s))
            .ok_or(Uncacheable::UnreadableInput)
    }

    /// An observer for the real run, its record in the store's scratch directory.
    pub fn observer(&mut self) -> Result<Observer, Uncacheable> {
        self.store.as_ref().ok_or(Uncacheable::Unobserved)?;
        Observer::new().map_err(|source| {
            let e = CacheError::Write {
                path: crate::private_dir::private_dir().unwrap_or_default(),
                source,
            };
            self.warn(&e);
            Uncacheable::Unobserved
        })
    }

    /// The variant of `manifest` that holds here now, newest first: its entry key,
    /// recomputed from what the judge found.
    /// The one judge, asked about this unit's place.
    fn judge(&self) -> Judge<'_> {
        Judge::new(Here {
            pm: self.pm.clone(),
            env: Box::new(|name: &str| match self.cfg.env.all().get(name) {
                Some(v) => EnvNow::Set(v.clone()),
                None => EnvNow::Unset,
            }),
            env_names: Box::new(|| Some(self.cfg.env.all().keys().cloned().collect())),
            host_cpu: Box::new(|| self.host_cpu()),
            linker: Box::new(|_| None),
            mode: Mode::Exact,
        })
    }

    fn judge_variants(&self, manifest: &Manifest, l1: &Key, stored_only: bool) -> Vec<Key> {
        let judge = self.judge();
        manifest
            .variants
            .iter()
            .filter_map(|v| {
                if judge.check(&v.inputs).is_err() {
                    return None;
                }
                let key = entry_key(l1, &v.inputs);
                let present = self
                    .store
                    .as_ref()
                    .and_then(|s| s.entry_size(&key))
                    .is_some();
                (!stored_only || present).then_some(key)
            })
            .collect()
    }

    /// Looks `l1` up: the entries whose variants hold here, newest first, locally; else
    /// the one the remote tier has. Each with its tier.
    fn lookup(&mut self, l1: &Key, remote_pick: bool) -> Vec<(Key, &'static str)> {
        let Some(store) = self.store.clone() else {
            return Vec::new();
        };
        let local = self.judge_variants(&store.read_manifest(l1), l1, true);
        if !local.is_empty() || !remote_pick {
            return local.into_iter().map(|k| (k, "local")).collect();
        }
        let Some(mut tier) = self.remote.take() else {
            return Vec::new();
        };
        let mut seen = None;
        let result = tier.fetch(&store, l1, |m| {
            seen = Some(m.clone());
            self.judge_variants(m, l1, false).into_iter().next()
        });
        self.remote_manifest = seen;
        self.remote = Some(tier);
        match result {
            Ok(Some((key, n))) => {
                self.bytes_down += n;
                vec![(key, "remote")]
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                self.warn(&e);
                Vec::new()
            }
        }
    }

    /// Stores an entry of `files` under the key of `l1` and `inputs`, records the
    /// variant, and uploads it (or leaves that to the front-end). An output that still
    /// holds one of this machine's roots after remapping is right only where that root
    /// has the same real path: the entry is *bound* to the root (a [`InputKind::Root`]
    /// input), and the key covers it. Returns the key, the put's outcome and the inputs.
    fn store_entry(
        &mut self,
        l1: &Key,
        mut inputs: Vec<Input>,
        files: &[OutFile],
        ran: &Ran,
        ansi: bool,
        checked: Vec<BoundBy>,
    ) -> Result<Option<(Key, PutOutcome)>, CacheError> {
        let Some(store) = self.store.clone() else {
            return Err(CacheError::Write {
                path: PathBuf::new(),
                source: io::Error::other("no store"),
            });
        };
        let entry_files: Vec<EntryFile> = files
            .iter()
            .map(|f| EntryFile {
                role: f.role.clone(),
                name: f.name.clone(),
                template: matches!(&f.source, OutSource::Text(t) if PathMap::has_token(t)),
                executable: f.executable,
                object: None,
            })
            .collect();
        // Thin when nothing leaves this machine at once: a library's `.rlib` and
        // `.rmeta` and a proc-macro become the store's objects of their digests (the
        // `.rlib` by hard link, the others copied) instead of being compressed into the
        // entry; a restore links the `.rlib` beside its `.rmeta` and copies the others
        // (their times must be the restore's, and they must stay writable). An upload
        // needs the entry whole, so a build with a remote it writes stores it whole now;
        // anything that uploads a thin entry later makes it whole first
        // (`LocalStore::ensure_whole`).
        let thin = self.remote.as_ref().is_none_or(|r| r.read_only);
        let sources: Vec<(EntrySource<'_>, bool)> = files
            .iter()
            .map(|f| match &f.source {
                OutSource::Text(t) => (EntrySource::Bytes(t.as_bytes()), false),
                OutSource::File(p) if thin && f.shared => (EntrySource::Object(p), true),
                OutSource::File(p) => (EntrySource::Path(p), true),
            })
            .collect();
        let mut meta = EntryMeta {
            format_version: 1,
            key: String::new(),
            files: entry_files,
            stdout: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&ran.stdout)),
            stderr: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&ran.stderr)),
            ansi,
            compile_ms: self.run_ms,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let mut unbound: Vec<_> = self
            .pm
            .roots()
            .iter()
            .filter(|r| {
                !inputs
                    .iter()
                    .any(|i| i.kind == InputKind::Root && i.name == r.kind.token())
            })
            .cloned()
            .collect();
        // Roots bound by a check rather than an output (`count` 0: see `BoundBy`).
        let mut bound_by = checked;
        let (key, outcome) = loop {
            normalize_inputs(&mut inputs);
            let key = entry_key(l1, &inputs);
            meta.key = key.to_hex();
            let needles: Vec<Vec<u8>> =
                unbound.iter().map(|r| r.real.as_bytes().to_vec()).collect();
            let outcome = store.put_entry(&key, &meta, &sources, &needles)?;
            let Some(found) = outcome.needle_found else {
                break (key, outcome);
            };
            let root = unbound.remove(found);
            if let Some((file, count)) = outcome.needle_file {
                bound_by.push(BoundBy {
                    root: root.kind.token().to_string(),
                    file: files.get(file).map_or_else(String::new, |f| f.name.clone()),
                    count,
                    c_file_name: false,
                });
            }
            inputs.push(Input::new(InputKind::Root, root.kind.token(), root.real));
        };
        let variant = Variant {
            inputs,
            entry: key.to_hex(),
            bound_by,
        };
        // In the background: what was stored must be what cargo was handed. An entry
        // no variant names is never restored (`gc` takes it).
        if let Some(path) = self.background.as_ref().and_then(|b| b.stamps.changed()) {
            self.detail = Some(self.pm.normalize_path(path));
            return Ok(None);
        }
        store.add_variant(l1, variant.clone())?;
        self.upload(&store, l1, &key, &variant);
        Ok(Some((key, outcome)))
    }

    /// What a unit of `l1` whose outputs hold a root is made of, wherever the roots are
    /// (`key::rooted_identity`): the key without the roots of the first variant recorded
    /// whose inputs, its roots aside, hold here (the one judge decides). The remote's
    /// oldest first, if the lookup read its manifest, then the local store's; `None`
    /// when no variant holds (one just stored always does).
    pub fn rooted_key(&self, l1: &Key) -> Option<Key> {
        let judge = self.judge();
        let holds = |v: &&crate::store::Variant| judge.check(&without_roots(&v.inputs)).is_ok();
        let local = self.store.as_ref()?.read_manifest(l1);
        self.remote_manifest
            .iter()
            .chain(std::iter::once(&local))
            .find_map(|m| m.variants.iter().rev().find(holds))
            .map(|v| unbound_key(l1, &v.inputs))
    }

    /// Uploads a stored entry and its variant to the remote tier (or leaves that to
    /// `cargo xcache build`, which uploads in the background).
    fn upload(&mut self, store: &LocalStore, l1: &Key, key: &Key, variant: &Variant) {
        if self.cfg.defer_upload && self.cfg.events.is_some() {
            self.upload_later = self.remote.as_ref().is_some_and(|r| !r.read_only);
            return;
        }
        let Some(mut tier) = self.remote.take() else {
            return;
        };
        if !tier.read_only {
            let result = (|| -> Result<u64, CacheError> {
                let Some(remote) = tier.usable()? else {
                    return Ok(0);
                };
                let (_, entry_path) = remote_paths(l1, key);
                let n = remote.put_file(&entry_path, &store.entry_path(key))?;
                remote.add_variant(l1, variant)?;
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

    /// Tells the front-end that this unit is being worked on (for its progress
    /// display); nothing in drop-in mode.
    pub fn start_event(&self, unit: &UnitRecord) {
        if let Some(path) = &self.cfg.events {
            let started = StartEvent {
                format_version: 1,
                pid: std::process::id(),
                started: unit.into(),
                start_ms: epoch_ms(self.started_at),
            };
            let _ = append_event(path, &started);
        }
    }

    /// Sends an event to the front-end, or (drop-in mode) prints its warnings once.
    pub fn finish_event(&self, ev: &UnitEvent) {
        match &self.cfg.events {
            Some(path) => {
                let _ = append_event(path, ev);
            }
            None => {
                warn_once_per_build(&ev.warnings);
                // Drop-in mode (`RUSTC_WRAPPER=cargo-xcache cargo …`): the events go
                // beside the target dir's report, for `cargo xcache report` to fold.
                if let Some(root) = self.pm.real_of(crate::key::RootKind::Target) {
                    let path = super::event::dropin_events_path(std::path::Path::new(root));
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = append_event(&path, ev);
                }
            }
        }
    }
}

/// What differs between kinds of cached units. The lifecycle calls these in a fixed
/// order (see [`run_cached`]).
pub(super) trait Cached {
    /// The report's record of the unit (outcome and timings are filled in later).
    fn record(&self, cx: &Cx) -> UnitRecord;
    /// A reason the unit is not cached, known before anything runs.
    fn refusal(&self, cx: &Cx) -> Option<Uncacheable>;
    /// The first-level key.
    fn l1(&mut self, cx: &mut Cx) -> Result<Key, Uncacheable>;
    /// A reason not to store a run after a lookup missed (an incremental compile).
    fn reason_after_miss(&self) -> Option<Uncacheable> {
        None
    }
    /// Where the entry's files are restored.
    fn restore_dir(&self, cx: &Cx) -> Option<PathBuf>;
    /// Whether a stored entry can be replayed here (its messages name only known roots).
    fn replayable(&self, _cx: &Cx, _meta: &EntryMeta) -> bool {
        true
    }
    /// After a restore, before the replay: what dependents or cargo need (identities,
    /// shims).
    fn restored(&mut self, cx: &mut Cx, key: &Key, restored: &Restored);
    /// Prints the stored messages.
    fn replay(&self, cx: &Cx, meta: &EntryMeta);
    /// Runs the real thing (observed when `observer` is given).
    fn run(&mut self, cx: &mut Cx, observer: Option<Observer>) -> io::Result<Ran>;
    /// What a successful run read, or why it cannot be cached.
    fn inputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<Input>, Uncacheable>;
    /// The files to store, or why they cannot be.
    fn outputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<OutFile>, Uncacheable>;
    /// Whether the stored messages carry ANSI colour.
    fn ansi(&self) -> bool {
        false
    }
    /// After a successful run, stored (`Some`) or not.
    fn finished(&mut self, cx: &mut Cx, stored: Option<(&Key, &PutOutcome)>);
    /// Whether [`Cached::outputs`] needs [`Cached::inputs`] first (a build-script run's
    /// outputs are the files the observer saw it write). When not, what the unit read
    /// is judged after cargo went on.
    fn outputs_follow_inputs(&self) -> bool;
    /// For a unit whose outputs follow its inputs: every file its outputs can be (a
    /// build-script run's `OUT_DIR`, walked), so that cargo may go on before what the
    /// unit read is judged; `None` when they cannot be named (the judging then stays
    /// in the foreground).
    fn possible_outputs(&self, _cx: &Cx) -> Option<Vec<PathBuf>> {
        None
    }
    /// Whether cargo may go on before the entry is stored and [`Cached::finished`] has
    /// run (`background`): true only when nothing cargo or a later unit reads is
    /// written by them.
    fn may_store_in_background(&self, cx: &Cx) -> bool;
    /// Just before cargo is let go with the unit's entry still to be stored: puts in
    /// place what cargo or a later unit needs from [`Cached::finished`] before then
    /// (a build script's shim), pointing `files` at where their bytes are afterwards.
    fn before_release(&mut self, _cx: &mut Cx, _files: &mut [OutFile]) {}
    /// The roots [`Cached::inputs`] bound the unit to because of what it read rather
    /// than what it wrote (a C file's name made data: `observe::file_macros`), and why:
    /// for `explain`.
    fn bound_by_reads(&mut self) -> Vec<BoundBy> {
        Vec::new()
    }
    /// The reason code of a failed run.
    fn failure_code(&self) -> &'static str;
    /// Fills what only this kind knows (prediction keys, where cargo keeps it).
    fn complete_event(&self, cx: &Cx, ev: &mut UnitEvent);
    /// Runs the real thing again without the cache, observed, writing its outputs into
    /// `scratch` instead of the restore directory and printing nothing (for
    /// `cargo xcache verify`).
    fn rerun(&mut self, cx: &mut Cx, scratch: &Path) -> Result<Rerun, String>;

    /// The roots a record must be bound to beyond what its inputs say, with why,
    /// decided after the unit ran and before it is stored (a build-script run whose path
    /// check did not show its roots used as paths only: `run_check`).
    fn roots_to_bind(
        &mut self,
        _cx: &mut Cx,
        _l1: &Key,
        _ran: &Ran,
        _inputs: &[Input],
        _files: &[OutFile],
    ) -> Option<(Vec<Root>, String)> {
        None
    }
}

/// What an uncached run for `cargo xcache verify` produced.
pub(super) struct Rerun {
    /// Its outputs: a name below the restore directory, and where the rerun wrote it.
    pub files: Vec<(String, PathBuf)>,
    /// What it printed on stdout.
    pub stdout: Vec<u8>,
    /// What it read.
    pub inputs: Vec<Input>,
}

/// Runs one unit through the cache and returns the exit code to give cargo.
pub(super) fn run_cached(unit: &mut impl Cached, cx: &mut Cx) -> i32 {
    cx.start_event(&unit.record(cx));
    if let Some(message) = cx.cfg.remote_error.clone() {
        cx.warn(&CacheError::RemoteConfig(message));
    }
    if let Some(message) = cx.cfg.executor_error.clone() {
        cx.warn(&CacheError::Executor {
            uri: crate::config::vars::EXECUTOR.to_string(),
            message,
        });
    }
    let mut reason = unit.refusal(cx);
    if reason.is_none() {
        cx.open_store();
    }
    let mut l1 = None;
    if reason.is_none() && cx.store.is_some() {
        match cx.phase("key", |cx| unit.l1(cx)) {
            Ok(k) => l1 = Some(k),
            Err(u) => reason = Some(u),
        }
    }
    if let (Some(key), None) = (&l1, reason)
        && let Some(code) = try_hit(unit, cx, key)
    {
        return code;
    }
    if reason.is_none() {
        reason = unit.reason_after_miss();
    }
    let observer = match (&l1, reason) {
        (Some(_), None) => match cx.phase("observe", |cx| cx.observer()) {
            Ok(o) => Some(o),
            Err(u) => {
                reason = Some(u);
                None
            }
        },
        _ => None,
    };
    let t = Instant::now();
    let cpu = CpuTimes::now();
    let ran = unit.run(cx, observer);
    cx.run_ms = t.elapsed().as_millis() as u64;
    cx.compile_cpu_ms = CpuTimes::now().children_ms.saturating_sub(cpu.children_ms);
    let ran = match ran {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: xcache: failed to run the compiler or build script: {e}");
            return 1;
        }
    };
    if ran.code != 0 {
        let ev = event(
            unit,
            cx,
            Outcome::Error,
            Some(unit.failure_code().into()),
            None,
            0,
            l1,
        );
        cx.finish_event(&ev);
        return ran.code;
    }
    let mut stored: Option<(Key, PutOutcome)> = None;
    if let (Some(l1_key), None) = (&l1, reason) {
        // Outputs that follow from what the unit read (a run's outputs are the files
        // it wrote) are judged first; when every file they can be is known, after cargo
        // went on all the same (stamped before, like any outputs).
        let mut released = false;
        if unit.outputs_follow_inputs()
            && unit.may_store_in_background(cx)
            && let Some(dir) = cx.cfg.pending.clone()
            && let Some(paths) = unit.possible_outputs(cx)
        {
            match background::release(&dir, Stamps::of(paths.iter().map(PathBuf::as_path))) {
                Release::Parent => return 0,
                Release::Child(pending) => {
                    cx.enter_background(pending);
                    released = true;
                }
                Release::Stay => {}
            }
        }
        let read_first = unit
            .outputs_follow_inputs()
            .then(|| cx.phase("inputs", |cx| unit.inputs(cx, &ran)))
            .transpose();
        let mut listed = read_first
            .and_then(|read| Ok((read, cx.phase("outputs", |cx| unit.outputs(cx, &ran))?)));
        if let Ok((_, files)) = &mut listed
            && !released
            && let Some(dir) = cx.cfg.pending.clone()
            && unit.may_store_in_background(cx)
        {
            unit.before_release(cx, files);
            let stamps = Stamps::of(files.iter().filter_map(|f| match &f.source {
                OutSource::File(p) => Some(p.as_path()),
                OutSource::Text(_) => None,
            }));
            match background::release(&dir, stamps) {
                Release::Parent => return 0,
                Release::Child(pending) => cx.enter_background(pending),
                Release::Stay => {}
            }
        }
        let attempt = listed.and_then(|(read, files)| match read {
            Some(inputs) => Ok((inputs, files)),
            None => Ok((cx.phase("inputs", |cx| unit.inputs(cx, &ran))?, files)),
        });
        match attempt {
            Ok((mut inputs, files)) => {
                let mut checked = Vec::new();
                let bind = cx.phase("check", |cx| {
                    unit.roots_to_bind(cx, l1_key, &ran, &inputs, &files)
                });
                for root in bind.iter().flat_map(|(roots, _)| roots) {
                    let token = root.kind.token();
                    if !inputs
                        .iter()
                        .any(|i| i.kind == InputKind::Root && i.name == token)
                    {
                        inputs.push(Input::new(InputKind::Root, token, root.real.clone()));
                        checked.push(BoundBy {
                            root: token.to_string(),
                            file: bind
                                .as_ref()
                                .map_or_else(String::new, |(_, why)| why.clone()),
                            count: 0,
                            c_file_name: false,
                        });
                    }
                }
                checked.extend(unit.bound_by_reads());
                let ansi = unit.ansi();
                match cx.phase("store", |cx| {
                    cx.store_entry(l1_key, inputs, &files, &ran, ansi, checked)
                }) {
                    Ok(Some(s)) => stored = Some(s),
                    Ok(None) => reason = Some(Uncacheable::OutputChangedWhileStored),
                    Err(e) => cx.warn(&e),
                }
            }
            Err(u) => reason = Some(u),
        }
    }
    cx.phase("finish", |cx| {
        unit.finished(cx, stored.as_ref().map(|(k, o)| (k, o)))
    });
    let (outcome, key, bytes) = match (&stored, reason) {
        (_, Some(_)) => (Outcome::Uncacheable, None, 0),
        (Some((k, o)), None) => (Outcome::Miss, Some(*k), o.bytes),
        (None, None) => (Outcome::Miss, None, 0),
    };
    let mut ev = event(
        unit,
        cx,
        outcome,
        reason.map(|r| r.code().to_string()),
        key,
        bytes,
        l1,
    );
    ev.upload = stored.is_some() && cx.upload_later;
    ev.object_bytes = stored
        .as_ref()
        .map_or(0, |(_, o)| o.objects.iter().map(|b| b.len).sum());
    cx.finish_event(&ev);
    if let Some(pending) = cx.background.take() {
        pending.done();
    }
    0
}

/// The entry key of `l1` over `inputs` but the roots.
fn unbound_key(l1: &Key, inputs: &[Input]) -> Key {
    entry_key(l1, &without_roots(inputs))
}

/// Looks the unit up and restores it. `Some(exit code)` on a hit. An entry that cannot
/// be used (refused as untrusted, damaged) does not end the lookup: the next entry whose
/// variant holds is tried.
fn try_hit(unit: &mut impl Cached, cx: &mut Cx, l1: &Key) -> Option<i32> {
    let dir = unit.restore_dir(cx)?;
    let t = Instant::now();
    // Prefetch already asked the remote's index about this unit, and it had nothing
    // under this first-level key.
    let ask_remote = !prefetch_knows_absent(cx, unit, l1);
    let store = cx.store.clone()?;
    for (key, tier) in cx.lookup(l1, ask_remote) {
        let result = {
            let accept = |m: &EntryMeta| unit.replayable(cx, m);
            // A library's `.rlib` may come from a loose object, as when seeding.
            let objects = if store.checks_signatures() {
                Vec::new()
            } else {
                crate::store::objects::entry_objects(&store, &key)
            };
            let link = |m: &EntryMeta, f: &EntryFile| {
                if !crate::store::objects::served_by_object(m, f) {
                    return None;
                }
                objects
                    .iter()
                    .find(|o| o.name == f.name && o.beside.is_some())
                    .map(crate::store::objects::LinkableFile::link)
            };
            let filter = RestoreFilter {
                file: &|_| true,
                meta: &accept,
                link: &link,
            };
            restore_entry(&store, &key, &dir, &cx.pm, &filter)
        };
        match result {
            Ok(Some(restored)) => {
                unit.restored(cx, &key, &restored);
                unit.replay(cx, &restored.meta);
                let mut ev = event(
                    unit,
                    cx,
                    Outcome::Hit,
                    None,
                    Some(key),
                    restored.bytes,
                    Some(*l1),
                );
                ev.unit.compile_ms = Some(restored.meta.compile_ms);
                ev.bytes_linked = restored.linked_bytes;
                let restore_ms = t.elapsed().as_millis() as u64;
                ev.unit.restore_ms = Some(restore_ms);
                ev.unit.overhead.insert("restore".into(), restore_ms);
                ev.unit.tier = Some(tier.to_string());
                if sampled(cx, &key) {
                    ev.verify = Some(verify_hit(unit, cx, l1, &key, &restored, &dir));
                }
                cx.finish_event(&ev);
                return Some(0);
            }
            Ok(None) => {}
            Err(e) => cx.warn(&e),
        }
    }
    *cx.phases.entry("lookup").or_default() += t.elapsed().as_millis() as u64;
    None
}

/// Whether `cargo xcache verify` checks this hit: every one with `--all`, else the
/// sample the key falls in (the same units from run to run).
fn sampled(cx: &Cx, key: &Key) -> bool {
    cx.cfg
        .verify
        .is_some_and(|pct| (u16::from_le_bytes([key.0[0], key.0[1]]) % 100) < pct as u16)
}

/// Compiles (or runs) a restored unit again without the cache and compares.
fn verify_hit(
    unit: &mut impl Cached,
    cx: &mut Cx,
    l1: &Key,
    key: &Key,
    restored: &Restored,
    dir: &Path,
) -> Verified {
    let not_checked = |why: String| Verified {
        verdict: HitVerdict::NotChecked,
        note: Some(why),
        ..Verified::default()
    };
    let Some(store) = cx.store.clone() else {
        return not_checked("no store".into());
    };
    let recorded: Vec<Input> = store
        .read_manifest(l1)
        .variants
        .into_iter()
        .find(|v| v.entry == key.to_hex())
        .map(|v| v.inputs)
        .unwrap_or_default();
    // Inside the target dir, so the compile again sees the same roots (what it reads
    // there is judged as for the real one) and its paths are remapped the same way.
    let runs = match cx.pm.real_of(RootKind::Target) {
        Some(t) => Path::new(t).join("xcache").join("verify-runs"),
        None => store.tmp_dir(),
    };
    let scratch = runs.join(format!("{}-{}", &key.to_hex()[..16], std::process::id()));
    let first = match unit.rerun(cx, &scratch.join("1")) {
        Ok(r) => r,
        Err(why) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return not_checked(why);
        }
    };
    let restored_files: Vec<(String, PathBuf)> = restored
        .meta
        .files
        .iter()
        .map(|f| (f.name.clone(), restored_file(dir, &f.name)))
        .collect();
    let mut files = differing(&restored_files, dir, &first, &scratch.join("1"));
    let stored_out = cx.pm.expand_text(&restored.meta.stdout);
    let fresh_out = String::from_utf8_lossy(&first.stdout).replace(
        &scratch.join("1").display().to_string(),
        &dir.display().to_string(),
    );
    if stored_out != fresh_out {
        files.push("(stdout)".into());
    }
    let verdict = if files.is_empty() {
        Verified {
            verdict: HitVerdict::Same,
            ..Verified::default()
        }
    } else {
        // The compile again wrote into the scratch directory: read its paths as the
        // restore directory's before comparing with what was recorded.
        let (from, to) = (
            cx.pm.normalize_path(&scratch.join("1")),
            cx.pm.normalize_path(dir),
        );
        // Names it probed and did not find in its own output directory are its
        // temporary files (random names), not inputs the key missed.
        let own = format!("{to}/");
        let missed: Vec<String> = first
            .inputs
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if let Some(rest) = i.name.strip_prefix(&from) {
                    i.name = format!("{to}{rest}");
                }
                i
            })
            .filter(|i| !recorded.contains(i))
            .filter(|i| !(i.state == "absent" && i.name.starts_with(&own)))
            .map(|i| format!("{} {} ({})", i.kind.as_str(), i.name, i.state))
            .collect();
        // Is the unit reproducible at all? Two uncached runs that differ from each
        // other say it is not, whatever the key holds.
        let (one, two) = (scratch.join("1"), scratch.join("2"));
        match unit.rerun(cx, &two) {
            Ok(second) => {
                let mut between = differing(&second.files.clone(), &two, &first, &one);
                let second_out = String::from_utf8_lossy(&second.stdout)
                    .replace(&two.display().to_string(), &one.display().to_string());
                if second_out != String::from_utf8_lossy(&first.stdout) {
                    between.push("(stdout)".into());
                }
                Verified {
                    verdict: if between.is_empty() {
                        HitVerdict::Differs
                    } else {
                        HitVerdict::NotReproducible
                    },
                    files,
                    missed,
                    note: None,
                }
            }
            Err(why) => Verified {
                verdict: HitVerdict::Differs,
                files,
                missed,
                note: Some(why),
            },
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    verdict
}

/// Where a restored output is now: a build-script executable was moved aside for the
/// shim put in its place.
fn restored_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let real = dir.join(format!("{name}{}", super::REAL_SUFFIX));
    let shimmed = std::fs::read_to_string(&path).is_ok_and(|t| super::is_shim_text(&t));
    if shimmed && real.is_file() {
        real
    } else {
        path
    }
}

/// The names whose files differ between `a` (below `a_dir`) and a rerun's (below
/// `b_dir`); text is compared with the rerun's directory read as `a_dir`.
fn differing(a: &[(String, PathBuf)], a_dir: &Path, b: &Rerun, b_dir: &Path) -> Vec<String> {
    let (a_dir, b_dir) = (a_dir.display().to_string(), b_dir.display().to_string());
    let mut out = Vec::new();
    for (name, path) in a {
        let fresh = b.files.iter().find(|(n, _)| n == name);
        let same = match (std::fs::read(path), fresh.map(|(_, p)| std::fs::read(p))) {
            (Ok(x), Some(Ok(y))) => {
                x == y
                    || match (String::from_utf8(x), String::from_utf8(y)) {
                        (Ok(x), Ok(y)) => x.replace(&a_dir, "\0") == y.replace(&b_dir, "\0"),
                        _ => false,
                    }
            }
            _ => false,
        };
        if !same {
            out.push(name.clone());
        }
    }
    for (name, _) in &b.files {
        if !a.iter().any(|(n, _)| n == name) {
            out.push(format!("{name} (only in the uncached run)"));
        }
    }
    out
}

/// True when the front-end's prefetch found nothing in the remote's index for this
/// unit's prediction key, or entries under other first-level keys only. (A manifest
/// the index does not list can still be in the remote, written by a build that did not
/// update the index; missing it costs a compile, as for a unit the index lacks, and
/// spares every unit that is compiled anyway a round trip on the build's critical
/// path.)
fn prefetch_knows_absent(cx: &Cx, unit: &impl Cached, l1: &Key) -> bool {
    let Some(list) = &cx.cfg.prefetch_absent else {
        return false;
    };
    let mut probe = event(unit, cx, Outcome::Miss, None, None, 0, None);
    unit.complete_event(cx, &mut probe);
    let Some(upk) = probe.upk else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(list) else {
        return false;
    };
    let mut listed = false;
    for line in text.lines() {
        match line.split_once(' ') {
            None if line == upk => return true,
            Some((u, k)) if u == upk => {
                if k == l1.to_hex() {
                    return false;
                }
                listed = true;
            }
            _ => {}
        }
    }
    listed
}

/// The unit's event.
fn event(
    unit: &impl Cached,
    cx: &Cx,
    outcome: Outcome,
    reason: Option<String>,
    key: Option<Key>,
    bytes: u64,
    l1: Option<Key>,
) -> UnitEvent {
    // What cargo waited for ends where the wrapper let it go on (`background`).
    let (total, end_at, background_ms) = match &cx.background {
        Some(p) => (
            p.released.duration_since(cx.started).as_millis() as u64,
            p.released_at,
            // Rounded up: a unit stored after cargo went on says so.
            (p.released.elapsed().as_micros() as u64)
                .div_ceil(1000)
                .max(1),
        ),
        None => (
            cx.started.elapsed().as_millis() as u64,
            SystemTime::now(),
            0,
        ),
    };
    let mut record = unit.record(cx);
    record.outcome = outcome;
    record.reason = reason;
    if outcome == Outcome::Uncacheable {
        record.detail = cx.detail.clone();
    }
    record.compile_ms = (outcome != Outcome::Hit).then_some(cx.run_ms);
    record.key = key.map(|k| k.to_hex());
    let overhead_ms = total.saturating_sub(cx.run_ms);
    record.overhead = cx.phases.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let parts: u64 = record.overhead.values().sum();
    if overhead_ms > parts {
        record.overhead.insert("other".into(), overhead_ms - parts);
    }
    let mut ev = UnitEvent {
        format_version: 1,
        unit: record,
        overhead_ms,
        bytes,
        bytes_linked: 0,
        object_bytes: 0,
        upk: None,
        spk: None,
        l1: l1.map(|k| k.to_hex()),
        upload: false,
        bytes_down: cx.bytes_down,
        bytes_up: cx.bytes_up,
        place: None,
        verify: None,
        warnings: cx.warnings.clone(),
        key_parts: None,
        start_ms: epoch_ms(cx.started_at),
        end_ms: epoch_ms(end_at),
        background_ms,
        pid: std::process::id(),
        peak_rss_kb: super::event::peak_rss_kb().unwrap_or(0),
        compile_cpu_ms: cx.compile_cpu_ms,
    };
    let cpu = CpuTimes::now().plus(cx.cpu_before_fork);
    ev.unit.cpu_ms = Some(cpu.own_ms);
    ev.unit.checks_cpu_ms = Some(cpu.children_ms.saturating_sub(cx.compile_cpu_ms));
    unit.complete_event(cx, &mut ev);
    ev
}

/// Milliseconds since the Unix epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Copies `from` to `to` as it comes, and returns a copy.
pub(super) fn tee(mut from: impl io::Read, mut to: impl Write) -> Vec<u8> {
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

/// The target (build) directory an output directory belongs to: the nearest ancestor
/// holding cargo's `CACHEDIR.TAG`, else what cargo's layout says: two levels up from
/// `<target>/<profile>/deps`, three from `<target>/<profile>/build/<unit>`.
///
/// With `--target`, cargo tags `<target>/<triple>` as well as `<target>`: the outer
/// one is the root, so that a unit's paths are relative to the directory the front-end
/// plans (and plants) in.
pub(super) fn target_root(out_dir: &Path) -> PathBuf {
    let tagged = |d: &Path| d.join("CACHEDIR.TAG").is_file();
    // The new layout's `<root>/<triple>/<profile>/build/<pkg>/<hash>/out` is six
    // levels below the root.
    for dir in out_dir.ancestors().take(7) {
        if tagged(dir) {
            return match dir.parent() {
                Some(up) if tagged(up) => up.to_path_buf(),
                _ => dir.to_path_buf(),
            };
        }
    }
    let name_up = |n: usize| out_dir.ancestors().nth(n).and_then(Path::file_name);
    let up = if name_up(1).is_some_and(|n| n == "build") {
        3
    } else if name_up(0).is_some_and(|n| n == "out") && name_up(3).is_some_and(|n| n == "build") {
        5
    } else {
        2
    };
    out_dir.ancestors().nth(up).unwrap_or(out_dir).to_path_buf()
}

/// Drop-in mode has no front-end to gather warnings: print each code once per cargo
/// process, using a marker file named for cargo's PID.
pub(super) fn warn_once_per_build(warnings: &[Warning]) {
    let ppid = std::os::unix::process::parent_id();
    for w in warnings {
        let marker = std::env::temp_dir().join(format!("xcache-warned-{ppid}-{}", w.code));
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            // The executor down leaves the cache in use: only where compiles run changed.
            let tail = match w.code.as_str() {
                "executor-unavailable" => "",
                _ => "; compiling without the cache",
            };
            eprintln!("warning: xcache: {} [{}]{tail}", w.message, w.code);
        }
    }
}

/// The directories a run may write scratch files in: the temporary directories.
pub(super) fn scratch_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["TMPDIR", "TMP", "TEMP"]
        .iter()
        .filter_map(|v| env.get(v).map(PathBuf::from))
        .collect();
    dirs.extend(["/tmp", "/var/tmp", "/dev/shm"].iter().map(PathBuf::from));
    dirs
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
        assert_eq!(target_root(&t.join("debug/build/foo/0123/out")), t);
        std::fs::create_dir_all(t.join("x86_64-unknown-linux-gnu/debug/deps")).unwrap();
        let tag = "Signature: 8a477f597d28d172789f06886806bc55";
        std::fs::write(t.join("CACHEDIR.TAG"), tag).unwrap();
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/deps")),
            t
        );
        // Cargo tags the triple's directory too.
        std::fs::write(t.join("x86_64-unknown-linux-gnu/CACHEDIR.TAG"), tag).unwrap();
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
