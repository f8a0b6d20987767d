//! After a build: each unit's key goes into the store's key history, each miss is
//! explained against the history as it was before (`report::explain_miss`), and the
//! build's line is appended for `cargo xcache stats`.

use std::collections::BTreeMap;

use crate::config::BuildConfig;
use crate::key::Key;
use crate::report::{BuildReport, explain_miss};
use crate::store::history::{InputDigest, KeyRecord, UnitId, state_digest};
use crate::store::{BoundBy, LocalStore};
use crate::wrapper::{Outcome, UnitEvent};

/// Explains the misses of `report` and records this build in the store's history.
/// The first `events.len()` units of the report are the events', in order. Nothing
/// here fails the build: a store that cannot be written leaves the history as it was.
pub(super) fn record(cfg: &BuildConfig, events: &[UnitEvent], report: &mut BuildReport) {
    if cfg.disabled {
        return;
    }
    let Ok(store) = LocalStore::open(&cfg.store_dir) else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for (u, e) in report.units.iter_mut().zip(events) {
        if !matches!(u.outcome, Outcome::Hit | Outcome::Miss) {
            continue;
        }
        let Some(l1) = e.l1.clone() else { continue };
        let id = UnitId {
            package: &u.package,
            crate_name: &u.crate_name,
            kind: &u.kind,
            target: u.target.as_deref(),
        };
        let (inputs, bound_by) = variant_inputs(&store, &l1, u.key.as_deref());
        let rec = KeyRecord {
            at_ms: now_ms,
            version: u.version.clone(),
            inputs,
            bound_by,
            l1,
            entry: u.key.clone(),
            parts: e.key_parts.clone().unwrap_or_default(),
        };
        if u.outcome == Outcome::Miss {
            let history = store.read_history(&id);
            u.miss_cause = Some(explain_miss(&rec, &history.records));
        }
        let _ = store.add_history(&id, rec);
    }
    let _ = store.append_build(&build_line(report, now_ms));
}

/// What the entry's variant read, as the history keeps it, and the outputs that bound
/// it to a root.
fn variant_inputs(
    store: &LocalStore,
    l1: &str,
    entry: Option<&str>,
) -> (Vec<InputDigest>, Vec<BoundBy>) {
    let (Some(l1), Some(entry)) = (Key::from_hex(l1), entry) else {
        return Default::default();
    };
    store
        .read_manifest(&l1)
        .variants
        .into_iter()
        .find(|v| v.entry == entry)
        .map(|v| {
            let inputs = v
                .inputs
                .into_iter()
                .map(|i| InputDigest {
                    kind: i.kind.as_str().to_string(),
                    name: i.name,
                    state: state_digest(&i.state),
                })
                .collect();
            (inputs, v.bound_by)
        })
        .unwrap_or_default()
}

/// One line of `builds.jsonl`: the summary's counts and the miss causes by kind.
fn build_line(report: &BuildReport, at_ms: u64) -> serde_json::Value {
    let s = &report.summary;
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &report.units {
        if let Some(c) = &u.miss_cause {
            for d in &c.differences {
                *causes.entry(d.what.as_str()).or_default() += 1;
            }
        }
    }
    serde_json::json!({
        "format_version": 1,
        "at_ms": at_ms,
        "exit_code": report.exit_code,
        "units": s.units,
        "hits": s.hits,
        "misses": s.misses,
        "seeded": s.seeded,
        "restored": s.restored,
        "compiled": s.compiled,
        "ran": s.ran,
        "uncacheable": s.uncacheable,
        "errors": s.errors,
        "wall_ms": s.wall_ms,
        "cpu_saved_ms": s.cpu_saved_ms,
        "wall_saved_ms": s.wall_saved_ms,
        "bytes_restored": s.bytes_restored,
        "bytes_stored": s.bytes_stored,
        "bytes_down": s.bytes_down,
        "bytes_up": s.bytes_up,
        "miss_causes": causes,
    })
}
