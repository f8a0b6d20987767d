//! The plan of a build, made once (before cargo, or beside its first units when cargo
//! started first), and what it settles: the guessed target dir of cargo's compiler
//! probes, and the remote an `xcache.toml` at the workspace's root names.

use std::path::Path;

use super::cargo_command::CargoRun;
use crate::cli::args::BuildArgs;
use crate::config::BuildConfig;
use crate::errors::CliError;
use crate::plan::{CargoLocking, Plan};
use crate::report::Verbosity;
use crate::seed::Guess;

/// The plan, and what it said of the guessed target dir.
pub(super) struct PlanMade {
    pub plan: Plan,
    /// The guess made the plan's target dir (so it is new).
    pub made_target_dir: bool,
    /// The guess was the plan's build dir: cargo's probes are answered there already.
    pub guessed_right: bool,
}

/// Makes the plan; `early`: cargo started before it. Whatever the plan's fate, the guess
/// is settled first (taken back where it was wrong).
pub(super) fn make_plan(
    run: &CargoRun<'_>,
    cfg: &BuildConfig,
    guess: Option<Guess>,
    early: bool,
    beside_possible: bool,
) -> Result<PlanMade, CliError> {
    let (command, env, exe) = (run.command, run.env, run.exe);
    let plan = if early {
        // cargo's first units are on the build's critical path, and the plan (`cargo
        // metadata`, the graph) is not: it is made at the lowest priority, by a thread
        // whose children inherit it, in what the compiles leave of the cores.
        // cargo's locks are learned for the next build (it may then start beside
        // planting), from this one's cargo and configuration.
        let locking = if beside_possible {
            CargoLocking::Learn
        } else {
            CargoLocking::Off
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    crate::wrapper::lower_this_threads_priority();
                    Plan::make(cfg, env, command, run.cargo_args, exe, locking)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        let locking = if beside_possible {
            CargoLocking::Remembered
        } else {
            CargoLocking::Off
        };
        Plan::make(cfg, env, command, run.cargo_args, exe, locking)
    };
    let made_target_dir = match (&plan, &guess) {
        (Ok(p), Some(g)) => g.made(&p.graph.build_dir),
        _ => false,
    };
    if let (Ok(p), Some(made), true) = (&plan, guess.as_ref().and_then(|g| g.made_dir()), early)
        && made != p.graph.build_dir
    {
        // Not the target dir after all: the tag goes with the guess.
        let _ = std::fs::remove_file(made.join("CACHEDIR.TAG"));
    }
    let guessed_right = guess.is_some_and(|g| {
        g.settle(
            plan.as_ref()
                .map_or(Path::new(""), |p| p.graph.build_dir.as_path()),
        )
    });
    // cargo started without a plan: on an error from here on, it is stopped and what it
    // said is dropped (the error says it once, as without the early start).
    let plan = plan?;
    Ok(PlanMade {
        plan,
        made_target_dir,
        guessed_right,
    })
}

/// Resolves the remote where the plan found the workspace's root. `early`: cargo started
/// before the workspace was read, so its wrappers know no remote named there.
pub(super) fn resolve_workspace_remote(
    cfg: &mut BuildConfig,
    run: &CargoRun<'_>,
    args: &BuildArgs,
    plan: &Plan,
    early: bool,
    verbosity: Verbosity,
) -> Result<(), CliError> {
    cfg.resolve_remote(
        run.env,
        args.remote.as_deref(),
        args.read_only,
        &plan.graph.workspace_root,
    )?;
    if early && let Some(remote) = cfg.remote.take() {
        // An `xcache.toml` where `package.workspace` put the workspace root, outside the
        // directories looked at before cargo started: its wrappers know no remote.
        cfg.remote_uri = None;
        verbosity.warn(&format!(
            "warning: xcache: the remote {remote} named in {} is not used by this build, \
             which started before the workspace was read; the next build uses it",
            plan.graph.workspace_root.join("xcache.toml").display()
        ));
    }
    Ok(())
}
