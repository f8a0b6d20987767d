//! A library or proc-macro compile sent to the Execution service `XCACHE_EXECUTOR`
//! names, instead of run here. Main function: [`attempt`].
//!
//! A proc-macro links: its action also asks for the worker's linker identity
//! ([`crate::exec::wire::LINKER_PROPERTY`]), the files that identity covers are agreed
//! (`observed::Agreed`), and the linker command line rustc prints comes back as an
//! output, read as this machine's, for the link inputs of the key.
//!
//! The attempt gives back what a local run gives (`Ran`: exit code, messages, the
//! observer's record) with the outputs in their local places, so the rest of the unit's
//! lifecycle — what it read, judged by the same code as a local compile's; the entry
//! stored — does not know where it ran. Anything that keeps the remote result from
//! standing for a local compile is a [`Fallback`]: the unit is compiled here, as
//! without an executor, and the reason goes in its event.
//!
//! Paths: the input root mirrors the key's roots (`ws/`, `target/`, `cargo-home/`), and
//! every argument and variable that names a root is rewritten to the worker's copy of
//! it. The worker's absolute directory is known only when the action runs, so the
//! command is `/bin/sh -c SCRIPT`: the script finds the root (`pwd -P`), exports the
//! rewritten variables and starts the worker's rustc (`XCACHE_RUSTC`, which the worker
//! sets) with every argument quoted, roots written `"$R/ws"`. The path remapping is the
//! same as a local compile's (each root to its `/xcache/…` name), so the artifacts
//! name the same paths. What comes back (messages, dep-info, the record) is rewritten
//! from the worker's paths to this machine's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::event::RemoteExec;
use super::expansion::roots_stay_out;
use super::lifecycle::{Cx, Ran};
use crate::config::ExecutorSpec;
use crate::errors::CacheError;
use crate::exec::observed::{self, Confinement};
use crate::exec::{Bytes, ExecRequest, Executor, InputFile, InputRoot};
use crate::key::{
    CompilerId, DepInfo, PathMap, Root, RootKind, RustcInvocation, path_char, replace_root,
};
use crate::observe::{Op, Trace};

/// Why a compile that could have run remotely ran here. Each has a stable code (the
/// event's `remote_exec.fallback`, the report's `remote_fallbacks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The executor could not be reached or gave no answer in time; the build sends
    /// it nothing more.
    Unavailable,
    /// The server answered with an error (a blob gone, a worker lost, no worker with
    /// this compiler before the deadline).
    Failed,
    /// The input root could not be made (a file under no root, too many files).
    InputRoot,
    /// The worker saw the compile read outside what it was given.
    ReadOutside,
    /// No usable record of what the compile read.
    Unobserved,
    /// The compile failed remotely: it runs here, so the messages are this machine's.
    CompileFailed,
    /// An output missing, or not matching its digest.
    Outputs,
    /// A variable the compile read cannot be given to a worker as it is here (it names
    /// this machine's paths and reaches the program, or it is withheld).
    Environment,
    /// Not sent: a local slot was free (`XCACHE_EXECUTOR_LOCAL`), so it compiled here.
    LocalSlot,
    /// A link (a proc-macro's) that no worker's linker identity can vouch for: a
    /// `-C linker=`, link arguments, a linker flavour or self-contained mode chosen, or
    /// this machine's `cc` on its PATH not the one on the PATH an action runs with.
    Linker,
}

impl Fallback {
    pub fn code(self) -> &'static str {
        match self {
            Fallback::Unavailable => "executor-unavailable",
            Fallback::Failed => "executor-failed",
            Fallback::InputRoot => "input-root",
            Fallback::ReadOutside => "read-outside",
            Fallback::Unobserved => "unobserved",
            Fallback::CompileFailed => "compile-failed",
            Fallback::Outputs => "outputs",
            Fallback::Environment => "environment",
            Fallback::LocalSlot => "local-slot",
            Fallback::Linker => "linker",
        }
    }
}

type Fell = (Fallback, String);

/// Beyond these, a package is not sent (its directory is walked whole).
const MAX_FILES: usize = 20_000;
const MAX_BYTES: u64 = 1 << 30;

/// What one compile needs from its unit.
pub(super) struct Job<'a> {
    pub spec: &'a ExecutorSpec,
    pub inv: &'a RustcInvocation,
    pub compiler: &'a CompilerId,
    /// The arguments after the remapping, as a local run passes them.
    pub args: &'a [String],
    /// Makes the local compiler's command (for the expansion check).
    pub command: &'a dyn Fn() -> Command,
    /// For a compile that links (a proc-macro): the linker identity it asks a worker
    /// for (hex), and the file rustc prints the linker's command line to
    /// (`--print=link-args=`, among `args`), fetched back as an output.
    pub link: Option<(String, PathBuf)>,
}

/// A remote compile that stands for a local one.
pub(super) struct Done {
    pub ran: Ran,
    pub record: RemoteExec,
    /// The roots (tokens) the expansion check found to go no further than file paths,
    /// when the compile read variables naming roots (so the unit's inputs need not
    /// run it again for the same roots).
    pub roots_stay_out: Option<Vec<String>>,
}

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once.
pub(super) fn attempt(cx: &mut Cx, job: &Job<'_>) -> Result<Done, Fell> {
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
    let roots = Roots::new(&cx.pm);
    let req = request(cx, job, &roots).map_err(|m| (Fallback::InputRoot, m))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (Fallback::Failed, format!("no I/O runtime ({e})")))?;
    let result = rt.block_on(async {
        let ex = Executor::new(&job.spec.server, job.spec.deadline)
            .map_err(|e| (Fallback::Unavailable, said(&e)))?;
        let run = ex.execute(&req).await.map_err(|e| {
            let down = crate::exec::is_unreachable(&e);
            (
                if down {
                    Fallback::Unavailable
                } else {
                    Fallback::Failed
                },
                said(&e),
            )
        })?;
        finish(cx, job, &roots, &ex, run).await
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
        Err(e) => Err(e),
    }
}

/// What the server's error says (the URI is the warning's, once).
fn said(e: &CacheError) -> String {
    match e {
        CacheError::Remote { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The file that says, for the processes of one build, that the executor is down.
fn state_file(spec: &ExecutorSpec) -> PathBuf {
    let id = crate::key::KeyHasher::new("executor-state")
        .str("uri", spec.server.display())
        .finish();
    std::env::temp_dir().join(format!(
        "xcache-executor-{}-{}",
        std::os::unix::process::parent_id(),
        &id.to_hex()[..16]
    ))
}

/// The key's roots, most specific first, with the directory each has in the input
/// root.
struct Roots {
    list: Vec<(Root, &'static str)>,
}

impl Roots {
    fn new(pm: &PathMap) -> Roots {
        Roots {
            list: pm
                .roots()
                .iter()
                .map(|r| {
                    let dir = match r.kind {
                        RootKind::Cwd => "ws",
                        RootKind::Target => "target",
                        RootKind::CargoHome => "cargo-home",
                    };
                    (r.clone(), dir)
                })
                .collect(),
        }
    }

    /// `p`'s path inside the input root, when it is under a root.
    fn rel(&self, p: &Path) -> Option<String> {
        let s = p.to_str()?;
        self.list.iter().find_map(|(r, dir)| {
            let rest = s.strip_prefix(r.real.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{dir}{rest}"))
        })
    }

    /// `s` as shell words: every root it names becomes the worker's (`"$R/ws"`), the
    /// rest is quoted as it is.
    fn shell(&self, s: &str) -> String {
        let mut out = String::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, out: &mut String| {
            if !lit.is_empty() {
                out.push('\'');
                out.push_str(&lit.replace('\'', "'\\''"));
                out.push('\'');
                lit.clear();
            }
        };
        let mut i = 0;
        while i < s.len() {
            let hit = self.list.iter().find(|(r, _)| {
                s[i..].starts_with(r.real.as_str())
                    && boundary_before(s, i)
                    && boundary_after(&s[i + r.real.len()..])
            });
            match hit {
                Some((r, dir)) => {
                    flush(&mut lit, &mut out);
                    out.push_str(&format!("\"$R/{dir}\""));
                    i += r.real.len();
                }
                None => {
                    let c = s[i..].chars().next().unwrap_or(' ');
                    lit.push(c);
                    i += c.len_utf8();
                }
            }
        }
        flush(&mut lit, &mut out);
        if out.is_empty() {
            out.push_str("''");
        }
        out
    }

    /// Whether `s` names a root.
    fn names_a_root(&self, s: &str) -> bool {
        self.list.iter().any(|(r, _)| {
            s.match_indices(r.real.as_str())
                .any(|(i, _)| boundary_before(s, i) && boundary_after(&s[i + r.real.len()..]))
        })
    }

    /// Text the worker wrote, with its roots (below `worker_root`) read as this
    /// machine's.
    fn to_local(&self, text: &str, worker_root: &str) -> String {
        let mut out = text.to_string();
        for (r, dir) in &self.list {
            out = replace_root(&out, &format!("{worker_root}/{dir}"), &r.real);
        }
        out
    }
}

fn boundary_before(s: &str, i: usize) -> bool {
    s[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !path_char(c) && c != '/')
}

fn boundary_after(rest: &str) -> bool {
    rest.chars().next().is_none_or(|c| !path_char(c))
}

/// Variables a worker is not given: this program's own and the observer's, the
/// jobserver's (its descriptors are this machine's), the shell's, and anything that
/// looks like a credential. `PATH` is the worker's system's.
fn withheld(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    name.starts_with("XCACHE_")
        || matches!(
            name,
            "LD_PRELOAD"
                | "LD_LIBRARY_PATH"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO_MAKEFLAGS"
                | "MAKEFLAGS"
                | "MFLAGS"
                | "PWD"
                | "OLDPWD"
                | "PATH"
                | "SSH_AUTH_SOCK"
        )
        || [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
            "_KEY",
        ]
        .iter()
        .any(|w| upper.contains(w))
}

/// The action: the script, its environment, the input root and the outputs.
fn request(cx: &Cx, job: &Job<'_>, roots: &Roots) -> Result<ExecRequest, String> {
    let cwd = &cx.cfg.cwd;
    roots.rel(cwd).ok_or_else(|| {
        format!(
            "the directory rustc runs in ({}) is under no root",
            cwd.display()
        )
    })?;
    // The dep-info and messages come back naming the worker's roots, replaced by these
    // as they are; a character the dep-info escapes (a space) would need escaping too.
    if let Some((r, _)) = roots.list.iter().find(|(r, _)| {
        r.real
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\\' | '$' | '#' | ':' | '"'))
    }) {
        return Err(format!(
            "the root {} holds a character the dep-info escapes",
            r.real
        ));
    }
    let mut env = BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
    // `cd -P .` rather than `$(pwd -P)`: no subshell, so the shell is one process,
    // the first image of the first one (see `shell_event`).
    let mut script = String::from("cd -P . || exit 125\nR=$PWD\n");
    for (name, value) in cx.cfg.env.all() {
        if withheld(name) || name.contains('=') || name.is_empty() {
            continue;
        }
        if roots.names_a_root(value) {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "the variable {name} names a root and is no shell name"
                ));
            }
            script.push_str(&format!("export {name}={}\n", roots.shell(value)));
        } else {
            env.insert(name.clone(), value.clone());
        }
    }
    script.push_str(&format!(
        "cd {} || exit 125\n",
        roots.shell(&cwd.display().to_string())
    ));
    script.push_str("exec \"$XCACHE_RUSTC\"");
    for a in cx.pm.remap_args().iter().chain(job.args) {
        script.push(' ');
        script.push_str(&roots.shell(a));
    }
    script.push('\n');

    let mut outputs = Vec::new();
    for o in job.inv.outputs() {
        let p = cwd.join(&o.path);
        outputs.push(
            roots
                .rel(&p)
                .ok_or_else(|| format!("the output {} is under no root", p.display()))?,
        );
    }
    outputs.push(crate::exec::wire::OBSERVED.to_string());

    let mut platform = BTreeMap::from([
        ("OSFamily".to_string(), std::env::consts::OS.to_string()),
        ("ISA".to_string(), std::env::consts::ARCH.replace('_', "-")),
        (
            crate::exec::wire::COMPILER_PROPERTY.to_string(),
            job.compiler.key.to_hex(),
        ),
    ]);
    if let Some((linker, args_file)) = &job.link {
        platform.insert(
            crate::exec::wire::LINKER_PROPERTY.to_string(),
            linker.clone(),
        );
        outputs.push(roots.rel(args_file).ok_or_else(|| {
            format!(
                "the link's command line {} is under no root",
                args_file.display()
            )
        })?);
    }
    Ok(ExecRequest {
        arguments: vec!["/bin/sh".into(), "-c".into(), script],
        env,
        working_directory: String::new(),
        inputs: input_root(cx, job, roots)?,
        outputs,
        platform,
        cache_lookup: false,
    })
}

/// What the compile may read: the package's files, the crates it may load, the
/// native search directories and `OUT_DIR`.
fn input_root(cx: &Cx, job: &Job<'_>, roots: &Roots) -> Result<InputRoot, String> {
    let cwd = &cx.cfg.cwd;
    let mut files = Files {
        root: InputRoot::default(),
        roots,
        count: 0,
        bytes: 0,
        target: cx.pm.real_of(RootKind::Target).map(PathBuf::from),
        memo: crate::private_dir::private_subdir("exec-digests").ok(),
    };
    let manifest_dir = cx
        .cfg
        .env
        .get("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("cargo named no package directory (CARGO_MANIFEST_DIR)")?;
    files.walk(&manifest_dir)?;
    if let Some(input) = &job.inv.input {
        files.add(&cwd.join(input), true)?;
    }
    for e in &job.inv.externs {
        if let Some(p) = &e.path {
            files.add(&cwd.join(p), true)?;
        }
    }
    for dir in &job.inv.dependency_dirs {
        files.crates_in(&cwd.join(dir))?;
    }
    for (kind, dir) in &job.inv.search_paths {
        if matches!(kind.as_str(), "native" | "all" | "crate") {
            files.flat(&cwd.join(dir))?;
        }
    }
    if let Some(out_dir) = cx.cfg.env.get("OUT_DIR") {
        files.walk(Path::new(out_dir))?;
    }
    Ok(files.root)
}

struct Files<'a> {
    root: InputRoot,
    roots: &'a Roots,
    count: usize,
    bytes: u64,
    target: Option<PathBuf>,
    /// Where digests of large inputs are remembered (`memo_digest`).
    memo: Option<PathBuf>,
}

/// Files smaller than this are hashed each time (cheaper than a memo's file).
const MEMO_MIN: u64 = 64 * 1024;

/// The digest of the file at `p`, from the memo when it knows the file as it is now:
/// by path, device, inode, size, modification and change time (the change time moves on
/// every write, and cannot be set back). Every action sends the crates of its
/// dependency directories, hundreds of MB deep in a large graph: hashing them again for
/// each action would cost more than many compiles. A file changed less than 2 s ago is
/// not remembered (a write in the same clock tick would leave every time as it was). A
/// wrong digest could only fail the upload (checked against it) or, where the server has
/// that blob, give the worker the old bytes; the memo lives in the private directory,
/// which only this user may write.
fn memo_digest(
    memo: &Path,
    p: &Path,
    meta: &std::fs::Metadata,
) -> Option<bazel_remote_apis::build::bazel::remote::execution::v2::Digest> {
    use std::os::unix::fs::MetadataExt;
    let name = crate::key::KeyHasher::new("exec-digest-memo-v1")
        .str("path", &p.to_string_lossy())
        .str("dev", &meta.dev().to_string())
        .str("ino", &meta.ino().to_string())
        .str("size", &meta.len().to_string())
        .str("mtime", &format!("{}.{}", meta.mtime(), meta.mtime_nsec()))
        .str("ctime", &format!("{}.{}", meta.ctime(), meta.ctime_nsec()))
        .finish()
        .to_hex();
    let file = memo.join(&name[..2]).join(&name);
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Some((hash, size)) = text.trim().split_once(' ')
        && let Ok(size) = size.parse::<i64>()
        && hash.len() == 64
        && size == meta.len() as i64
    {
        return Some(
            bazel_remote_apis::build::bazel::remote::execution::v2::Digest {
                hash: hash.to_string(),
                size_bytes: size,
            },
        );
    }
    let digest = crate::exec::digest_file(p).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    // Hashed as it was when looked at: the same size, and not changed since.
    let after = std::fs::metadata(p).ok()?;
    let unchanged = after.len() == meta.len()
        && after.ctime() == meta.ctime()
        && after.ctime_nsec() == meta.ctime_nsec()
        && digest.size_bytes == meta.len() as i64;
    if !unchanged {
        return None;
    }
    if meta.ctime() + 2 < now {
        let shard = file.parent()?;
        let _ = std::fs::create_dir_all(shard);
        prune_memo_shard(shard, std::time::SystemTime::now());
        let _ = crate::fsx::write_atomic(
            &file,
            format!("{} {}\n", digest.hash, digest.size_bytes).as_bytes(),
        );
    }
    Some(digest)
}

/// A memo shard holding more than this many digests is pruned when one is added.
const MEMO_SHARD_MAX: usize = 64;

/// Digests remembered longer than this are dropped from a full shard: a file still
/// there is hashed again once (a memo entry names one version of one file, and every
/// rebuild of a crate makes a new one).
const MEMO_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the digests in `shard` written more than [`MEMO_AGE`] before `now`, when it
/// holds more than [`MEMO_SHARD_MAX`]: the memo stays bounded by what a day of builds
/// adds.
fn prune_memo_shard(shard: &Path, now: std::time::SystemTime) {
    let Ok(rd) = std::fs::read_dir(shard) else {
        return;
    };
    let entries: Vec<std::fs::DirEntry> = rd.flatten().collect();
    if entries.len() <= MEMO_SHARD_MAX {
        return;
    }
    for e in entries {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > MEMO_AGE));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Files<'_> {
    /// Adds the file at `p` (a symbolic link as the file it leads to). `needed`: a file
    /// under no root is an error, not skipped.
    fn add(&mut self, p: &Path, needed: bool) -> Result<(), String> {
        let Some(rel) = self.roots.rel(p) else {
            return if needed {
                Err(format!("{} is under no root", p.display()))
            } else {
                Ok(())
            };
        };
        let Ok(meta) = std::fs::metadata(p) else {
            return if needed {
                Err(format!("{} cannot be read", p.display()))
            } else {
                Ok(())
            };
        };
        if !meta.is_file() {
            return Ok(());
        }
        self.count += 1;
        self.bytes += meta.len();
        if self.count > MAX_FILES || self.bytes > MAX_BYTES {
            return Err(format!(
                "more than {MAX_FILES} files or {} MiB to send",
                MAX_BYTES >> 20
            ));
        }
        use std::os::unix::fs::PermissionsExt;
        let bytes = match self.memo.as_deref().filter(|_| meta.len() >= MEMO_MIN) {
            Some(memo) => match memo_digest(memo, p, &meta) {
                Some(d) => Bytes::Hashed(p.to_path_buf(), d),
                None => Bytes::File(p.to_path_buf()),
            },
            None => Bytes::File(p.to_path_buf()),
        };
        self.root.add(
            &rel,
            InputFile {
                bytes,
                executable: meta.permissions().mode() & 0o111 != 0,
            },
        )
    }

    /// Every file below `dir`, but not the target dir, a nested one (`CACHEDIR.TAG`),
    /// or `.git`. A symbolic link is sent as what it leads to, under its own name (the
    /// input root holds no links): a source tree may link data from elsewhere.
    fn walk(&mut self, dir: &Path) -> Result<(), String> {
        self.walk_at(dir, 0)
    }

    fn walk_at(&mut self, dir: &Path, depth: usize) -> Result<(), String> {
        // Links may make a loop; the file and byte limits bound the rest.
        if depth > 64 {
            return Err(format!("{} is nested too deep", dir.display()));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() || (ft.is_symlink() && p.is_dir()) {
                let name = e.file_name();
                if name == ".git"
                    || self.target.as_deref() == Some(p.as_path())
                    || p.join("CACHEDIR.TAG").is_file()
                {
                    continue;
                }
                self.walk_at(&p, depth + 1)?;
            } else {
                self.add(&p, false)?;
            }
        }
        Ok(())
    }

    /// The files directly in `dir`.
    fn flat(&mut self, dir: &Path) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            self.add(&e.path(), false)?;
        }
        Ok(())
    }

    /// The crates in a `-L dependency=` directory: rustc finds the crates `--extern`
    /// does not name (the dependencies' own dependencies) there by name.
    fn crates_in(&mut self, dir: &Path) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let is_crate = name.starts_with("lib")
                && [".rlib", ".rmeta", ".so"].iter().any(|x| name.ends_with(x));
            if is_crate {
                self.add(&e.path(), false)?;
            }
        }
        Ok(())
    }
}

/// The output `rel` of `run`, read whole (a dep-info file, the link line) and checked
/// against its digest.
async fn text_output(
    ex: &Executor,
    run: &crate::exec::Executed,
    rel: &str,
) -> Result<Vec<u8>, Fell> {
    let digest = run
        .outputs
        .get(rel)
        .ok_or((Fallback::Outputs, format!("the worker made no {rel}")))?;
    let text = ex
        .read(digest)
        .await
        .map_err(|e| (Fallback::Outputs, said(&e)))?
        .ok_or((Fallback::Outputs, format!("the blob of {rel} is missing")))?;
    if crate::reapi::digest_of(&text).hash != digest.hash {
        return Err((
            Fallback::Outputs,
            format!("{rel} does not match its digest"),
        ));
    }
    Ok(text)
}

/// After the run: the record judged, the variables checked, the outputs fetched into
/// place, the messages and the record read as this machine's.
async fn finish(
    cx: &mut Cx,
    job: &Job<'_>,
    roots: &Roots,
    ex: &Executor,
    run: crate::exec::Executed,
) -> Result<Done, Fell> {
    let record = run.outputs.get(crate::exec::wire::OBSERVED).ok_or((
        Fallback::Unobserved,
        "the worker sent no record of what the compile read".into(),
    ))?;
    let bytes = ex
        .read(record)
        .await
        .map_err(|e| (Fallback::Outputs, said(&e)))?
        .ok_or((Fallback::Outputs, "the record's blob is missing".into()))?;
    let obs = observed::parse(&bytes).map_err(|m| (Fallback::Unobserved, m))?;
    // The linker's files are agreed only for an action that asked for the worker's
    // linker identity: the server gave it to a worker whose `cc`, `ld`s, C runtime
    // files, search path and driver variables hash as this machine's.
    let agreed_paths = observed::Agreed::of(&obs, job.link.is_some());
    let agreed: Vec<&str> = agreed_paths.trees.iter().map(String::as_str).collect();
    let absent_here = |p: &Path| std::fs::symlink_metadata(p).is_err();
    match observed::confinement_where(&obs, &agreed_paths, &absent_here) {
        Confinement::Confined { .. } => {}
        Confinement::Outside { path } => {
            return Err((
                Fallback::ReadOutside,
                format!("the compile read {path}, outside what it was given"),
            ));
        }
        Confinement::Unobserved(why) => return Err((Fallback::Unobserved, why)),
    }
    if run.exit_code != 0 {
        return Err((
            Fallback::CompileFailed,
            format!("rustc exited with {} on {}", run.exit_code, run.worker),
        ));
    }
    let worker_root = obs.input_root.clone();
    let own = |caller: Option<&str>| {
        caller.is_some_and(|c| agreed.iter().any(|a| Path::new(c).starts_with(a)))
    };
    // A variable read by code that is not the compiler's (a proc-macro's) reaches the
    // program as the worker had it.
    for e in obs
        .trace
        .events
        .iter()
        .filter(|e| !shell_event(&obs.trace, e))
    {
        let here = cx.cfg.env.get(&e.path);
        match e.op {
            // For a walk of the environment, `path` is the object that walked it (rustc's
            // own, to start the linker, is the toolchain's).
            Op::EnvAll if !own(Some(&e.path)) => {
                return Err((
                    Fallback::Environment,
                    format!(
                        "a proc-macro read the whole environment ({} {})",
                        e.path,
                        e.caller.as_deref().unwrap_or("?")
                    ),
                ));
            }
            // PATH is the action's (`/usr/bin:/bin`): what the toolchain's code and the
            // agreed linker's programs found through it is checked against this
            // machine's PATH (`path_lookup_differs`); any other code that read it (a
            // proc-macro) saw a value this machine does not have.
            Op::PathVar
                if !own(e.caller.as_deref())
                    && !e
                        .caller
                        .as_deref()
                        .and_then(observed::normal)
                        .is_some_and(|c| agreed_paths.files.contains(&c)) =>
            {
                return Err((
                    Fallback::Environment,
                    format!(
                        "{} read PATH, which a worker has otherwise",
                        e.caller.as_deref().unwrap_or("a proc-macro")
                    ),
                ));
            }
            Op::Env if !own(e.caller.as_deref()) => {
                // Withheld and set here, or set by the worker itself (its rustc's path);
                // `PATH` is no key's business here either (`observed`'s `ignored_env`).
                let given_otherwise = withheld(&e.path)
                    && e.path != "PATH"
                    && (here.is_some() || e.path == crate::exec::wire::RUSTC_VAR);
                let differs = given_otherwise || here.is_some_and(|v| roots.names_a_root(v));
                if differs {
                    return Err((
                        Fallback::Environment,
                        format!("a proc-macro read {}, which a worker has otherwise", e.path),
                    ));
                }
            }
            _ => {}
        }
    }

    // The outputs, each through a temporary file renamed once it hashed to its digest;
    // the dep-info read as this machine's before it is put in place.
    let cwd = cx.cfg.cwd.clone();
    let mut bytes_down = run.bytes_down + bytes.len() as u64;
    let mut depinfo = None;
    for o in job.inv.outputs() {
        let dest = cwd.join(&o.path);
        let rel = roots.rel(&dest).unwrap_or_default();
        let digest = run
            .outputs
            .get(&rel)
            .ok_or((Fallback::Outputs, format!("the worker made no {rel}")))?;
        if o.role == "dep-info" {
            let text = text_output(ex, &run, &rel).await?;
            bytes_down += text.len() as u64;
            let local = roots.to_local(&String::from_utf8_lossy(&text), &worker_root);
            depinfo = Some((dest, local));
            continue;
        }
        bytes_down += ex
            .fetch(digest, &dest)
            .await
            .map_err(|e| (Fallback::Outputs, said(&e)))?;
    }
    // `env!`/`option_env!` reads (the dep-info names them): a variable withheld here
    // must not have been read; one whose value names a root only where the expansion
    // shows it goes no further than file paths (which the remapping covers).
    let mut roots_stay = None;
    if let Some((dest, text)) = &depinfo {
        let info = DepInfo::parse(text, &cwd);
        let mut vars = Vec::new();
        for e in &info.env {
            let here = cx.cfg.env.get(&e.name);
            // The value the compile saw (the worker's roots read as this machine's) must
            // be this machine's: not a withheld one, not one the worker set itself.
            if e.value.as_deref() != here {
                return Err((
                    Fallback::Environment,
                    format!("the compile read {}, which a worker has otherwise", e.name),
                ));
            }
            if let Some(v) = here.filter(|v| roots.names_a_root(v)) {
                vars.push((e.name.clone(), v.to_string()));
            }
        }
        if !vars.is_empty() {
            let named: Vec<Root> = roots
                .list
                .iter()
                .filter(|(r, _)| vars.iter().any(|(_, v)| v.contains(r.real.as_str())))
                .map(|(r, _)| r.clone())
                .collect();
            let stay = cx.phase("expansion", |cx| {
                roots_stay_out(job.command, job.inv, &cx.pm, &vars, &named, true, None)
            });
            if !stay {
                return Err((
                    Fallback::Environment,
                    format!(
                        "env!({}) names this machine's paths and reaches the program",
                        vars[0].0
                    ),
                ));
            }
            roots_stay = Some(named.iter().map(|r| r.kind.token().to_string()).collect());
        }
        crate::fsx::write_atomic(dest, text.as_bytes())
            .map_err(|e| (Fallback::Outputs, format!("{}: {e}", dest.display())))?;
    }

    // The linker's command line, read as this machine's (its roots and sysroot): the
    // unit's link inputs are found from it here, as after a local link.
    if let Some((_, args_file)) = &job.link {
        let rel = roots.rel(args_file).unwrap_or_default();
        let text = text_output(ex, &run, &rel).await?;
        bytes_down += text.len() as u64;
        let mut local = roots.to_local(&String::from_utf8_lossy(&text), &worker_root);
        if let Some(s) = &obs.sysroot {
            local = replace_root(&local, s, &job.compiler.sysroot.to_string_lossy());
        }
        crate::fsx::write_atomic(args_file, local.as_bytes())
            .map_err(|e| (Fallback::Outputs, format!("{}: {e}", args_file.display())))?;
        // What the link found through PATH, this machine's PATH finds as the action's
        // did: the key holds what each name resolves to here.
        if let Some(name) = path_lookup_differs(&obs.trace, cx.cfg.env.get("PATH")) {
            return Err((
                Fallback::Linker,
                format!(
                    "this machine's PATH finds {name} elsewhere than {}",
                    crate::key::ACTION_PATH
                ),
            ));
        }
    }
    let trace = local_trace(obs, roots, &job.compiler.sysroot, cx.cfg.env.get("PATH"));
    let stdout = roots
        .to_local(&String::from_utf8_lossy(&run.stdout), &worker_root)
        .into_bytes();
    let stderr = roots
        .to_local(&String::from_utf8_lossy(&run.stderr), &worker_root)
        .into_bytes();
    Ok(Done {
        ran: Ran {
            code: 0,
            stdout,
            stderr,
            trace: Some(trace),
        },
        record: RemoteExec {
            worker: Some(run.worker),
            bytes_up: run.bytes_up,
            bytes_down,
            ..RemoteExec::default()
        },
        roots_stay_out: roots_stay,
    })
}

/// Whether `e` is the script's own doing, before it became rustc: the shell reads its
/// environment whole and looks at its directories. Its start and its exec of rustc
/// stay (a local compile's record starts the same way, behind rustup's proxy).
fn shell_event(trace: &Trace, e: &crate::observe::Event) -> bool {
    e.pid == trace.root && e.image == 0 && !matches!(e.op, Op::Start | Op::Exec)
}

/// A name the run looked for in the action's PATH (a lookup, or a probe in one of its
/// directories) that this machine's PATH resolves to another program than the action's
/// PATH does here (by contents), if any.
fn path_lookup_differs(trace: &Trace, local_path: Option<&str>) -> Option<String> {
    let action_dirs: Vec<&str> = crate::key::ACTION_PATH.split(':').collect();
    let mut names = std::collections::BTreeSet::new();
    for e in &trace.events {
        match e.op {
            Op::Lookup => {
                names.insert(e.path.clone());
            }
            Op::Stat | Op::Exec | Op::Spawn | Op::Read => {
                let p = Path::new(&e.path);
                if let (Some(dir), Some(name)) = (p.parent(), p.file_name())
                    && action_dirs.iter().any(|d| Path::new(d) == dir)
                {
                    names.insert(name.to_string_lossy().into_owned());
                }
            }
            _ => {}
        }
    }
    let found = |name: &str, path: &str| -> Option<String> {
        path.split(':').find_map(|d| {
            let p = Path::new(d).join(name);
            p.is_file()
                .then(|| crate::exec::digest_file(&p).ok().map(|d| d.hash))
                .flatten()
        })
    };
    names
        .into_iter()
        .find(|n| found(n, local_path.unwrap_or("")) != found(n, crate::key::ACTION_PATH))
}

/// A PATH value the worker's processes saw, as this machine's: rustc's tool
/// directories in front (the worker's sysroot's, read as the local one's) and the
/// action's PATH behind them, read as this machine's PATH, which finds the same
/// programs for every name the run looked for (`path_lookup_differs`). Any other value
/// stays as it was (the judge then keys PATH whole).
fn local_path_var(value: &str, map: &dyn Fn(&str) -> String, local: Option<&str>) -> String {
    let Some(local) = local else {
        return value.to_string();
    };
    let front = if value == crate::key::ACTION_PATH {
        Some("")
    } else {
        value
            .strip_suffix(crate::key::ACTION_PATH)
            .and_then(|f| f.strip_suffix(':'))
    };
    match front {
        Some("") => local.to_string(),
        Some(front) => {
            let dirs: Vec<String> = front.split(':').map(map).collect();
            format!("{}:{local}", dirs.join(":"))
        }
        None => value.to_string(),
    }
}

/// The worker's record with its paths read as this machine's: its roots as the local
/// ones, its toolchain as the local toolchain (the same, by the compiler identity the
/// action asked for), and the PATH its processes searched as this machine's
/// (`local_path_var`).
fn local_trace(
    obs: observed::Observed,
    roots: &Roots,
    sysroot: &Path,
    local_path: Option<&str>,
) -> Trace {
    let worker_root = obs.input_root;
    let mut prefixes: Vec<(String, String)> = roots
        .list
        .iter()
        .map(|(r, dir)| (format!("{worker_root}/{dir}"), r.real.clone()))
        .collect();
    if let Some(s) = obs.sysroot {
        prefixes.push((s, sysroot.to_string_lossy().into_owned()));
    }
    let map = |p: &str| -> String {
        for (from, to) in &prefixes {
            if let Some(rest) = p.strip_prefix(from.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{to}{rest}");
            }
        }
        p.to_string()
    };
    let mut trace = obs.trace;
    let shell: Vec<bool> = trace
        .events
        .iter()
        .map(|e| shell_event(&trace, e))
        .collect();
    let mut i = 0;
    trace.events.retain(|_| {
        i += 1;
        !shell[i - 1]
    });
    for e in &mut trace.events {
        match e.op {
            Op::PathVar => e.path = local_path_var(&e.path, &map, local_path),
            Op::Lookup => {
                if let Some(c) = &mut e.caller {
                    *c = local_path_var(c, &map, local_path);
                }
                continue;
            }
            _ => {}
        }
        if e.path.starts_with('/') && e.op != Op::PathVar {
            e.path = map(&e.path);
        }
        if let Some(c) = &mut e.caller
            && c.starts_with('/')
        {
            *c = map(c);
        }
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots::new(&PathMap::new(
            Path::new("/home/u/ws"),
            Some(Path::new("/home/u/ws/target")),
            Some(Path::new("/home/u/.cargo")),
        ))
    }

    #[test]
    fn arguments_name_the_workers_roots_and_quote_the_rest() {
        let r = roots();
        assert_eq!(r.shell("src/lib.rs"), "'src/lib.rs'");
        assert_eq!(
            r.shell("dependency=/home/u/ws/target/debug/deps"),
            "'dependency='\"$R/target\"'/debug/deps'"
        );
        assert_eq!(
            r.shell("--remap-path-prefix=/home/u/ws=/xcache/ws"),
            "'--remap-path-prefix='\"$R/ws\"'=/xcache/ws'"
        );
        assert_eq!(r.shell("it's"), "'it'\\''s'");
        assert_eq!(r.shell(""), "''");
        // Not a root: a longer name, or a root's path inside another path.
        assert_eq!(r.shell("/home/u/wsx"), "'/home/u/wsx'");
        assert_eq!(r.shell("/x/home/u/ws"), "'/x/home/u/ws'");
        assert!(!r.names_a_root("/home/u/wsx/a"));
        assert!(r.names_a_root("a:/home/u/.cargo/registry"));
        assert_eq!(
            r.rel(Path::new("/home/u/ws/target/debug/libx.rlib"))
                .unwrap(),
            "target/debug/libx.rlib"
        );
        assert_eq!(r.rel(Path::new("/home/u/ws")).unwrap(), "ws");
        assert_eq!(r.rel(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn text_from_the_worker_names_this_machines_roots() {
        let r = roots();
        let text = "/w/a-1/root/target/debug/deps/x.d: src/lib.rs /w/a-1/root/target/debug/build/o/out/g.rs\n\
                    # env-dep:OUT_DIR=/w/a-1/root/target/debug/build/o/out\n/w/a-1/root/wsx";
        assert_eq!(
            r.to_local(text, "/w/a-1/root"),
            "/home/u/ws/target/debug/deps/x.d: src/lib.rs /home/u/ws/target/debug/build/o/out/g.rs\n\
             # env-dep:OUT_DIR=/home/u/ws/target/debug/build/o/out\n/w/a-1/root/wsx"
        );
    }

    #[test]
    fn a_digest_is_the_files_and_a_file_just_written_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let (memo, file) = (dir.path().join("memo"), dir.path().join("big.rlib"));
        std::fs::create_dir(&memo).unwrap();
        std::fs::write(&file, vec![7u8; 100_000]).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let d = memo_digest(&memo, &file, &meta).unwrap();
        assert_eq!(d, crate::exec::digest_file(&file).unwrap());
        // Changed less than 2 s ago: a write in the same clock tick could follow.
        assert_eq!(std::fs::read_dir(&memo).unwrap().count(), 0);
    }

    #[test]
    fn a_full_memo_shard_drops_digests_older_than_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path();
        let now = std::time::SystemTime::now();
        let two_days = now - std::time::Duration::from_secs(2 * 24 * 3600);
        let write = |name: &str, at: std::time::SystemTime| {
            let p = shard.join(name);
            std::fs::write(&p, "h 1\n").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(at)
                .unwrap();
        };
        for i in 0..40 {
            write(&format!("old{i}"), two_days);
            write(&format!("new{i}"), now);
        }
        let count = || std::fs::read_dir(shard).unwrap().count();
        prune_memo_shard(shard, now);
        assert_eq!(
            count(),
            40,
            "the old digests are gone, the recent ones stay"
        );
        // A shard within its bound is left alone, old digests and all.
        write("old-again", two_days);
        prune_memo_shard(shard, now);
        assert_eq!(count(), 41);
    }

    #[test]
    fn credentials_and_this_machines_plumbing_are_withheld() {
        for v in [
            "XCACHE_REMOTE_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "LD_PRELOAD",
            "CARGO_MAKEFLAGS",
        ] {
            assert!(withheld(v), "{v}");
        }
        for v in ["CARGO_PKG_NAME", "OUT_DIR", "RUSTC_BOOTSTRAP", "HOME"] {
            assert!(!withheld(v), "{v}");
        }
    }

    #[test]
    fn the_path_a_worker_searched_reads_as_this_machines() {
        let map = |p: &str| p.replace("/w/sysroot", "/home/u/sysroot");
        let here = "/home/u/.cargo/bin:/usr/bin:/bin";
        let local = Some(here);
        // rustc's tool directories in front of the action's PATH.
        assert_eq!(
            local_path_var(
                "/w/sysroot/lib/rustlib/x/bin:/w/sysroot/lib/rustlib/x/bin/self-contained:/usr/bin:/bin",
                &map,
                local
            ),
            "/home/u/sysroot/lib/rustlib/x/bin:/home/u/sysroot/lib/rustlib/x/bin/self-contained:\
             /home/u/.cargo/bin:/usr/bin:/bin"
        );
        assert_eq!(local_path_var(crate::key::ACTION_PATH, &map, local), here);
        // A PATH the run made of its own stays as it was (the judge keys it whole).
        assert_eq!(
            local_path_var("/opt/bin:/usr/bin", &map, local),
            "/opt/bin:/usr/bin"
        );
        assert_eq!(local_path_var("/usr/bin:/bin", &map, None), "/usr/bin:/bin");
    }
}
