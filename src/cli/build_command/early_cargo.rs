//! cargo started before it may build: before the plan, when there is nothing to plant
//! ([`nothing_to_plant`]), or beside planting, waiting at its build dir's locks.
//! [`EarlyCargo`] stops it, and drops what it said, if the build ends in an error first.

use std::time::Duration;

use super::cargo_command::{CargoRun, CargoStderr, cargo_command, spawn_cargo};
use super::cargo_output::{CargoStdout, HeldStderr};
use super::target_dir::{CACHEDIR_TAG, RunPaths};
use crate::cli::args::BuildArgs;
use crate::cli::remote_session::RemoteSession;
use crate::cli::store_session::StoreSession;
use crate::config::{BuildConfig, Env};
use crate::errors::CliError;
use crate::plan::{HeldLocks, Plan};
use crate::seed::Guess;

/// With nothing to plant nor to fetch (an empty store and no remote: a first build),
/// cargo need not wait for the plan: it starts now (with `paths`, the directory of this
/// run's own), and the plan is made while it works. Returns cargo, and the local store
/// opened before it.
pub(super) fn start_cargo_before_plan(
    run: &CargoRun<'_>,
    cfg: &BuildConfig,
    paths: Option<&RunPaths>,
    guess: Option<&Guess>,
    stdout: &mut CargoStdout,
) -> Result<(Option<EarlyCargo>, Option<StoreSession>), CliError> {
    let mut early: Option<EarlyCargo> = None;
    let mut early_local: Option<StoreSession> = None;
    if let Some(paths) = paths {
        if let Some(made) = guess.and_then(|g| g.made_dir()) {
            // Made for the planted file: cargo will not tag a dir it did not create.
            let _ = std::fs::write(made.join("CACHEDIR.TAG"), CACHEDIR_TAG);
        }
        early_local = Some(StoreSession::start(cfg));
        let cmd = cargo_command(run, cfg, paths, None, CargoStderr::Held);
        let mut child = spawn_cargo(cmd, cfg)?;
        stdout.read(&mut child);
        let held = HeldStderr::read(&mut child, false);
        // `cargo metadata` waits for the package cache's lock while cargo resolves the
        // workspace: asked once cargo has started its first unit (or ended), it finds
        // the lock free and runs beside the compiles.
        while !paths.events.exists() && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(2));
        }
        early = Some(EarlyCargo {
            child: Some(child),
            held,
        });
    }
    Ok((early, early_local))
}

/// cargo resolves the workspace while seeding plants: it waits for its build dir's
/// locks, held here until everything is planted (`plan::cargo_lock`). Not where its
/// stderr is a terminal's (held, cargo would lose its colours) or its program's, nor
/// with a remote (what the wrappers are told of it is known once the prefetch ends).
/// `possible`: cargo may start before planting ends, and has not started yet. Returns the
/// locks, to be let go once everything is planted, and cargo.
pub(super) fn start_cargo_beside_planting(
    run: &CargoRun<'_>,
    cfg: &BuildConfig,
    plan: &Plan,
    paths: &RunPaths,
    remote: Option<&RemoteSession>,
    possible: bool,
    stdout: &mut CargoStdout,
) -> Result<(Option<HeldLocks>, Option<EarlyCargo>), CliError> {
    let held_locks = (possible
        && remote.is_none()
        && cfg.seed
        && !cfg.disabled
        && plan.layout.is_ok())
    .then_some(plan.cargo_locks.as_ref())
    .flatten()
    .and_then(|locks| {
        let mut profiles = vec![plan.selection.profile_dir()];
        if let Some(t) = &plan.selection.target {
            profiles.push(format!("{t}/{}", plan.selection.profile_dir()));
        }
        HeldLocks::hold(&locks.files(&plan.graph.build_dir, &plan.graph.target_dir, &profiles))
    });
    let mut beside: Option<EarlyCargo> = None;
    if held_locks.is_some() {
        let cmd = cargo_command(run, cfg, paths, remote, CargoStderr::Held);
        let mut child = spawn_cargo(cmd, cfg)?;
        stdout.read(&mut child);
        let held = HeldStderr::read(&mut child, true);
        beside = Some(EarlyCargo {
            child: Some(child),
            held,
        });
    }
    Ok((held_locks, beside))
}

/// cargo started before the plan ([`nothing_to_plant`]): stopped, and what it said
/// dropped, if the build ends in an error before it is handed over.
pub(super) struct EarlyCargo {
    child: Option<std::process::Child>,
    held: Option<HeldStderr>,
}

impl EarlyCargo {
    /// The plan is made and sound: cargo goes on, and what it said is shown.
    pub(super) fn hand_over(mut self) -> (std::process::Child, Option<HeldStderr>) {
        let child = self.child.take().expect("handed over once");
        let held = self.held.take();
        if let Some(h) = &held {
            h.release();
        }
        (child, held)
    }
}

impl Drop for EarlyCargo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(held) = self.held.take() {
                held.drop_all();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True when seeding could plant nothing and prefetch fetch nothing, so that cargo need
/// not wait for the plan: no remote (none given on the command line, in
/// `XCACHE_REMOTE`, in the user's configuration file, or in an `xcache.toml` in the
/// working directory or any above it, where the workspace's would be), the workspace
/// found from the working directory (no `--manifest-path`), and a local store that
/// holds no seed record (or seeding off). Anything unsure says false: the build then
/// plans first, as always.
///
/// The remote's settings are read here as they are after the plan (an error in them
/// stops the build before cargo starts, as always).
pub(super) fn nothing_to_plant(
    cfg: &mut BuildConfig,
    env: &Env,
    args: &BuildArgs,
) -> Result<bool, CliError> {
    let sel = crate::plan::graph::selection_from_cargo_args(&args.cargo_args);
    if sel.manifest_path.is_some()
        || cfg
            .cwd
            .ancestors()
            .any(|d| std::fs::symlink_metadata(d.join("xcache.toml")).is_ok())
    {
        return Ok(false);
    }
    // No workspace file: the user's and the environment's settings are all there is.
    let cwd = cfg.cwd.clone();
    cfg.resolve_remote(env, args.remote.as_deref(), args.read_only, &cwd)?;
    if cfg.remote.is_some() {
        return Ok(false);
    }
    if cfg.disabled || !cfg.seed {
        return Ok(true);
    }
    Ok(crate::store::LocalStore::open(&cfg.store_dir)
        .is_ok_and(|store| crate::seed::holds_no_records(&store)))
}
