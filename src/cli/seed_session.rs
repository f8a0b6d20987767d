//! Target-dir seeding around one `cargo xcache build`: plant before cargo starts,
//! account for what cargo found fresh, capture what the build cached.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::fresh::FreshUnits;
use crate::config::{BuildConfig, Env, cargo_home};
use crate::plan::Plan;
use crate::report::BuildReport;
use crate::seed::Arrivals;
use crate::seed::{
    Attempt, CaptureStats, Captured, PlantInput, Planted, Site, capture, capture_one, plant,
    still_as_read,
};
use crate::store::LocalStore;
use crate::wrapper::{EventTail, Outcome, UnitEvent, UnitRecord, Warning};

/// Seeding state for one build.
pub struct SeedSession {
    store: LocalStore,
    planted: Vec<Planted>,
    warnings: Vec<Warning>,
    plant_ms: u64,
    cargo_home: Option<PathBuf>,
    workspace_root: PathBuf,
    cargo_version: String,
}

/// What was captured while the front-end waited for the wrappers still storing after
/// cargo exited: the units of the events read then whose events were all in.
pub struct EarlyCapture {
    /// The events read then (each one the file's, in its order: the first of the
    /// events read at the end).
    events: Vec<(u32, Option<String>)>,
    /// Which of them were captured.
    done: Vec<bool>,
    stats: CaptureStats,
    ms: u64,
    /// Capture while cargo ran.
    during_ms: u64,
    /// How long it went on after the wait ended (the build's end held up).
    after_wait_ms: u64,
}

impl EarlyCapture {
    /// Notes that the early capture went on for `d` after the wait ended.
    pub fn after_wait(&mut self, d: std::time::Duration) {
        self.after_wait_ms = d.as_millis() as u64;
    }
}

/// What was captured while cargo ran: each unit cargo was done with, in the order of the
/// events read then (the first of the events read at the end).
#[derive(Debug, Default)]
pub struct WhileBuilding {
    events: Vec<UnitEvent>,
    attempts: Vec<Option<Attempt>>,
    ms: u64,
}

/// Whether the events `read` earlier (each a wrapper's process id and entry key) are,
/// in order, the first of `events`: the events file is only appended to, so they should
/// be, and what was captured from them holds for these only if they are.
fn read_first<'a>(
    read: impl ExactSizeIterator<Item = (u32, &'a Option<String>)>,
    events: &[UnitEvent],
) -> bool {
    read.len() <= events.len()
        && read
            .zip(events)
            .all(|((pid, key), ev)| pid == ev.pid && *key == ev.unit.key)
}

/// How often the capture while cargo runs looks for units cargo is done with.
const CAPTURE_TICK: Duration = Duration::from_millis(250);

impl SeedSession {
    fn site<'a>(&'a self, env: &'a Env) -> Site<'a> {
        Site {
            store: &self.store,
            workspace_root: &self.workspace_root,
            cargo_home: self.cargo_home.as_deref(),
            env,
            cargo_version: &self.cargo_version,
        }
    }

    /// Captures, while cargo runs, each unit whose event is in and that cargo is done
    /// with ([`crate::seed::settled`]), one at a time at the lowest priority (it takes
    /// the cores the compiles leave idle), until `stop` says cargo has exited. What it
    /// captured is judged again then ([`SeedSession::capture_early`]).
    pub fn capture_while_building(
        &self,
        events_path: &Path,
        env: &Env,
        stop: &Receiver<()>,
    ) -> WhileBuilding {
        crate::wrapper::lower_this_threads_priority();
        let mut tail = EventTail::new(events_path);
        let mut wb = WhileBuilding::default();
        let stopped = || !matches!(stop.try_recv(), Err(TryRecvError::Empty));
        loop {
            match stop.recv_timeout(CAPTURE_TICK) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return wb,
            }
            if let Ok(new) = tail.read_new() {
                wb.events.extend(new);
                wb.attempts.resize_with(wb.events.len(), || None);
            }
            for i in 0..wb.events.len() {
                let ev = &wb.events[i];
                if wb.attempts[i].is_some()
                    || !crate::seed::ready(ev, &wb.events)
                    || !crate::seed::settled(ev, &wb.events)
                {
                    continue;
                }
                if stopped() {
                    return wb;
                }
                let t = Instant::now();
                let attempt = capture_one(self.site(env), ev, &wb.events);
                wb.ms += t.elapsed().as_millis() as u64;
                wb.attempts[i] = Some(attempt);
            }
        }
    }

    /// Captures, after a successful cargo and while the wrappers that went on in the
    /// background still store, the units of `events` (those done so far) whose events
    /// capturing needs are all there; [`SeedSession::finish`] captures the rest. A unit
    /// captured while cargo ran (`while_building`) is not captured again if nothing its
    /// capture read moved since.
    pub fn capture_early(
        &self,
        events: &[UnitEvent],
        env: &Env,
        while_building: Option<WhileBuilding>,
    ) -> EarlyCapture {
        let t = Instant::now();
        let mut stats = CaptureStats::default();
        let mut held = vec![false; events.len()];
        let mut during_ms = 0;
        if let Some(wb) = while_building {
            during_ms = wb.ms;
            // The events read while cargo ran are the first of these (the file is only
            // appended to); were they not, nothing captured then is kept.
            if read_first(wb.events.iter().map(|e| (e.pid, &e.unit.key)), events) {
                let stands: Vec<bool> = wb
                    .attempts
                    .par_iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.as_ref()
                            .is_some_and(|a| a.is_final() && still_as_read(&events[i], events, a))
                    })
                    .collect();
                for ((i, a), ok) in wb.attempts.into_iter().enumerate().zip(stands) {
                    if let (Some(a), true) = (a, ok) {
                        held[i] = true;
                        a.count_into(&mut stats);
                    }
                }
            }
        }
        let done: Vec<bool> = events
            .iter()
            .enumerate()
            .map(|(i, ev)| held[i] || crate::seed::ready(ev, events))
            .collect();
        stats.merge(capture(self.site(env), events, |i| done[i] && !held[i]));
        EarlyCapture {
            events: events.iter().map(|e| (e.pid, e.unit.key.clone())).collect(),
            done,
            stats,
            ms: t.elapsed().as_millis() as u64,
            during_ms,
            after_wait_ms: 0,
        }
    }

    /// For a build whose cargo started before the plan (the store held nothing to
    /// plant, see `build::nothing_to_plant`): plants nothing (cargo is running in the
    /// target dir), captures at the end like any. `None` as for [`SeedSession::start`].
    pub fn capture_only(cfg: &BuildConfig, env: &Env, plan: &Plan) -> Option<SeedSession> {
        if !cfg.seed || cfg.disabled || plan.compiler.is_none() {
            return None;
        }
        Some(SeedSession {
            store: LocalStore::open(&cfg.store_dir).ok()?,
            planted: Vec::new(),
            warnings: Vec::new(),
            plant_ms: 0,
            cargo_home: cargo_home(env),
            workspace_root: plan.graph.workspace_root.clone(),
            cargo_version: cfg.cargo_version.clone(),
        })
    }

    /// Plants what the store holds for the plan's units. `None` when seeding is off or
    /// the store or compiler cannot be read (the build goes on without seeding).
    pub fn start(
        cfg: &BuildConfig,
        env: &Env,
        plan: &Plan,
        arrivals: Option<&Arrivals>,
    ) -> Option<SeedSession> {
        let t = Instant::now();
        let mut session = Self::capture_only(cfg, env, plan)?;
        let rustc = env.get("RUSTC").unwrap_or("rustc");
        // The plan's compiler and units: computed once, read here and by the remote.
        let compiler = plan.compiler.clone()?;
        let graph = &plan.graph;
        let layout = match &plan.layout {
            Ok(layout) => *layout,
            Err(reason) => {
                let e = crate::errors::CacheError::PlantingOff(reason.clone());
                session.warnings = vec![Warning::from(&e)];
                return Some(session);
            }
        };
        let (planted, warnings) = plant(&PlantInput {
            store: &session.store,
            units: &plan.units,
            target_root: &graph.build_dir,
            workspace_root: &graph.workspace_root,
            cargo_home: session.cargo_home.as_deref(),
            // What the units will see: a tool's variables (`CLIPPY_ARGS`) too.
            env: &plan.unit_env,
            compiler: &(PathBuf::from(rustc), compiler),
            arrivals,
            layout,
        });
        session.planted = planted;
        session.warnings = warnings;
        session.plant_ms = t.elapsed().as_millis() as u64;
        Some(session)
    }

    /// How many units count as seeded, judged from the wrapper's events so far: the
    /// units planted (one per unit, with the build-script runs planted with them), less
    /// those a wrapper has compiled since (cargo rebuilt them). For the progress
    /// display and the opening line; the report counts from cargo's own messages when
    /// it has them ([`SeedSession::finish`]).
    pub fn seeded_so_far(&self, events: &[UnitEvent]) -> usize {
        let (used, _) = self.used(events, None);
        used.len() + used.iter().filter(|(_, run)| *run).count()
    }

    /// The planted units cargo used, one per unit, each with whether the build-script
    /// run planted with it counts as seeded too; and how many planted units cargo
    /// rebuilt. With cargo's JSON messages (`fresh`), a unit was used when cargo called
    /// one of its planted variants fresh; without them, when no wrapper saw the unit.
    fn used<'a>(
        &'a self,
        events: &[UnitEvent],
        fresh: Option<&FreshUnits>,
    ) -> (Vec<(&'a Planted, bool)>, usize) {
        // Several variants of a unit may be planted; cargo uses at most one.
        let mut planted: Vec<&Planted> = Vec::new();
        for p in &self.planted {
            let hash = crate::key::Layout::hash_of_unit(&p.unit_dir);
            let used = fresh.is_none_or(|f| f.hashes.contains(hash));
            match planted
                .iter()
                .position(|q| q.unit.seed_key == p.unit.seed_key)
            {
                Some(i) if used && fresh.is_some() => planted[i] = p,
                Some(_) => {}
                None => planted.push(p),
            }
        }
        // A build-script run planted with a unit cargo found fresh was fresh too (the
        // unit's fingerprint covers the run's): cargo did not run the script.
        let mut runs_seeded: Vec<&str> = Vec::new();
        let mut used = Vec::new();
        let mut rejected = 0;
        for p in planted {
            let key = p.unit.seed_key.to_hex();
            let hash = crate::key::Layout::hash_of_unit(&p.unit_dir);
            let rebuilt = match fresh {
                Some(f) => !f.hashes.contains(hash),
                None => events
                    .iter()
                    .any(|e| e.spk.as_deref() == Some(key.as_str())),
            };
            if rebuilt {
                rejected += 1;
                continue;
            }
            let run = p.run_fingerprint_dir.as_deref().is_some_and(|run_fp| {
                let ran = events
                    .iter()
                    .any(|e| e.unit.kind == "build-script-run" && e.unit.package == p.unit.package);
                if ran || runs_seeded.contains(&run_fp) {
                    return false;
                }
                runs_seeded.push(run_fp);
                true
            });
            used.push((p, run));
        }
        (used, rejected)
    }

    /// Adds the seeded units to the report and, after a successful build, captures the
    /// units the wrapper cached (but those `early` did); returns the new variants (for
    /// the remote).
    pub fn finish(
        self,
        events: &[UnitEvent],
        fresh: Option<&FreshUnits>,
        env: &Env,
        report: &mut BuildReport,
        early: Option<EarlyCapture>,
    ) -> Seeded {
        for w in &self.warnings {
            // Planting reports each code once: a refused pack counts one unit at least.
            if w.code == crate::report::UNTRUSTED_ENTRY {
                report.summary.untrusted = report.summary.untrusted.max(1);
            }
            if !report.warnings.iter().any(|x| x.code == w.code) {
                report.warnings.push(w.clone());
            }
        }
        // Runs cargo used keep their directories; the marker has done its work.
        for p in &self.planted {
            if let Some(m) = &p.marker {
                let _ = std::fs::remove_file(m);
            }
        }
        let s = &mut report.summary;
        s.seed_ms = self.plant_ms;
        let (used, rejected) = self.used(events, fresh);
        s.seed_rejected += rejected;
        let mut done = Seeded {
            captured: Vec::new(),
            planted: used
                .iter()
                .map(|(p, _)| Captured {
                    upk: p.record,
                    variant: p.variant.clone(),
                })
                .collect(),
        };
        for (p, run) in used {
            s.seeded += 1;
            s.units += 1;
            s.hits += 1;
            s.saved_ms += p.compile_ms;
            let kind = s.by_kind.entry(p.unit.kind.to_string()).or_default();
            kind.units += 1;
            kind.hit += 1;
            s.bytes_restored += p.bytes;
            s.bytes_linked += p.linked_bytes;
            report.units.push(seeded_hit(
                p,
                p.unit.crate_name.clone(),
                p.unit.kind.to_string(),
                Some(p.compile_ms),
                p.entry.clone(),
                p.incremental,
            ));
            if !run {
                continue;
            }
            s.seeded += 1;
            s.units += 1;
            s.hits += 1;
            let kind = s.by_kind.entry("build-script-run".to_string()).or_default();
            kind.units += 1;
            kind.hit += 1;
            report.units.push(seeded_hit(
                p,
                "build_script_build".to_string(),
                "build-script-run".to_string(),
                None,
                // The run's files travel in the unit's pack.
                Some(p.pack.clone()),
                false,
            ));
        }
        if report.exit_code == 0 {
            let t = Instant::now();
            // The events read early are the first of these (the file is only appended
            // to); were they not, every unit is captured now (one captured early then
            // finds its variant recorded and writes nothing; what it wrote early still
            // counts, and goes to the remote).
            let prefix = early
                .as_ref()
                .is_some_and(|e| read_first(e.events.iter().map(|(pid, key)| (*pid, key)), events));
            let done_early = |i: usize| {
                prefix
                    && early
                        .as_ref()
                        .is_some_and(|e| e.done.get(i).copied().unwrap_or(false))
            };
            let mut stats = capture(self.site(env), events, |i| !done_early(i));
            let s = &mut report.summary;
            s.capture_ms = t.elapsed().as_millis() as u64;
            if let Some(e) = early {
                stats.merge(e.stats);
                s.capture_early_ms = e.ms;
                s.capture_during_ms = e.during_ms;
                s.capture_ms += e.after_wait_ms;
            }
            s.captured = stats.captured;
            done.captured = stats.variants;
        }
        done
    }
}

/// The report's record of a unit planted from the local store, or of its build script's
/// run (`crate_name`, `kind`: the unit's or the run's; `key`: the entry or the pack).
fn seeded_hit(
    p: &Planted,
    crate_name: String,
    kind: String,
    compile_ms: Option<u64>,
    key: Option<String>,
    non_incremental_restore: bool,
) -> UnitRecord {
    UnitRecord {
        package: p.unit.package.clone(),
        version: p.unit.version.clone(),
        crate_name,
        kind,
        target: p.unit.target.clone(),
        outcome: Outcome::Hit,
        reason: None,
        detail: None,
        compile_ms,
        restore_ms: None,
        key,
        tier: Some("local".into()),
        non_incremental_restore,
        seeded: true,
        miss_cause: None,
        start_ms: None,
        end_ms: None,
        critical: false,
        overhead: Default::default(),
        cpu_ms: None,
        checks_cpu_ms: None,
        remote_exec: None,
    }
}

/// What seeding leaves for the remote: the variants this build captured, and those
/// planted from the local store that cargo used (the remote may not hold them: the
/// build that recorded them may have been killed before its uploads).
#[derive(Debug, Default)]
pub struct Seeded {
    pub captured: Vec<Captured>,
    pub planted: Vec<Captured>,
}
