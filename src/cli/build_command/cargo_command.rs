//! cargo's command line in a build: [`CargoRun`], what every cargo of a build is started
//! with, and [`cargo_command`], the command with this program as its rustc wrapper and
//! the wrappers' settings in its environment; [`Ready`], what the phases from cargo's
//! start on read.

use std::path::Path;
use std::process::{Command, Stdio};

use super::mode::BuildMode;
use super::target_dir::RunPaths;
use crate::cli::remote_session::RemoteSession;
use crate::config::{BuildConfig, Env, vars};
use crate::errors::CliError;
use crate::plan::{CargoCommand, Plan};
use crate::report::{Progress, Verbosity};

/// What every cargo of a build is started with.
pub(super) struct CargoRun<'a> {
    pub command: CargoCommand,
    pub cargo_args: &'a [String],
    /// The user's `--message-format`, if any.
    pub user_format: Option<&'a str>,
    /// Whether cargo's JSON messages are read (on a pipe).
    pub read_json: bool,
    /// This program: the wrapper.
    pub exe: &'a Path,
    pub later_dir: Option<&'a Path>,
    pub mode: &'a BuildMode,
    pub env: &'a Env,
}

/// Where cargo's stderr goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CargoStderr {
    /// This process's.
    Inherited,
    /// Through the progress bar.
    Bar,
    /// To this process, held until the plan is read ([`HeldStderr`](super::cargo_output::HeldStderr)).
    Held,
}

/// The cargo command of a build, with this program as its rustc wrapper.
pub(super) fn cargo_command(
    run: &CargoRun<'_>,
    cfg: &BuildConfig,
    paths: &RunPaths,
    remote: Option<&RemoteSession>,
    stderr: CargoStderr,
) -> Command {
    let command = run.command;
    let mut cmd = Command::new(&cfg.cargo);
    // Ours goes before a `--`: what follows it is the program's or the tool's.
    let end = run
        .cargo_args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(run.cargo_args.len());
    cmd.arg(command.name()).args(&run.cargo_args[..end]);
    if run.user_format.is_none() && command.json_messages() {
        cmd.arg("--message-format=json-render-diagnostics");
    }
    cmd.args(&run.cargo_args[end..]);
    if run.read_json {
        cmd.stdout(Stdio::piped());
    }
    cmd.current_dir(&cfg.cwd)
        .env("RUSTC_WRAPPER", run.exe)
        .env(vars::EVENTS, &paths.events)
        .env(vars::DIR, cfg.store_dir.path())
        .env(vars::REMOTE_STATE, &paths.remote_state);
    match &paths.pending {
        Some(dir) => cmd.env(vars::PENDING, dir),
        None => cmd.env_remove(vars::PENDING),
    };
    match run.later_dir {
        Some(dir) => cmd.env(crate::private_dir::LATER_VAR, dir),
        None => cmd.env_remove(crate::private_dir::LATER_VAR),
    };
    match &cfg.remote_uri {
        Some(uri) => cmd.env(vars::REMOTE, uri),
        None => cmd.env_remove(vars::REMOTE),
    };
    if cfg.read_only {
        cmd.env(vars::READ_ONLY, "1");
    }
    match run.mode.verify {
        Some(pct) => cmd.env(vars::VERIFY, pct.to_string()),
        None => cmd.env_remove(vars::VERIFY),
    };
    if run.mode.placeholders.is_empty() {
        cmd.env_remove(vars::PLACEHOLDERS);
    } else {
        let list: Vec<String> = run
            .mode
            .placeholders
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        cmd.env(vars::PLACEHOLDERS, list.join("\n"));
    }
    if let Some(r) = remote {
        r.configure(&mut cmd);
    }
    match stderr {
        CargoStderr::Inherited => {}
        CargoStderr::Bar => {
            // cargo's own output goes through the bar; keep its colours.
            cmd.stderr(Stdio::piped());
            if run.env.get("CARGO_TERM_COLOR").is_none() {
                cmd.env("CARGO_TERM_COLOR", "always");
            }
        }
        CargoStderr::Held => {
            cmd.stderr(Stdio::piped());
        }
    }
    cmd
}

pub(super) fn spawn_cargo(
    mut cmd: Command,
    cfg: &BuildConfig,
) -> Result<std::process::Child, CliError> {
    cmd.spawn().map_err(|source| CliError::SpawnCargo {
        cargo: cfg.cargo.clone(),
        source,
    })
}

/// What the phases of a build read from cargo's start on, settled once the plan is made:
/// how cargo runs, the settings, the plan, where the wrappers write.
pub(super) struct Ready<'a> {
    pub run: &'a CargoRun<'a>,
    pub cfg: &'a BuildConfig,
    pub plan: &'a Plan,
    pub paths: &'a RunPaths,
    /// The directory of this run's own where cargo started before the plan.
    pub early_dir: Option<&'a Path>,
    pub progress: &'a Progress,
    pub verbosity: Verbosity,
}
