//! Prediction keys for the units of a build plan, computed as the wrapper computes them
//! for the units it meets (`key::prediction_key`).

use crate::graph::BuildPlan;
use crate::key::{Key, KeyHasher, PathMap, UnitIdentity, prediction_key, seed_key};
use crate::plan::Compiles;

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
    /// `lib`, `proc-macro`, `bin`, `test` or `build-script`, with `+metadata` for a
    /// unit that only writes metadata (see [`unit_kind`]).
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

/// The kind a prediction key names: the crate kind, and `+metadata` when rustc writes
/// no linked output (`cargo check`, `clippy`, the dependencies of `doc`), so that a
/// checked unit and a built one are told apart. The wrapper and the plan both name
/// kinds here. `link`: rustc is asked for a linked output (`--emit=link`: an rlib,
/// an executable).
pub fn unit_kind(kind: &str, link: bool) -> Option<&'static str> {
    Some(match (kind, link) {
        ("lib", true) => "lib",
        ("lib", false) => "lib+metadata",
        // A proc-macro and a build script are always built in full.
        ("proc-macro", _) => "proc-macro",
        ("build-script", _) => "build-script",
        ("bin", true) => "bin",
        ("bin", false) => "bin+metadata",
        ("test", true) => "test",
        ("test", false) => "test+metadata",
        _ => return None,
    })
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
