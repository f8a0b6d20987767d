//! The one lifecycle of a cached unit, whatever it is — a rustc invocation or a
//! build-script run. Main function: [`run_cached`]; a kind of unit plugs in through
//! [`Cached`].
//!
//! In order: a reason known before anything runs; the first-level key; a lookup (every
//! recorded variant judged by `crate::judge`, locally, then in the remote tier); a
//! restore and a replay; or else the real run, observed (`crate::observe`), its inputs
//! and outputs, the entry stored (bound to any machine root its outputs name), the
//! variant recorded; and one event. Each step exists once, here.

mod cached;
mod context;
mod dirs;
mod emit;
mod lookup;
mod run_cached;
mod store_entry;
mod verify_hit;

pub(super) use cached::{Cached, OutFile, OutSource, Ran, Rerun, tee};
pub(super) use context::Cx;
pub(super) use dirs::{scratch_dirs, target_root};
pub(super) use emit::warn_once_per_build;
pub(super) use run_cached::run_cached;
