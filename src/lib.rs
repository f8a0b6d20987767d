//! cargo-xcache: a path-independent compilation cache for cargo builds that start cold.
//!
//! Data flows one way: [`graph`] (what cargo will compile) -> [`key`] (what a cache key
//! covers) -> [`store`] (bytes at rest) -> [`wrapper`] (one rustc invocation: restore or
//! compile, then write an event) -> [`report`] (what the user sees). [`prefetch`] moves
//! entries between the remote and the local store around the build; [`seed`] puts
//! cached units and cargo's records of them in the target dir before cargo starts. [`config`] resolves
//! flags, environment and files once; [`cli`] is the front door used by the binary.

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
