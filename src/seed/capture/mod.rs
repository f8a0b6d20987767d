//! Capturing units as a build ends: cargo's files for each unit the wrapper cached, and
//! the inputs that must stay unchanged for them to be planted again. A unit cargo is
//! done with is captured while cargo still runs (`capture_one`), and that capture
//! stands once cargo has exited only if nothing it read moved since (`still_as_read`).
//!
//! [`capture`] and [`capture_one`] capture a unit (`unit`): the inputs that must hold
//! for its variant and the pack of cargo's files (`unit_files`, `pack`); `during_build`
//! tells when cargo is done with a unit and whether a capture made then stands; `stats`
//! is what a capture did.

mod during_build;
mod pack;
mod stats;
mod unit;
mod unit_files;

pub use during_build::{capture_one, ready, settled, still_as_read};
pub use stats::{Attempt, CaptureStats, Captured};
pub use unit::{Site, capture};
