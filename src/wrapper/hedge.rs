//! The compile run here while its action waits for a worker (`XCACHE_EXECUTOR_HEDGE`):
//! [`HedgeRun`], the [`Hedge`] a remote attempt starts, and stops when the worker's
//! result stands.
//!
//! Without it, a compile sent to a farm that has no worker for its platform held one of
//! cargo's job slots, idle, for the whole queue wait; now that slot compiles. The first
//! of the two to end stands. At most one per core runs at once (slots as
//! [`crate::wrapper::local_slots`] has them, in the target dir's `xcache/hedge-slots`):
//! a farm's build runs with a `-j` far above this machine's cores.
//!
//! The compile is observed as any local one, and its messages are kept, not passed on,
//! until it stands: the worker's would follow them. It runs in a process group of its
//! own, so that stopping it ends the linker a proc-macro's rustc started too (the link
//! writes the final file), and with the parent-death signal set, so that it does not
//! outlive a wrapper killed on Ctrl-C (a group of its own does not get the terminal's
//! signal).

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::lifecycle::Ran;
use super::local_slots::{self, Slot};
use crate::exec::send::Hedge;
use crate::observe::Observer;

/// A unit's compile, ready to run here as a hedge.
pub(super) struct HedgeRun {
    cmd: Option<Command>,
    /// The `LD_PRELOAD` the compile would have had (kept after the observer's).
    preload: Option<String>,
    /// The slots' directory (none without a target dir: then it never starts).
    slots: Option<PathBuf>,
    running: Option<Running>,
    /// It was started (it may have ended or been stopped since).
    pub started: bool,
}

struct Running {
    /// The compile's process, the leader of its group.
    pid: u32,
    /// Whether the leader was reaped (its pid, and so its group's, may then be reused):
    /// held while the group is signalled.
    reaped: Arc<Mutex<bool>>,
    thread: JoinHandle<io::Result<Ran>>,
    _slot: Slot,
}

impl HedgeRun {
    /// `cmd` runs the compile as a local run would (the path remapping, the arguments);
    /// `target` is the target dir (its `xcache/hedge-slots`).
    pub fn new(cmd: Command, preload: Option<&str>, target: Option<&std::path::Path>) -> HedgeRun {
        HedgeRun {
            cmd: Some(cmd),
            preload: preload.map(str::to_string),
            slots: target.map(|t| t.join("xcache/hedge-slots")),
            running: None,
            started: false,
        }
    }

    /// The compile's run, waited for: `None` when it was not started, or stopped.
    pub fn wait(&mut self) -> Option<io::Result<Ran>> {
        let r = self.running.take()?;
        Some(
            r.thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the compile here panicked"))),
        )
    }
}

impl Hedge for HedgeRun {
    fn start(&mut self, ended: Arc<tokio::sync::Notify>) -> bool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let Some(slot) = self
            .slots
            .as_deref()
            .and_then(|dir| local_slots::take(dir, cores))
        else {
            return false;
        };
        let (Some(mut cmd), Ok(observer)) = (self.cmd.take(), Observer::new()) else {
            return false;
        };
        observer.apply(&mut cmd, self.preload.as_deref());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            #[allow(unsafe_code)]
            // SAFETY: the closure makes one system call (prctl), which is allowed
            // between fork and exec; it touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::KILL,
                    ))
                    .map_err(io::Error::from)
                });
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(_) => {
                observer.discard();
                return false;
            }
        };
        let pid = child.id();
        let reaped = Arc::new(Mutex::new(false));
        let thread = {
            let reaped = reaped.clone();
            std::thread::spawn(move || {
                let mut out = child.stdout.take().expect("piped");
                let mut err = child.stderr.take().expect("piped");
                let out_thread = std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = out.read_to_end(&mut buf);
                    buf
                });
                let mut stderr = Vec::new();
                let _ = err.read_to_end(&mut stderr);
                let stdout = out_thread.join().unwrap_or_default();
                // Its end, waited for without reaping it: its pid stays its own while
                // `stop` may still signal its group.
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::waitid(
                        rustix::process::WaitId::Pid(p),
                        rustix::process::WaitIdOptions::EXITED
                            | rustix::process::WaitIdOptions::NOWAIT,
                    );
                }
                let status = {
                    let mut r = reaped.lock().unwrap_or_else(|e| e.into_inner());
                    let status = child.wait();
                    *r = true;
                    status
                };
                ended.notify_one();
                let status = status?;
                Ok(Ran {
                    code: status.code().unwrap_or(101),
                    stdout,
                    stderr,
                    trace: observer.finish(pid).ok(),
                })
            })
        };
        self.running = Some(Running {
            pid,
            reaped,
            thread,
            _slot: slot,
        });
        self.started = true;
        true
    }

    fn stop(&mut self) {
        let Some(r) = self.running.take() else {
            return;
        };
        {
            let reaped = r.reaped.lock().unwrap_or_else(|e| e.into_inner());
            if !*reaped && let Some(p) = rustix::process::Pid::from_raw(r.pid as i32) {
                let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
            }
        }
        // The run's record is read and removed; nothing of it is used.
        let _ = r.thread.join();
    }
}

impl Drop for HedgeRun {
    fn drop(&mut self) {
        self.stop();
    }
}
