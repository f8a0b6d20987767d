//! `cargo xcache worker`: our worker for a REAPI server's Execution service. It takes
//! leases from the server's Bots service (the Remote Workers API), runs each action in
//! a fresh directory made from the CAS, observed, and hands back an `ActionResult`
//! whose outputs it put in the CAS. Main function: [`serve`] with a [`WorkerSpec`].
//!
//! Scheduling, queueing, retries, the CAS and the action cache are the server's; this
//! is only the piece that runs an action. See the book's remote-execution pages.

pub mod action;
mod session;

pub use action::{Caches, DEFAULT_KEEP, Toolchain, Toolchains};
pub use session::{WorkerSpec, serve};
