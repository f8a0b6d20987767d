//! One rustc invocation: parse, classify, restore or compile, then record an event.
//!
//! The wrapper is the same executable as the CLI, chosen by how it is invoked: cargo's
//! `RUSTC_WRAPPER` protocol passes the real rustc as the first argument. There is no
//! daemon; two builds side by side only meet in the store. Main entry: [`run_wrapper`].
//!
//! Build-script runs come through a shim (module `shim`) that runs this program's build-run
//! mode ([`run_build_script`]).

mod build_run;
mod event;
mod linked;
mod reason;
mod remote_tier;
mod restore;
mod run;
mod shim;

pub use build_run::run_build_script;
pub use event::{
    LinkerUsed, Outcome, UnitEvent, UnitPlace, UnitRecord, Warning, append_event, read_events,
};
pub use reason::{BUILD_SCRIPT_FAILED, RUSTC_FAILED, Uncacheable};
pub use restore::{Restored, restore_entry};
pub use run::run_wrapper;
pub use shim::{BUILD_RUN_COMMAND, REAL_SUFFIX, is_shim_text, shim_text, write_shim};
