//! Where a compile stands in the plan's terms, for its event: its prediction and seed
//! keys ([`Rustc::prediction_keys`]) and where cargo keeps it ([`Rustc::place`]).

use std::path::{Path, PathBuf};

use super::unit::Rustc;
use crate::key::{CrateKind, Key, UnitIdentity, artifact_identity, prediction_key, seed_key};
use crate::wrapper::UnitPlace;
use crate::wrapper::lifecycle::{Cx, target_root};

impl Rustc {
    /// The unit's prediction and seed keys (see `key::prediction_key`, `key::seed_key`).
    pub(super) fn prediction_keys(&self, cx: &Cx) -> Option<(Key, Key)> {
        // Named as the plan names it: a checked unit is not a built one. A unit behind
        // clippy-driver is named by the compiler it is keyed on, rustc's and clippy's
        // (cargo gives clippy's units hashes of their own too).
        let kind = crate::key::unit_kind(self.inv.kind().as_str(), self.inv.emit.link)?;
        let compiler = self.compiler_key.as_ref()?;
        let env = &cx.cfg.env;
        let manifest_dir = cx
            .pm
            .normalize_path(Path::new(env.get("CARGO_MANIFEST_DIR")?));
        let features = self.inv.features();
        let id = UnitIdentity {
            package: env.get("CARGO_PKG_NAME")?,
            version: env.get("CARGO_PKG_VERSION")?,
            manifest_dir: &manifest_dir,
            crate_name: self.inv.crate_name.as_deref()?,
            kind,
            features: &features,
            target: self.inv.target.as_deref().unwrap_or("host"),
            profile_dir: &self.inv.profile_dir()?,
            compiler,
        };
        Some((prediction_key(&id), seed_key(&id)))
    }

    /// Where cargo keeps this unit, when cargo named its outputs (`-C extra-filename`).
    pub(super) fn place(&self, cx: &Cx) -> Option<UnitPlace> {
        let env = &cx.cfg.env;
        let out_dir = self.out_dir(cx)?;
        let root = target_root(&out_dir);
        let rel = out_dir.strip_prefix(&root).ok()?.to_str()?.to_string();
        // The unit's name in cargo's layout: said by the directory (a build script,
        // every unit of the new layout), else by the package and `-C extra-filename`.
        let unit_dir = match crate::key::Place::of_out_dir(&rel)?.unit {
            Some(unit) => unit,
            None => {
                let hash = self.inv.extra_filename.strip_prefix('-')?;
                format!("{}-{hash}", env.get("CARGO_PKG_NAME")?)
            }
        };
        // An `OUT_DIR` cargo set for this unit's build-script run (one inherited from
        // elsewhere lies outside the target dir).
        let run_dir = env
            .get("OUT_DIR")
            .and_then(|d| crate::key::Place::run_of_out_dir(Path::new(d), &root));
        let mut deps = Vec::new();
        for ext in &self.inv.externs {
            let Some(p) = &ext.path else { continue };
            let p = cx.cfg.cwd.join(p);
            if p.starts_with(&root) {
                deps.push((cx.pm.normalize_path(&p), artifact_identity(&p).ok()?));
            }
        }
        Some(UnitPlace {
            target_root: root,
            out_dir: rel,
            unit_dir,
            run_dir,
            cwd: cx.cfg.cwd.clone(),
            manifest_dir: PathBuf::from(env.get("CARGO_MANIFEST_DIR")?),
            deps,
            linker: self.link.as_ref().map(|l| l.linker_used(&self.inv)),
            incremental: self.asked_incremental,
            script_compile: self.inv.kind() == CrateKind::BuildScript,
            source: self.inv.input.clone(),
        })
    }
}
