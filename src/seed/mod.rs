//! Seeding the target dir: put a unit's outputs *and cargo's own records of it* (its
//! `.fingerprint` directory, its build-script run directory) in place before cargo
//! starts, so cargo finds the unit fresh and spawns nothing for it.
//!
//! Soundness rests on two checks, both of which must pass:
//! - cargo's: a planted unit is used only if the fingerprint hash cargo computes now
//!   (compiler, features, profile, flags, dependencies' fingerprints, …) equals the
//!   planted one; otherwise cargo rebuilds it, through the wrapper as usual;
//! - ours, for what cargo checks by file times: every source file, `rerun-if-changed`
//!   path and `env!` variable the unit read must have the same content or value as when
//!   the unit was captured. Planted files get one timestamp taken *before* that check,
//!   so an edit made after it still looks newer to cargo.
//!
//! Flow: [`capture_one`] while cargo runs, for each unit cargo is done with, and
//! [`capture`] after a successful build, for the rest the wrapper cached;
//! [`plant`] before a build, for the units the plan predicts.

mod arrivals;
mod capture;
mod dep_info;
mod fingerprint;
mod plant;
mod record;
mod rustc_info;

pub use arrivals::Arrivals;
pub use capture::{
    Attempt, CaptureStats, Captured, Site, capture, capture_one, ready, settled, still_as_read,
};
pub use plant::{PlantInput, Planted, plant};
pub use record::{SeedRecord, SeedVariant, add_variant, holds_no_records, read_record};
pub use rustc_info::{Guess, RustcInfo};
