//! Building a [`Recipe`] from a workspace: `cargo metadata` for the local packages and
//! their targets, their manifests normalised, the lockfile with the members' versions
//! masked, and the files that steer cargo and rustup.
//!
//! [`prepare`] reads the workspace (`workspace`), normalises each manifest
//! (`manifest`), rewrites the lockfile (`lockfile`), and names paths as the recipe
//! holds them (`paths`).

mod lockfile;
mod manifest;
mod paths;
mod workspace;

pub use workspace::{PrepareOptions, prepare};
