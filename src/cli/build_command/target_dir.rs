//! The target dir (and a build dir apart from it) made ready for a build: cargo's
//! `CACHEDIR.TAG`, our `xcache/` dir, and [`RunPaths`], where the wrappers of one build
//! write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::errors::CliError;
use crate::plan::Plan;

/// Whether the plan's target dir is new to this build: the guess made it, it does not
/// exist yet, or (cargo started before the plan) cargo made it since it started.
pub(super) fn is_new_target_dir(
    plan: &Plan,
    made_target_dir: bool,
    early: bool,
    before_early: Instant,
) -> bool {
    // A target dir cargo made since it started is new too.
    made_target_dir
        || !plan.graph.target_dir.exists()
        || (early
            && std::fs::metadata(&plan.graph.target_dir)
                .and_then(|m| m.created())
                .is_ok_and(|born| {
                    born.elapsed()
                        .is_ok_and(|age| age <= before_early.elapsed())
                }))
}

/// Makes the target dir's `xcache/` (returned), and tags a target dir or build dir that
/// is new as cargo would.
pub(super) fn ready_target_dir(plan: &Plan, new_target_dir: bool) -> Result<PathBuf, CliError> {
    let xdir = plan.graph.target_dir.join("xcache");
    std::fs::create_dir_all(&xdir).map_err(|source| CliError::WriteReport {
        path: xdir.clone(),
        source,
    })?;
    if new_target_dir {
        // Cargo tags a target dir it creates, and only then; creating it here would
        // leave it untagged, and the tag is how wrappers find the target dir's root.
        let _ = std::fs::write(plan.graph.target_dir.join("CACHEDIR.TAG"), CACHEDIR_TAG);
        crate::cli::store_session::mark_swept(&plan.graph.target_dir);
    }
    // The same for a build dir apart from the target dir (`build.build-dir`).
    if plan.graph.build_dir != plan.graph.target_dir && !plan.graph.build_dir.exists() {
        let _ = std::fs::create_dir_all(&plan.graph.build_dir);
        let _ = std::fs::write(plan.graph.build_dir.join("CACHEDIR.TAG"), CACHEDIR_TAG);
    }
    Ok(xdir)
}

/// Where the wrappers of one build write: their events, the remote's state, the locks
/// of their background work.
#[derive(Clone, Debug)]
pub(super) struct RunPaths {
    pub events: PathBuf,
    pub remote_state: PathBuf,
    pub pending: Option<PathBuf>,
}

impl RunPaths {
    /// In the target dir's `xcache/`, named by this process.
    pub(super) fn in_target_dir(xdir: &Path, background: bool) -> RunPaths {
        let pid = std::process::id();
        RunPaths {
            events: xdir.join(format!("events-{pid}.jsonl")),
            remote_state: xdir.join(format!("remote-{pid}.state")),
            pending: background.then(|| xdir.join(format!("pending-{pid}"))),
        }
    }

    /// In a directory of this run's own (cargo started before the target dir was known).
    pub(super) fn in_dir(dir: &Path, background: bool) -> RunPaths {
        RunPaths {
            events: dir.join("events.jsonl"),
            remote_state: dir.join("remote.state"),
            pending: background.then(|| dir.join("pending")),
        }
    }
}

/// What cargo writes to `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
pub(super) const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";
