//! The state every kind of unit shares through its lifecycle ([`Cx`]): configuration,
//! roots, store, remote tier, warnings, and the time and CPU each part took.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::config::WrapperConfig;
use crate::errors::CacheError;
use crate::key::{CompilerId, Input, InputKind, PathMap, host_cpu};
use crate::observe::Observer;
use crate::reason::Uncacheable;
use crate::store::{LocalStore, Manifest};
use crate::wrapper::Warning;
use crate::wrapper::background::Pending;
use crate::wrapper::event::CpuTimes;
use crate::wrapper::remote_tier::RemoteTier;

/// The state every kind of unit shares: configuration, roots, store, remote tier,
/// warnings and time.
pub(in crate::wrapper) struct Cx {
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
    pub(super) host_cpu: std::sync::OnceLock<Option<String>>,
    /// Milliseconds of cache work by part (`UnitRecord::overhead`).
    pub phases: BTreeMap<&'static str, u64>,
    /// Time spent in [`Cx::phase`] so far, nested parts included (each part counts only
    /// its own time: an outer one leaves out what its inner ones counted).
    pub(super) phase_total: Duration,
    /// This process finishes the unit's cache work after cargo was let go
    /// (`background`).
    pub background: Option<Pending>,
    /// The CPU times of the process that let cargo go, when this is its background copy
    /// (whose own count starts from zero).
    pub(super) cpu_before_fork: CpuTimes,
    /// CPU time of the compile or run itself (`UnitEvent::compile_cpu_ms`).
    pub(super) compile_cpu_ms: u64,
    /// The remote's manifest of the unit, when the lookup read it (see
    /// [`Cx::rooted_key`]).
    pub(super) remote_manifest: Option<Manifest>,
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
    pub(super) fn enter_background(&mut self, pending: Pending) {
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

    pub(super) fn open_store(&mut self) {
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
}
