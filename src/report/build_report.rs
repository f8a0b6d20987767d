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

/// The warning code of an entry no trusted key signed (`CacheError::Untrusted`).
pub const UNTRUSTED_ENTRY: &str = "untrusted-entry";

/// The report format version.
pub const FORMAT_VERSION: u32 = 1;

/// Totals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub units: usize,
    pub hits: usize,
    pub misses: usize,
    pub uncacheable: usize,
    pub errors: usize,
    /// Wall time of the whole command.
    pub wall_ms: u64,
    /// Sum of rustc time of units compiled in this build.
    pub compile_ms: u64,
    /// Sum of restore time of hits.
    pub restore_ms: u64,
    /// What the hits took to compile originally, less what restoring them took.
    pub saved_ms: u64,
    /// Time the wrapper spent on cache work, summed over units.
    pub overhead_ms: u64,
    /// Units the build plan expected (an estimate, see the book).
    pub planned: usize,
    pub bytes_stored: u64,
    pub bytes_restored: u64,
    /// Hits served by the remote tier (fetched by the wrapper, or prefetched).
    pub remote_hits: usize,
    /// Units predicted from the dependency graph before cargo started.
    pub predicted: usize,
    /// Entries downloaded before cargo started.
    pub prefetched: usize,
    /// Prefetched entries this build did not use.
    pub prefetch_unused: usize,
    pub prefetch_ms: u64,
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
    #[serde(default)]
    pub capture_ms: u64,
    /// Units that found an entry or seed pack no trusted key signed (with
    /// `XCACHE_TRUSTED_KEYS`), and so compiled; each is also counted as a miss.
    #[serde(default)]
    pub untrusted: usize,
    /// Units and hits per unit kind (`lib`, `proc-macro`, `bin`, `build-script`,
    /// `build-script-run`, `test`, … — whatever kinds the events name).
    #[serde(default)]
    pub by_kind: BTreeMap<String, KindCounts>,
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
            units.push(u.clone());
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

/// Where a target dir's last report lives.
pub fn report_path(target_dir: &Path) -> PathBuf {
    target_dir.join("xcache").join("report.json")
}
