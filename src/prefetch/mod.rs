//! The remote tier from the front-end: prefetch every entry the build is predicted to
//! need, in parallel, before cargo starts; upload new entries in the background while
//! cargo runs; record what this build used in the remote's index for the next one.
//!
//! Request pattern against a remote (see the book's "Remote stores"):
//! 1. one GET of the index for this toolchain and workspace (prediction keys -> entries,
//!    with their input sets, so no manifest needs fetching),
//! 2. the entries, all in parallel (bounded).
//!
//! Main entry points: [`prefetch`], [`Uploader`], [`update_index`].

mod download;
mod index;
mod predict;
mod upload;

pub use download::{Arrivals, PendingPrefetch, PrefetchOutcome, prefetch};
pub use index::{Index, IndexEntry, IndexSeed, index_path};
pub use predict::{
    MemberCompiler, PredictedUnit, PredictionInput, predict, predict_units, record_key, unit_kind,
};
pub use upload::{UploadOutcome, Uploader, update_index};
