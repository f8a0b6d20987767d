//! The remote index: for each prediction key, the entries recent builds used, with the
//! input sets (manifest variants) that select among them; and the bundles that carry
//! objects builds used together (see `bundle.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::{Key, KeyHasher};
use crate::seed::SeedVariant;
use crate::store::Variant;

/// How many entries the index keeps per prediction key (newest first).
pub const PER_UNIT: usize = 4;

/// One entry a unit used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexEntry {
    /// The unit's first-level key (where its manifest lives).
    pub l1: String,
    /// The input set; `variant.entry` is the entry key.
    pub variant: Variant,
    /// The entry's size in bytes, so it can be fetched in one request.
    #[serde(default)]
    pub size: Option<u64>,
}

/// One seed variant a unit had (see `crate::seed`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexSeed {
    pub variant: SeedVariant,
    /// The pack's size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
}

/// One object of a bundle piece: its bytes are `offset..offset + len` of the piece.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleMember {
    /// The entry (or seed pack) key.
    pub key: String,
    pub offset: u64,
    pub len: u64,
}

/// Objects a build used, concatenated into one remote object, so that the next build
/// fetches many in one request. Hostile input like the rest of the index: its member
/// table is checked before use, each member is verified like an entry fetched alone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundlePiece {
    /// Names the piece's object (`v1/bundles/<key>.xcb`).
    pub key: String,
    pub size: u64,
    /// In the order the piece holds them, which is the order planting needs them.
    pub members: Vec<BundleMember>,
}

/// The index object.
///
/// `format_version` stays 1 across additive fields: a reader of an older version
/// ignores `bundles` (serde skips unknown fields) and fetches every object alone, and a
/// writer of an older version drops them when it rewrites the index (the next new
/// writer bundles again). An index without `bundles` reads as one with none.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Index {
    pub format_version: u32,
    pub units: BTreeMap<String, Vec<IndexEntry>>,
    /// Seed variants by prediction key, newest first.
    #[serde(default)]
    pub seeds: BTreeMap<String, Vec<IndexSeed>>,
    /// Bundle pieces, newest first, at most [`super::bundle::MAX_PIECES`].
    #[serde(default)]
    pub bundles: Vec<BundlePiece>,
}

impl Index {
    /// Puts `entry` first for `upk`, dropping an older copy and the oldest past the limit.
    pub fn add(&mut self, upk: &str, entry: IndexEntry) {
        self.format_version = 1;
        let list = self.units.entry(upk.to_string()).or_default();
        list.retain(|e| e.variant.entry != entry.variant.entry);
        list.insert(0, entry);
        list.truncate(PER_UNIT);
    }

    /// Puts `seed` first for `upk`, like [`Index::add`].
    pub fn add_seed(&mut self, upk: &str, seed: IndexSeed) {
        self.format_version = 1;
        let list = self.seeds.entry(upk.to_string()).or_default();
        list.retain(|e| e.variant != seed.variant);
        list.insert(0, seed);
        list.truncate(PER_UNIT);
    }
}

/// Where the index of a workspace built by one compiler lives in the remote.
pub fn index_path(compiler: &Key, workspace: &[String]) -> String {
    let id = KeyHasher::new("index")
        .key("compiler", compiler)
        .list("workspace", workspace.iter().map(String::as_str))
        .finish();
    format!("{}/index/{}.json", crate::store::LAYOUT, id.to_hex())
}
