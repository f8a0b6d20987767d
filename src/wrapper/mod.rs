//! One rustc invocation: parse, classify, restore or compile, then record an event.
//!
//! The wrapper is the same executable as the CLI, chosen by how it is invoked: cargo's
//! `RUSTC_WRAPPER` protocol passes the real rustc as the first argument. There is no
//! daemon; two builds side by side only meet in the store. Main entry: [`run_wrapper`].

mod event;
mod linked;
mod reason;
mod remote_tier;
mod restore;
mod run;

pub use event::{
    LinkerUsed, Outcome, UnitEvent, UnitPlace, UnitRecord, Warning, append_event, read_events,
};
pub use reason::{RUSTC_FAILED, Uncacheable};
pub use restore::{Restored, restore_entry};
pub use run::run_wrapper;
