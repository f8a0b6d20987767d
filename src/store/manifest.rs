//! Level-one manifests: for a first-level key, the input sets seen so far.
//!
//! The manifest only says which files and variables to look at; the entry key is always
//! recomputed from what is on disk now, so a damaged manifest can cost a miss but never
//! select a wrong entry.

use serde::{Deserialize, Serialize};

use crate::key::InputDigest;

/// How many input sets a manifest remembers (newest first).
pub const MAX_VARIANTS: usize = 16;

/// An environment variable the crate read, with its normalized value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantEnv {
    pub name: String,
    pub value: Option<String>,
}

/// One set of inputs that produced an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub inputs: Vec<InputDigest>,
    /// For a unit that links: every file the link read, by identity, and every place
    /// the linker looked in vain (`absent`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_inputs: Vec<InputDigest>,
    pub env: Vec<VariantEnv>,
    /// The entry key it produced (informational; lookups recompute it).
    pub entry: String,
}

/// All input sets seen for one first-level key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub variants: Vec<Variant>,
}

impl Manifest {
    /// Puts `v` first, dropping an older copy of it and the oldest past the limit.
    pub fn add(&mut self, v: Variant) {
        self.format_version = 1;
        self.variants.retain(|old| old.entry != v.entry);
        self.variants.insert(0, v);
        self.variants.truncate(MAX_VARIANTS);
    }
}
