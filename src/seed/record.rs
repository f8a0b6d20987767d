//! Seed records: for each prediction key, the captured variants of the unit, newest
//! first, each with the inputs that must be unchanged for it to be planted.
//!
//! Layout: `<store>/v1/seeds/<2 hex>/<prediction key>.json`; the files of a variant
//! travel in an entry (the *pack*, `entries/`), its rustc outputs in the unit's own
//! entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::store::{LocalStore, write_atomic};
use crate::wrapper::LinkerUsed;

/// How many variants a record keeps.
pub const PER_UNIT: usize = 4;

/// One captured state of a unit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeedVariant {
    /// The entry holding cargo's files for the unit (fingerprints, build-script dirs).
    pub pack: String,
    /// The unit's rustc entry, restored into `out_dir` unless `outputs_in_pack`.
    pub entry: Option<String>,
    /// The pack holds the unit's outputs too (a build script's directory), so the entry
    /// is not restored.
    #[serde(default)]
    pub outputs_in_pack: bool,
    /// rustc's `--out-dir`, relative to the target root (`debug/deps`).
    pub out_dir: String,
    /// The unit's `.fingerprint` directory, relative to the target root.
    pub fingerprint_dir: String,
    /// The build-script run's `.fingerprint` directory, if the unit read an `OUT_DIR`.
    pub run_fingerprint_dir: Option<String>,
    /// The directory rustc ran in, tokenized (`@@xcache:ws@@`).
    pub cwd: String,
    /// Files that must hold the same bytes: (tokenized path, blake3 hex; `-` for a
    /// path that must not exist).
    pub files: Vec<(String, String)>,
    /// Variables that must hold the same value (`None`: unset).
    pub env: Vec<(String, Option<String>)>,
    /// Uncompressed bytes the variant puts in place (pack files only).
    pub bytes: u64,
    /// What the unit was built against, tokenized like `cwd`, with identities
    /// (`key::link_input_identity`): its `--extern` files, what its link read, and the
    /// build script that produced its `OUT_DIR`. After planting, each must be on disk
    /// with the same identity, or the unit is taken out again.
    #[serde(default)]
    pub deps: Vec<(String, String)>,
    /// For a unit that links: the linker it used and its identity then; planted only if
    /// the linker found now has the same identity.
    #[serde(default)]
    pub linker: Option<LinkerUsed>,
    /// How long the unit took to compile when it was captured (or originally, for a hit).
    #[serde(default)]
    pub compile_ms: u64,
    /// cargo asked for `-C incremental` for the unit (its outputs are not incremental):
    /// such a variant only fits builds with the same profile setting, and its seeded
    /// units are reported as non-incremental restores.
    #[serde(default)]
    pub incremental: bool,
}

/// All variants of one prediction key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SeedRecord {
    pub format_version: u32,
    pub variants: Vec<SeedVariant>,
}

fn record_path(store: &LocalStore, upk: &Key) -> PathBuf {
    let hex = upk.to_hex();
    store
        .root()
        .join("seeds")
        .join(&hex[..2])
        .join(format!("{hex}.json"))
}

/// The record of a prediction key; empty if there is none or it is unreadable.
pub fn read_record(store: &LocalStore, upk: &Key) -> SeedRecord {
    std::fs::read(record_path(store, upk))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Puts `v` first (read, modify, rename into place). Two builds racing here can lose a
/// variant: that costs a compile later, never a wrong plant.
pub fn add_variant(store: &LocalStore, upk: &Key, v: SeedVariant) -> std::io::Result<()> {
    let mut r = read_record(store, upk);
    r.format_version = 1;
    r.variants
        .retain(|x| x.pack != v.pack || x.entry != v.entry);
    r.variants.insert(0, v);
    r.variants.truncate(PER_UNIT);
    let bytes = serde_json::to_vec(&r).map_err(std::io::Error::other)?;
    write_atomic(&record_path(store, upk), &bytes)
}
