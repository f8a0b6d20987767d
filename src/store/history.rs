//! The store's small memory of past builds: for each unit (package, crate, kind,
//! target), the last few keys it had and what they were hashed from; and one line per
//! build. Main type: [`UnitHistory`].
//!
//! Nothing here decides a hit: the history only explains misses (`report::miss_cause`)
//! and feeds `cargo xcache stats`. It is bounded ([`MAX_RECORDS`] keys per unit,
//! [`MAX_BUILDS`] build lines) and advisory: two builds writing one unit's history at
//! once may lose a record, which costs an explanation, never a build. A file that does
//! not parse reads as empty.
//!
//! ```text
//! <dir>/v2/history/units/<2 hex>/<unit id>.json   the unit's last keys, newest last
//! <dir>/v2/history/builds.jsonl                    one summary line per build
//! ```

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::LocalStore;
use crate::key::{Key, KeyHasher, KeyParts};

/// How many keys a unit's history keeps.
pub const MAX_RECORDS: usize = 8;
/// How many build lines `builds.jsonl` keeps.
pub const MAX_BUILDS: usize = 1000;
/// The format of history files (a file of another version reads as empty).
pub const FORMAT_VERSION: u32 = 1;

/// Which unit a history belongs to: the same package, crate, kind and target from build
/// to build (the version is a recorded field, so a version bump is explained).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitId<'a> {
    pub package: &'a str,
    pub crate_name: &'a str,
    pub kind: &'a str,
    pub target: Option<&'a str>,
}

impl UnitId<'_> {
    fn key(&self) -> Key {
        let mut h = KeyHasher::new("unit-history");
        h.str("package", self.package)
            .str("crate", self.crate_name)
            .str("kind", self.kind)
            .str("target", self.target.unwrap_or(""));
        h.finish()
    }
}

/// One input as the history keeps it: kind, name and a short digest of the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    pub kind: String,
    pub name: String,
    pub state: String,
}

/// One key a unit had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// When the build recorded it (ms since the Unix epoch).
    pub at_ms: u64,
    pub version: String,
    pub l1: String,
    /// The entry key, when the unit had one.
    #[serde(default)]
    pub entry: Option<String>,
    pub parts: KeyParts,
    /// What the entry's variant read (empty when unknown).
    #[serde(default)]
    pub inputs: Vec<InputDigest>,
    /// The outputs that bound the entry to a root (`store::BoundBy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_by: Vec<super::BoundBy>,
}

/// A unit's last keys, oldest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UnitHistory {
    pub format_version: u32,
    pub records: Vec<KeyRecord>,
}

impl UnitHistory {
    /// Adds a record, replacing an older one with the same keys, dropping the oldest
    /// past [`MAX_RECORDS`].
    pub fn add(&mut self, rec: KeyRecord) {
        self.format_version = FORMAT_VERSION;
        self.records
            .retain(|r| !(r.l1 == rec.l1 && r.entry == rec.entry && r.version == rec.version));
        self.records.push(rec);
        let over = self.records.len().saturating_sub(MAX_RECORDS);
        self.records.drain(..over);
    }
}

/// Short digest of an input's state: enough to see it changed.
pub fn state_digest(state: &str) -> String {
    Key::digest(state.as_bytes()).to_hex()[..16].to_string()
}

impl LocalStore {
    fn history_dir(&self) -> PathBuf {
        self.root().join("history")
    }

    fn unit_history_path(&self, id: &UnitId<'_>) -> PathBuf {
        let hex = id.key().to_hex();
        self.history_dir()
            .join("units")
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    /// The unit's history; empty when there is none or it does not parse.
    pub fn read_history(&self, id: &UnitId<'_>) -> UnitHistory {
        crate::fsx::read_small_bytes(&self.unit_history_path(id), crate::fsx::RECORD_LIMIT)
            .ok()
            .and_then(|b| serde_json::from_slice::<UnitHistory>(&b).ok())
            .filter(|h| h.format_version == FORMAT_VERSION)
            .unwrap_or_default()
    }

    /// Adds one key to a unit's history (read, modify, rename into place, under the
    /// record's lock).
    pub fn add_history(&self, id: &UnitId<'_>, rec: KeyRecord) -> std::io::Result<()> {
        let _lock = self.record_lock(&self.unit_history_path(id));
        let mut h = self.read_history(id);
        h.add(rec);
        let bytes = serde_json::to_vec(&h).map_err(std::io::Error::other)?;
        crate::fsx::write_atomic(&self.unit_history_path(id), &bytes)
    }

    /// Where one line per build is kept.
    pub fn builds_log_path(&self) -> PathBuf {
        self.history_dir().join("builds.jsonl")
    }

    /// Appends one build's line; past [`MAX_BUILDS`] lines, keeps the newest.
    pub fn append_build(&self, line: &serde_json::Value) -> std::io::Result<()> {
        let path = self.builds_log_path();
        std::fs::create_dir_all(self.history_dir())?;
        // Appends are whole lines; the lock keeps a trim from dropping another's.
        let _lock = self.record_lock(&path);
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut f = crate::fsx::open_in_place(
            &path,
            std::fs::OpenOptions::new().create(true).append(true),
        )?;
        f.write_all(text.as_bytes())?;
        drop(f);
        let lines = self.read_builds();
        if lines.len() > MAX_BUILDS {
            let keep = &lines[lines.len() - MAX_BUILDS..];
            let mut out = String::new();
            for l in keep {
                out.push_str(&l.to_string());
                out.push('\n');
            }
            crate::fsx::write_atomic(&path, out.as_bytes())?;
        }
        Ok(())
    }

    /// Every build line that parses, oldest first.
    pub fn read_builds(&self) -> Vec<serde_json::Value> {
        crate::fsx::read_small(&self.builds_log_path(), crate::fsx::RECORD_LIMIT)
            .map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> KeyRecord {
        KeyRecord {
            bound_by: Vec::new(),
            at_ms: n,
            version: "1.0.0".into(),
            l1: format!("{n}"),
            entry: None,
            parts: KeyParts::default(),
            inputs: Vec::new(),
        }
    }

    #[test]
    fn history_is_bounded_and_newest_last() {
        let mut h = UnitHistory::default();
        for n in 0..20 {
            h.add(rec(n));
        }
        assert_eq!(h.records.len(), MAX_RECORDS);
        assert_eq!(h.records.last().unwrap().at_ms, 19);
        h.add(rec(15));
        assert_eq!(h.records.len(), MAX_RECORDS);
        assert_eq!(h.records.last().unwrap().at_ms, 15);
    }

    #[test]
    fn history_round_trips_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&crate::config::StoreDir::new(dir.path())).unwrap();
        let id = UnitId {
            package: "a",
            crate_name: "a",
            kind: "lib",
            target: None,
        };
        assert!(store.read_history(&id).records.is_empty());
        store.add_history(&id, rec(1)).unwrap();
        store.add_history(&id, rec(2)).unwrap();
        assert_eq!(store.read_history(&id).records.len(), 2);
        std::fs::write(store.unit_history_path(&id), b"{not json").unwrap();
        assert!(store.read_history(&id).records.is_empty());
    }
}
