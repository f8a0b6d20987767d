//! Prediction keys: which unit of the dependency graph an entry belongs to, computed the
//! same way from guppy's plan (before cargo starts) and from a wrapper's rustc
//! invocation. A prediction key says where to look, never what to use: the wrapper
//! still checks the exact entry key, so a wrong prediction costs a download, never a
//! wrong build.

use super::{Key, KeyHasher};

/// What a prediction key is made of.
#[derive(Clone, Debug)]
pub struct UnitIdentity<'a> {
    pub package: &'a str,
    pub version: &'a str,
    /// The package's directory, normalized (`@@xcache:ws@@/util`).
    pub manifest_dir: &'a str,
    pub crate_name: &'a str,
    /// `lib` or `proc-macro`.
    pub kind: &'a str,
    /// Enabled features, sorted.
    pub features: &'a [String],
    /// `--target` triple, or `host`.
    pub target: &'a str,
    /// The profile's directory name (`debug`, `release`, …).
    pub profile_dir: &'a str,
    pub compiler: &'a Key,
}

/// The prediction key of a unit.
pub fn prediction_key(u: &UnitIdentity<'_>) -> Key {
    KeyHasher::new("prediction")
        .str("package", u.package)
        .str("version", u.version)
        .str("manifest-dir", u.manifest_dir)
        .str("crate", u.crate_name)
        .str("kind", u.kind)
        .list("features", u.features.iter().map(String::as_str))
        .str("target", u.target)
        .str("profile-dir", u.profile_dir)
        .key("compiler", u.compiler)
        .finish()
}

/// The seed key of a unit: its prediction key without the features. Seed records are
/// kept under it, so a unit whose features the plan gets wrong (guppy and cargo disagree
/// on a few host units) still finds its variants; cargo's fingerprint picks the right one.
pub fn seed_key(u: &UnitIdentity<'_>) -> Key {
    KeyHasher::new("seed-prediction")
        .str("package", u.package)
        .str("version", u.version)
        .str("manifest-dir", u.manifest_dir)
        .str("crate", u.crate_name)
        .str("kind", u.kind)
        .str("target", u.target)
        .str("profile-dir", u.profile_dir)
        .key("compiler", u.compiler)
        .finish()
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
