//! Prediction keys for the units of a build plan, computed as the wrapper computes them
//! for the units it meets (`key::prediction_key`).

use crate::graph::BuildPlan;
use crate::key::{Key, PathMap, UnitIdentity, prediction_key};

/// What prediction needs besides the plan.
pub struct PredictionInput<'a> {
    pub plan: &'a BuildPlan,
    pub path_map: &'a PathMap,
    pub compiler: &'a Key,
    /// `--target`, if given.
    pub target: Option<&'a str>,
    /// The profile's directory name (`debug`, `release`, …).
    pub profile_dir: &'a str,
}

/// The prediction key of every library and proc-macro unit in the plan.
pub fn predict(input: &PredictionInput<'_>) -> Vec<Key> {
    let mut keys = Vec::new();
    for p in &input.plan.packages {
        let Some((crate_name, kind)) = &p.lib else {
            continue;
        };
        let target = if p.host {
            "host"
        } else {
            input.target.unwrap_or("host")
        };
        let manifest_dir = input.path_map.normalize_path(&p.manifest_dir);
        keys.push(prediction_key(&UnitIdentity {
            package: &p.name,
            version: &p.version,
            manifest_dir: &manifest_dir,
            crate_name,
            kind,
            features: &p.features,
            target,
            profile_dir: input.profile_dir,
            compiler: input.compiler,
        }));
    }
    keys.sort();
    keys.dedup();
    keys
}
