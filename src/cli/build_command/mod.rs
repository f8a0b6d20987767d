//! `cargo xcache build` (and `check`, `test`, … : every [`CargoCommand`]): plan, run
//! cargo with this executable as the rustc wrapper, gather the wrapper's events into
//! the report. The phases run in [`run_build`] (`pipeline.rs`).
//!
//! [`CargoCommand`]: crate::plan::CargoCommand

mod background;
mod cargo_command;
mod cargo_output;
mod cargo_run;
mod early_cargo;
mod mode;
mod pipeline;
mod planning;
mod reporting;
mod target_dir;
mod user_args;

pub(super) use mode::BuildMode;
pub use pipeline::run;
pub(super) use pipeline::run_build;
