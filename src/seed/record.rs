//! Seed records: for each prediction key, the captured variants of the unit, newest
//! first, each with the inputs that must be unchanged for it to be planted.
//!
//! Layout: `<store>/v2/seeds/<2 hex>/<prediction key>.json`; the files of a variant
//! travel in an entry (the *pack*, `entries/`), its rustc outputs in the unit's own
//! entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fsx::write_atomic;
use crate::key::{Input, Key, KeyHasher};
use crate::store::LocalStore;

/// How many variants a record keeps.
pub const PER_UNIT: usize = 4;

/// The seed-record format this program writes.
pub const FORMAT_VERSION: u32 = 2;

/// One captured state of a unit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeedVariant {
    /// The entry holding cargo's files for the unit (fingerprints, build-script dirs).
    /// Its key is `pack_key` of this variant and of those files, so a record cannot
    /// pair a pack with inputs it was not captured with.
    pub pack: String,
    /// The unit's rustc entry, restored into `out_dir` unless `outputs_in_pack`.
    pub entry: Option<String>,
    /// The pack holds the unit's outputs too (a build script's directory), so the entry
    /// is not restored.
    pub outputs_in_pack: bool,
    /// rustc's `--out-dir`, relative to the target root (`debug/deps`).
    pub out_dir: String,
    /// The unit's `.fingerprint` directory, relative to the target root.
    pub fingerprint_dir: String,
    /// The build-script run's `.fingerprint` directory, if the unit read an `OUT_DIR`.
    pub run_fingerprint_dir: Option<String>,
    /// The directory rustc ran in, tokenized (`@@xcache:ws@@`).
    pub cwd: String,
    /// Everything that must hold for the unit to be planted (`crate::judge`): what its
    /// compile read, what its build-script run read, what it was built against (its
    /// dependencies' artifacts and its build script's executable, by identity), the
    /// linker it used. Tokenized with the unit's own roots (`cwd`).
    pub inputs: Vec<Input>,
    /// Uncompressed bytes the variant puts in place (pack files only).
    pub bytes: u64,
    /// How long the unit took to compile when it was captured (or originally, for a hit).
    pub compile_ms: u64,
    /// cargo asked for `-C incremental` for the unit (its outputs are not incremental):
    /// such a variant only fits builds with the same profile setting.
    pub incremental: bool,
    /// Files of the unit's rustc entry that planting may hard-link from the store's
    /// loose objects (`store::objects`) instead of writing them: the `.rlib` of a library
    /// whose `.rmeta` is planted beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linkable: Vec<LinkableFile>,
    /// cargo's fingerprints of the unit hash as cargo hashed them when captured, so
    /// planting makes them what cargo computes where they are planted
    /// (`seed::fingerprint`): then the variant is not bound to its `CARGO_HOME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehash: Option<Rehash>,
}

/// How a variant's fingerprints are made right where it is planted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rehash {
    /// The source file whose path cargo's fingerprint hashes, tokenized
    /// (`@@xcache:cargo-home@@/registry/src/…/lib.rs`), for a unit outside the
    /// workspace; `None` where the path is the workspace's own (relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

pub use crate::store::objects::LinkableFile;

impl SeedVariant {
    /// The unit's rustc entry when planting restores it apart from the pack (not when
    /// the pack holds the outputs too): with the pack, every object the variant needs.
    pub fn separate_entry(&self) -> Option<&str> {
        self.entry.as_deref().filter(|_| !self.outputs_in_pack)
    }
}

/// The key of a variant's pack: the variant (but its pack and the figures) and the
/// pack's files (name, digest, executable bit).
pub fn pack_key(upk: &Key, v: &SeedVariant, files: &[(String, Key, bool)]) -> Key {
    let mut h = KeyHasher::new("seed-pack-v2");
    h.str("upk", &upk.to_hex())
        .str("entry", v.entry.as_deref().unwrap_or(""))
        .str("outputs-in-pack", &v.outputs_in_pack.to_string())
        .str("out-dir", &v.out_dir)
        .str("fingerprint-dir", &v.fingerprint_dir)
        .str(
            "run-fingerprint-dir",
            v.run_fingerprint_dir.as_deref().unwrap_or(""),
        )
        .str("cwd", &v.cwd)
        .str("incremental", &v.incremental.to_string());
    let inputs: Vec<String> = v.inputs.iter().map(Input::canonical).collect();
    h.list("inputs", inputs.iter().map(String::as_str));
    // Variants captured before objects existed keep their keys.
    if !v.linkable.is_empty() {
        let linkable: Vec<String> = v
            .linkable
            .iter()
            .map(|f| match &f.beside {
                Some(b) => format!("{}\0{}\0{}\0{b}", f.name, f.digest, f.len),
                None => format!("{}\0{}\0{}", f.name, f.digest, f.len),
            })
            .collect();
        h.list("linkable", linkable.iter().map(String::as_str));
    }
    // Variants captured before rehashing existed keep their keys.
    if let Some(r) = &v.rehash {
        h.str("rehash", r.source.as_deref().unwrap_or(""));
    }
    let listed: Vec<String> = files
        .iter()
        .map(|(name, d, exec)| format!("{name}\0{d}\0{exec}"))
        .collect();
    h.list("files", listed.iter().map(String::as_str));
    h.finish()
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

/// True when the store holds no seed record at all (no file under `seeds/`): nothing
/// can be planted from it.
pub fn holds_no_records(store: &LocalStore) -> bool {
    let Ok(shards) = std::fs::read_dir(store.root().join("seeds")) else {
        return true;
    };
    shards
        .flatten()
        .all(|shard| std::fs::read_dir(shard.path()).is_ok_and(|mut files| files.next().is_none()))
}

/// The record of a prediction key; empty if there is none or it is unreadable.
pub fn read_record(store: &LocalStore, upk: &Key) -> SeedRecord {
    crate::fsx::read_small_bytes(&record_path(store, upk), crate::fsx::RECORD_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice::<SeedRecord>(&b).ok())
        .filter(|r| r.format_version == FORMAT_VERSION)
        .unwrap_or_default()
}

/// Puts `v` first (read, modify, rename into place, under the record's lock: builds
/// adding at once each keep theirs).
pub fn add_variant(store: &LocalStore, upk: &Key, v: SeedVariant) -> std::io::Result<()> {
    let _lock = store.record_lock(&record_path(store, upk));
    let mut r = read_record(store, upk);
    r.format_version = FORMAT_VERSION;
    r.variants
        .retain(|x| x.pack != v.pack || x.entry != v.entry);
    r.variants.insert(0, v);
    r.variants.truncate(PER_UNIT);
    let bytes = serde_json::to_vec(&r).map_err(std::io::Error::other)?;
    write_atomic(&record_path(store, upk), &bytes)
}
