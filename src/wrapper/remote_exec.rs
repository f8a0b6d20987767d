//! The wrapper's side of a compile sent to the executor (the attempt itself is
//! [`crate::exec::send`]): the unit's run ([`Cx`]) is the attempt's [`Origin`], and
//! what came back is taken as a local run ([`Ran`]), unless it is one of the share
//! `XCACHE_EXECUTOR_CHECK` compiles here as well ([`Done::check`]). Main function:
//! [`attempt`].

use std::path::Path;

use super::expansion::roots_stay_out;
use super::hedge::HedgeRun;
use super::lifecycle::{Cx, Ran};
use crate::config::Env;
use crate::errors::CacheError;
use crate::exec::send::check::{self, RemoteOutputs};
use crate::exec::send::{self, Fell, Origin, RemoteExec};
pub(super) use crate::exec::send::{Fallback, Job};
use crate::key::{Key, PathMap, Root};

/// A remote compile that stands for a local one.
pub(super) struct Done {
    pub ran: Ran,
    pub record: RemoteExec,
    /// The roots (tokens) the expansion check found to go no further than file paths,
    /// when the compile read variables naming roots (so the unit's inputs need not
    /// run it again for the same roots).
    pub roots_stay_out: Option<Vec<String>>,
    /// In the checked share (`XCACHE_EXECUTOR_CHECK`): the worker's outputs, by digest,
    /// taken out of their places. The unit is then compiled here as a fallback would be
    /// and its outputs compared with these ([`RemoteOutputs::compare`]); the remote
    /// messages are not passed on.
    pub check: Option<RemoteOutputs>,
}

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once. `unit` is the unit's
/// first-level key, which (with this machine's salt) decides whether it is checked.
/// `hedge`: the compile run here meanwhile (`XCACHE_EXECUTOR_HEDGE`; see
/// [`send::attempt`]).
pub(super) fn attempt(
    cx: &mut Cx,
    job: &Job<'_>,
    unit: Option<&Key>,
    hedge: &mut HedgeRun,
) -> Result<Done, Fell> {
    if let Some(fell) = check::given_up(job.spec) {
        return Err(fell);
    }
    let run = send::attempt(cx, job, Some(hedge))?;
    let outputs: Vec<_> = job
        .inv
        .outputs()
        .into_iter()
        .map(|o| (o.role, cx.cfg.cwd.join(&o.path)))
        .collect();
    // A worker found to lie while this compile was out: nothing of it is used.
    if let Some(fell) = check::given_up(job.spec) {
        remove(&outputs);
        return Err(fell);
    }
    let worker = run.record.worker.clone().unwrap_or_default();
    let check = match unit {
        Some(k) if !check::sampled(job.spec.check_per_mille, k) => None,
        // Checked: every output but the dep-info (rewritten to this machine's paths;
        // the compile here writes its own) compared byte for byte.
        _ if job.spec.check_per_mille > 0 => {
            let compared: Vec<_> = outputs
                .iter()
                .filter(|(role, _)| *role != "dep-info")
                .map(|(_, p)| p.clone())
                .collect();
            let taken = RemoteOutputs::take(&worker, &compared);
            remove(&outputs);
            match taken {
                Ok(t) => Some(t),
                Err(why) => {
                    return Err((Fallback::Outputs, format!("to check it: {why}")));
                }
            }
        }
        _ => None,
    };
    Ok(Done {
        ran: Ran {
            code: 0,
            stdout: run.stdout,
            stderr: run.stderr,
            trace: Some(run.trace),
        },
        record: run.record,
        roots_stay_out: run.roots_stay_out,
        check,
    })
}

/// Removes what a worker put in place, so that only a compile here leaves outputs there.
fn remove(outputs: &[(&str, std::path::PathBuf)]) {
    for (_, p) in outputs {
        let _ = std::fs::remove_file(p);
    }
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
