//! The recipe file format (`recipe.json`). Main type: [`Recipe`].
//!
//! Old reader, new writer: a reader refuses a `format_version` it does not know (the
//! recipe is rewritten by the planner stage of the same build, so refusing is cheap and
//! guessing could lay out a wrong skeleton). Bump the version for any change of meaning.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::errors::CliError;

/// The version this program writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What decides how a workspace's dependencies are built. Every list is sorted, so the
/// same inputs give the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub format_version: u32,
    /// Files written as they are (normalised manifests, the lockfile, `.cargo/config.toml`,
    /// the toolchain file), by path relative to the workspace root.
    pub files: Vec<RecipeFile>,
    /// Source files written as placeholders.
    pub placeholders: Vec<Placeholder>,
    /// The packages whose sources are placeholders: workspace members and path
    /// dependencies. Their build outputs are never cached nor left in the target dir.
    pub local_packages: Vec<LocalPackage>,
    /// The binary `prepare --bin` kept, with the package that owns it.
    pub bin: Option<SelectedBin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    pub path: String,
    pub contents: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlaceholderKind {
    /// An empty library.
    Lib,
    /// `fn main() {}`: binaries, examples, tests, benches, build scripts.
    Main,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placeholder {
    pub path: String,
    pub kind: PlaceholderKind,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPackage {
    pub name: String,
    /// The directory of its Cargo.toml, relative to the workspace root (`.` for a root
    /// package, `../x` for a path dependency outside the workspace).
    pub dir: String,
    /// Its targets' names (build outputs are named after them).
    pub targets: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectedBin {
    pub name: String,
    pub package: String,
}

impl Recipe {
    /// The recipe as written to disk: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a recipe serializes");
        v.push(b'\n');
        v
    }

    /// Reads and checks a recipe file.
    pub fn read(path: &Path) -> Result<Recipe, CliError> {
        let bytes = std::fs::read(path).map_err(|source| CliError::RecipeRead {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| CliError::RecipeInvalid {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "format_version {v} is not {FORMAT_VERSION}, the version this cargo-xcache reads"
                )));
            }
            None => return Err(invalid("no format_version".into())),
        }
        let recipe: Recipe = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        for p in recipe
            .files
            .iter()
            .map(|f| &f.path)
            .chain(recipe.placeholders.iter().map(|p| &p.path))
            .chain(recipe.local_packages.iter().map(|p| &p.dir))
        {
            if !is_relative_path(p) {
                return Err(invalid(format!(
                    "path {p:?} is not relative to the workspace root"
                )));
            }
        }
        Ok(recipe)
    }
}

/// A relative path (leading `..` allowed, for path dependencies outside the workspace).
fn is_relative_path(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty()
        && path.components().all(|c| {
            matches!(
                c,
                Component::Normal(_) | Component::ParentDir | Component::CurDir
            )
        })
}
