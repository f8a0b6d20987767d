//! Remote execution: a command sent as a REAPI action to a server's Execution service
//! (`XCACHE_EXECUTOR=grpc://HOST:PORT?instance=NAME`) and run on one of its workers
//! (ours: `cargo xcache worker`). Main type: [`Executor`]; the input root is an
//! [`InputRoot`]. A compile is sent, and what came back judged, by [`send::attempt`].

mod client;
pub mod observed;
pub mod send;
mod tree;
pub mod wire;

pub use client::{ExecRequest, Executed, Executor, QueueWait, is_unreachable};
pub use tree::{Bytes, InputFile, InputRoot, Merkle, digest_file};
