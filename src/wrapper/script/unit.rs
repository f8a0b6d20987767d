//! A build-script run as a cached unit ([`Script`]): the real run spawned with what the
//! shim adds, and what its observed record and its directives say it read
//! ([`Observed`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::added::Added;
use crate::key::{Input, InputKind, TreeError, normalize_inputs, tree_digest};
use crate::observe::{Observer, Scope, classify, var_inputs};
use crate::reason::Uncacheable;
use crate::wrapper::lifecycle::{Cx, Ran, scratch_dirs, tee};

/// The most files a run's inputs (a directory it declared) or its outputs may hold for
/// the run to be cached.
pub(super) const MAX_FILES: usize = 10_000;

/// Variables whose values name a root without binding a run to it: where the run writes,
/// where it runs, where its sources are, where it finds programs and libraries, and
/// what its `links` dependencies' runs passed on (their `OUT_DIR`s, include and library
/// directories, keyed as trees). Names the run uses to find things, not data: what it
/// reads there is observed; what it writes is tokenized, or scanned and bound, and the
/// path check runs it again with each root elsewhere (see the book).
const UNBOUND_ENV: &[&str] = &[
    "OUT_DIR",
    "PWD",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "PATH",
    "LD_LIBRARY_PATH",
    "DEP_*",
];

pub(super) struct Script {
    pub(super) real: PathBuf,
    pub(super) ran: PathBuf,
    pub(super) args: Vec<OsString>,
    pub(super) out_dir: PathBuf,
    pub(super) target_root: PathBuf,
    /// The run's root directory: its package's workspace (`key::run_root`).
    pub(super) root_dir: PathBuf,
    /// What `OUT_DIR` held before the run (see `observe::before_run`).
    pub(super) before: HashMap<PathBuf, String>,
    /// The files the run wrote and the directories it made in `OUT_DIR`: its outputs.
    pub(super) written: Vec<PathBuf>,
    /// The roots a C file's name bound the run to, and why (`observe::file_macros`).
    pub(super) file_bound: Vec<(String, String)>,
    /// What the first-level key was hashed from (for the key history).
    pub(super) key_parts: Option<crate::key::KeyParts>,
    /// What the run's environment gets (and the key says of it).
    pub(super) added: Added,
    /// The executable is known by its compile's key, not its content: it holds a root
    /// (`key::rooted_identity`).
    pub(super) rooted: bool,
}

impl Script {
    /// What the script declared on its output: `rerun-if-changed` paths (keyed as
    /// trees) and `rerun-if-env-changed` variables. cargo reruns on them; the key covers
    /// them whether or not the script read them.
    fn declared(&self, cx: &mut Cx, stdout: &[u8]) -> Result<Vec<Input>, Uncacheable> {
        let text = String::from_utf8_lossy(stdout);
        let mut inputs = Vec::new();
        for line in text.lines() {
            let Some(d) = line
                .strip_prefix("cargo::")
                .or_else(|| line.strip_prefix("cargo:"))
            else {
                continue;
            };
            if let Some(p) = d.strip_prefix("rerun-if-changed=") {
                let p = cx.cfg.cwd.join(p);
                let changed = fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m > cx.started_at);
                if changed {
                    cx.detail = Some(format!("{} changed during the build", p.display()));
                    return Err(Uncacheable::InputChangedDuringBuild);
                }
                let digest =
                    tree_digest(&p, &self.target_root, MAX_FILES, &cx.pm).map_err(tree_reason)?;
                inputs.push(Input::new(
                    InputKind::Tree,
                    cx.pm.normalize_path(&p),
                    digest,
                ));
            } else if let Some(v) = d.strip_prefix("rerun-if-env-changed=") {
                // Declared or read, a name the run finds things by binds nothing: the
                // path check answers for it (ring declares `OUT_DIR`).
                let value = cx.cfg.env.all().get(v).map(String::as_str);
                inputs.extend(var_inputs(v, value, &cx.pm, UNBOUND_ENV));
            }
        }
        Ok(inputs)
    }
}

impl Script {
    /// Runs the real script with the same arguments, environment and working directory
    /// but `out_dir` for `OUT_DIR`, passing its output through as it comes when `echo`
    /// and keeping a copy. C objects compiled by the `cc` crate get the cache's path
    /// remapping of their debug information (`Added`).
    pub(super) fn spawn(
        &self,
        cx: &Cx,
        out_dir: &Path,
        observer: Option<Observer>,
        echo: bool,
    ) -> io::Result<Ran> {
        let mut cmd = Command::new(&self.real);
        cmd.arg0(&self.ran)
            .args(&self.args)
            .env("OUT_DIR", out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.envs(self.added.vars.iter().cloned());
        if let Some(o) = &observer {
            o.apply(&mut cmd, cx.cfg.env.get("LD_PRELOAD"));
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let child_out = child.stdout.take().expect("piped");
        let child_err = child.stderr.take().expect("piped");
        let (stdout, stderr, status) = if echo {
            let out_thread = std::thread::spawn(move || tee(child_out, io::stdout()));
            let stderr = tee(child_err, io::stderr());
            let status = child.wait()?;
            (out_thread.join().unwrap_or_default(), stderr, status)
        } else {
            let out_thread = std::thread::spawn(move || tee(child_out, io::sink()));
            let stderr = tee(child_err, io::sink());
            let status = child.wait()?;
            (out_thread.join().unwrap_or_default(), stderr, status)
        };
        Ok(Ran {
            code: status.code().unwrap_or(101),
            stdout,
            stderr,
            trace: observer.and_then(|o| o.finish(pid).ok()),
        })
    }

    /// What a run writing into `out_dir` read, and what it wrote there (files, and the
    /// directories it made). `before`: what `out_dir` held before it.
    pub(super) fn inputs_of(
        &self,
        cx: &mut Cx,
        ran: &Ran,
        out_dir: &Path,
        before: HashMap<PathBuf, String>,
    ) -> Result<Observed, Uncacheable> {
        let trace = ran.trace.as_ref().ok_or(Uncacheable::Unobserved)?;
        let (_, compiler) = cx
            .compiler
            .clone()
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?;
        let mut covered = vec![compiler.sysroot.clone()];
        // This program: in front of rustc it only passes probe compiles through.
        covered.extend(std::env::current_exe().ok());
        covered.extend(
            cx.cfg
                .env
                .get("RUSTUP_HOME")
                .map(PathBuf::from)
                .or_else(|| cx.cfg.env.get("HOME").map(|h| Path::new(h).join(".rustup"))),
        );
        let scope = Scope {
            pm: &cx.pm,
            env: cx.cfg.env.all(),
            covered,
            artifact_dirs: Vec::new(),
            own: Vec::new(),
            out_dir: Some(out_dir.to_path_buf()),
            before,
            scratch: scratch_dirs(&cx.cfg.env),
            writable: Vec::new(),
            ignored_env: &[],
            unbound_env: UNBOUND_ENV,
            started: cx.started_at,
            keyed_env: crate::key::is_run_key_var,
        };
        let c = classify(trace, &scope);
        if let Some((why, what)) = c.refusal() {
            cx.detail = Some(what);
            return Err(why);
        }
        let mut inputs = c.inputs;
        if c.host_cpu {
            inputs.push(cx.host_cpu_input()?);
        }
        inputs.extend(self.declared(cx, &ran.stdout)?);
        normalize_inputs(&mut inputs);
        Ok(Observed {
            inputs,
            written: c.written.into_iter().chain(c.made_dirs).collect(),
            file_bound: c.file_bound,
        })
    }
}

/// What a run's record says: its inputs, what it wrote and made in `OUT_DIR`, and the
/// roots a C file's name bound it to (with why).
pub(super) struct Observed {
    pub(super) inputs: Vec<Input>,
    pub(super) written: Vec<PathBuf>,
    pub(super) file_bound: Vec<(String, String)>,
}

pub(super) fn tree_reason(e: TreeError) -> Uncacheable {
    match e {
        TreeError::TooManyFiles => Uncacheable::BuildScriptTooManyFiles,
        TreeError::Io(_) => Uncacheable::UnreadableInput,
    }
}
