//! Keeping the local store under its size: entries are evicted least recently used
//! first, and temp files that killed builds left behind are removed. Main function:
//! [`collect`]; `cargo xcache gc` calls it, so does a build when it ends (one that wrote to
//! the store when what it added may take the store near its size by the last count and
//! the ledger of builds since, [`room_for`]; any, when no collection ran for an hour:
//! [`counted_within`]), and a store write now and then (`collect_now_and_then`, for the
//! drop-in mode).
//!
//! What is never removed (the book's "Store layout and entry format", Size, says why):
//! - an entry a running process has open: on Unix a removed file stays readable
//!   through the handles open on it, so a restore in progress always completes;
//! - an entry used (read, written or downloaded) within [`GRACE`], or since the oldest
//!   running build began (by its lease file, `oldest_lease`), while any `cargo xcache
//!   build` holds a lease on the store ([`super::LocalStore::lease`]): a build may have
//!   planned to restore it minutes later (prefetch, seeding), or stored it and not
//!   uploaded it yet. With no lease held, the margin is [`QUIET_GRACE`] (a drop-in
//!   wrapper between its lookup and its read). A collection holds the store's lock
//!   exclusively while it removes, so a build starting meanwhile waits for it
//!   (milliseconds), then sees a consistent store;
//! - a temp file younger than [`TEMP_GRACE`]: it may be a write in progress.
//!
//! Manifests, seed records and remembered identities are small (a few KB per unit) and
//! are counted in the size but not evicted.
//!
//! `collect` is the collection itself (and what starts one after a store write),
//! `ledger` when a build's end must collect, `leases` the running builds a collection
//! spares.

mod collect;
mod leases;
mod ledger;

pub(super) use collect::collect_now_and_then;
pub use collect::{
    GRACE, GcOptions, GcReport, QUIET_GRACE, TEMP_GRACE, collect, human_bytes, sweep_temp_files,
};
pub use leases::LEASES;
pub use ledger::{IDLE_EVERY, counted_within, note_added, room_for};

#[cfg(test)]
mod tests;
