//! cargo run to its end: started (or, when it started early, let go on), its stderr shown
//! through the progress bar, the wrappers' events followed while it works (the progress,
//! the remote's uploads, the units captured for seeding as it goes).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use super::cargo_command::{CargoStderr, Ready, cargo_command, spawn_cargo};
use super::cargo_output::CargoStdout;
use super::early_cargo::EarlyCargo;
use crate::cli::remote_session::RemoteSession;
use crate::cli::seed_session::{SeedSession, WhileBuilding};
use crate::errors::CliError;
use crate::wrapper::read_stream;

/// How cargo ended.
pub(super) struct CargoEnd {
    /// cargo's exit code.
    pub code: i32,
    /// What was captured for seeding while cargo ran.
    pub while_building: Option<WhileBuilding>,
}

/// Runs cargo to its end: the cargo that started early (`started`) goes on, else one is
/// started now; then cargo's last messages are read.
pub(super) fn run_cargo(
    ready: &Ready<'_>,
    started: Option<EarlyCargo>,
    remote: &mut Option<RemoteSession>,
    seeds: Option<&SeedSession>,
    stdout: &mut CargoStdout,
) -> Result<CargoEnd, CliError> {
    let Ready {
        run,
        cfg,
        plan,
        paths,
        progress,
        ..
    } = *ready;
    let (env, events_path) = (run.env, &paths.events);
    let (mut child, held_stderr) = match started {
        Some(e) => e.hand_over(),
        None => (
            spawn_cargo(
                cargo_command(
                    run,
                    cfg,
                    paths,
                    remote.as_ref(),
                    if progress.is_bar() {
                        CargoStderr::Bar
                    } else {
                        CargoStderr::Inherited
                    },
                ),
                cfg,
            )?,
            None,
        ),
    };
    if !stdout.is_read() {
        stdout.read(&mut child);
    }
    let cargo_ended = std::sync::atomic::AtomicBool::new(false);
    let (status, while_building) = std::thread::scope(|scope| {
        // Units cargo is done with are captured for seeding while it goes on.
        let (stop_capture, capture_stop) = std::sync::mpsc::channel::<()>();
        let capturing = seeds.map(|s| {
            let stop = capture_stop;
            scope.spawn(move || s.capture_while_building(events_path, env, &stop))
        });
        // Which files cargo locks, where nothing was remembered: asked at the lowest
        // priority, for the next build, once cargo has resolved the workspace (its
        // first wrapper wrote an event) or ended: the probe's cargo and this one would
        // otherwise wait for each other's lock on the package cache, and this one say
        // so.
        if plan.cargo_locks_unknown.is_some() {
            let cargo_args = run.cargo_args;
            let ended = &cargo_ended;
            scope.spawn(move || {
                while !events_path.exists() && !ended.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                crate::wrapper::lower_this_threads_priority();
                plan.learn_cargo_locks(cfg, env, cargo_args);
            });
        }
        if let Some(err) = child.stderr.take() {
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
                        && let Ok(stream) = read_stream(events_path)
                    {
                        let evs = &stream.events;
                        progress.update(
                            evs,
                            &stream.in_flight,
                            seeds.map_or(0, |s| s.seeded_so_far(evs)),
                        );
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
    stdout.join();
    if let Some(held) = held_stderr {
        held.join();
    }
    Ok(CargoEnd {
        code,
        while_building,
    })
}
