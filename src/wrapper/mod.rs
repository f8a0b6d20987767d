//! One rustc invocation or one build-script run through the cache.
//!
//! The wrapper is the same executable as the CLI, chosen by how it is invoked: cargo's
//! `RUSTC_WRAPPER` protocol passes the real rustc as the first argument
//! ([`run_wrapper`]); build-script runs come through a shim (module `shim`) that runs
//! this program's build-run mode ([`run_build_script`]). There is no daemon; two builds
//! side by side only meet in the store.
//!
//! Both go through one lifecycle (module `lifecycle`): key, judge the recorded
//! variants, restore and replay, or run observed, store, record, and one event. The
//! rustc and build-script adapters (`rustc`, `script`) only say what differs.

mod background;
mod event;
mod expansion;
mod hedge;
mod lifecycle;
mod linked;
mod local_slots;
mod remote_exec;
mod remote_tier;
mod restore;
mod run_check;
mod rustc;
mod script;
mod script_build;
mod shim;

pub use crate::exec::send::RemoteExec;
pub use background::{lower_this_threads_priority, wait_all};
pub use event::{
    CpuTimes, DROPIN_PREFIX, EventStream, EventTail, HitVerdict, LinkerUsed, Outcome, StartEvent,
    UnitEvent, UnitName, UnitPlace, UnitRecord, Verified, Warning, append_event,
    dropin_events_path, peak_rss_kb, read_events, read_stream,
};
pub use restore::{RestoreFilter, Restored, restore_entry};
pub use rustc::run_wrapper;
pub use script::{PLANTED_MARKER, clear_rejected_plant, run_build_script};
pub use script_build::RECIPE_SUFFIX;
pub use shim::{
    BUILD_RUN_COMMAND, REAL_SUFFIX, is_real_executable, is_shim_text, shim_text, write_shim,
};
