//! One build-script run through the cache: the build-script adapter of the lifecycle
//! (`super::lifecycle`). Main entry: [`run_build_script`].
//!
//! cargo runs the shim (`super::shim`) with the package directory as working directory
//! and the build-script environment (`OUT_DIR`, `CARGO_*`, `TARGET`, …). The run is
//! keyed (`key::run_l1_key`, then the entry key over what the script read: everything
//! the observer saw, and what it declared); a hit writes the stored `OUT_DIR` files back
//! and prints what the script printed; a miss runs the real executable observed, passes
//! its output through, and stores the files the run wrote in `OUT_DIR` with that
//! output.

mod adapter;
mod added;
mod path_check;
mod planted;
mod unit;

pub use adapter::run_build_script;
pub use planted::{PLANTED_MARKER, clear_rejected_plant};
