//! The remote tier from the front-end: prefetch every entry the build is predicted to
//! need, in parallel, before cargo starts; upload new entries in the background while
//! cargo runs; record what this build used in the remote's index for the next one.
//!
//! Request pattern against a remote (see the book's "Remote stores"):
//! 1. one GET of the index for this toolchain and workspace (prediction keys -> entries,
//!    with their input sets, so no manifest needs fetching), beside the remote's check,
//! 2. the bundle pieces that hold what the plan needs, and the entries no piece holds,
//!    all in parallel (bounded) on one pool of connections.
//!
//! Main entry points: [`prefetch`], [`Uploader`], [`update_index`].

mod bundle;
mod download;
mod index;
mod upload;

pub use bundle::{MAX_PIECES, MIN_NEW, PIECE_BYTES, piece_path, uncovered};
pub use download::{PendingPrefetch, PrefetchOutcome, prefetch};
pub use index::{BundleMember, BundlePiece, Index, IndexEntry, IndexSeed, index_path};
pub use upload::{UploadOutcome, Uploader, update_index};
