//! One action run by the worker: its input root made from the CAS in a fresh
//! directory, its command run there (observed), its outputs put in the CAS, and the
//! `ActionResult` that names them. Main function: [`run`].
//!
//! Everything an action names comes from the server, which is hostile input: every
//! name in its input tree and every output path must be a plain relative path inside
//! the action's directory (checked by [`plain`]), a blob is used only once it hashes to
//! its digest, and nothing but regular files and directories is made (a symlink in an
//! input tree fails the action: it could lead outside).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use prost::Message as _;
use tokio::process::Command as TokioCommand;

use crate::errors::CacheError;
use crate::exec::wire::{OBSERVED, OBSERVED_FORMAT, RUSTC_VAR, plain};
use crate::reapi::{Reapi, Source};

/// The toolchain a worker compiles with.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The real rustc (not rustup's proxy).
    pub rustc: PathBuf,
    /// `rustc --print sysroot`: stated in the observation record, so the client can
    /// take reads under it as the agreed toolchain's.
    pub sysroot: PathBuf,
    /// The compiler identity, hex: the value of [`crate::exec::wire::COMPILER_PROPERTY`].
    pub identity: String,
    /// The linker the worker's rustc links with (`cc` on [`crate::key::ACTION_PATH`]),
    /// when it could be identified: offered as [`crate::exec::wire::LINKER_PROPERTY`], and the paths it
    /// covers stated in the observation record.
    pub linker: Option<crate::key::LinkerOffer>,
}

/// How long an action may run when it names no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Why an action could not be run: the lease is completed with this status (the
/// client compiles locally), never with a made-up result.
#[derive(Debug)]
pub struct Failed {
    /// A `google.rpc.Code`.
    pub code: i32,
    pub message: String,
}

impl Failed {
    fn precondition(message: String) -> Failed {
        Failed { code: 9, message }
    }

    fn invalid(message: String) -> Failed {
        Failed { code: 3, message }
    }

    fn internal(message: String) -> Failed {
        Failed { code: 13, message }
    }
}

impl From<CacheError> for Failed {
    fn from(e: CacheError) -> Failed {
        // UNAVAILABLE: the server retries the lease elsewhere.
        Failed {
            code: 14,
            message: e.to_string(),
        }
    }
}

/// What the worker reports for one action.
pub struct Ran {
    pub result: re::ActionResult,
}

/// The `Action` a lease's payload holds (BuildGrid packs the `Action` itself, or its
/// digest).
pub async fn action_of(cas: &Reapi, payload: Option<&Any>) -> Result<re::Action, Failed> {
    let Some(any) = payload else {
        return Err(Failed::invalid("the lease has no payload".into()));
    };
    if any
        .type_url
        .ends_with("/build.bazel.remote.execution.v2.Action")
    {
        return re::Action::decode(any.value.as_slice())
            .map_err(|e| Failed::invalid(format!("the lease's Action does not decode ({e})")));
    }
    if any
        .type_url
        .ends_with("/build.bazel.remote.execution.v2.Digest")
    {
        let digest = re::Digest::decode(any.value.as_slice())
            .map_err(|e| Failed::invalid(format!("the lease's Digest does not decode ({e})")))?;
        return message(cas, &digest, "Action").await;
    }
    Err(Failed::invalid(format!(
        "the lease's payload is a {}, not an Action",
        any.type_url
    )))
}

/// One message from the CAS, checked against its digest.
async fn message<M: prost::Message + Default>(
    cas: &Reapi,
    digest: &re::Digest,
    what: &str,
) -> Result<M, Failed> {
    let Some(bytes) = cas.blob(digest).await? else {
        return Err(missing(digest, what));
    };
    M::decode(bytes.as_slice())
        .map_err(|e| Failed::invalid(format!("the {what} {} does not decode ({e})", digest.hash)))
}

fn missing(digest: &re::Digest, what: &str) -> Failed {
    Failed::precondition(format!(
        "the {what} blob {}/{} is missing from the CAS",
        digest.hash, digest.size_bytes
    ))
}

/// `base` joined with the action's relative path `rel`, through the one confinement
/// check.
fn inside(base: &Path, rel: &str, what: &str) -> Result<PathBuf, Failed> {
    crate::fsx::confined(base, rel)
        .map_err(|e| Failed::invalid(format!("the {what} `{rel}` leaves its directory ({e})")))
}

/// Runs `action` in a fresh directory under `work` and reports its result.
/// `blobs` is the worker's local blob cache, shared by every worker of the machine.
pub async fn run(
    cas: &Reapi,
    action: &re::Action,
    work: &Path,
    blobs: &Path,
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
    let fetch_start = SystemTime::now();
    materialize(cas, root_digest, &root, blobs).await?;
    let fetch_done = SystemTime::now();

    if command.arguments.is_empty() {
        return Err(Failed::invalid("the Command has no arguments".into()));
    }
    let wd = if command.working_directory.is_empty() {
        root.clone()
    } else {
        inside(&root, &command.working_directory, "working directory")?
    };
    std::fs::create_dir_all(&wd)
        .map_err(|e| Failed::internal(format!("no directory {} ({e})", wd.display())))?;
    let outputs = output_paths(&command)?;
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
    let timeout = action
        .timeout
        .as_ref()
        .map(|d| Duration::from_secs(d.seconds.max(0) as u64))
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_TIMEOUT);
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

/// The observed record as [`OBSERVED`] carries it: the observer's log, the first
/// process, and where the input root and working directory were, so the client can
/// tell a read inside the input root from one outside it.
fn observed_record(
    observer: Option<crate::observe::Observer>,
    pid: u32,
    root: &Path,
    wd: &Path,
    toolchain: Option<&Toolchain>,
) -> Option<Vec<u8>> {
    let observer = observer?;
    let log = observer.read_log().ok()?;
    let record = serde_json::json!({
        "format_version": OBSERVED_FORMAT,
        "root_pid": pid,
        "input_root": root.to_string_lossy(),
        "working_directory": wd.to_string_lossy(),
        "sysroot": toolchain.map(|t| t.sysroot.to_string_lossy()),
        // A linker changed since the worker identified it vouches for nothing.
        "linker": toolchain
            .and_then(|t| t.linker.as_ref())
            .filter(|l| l.unchanged())
            .map(|l| linker_record(l, &log, pid)),
        "log": log,
    });
    serde_json::to_vec(&record).ok()
}

/// The paths of this run that reached the files and directories the worker's linker
/// identity covers, each by any name (`/lib/x86_64-linux-gnu/libc.so.6` reaches the
/// `libc.so.6` the identity hashed under `/usr/lib`): the worker resolves its own names,
/// the client takes exactly these as the agreed linker's (`exec::observed::Agreed`).
fn linker_record(linker: &crate::key::LinkerOffer, log: &str, pid: u32) -> serde_json::Value {
    use std::collections::BTreeSet;
    let canonical = |p: &PathBuf| std::fs::canonicalize(p).ok();
    let files: BTreeSet<PathBuf> = linker.files.iter().filter_map(canonical).collect();
    let dirs: BTreeSet<PathBuf> = linker.dirs.iter().filter_map(canonical).collect();
    let (mut f, mut d) = (BTreeSet::new(), BTreeSet::new());
    let trace = crate::observe::Trace::parse(log, pid);
    let mut seen = BTreeSet::new();
    // Each path the run met, and the directory it is in (a file the driver made in
    // `/tmp` is judged by its directory).
    let met = trace
        .events
        .iter()
        .filter(|e| e.path.starts_with('/'))
        .flat_map(|e| {
            let p = Path::new(&e.path);
            [Some(p), p.parent()].into_iter().flatten()
        });
    for p in met {
        if !seen.insert(p) {
            continue;
        }
        let Ok(c) = std::fs::canonicalize(p) else {
            continue;
        };
        let name = p.to_string_lossy().into_owned();
        if files.contains(&c) {
            f.insert(name);
        } else if dirs.contains(&c) {
            d.insert(name);
        }
    }
    serde_json::json!({ "files": f, "dirs": d })
}

/// Whether any entry under `dir` is a symbolic link (or cannot be read).
fn has_symlink(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    for e in entries {
        let Ok(e) = e else {
            return true;
        };
        match e.file_type() {
            Err(_) => return true,
            Ok(t) if t.is_symlink() => return true,
            Ok(t) if t.is_dir() && has_symlink(&e.path()) => return true,
            Ok(_) => {}
        }
    }
    false
}

/// The outputs the command declares, each a plain path under its working directory.
fn output_paths(command: &re::Command) -> Result<Vec<String>, Failed> {
    #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
    let old = command.output_files.iter();
    let all: Vec<String> = if command.output_paths.is_empty() {
        old.cloned().collect()
    } else {
        command.output_paths.clone()
    };
    for p in &all {
        if !plain(p) {
            return Err(Failed::invalid(format!(
                "the output path `{p}` leaves the working directory"
            )));
        }
    }
    Ok(all)
}

fn stamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Makes the tree `digest` at `dest`: its directories, and its files copied from the
/// local blob cache (fetched into it first when absent). Copies, not hard links: the
/// command may write where it likes in its directory, and a write through a hard link
/// would change the cached blob for every later action.
async fn materialize(
    cas: &Reapi,
    digest: &re::Digest,
    dest: &Path,
    blobs: &Path,
) -> Result<(), Failed> {
    let mut todo = vec![(digest.clone(), dest.to_path_buf())];
    let mut files: BTreeMap<PathBuf, (re::Digest, bool)> = BTreeMap::new();
    let mut dirs = 0usize;
    while let Some((d, at)) = todo.pop() {
        dirs += 1;
        if dirs > 100_000 {
            return Err(Failed::invalid(
                "the input tree has over 100000 directories".into(),
            ));
        }
        let dir: re::Directory = message(cas, &d, "Directory").await?;
        std::fs::create_dir_all(&at)
            .map_err(|e| Failed::internal(format!("no directory {} ({e})", at.display())))?;
        if !dir.symlinks.is_empty() {
            return Err(Failed::invalid(
                "the input tree holds a symlink, which this worker does not make".into(),
            ));
        }
        for f in dir.files {
            if !crate::fsx::is_plain_name(&f.name) {
                return Err(Failed::invalid(format!(
                    "the input name `{}` is not a file name",
                    f.name
                )));
            }
            let Some(fd) = f.digest else {
                return Err(Failed::invalid(format!(
                    "the input file `{}` has no digest",
                    f.name
                )));
            };
            files.insert(at.join(&f.name), (fd, f.is_executable));
        }
        for sub in dir.directories {
            if !crate::fsx::is_plain_name(&sub.name) {
                return Err(Failed::invalid(format!(
                    "the input name `{}` is not a directory name",
                    sub.name
                )));
            }
            let Some(sd) = sub.digest else {
                return Err(Failed::invalid(format!(
                    "the input directory `{}` has no digest",
                    sub.name
                )));
            };
            todo.push((sd, at.join(&sub.name)));
        }
    }
    for (path, (digest, executable)) in files {
        let cached = cached_blob(cas, &digest, blobs).await?;
        std::fs::copy(&cached, &path).map_err(|e| {
            Failed::internal(format!(
                "{} not copied to {} ({e})",
                cached.display(),
                path.display()
            ))
        })?;
        let mode = if executable { 0o755 } else { 0o644 };
        let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode));
    }
    Ok(())
}

/// The local copy of a blob, fetched when absent. A blob lands under its digest only
/// once it hashed to it (written to a temporary file first, renamed), so whatever is
/// there under a name holds those bytes — workers of one machine share the folder.
async fn cached_blob(cas: &Reapi, digest: &re::Digest, blobs: &Path) -> Result<PathBuf, Failed> {
    if digest.hash.len() != 64 || !digest.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failed::invalid(format!(
            "`{}` is not a SHA-256 digest",
            digest.hash
        )));
    }
    let path = blobs.join(format!("{}-{}", digest.hash, digest.size_bytes));
    if path.is_file() {
        return Ok(path);
    }
    let tmp = tempfile::NamedTempFile::new_in(blobs)
        .map_err(|e| Failed::internal(format!("no file in {} ({e})", blobs.display())))?;
    let mut file = tmp.as_file();
    let mut write_err = None;
    let got = cas
        .blob_to(digest, &mut |chunk| {
            use std::io::Write;
            if let Err(e) = file.write_all(chunk) {
                write_err = Some(e);
            }
            Ok(())
        })
        .await?;
    if let Some(e) = write_err {
        return Err(Failed::internal(format!(
            "the blob cache could not be written ({e})"
        )));
    }
    if got.is_none() {
        return Err(missing(digest, "input file"));
    }
    tmp.persist(&path)
        .map_err(|e| Failed::internal(format!("{} not kept ({})", path.display(), e.error)))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RemoteDefaults, RemoteSpec};
    use crate::exec::wire::{COMPILER_PROPERTY, LINKER_PROPERTY};

    /// Runs `f` on a runtime of its own.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A client of a CAS nobody serves: nothing is sent until a call is made, and the
    /// tests make none that reaches it.
    fn cas() -> Reapi {
        let spec = RemoteSpec::parse("grpc://127.0.0.1:1", &RemoteDefaults::default()).unwrap();
        Reapi::new(&spec, Duration::from_secs(1)).unwrap()
    }

    fn any(type_name: &str, value: Vec<u8>) -> Any {
        Any {
            type_url: format!("type.googleapis.com/{type_name}"),
            value,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_wire_names_are_the_ones_clients_and_workers_agree_on() {
        // Changing one of these splits a farm: old clients and new workers no longer
        // understand each other (see `OBSERVED_FORMAT`).
        assert_eq!(OBSERVED, "xcache-observed.json");
        assert_eq!(OBSERVED_FORMAT, 2);
        assert_eq!(COMPILER_PROPERTY, "xcache-compiler");
        assert_eq!(LINKER_PROPERTY, "xcache-linker");
        assert_eq!(RUSTC_VAR, "XCACHE_RUSTC");
        // A client asks for the record as an output, which must pass the output check.
        assert!(plain(OBSERVED));
        assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(900));
    }

    #[test]
    fn plain_paths_are_relative_paths_of_plain_names() {
        for p in [
            "a",
            "a.rs",
            "target/debug/deps/liba.rlib",
            "..a/b..",
            ".hidden/x",
        ] {
            assert!(plain(p), "{p}");
        }
    }

    #[test]
    fn empty_absolute_dotted_and_odd_paths_are_not_plain() {
        for p in [
            "",
            "/etc/passwd",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "..",
            "../a",
            "a/../b",
            "a\\b",
            "a\0b",
        ] {
            assert!(!plain(p), "{p:?}");
        }
    }

    #[test]
    fn outputs_are_the_output_paths_when_the_command_names_any() {
        #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
        let command = re::Command {
            output_paths: strings(&["out/a.rlib", "xcache-observed.json"]),
            output_files: strings(&["old.rlib"]),
            ..Default::default()
        };
        assert_eq!(
            output_paths(&command).unwrap(),
            ["out/a.rlib", "xcache-observed.json"]
        );
    }

    #[test]
    fn outputs_fall_back_to_the_output_files_of_older_clients() {
        #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
        let command = re::Command {
            output_files: strings(&["old.rlib", "old.d"]),
            ..Default::default()
        };
        assert_eq!(output_paths(&command).unwrap(), ["old.rlib", "old.d"]);
        assert!(output_paths(&re::Command::default()).unwrap().is_empty());
    }

    #[test]
    fn an_output_that_leaves_the_working_directory_makes_the_action_invalid() {
        for bad in ["../escape", "/abs/out", "a//b"] {
            let command = re::Command {
                output_paths: strings(&["good.rlib", bad]),
                ..Default::default()
            };
            let e = output_paths(&command).unwrap_err();
            assert_eq!(e.code, 3, "{bad}");
            assert!(e.message.contains(&format!("`{bad}`")), "{}", e.message);
        }
        #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
        let old = re::Command {
            output_files: strings(&["../old"]),
            ..Default::default()
        };
        assert_eq!(output_paths(&old).unwrap_err().code, 3);
    }

    #[test]
    fn inside_joins_a_plain_path_below_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            inside(dir.path(), "a/b/c.rs", "output path").unwrap(),
            dir.path().join("a/b/c.rs")
        );
    }

    #[test]
    fn inside_refuses_a_path_that_leaves_or_passes_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("up")).unwrap();
        for bad in ["../x", "/x", "", "up/etc/passwd"] {
            let e = inside(dir.path(), bad, "working directory").unwrap_err();
            assert_eq!(e.code, 3, "{bad}");
            assert!(
                e.message.starts_with(&format!(
                    "the working directory `{bad}` leaves its directory"
                )),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn each_kind_of_failure_carries_its_rpc_code() {
        assert_eq!(Failed::precondition("p".into()).code, 9);
        assert_eq!(Failed::invalid("i".into()).code, 3);
        assert_eq!(Failed::internal("n".into()).code, 13);
        let e = CacheError::RemoteConfig("down".into());
        let text = e.to_string();
        let f = Failed::from(e);
        // UNAVAILABLE: the server gives the lease to another worker.
        assert_eq!((f.code, f.message), (14, text));
    }

    #[test]
    fn a_blob_missing_from_the_cas_is_a_failed_precondition_naming_it() {
        let d = re::Digest {
            hash: "ab".repeat(32),
            size_bytes: 7,
        };
        let f = missing(&d, "Command");
        assert_eq!(f.code, 9);
        assert_eq!(
            f.message,
            format!(
                "the Command blob {}/7 is missing from the CAS",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_timestamp_keeps_seconds_and_nanoseconds_and_clamps_before_the_epoch() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        assert_eq!(
            stamp(t),
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 250_000_000
            }
        );
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            stamp(before),
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
    }

    #[test]
    fn a_tree_of_files_and_directories_has_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::write(dir.path().join("a/b/c/f"), "").unwrap();
        std::fs::write(dir.path().join("top"), "").unwrap();
        assert!(!has_symlink(dir.path()));
    }

    #[test]
    fn a_symlink_deep_in_a_tree_or_an_unreadable_tree_counts_as_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::os::unix::fs::symlink("missing", dir.path().join("a/b/c/l")).unwrap();
        assert!(has_symlink(dir.path()));
        assert!(has_symlink(&dir.path().join("not-there")));
    }

    #[test]
    fn a_run_without_an_observer_has_no_record() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(observed_record(None, 1, dir.path(), dir.path(), None), None);
    }

    #[test]
    fn a_lease_without_a_payload_is_invalid() {
        let e = block_on(async { action_of(&cas(), None).await }).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (3, "the lease has no payload")
        );
    }

    #[test]
    fn a_lease_holding_an_action_is_decoded_without_the_cas() {
        let action = re::Action {
            command_digest: Some(re::Digest {
                hash: "cd".repeat(32),
                size_bytes: 12,
            }),
            do_not_cache: true,
            ..Default::default()
        };
        let payload = any(
            "build.bazel.remote.execution.v2.Action",
            action.encode_to_vec(),
        );
        let got = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap();
        assert_eq!(got, action);
    }

    #[test]
    fn a_lease_whose_action_or_digest_does_not_decode_is_invalid() {
        for (type_name, what) in [
            ("build.bazel.remote.execution.v2.Action", "Action"),
            ("build.bazel.remote.execution.v2.Digest", "Digest"),
        ] {
            // A string field whose length runs past the end.
            let payload = any(type_name, vec![0x0a, 0x05, b'a']);
            let e = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap_err();
            assert_eq!(e.code, 3);
            assert!(
                e.message
                    .starts_with(&format!("the lease's {what} does not decode")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_lease_holding_anything_else_is_refused_by_its_type() {
        let payload = any("google.protobuf.Empty", Vec::new());
        let e = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap_err();
        assert_eq!(e.code, 3);
        assert_eq!(
            e.message,
            "the lease's payload is a type.googleapis.com/google.protobuf.Empty, not an Action"
        );
    }

    #[test]
    fn an_action_without_a_command_fails_before_anything_is_fetched_or_made() {
        let work = tempfile::tempdir().unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let action = re::Action {
            input_root_digest: Some(re::Digest::default()),
            ..Default::default()
        };
        let e = block_on(async {
            run(&cas(), &action, work.path(), blobs.path(), "w", None, &rx).await
        })
        .err()
        .unwrap();
        assert_eq!(
            (e.code, e.message.as_str()),
            (3, "the Action names no command")
        );
        assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_blob_not_named_by_a_sha256_digest_is_refused_before_it_is_fetched() {
        let blobs = tempfile::tempdir().unwrap();
        for hash in [
            "../../etc/passwd".to_string(),
            "ab".repeat(31),
            "zz".repeat(32),
            "ab".repeat(33),
        ] {
            let d = re::Digest {
                hash: hash.clone(),
                size_bytes: 1,
            };
            let e = block_on(async { cached_blob(&cas(), &d, blobs.path()).await }).unwrap_err();
            assert_eq!(e.code, 3, "{hash}");
            assert_eq!(e.message, format!("`{hash}` is not a SHA-256 digest"));
        }
        assert_eq!(std::fs::read_dir(blobs.path()).unwrap().count(), 0);
    }
}
