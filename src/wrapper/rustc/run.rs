//! Running the compiler: straight through for what is not cached ([`passthrough`]), here
//! with its output passed on as it comes ([`Rustc::spawn`]), or sent to a worker
//! ([`Rustc::run_remotely`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::unit::Rustc;
use crate::config::ExecutorSpec;
use crate::errors::CacheError;
use crate::exec::send::check;
use crate::key::CrateKind;
use crate::key::RootKind;
use crate::observe::Observer;
use crate::wrapper::RemoteExec;
use crate::wrapper::hedge::HedgeRun;
use crate::wrapper::lifecycle::{Cx, Ran};
use crate::wrapper::remote_exec;

pub(super) fn passthrough(wrapper: Option<&Path>, rustc: &Path, args: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = Command::new(w);
            c.arg(rustc);
            c
        }
        None => Command::new(rustc),
    };
    let err = cmd.args(args).exec();
    eprintln!("error: xcache: failed to run {}: {err}", rustc.display());
    1
}

/// How a compile that could go to the workers went ([`Rustc::run_remotely`]).
pub(super) enum Sent {
    /// A worker's result stands for the compile.
    Worker(Ran),
    /// The compile here that ran while the action waited for a worker stands (it ended
    /// first, or the attempt fell back): its messages are passed on.
    Here(Ran),
    /// It must run here.
    Not,
}

impl Rustc {
    /// Where this compile may be sent (`XCACHE_EXECUTOR`): a library that does not
    /// link, or a proc-macro (which links a shared library through `cc`: the worker's
    /// linker identity must be this machine's, see `run_remotely`), compiled by rustc
    /// itself. Not binaries, tests, cdylibs (their links are the world's: any system
    /// library, any linker argument), not build scripts, not `-C target-cpu=native`
    /// (the worker's CPU), not incremental, not with real paths kept in artifacts (they
    /// would name the worker's).
    pub(super) fn may_run_remotely(&self, cx: &Cx) -> Option<ExecutorSpec> {
        let spec = cx.cfg.executor.clone()?;
        let kind_sendable = match self.inv.kind() {
            CrateKind::Lib => !self.inv.links() && self.link.is_none(),
            CrateKind::ProcMacro => self.link.is_some(),
            _ => false,
        };
        let sendable = self.workspace_wrapper.is_none()
            && kind_sendable
            && !self.inv.incremental
            && !self.inv.targets_native_cpu()
            && !cx.cfg.real_paths;
        sendable.then_some(spec)
    }

    /// Sends the compile to a worker: what it did, as a local run says it (outputs in
    /// place, messages passed through), or the run here that ended first (the hedge);
    /// [`Sent::Not`] when it must run here (why is in the unit's event).
    pub(super) fn run_remotely(
        &mut self,
        cx: &mut Cx,
        spec: &ExecutorSpec,
        args: &[String],
    ) -> Sent {
        let Some(compiler) = cx.compiler.as_ref().map(|c| c.1.clone()) else {
            return Sent::Not;
        };
        let t = std::time::Instant::now();
        let link = match &self.link {
            None => None,
            Some(plan) => match &plan.for_workers {
                Some(Ok(linker)) => Some((linker.clone(), plan.args_file().to_path_buf())),
                Some(Err(why)) => {
                    self.remote = Some(RemoteExec {
                        fallback: Some(remote_exec::Fallback::Linker.code().to_string()),
                        detail: Some(why.clone()),
                        ..RemoteExec::default()
                    });
                    return Sent::Not;
                }
                None => return Sent::Not,
            },
        };
        let mut hedge = HedgeRun::new(
            self.compile_command(cx, args),
            cx.cfg.env.get("LD_PRELOAD"),
            cx.pm.real_of(RootKind::Target).map(Path::new),
        );
        let command = || self.command();
        let job = remote_exec::Job {
            spec,
            inv: &self.inv,
            compiler: &compiler,
            args,
            command: &command,
            link,
        };
        match remote_exec::attempt(cx, &job, self.l1.as_ref(), &mut hedge) {
            Ok(remote_exec::Done {
                mut record,
                check: Some(outputs),
                ..
            }) => {
                // Compiled here too, as a fallback is, and compared after (`checked`).
                record.hedged = hedge.started;
                self.remote = Some(record);
                self.checking = Some((spec.clone(), outputs));
                Sent::Not
            }
            Ok(done) => {
                // After the outputs are in place: cargo starts dependents when it reads
                // the metadata artifact message.
                let _ = io::stderr().write_all(&done.ran.stderr);
                let _ = io::stdout().write_all(&done.ran.stdout);
                self.remote = Some(RemoteExec {
                    hedged: hedge.started,
                    ..done.record
                });
                self.roots_stay_out = done.roots_stay_out;
                Sent::Worker(done.ran)
            }
            Err((fallback, detail)) => {
                self.remote = Some(RemoteExec {
                    fallback: Some(fallback.code().to_string()),
                    detail: Some(detail),
                    action_ms: t.elapsed().as_millis() as u64,
                    hedged: hedge.started,
                    ..RemoteExec::default()
                });
                // The compile here that ran meanwhile stands for the unit, as one run
                // after the fallback would.
                match hedge.wait() {
                    Some(Ok(ran)) => {
                        let _ = io::stderr().write_all(&ran.stderr);
                        let _ = io::stdout().write_all(&ran.stdout);
                        Sent::Here(ran)
                    }
                    _ => Sent::Not,
                }
            }
        }
    }

    /// After the compile here of a remote result in the checked share: the worker's
    /// outputs compared with this machine's. Equal: the unit says it was checked.
    /// Different (or the compile failed here): this machine's result stands, the
    /// executor is given up for the rest of the build, and a warning says so once.
    pub(super) fn compare_with_worker(&mut self, cx: &mut Cx, ran: &Ran) {
        let Some((spec, outputs)) = self.checking.take() else {
            return;
        };
        let result = if ran.code == 0 {
            outputs.compare()
        } else {
            Err(format!(
                "the compile failed here (exit {}) and succeeded on worker {}",
                ran.code, outputs.worker
            ))
        };
        let record = self.remote.get_or_insert_with(RemoteExec::default);
        record.checked = true;
        if let Err(why) = result {
            let name = self.inv.crate_name.as_deref().unwrap_or("?");
            let why = format!("{name}: {why}");
            record.fallback = Some(remote_exec::Fallback::Mismatch.code().to_string());
            record.detail = Some(why.clone());
            check::give_up(&spec, &why);
            cx.warn(&CacheError::ExecutorMismatch {
                uri: spec.server.display().to_string(),
                message: format!(
                    "{why}; this machine's compile is used, and compiles run here for the rest \
                     of the build"
                ),
            });
        }
    }

    /// Runs rustc (behind the workspace wrapper, if any) with the path remapping and
    /// `args`, observed when `observer` is given. With `echo`, its output is passed
    /// through as it comes (cargo starts dependents as soon as it sees the metadata
    /// artifact message); a copy is kept either way.
    pub(super) fn spawn(
        &self,
        cx: &Cx,
        args: &[String],
        observer: Option<Observer>,
        echo: bool,
    ) -> io::Result<Ran> {
        let mut cmd = self.compile_command(cx, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(o) = &observer {
            o.apply(&mut cmd, cx.cfg.env.get("LD_PRELOAD"));
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let mut child_out = child.stdout.take().expect("piped");
        let child_err = child.stderr.take().expect("piped");
        let out_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = child_out.read_to_end(&mut buf);
            buf
        });
        let mut stderr = Vec::new();
        let mut reader = BufReader::new(child_err);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if echo {
                let mut e = io::stderr().lock();
                let _ = e.write_all(&line);
                let _ = e.flush();
            }
            stderr.extend_from_slice(&line);
        }
        let status = child.wait()?;
        let stdout = out_thread.join().unwrap_or_default();
        if echo {
            let _ = io::stdout().write_all(&stdout);
        }
        Ok(Ran {
            code: status.code().unwrap_or(101),
            stdout,
            stderr,
            trace: observer.and_then(|o| o.finish(pid).ok()),
        })
    }

    /// The command that runs this compile here: the path remapping and `args`.
    fn compile_command(&self, cx: &Cx, args: &[String]) -> Command {
        let mut cmd = self.command();
        cmd.args(cx.pm.remap_args()).args(args);
        cmd
    }

    /// The command that runs the compiler: the workspace wrapper in front of rustc, if
    /// cargo named one.
    pub(super) fn command(&self) -> Command {
        match &self.workspace_wrapper {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(&self.rustc);
                c
            }
            None => Command::new(&self.rustc),
        }
    }
}
