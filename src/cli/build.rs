//! `cargo xcache build` (and `check`, `test`, … : every [`CargoCommand`]): plan, run
//! cargo with this executable as the rustc wrapper, gather the wrapper's events into
//! the report.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::args::BuildArgs;
use super::fresh::FreshUnits;
use super::remote_session::RemoteSession;
use super::seed_session::SeedSession;
use super::store_session::StoreSession;
use crate::config::{BuildConfig, Env, vars};
use crate::errors::CliError;
use crate::plan::{CargoCommand, CargoLocking, Plan, RustdocUnit};
use crate::reason::Uncacheable;
use crate::report::{
    BuildReport, Progress, Verbosity, render_markdown, render_summary_line, report_path,
};
use crate::wrapper::{Outcome, UnitEvent, UnitRecord, read_events, read_stream};

/// `cargo xcache <command>`: cargo's `command` through the cache.
pub fn run(command: CargoCommand, args: BuildArgs) -> Result<i32, CliError> {
    run_build(command, args, &BuildMode::default()).map(|o| o.code)
}

/// How a build differs from `cargo xcache build` (`warm` builds a skeleton).
#[derive(Clone, Debug, Default)]
pub(super) struct BuildMode {
    /// Run cargo here instead of the current directory.
    pub cwd: Option<PathBuf>,
    /// Directories of packages whose sources are placeholders: never stored nor seeded.
    pub placeholders: Vec<PathBuf>,
    /// `cargo xcache verify`: the percentage of hits the wrapper compiles again and
    /// compares; nothing is seeded, so every unit goes through the wrapper.
    pub verify: Option<u8>,
}

/// What a build left behind.
pub(super) struct BuildOutcome {
    /// cargo's exit code.
    pub code: i32,
    pub target_dir: PathBuf,
    /// Where cargo kept the units (`graph::BuildPlan::build_dir`).
    pub build_dir: PathBuf,
    /// What the wrapper reported, unit by unit.
    pub events: Vec<crate::wrapper::UnitEvent>,
    /// How much of ours the build prints (`-q`, `-v`, `--color`).
    pub verbosity: Verbosity,
}

/// The whole pipeline: plan, prefetch, plant, cargo with the wrapper, report, capture.
pub(super) fn run_build(
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
    let env = Env::capture();
    let verbosity = Verbosity::from_cargo_args(&args.cargo_args, env.get("CARGO_TERM_COLOR"));
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut cfg = BuildConfig::resolve(&env, cwd)?;
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
    // The plan is made once: prefetch, seeding and the report read it.
    let exe = std::env::current_exe().map_err(CliError::CurrentExe)?;
    // cargo's answers to its compiler probes, as it left them after the last build: put
    // where `cargo metadata` will most likely look, then (below) where the plan says.
    let rustc_info = crate::seed::RustcInfo::for_build(&cfg.cargo_version, &env);
    let guess = rustc_info.as_ref().and_then(|info| {
        let sel = crate::plan::graph::selection_from_cargo_args(&args.cargo_args);
        let target_dir = sel.target_dir.or_else(|| cfg.cargo_target_dir.clone());
        sel.manifest_path
            .is_none()
            .then(|| info.plant_before_metadata(&cfg.cwd, target_dir.as_deref(), &env))
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
        && nothing_to_plant(&mut cfg, &env, &args)?)
    .then(|| crate::private_dir::run_dir(std::process::id()).ok())
    .flatten();
    let run = CargoRun {
        command,
        cargo_args: &args.cargo_args,
        user_format: user_format.as_deref(),
        read_json,
        exe: &exe,
        later_dir: later_dir.as_deref(),
        mode,
        env: &env,
    };
    // Whether cargo may start while seeding plants (below).
    let beside_possible =
        mode.verify.is_none() && !std::io::stderr().is_terminal() && !command.runs_program();
    let mut early: Option<EarlyCargo> = None;
    let mut early_local: Option<StoreSession> = None;
    let fresh = std::sync::Arc::new(std::sync::Mutex::new(FreshUnits::default()));
    let mut stdout_reader: Option<std::thread::JoinHandle<()>> = None;
    let early_paths = early_dir
        .as_deref()
        .map(|dir| RunPaths::in_dir(dir, cfg.background_store));
    let before_early = Instant::now();
    if let Some(paths) = &early_paths {
        if let Some(made) = guess.as_ref().and_then(|g| g.made_dir()) {
            // Made for the planted file: cargo will not tag a dir it did not create.
            let _ = std::fs::write(made.join("CACHEDIR.TAG"), CACHEDIR_TAG);
        }
        early_local = Some(StoreSession::start(&cfg));
        let cmd = cargo_command(&run, &cfg, paths, None, CargoStderr::Held);
        let mut child = spawn_cargo(cmd, &cfg)?;
        stdout_reader = read_cargo_stdout(&mut child, &fresh, user_format.is_some());
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
    let plan = if early.is_some() {
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
                    Plan::make(&cfg, &env, command, &args.cargo_args, &exe, locking)
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
        Plan::make(&cfg, &env, command, &args.cargo_args, &exe, locking)
    };
    let made_target_dir = match (&plan, &guess) {
        (Ok(p), Some(g)) => g.made(&p.graph.build_dir),
        _ => false,
    };
    if let (Ok(p), Some(made), Some(_)) = (&plan, guess.as_ref().and_then(|g| g.made_dir()), &early)
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
    cfg.resolve_remote(
        &env,
        args.remote.as_deref(),
        args.read_only,
        &plan.graph.workspace_root,
    )?;
    if early.is_some()
        && let Some(remote) = cfg.remote.take()
    {
        // An `xcache.toml` where `package.workspace` put the workspace root, outside the
        // directories looked at before cargo started: its wrappers know no remote.
        cfg.remote_uri = None;
        verbosity.warn(&format!(
            "warning: xcache: the remote {remote} named in {} is not used by this build, \
             which started before the workspace was read; the next build uses it",
            plan.graph.workspace_root.join("xcache.toml").display()
        ));
    }

    let xdir = plan.graph.target_dir.join("xcache");
    // A target dir cargo made since it started is new too.
    let new_target_dir = made_target_dir
        || !plan.graph.target_dir.exists()
        || (early.is_some()
            && std::fs::metadata(&plan.graph.target_dir)
                .and_then(|m| m.created())
                .is_ok_and(|born| {
                    born.elapsed()
                        .is_ok_and(|age| age <= before_early.elapsed())
                }));
    // An unusable store is a warning; the build goes on without it.
    let local = match early_local {
        Some(local) => local,
        None => StoreSession::start(&cfg),
    };
    std::fs::create_dir_all(&xdir).map_err(|source| CliError::WriteReport {
        path: xdir.clone(),
        source,
    })?;
    if new_target_dir {
        // Cargo tags a target dir it creates, and only then; creating it here would
        // leave it untagged, and the tag is how wrappers find the target dir's root.
        let _ = std::fs::write(plan.graph.target_dir.join("CACHEDIR.TAG"), CACHEDIR_TAG);
        super::store_session::mark_swept(&plan.graph.target_dir);
    }
    // The same for a build dir apart from the target dir (`build.build-dir`).
    if plan.graph.build_dir != plan.graph.target_dir && !plan.graph.build_dir.exists() {
        let _ = std::fs::create_dir_all(&plan.graph.build_dir);
        let _ = std::fs::write(plan.graph.build_dir.join("CACHEDIR.TAG"), CACHEDIR_TAG);
    }
    // (Not under a running cargo: it probes for itself.)
    if let Some(info) = rustc_info
        .as_ref()
        .filter(|_| !guessed_right && early.is_none())
    {
        info.plant(&plan.graph.build_dir);
    }
    // Wrappers let cargo go on before they store (`wrapper::wait_all`), unless told not
    // to; this front-end waits for them below.
    let paths = early_paths.unwrap_or_else(|| RunPaths::in_target_dir(&xdir, cfg.background_store));
    let RunPaths {
        events: events_path,
        remote_state,
        pending: pending_dir,
    } = paths.clone();
    if early.is_none() {
        let _ = std::fs::remove_file(&events_path);
    }
    if let Some(w) = &cfg.replaced_wrapper {
        verbosity.warn(&format!(
            "warning: xcache: RUSTC_WRAPPER={w} is replaced by cargo-xcache for this build"
        ));
    }
    // Whether the remote answers is decided once, here, for every wrapper of the build;
    // then everything predicted is prefetched before cargo starts.
    let mut remote = RemoteSession::start(&cfg, &plan, remote_state.clone(), show_bar, jobs);

    // cargo resolves the workspace while seeding plants: it waits for its build dir's
    // locks, held here until everything is planted (`plan::cargo_lock`). Not where its
    // stderr is a terminal's (held, cargo would lose its colours) or its program's, nor
    // with a remote (what the wrappers are told of it is known once the prefetch ends).
    let held_locks = (beside_possible
        && early.is_none()
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
        crate::plan::HeldLocks::hold(&locks.files(
            &plan.graph.build_dir,
            &plan.graph.target_dir,
            &profiles,
        ))
    });
    let mut beside: Option<EarlyCargo> = None;
    if held_locks.is_some() {
        let cmd = cargo_command(&run, &cfg, &paths, remote.as_ref(), CargoStderr::Held);
        let mut child = spawn_cargo(cmd, &cfg)?;
        stdout_reader = read_cargo_stdout(&mut child, &fresh, user_format.is_some());
        let held = HeldStderr::read(&mut child, true);
        beside = Some(EarlyCargo {
            child: Some(child),
            held,
        });
    }

    // Units cached with cargo's records of them go in the target dir now, so cargo
    // finds them fresh and spawns nothing for them. Planting runs while the prefetch's
    // downloads go on, each unit waiting only for its own pack and entry.
    let seeds = if mode.verify.is_some() {
        None
    } else if early.is_some() {
        SeedSession::capture_only(&cfg, &env, &plan)
    } else {
        SeedSession::start(
            &cfg,
            &env,
            &plan,
            remote.as_ref().and_then(RemoteSession::arrivals),
        )
    };
    if let Some(r) = remote.as_mut() {
        r.finish_prefetch();
    }
    // Everything is planted: cargo goes on.
    let cargo_beside_planting = held_locks.is_some();
    drop(held_locks);

    let seeded_so_far =
        |events: &[UnitEvent]| seeds.as_ref().map_or(0, |s| s.seeded_so_far(events));
    let planted = seeded_so_far(&[]);
    let progress = if command.runs_program() {
        Progress::hidden(verbosity)
    } else {
        Progress::new(plan.expected_units(), planted, verbosity)
    };
    let before_cargo_ms = match &early {
        Some(_) => (before_early - started).as_millis() as u64,
        None => started.elapsed().as_millis() as u64,
    };
    // What the front-end ran before cargo (`cargo metadata`) is its cost too.
    let before_cargo_children_cpu = crate::wrapper::CpuTimes::now().children_ms;
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
    let (mut child, held_stderr) = match early.take().or(beside.take()) {
        Some(e) => e.hand_over(),
        None => (
            spawn_cargo(
                cargo_command(
                    &run,
                    &cfg,
                    &paths,
                    remote.as_ref(),
                    if progress.is_bar() {
                        CargoStderr::Bar
                    } else {
                        CargoStderr::Inherited
                    },
                ),
                &cfg,
            )?,
            None,
        ),
    };
    if stdout_reader.is_none() {
        stdout_reader = read_cargo_stdout(&mut child, &fresh, user_format.is_some());
    }
    let cargo_ended = std::sync::atomic::AtomicBool::new(false);
    let (status, while_building) = std::thread::scope(|scope| {
        // Units cargo is done with are captured for seeding while it goes on.
        let (stop_capture, capture_stop) = std::sync::mpsc::channel::<()>();
        let capturing = seeds.as_ref().map(|s| {
            let (env, events_path, stop) = (&env, &events_path, capture_stop);
            scope.spawn(move || s.capture_while_building(events_path, env, &stop))
        });
        // Which files cargo locks, where nothing was remembered: asked at the lowest
        // priority, for the next build, once cargo has resolved the workspace (its
        // first wrapper wrote an event) or ended: the probe's cargo and this one would
        // otherwise wait for each other's lock on the package cache, and this one say
        // so.
        if plan.cargo_locks_unknown.is_some() {
            let (plan, cfg, env, cargo_args) = (&plan, &cfg, &env, &args.cargo_args);
            let (events_path, ended) = (&events_path, &cargo_ended);
            scope.spawn(move || {
                while !events_path.exists() && !ended.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                crate::wrapper::lower_this_threads_priority();
                plan.learn_cargo_locks(cfg, env, cargo_args);
            });
        }
        if let Some(err) = child.stderr.take() {
            let progress = &progress;
            scope.spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    progress.println(&line);
                }
            });
        }
        // cargo's end is waited for, not polled: the build is over the moment it is.
        let (done_tx, done) = std::sync::mpsc::channel();
        let child = &mut child;
        scope.spawn(move || {
            let _ = done_tx.send(child.wait());
        });
        let status = loop {
            match done.recv_timeout(Duration::from_millis(100)) {
                Ok(status) => break status,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if (progress.wants_events() || remote.is_some())
                        && let Ok(stream) = read_stream(&events_path)
                    {
                        let evs = &stream.events;
                        progress.update(evs, &stream.in_flight, seeded_so_far(evs));
                        if let Some(r) = remote.as_mut() {
                            r.on_events(evs);
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("cargo's waiter ended"));
                }
            }
        };
        cargo_ended.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(stop_capture);
        (status, capturing.and_then(|h| h.join().ok()))
    });
    if status.is_err() {
        progress.finish();
    }
    let status = status.map_err(|source| CliError::SpawnCargo {
        cargo: cfg.cargo.clone(),
        source,
    })?;
    let code = status.code().unwrap_or(101);
    // cargo's last messages are read once its output ends.
    if let Some(reader) = stdout_reader {
        let _ = reader.join();
    }
    if let Some(held) = held_stderr {
        held.join();
    }
    if let Some(info) = &rustc_info {
        info.remember(&plan.graph.build_dir);
    }
    // Entries still being stored: their events come when they are. Meanwhile, after a
    // build that succeeded, the units whose events are in are captured for seeding.
    let waited = Instant::now();
    let mut early: Option<super::seed_session::EarlyCapture> = None;
    let mut background_wait_ms = 0;
    if let Some(dir) = &pending_dir {
        let late = std::thread::scope(|scope| {
            let capturing = seeds.as_ref().filter(|_| code == 0).map(|s| {
                let env = &env;
                let events_path = &events_path;
                scope.spawn(move || {
                    read_events(events_path)
                        .ok()
                        .map(|evs| s.capture_early(&evs, env, while_building))
                })
            });
            let (_, late) = crate::wrapper::wait_all(dir, BACKGROUND_LIMIT);
            background_wait_ms = waited.elapsed().as_millis() as u64;
            let joined = Instant::now();
            early = capturing.and_then(|h| h.join().ok().flatten());
            if let Some(e) = early.as_mut() {
                e.after_wait(joined.elapsed());
            }
            late
        });
        if late {
            verbosity.warn(&format!(
                "warning: xcache: cache work still running {}s after cargo finished was left \
                 behind; its units are missing from the report",
                BACKGROUND_LIMIT.as_secs()
            ));
        }
        let _ = std::fs::remove_dir_all(dir);
    } else if let (Some(s), Some(wb), 0) = (&seeds, while_building, code) {
        // No stores went on after cargo: what was captured while it ran is judged now.
        early = read_events(&events_path)
            .ok()
            .map(|evs| s.capture_early(&evs, &env, Some(wb)));
    }
    if let Some(dir) = &later_dir {
        let _ = std::fs::remove_dir_all(dir);
        crate::private_dir::remove_stale_later_dirs();
    }

    let mut events = read_events(&events_path).unwrap_or_default();
    let _ = std::fs::remove_file(&events_path);
    // rustdoc's units ran (or would have) without the wrapper: listed, never cached.
    if code == 0 {
        events.extend(plan.rustdoc.iter().map(rustdoc_event));
    }
    // The last frame holds every unit (and the last `-v` lines), then the bar goes.
    if progress.wants_events() {
        progress.update(&events, &[], seeded_so_far(&events));
    }
    progress.finish();
    let mut report = BuildReport::from_events(
        &events,
        args.cargo_args.clone(),
        code,
        cfg.store_dir.path().to_path_buf(),
        started.elapsed().as_millis() as u64,
        plan.expected_units(),
    );
    let captured = match seeds {
        Some(s) => {
            let mut fresh = std::sync::Arc::try_unwrap(fresh)
                .ok()
                .and_then(|f| f.into_inner().ok())
                .unwrap_or_default();
            fresh.resolve(&plan.graph.target_dir, &plan.graph.build_dir);
            let fresh = read_json.then_some(&fresh);
            s.finish(&events, fresh, &env, &mut report, early)
        }
        None => Default::default(),
    };
    if let Some(r) = remote {
        r.finish(&events, &captured, &mut report);
    }
    let captured = captured.captured;
    let _ = std::fs::remove_file(&remote_state);
    if let Some(dir) = &early_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(w) = layout_check(&plan, &events) {
        report.warnings.push(w);
    }
    let added = super::store_session::added_at_most(&report, &events, &captured);
    local.finish(&mut report, added, &plan.graph.target_dir, verbosity);
    report.remote = cfg.remote.as_ref().map(|r| r.display().to_string());
    report.read_only = cfg.read_only;
    report.summary.before_cargo_ms = before_cargo_ms;
    report.summary.cargo_before_plan = early_dir.is_some();
    report.summary.cargo_beside_planting = cargo_beside_planting;
    report.summary.background_wait_ms = background_wait_ms;
    report.summary.front_end_peak_rss_kb = crate::wrapper::peak_rss_kb().unwrap_or(0);
    report.summary.front_end_cpu_ms =
        crate::wrapper::CpuTimes::now().own_ms + before_cargo_children_cpu;
    report.reconcile();
    report.add_timing(&events, started_epoch_ms);
    super::history_session::record(&cfg, &events, &mut report);
    let path = report_path(&plan.graph.target_dir);
    if code != 0 && report.units.is_empty() {
        // cargo stopped before any unit (an unknown flag, a resolution error): the last
        // build's report stays, and says what that build did.
        verbosity.note(&format!(
            "xcache: cargo exited with {code} before building anything; {} was left as it was",
            path.display()
        ));
        return Ok(BuildOutcome {
            code,
            target_dir: plan.graph.target_dir,
            build_dir: plan.graph.build_dir,
            events,
            verbosity,
        });
    }
    let json = serde_json::to_vec_pretty(&report).expect("a report serializes");
    crate::fsx::write_atomic(&path, &json).map_err(|source| CliError::WriteReport {
        path: path.clone(),
        source,
    })?;
    for w in &report.warnings {
        verbosity.warn(&format!(
            "warning: xcache: {} [{}]{}",
            w.message,
            w.code,
            warning_tail(&w.code)
        ));
    }
    verbosity.note(&render_summary_line(&report));
    if let Some(summary) = &cfg.step_summary {
        append_step_summary(summary, &render_markdown(&report), verbosity);
    }
    Ok(BuildOutcome {
        code,
        target_dir: plan.graph.target_dir,
        build_dir: plan.graph.build_dir,
        events,
        verbosity,
    })
}

/// Whether cargo kept the build's units in the layout the plan planted for: a unit in
/// the other means nothing planted was where cargo looked (the next build in this build
/// dir learns the layout from what cargo left), and the report says so.
fn layout_check(
    plan: &Plan,
    events: &[crate::wrapper::UnitEvent],
) -> Option<crate::wrapper::Warning> {
    let expected = *plan.layout.as_ref().ok()?;
    let found = events
        .iter()
        .filter_map(|e| e.place.as_ref())
        .map(|p| crate::key::Layout::of_unit(&p.unit_dir))
        .find(|l| *l != expected)?;
    let e = crate::errors::CacheError::PlantingOff(format!(
        "cargo kept this build's units in its {} layout where the plan expected the {} one \
         (set by no switch it read); nothing planted was used, and the next build in {} \
         plants in the layout cargo left",
        found.as_str(),
        expected.as_str(),
        plan.graph.build_dir.display()
    ));
    Some(crate::wrapper::Warning::from(&e))
}

/// Where the wrappers of one build write: their events, the remote's state, the locks
/// of their background work.
#[derive(Clone, Debug)]
struct RunPaths {
    events: PathBuf,
    remote_state: PathBuf,
    pending: Option<PathBuf>,
}

impl RunPaths {
    /// In the target dir's `xcache/`, named by this process.
    fn in_target_dir(xdir: &Path, background: bool) -> RunPaths {
        let pid = std::process::id();
        RunPaths {
            events: xdir.join(format!("events-{pid}.jsonl")),
            remote_state: xdir.join(format!("remote-{pid}.state")),
            pending: background.then(|| xdir.join(format!("pending-{pid}"))),
        }
    }

    /// In a directory of this run's own (cargo started before the target dir was known).
    fn in_dir(dir: &Path, background: bool) -> RunPaths {
        RunPaths {
            events: dir.join("events.jsonl"),
            remote_state: dir.join("remote.state"),
            pending: background.then(|| dir.join("pending")),
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
fn nothing_to_plant(cfg: &mut BuildConfig, env: &Env, args: &BuildArgs) -> Result<bool, CliError> {
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

/// What every cargo of a build is started with.
struct CargoRun<'a> {
    command: CargoCommand,
    cargo_args: &'a [String],
    /// The user's `--message-format`, if any.
    user_format: Option<&'a str>,
    /// Whether cargo's JSON messages are read (on a pipe).
    read_json: bool,
    /// This program: the wrapper.
    exe: &'a Path,
    later_dir: Option<&'a Path>,
    mode: &'a BuildMode,
    env: &'a Env,
}

/// Where cargo's stderr goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CargoStderr {
    /// This process's.
    Inherited,
    /// Through the progress bar.
    Bar,
    /// To this process, held until the plan is read ([`HeldStderr`]).
    Held,
}

/// The cargo command of a build, with this program as its rustc wrapper.
fn cargo_command(
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

/// cargo started before the plan ([`nothing_to_plant`]): stopped, and what it said
/// dropped, if the build ends in an error before it is handed over.
struct EarlyCargo {
    child: Option<std::process::Child>,
    held: Option<HeldStderr>,
}

impl EarlyCargo {
    /// The plan is made and sound: cargo goes on, and what it said is shown.
    fn hand_over(mut self) -> (std::process::Child, Option<HeldStderr>) {
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

/// cargo's stderr when cargo starts before the plan: held back until the plan is made,
/// then shown as it comes (or dropped, when the plan fails and says why itself).
struct HeldStderr {
    state: std::sync::Arc<std::sync::Mutex<Held>>,
    reader: std::thread::JoinHandle<()>,
}

enum Held {
    Holding(Vec<String>),
    Passing,
    Dropping,
}

impl HeldStderr {
    /// Reads `child`'s stderr; with `our_locks` (cargo started while the front-end held
    /// its build dir's locks), cargo's saying that it waits for them is dropped, up to its
    /// first line that is not about a lock.
    fn read(child: &mut std::process::Child, our_locks: bool) -> Option<HeldStderr> {
        let err = child.stderr.take()?;
        let state = std::sync::Arc::new(std::sync::Mutex::new(Held::Holding(Vec::new())));
        let shared = std::sync::Arc::clone(&state);
        let reader = std::thread::spawn(move || {
            use std::io::Write;
            let mut waiting = our_locks;
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if waiting {
                    if crate::plan::is_lock_wait(&line) {
                        continue;
                    }
                    // (A wait for the package cache's lock comes before, on a busy
                    // machine, and is shown.)
                    waiting = line
                        .trim_start()
                        .starts_with("Blocking waiting for file lock");
                }
                let Ok(mut state) = shared.lock() else {
                    return;
                };
                match &mut *state {
                    Held::Holding(lines) => lines.push(line),
                    Held::Passing => {
                        let _ = writeln!(std::io::stderr().lock(), "{line}");
                    }
                    Held::Dropping => {}
                }
            }
        });
        Some(HeldStderr { state, reader })
    }

    /// Shows what was held, then every line as it comes.
    fn release(&self) {
        use std::io::Write;
        if let Ok(mut state) = self.state.lock() {
            if let Held::Holding(lines) = &*state {
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
            *state = Held::Passing;
        }
    }

    fn drop_all(self) {
        if let Ok(mut state) = self.state.lock() {
            *state = Held::Dropping;
        }
    }

    /// Waits for the end of cargo's stderr (after cargo exited).
    fn join(self) {
        self.release();
        let _ = self.reader.join();
    }
}

/// Reads cargo's JSON messages (on its stdout when piped) as they come, noting the units
/// it found fresh and passing the lines on when the user asked for the JSON.
fn read_cargo_stdout(
    child: &mut std::process::Child,
    fresh: &std::sync::Arc<std::sync::Mutex<FreshUnits>>,
    pass_through: bool,
) -> Option<std::thread::JoinHandle<()>> {
    let out = child.stdout.take()?;
    let fresh = std::sync::Arc::clone(fresh);
    Some(std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if pass_through {
                use std::io::Write;
                let _ = writeln!(stdout, "{line}");
            }
            if let Ok(mut f) = fresh.lock() {
                f.read_message(&line);
            }
        }
    }))
}

fn spawn_cargo(mut cmd: Command, cfg: &BuildConfig) -> Result<std::process::Child, CliError> {
    cmd.spawn().map_err(|source| CliError::SpawnCargo {
        cargo: cfg.cargo.clone(),
        source,
    })
}

/// Appends the Markdown summary to GitHub's job summary file; a failure is a warning.
fn append_step_summary(path: &std::path::Path, markdown: &str, verbosity: Verbosity) {
    use std::io::Write;
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()));
    if let Err(e) = result {
        verbosity.warn(&format!(
            "warning: xcache: failed to append the build summary to {} ({}): {e}",
            path.display(),
            crate::config::vars::GITHUB_STEP_SUMMARY
        ));
    }
}

/// The arguments that show cargo's help for `command`, when the user asked for help:
/// `-h`/`--help` among cargo's arguments, or after `--` where cargo takes nothing
/// there (`cargo xcache build -- --help`). `None`: no help was asked for.
fn cargo_help_args(command: CargoCommand, cargo_args: &[String]) -> Option<Vec<String>> {
    let end = cargo_args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(cargo_args.len());
    let is_help = |a: &String| a == "-h" || a == "--help";
    let (before, after) = cargo_args.split_at(end);
    if before.iter().any(is_help) {
        return Some(before.to_vec());
    }
    if !command.takes_trailing_args() && after.iter().any(is_help) {
        let mut args = before.to_vec();
        args.push("--help".into());
        return Some(args);
    }
    None
}

/// Prints what cargo-xcache adds, then cargo's own help for the command; no plan, no
/// build, no report (the last report stays).
fn show_cargo_help(command: CargoCommand, args: &[String]) -> Result<i32, CliError> {
    use std::io::Write;
    let name = command.name();
    println!(
        "cargo xcache {name}: `cargo {name}` through the cache. The options below are cargo's,\n\
         passed to it as given; cargo-xcache adds --remote URI, --read-only and --remote-jobs N\n\
         (`cargo xcache {name} --help` describes them).\n"
    );
    let _ = std::io::stdout().flush();
    let cargo = Env::capture().cargo();
    let status = Command::new(&cargo)
        .arg(name)
        .args(args)
        .status()
        .map_err(|source| CliError::SpawnCargo { cargo, source })?;
    Ok(status.code().unwrap_or(101))
}

/// How long `cargo xcache build` waits, after cargo, for entries still being stored.
const BACKGROUND_LIMIT: Duration = Duration::from_secs(600);

/// nextest's own commands that build the tests through cargo.
const NEXTEST_COMMANDS: &[&str] = &["run", "r", "list", "archive"];

/// `cargo xcache nextest` takes nextest's command first.
fn check_nextest_command(args: &[String]) -> Result<(), CliError> {
    let first = args.first().map(String::as_str).unwrap_or("");
    if NEXTEST_COMMANDS.contains(&first) {
        return Ok(());
    }
    Err(CliError::InvalidSetting {
        name: "cargo xcache nextest".into(),
        value: first.to_string(),
        message: "expected nextest's command first: `cargo xcache nextest run [args]` (or `list`, `archive`)".into(),
    })
}

/// The report's record of a unit rustdoc builds.
fn rustdoc_event(u: &RustdocUnit) -> UnitEvent {
    UnitEvent {
        format_version: 1,
        unit: UnitRecord {
            reason: Some(Uncacheable::Rustdoc.code().to_string()),
            ..UnitRecord::new(
                u.package.clone(),
                u.version.clone(),
                u.crate_name.clone(),
                u.kind.to_string(),
                Outcome::Uncacheable,
            )
        },
        overhead_ms: 0,
        bytes: 0,
        bytes_linked: 0,
        object_bytes: 0,
        upk: None,
        spk: None,
        l1: None,
        upload: false,
        bytes_down: 0,
        bytes_up: 0,
        place: None,
        verify: None,
        warnings: Vec::new(),
        key_parts: None,
        start_ms: 0,
        end_ms: 0,
        pid: 0,
        background_ms: 0,
        peak_rss_kb: 0,
        compile_cpu_ms: 0,
    }
}

/// What a warning meant for the build. A remote that failed left the local store in
/// use: its units were not "compiled without the cache".
fn warning_tail(code: &str) -> &'static str {
    match code {
        "remote-entry-damaged" | "remote-entry-too-large" => "",
        // The cache was used; only where the compiles ran changed.
        "executor-unavailable" => "",
        // Nothing was planted; the wrapper restored what it could.
        "planting-off" => "; every unit went through the wrapper, which restores hits",
        c if c.starts_with("remote-") => "; the rest of the build used the local store only",
        _ => "; those units compiled without the cache",
    }
}

/// The `--message-format` the user gave, if any.
fn message_format(cargo_args: &[String]) -> Option<String> {
    let mut it = cargo_args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--message-format=") {
            return Some(v.to_string());
        }
        if a == "--message-format" {
            return it.next().cloned();
        }
    }
    None
}

/// What cargo writes to `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_format_is_found() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(message_format(&args(&["--release"])), None);
        assert_eq!(
            message_format(&args(&["--message-format=json"])).as_deref(),
            Some("json")
        );
        assert_eq!(
            message_format(&args(&["--message-format", "short"])).as_deref(),
            Some("short")
        );
    }
}
