//! Prefetch: one request for the index (beside the remote's check), then every predicted
//! entry in parallel on one pool of connections, each streamed to a file in the local
//! store; the first downloads start while the rest of the index is being judged.
//!
//! `start` chooses what to download and starts it ([`prefetch`], [`PendingPrefetch`]);
//! `pool` is the threads that download it.

mod pool;
mod start;

pub use start::{PendingPrefetch, PrefetchOutcome, prefetch};
