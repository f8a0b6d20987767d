//! Level-one manifests: for a first-level key, the input sets seen so far.
//!
//! A manifest only says what to look at; the entry key is always recomputed from the
//! recorded inputs after the judge found each of them as recorded, so a
//! damaged or forged manifest can cost a miss but never select a wrong entry.

use serde::{Deserialize, Serialize};

use crate::key::Input;

/// How many input sets a manifest remembers (newest first).
pub const MAX_VARIANTS: usize = 16;

/// The manifest format this program writes.
pub const FORMAT_VERSION: u32 = 2;

/// One set of inputs that produced an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Everything the unit read, and what it found (`key::Input`), normalized.
    pub inputs: Vec<Input>,
    /// The entry key it produced (informational; lookups recompute it).
    pub entry: String,
    /// For each root the entry is bound to by an output that names it: which output,
    /// and how many times (informational, for `explain`; lookups judge the inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_by: Vec<BoundBy>,
}

/// An output that names a machine root, which binds its entry to that root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundBy {
    /// The root's token (`key::RootKind::token`).
    pub root: String,
    /// The output's file name, as restored; or, with `count` 0, why a check bound the
    /// entry (a build-script run's path check: `wrapper::run_check`).
    pub file: String,
    /// How many times the file names the root (0: bound by a check).
    pub count: u64,
    /// Bound because a C compile of the run opened a file below the root by its absolute
    /// name and that file uses a name that expands to the file's name (`__FILE__`,
    /// `assert`: `observe::file_macros`); `file` then says which file and which name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub c_file_name: bool,
}

/// All input sets seen for one first-level key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub variants: Vec<Variant>,
}

impl Manifest {
    /// Reads a manifest; one of another format, or unreadable, is empty.
    pub fn from_slice(bytes: &[u8]) -> Manifest {
        serde_json::from_slice::<Manifest>(bytes)
            .ok()
            .filter(|m| m.format_version == FORMAT_VERSION)
            .unwrap_or_default()
    }

    /// Puts `v` first, dropping an older copy of it and the oldest past the limit.
    pub fn add(&mut self, v: Variant) {
        self.format_version = FORMAT_VERSION;
        self.variants.retain(|old| old.entry != v.entry);
        self.variants.insert(0, v);
        self.variants.truncate(MAX_VARIANTS);
    }
}
