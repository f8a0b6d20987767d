//! One compile sent to the executor ([`attempt`]); an executor found down is given up
//! for the rest of the build, and so is a platform no worker took a compile of within
//! the queue wait (state files the build's processes share).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::finish::finish;
use super::job::{Job, Origin, RemoteRun};
use super::outcome::{Fallback, Fell, said};
use super::request::{platform, request};
use super::roots::Roots;
use super::toolchain::{Shipped, ensure_sent, targets};
use crate::config::ExecutorSpec;
use crate::errors::CacheError;
use crate::exec::{Executor, QueueWait};

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once.
pub fn attempt(cx: &mut dyn Origin, job: &Job<'_>) -> Result<RemoteRun, Fell> {
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
    let taken = || platform_state.mark_served();
    let given_up = || platform_state.given_up().is_some();
    let since = || platform_state.wait_began(job.spec.queue_wait);
    let queue = QueueWait {
        limit: job.spec.queue_wait,
        since: &since,
        served: &served,
        taken: &taken,
        given_up: &given_up,
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
        let mut done = finish(cx, job, &roots, &ex, run, shipped.as_ref().map(|(s, _)| s)).await?;
        done.record.bytes_up += toolchain_up;
        Ok(done)
    });
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

/// The file that says, for the processes of one build, that the server has the shipped
/// toolchain `s` (beside the executor's own `state` file).
fn toolchain_known(state: &Path, s: &Shipped) -> PathBuf {
    let mut h = crate::key::KeyHasher::new("executor-toolchain-known");
    for (rel, path) in &s.files {
        h.str("file", rel).str("path", &path.to_string_lossy());
    }
    let mut n = state.as_os_str().to_owned();
    n.push(format!("-toolchain-{}", &h.finish().to_hex()[..16]));
    PathBuf::from(n)
}

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
        let name = |what: &str| {
            let mut n = state.as_os_str().to_owned();
            n.push(format!("-{}.{what}", &id[..16]));
            PathBuf::from(n)
        };
        PlatformState {
            served: name("served"),
            unserved: name("unserved"),
            waiting: name("waiting"),
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

    /// When the build's first compile of the platform began to wait for a worker, if
    /// that was less than `limit` ago; else now (this compile's wait starts a window of
    /// its own: one that passed with no worker taking a compile and none given up ended
    /// otherwise, a compile that failed for another reason).
    fn wait_began(&self, limit: std::time::Duration) -> std::time::SystemTime {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};
        let now = SystemTime::now();
        let earlier = std::fs::read_to_string(&self.waiting)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
            .filter(|t| *t <= now && *t + limit > now);
        if let Some(t) = earlier {
            return t;
        }
        let ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let _ = crate::fsx::write_atomic(&self.waiting, format!("{ms}\n").as_bytes());
        now
    }

    fn mark_unserved(&self, why: &str) {
        let _ = crate::fsx::write_atomic(&self.unserved, format!("{why}\n").as_bytes());
    }
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
