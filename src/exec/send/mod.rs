//! A library or proc-macro compile sent to the Execution service `XCACHE_EXECUTOR`
//! names, instead of run here. Main function: [`attempt`].
//!
//! A proc-macro links: its action also asks for the worker's linker identity
//! ([`crate::exec::wire::LINKER_PROPERTY`]), the files that identity covers are agreed
//! (`observed::Agreed`), and the linker command line rustc prints comes back as an
//! output, read as this machine's, for the link inputs of the key.
//!
//! The attempt gives back what a local run gives ([`RemoteRun`]: messages, the
//! observer's record) with the outputs in their local places, so the rest of the unit's
//! lifecycle — what it read, judged by the same code as a local compile's; the entry
//! stored — does not know where it ran. Anything that keeps the remote result from
//! standing for a local compile is a [`Fallback`]: the unit is compiled here, as
//! without an executor, and the reason goes in its event.
//!
//! Paths: the input root mirrors the key's roots (`ws/`, `target/`, `cargo-home/`), and
//! every argument and variable that names a root is rewritten to the worker's copy of
//! it. The worker's absolute directory is known only when the action runs, so the
//! command is `/bin/sh -c SCRIPT`: the script finds the root (`pwd -P`), exports the
//! rewritten variables and starts the worker's rustc (`XCACHE_RUSTC`, which the worker
//! sets) with every argument quoted, roots written `"$R/ws"`. The path remapping is the
//! same as a local compile's (each root to its `/xcache/…` name), so the artifacts
//! name the same paths. What comes back (messages, dep-info, the record) is rewritten
//! from the worker's paths to this machine's.
//!
//! The unit the compile comes from is an [`Origin`] (the wrapper's run of it): this
//! module does not know the wrapper. The files: the attempt (`attempt`), the action
//! (`request`, `inputs`, `memo`), the roots it names (`roots`), what came back
//! (`finish`, `translate`), how it went (`outcome`), and the share of results
//! compiled here as well and compared (`check`).

mod attempt;
pub mod check;
mod finish;
mod inputs;
mod job;
mod memo;
mod outcome;
mod request;
mod roots;
mod toolchain;
mod translate;

pub use attempt::attempt;
pub use job::{Hedge, Job, Origin, RemoteRun};
pub use outcome::{Fallback, Fell, RemoteExec};
pub use toolchain::send_ahead;
