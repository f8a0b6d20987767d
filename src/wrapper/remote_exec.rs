//! The wrapper's side of a compile sent to the executor (the attempt itself is
//! [`crate::exec::send`]): the unit's run ([`Cx`]) is the attempt's [`Origin`], and
//! what came back is taken as a local run ([`Ran`]). Main function: [`attempt`].

use std::path::Path;

use super::expansion::roots_stay_out;
use super::lifecycle::{Cx, Ran};
use crate::config::Env;
use crate::errors::CacheError;
use crate::exec::send::{self, Fell, Origin, RemoteExec};
pub(super) use crate::exec::send::{Fallback, Job};
use crate::key::{PathMap, Root};

/// A remote compile that stands for a local one.
pub(super) struct Done {
    pub ran: Ran,
    pub record: RemoteExec,
    /// The roots (tokens) the expansion check found to go no further than file paths,
    /// when the compile read variables naming roots (so the unit's inputs need not
    /// run it again for the same roots).
    pub roots_stay_out: Option<Vec<String>>,
}

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once.
pub(super) fn attempt(cx: &mut Cx, job: &Job<'_>) -> Result<Done, Fell> {
    let run = send::attempt(cx, job)?;
    Ok(Done {
        ran: Ran {
            code: 0,
            stdout: run.stdout,
            stderr: run.stderr,
            trace: Some(run.trace),
        },
        record: run.record,
        roots_stay_out: run.roots_stay_out,
    })
}

impl Origin for Cx {
    fn path_map(&self) -> &PathMap {
        &self.pm
    }

    fn cwd(&self) -> &Path {
        &self.cfg.cwd
    }

    fn env(&self) -> &Env {
        &self.cfg.env
    }

    fn warn(&mut self, e: &CacheError) {
        Cx::warn(self, e);
    }

    fn roots_stay_out(&mut self, job: &Job<'_>, vars: &[(String, String)], named: &[Root]) -> bool {
        self.phase("expansion", |cx| {
            roots_stay_out(job.command, job.inv, &cx.pm, vars, named, true, None)
        })
    }
}
