//! cargo's fingerprint of a unit, hashed as cargo hashes it, so that a planted unit's
//! fingerprint can be made what cargo will compute *here*.
//!
//! cargo decides a unit is fresh when the hash it computes of the unit's fingerprint
//! (`.fingerprint/<unit>/<kind>-<name>`, with its fields in the `.json` beside) equals the
//! one on disk. Two fields of that fingerprint depend on the machine, not on what the
//! unit is:
//! - `path`, the hash of the source file's path: absolute for a package outside the
//!   workspace (a registry or git package in `CARGO_HOME`), so another `CARGO_HOME`
//!   gives every such unit another hash;
//! - the hash of each dependency's fingerprint, so every unit built on one of those
//!   changes too (the whole workspace, on a crates.io tree).
//!
//! Planting writes the fields as captured, then [`rehash_planted`] sets `path` to the
//! hash of the source's path here and each dependency's hash to what it became, in
//! dependency order, and writes the hash cargo will compute. The replica of cargo's
//! hashing is checked where it is used: capture takes a unit's fingerprint as rehashable
//! only when its fields hash to the hash cargo wrote ([`rehashable`]), for the cargo that
//! built it. A cargo that hashes otherwise (a field added, another hasher) makes every
//! unit unrehashable: its seeds stay bound to their `CARGO_HOME` as before.
//!
//! Nothing here decides whether a unit holds: cargo still compares every other field
//! (compiler, features, profile, flags, the dependency-info's file times), and the
//! judge every input the unit read. A wrong hash only makes cargo rebuild the unit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use rustc_stable_hash::StableSipHasher128;
use serde::{Deserialize, Serialize};

/// The fields of cargo's fingerprint as its `.json` holds them (cargo's
/// `core::compiler::fingerprint::Fingerprint`, serialized). An unknown field is an
/// error: it would be hashed by cargo and not here.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CargoFingerprint {
    rustc: u64,
    features: String,
    declared_features: String,
    target: u64,
    profile: u64,
    path: u64,
    /// `(package id hash, extern name, public, fingerprint hash)`.
    deps: Vec<(u64, String, bool, u64)>,
    local: Vec<Local>,
    rustflags: Vec<String>,
    config: u64,
    compile_kind: u64,
}

/// cargo's `LocalFingerprint`, hashed by its derived `Hash` as cargo's is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
enum Local {
    Precalculated(String),
    CheckDepInfo {
        dep_info: PathBuf,
        checksum: bool,
    },
    RerunIfChanged {
        output: PathBuf,
        paths: Vec<PathBuf>,
    },
    RerunIfEnvChanged {
        var: String,
        val: Option<String>,
    },
}

impl CargoFingerprint {
    /// cargo's `Fingerprint::hash_u64`: the fields in cargo's order, then each
    /// dependency by its fingerprint's hash.
    pub fn hash_u64(&self) -> u64 {
        let mut h = StableSipHasher128::new();
        (
            self.rustc,
            &self.features,
            &self.declared_features,
            self.target,
            self.path,
            self.profile,
            &self.local,
            self.config,
            self.compile_kind,
            &self.rustflags,
        )
            .hash(&mut h);
        h.write_usize(self.deps.len());
        for (pkg_id, name, public, fingerprint) in &self.deps {
            pkg_id.hash(&mut h);
            name.as_str().hash(&mut h);
            public.hash(&mut h);
            h.write_u64(*fingerprint);
        }
        Hasher::finish(&h)
    }
}

/// cargo's `util::hash_u64` of a path: what its fingerprint's `path` holds.
pub fn path_hash(path: &Path) -> u64 {
    let mut h = StableSipHasher128::new();
    path.to_path_buf().hash(&mut h);
    Hasher::finish(&h)
}

/// cargo's `util::to_hex`: the hash's little-endian bytes in hex.
fn to_hex(n: u64) -> String {
    hex::encode(n.to_le_bytes())
}

fn from_hex(s: &str) -> Option<u64> {
    let mut bytes = [0u8; 8];
    hex::decode_to_slice(s.trim_end(), &mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// One fingerprint in a `.fingerprint` directory: its hash file, its fields and the
/// hash the file holds.
struct OnDisk {
    hash_file: PathBuf,
    fields: CargoFingerprint,
    stored: u64,
}

/// Every fingerprint in `dir` (a `<name>` hash file with its `<name>.json`). `None` when
/// one cannot be read as cargo's.
fn read_dir(dir: &Path) -> Option<Vec<OnDisk>> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).ok()? {
        let path = e.ok()?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let hash_file = path.with_extension("");
        // Planting writes regular files: anything else there is neither read nor
        // written through.
        let regular = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        if !regular(&path) || !regular(&hash_file) {
            return None;
        }
        let stored = from_hex(&fs::read_to_string(&hash_file).ok()?)?;
        let fields: CargoFingerprint =
            serde_json::from_slice(&crate::fsx::read_small_bytes(&path, 1 << 20).ok()?).ok()?;
        found.push(OnDisk {
            hash_file,
            fields,
            stored,
        });
    }
    Some(found)
}

/// Whether the unit's fingerprints (in `dirs`, relative to `root`) can be made what
/// cargo computes elsewhere: each hashes here to the hash cargo wrote beside it, and
/// where one's `path` is not 0, it is the hash of `source` (the file cargo gave rustc).
pub fn rehashable(root: &Path, dirs: &[&str], source: Option<&Path>) -> bool {
    let mut any = false;
    for dir in dirs {
        let Some(found) = read_dir(&root.join(dir)) else {
            return false;
        };
        for f in found {
            any = true;
            if f.fields.hash_u64() != f.stored {
                return false;
            }
            if f.fields.path != 0 && source.is_some_and(|s| path_hash(s) != f.fields.path) {
                return false;
            }
        }
    }
    any
}

/// A planted unit's fingerprints to make right here: its `.fingerprint` directories
/// (absolute) and the source whose path cargo hashes now (for a unit outside the
/// workspace; `None` leaves `path` as captured).
pub struct ToRehash {
    pub dirs: Vec<PathBuf>,
    pub source: Option<PathBuf>,
}

/// Sets the planted fingerprints' `path` to the hash of the source's path here and their
/// dependencies' hashes to what those became, in dependency order; writes the fields and
/// the hash where they changed, with the files' times kept. Returns how many changed.
/// A fingerprint that cannot be read is left as planted (cargo rebuilds its unit if it
/// does not hold).
pub fn rehash_planted(units: &[ToRehash]) -> usize {
    let mut pending: Vec<(OnDisk, Option<u64>)> = Vec::new();
    for u in units {
        let path = u.source.as_deref().map(path_hash);
        for dir in &u.dirs {
            if let Some(found) = read_dir(dir) {
                pending.extend(found.into_iter().map(|f| (f, path)));
            }
        }
    }
    // What each planted fingerprint's hash became (the hash it was planted with → now).
    let mut became: HashMap<u64, u64> = HashMap::new();
    let mut changed = 0;
    while !pending.is_empty() {
        let waiting: HashSet<u64> = pending.iter().map(|(f, _)| f.stored).collect();
        let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(f, _)| {
            f.fields
                .deps
                .iter()
                .all(|d| d.3 == f.stored || !waiting.contains(&d.3))
        });
        if ready.is_empty() {
            break; // a cycle cannot come from cargo: leave those as planted
        }
        for (mut f, path) in ready {
            if let Some(p) = path.filter(|_| f.fields.path != 0) {
                f.fields.path = p;
            }
            for d in &mut f.fields.deps {
                if let Some(n) = became.get(&d.3) {
                    d.3 = *n;
                }
            }
            let now = f.fields.hash_u64();
            became.insert(f.stored, now);
            if now != f.stored && write_fingerprint(&f.hash_file, &f.fields, now).is_ok() {
                changed += 1;
            }
        }
        pending = rest;
    }
    changed
}

/// Writes the fields and the hash, each with the time it had.
fn write_fingerprint(
    hash_file: &Path,
    fields: &CargoFingerprint,
    hash: u64,
) -> std::io::Result<()> {
    let json = hash_file.with_extension("json");
    let json_text = serde_json::to_vec(fields).map_err(std::io::Error::other)?;
    rewrite_keeping_time(&json, &json_text)?;
    rewrite_keeping_time(hash_file, to_hex(hash).as_bytes())
}

fn rewrite_keeping_time(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    let times = fs::FileTimes::new()
        .set_modified(meta.modified()?)
        .set_accessed(meta.accessed()?);
    fs::write(path, bytes)?;
    fs::File::options().write(true).open(path)?.set_times(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by cargo 1.95 (bat 0.26.1's tree): a registry library with one dependency,
    // and a build-script run.
    const AHO: &str = r#"{"rustc":7458672600737419911,"features":"[\"perf-literal\", \"std\"]","declared_features":"[\"default\", \"logging\", \"perf-literal\", \"std\"]","target":7534583537114156500,"profile":2225463790103693989,"path":8696478663082361327,"deps":[[3129130049864710036,"memchr",false,1837442179713777532]],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/aho-corasick-6ebefee2aea20b87/dep-lib-aho_corasick","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#;
    const AHO_HASH: &str = "6c535602fad8d887";
    const ADLER: &str = r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[\"compiler_builtins\", \"core\", \"default\", \"rustc-dep-of-std\", \"std\"]","target":6569825234462323107,"profile":15657897354478470176,"path":3722939919699014424,"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/adler2-966604f0b9487460/dep-lib-adler2","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#;
    const ADLER_HASH: &str = "8c52d134ab195896";
    const ADLER_SRC: &str =
        "/tmp/b57/h1-home/registry/src/index.crates.io-1949cf8c6b5b557f/adler2-2.0.0/src/lib.rs";
    const RUN: &str = r#"{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[4796557380116975802,"build_script_build",false,4677134368839004096]],"local":[{"Precalculated":"0.4.12"}],"rustflags":[],"config":0,"compile_kind":0}"#;
    const RUN_HASH: &str = "debe51787bce7413";

    fn parse(s: &str) -> CargoFingerprint {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn hashes_as_cargo_does() {
        for (json, hash) in [(AHO, AHO_HASH), (ADLER, ADLER_HASH), (RUN, RUN_HASH)] {
            assert_eq!(to_hex(parse(json).hash_u64()), hash);
            assert_eq!(from_hex(hash), Some(parse(json).hash_u64()));
        }
        assert_eq!(path_hash(Path::new(ADLER_SRC)), parse(ADLER).path);
    }

    #[test]
    fn an_unknown_field_is_not_cargos_fingerprint() {
        let json = AHO.replace("\"compile_kind\":0", "\"compile_kind\":0,\"new\":1");
        assert!(serde_json::from_str::<CargoFingerprint>(&json).is_err());
    }

    /// Two planted units, the second built on the first, moved to another `CARGO_HOME`:
    /// the first gets its source's new path, the second its dependency's new hash, and
    /// each the hash of its new fields, with the files' times kept.
    #[test]
    fn a_planted_chain_is_rehashed_in_dependency_order() {
        let dir = tempfile::tempdir().unwrap();
        let dep = dir.path().join("dep");
        let top = dir.path().join("top");
        fs::create_dir_all(&dep).unwrap();
        fs::create_dir_all(&top).unwrap();
        let dep_fields = parse(ADLER);
        let mut top_fields = parse(AHO);
        top_fields.deps[0].3 = dep_fields.hash_u64();
        let top_hash = top_fields.hash_u64();
        fs::write(dep.join("lib-a.json"), ADLER).unwrap();
        fs::write(dep.join("lib-a"), ADLER_HASH).unwrap();
        fs::write(
            top.join("lib-b.json"),
            serde_json::to_vec(&top_fields).unwrap(),
        )
        .unwrap();
        fs::write(top.join("lib-b"), to_hex(top_hash)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(dep.join("lib-a"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let moved = ADLER_SRC.replace("/tmp/b57/h1-home", "/elsewhere/home");
        let changed = rehash_planted(&[
            ToRehash {
                dirs: vec![top.clone()],
                source: None,
            },
            ToRehash {
                dirs: vec![dep.clone()],
                source: Some(PathBuf::from(&moved)),
            },
        ]);
        assert_eq!(changed, 2);
        let dep_now = read_dir(&dep).unwrap().remove(0);
        assert_eq!(dep_now.fields.path, path_hash(Path::new(&moved)));
        assert_eq!(dep_now.stored, dep_now.fields.hash_u64());
        assert_ne!(dep_now.stored, from_hex(ADLER_HASH).unwrap());
        let top_now = read_dir(&top).unwrap().remove(0);
        assert_eq!(top_now.fields.deps[0].3, dep_now.stored);
        assert_eq!(
            top_now.fields.path, top_fields.path,
            "a workspace unit's path stays"
        );
        assert_eq!(top_now.stored, top_now.fields.hash_u64());
        assert_eq!(
            fs::metadata(dep.join("lib-a")).unwrap().modified().unwrap(),
            old
        );
        // A hash file that is a link is neither read nor written through.
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, to_hex(1)).unwrap();
        let linked = dir.path().join("linked");
        fs::create_dir_all(&linked).unwrap();
        fs::write(linked.join("lib-c.json"), ADLER).unwrap();
        std::os::unix::fs::symlink(&elsewhere, linked.join("lib-c")).unwrap();
        assert_eq!(
            rehash_planted(&[ToRehash {
                dirs: vec![linked],
                source: Some(PathBuf::from(&moved)),
            }]),
            0
        );
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), to_hex(1));
        // Rehashed where it was captured, nothing changes.
        assert_eq!(
            rehash_planted(&[ToRehash {
                dirs: vec![dep.clone()],
                source: Some(PathBuf::from(&moved)),
            }]),
            0
        );
    }
}
