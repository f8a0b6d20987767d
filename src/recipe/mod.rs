//! Chef-style Docker layers: `cargo xcache prepare` writes a [`Recipe`] (everything that
//! decides how the dependencies are built, nothing that changes with the workspace's own
//! sources), and `cargo xcache warm` lays it out as a skeleton of placeholder sources and
//! builds the dependencies through the cache.

mod format;
mod prepare;
mod skeleton;

pub use format::{FORMAT_VERSION, LocalPackage, Placeholder, PlaceholderKind, Recipe, RecipeFile};
pub use prepare::{PrepareOptions, prepare};
pub use skeleton::{Skeleton, lay_out, remove_local_artifacts};
