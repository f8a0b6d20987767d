//! Explaining a miss ([`explain_miss`]): the nearest earlier record of the same unit,
//! what differs from it (at most [`MAX_SHOWN`]), and the hint.

use super::differences::{diff, differences};
use super::hint::{EnvRead, hint};
use crate::key::{DiffKind, Difference, MissCause};
use crate::store::history::KeyRecord;

/// How many differences a cause lists.
pub const MAX_SHOWN: usize = 12;

/// Compares `now` with every earlier record of the same unit and explains the miss by
/// the nearest one (fewest differences; the newest among equals).
pub fn explain_miss(now: &KeyRecord, earlier: &[KeyRecord]) -> MissCause {
    let mut best: Option<(&KeyRecord, Vec<Difference>)> = None;
    for rec in earlier.iter().rev() {
        if rec.l1 == now.l1 && rec.entry == now.entry && rec.at_ms == now.at_ms {
            continue;
        }
        let diffs = differences(rec, now);
        if best.as_ref().is_none_or(|(_, b)| diffs.len() < b.len()) {
            best = Some((rec, diffs));
        }
    }
    let Some((rec, mut diffs)) = best else {
        return MissCause {
            nearest_l1: None,
            nearest_at_ms: None,
            differences: vec![Difference {
                what: DiffKind::FirstSeen,
                name: None,
                before: None,
                now: None,
            }],
            total: 1,
            hint: None,
        };
    };
    if diffs.is_empty() && rec.l1 != now.l1 {
        // Nothing the history keeps differs, yet the first-level keys do: a build-script
        // run's environment, its binary, or a dependency's run.
        diffs.push(diff(
            DiffKind::Input,
            Some("first-level key"),
            Some("-"),
            Some("-"),
        ));
    }
    if diffs.is_empty() {
        diffs.push(Difference {
            what: DiffKind::NotInStore,
            name: None,
            before: None,
            now: None,
        });
    }
    diffs.sort_by_key(|d| d.what);
    // A file both read and declared (`rerun-if-changed`) is one difference.
    diffs.dedup_by(|a, b| a.what == b.what && a.name.is_some() && a.name == b.name);
    let total = diffs.len();
    // Whether either record read the environment whole (`env-set` inputs), and whether
    // only through the `cc` crate's copy (`env-set user only=…`).
    let sets: Vec<&str> = [rec, now]
        .iter()
        .flat_map(|r| r.inputs.iter())
        .filter(|i| i.kind == "env-set")
        .map(|i| i.name.as_str())
        .collect();
    let whole_env = if sets.is_empty() {
        EnvRead::ByName
    } else if sets.iter().all(|n| n.contains(" only=")) {
        EnvRead::CcCopy
    } else {
        EnvRead::Whole
    };
    let hint = hint(&diffs, whole_env, &rec.bound_by);
    diffs.truncate(MAX_SHOWN);
    MissCause {
        nearest_l1: Some(rec.l1.clone()),
        nearest_at_ms: Some(rec.at_ms),
        differences: diffs,
        total,
        hint,
    }
}
