//! Prediction keys for the units of a build plan, computed as the wrapper computes them
//! for the units it meets (`key::prediction_key`).

use super::Compiles;
use super::graph::BuildPlan;
use crate::key::{
    Key, PathMap, PredictedUnit, UnitIdentity, prediction_key, record_key, seed_key, unit_kind,
};

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
    /// What the command compiles of the selected members.
    pub compiles: &'a Compiles,
    /// What runs the workspace members' units.
    pub members: MemberCompiler<'a>,
}

/// What runs the workspace members' units: cargo runs its workspace wrapper for every
/// unit of a member, selected or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberCompiler<'a> {
    /// rustc, as for every other unit.
    Rustc,
    /// A tool in front of rustc (`cargo clippy`), keyed as `key::behind_clippy`.
    Behind(&'a Key),
    /// A tool whose identity could not be read, or whose result hangs on what neither
    /// cargo's fingerprint nor a seed covers: the members' units are not predicted
    /// (the wrapper still looks them up by their exact key).
    NotPredicted,
}

/// The prediction key of every unit in the plan that has one (see [`predict_units`]).
pub fn predict(input: &PredictionInput<'_>) -> Vec<Key> {
    let mut keys: Vec<Key> = predict_units(input).into_iter().map(|u| u.key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Every unit of the plan that has a prediction key: libraries, proc-macros, build-script
/// compiles, and what the command compiles of the selected members (binaries, test
/// harnesses, examples).
pub fn predict_units(input: &PredictionInput<'_>) -> Vec<PredictedUnit> {
    let mut units = Vec::new();
    let c = input.compiles;
    for p in &input.plan.packages {
        let target = if p.host {
            None
        } else {
            input.target.map(str::to_string)
        };
        // Units built for the target write only metadata under `check`; host units
        // (proc-macros, build dependencies) are built in full.
        let links = p.host || !c.metadata_only;
        let manifest_dir = input.path_map.normalize_path(&p.manifest_dir);
        let compiler = match input.members {
            MemberCompiler::Behind(k) if p.workspace_member => k,
            MemberCompiler::NotPredicted if p.workspace_member => continue,
            _ => input.compiler,
        };
        let mut push = |crate_name: &str, kind: &str, links: bool, target: Option<String>| {
            let Some(kind) = unit_kind(kind, links) else {
                return;
            };
            let id = UnitIdentity {
                package: &p.name,
                version: &p.version,
                manifest_dir: &manifest_dir,
                crate_name,
                kind,
                features: &p.features,
                target: target.as_deref().unwrap_or("host"),
                profile_dir: input.profile_dir,
                compiler,
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
        let member = p.selected && !p.host;
        if let Some((crate_name, kind)) = &p.lib {
            // A member's library is built for its tests and binaries even when only
            // they are selected.
            push(crate_name, kind, links, target.clone());
            if member && c.lib.harness {
                push(crate_name, "test", links, target.clone());
            }
        }
        if p.build_script {
            push("build_script_build", "build-script", true, None);
        }
        if !member {
            continue;
        }
        let modes = [
            (&p.bins, c.bins),
            (&p.tests, c.tests),
            (&p.benches, c.benches),
            (&p.examples, c.examples),
        ];
        for (names, mode) in modes {
            for name in names {
                // A test or bench without a harness is compiled as a plain executable.
                let harness = !p.no_harness.contains(name);
                if mode.build || (mode.harness && !harness) {
                    push(name, "bin", links, target.clone());
                }
                if mode.harness && harness {
                    push(name, "test", links, target.clone());
                }
            }
        }
    }
    units.sort_by_key(|u| u.key);
    units.dedup_by(|a, b| a.key == b.key);
    units
}
