//! What a compile brings to a remote attempt ([`Job`], and the [`Origin`] it comes from
//! on this machine), and what the attempt gives back ([`RemoteRun`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::outcome::RemoteExec;
use crate::config::{Env, ExecutorSpec};
use crate::errors::CacheError;
use crate::key::{CompilerId, PathMap, Root, RustcInvocation};
use crate::observe::Trace;

/// The unit a compile comes from, as the attempt sees it: where rustc runs, with what
/// environment and roots, and what only the unit's own run can do (warn once; the
/// expansion check).
pub trait Origin {
    /// The unit's roots and their remapping.
    fn path_map(&self) -> &PathMap;
    /// The directory rustc runs in.
    fn cwd(&self) -> &Path;
    /// The compile's environment.
    fn env(&self) -> &Env;
    /// Warns about a problem of the cache, once for the unit.
    fn warn(&mut self, e: &CacheError);
    /// Whether the roots `named`, which the variables `vars` read by the compile name, go
    /// no further than file paths (the expansion check, run with `job.command`).
    fn roots_stay_out(&mut self, job: &Job<'_>, vars: &[(String, String)], named: &[Root]) -> bool;
}

/// The same compile run here while its action waits for a worker
/// (`XCACHE_EXECUTOR_HEDGE`): whichever of the two ends first stands. The attempt starts
/// it, and stops it before a worker's outputs are put in place; the unit uses its run
/// when the attempt falls back.
pub trait Hedge {
    /// Starts the compile here; `ended` is told once it has ended. `false`: it did not
    /// start (no hedge slot free, or it could not be started), and nothing runs.
    fn start(&mut self, ended: std::sync::Arc<tokio::sync::Notify>) -> bool;
    /// Ends it, if it runs, with every process it started, and waits for them: nothing
    /// of it is used and it writes nothing more.
    fn stop(&mut self);
}

/// What one compile needs from its unit.
pub struct Job<'a> {
    pub spec: &'a ExecutorSpec,
    pub inv: &'a RustcInvocation,
    pub compiler: &'a CompilerId,
    /// The arguments after the remapping, as a local run passes them.
    pub args: &'a [String],
    /// Makes the local compiler's command (for the expansion check).
    pub command: &'a dyn Fn() -> Command,
    /// For a compile that links (a proc-macro): the linker identity it asks a worker
    /// for (hex), and the file rustc prints the linker's command line to
    /// (`--print=link-args=`, among `args`), fetched back as an output.
    pub link: Option<(String, PathBuf)>,
}

impl Job<'_> {
    /// Whether the compile carries this machine's toolchain to the worker: with
    /// `XCACHE_EXECUTOR_TOOLCHAIN=ship`, for a compile that does not link (a link reads
    /// the worker's C toolchain, which does not travel: it asks for the installed route
    /// and the linker identity).
    pub fn ships_toolchain(&self) -> bool {
        self.spec.toolchain == crate::config::ToolchainRoute::Ship && self.link.is_none()
    }
}

/// A remote compile that stands for a local one: what a local run that succeeded gives
/// (its messages and the observer's record), with the outputs in their local places.
pub struct RemoteRun {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The worker's record, read as this machine's.
    pub trace: Trace,
    pub record: RemoteExec,
    /// The roots (tokens) the expansion check found to go no further than file paths,
    /// when the compile read variables naming roots (so the unit's inputs need not
    /// run it again for the same roots).
    pub roots_stay_out: Option<Vec<String>>,
}
