//! The plan stage: what one cargo command will compile, made once before cargo starts
//! and read by prefetch, seeding and the report. Main type: [`Plan`].

mod cargo_lock;
mod command;
pub mod graph;
mod layout;
mod predict;
mod rustflags;
mod units;

pub use cargo_lock::{CargoLocks, HeldLocks, is_lock_wait};
pub use command::{CargoCommand, Compiles, TargetModes};
pub use layout::{Probe as LayoutProbe, expected_layout};
pub use predict::{MemberCompiler, PredictionInput, predict, predict_units};
pub use units::{CargoLocking, Plan, RustdocUnit, identify_toolchain};
