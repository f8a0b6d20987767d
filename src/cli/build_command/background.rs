//! After cargo: the wrappers' background work (entries still being stored) waited for,
//! the units whose events are in captured for seeding meanwhile, and what the wrappers
//! left to delete at cargo's end deleted.

use std::time::{Duration, Instant};

use super::cargo_command::Ready;
use crate::cli::seed_session::{EarlyCapture, SeedSession, WhileBuilding};
use crate::wrapper::read_events;

/// How long `cargo xcache build` waits, after cargo, for entries still being stored.
const BACKGROUND_LIMIT: Duration = Duration::from_secs(600);

/// Waits for the wrappers' background work after cargo ended with `code`. Returns what was captured for seeding early
/// (after a build that succeeded), and how long the wait took, in milliseconds.
pub(super) fn wait_for_background(
    ready: &Ready<'_>,
    seeds: Option<&SeedSession>,
    code: i32,
    while_building: Option<WhileBuilding>,
) -> (Option<EarlyCapture>, u64) {
    let (env, verbosity) = (ready.run.env, ready.verbosity);
    let (events_path, pending_dir) = (&ready.paths.events, &ready.paths.pending);
    // Entries still being stored: their events come when they are. Meanwhile, after a
    // build that succeeded, the units whose events are in are captured for seeding.
    let waited = Instant::now();
    let mut early: Option<EarlyCapture> = None;
    let mut background_wait_ms = 0;
    if let Some(dir) = pending_dir {
        let late = std::thread::scope(|scope| {
            let capturing = seeds.filter(|_| code == 0).map(|s| {
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
    } else if let (Some(s), Some(wb), 0) = (seeds, while_building, code) {
        // No stores went on after cargo: what was captured while it ran is judged now.
        early = read_events(events_path)
            .ok()
            .map(|evs| s.capture_early(&evs, env, Some(wb)));
    }
    if let Some(dir) = ready.run.later_dir {
        let _ = std::fs::remove_dir_all(dir);
        crate::private_dir::remove_stale_later_dirs();
    }
    (early, background_wait_ms)
}
