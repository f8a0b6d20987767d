//! One action run ([`run`]): its input root made, its command started in it with the
//! worker's rustc and observed, bounded by its timeout, and its outputs, messages and
//! record put in the CAS for the `ActionResult` ([`Ran`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::protobuf::Timestamp;
use tokio::process::Command as TokioCommand;

use super::failed::Failed;
use super::inputs::{Caches, make_toolchain, materialize};
use super::lease::message;
use super::paths::{has_symlink, inside, output_paths};
use super::record::{Toolchain, observed_record};
use crate::exec::wire::{OBSERVED, RUSTC_VAR, SHIPPED, TOOLCHAIN_DIR, TOOLCHAIN_PROPERTY};
use crate::reapi::{Reapi, Source};

/// How long an action may run when it names no timeout.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What the worker reports for one action.
pub struct Ran {
    pub result: re::ActionResult,
}

/// Runs `action` in a fresh directory under `work` and reports its result.
/// `caches` are the blob cache and the shipped toolchains every worker of the machine
/// shares.
pub async fn run(
    cas: &Reapi,
    action: &re::Action,
    work: &Path,
    caches: &Caches,
    worker_name: &str,
    toolchain: Option<&Toolchain>,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> Result<Ran, Failed> {
    let started = SystemTime::now();
    let command_digest = action
        .command_digest
        .as_ref()
        .ok_or_else(|| Failed::invalid("the Action names no command".into()))?;
    let command: re::Command = message(cas, command_digest, "Command").await?;
    let root_digest = action
        .input_root_digest
        .as_ref()
        .ok_or_else(|| Failed::invalid("the Action names no input root".into()))?;
    let dir = tempfile::Builder::new()
        .prefix("action-")
        .tempdir_in(work)
        .map_err(|e| {
            Failed::internal(format!("no action directory in {} ({e})", work.display()))
        })?;
    let root = dir.path().join("root");
    // What the Command says is checked before its input tree is fetched; its working
    // directory once the tree is there (no link in it then leads out).
    let outputs = command_outputs(&command)?;
    let ships = shipped(action);
    let fetch_start = SystemTime::now();
    let kept = materialize(
        cas,
        root_digest,
        &root,
        Some(&caches.blobs),
        ships.then_some(TOOLCHAIN_DIR),
    )
    .await?;
    // A shipped toolchain: made once for the machine, held until the action is done
    // (no worker removes it meanwhile), and the compile's rustc.
    let (shipped_toolchain, held) = match (ships, kept) {
        (false, _) => (None, None),
        (true, None) => {
            return Err(Failed::invalid(format!(
                "the action asks for a shipped toolchain and its input root has no {TOOLCHAIN_DIR}/"
            )));
        }
        (true, Some(d)) => {
            let held = make_toolchain(cas, &d, caches).await?;
            let sysroot = held.path.clone();
            let toolchain = Toolchain {
                rustc: sysroot.join("bin").join("rustc"),
                sysroot,
                identity: String::new(),
                linker: None,
            };
            (Some(toolchain), Some(held))
        }
    };
    let toolchain = if ships {
        shipped_toolchain.as_ref()
    } else {
        toolchain
    };
    let fetch_done = SystemTime::now();

    let wd = if command.working_directory.is_empty() {
        root.clone()
    } else {
        inside(&root, &command.working_directory, "working directory")?
    };
    std::fs::create_dir_all(&wd)
        .map_err(|e| Failed::internal(format!("no directory {} ({e})", wd.display())))?;
    // Parents of outputs exist before the command runs (REAPI asks the worker to make them).
    for out in &outputs {
        if let Some(parent) = inside(&wd, out, "output path")?.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Failed::internal(format!("no directory {} ({e})", parent.display()))
            })?;
        }
    }
    let mut cmd = Command::new(&command.arguments[0]);
    cmd.args(&command.arguments[1..])
        .current_dir(&wd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in &command.environment_variables {
        cmd.env(&v.name, &v.value);
    }
    match toolchain {
        Some(t) => cmd.env(RUSTC_VAR, &t.rustc),
        None => cmd.env_remove(RUSTC_VAR),
    };
    let observer = crate::observe::Observer::new().ok();
    if let Some(o) = &observer {
        o.apply(&mut cmd, None);
    }
    let timeout = action_timeout(action);
    let exec_start = SystemTime::now();
    let mut child = TokioCommand::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Failed::invalid(format!(
                "`{}` could not be started ({e})",
                command.arguments[0]
            ))
        })?;
    let pid = child.id().unwrap_or(0);
    let mut cancel = cancel.clone();
    let waited = tokio::select! {
        out = tokio::time::timeout(timeout, async {
            let mut stdout = child.stdout.take();
            let mut stderr = child.stderr.take();
            let (o, e) = tokio::join!(read_all(&mut stdout), read_all(&mut stderr));
            (child.wait().await, o, e)
        }) => out,
        _ = cancel.wait_for(|c| *c) => {
            return Err(Failed { code: 1, message: "the lease was cancelled".into() });
        }
    };
    let (status, stdout, stderr) = match waited {
        Err(_) => {
            if let Some(o) = observer {
                o.discard();
            }
            return Err(Failed {
                code: 4,
                message: format!("the command ran longer than {timeout:?}"),
            });
        }
        Ok((status, o, e)) => (
            status.map_err(|e| Failed::internal(format!("the command was lost ({e})")))?,
            o,
            e,
        ),
    };
    let exec_done = SystemTime::now();
    let exit_code = status.code().unwrap_or(-1);

    // What the command read, written where the client asked for it (over anything the
    // command wrote there: it must not speak for the worker).
    // A symbolic link the run left in its directory could have led a read that looks
    // inside the input root by name elsewhere: such a run is not vouched for.
    let observed = if has_symlink(&root) {
        if let Some(o) = observer {
            o.discard();
        }
        None
    } else {
        observed_record(observer, pid, &root, &wd, toolchain)
    };
    let mut output_files = Vec::new();
    for out in &outputs {
        // Checked again now: the command may have put a symlink on the way.
        let Ok(path) = crate::fsx::confined(&wd, out) else {
            continue;
        };
        if out == OBSERVED {
            let _ = std::fs::remove_file(&path);
            if let Some(bytes) = &observed {
                let digest = cas.put_blob(Source::Bytes(bytes.clone().into())).await?;
                output_files.push(re::OutputFile {
                    path: out.clone(),
                    digest: Some(digest),
                    ..Default::default()
                });
            }
            continue;
        }
        // An output is a regular file the command made; a symlink or a directory is not
        // followed (an output directory is not supported yet: left out, as a missing
        // output, and the client compiles locally).
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let digest = cas.put_blob(Source::Files(vec![path.clone()])).await?;
        output_files.push(re::OutputFile {
            path: out.clone(),
            digest: Some(digest),
            is_executable: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111
                != 0,
            ..Default::default()
        });
    }
    let stdout_digest = Some(cas.put_blob(Source::Bytes(stdout.into())).await?);
    let stderr_digest = Some(cas.put_blob(Source::Bytes(stderr.into())).await?);
    let upload_done = SystemTime::now();
    drop(dir);
    drop(held);
    Ok(Ran {
        result: re::ActionResult {
            output_files,
            exit_code,
            stdout_digest,
            stderr_digest,
            execution_metadata: Some(re::ExecutedActionMetadata {
                worker: worker_name.to_string(),
                worker_start_timestamp: Some(stamp(started)),
                input_fetch_start_timestamp: Some(stamp(fetch_start)),
                input_fetch_completed_timestamp: Some(stamp(fetch_done)),
                execution_start_timestamp: Some(stamp(exec_start)),
                execution_completed_timestamp: Some(stamp(exec_done)),
                output_upload_start_timestamp: Some(stamp(exec_done)),
                output_upload_completed_timestamp: Some(stamp(upload_done)),
                worker_completed_timestamp: Some(stamp(upload_done)),
                ..Default::default()
            }),
            ..Default::default()
        },
    })
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(r: &mut Option<R>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf).await;
    }
    buf
}

pub(super) fn stamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Whether the action carries its toolchain (`xcache-toolchain=shipped` among its
/// platform's properties).
fn shipped(action: &re::Action) -> bool {
    action.platform.as_ref().is_some_and(|p| {
        p.properties
            .iter()
            .any(|x| x.name == TOOLCHAIN_PROPERTY && x.value == SHIPPED)
    })
}

/// The output paths a Command names; an action whose Command has no arguments, or
/// names an output that leaves its directory, is invalid.
pub(super) fn command_outputs(command: &re::Command) -> Result<Vec<String>, Failed> {
    if command.arguments.is_empty() {
        return Err(Failed::invalid("the Command has no arguments".into()));
    }
    output_paths(command)
}

/// How long the action may run: its own timeout, seconds and nanoseconds (a part of a
/// second counts), or [`DEFAULT_TIMEOUT`] when it names none (or zero).
pub(super) fn action_timeout(action: &re::Action) -> Duration {
    action
        .timeout
        .as_ref()
        .map(|d| {
            Duration::new(
                d.seconds.max(0) as u64,
                d.nanos.clamp(0, 999_999_999) as u32,
            )
        })
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_TIMEOUT)
}
