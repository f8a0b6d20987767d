//! The build's driver: [`run_build`] runs a build's phases in order — the settings, what
//! is settled before the plan, cargo's early start, the plan, the target dir, the
//! prefetch, planting, cargo, the wait for the wrappers' background work, the report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::background::wait_for_background;
use super::cargo_command::{CargoRun, Ready};
use super::cargo_output::CargoStdout;
use super::cargo_run::{CargoEnd, run_cargo};
use super::early_cargo::{nothing_to_plant, start_cargo_before_plan, start_cargo_beside_planting};
use super::mode::{BuildMode, BuildOutcome};
use super::planning::{PlanMade, make_plan, resolve_workspace_remote};
use super::reporting::{FrontEndSummary, Sessions, report_build};
use super::target_dir::{RunPaths, is_new_target_dir, ready_target_dir};
use super::user_args::{cargo_help_args, check_nextest_command, message_format, show_cargo_help};
use crate::cli::args::BuildArgs;
use crate::cli::remote_session::RemoteSession;
use crate::cli::seed_session::SeedSession;
use crate::cli::store_session::StoreSession;
use crate::config::{BuildConfig, Env};
use crate::errors::CliError;
use crate::plan::{CargoCommand, Plan};
use crate::report::{Progress, Verbosity};
use crate::seed::{Guess, RustcInfo};

/// `cargo xcache <command>`: cargo's `command` through the cache.
pub fn run(command: CargoCommand, args: BuildArgs) -> Result<i32, CliError> {
    run_build(command, args, &BuildMode::default()).map(|o| o.code)
}

/// The whole pipeline: plan, prefetch, plant, cargo with the wrapper, report, capture.
pub(in crate::cli) fn run_build(
    command: CargoCommand,
    mut args: BuildArgs,
    mode: &BuildMode,
) -> Result<BuildOutcome, CliError> {
    let started = Instant::now();
    let started_epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    args.take_own_flags();
    if let Some(help) = cargo_help_args(command, &args.cargo_args) {
        return show_cargo_help(command, &help).map(|code| BuildOutcome {
            code,
            target_dir: PathBuf::new(),
            build_dir: PathBuf::new(),
            events: Vec::new(),
            verbosity: Verbosity::default(),
        });
    }
    if command == CargoCommand::Nextest {
        check_nextest_command(&args.cargo_args)?;
    }
    let Settings {
        env,
        verbosity,
        mut cfg,
        jobs,
    } = resolve_settings(&args, mode)?;
    let toolchain_sent = send_toolchain_ahead(&env, &cfg);
    let before = before_plan(command, &args, mode, &env, &mut cfg, verbosity)?;
    let toolchain_sent = toolchain_sent.wait();
    let run = CargoRun {
        command,
        cargo_args: &args.cargo_args,
        user_format: before.user_format.as_deref(),
        read_json: before.read_json,
        exe: &before.exe,
        later_dir: before.later_dir.as_deref(),
        mode,
        env: &env,
    };
    let mut stdout = CargoStdout::new(before.user_format.is_some());
    let early_paths = before
        .early_dir
        .as_deref()
        .map(|dir| RunPaths::in_dir(dir, cfg.background_store));
    let before_early = Instant::now();
    let (mut early, early_local) = start_cargo_before_plan(
        &run,
        &cfg,
        early_paths.as_ref(),
        before.guess.as_ref(),
        &mut stdout,
    )?;
    // The plan is made once: prefetch, seeding and the report read it.
    let PlanMade {
        plan,
        made_target_dir,
        guessed_right,
    } = make_plan(
        &run,
        &cfg,
        before.guess,
        early.is_some(),
        before.beside_possible,
    )?;
    resolve_workspace_remote(&mut cfg, &run, &args, &plan, early.is_some(), verbosity)?;

    let new_target_dir = is_new_target_dir(&plan, made_target_dir, early.is_some(), before_early);
    // An unusable store is a warning; the build goes on without it.
    let local = match early_local {
        Some(local) => local,
        None => StoreSession::start(&cfg),
    };
    let xdir = ready_target_dir(&plan, new_target_dir)?;
    // (Not under a running cargo: it probes for itself.)
    if let Some(info) = before
        .rustc_info
        .as_ref()
        .filter(|_| !guessed_right && early.is_none())
    {
        info.plant(&plan.graph.build_dir);
    }
    // Wrappers let cargo go on before they store (`wrapper::wait_all`), unless told not
    // to; this front-end waits for them below.
    let paths = early_paths.unwrap_or_else(|| RunPaths::in_target_dir(&xdir, cfg.background_store));
    if early.is_none() {
        let _ = std::fs::remove_file(&paths.events);
    }
    if let Some(w) = &cfg.replaced_wrapper {
        verbosity.warn(&format!(
            "warning: xcache: RUSTC_WRAPPER={w} is replaced by cargo-xcache for this build"
        ));
    }
    // Whether the remote answers is decided once, here, for every wrapper of the build;
    // then everything predicted is prefetched before cargo starts.
    let mut remote = RemoteSession::start(
        &cfg,
        &plan,
        paths.remote_state.clone(),
        before.show_bar,
        jobs,
    );
    let (held_locks, mut beside) = start_cargo_beside_planting(
        &run,
        &cfg,
        &plan,
        &paths,
        remote.as_ref(),
        before.beside_possible && early.is_none(),
        &mut stdout,
    )?;
    let seeds = start_seeding(&cfg, &env, &plan, mode, early.is_some(), remote.as_ref());
    if let Some(r) = remote.as_mut() {
        r.finish_prefetch();
    }
    // Everything is planted: cargo goes on.
    let cargo_beside_planting = held_locks.is_some();
    drop(held_locks);

    let planted = seeds.as_ref().map_or(0, |s| s.seeded_so_far(&[]));
    let progress = start_progress(command, &plan, planted, verbosity);
    let before_cargo_ms = match &early {
        Some(_) => (before_early - started).as_millis() as u64,
        None => started.elapsed().as_millis() as u64,
    };
    // What the front-end ran before cargo (`cargo metadata`) is its cost too.
    let before_cargo_children_cpu = crate::wrapper::CpuTimes::now().children_ms;
    note_before_cargo(&progress, &env, &cfg, &plan, planted, before_cargo_ms);
    let ready = Ready {
        run: &run,
        cfg: &cfg,
        plan: &plan,
        paths: &paths,
        early_dir: before.early_dir.as_deref(),
        progress: &progress,
        verbosity,
    };
    let CargoEnd {
        code,
        while_building,
    } = run_cargo(
        &ready,
        early.take().or(beside.take()),
        &mut remote,
        seeds.as_ref(),
        &mut stdout,
    )?;
    if let Some(info) = &before.rustc_info {
        info.remember(&plan.graph.build_dir);
    }
    let (early_capture, background_wait_ms) =
        wait_for_background(&ready, seeds.as_ref(), code, while_building);

    let events = report_build(
        &ready,
        Sessions {
            local,
            remote,
            seeds,
        },
        stdout,
        early_capture,
        FrontEndSummary {
            started,
            started_epoch_ms,
            before_cargo_ms,
            before_cargo_children_cpu,
            background_wait_ms,
            cargo_beside_planting,
            toolchain_sent,
        },
        code,
    )?;
    Ok(BuildOutcome {
        code,
        target_dir: plan.graph.target_dir,
        build_dir: plan.graph.build_dir,
        events,
        verbosity,
    })
}

/// The settings a build runs with.
struct Settings {
    env: Env,
    /// How much of ours the build prints.
    verbosity: Verbosity,
    cfg: BuildConfig,
    /// How many downloads from the remote run at once.
    jobs: Option<usize>,
}

/// Resolves the build's settings, starts the toolchain's identity probe beside what
/// follows, and learns cargo's version.
fn resolve_settings(args: &BuildArgs, mode: &BuildMode) -> Result<Settings, CliError> {
    let (env, _cwd, mut cfg) = crate::cli::workspace::settings_here()?;
    let verbosity = Verbosity::from_cargo_args(&args.cargo_args, env.get("CARGO_TERM_COLOR"));
    let jobs = args.remote_jobs()?.or(cfg.remote_jobs);
    if let Some(dir) = &mode.cwd {
        cfg.cwd = dir.clone();
    }
    if !cfg.disabled {
        // Beside everything up to cargo's first compiles, in a core the front-end
        // leaves idle; never waited for (an identity probe that has not ended when the
        // build does is cut short, and its memo never half written).
        let (cwd, env) = (cfg.cwd.clone(), env.clone());
        let _ =
            std::thread::Builder::new().spawn(move || crate::plan::identify_toolchain(&cwd, &env));
    }
    // Seeds hold cargo's own records of units, which only this cargo can read.
    cfg.cargo_version = crate::key::cargo_version(
        &cfg.cargo,
        crate::private_dir::compilers_dir().as_deref(),
        env.path_var().map(|p| p.as_os_str()),
    )
    .unwrap_or_default();
    Ok(Settings {
        env,
        verbosity,
        cfg,
        jobs,
    })
}

/// The executor's copy of the build's toolchain (`XCACHE_EXECUTOR_TOOLCHAIN=ship`),
/// being made beside what comes before cargo starts.
struct ToolchainSent {
    /// Told first whether the server lacked any of it, then the bytes sent.
    done: Option<std::sync::mpsc::Receiver<Sending>>,
    /// How long the server may take to say whether it has it (the queue wait), and
    /// then to take it (the executor's deadline).
    limits: (std::time::Duration, std::time::Duration),
    started: Instant,
}

enum Sending {
    Checked { missing: bool },
    Sent(u64),
}

impl ToolchainSent {
    /// Waits for it: for the server's answer at most the queue wait (a farm down or far
    /// away must not hold the build), and while it is sent, at most the executor's
    /// deadline (the build's compiles need it on the server; one that finds it still
    /// being sent runs here). The bytes sent and the time it took, when it sent any.
    fn wait(self) -> Option<(u64, u64)> {
        let rx = self.done?;
        let (answer, send) = self.limits;
        match rx.recv_timeout(answer).ok()? {
            Sending::Checked { missing: true } => {}
            Sending::Checked { missing: false } | Sending::Sent(_) => return None,
        }
        match rx.recv_timeout(send).ok()? {
            Sending::Sent(b) if b > 0 => Some((b, self.started.elapsed().as_millis() as u64)),
            _ => None,
        }
    }
}

/// With an executor that takes shipped toolchains, sends the build's toolchain there
/// before cargo starts, when the server lacks it (a first build on a farm): the build's
/// compiles find it there instead of running here while one of them sends it.
fn send_toolchain_ahead(env: &crate::config::Env, cfg: &BuildConfig) -> ToolchainSent {
    let none = ToolchainSent {
        done: None,
        limits: Default::default(),
        started: Instant::now(),
    };
    let spec = match crate::config::ExecutorSpec::from_env(env) {
        Ok(Some(s)) if !cfg.disabled && s.toolchain == crate::config::ToolchainRoute::Ship => s,
        _ => return none,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let env = env.clone();
    let limits = (spec.queue_wait, spec.deadline);
    let spawned = std::thread::Builder::new().spawn(move || {
        let compiler = crate::key::compiler_id(
            Path::new(env.get("RUSTC").unwrap_or("rustc")),
            crate::private_dir::compilers_dir().as_deref(),
            env.get("RUSTUP_TOOLCHAIN"),
            env.path_var().map(|p| p.as_os_str()),
        );
        let checked = |missing| {
            let _ = tx.send(Sending::Checked { missing });
        };
        let sent = compiler
            .ok()
            .and_then(|c| crate::exec::send::send_ahead(&spec, &c, &checked).ok())
            .unwrap_or(0);
        let _ = tx.send(Sending::Sent(sent));
    });
    match spawned {
        Ok(_) => ToolchainSent {
            done: Some(rx),
            limits,
            started: Instant::now(),
        },
        Err(_) => none,
    }
}

/// What is settled before the plan.
struct BeforePlan {
    /// This program: the wrapper.
    exe: PathBuf,
    /// cargo's answers to its compiler probes, as it left them after the last build.
    rustc_info: Option<RustcInfo>,
    /// Where those answers were put before `cargo metadata`, if anywhere.
    guess: Option<Guess>,
    show_bar: bool,
    /// The user's `--message-format`, if any.
    user_format: Option<String>,
    /// Whether cargo's JSON messages are read.
    read_json: bool,
    /// Where what wrappers delete during the build waits for cargo's end.
    later_dir: Option<PathBuf>,
    /// A directory of this run's own, where cargo starts before the plan.
    early_dir: Option<PathBuf>,
    /// Whether cargo may start while seeding plants.
    beside_possible: bool,
}

/// Settles what the plan need not wait for: cargo's answers to its compiler probes put
/// where `cargo metadata` will most likely look, how cargo's output is read, and whether
/// cargo may start before the plan ([`nothing_to_plant`]).
fn before_plan(
    command: CargoCommand,
    args: &BuildArgs,
    mode: &BuildMode,
    env: &Env,
    cfg: &mut BuildConfig,
    verbosity: Verbosity,
) -> Result<BeforePlan, CliError> {
    let exe = std::env::current_exe().map_err(CliError::CurrentExe)?;
    // cargo's answers to its compiler probes, as it left them after the last build: put
    // where `cargo metadata` will most likely look, then (below) where the plan says.
    let rustc_info = RustcInfo::for_build(&cfg.cargo_version, env);
    let guess = rustc_info.as_ref().and_then(|info| {
        let sel = crate::plan::graph::selection_from_cargo_args(&args.cargo_args);
        let target_dir = sel.target_dir.or_else(|| cfg.cargo_target_dir.clone());
        sel.manifest_path
            .is_none()
            .then(|| info.plant_before_metadata(&cfg.cwd, target_dir.as_deref(), env))
            .flatten()
    });
    let show_bar = std::io::stderr().is_terminal() && !command.runs_program() && !verbosity.quiet;
    // cargo's JSON messages say which units it found fresh, so the report counts seeded
    // units exactly. Asked for when the user did not choose a format: diagnostics still
    // go to stderr as cargo renders them; the JSON on stdout is ours. A user's JSON
    // format is read and passed through.
    // A command that runs the user's program (`run`, `test`, …) leaves stdin, stdout
    // and stderr to it: nothing is asked for nor read there.
    let user_format = message_format(&args.cargo_args);
    let read_json =
        command.json_messages() && user_format.as_deref().is_none_or(|f| f.starts_with("json"));
    // What wrappers delete during the build waits for cargo's end
    // (`private_dir::remove_later`).
    let later_dir = crate::private_dir::later_dir(std::process::id()).ok();

    // With nothing to plant nor to fetch (an empty store and no remote: a first build),
    // cargo need not wait for the plan: it starts now, and the plan is made while it
    // works. Its wrappers' files then live in a directory of this run's own.
    // (Not where cargo's output is a terminal's, nor for a command that runs the user's
    // program: cargo's messages are held back until the plan is made, see below.)
    let early_dir = (!std::io::stderr().is_terminal()
        && !command.runs_program()
        && mode.verify.is_none()
        && mode.placeholders.is_empty()
        && nothing_to_plant(cfg, env, args)?)
    .then(|| crate::private_dir::run_dir(std::process::id()).ok())
    .flatten();
    // Whether cargo may start while seeding plants (below).
    let beside_possible =
        mode.verify.is_none() && !std::io::stderr().is_terminal() && !command.runs_program();
    Ok(BeforePlan {
        exe,
        rustc_info,
        guess,
        show_bar,
        user_format,
        read_json,
        later_dir,
        early_dir,
        beside_possible,
    })
}

/// Units cached with cargo's records of them go in the target dir now, so cargo finds
/// them fresh and spawns nothing for them. Planting runs while the prefetch's downloads
/// go on, each unit waiting only for its own pack and entry. `early`: cargo is running
/// already, and only captures (after it) are made.
fn start_seeding(
    cfg: &BuildConfig,
    env: &Env,
    plan: &Plan,
    mode: &BuildMode,
    early: bool,
    remote: Option<&RemoteSession>,
) -> Option<SeedSession> {
    if mode.verify.is_some() {
        None
    } else if early {
        SeedSession::capture_only(cfg, env, plan)
    } else {
        SeedSession::start(cfg, env, plan, remote.and_then(RemoteSession::arrivals))
    }
}

/// The progress of the build: a bar, or notes, or nothing for a command that runs the
/// user's program.
fn start_progress(
    command: CargoCommand,
    plan: &Plan,
    planted: usize,
    verbosity: Verbosity,
) -> Progress {
    if command.runs_program() {
        Progress::hidden(verbosity)
    } else {
        Progress::new(plan.expected_units(), planted, verbosity)
    }
}

/// What the build says before cargo starts.
fn note_before_cargo(
    progress: &Progress,
    env: &Env,
    cfg: &BuildConfig,
    plan: &Plan,
    planted: usize,
    before_cargo_ms: u64,
) {
    if env.switch(crate::config::vars::REAL_PATHS).ok().flatten() == Some(true) {
        progress.note(
            "xcache: XCACHE_REAL_PATHS=1: artifacts keep this machine's paths, so a unit hits \
             only where its checkout, target dir and CARGO_HOME are at the same paths",
        );
    }
    if !progress.is_bar() {
        // "seeded" here counts what was placed; cargo may still rebuild some of them
        // (the report counts those as `seed_rejected`, not seeded).
        progress.note(&format!(
            "xcache: building through the cache at {} (about {} units planned; {planted} seeded in {:.2}s before cargo started)",
            cfg.store_dir.display(),
            plan.expected_units(),
            before_cargo_ms as f64 / 1000.0,
        ));
    }
}
