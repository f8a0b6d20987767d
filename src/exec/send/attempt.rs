//! One compile sent to the executor ([`attempt`]); an executor found down is given up
//! for the rest of the build, and so is a platform no worker took a compile of within
//! the queue wait (state files the build's processes share).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::finish::finish;
use super::job::{Hedge, Job, Origin, RemoteRun};
use super::outcome::{Fallback, Fell, said};
use super::request::{platform, request};
use super::roots::Roots;
use super::toolchain::{Shipped, ensure_sent, targets};
use crate::config::ExecutorSpec;
use crate::errors::CacheError;
use crate::exec::{Executor, QueueWait};

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once.
///
/// `hedge`: the same compile run here, started at once while no worker is known to
/// serve the platform (`XCACHE_EXECUTOR_HEDGE`). When it ends first the action is
/// cancelled and the attempt falls back with [`Fallback::HereFirst`]; when the worker's
/// result stands, it is stopped before the outputs are put in place. On any fallback
/// the caller uses the hedge's run, if one was started and not stopped.
pub fn attempt(
    cx: &mut dyn Origin,
    job: &Job<'_>,
    mut hedge: Option<&mut dyn Hedge>,
) -> Result<RemoteRun, Fell> {
    let state = state_file(job.spec);
    if let Ok(text) = std::fs::read_to_string(&state)
        && let Some(why) = text.strip_prefix("down\t")
    {
        return Err((
            Fallback::Unavailable,
            format!("given up earlier in this build ({})", why.trim()),
        ));
    }
    let t = Instant::now();
    let roots = Roots::new(cx.path_map());
    // A server that refused the shipped platform earlier in the build (its property set
    // does not know `xcache-toolchain`) is asked for the installed route instead.
    let ship_refused = || {
        PlatformState::new(&state, &platform(job, true))
            .given_up()
            .is_some()
    };
    let ship = job.ships_toolchain() && !ship_refused();
    // Whether the platform is known unserved is asked before the input root is made (a
    // farm with no worker for it sends every compile here at once, at no cost).
    let platform_state = PlatformState::new(&state, &platform(job, ship));
    // Once a worker took a compile of this platform, a wait in the queue is a busy
    // farm's: only the deadline bounds it.
    let known_served = platform_state.served();
    if !known_served && let Some(why) = platform_state.given_up() {
        return Err((
            Fallback::Unserved,
            format!("given up earlier in this build for this platform ({why})"),
        ));
    }
    // A link's platform asks for what the compile's does and more: given up for the
    // compile's (no worker has this toolchain), it is given up too.
    if job.link.is_some() && !known_served {
        let mut base = platform(job, ship);
        base.remove(crate::exec::wire::LINKER_PROPERTY);
        if let Some(why) = PlatformState::new(&state, &base).given_up() {
            return Err((
                Fallback::Unserved,
                format!("given up earlier in this build for this toolchain ({why})"),
            ));
        }
    }
    // While no worker is known to serve the platform, the compile runs here too: a farm
    // that cannot take it then costs nothing, one that is slow to costs nothing more.
    let ended = std::sync::Arc::new(tokio::sync::Notify::new());
    let hedging = job.spec.hedge
        && !known_served
        && hedge.as_deref_mut().is_some_and(|h| h.start(ended.clone()));
    let shipped = if ship {
        let host = job
            .compiler
            .host()
            .ok_or((Fallback::InputRoot, "rustc -vV names no host".to_string()))?;
        let s = Shipped::of(
            &job.compiler.sysroot,
            &targets(job.inv.target.as_deref(), host),
        )
        .map_err(|m| (Fallback::InputRoot, m))?;
        let tree = s.tree().map_err(|m| (Fallback::InputRoot, m))?;
        Some((s, tree))
    } else {
        None
    };
    let req = request(cx, job, &roots, shipped.as_ref().map(|(_, t)| t))
        .map_err(|m| (Fallback::InputRoot, m))?;
    let served = || platform_state.served();
    let this_taken = std::sync::atomic::AtomicBool::new(false);
    let taken = || {
        this_taken.store(true, std::sync::atomic::Ordering::Relaxed);
        platform_state.mark_served();
    };
    let operation = std::sync::Mutex::new(None);
    let given_up = || platform_state.given_up().is_some();
    let since = || platform_state.wait_began(job.spec.queue_wait);
    let queue = QueueWait {
        limit: job.spec.queue_wait,
        since: &since,
        served: &served,
        taken: &taken,
        given_up: &given_up,
        operation: &operation,
    };
    let queue = (!known_served).then_some(&queue);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (Fallback::Failed, format!("no I/O runtime ({e})")))?;
    let result = rt.block_on(async {
        let ex = Executor::new(&job.spec.server, job.spec.deadline)
            .map_err(|e| (Fallback::Unavailable, said(&e)))?;
        let fell = |e: CacheError| {
            if platform_refused(&e) {
                let why = match &shipped {
                    Some(_) => format!(
                        "{SHIP_REFUSED} {} ({}); add it to the server's property set, or set \
                         XCACHE_EXECUTOR_TOOLCHAIN=installed",
                        crate::exec::wire::TOOLCHAIN_PROPERTY,
                        said(&e)
                    ),
                    None => format!("the server refused the compile's platform ({})", said(&e)),
                };
                return (Fallback::Unserved, why);
            }
            let fallback = if matches!(e, CacheError::ExecutorUnserved { .. }) {
                Fallback::Unserved
            } else if crate::exec::is_unreachable(&e) {
                Fallback::Unavailable
            } else {
                Fallback::Failed
            };
            (fallback, said(&e))
        };
        // Once a compile of the build found the toolchain on the server (or sent it),
        // the others do not ask again: the action's own upload asks for every blob it
        // names anyway.
        let work = async {
            let toolchain_up = match &shipped {
                Some((s, tree)) => {
                    let known = toolchain_known(&state, s);
                    if known.exists() {
                        0
                    } else {
                        let sent = ensure_sent(
                            &ex,
                            tree,
                            job.spec.server.display(),
                            &job.compiler.sysroot,
                            &fell,
                            &|_| {},
                        )
                        .await?;
                        let _ = crate::fsx::write_atomic(&known, b"sent\n");
                        sent
                    }
                }
                None => 0,
            };
            let run = ex.execute(&req, queue).await.map_err(fell)?;
            Ok::<_, Fell>((run, toolchain_up))
        };
        let answer = if hedging {
            tokio::pin!(work);
            tokio::select! {
                r = &mut work => Some(r),
                () = ended.notified() => {
                    // Driven on briefly: an action asked to run that the server has not
                    // named yet, until it is (dropped unnamed, it would wait in the queue
                    // for nobody, and cannot be cancelled); and the first attempts of a
                    // build that has not reached the server yet, until they do (a server
                    // that is down is then found so, said once and given up, not hidden
                    // by compiles here that all end first).
                    let (reached, probed) = (sibling(&state, "reached"), sibling(&state, "probed"));
                    let probing = !reached.exists() && !probed.exists();
                    let go_on = || match operation.lock().as_deref() {
                        Ok(Some(name)) => name.is_empty(),
                        Ok(None) => probing,
                        Err(_) => false,
                    };
                    let driven = tokio::time::timeout(CANCEL_WAIT, async {
                        while go_on() {
                            tokio::select! {
                                r = &mut work => return Some(r),
                                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                            }
                        }
                        None
                    })
                    .await;
                    match driven {
                        Ok(Some(Err(down))) if down.0 == Fallback::Unavailable => Some(Err(down)),
                        Err(_) if probing && matches!(operation.lock().as_deref(), Ok(None)) => {
                            let _ = crate::fsx::write_atomic(&probed, b"probed\n");
                            None
                        }
                        _ => None,
                    }
                }
            }
        } else {
            Some(work.await)
        };
        // Asked to run: the server was reached in this build.
        let reached = sibling(&state, "reached");
        if matches!(operation.lock().as_deref(), Ok(Some(_))) && !reached.exists() {
            let _ = crate::fsx::write_atomic(&reached, b"reached\n");
        }
        let Some(answer) = answer else {
            // The compile here ended first: the worker's result is not wanted.
            let name = operation
                .lock()
                .ok()
                .and_then(|n| n.clone())
                .unwrap_or_default();
            ex.cancel(&name).await;
            return Err((Fallback::HereFirst, here_first(t, &this_taken)));
        };
        let (run, toolchain_up) = answer?;
        let mut done = finish(
            cx,
            job,
            &roots,
            &ex,
            run,
            shipped.as_ref().map(|(s, _)| s),
            hedge,
        )
        .await?;
        done.record.bytes_up += toolchain_up;
        Ok(done)
    });
    // A compile here that ended first while no worker had taken a compile of the
    // platform: once the build's queue wait for it has passed, the platform is given up,
    // as a compile still waiting then would have given it up.
    let result = match result {
        Err((Fallback::HereFirst, why)) if !platform_state.served() => {
            platform_state.mark_waited();
            if platform_state.window_passed(job.spec.queue_wait) {
                Err((
                    Fallback::Unserved,
                    format!(
                        "no worker took a compile within {:?} (XCACHE_EXECUTOR_QUEUE_WAIT); {why}",
                        job.spec.queue_wait
                    ),
                ))
            } else {
                Err((Fallback::HereFirst, why))
            }
        }
        other => other,
    };
    match result {
        Ok(mut done) => {
            done.record.action_ms = t.elapsed().as_millis() as u64;
            Ok(done)
        }
        Err((Fallback::Unavailable, why)) => {
            let _ = crate::fsx::write_atomic(&state, format!("down\t{why}\n").as_bytes());
            cx.warn(&CacheError::Executor {
                uri: job.spec.server.display().to_string(),
                message: format!("{why}; compiles run here for the rest of the build"),
            });
            Err((Fallback::Unavailable, why))
        }
        Err((Fallback::Unserved, why)) => {
            platform_state.mark_unserved(&why);
            let then = if why.starts_with(SHIP_REFUSED) {
                "library compiles ask for a worker with this toolchain installed for the rest \
                 of the build"
            } else {
                "compiles for its platform run here for the rest of the build"
            };
            cx.warn(&CacheError::ExecutorUnserved {
                uri: job.spec.server.display().to_string(),
                message: format!("{why}; {then}"),
            });
            Err((Fallback::Unserved, why))
        }
        Err(e) => Err(e),
    }
}

/// A state file of the build's beside the executor's own `state` file.
fn sibling(state: &Path, what: &str) -> PathBuf {
    let mut n = state.as_os_str().to_owned();
    n.push(format!("-{what}"));
    PathBuf::from(n)
}

/// The file that says, for the processes of one build, that the server has the shipped
/// toolchain `s` (beside the executor's own `state` file).
fn toolchain_known(state: &Path, s: &Shipped) -> PathBuf {
    let mut h = crate::key::KeyHasher::new("executor-toolchain-known");
    for (rel, path) in &s.files {
        h.str("file", rel).str("path", &path.to_string_lossy());
    }
    sibling(state, &format!("toolchain-{}", &h.finish().to_hex()[..16]))
}

/// Why a compile here stood for the worker's: it ended first.
fn here_first(t: Instant, taken: &std::sync::atomic::AtomicBool) -> String {
    let worker = if taken.load(std::sync::atomic::Ordering::Relaxed) {
        "a worker had taken the action and was still at it"
    } else {
        "no worker had taken the action"
    };
    format!(
        "the compile here ended first, {} ms after the compile was sent; {worker}",
        t.elapsed().as_millis()
    )
}

/// How long an attempt is driven on once the compile here ended first: an action asked
/// to run, for the server to name it (so that it can be cancelled); the first ones of a
/// build, for the server to be reached or found down.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// How the reason starts when the server refused a shipped toolchain's platform.
const SHIP_REFUSED: &str = "the server does not know the platform property";

/// Whether the server refused the action for a platform property it does not know
/// (BuildGrid: `FAILED_PRECONDITION`, "Unregistered platform property"): no worker will
/// ever take that platform.
fn platform_refused(e: &CacheError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("platform propert")
        && ["unregistered", "unknown", "not supported", "unsupported"]
            .iter()
            .any(|w| text.contains(w))
}

/// What the build's processes know of one platform on the executor: a worker took a
/// compile of it (`served`), or none took one within the queue wait while none had
/// (`unserved`), each written once, so that neither undoes the other; and when the
/// current window of waiting for a worker began (`waiting`).
struct PlatformState {
    served: PathBuf,
    unserved: PathBuf,
    /// When the build's first compile of the platform began to wait (`wait_began`).
    waiting: PathBuf,
    /// When a compile of the platform last stopped waiting with no worker having taken
    /// it, because the compile here ended first (`mark_waited`).
    waited: PathBuf,
}

impl PlatformState {
    /// The state of `platform` beside the executor's own `state` file (which names the
    /// build and the server).
    fn new(state: &Path, platform: &BTreeMap<String, String>) -> PlatformState {
        let mut h = crate::key::KeyHasher::new("executor-platform");
        h.str("properties", &platform.len().to_string());
        for (k, v) in platform {
            h.str("name", k).str("value", v);
        }
        let id = h.finish().to_hex();
        let name = |what: &str| sibling(state, &format!("{}.{what}", &id[..16]));
        PlatformState {
            served: name("served"),
            unserved: name("unserved"),
            waiting: name("waiting"),
            waited: name("waited"),
        }
    }

    fn served(&self) -> bool {
        self.served.exists()
    }

    fn mark_served(&self) {
        let _ = crate::fsx::write_atomic(&self.served, b"served\n");
    }

    /// Why the platform was given up, when it was (the caller asks only while no
    /// worker is known to serve it).
    fn given_up(&self) -> Option<String> {
        std::fs::read_to_string(&self.unserved)
            .ok()
            .map(|t| t.trim().to_string())
    }

    /// When the build's first compile of the platform began to wait for a worker: the
    /// current window's start, if that was less than `limit` ago, or if it was longer ago
    /// but compiles were still waiting at its end (then the wait is over at once). Else
    /// now: this compile's wait starts a window of its own (one that passed with nothing
    /// waiting at its end ended otherwise: a compile that failed for another reason).
    fn wait_began(&self, limit: std::time::Duration) -> std::time::SystemTime {
        let now = std::time::SystemTime::now();
        if let Some(t) = read_time(&self.waiting).filter(|t| *t <= now) {
            let waited_to_end = read_time(&self.waited).is_some_and(|w| w >= t + limit);
            if t + limit > now || waited_to_end {
                return t;
            }
        }
        write_time(&self.waiting, now)
    }

    /// A compile of the platform stopped waiting now, no worker having taken it.
    fn mark_waited(&self) {
        let _ = write_time(&self.waited, std::time::SystemTime::now());
    }

    /// Whether the current window of waiting is older than `limit`.
    fn window_passed(&self, limit: std::time::Duration) -> bool {
        read_time(&self.waiting).is_some_and(|t| t + limit <= std::time::SystemTime::now())
    }

    fn mark_unserved(&self, why: &str) {
        let _ = crate::fsx::write_atomic(&self.unserved, format!("{why}\n").as_bytes());
    }
}

/// A time kept in a state file (milliseconds since the epoch).
fn read_time(file: &Path) -> Option<std::time::SystemTime> {
    let ms = std::fs::read_to_string(file)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// Writes `t` to `file`, as the milliseconds it is kept in: the time as every reader
/// of the file will have it.
fn write_time(file: &Path, t: std::time::SystemTime) -> std::time::SystemTime {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let _ = crate::fsx::write_atomic(file, format!("{ms}\n").as_bytes());
    std::time::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The file that says, for the processes of one build, that the executor is down (or,
/// `check`, that a worker's result differed from this machine's).
pub(super) fn state_file(spec: &ExecutorSpec) -> PathBuf {
    let id = crate::key::KeyHasher::new("executor-state")
        .str("uri", spec.server.display())
        .finish();
    std::env::temp_dir().join(format!(
        "xcache-executor-{}-{}",
        std::os::unix::process::parent_id(),
        &id.to_hex()[..16]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path) -> PlatformState {
        let mut p = BTreeMap::new();
        p.insert("xcache-compiler".to_string(), "abc".to_string());
        PlatformState::new(&dir.join("state"), &p)
    }

    /// One window per build: compiles that begin to wait within it share its start.
    #[test]
    fn a_window_is_shared_while_it_lasts() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let limit = Duration::from_secs(60);
        let first = s.wait_began(limit);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(s.wait_began(limit), first);
        assert!(!s.window_passed(limit));
    }

    /// A window that passed with nothing waiting at its end (a compile that failed for
    /// another reason) is not held against the next compile: it starts one of its own.
    #[test]
    fn a_window_that_passed_unwatched_starts_anew() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let limit = Duration::from_millis(50);
        let first = s.wait_began(limit);
        std::thread::sleep(Duration::from_millis(100));
        assert!(s.window_passed(limit));
        let second = s.wait_began(limit);
        assert!(second > first);
        assert!(!s.window_passed(limit));
    }

    /// Compiles here that ended first, with no worker taking their actions, up to the
    /// window's end: the window is over for the next compile too (its wait ends at once,
    /// and the platform is given up), not started anew.
    #[test]
    fn a_window_waited_to_its_end_by_compiles_here_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let limit = Duration::from_millis(50);
        let first = s.wait_began(limit);
        std::thread::sleep(Duration::from_millis(100));
        s.mark_waited();
        assert!(s.window_passed(limit));
        assert_eq!(s.wait_began(limit), first);
        // Waited for, but not to the end: a new window.
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path());
        let first = s.wait_began(limit);
        s.mark_waited();
        std::thread::sleep(Duration::from_millis(100));
        assert!(s.wait_began(limit) > first);
    }
}
