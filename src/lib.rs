//! cargo-xcache: a path-independent compilation cache for cargo builds that start cold.
//!
//! The rooms, from the front door down; each imports only rooms below it:
//!
//! - [`cli`]: `cargo xcache <command>`, and the rustc-wrapper and build-script-shim
//!   modes the executable is invoked in.
//! - [`prefetch`]: before cargo starts, downloads in parallel what the plan predicts;
//!   while it runs, uploads; after it, records what the build used in the remote index.
//! - [`seed`]: plants cached units and cargo's records of them in the target dir so
//!   cargo finds them fresh; captures them after a build.
//! - [`report`]: what the user sees (`report.json`, the summary, progress, why a unit
//!   missed).
//! - [`wrapper`]: one rustc invocation or one build-script run through the cache:
//!   restore or compile (here or remotely), observe, check, store, write an event.
//! - [`worker`]: `cargo xcache worker`, our worker for a REAPI server's Execution
//!   service.
//! - [`exec`]: remote execution: a compile sent as a REAPI action, what came back
//!   judged ([`exec::send`], the client's side); [`exec::wire`] is what the client and
//!   the worker agree on.
//! - [`judge`]: the one judge of whether a recorded result still holds here and now.
//! - [`store`]: bytes at rest: the local store, the entry format, manifests, history,
//!   and remote stores (opendal's services, a REAPI server's cache).
//! - [`observe`]: what a compile or a build-script run read, from the observer's
//!   record.
//! - [`plan`]: what one cargo command will compile (the graph, the selection, the
//!   units and their prediction keys), made once before cargo starts.
//! - [`reapi`]: the one REAPI client the store, exec and the worker share.
//! - [`key`]: what a cache key covers, and the states inputs are recorded in.
//! - [`config`]: settings resolved once from flags, environment and files.
//! - [`recipe`]: `cargo xcache prepare`'s recipe for chef-style Docker layers.
//! - [`interpose`]: the C libraries preloaded into the processes the cache runs.
//! - [`private_dir`], [`errors`], [`fsx`], [`sign`], [`reason`]: the ground.

pub mod cli;
pub mod config;
pub mod errors;
pub mod exec;
pub mod fsx;
pub mod interpose;
pub mod judge;
pub mod key;
pub mod observe;
pub mod plan;
pub mod prefetch;
pub mod private_dir;
pub mod reapi;
pub mod reason;
pub mod recipe;
pub mod report;
pub mod seed;
pub mod sign;
pub mod store;
pub mod worker;
pub mod wrapper;
