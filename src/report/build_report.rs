//! The build report, written to `<target-dir>/xcache/report.json`.
//!
//! Scripts depend on `format_version`, `summary.{units,hits,misses,uncacheable,wall_ms}`
//! and the unit fields `package`, `version`, `crate_name`, `kind`, `outcome`, `reason`,
//! `compile_ms`, `restore_ms`: keep them stable. New fields may be added; a renamed or
//! removed field bumps `format_version`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wrapper::{Outcome, UnitEvent, UnitRecord, Warning};

pub use crate::errors::UNTRUSTED_ENTRY;

/// The report format version.
pub const FORMAT_VERSION: u32 = 1;

/// Totals. One vocabulary everywhere (opening line, progress, summary line, table,
/// JSON), and these identities hold in every report ([`BuildReport::identities`]):
///
/// - `units = seeded + restored + compiled + ran + uncacheable + errors`
/// - `hits = seeded + restored`, `misses = compiled + ran`
/// - the `by_kind` counts add up to `units` and `hits`
///
/// `planned` is an estimate made before cargo starts, and is not part of them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub units: usize,
    /// `seeded + restored`.
    pub hits: usize,
    /// `compiled + ran`.
    pub misses: usize,
    pub uncacheable: usize,
    pub errors: usize,
    /// Hits the wrapper restored from the store while cargo ran.
    #[serde(default)]
    pub restored: usize,
    /// Misses compiled by rustc (and stored).
    #[serde(default)]
    pub compiled: usize,
    /// Misses that were build-script runs (run, and stored).
    #[serde(default)]
    pub ran: usize,
    /// Time before cargo started: planning, prefetching, placing seeded units.
    #[serde(default)]
    pub before_cargo_ms: u64,
    /// cargo started before the workspace was read: there was nothing to plant nor
    /// to fetch (an empty local store, no remote), and the plan was made while cargo
    /// worked.
    #[serde(default)]
    pub cargo_before_plan: bool,
    /// cargo started while seeding planted, and waited for its build dir's locks,
    /// which the front-end held until everything was planted (`plan::cargo_lock`).
    #[serde(default)]
    pub cargo_beside_planting: bool,
    /// Compile CPU time saved: what the hits took to compile originally, less what
    /// restoring them took (summed over units; not wall time).
    #[serde(default)]
    pub cpu_saved_ms: u64,
    /// Estimated wall time saved: the critical path through the units with their
    /// original compile times, less the critical path of this build.
    #[serde(default)]
    pub wall_saved_ms: u64,
    /// This build's critical path (the longest chain of dependent units).
    #[serde(default)]
    pub critical_path_ms: u64,
    /// Wall time of the whole command.
    pub wall_ms: u64,
    /// Sum of rustc time of units compiled in this build.
    pub compile_ms: u64,
    /// Sum of restore time of hits.
    pub restore_ms: u64,
    /// The same as `cpu_saved_ms` (kept for scripts that read it).
    pub saved_ms: u64,
    /// Time the wrapper spent on cache work, summed over units.
    pub overhead_ms: u64,
    /// Units the build plan expected (an estimate, see the book).
    pub planned: usize,
    pub bytes_stored: u64,
    pub bytes_restored: u64,
    /// Of what seeding put in place, bytes handed over by hard link from the local
    /// store's loose objects rather than written (not in `bytes_restored`).
    #[serde(default)]
    pub bytes_linked: u64,
    /// Hits served by the remote tier (fetched by the wrapper, or prefetched).
    pub remote_hits: usize,
    /// With `XCACHE_EXECUTOR`: compiles a worker ran (each also counted as a miss or
    /// uncacheable, as a local compile would be).
    #[serde(default)]
    pub remote_compiled: usize,
    /// Of `remote_compiled`, those compiled here as well and found equal
    /// (`XCACHE_EXECUTOR_CHECK`); one found different is a fallback,
    /// `executor-mismatch`.
    #[serde(default)]
    pub remote_checked: usize,
    /// Compiles that could go to a worker and were compiled here as well while their
    /// action waited for one (`XCACHE_EXECUTOR_HEDGE`), whichever result stood.
    #[serde(default)]
    pub remote_hedged: usize,
    /// Compiles that could have run on a worker and ran here, by why
    /// (`UnitRecord::remote_exec`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_fallbacks: BTreeMap<String, usize>,
    /// With `XCACHE_EXECUTOR_TOOLCHAIN=ship`: the bytes of this machine's toolchain the
    /// front-end sent to the executor before cargo started (0: it had them), and how
    /// long that took.
    #[serde(default)]
    pub toolchain_sent_bytes: u64,
    #[serde(default)]
    pub toolchain_send_ms: u64,
    /// Units predicted from the dependency graph before cargo started.
    pub predicted: usize,
    /// Entries downloaded before cargo started.
    pub prefetched: usize,
    /// Prefetched entries this build did not use.
    pub prefetch_unused: usize,
    pub prefetch_ms: u64,
    /// Requests the prefetch made: the check, the index, each bundle piece and each
    /// object fetched alone.
    #[serde(default)]
    pub prefetch_requests: usize,
    /// Bundle pieces the prefetch downloaded.
    #[serde(default)]
    pub prefetch_pieces: usize,
    /// Objects (entries and seed packs) that came out of those pieces.
    #[serde(default)]
    pub prefetch_bundled: usize,
    /// Bundle pieces this build wrote for the next one.
    #[serde(default)]
    pub pieces_up: usize,
    /// Bytes downloaded from and uploaded to the remote tier (compressed entries).
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Units put in the target dir before cargo started that cargo found fresh (each is
    /// also counted in `units` and `hits`).
    #[serde(default)]
    pub seeded: usize,
    /// Units put in place that cargo rebuilt anyway (its fingerprint disagreed).
    #[serde(default)]
    pub seed_rejected: usize,
    #[serde(default)]
    pub seed_ms: u64,
    /// Units whose target-dir state this build recorded for seeding.
    #[serde(default)]
    pub captured: usize,
    /// Capture after the wait for the wrappers still storing when cargo exited (the
    /// part that holds the build's end up).
    #[serde(default)]
    pub capture_ms: u64,
    /// Capture done while that wait went on (of the units whose events were in).
    #[serde(default)]
    pub capture_early_ms: u64,
    /// Capture done while cargo still ran, of the units it was done with (at the
    /// lowest priority, beside the compiles).
    #[serde(default)]
    pub capture_during_ms: u64,
    /// Units that found an entry or seed pack no trusted key signed (with
    /// `XCACHE_TRUSTED_KEYS`), and so compiled; each is also counted as a miss.
    #[serde(default)]
    pub untrusted: usize,
    /// Units and hits per unit kind (`lib`, `proc-macro`, `bin`, `build-script`,
    /// `build-script-run`, `test`, … — whatever kinds the events name).
    #[serde(default)]
    pub by_kind: BTreeMap<String, KindCounts>,
    /// The wrappers' cache work per unit kind and part (`UnitRecord::overhead`), in
    /// milliseconds summed over units.
    #[serde(default)]
    pub overhead_parts: BTreeMap<String, BTreeMap<String, u64>>,
    /// The part of the cache work done by the wrappers of units on the critical path:
    /// time cargo waited for before starting what came next.
    #[serde(default)]
    pub critical_overhead_ms: u64,
    /// The cache work wrappers did after letting cargo go on (storing in the
    /// background), summed over units, in milliseconds; not part of `overhead_ms`.
    #[serde(default)]
    pub background_ms: u64,
    /// How long the front-end waited, after cargo exited, for that work to end.
    #[serde(default)]
    pub background_wait_ms: u64,
    /// The largest peak resident memory of any wrapper of this build, in KiB.
    #[serde(default)]
    pub wrapper_peak_rss_kb: u64,
    /// The front-end's (`cargo xcache build`'s own process) peak resident memory, KiB.
    #[serde(default)]
    pub front_end_peak_rss_kb: u64,
    /// CPU time (user and system, milliseconds) of the wrappers' own processes, summed
    /// over units: the cache's work beside cargo, in the foreground and the background.
    #[serde(default)]
    pub wrapper_cpu_ms: u64,
    /// CPU time of the units' compiles and build-script runs themselves.
    #[serde(default)]
    pub compile_cpu_ms: u64,
    /// CPU time of the other programs wrappers ran: the soundness checks' second
    /// compiles and runs, expansions, compiler probes.
    #[serde(default)]
    pub checks_cpu_ms: u64,
    /// CPU time of the front-end (`cargo xcache build`'s own process: the plan, seeding,
    /// capture, the report) and of what it ran before cargo (`cargo metadata`); not
    /// cargo's.
    #[serde(default)]
    pub front_end_cpu_ms: u64,
}

/// How many units of one kind the build had, and how many of them hit.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KindCounts {
    pub units: usize,
    pub hit: usize,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildReport {
    pub format_version: u32,
    pub xcache_version: String,
    /// The cargo arguments of the build.
    pub cargo_args: Vec<String>,
    pub exit_code: i32,
    pub store: PathBuf,
    /// The remote tier, without credentials.
    #[serde(default)]
    pub remote: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    pub summary: Summary,
    /// Cache problems met (each code once); the build compiled past them.
    pub warnings: Vec<Warning>,
    pub units: Vec<UnitRecord>,
}

impl BuildReport {
    /// Builds the report from the wrapper's events.
    pub fn from_events(
        events: &[UnitEvent],
        cargo_args: Vec<String>,
        exit_code: i32,
        store: PathBuf,
        wall_ms: u64,
        planned: usize,
    ) -> BuildReport {
        let mut s = Summary {
            units: events.len(),
            wall_ms,
            planned,
            ..Summary::default()
        };
        let mut warnings: Vec<Warning> = Vec::new();
        let mut units = Vec::with_capacity(events.len());
        for e in events {
            let u = &e.unit;
            let kind = s.by_kind.entry(u.kind.clone()).or_default();
            kind.units += 1;
            if u.outcome == Outcome::Hit {
                kind.hit += 1;
            }
            match u.outcome {
                Outcome::Hit => {
                    s.hits += 1;
                    s.restore_ms += u.restore_ms.unwrap_or(0);
                    s.saved_ms += u
                        .compile_ms
                        .unwrap_or(0)
                        .saturating_sub(u.restore_ms.unwrap_or(0));
                    s.bytes_restored += e.bytes;
                    s.bytes_linked += e.bytes_linked;
                }
                Outcome::Miss => {
                    s.misses += 1;
                    s.bytes_stored += e.bytes;
                }
                Outcome::Uncacheable => s.uncacheable += 1,
                Outcome::Error => s.errors += 1,
            }
            if u.outcome != Outcome::Hit {
                s.compile_ms += u.compile_ms.unwrap_or(0);
            }
            s.overhead_ms += e.overhead_ms;
            s.background_ms += e.background_ms;
            s.wrapper_peak_rss_kb = s.wrapper_peak_rss_kb.max(e.peak_rss_kb);
            s.wrapper_cpu_ms += u.cpu_ms.unwrap_or(0);
            s.compile_cpu_ms += e.compile_cpu_ms;
            s.checks_cpu_ms += u.checks_cpu_ms.unwrap_or(0);
            s.bytes_down += e.bytes_down;
            s.bytes_up += e.bytes_up;
            if u.tier.as_deref() == Some("remote") {
                s.remote_hits += 1;
            }
            if e.warnings.iter().any(|w| w.code == UNTRUSTED_ENTRY) {
                s.untrusted += 1;
            }
            for w in &e.warnings {
                if !warnings.iter().any(|x| x.code == w.code) {
                    warnings.push(w.clone());
                }
            }
            let mut u = u.clone();
            u.start_ms = None;
            u.end_ms = None;
            units.push(u);
        }
        BuildReport {
            format_version: FORMAT_VERSION,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
            cargo_args,
            exit_code,
            store,
            remote: None,
            read_only: false,
            summary: s,
            warnings,
            units,
        }
    }
}

impl BuildReport {
    /// Recomputes every count of the summary from the units, so that whatever added
    /// units (the wrapper's events, seeding) the identities hold.
    pub fn reconcile(&mut self) {
        let s = &mut self.summary;
        s.units = self.units.len();
        (s.hits, s.misses, s.uncacheable, s.errors) = (0, 0, 0, 0);
        (s.seeded, s.restored, s.compiled, s.ran) = (0, 0, 0, 0);
        s.cpu_saved_ms = 0;
        s.by_kind.clear();
        for u in &self.units {
            let kind = s.by_kind.entry(u.kind.clone()).or_default();
            kind.units += 1;
            match u.outcome {
                Outcome::Hit => {
                    kind.hit += 1;
                    s.hits += 1;
                    if u.seeded {
                        s.seeded += 1;
                    } else {
                        s.restored += 1;
                    }
                    s.cpu_saved_ms += u
                        .compile_ms
                        .unwrap_or(0)
                        .saturating_sub(u.restore_ms.unwrap_or(0));
                }
                Outcome::Miss => {
                    s.misses += 1;
                    if u.kind == "build-script-run" {
                        s.ran += 1;
                    } else {
                        s.compiled += 1;
                    }
                }
                Outcome::Uncacheable => s.uncacheable += 1,
                Outcome::Error => s.errors += 1,
            }
        }
        s.saved_ms = s.cpu_saved_ms;
        s.remote_compiled = 0;
        s.remote_checked = 0;
        s.remote_hedged = 0;
        s.remote_fallbacks.clear();
        for r in self.units.iter().filter_map(|u| u.remote_exec.as_ref()) {
            s.remote_hedged += usize::from(r.hedged);
            match &r.fallback {
                Some(why) => *s.remote_fallbacks.entry(why.clone()).or_default() += 1,
                None => {
                    s.remote_compiled += 1;
                    s.remote_checked += usize::from(r.checked);
                }
            }
        }
        s.remote_hits = self
            .units
            .iter()
            .filter(|u| u.outcome == Outcome::Hit && u.tier.as_deref() == Some("remote"))
            .count();
    }

    /// The identities of [`Summary`] that do not hold (empty in a sound report).
    pub fn identities(&self) -> Vec<String> {
        let s = &self.summary;
        let mut broken = Vec::new();
        let mut check = |ok: bool, what: &str| {
            if !ok {
                broken.push(what.to_string());
            }
        };
        check(
            s.units == s.seeded + s.restored + s.compiled + s.ran + s.uncacheable + s.errors,
            "units = seeded + restored + compiled + ran + uncacheable + errors",
        );
        check(s.units == self.units.len(), "units = rows");
        check(s.hits == s.seeded + s.restored, "hits = seeded + restored");
        check(s.misses == s.compiled + s.ran, "misses = compiled + ran");
        check(
            s.by_kind.values().map(|k| k.units).sum::<usize>() == s.units,
            "by_kind units add up to units",
        );
        check(
            s.by_kind.values().map(|k| k.hit).sum::<usize>() == s.hits,
            "by_kind hits add up to hits",
        );
        let rows = |o: Outcome| self.units.iter().filter(|u| u.outcome == o).count();
        check(rows(Outcome::Hit) == s.hits, "hit rows = hits");
        check(rows(Outcome::Miss) == s.misses, "miss rows = misses");
        check(
            self.units.iter().filter(|u| u.seeded).count() == s.seeded,
            "seeded rows = seeded",
        );
        check(s.saved_ms == s.cpu_saved_ms, "saved = cpu saved");
        broken
    }

    /// Fills in the units' times and the critical path from the events (the first
    /// `events.len()` units are the events', in order), and the wall time saved.
    pub fn add_timing(&mut self, events: &[UnitEvent], build_start_epoch_ms: u64) {
        for (u, e) in self.units.iter_mut().zip(events) {
            if e.start_ms > 0 && e.end_ms >= e.start_ms {
                u.start_ms = Some(e.start_ms.saturating_sub(build_start_epoch_ms));
                u.end_ms = Some(e.end_ms.saturating_sub(build_start_epoch_ms));
            }
        }
        let parts: Vec<_> = (0..self.units.len())
            .map(|i| events.get(i).and_then(|e| e.key_parts.as_ref()))
            .collect();
        let deps = super::critical_path::unit_deps(&self.units, &parts);
        let cached = |u: &UnitRecord| match u.outcome {
            Outcome::Hit if u.seeded => 0,
            Outcome::Hit => u.restore_ms.unwrap_or(0),
            _ => u.compile_ms.unwrap_or(0),
        };
        let uncached = |u: &UnitRecord| u.compile_ms.unwrap_or(0);
        let (now_ms, path) = super::critical_path::longest(&self.units, &deps, cached);
        let (without_ms, _) = super::critical_path::longest(&self.units, &deps, uncached);
        for i in path {
            self.units[i].critical = true;
        }
        let s = &mut self.summary;
        s.critical_path_ms = now_ms;
        s.wall_saved_ms = without_ms.saturating_sub(now_ms).min(s.cpu_saved_ms);
        s.overhead_parts.clear();
        s.critical_overhead_ms = 0;
        for (i, u) in self.units.iter().enumerate() {
            let parts = s.overhead_parts.entry(u.kind.clone()).or_default();
            for (part, ms) in &u.overhead {
                *parts.entry(part.clone()).or_default() += ms;
            }
            // What cargo waited for: the work done before the wrapper let it go on.
            if u.critical {
                s.critical_overhead_ms += events.get(i).map_or(0, |e| e.overhead_ms);
            }
        }
        s.overhead_parts.retain(|_, parts| !parts.is_empty());
    }
}

/// Where a target dir's last report lives.
pub fn report_path(target_dir: &Path) -> PathBuf {
    target_dir.join("xcache").join("report.json")
}
