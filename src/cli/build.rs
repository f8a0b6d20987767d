//! `cargo xcache build`: plan, run cargo with this executable as the rustc wrapper,
//! gather the wrapper's events into the report.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::args::{BuildArgs, selection_from_cargo_args};
use super::remote_session::RemoteSession;
use crate::config::{BuildConfig, Env, vars};
use crate::errors::CliError;
use crate::graph;
use crate::report::{BuildReport, Progress, render_summary_line, report_path};
use crate::wrapper::read_events;

pub fn run(mut args: BuildArgs) -> Result<i32, CliError> {
    let started = Instant::now();
    args.take_own_flags();
    let jobs = args.remote_jobs()?;
    let env = Env::capture();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let cfg = BuildConfig::resolve(&env, cwd)?;
    let mut sel = selection_from_cargo_args(&args.cargo_args);
    if sel.target_dir.is_none() {
        sel.target_dir = cfg.cargo_target_dir.clone();
    }
    let plan = graph::plan(&sel, &cfg.cargo, &cfg.cwd)?;
    let mut cfg = cfg;
    cfg.resolve_remote(
        &env,
        args.remote.as_deref(),
        args.read_only,
        &plan.workspace_root,
    )?;

    std::fs::create_dir_all(&cfg.store_dir).map_err(|source| CliError::StoreDir {
        path: cfg.store_dir.clone(),
        source,
    })?;
    let xdir = plan.target_dir.join("xcache");
    let new_target_dir = !plan.target_dir.exists();
    std::fs::create_dir_all(&xdir).map_err(|source| CliError::WriteReport {
        path: xdir.clone(),
        source,
    })?;
    if new_target_dir {
        // Cargo tags a target dir it creates, and only then; creating it here would
        // leave it untagged, and the tag is how wrappers find the target dir's root.
        let _ = std::fs::write(plan.target_dir.join("CACHEDIR.TAG"), CACHEDIR_TAG);
    }
    let events_path = xdir.join(format!("events-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&events_path);
    let exe = std::env::current_exe().map_err(CliError::CurrentExe)?;
    if let Some(w) = &cfg.replaced_wrapper {
        eprintln!("warning: xcache: RUSTC_WRAPPER={w} is replaced by cargo-xcache for this build");
    }

    // Whether the remote answers is decided once, here, for every wrapper of the build;
    // then everything predicted is prefetched before cargo starts.
    let remote_state = xdir.join(format!("remote-{}.state", std::process::id()));
    let show_bar = std::io::stderr().is_terminal();
    let mut remote = RemoteSession::start(
        &cfg,
        &env,
        &plan,
        &sel,
        remote_state.clone(),
        show_bar,
        jobs,
    );

    let progress = Progress::new(plan.expected_units());
    if !progress.is_bar() {
        eprintln!(
            "xcache: building through the cache at {} (about {} units planned)",
            cfg.store_dir.display(),
            plan.expected_units()
        );
    }
    let mut cmd = Command::new(&cfg.cargo);
    cmd.arg("build")
        .args(&args.cargo_args)
        .current_dir(&cfg.cwd)
        .env("RUSTC_WRAPPER", &exe)
        .env(vars::EVENTS, &events_path)
        .env(vars::DIR, &cfg.store_dir)
        .env(vars::REMOTE_STATE, &remote_state);
    match &cfg.remote_uri {
        Some(uri) => cmd.env(vars::REMOTE, uri),
        None => cmd.env_remove(vars::REMOTE),
    };
    if cfg.read_only {
        cmd.env(vars::READ_ONLY, "1");
    }
    if let Some(r) = &remote {
        r.configure(&mut cmd);
    }
    if progress.is_bar() {
        // cargo's own output goes through the bar; keep its colours.
        cmd.stderr(Stdio::piped());
        if env.get("CARGO_TERM_COLOR").is_none() {
            cmd.env("CARGO_TERM_COLOR", "always");
        }
    }
    let mut child = cmd.spawn().map_err(|source| CliError::SpawnCargo {
        cargo: cfg.cargo.clone(),
        source,
    })?;
    let status = std::thread::scope(|scope| {
        if let Some(err) = child.stderr.take() {
            let progress = &progress;
            scope.spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    progress.println(&line);
                }
            });
        }
        loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {
                    if (progress.is_bar() || remote.is_some())
                        && let Ok(evs) = read_events(&events_path)
                    {
                        progress.update(&evs);
                        if let Some(r) = remote.as_mut() {
                            r.on_events(&evs);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => break Err(e),
            }
        }
    });
    progress.finish();
    let status = status.map_err(|source| CliError::SpawnCargo {
        cargo: cfg.cargo.clone(),
        source,
    })?;
    let code = status.code().unwrap_or(101);

    let events = read_events(&events_path).unwrap_or_default();
    let _ = std::fs::remove_file(&events_path);
    let mut report = BuildReport::from_events(
        &events,
        args.cargo_args.clone(),
        code,
        cfg.store_dir.clone(),
        started.elapsed().as_millis() as u64,
        plan.expected_units(),
    );
    if let Some(r) = remote {
        r.finish(&events, &mut report);
    }
    let _ = std::fs::remove_file(&remote_state);
    report.remote = cfg.remote.as_ref().map(|r| r.display().to_string());
    report.read_only = cfg.read_only;
    let path = report_path(&plan.target_dir);
    let json = serde_json::to_vec_pretty(&report).expect("a report serializes");
    crate::store::write_atomic(&path, &json).map_err(|source| CliError::WriteReport {
        path: path.clone(),
        source,
    })?;
    for w in &report.warnings {
        eprintln!(
            "warning: xcache: {} [{}]; those units compiled without the cache",
            w.message, w.code
        );
    }
    eprintln!("{}", render_summary_line(&report));
    Ok(code)
}

/// What cargo writes to `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";
