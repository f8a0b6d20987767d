//! Prediction keys for the units of a build plan, computed as the wrapper computes them
//! for the units it meets (`key::prediction_key`).

use crate::graph::BuildPlan;
use crate::key::{Key, KeyHasher, PathMap, UnitIdentity, prediction_key, seed_key};

/// What prediction needs besides the plan.
pub struct PredictionInput<'a> {
    pub plan: &'a BuildPlan,
    pub path_map: &'a PathMap,
    pub compiler: &'a Key,
    /// `--target`, if given.
    pub target: Option<&'a str>,
    /// The profile's directory name (`debug`, `release`, …).
    pub profile_dir: &'a str,
    /// `cargo -V`: seed records hold cargo's own files, whose meaning is cargo's.
    pub cargo_version: &'a str,
}

/// One unit the plan expects, with its prediction key.
#[derive(Clone, Debug)]
pub struct PredictedUnit {
    pub key: Key,
    /// The unit's seed key (`key::seed_key`), as its wrapper computes it.
    pub seed_key: Key,
    /// Where its seed records live: the seed key for this cargo ([`record_key`]).
    pub record: Key,
    pub package: String,
    pub version: String,
    pub crate_name: String,
    /// `lib`, `proc-macro`, `bin` or `build-script`.
    pub kind: &'static str,
    /// `--target`, for units built for it.
    pub target: Option<String>,
}

/// Where the seed records of a unit with seed key `spk` live for a given cargo.
pub fn record_key(spk: &Key, cargo_version: &str) -> Key {
    KeyHasher::new("seed-record")
        .key("seed", spk)
        .str("cargo", cargo_version)
        .finish()
}

/// The prediction key of every unit in the plan that has one (see [`predict_units`]).
pub fn predict(input: &PredictionInput<'_>) -> Vec<Key> {
    let mut keys: Vec<Key> = predict_units(input).into_iter().map(|u| u.key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Every unit of the plan that has a prediction key: libraries, proc-macros, build-script
/// compiles and the workspace members' binaries.
pub fn predict_units(input: &PredictionInput<'_>) -> Vec<PredictedUnit> {
    let mut units = Vec::new();
    for p in &input.plan.packages {
        let target = if p.host {
            None
        } else {
            input.target.map(str::to_string)
        };
        let manifest_dir = input.path_map.normalize_path(&p.manifest_dir);
        let mut push = |crate_name: &str, kind: &'static str, target: Option<String>| {
            let id = UnitIdentity {
                package: &p.name,
                version: &p.version,
                manifest_dir: &manifest_dir,
                crate_name,
                kind,
                features: &p.features,
                target: target.as_deref().unwrap_or("host"),
                profile_dir: input.profile_dir,
                compiler: input.compiler,
            };
            units.push(PredictedUnit {
                key: prediction_key(&id),
                seed_key: seed_key(&id),
                record: record_key(&seed_key(&id), input.cargo_version),
                package: p.name.clone(),
                version: p.version.clone(),
                crate_name: crate_name.to_string(),
                kind,
                target,
            });
        };
        if let Some((crate_name, kind)) = &p.lib {
            push(crate_name, kind, target.clone());
        }
        if p.build_script {
            push("build_script_build", "build-script", None);
        }
        for bin in &p.bins {
            push(bin, "bin", target.clone());
        }
    }
    units.sort_by_key(|u| u.key);
    units.dedup_by(|a, b| a.key == b.key);
    units
}
