//! One rustc invocation through the cache: the rustc adapter of the lifecycle
//! (`super::lifecycle`). Main entry: [`run_wrapper`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::expansion::{env_names_only_includes, roots_stay_out};
use super::lifecycle::{
    Cached, Cx, OutFile, OutSource, Ran, Rerun, run_cached, scratch_dirs, target_root,
};
use super::linked::LinkPlan;
use super::remote_exec;
use super::restore::{Restored, replay_text};
use super::script_build::{Recipe, holds_root};
use super::shim::install_shim;
use super::{Outcome, RemoteExec, UnitEvent, UnitPlace, UnitRecord};
use crate::config::{Env, ExecutorSpec, WrapperConfig};
use crate::errors::CacheError;
use crate::key::{
    CompilerId, CrateKind, DepInfo, Input, InputKind, Key, KeyEnv, PathMap, RootKind,
    RustcInvocation, UnitIdentity, artifact_identity, behind_clippy, clippy_identity, compiler_id,
    content_identity, is_clippy_driver, key_identity, l1_key, normalize_inputs, parse_rustc_args,
    prediction_key, seed_key, write_artifact_identity,
};
use crate::observe::{Observer, Scope, bound_roots, classify, env_inputs};
use crate::reason::{RUSTC_FAILED, Uncacheable};
use crate::store::{EntryMeta, PutOutcome};

/// Runs one rustc invocation through the cache and returns the exit code to give cargo.
/// `program` is what cargo asked to run; `args` follow it. When cargo runs a workspace
/// member through `RUSTC_WORKSPACE_WRAPPER`, `program` is that wrapper and the real
/// rustc is the first argument: wrappers compose, the workspace wrapper runs under this
/// one, in front of rustc, never instead of it.
pub fn run_wrapper(program: PathBuf, mut args: Vec<String>, env: Env, cwd: PathBuf) -> i32 {
    let workspace_wrapper = env
        .get("RUSTC_WORKSPACE_WRAPPER")
        .filter(|w| Path::new(w) == program || Path::new(w).file_name() == program.file_name())
        .filter(|_| !args.is_empty())
        .map(|_| program.clone());
    let rustc = match &workspace_wrapper {
        Some(_) => PathBuf::from(args.remove(0)),
        None => program,
    };
    let inv = parse_rustc_args(&args);
    // Version queries, `--print`, probe compiles from stdin: straight through. So are
    // compiles started by build scripts (autocfg-style feature probes, which may fail on
    // purpose): cargo sets `CARGO_CFG_*` only for build-script runs, never for its own
    // rustc invocations.
    if inv.is_query || env.get("CARGO_CFG_TARGET_ARCH").is_some() {
        return passthrough(workspace_wrapper.as_deref(), &rustc, &args);
    }
    let cfg = WrapperConfig::resolve(env, cwd);
    let mut unit = Rustc::new(rustc, workspace_wrapper, inv, &cfg);
    let pm = unit.path_map(&cfg);
    let mut cx = Cx::new(cfg, pm);
    run_cached(&mut unit, &mut cx)
}

fn passthrough(wrapper: Option<&Path>, rustc: &Path, args: &[String]) -> i32 {
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

struct Rustc {
    rustc: PathBuf,
    workspace_wrapper: Option<PathBuf>,
    inv: RustcInvocation,
    /// cargo asked for `-C incremental` (even if `XCACHE_DROP_INCREMENTAL` removed it).
    asked_incremental: bool,
    /// For a unit that links and is keyed: what its link adds to the keys.
    link: Option<LinkPlan>,
    /// What the first-level key was hashed from (for the report's miss causes).
    key_parts: Option<crate::key::KeyParts>,
    /// The compiler the unit is keyed on: rustc's identity, or behind clippy-driver
    /// rustc's and clippy's (set with the first-level key).
    compiler_key: Option<Key>,
    /// With `XCACHE_EXECUTOR`: how sending the compile to a worker went.
    remote: Option<RemoteExec>,
    /// The roots a remote compile's expansion check found to stay out of the program.
    roots_stay_out: Option<Vec<String>>,
    /// A build script's shim went in before cargo was let go (`before_release`).
    shim_placed: bool,
    /// The unit's first-level key, once known.
    l1: Option<Key>,
    /// A build script's executable holds one of the roots as text (`script_build`).
    holds_root: std::cell::OnceCell<bool>,
}

impl Rustc {
    fn new(
        rustc: PathBuf,
        workspace_wrapper: Option<PathBuf>,
        mut inv: RustcInvocation,
        cfg: &WrapperConfig,
    ) -> Rustc {
        let asked_incremental = inv.incremental;
        if cfg.drop_incremental && inv.incremental {
            inv.drop_incremental();
        }
        Rustc {
            rustc,
            workspace_wrapper,
            inv,
            asked_incremental,
            link: None,
            key_parts: None,
            compiler_key: None,
            remote: None,
            roots_stay_out: None,
            shim_placed: false,
            l1: None,
            holds_root: std::cell::OnceCell::new(),
        }
    }

    fn path_map(&self, cfg: &WrapperConfig) -> PathMap {
        let target_root = self
            .inv
            .out_dir
            .as_deref()
            .map(|d| target_root(&cfg.cwd.join(d)));
        let mut pm = PathMap::new(&cfg.cwd, target_root.as_deref(), cfg.cargo_home.as_deref());
        // A package outside the workspace: cargo runs rustc in its directory and names its
        // sources by absolute path (members' are relative to the workspace root).
        let outside = self
            .inv
            .input
            .as_deref()
            .map(Path::new)
            .is_some_and(|p| p.is_absolute() && p.starts_with(&cfg.cwd))
            && cfg.env.get("CARGO_MANIFEST_DIR").map(Path::new) == Some(cfg.cwd.as_path());
        if outside
            && let (Some(name), Some(version)) = (
                cfg.env.get("CARGO_PKG_NAME"),
                cfg.env.get("CARGO_PKG_VERSION"),
            )
        {
            pm.name_package(name, version);
        }
        if cfg.real_paths {
            pm.keep_real_paths();
        }
        pm
    }

    fn out_dir(&self, cx: &Cx) -> Option<PathBuf> {
        Some(cx.cfg.cwd.join(self.inv.out_dir.as_ref()?))
    }

    /// The `.so` a proc-macro or dylib unit links, identified by its entry key.
    fn linked_lib_output(&self, cx: &Cx) -> Option<PathBuf> {
        if !matches!(self.inv.kind(), CrateKind::ProcMacro | CrateKind::Dylib) || !self.inv.links()
        {
            return None;
        }
        let so = self.inv.outputs().into_iter().next()?;
        Some(cx.cfg.cwd.join(so.path))
    }

    /// The executable of a build-script unit that links.
    fn build_script_output(&self, cx: &Cx) -> Option<PathBuf> {
        if self.inv.kind() != CrateKind::BuildScript || !self.inv.links() {
            return None;
        }
        let bin = self.inv.outputs().into_iter().next()?;
        Some(cx.cfg.cwd.join(bin.path))
    }

    fn wants_ansi(&self) -> bool {
        self.inv
            .args
            .iter()
            .any(|a| a.starts_with("--json") && a.contains("diagnostic-rendered-ansi"))
    }

    /// Puts the shim that sends the script's runs through the cache in front of a
    /// build-script executable (`super::shim`). With runs not cached (`XCACHE_DISABLE`,
    /// `XCACHE_BUILD_RUNS=0`) it still gives the run what a cached run gets (the C path
    /// remapping), so the outputs are the same either way. The build scripts of
    /// `cargo xcache warm`'s placeholder packages get none: their runs are never stored.
    /// The real executable's path behind the shim, when one was put in.
    ///
    /// An executable that holds a root (`script_build`) is known by `unbound`, its
    /// compile's key without the roots, when that is known; by its content otherwise.
    fn install_shim(
        &self,
        cx: &mut Cx,
        digest: Option<Key>,
        unbound: Option<Key>,
    ) -> Option<PathBuf> {
        if cx.cfg.placeholder || cx.cfg.store_dir.is_none() {
            return None;
        }
        let bin = self.build_script_output(cx)?;
        let exe = std::env::current_exe().ok()?;
        let rooted = unbound
            .filter(|_| self.workspace_wrapper.is_none() && self.script_holds_root(cx))
            .map(|key| {
                let recipe =
                    Recipe::new(&self.inv.args, &cx.cfg.cwd, cx.cfg.env.all().iter(), &cx.pm);
                (key, recipe)
            });
        match install_shim(&bin, &exe, digest, rooted) {
            Ok(real) => Some(real),
            Err(source) => {
                cx.warn(&CacheError::Write { path: bin, source });
                None
            }
        }
    }

    /// Whether the build script's executable (not yet behind its shim) holds a root as
    /// text; asked once. A compile with a workspace wrapper in front is not asked:
    /// its executable is known by its content.
    fn script_holds_root(&self, cx: &Cx) -> bool {
        *self.holds_root.get_or_init(|| {
            self.workspace_wrapper.is_none()
                && self
                    .build_script_output(cx)
                    .is_some_and(|bin| holds_root(&bin, &cx.pm).unwrap_or(false))
        })
    }

    fn write_identities(cx: &mut Cx, ids: Vec<(PathBuf, String)>) {
        for (p, id) in ids {
            if let Err(source) = write_artifact_identity(&p, &id) {
                cx.warn(&CacheError::Write { path: p, source });
            }
        }
    }

    /// The unit's prediction and seed keys (see `key::prediction_key`, `key::seed_key`).
    fn prediction_keys(&self, cx: &Cx) -> Option<(Key, Key)> {
        // Named as the plan names it: a checked unit is not a built one. A unit behind
        // clippy-driver is named by the compiler it is keyed on, rustc's and clippy's
        // (cargo gives clippy's units hashes of their own too).
        let kind = crate::key::unit_kind(self.inv.kind().as_str(), self.inv.emit.link)?;
        let compiler = self.compiler_key.as_ref()?;
        let env = &cx.cfg.env;
        let manifest_dir = cx
            .pm
            .normalize_path(Path::new(env.get("CARGO_MANIFEST_DIR")?));
        let features = self.inv.features();
        let id = UnitIdentity {
            package: env.get("CARGO_PKG_NAME")?,
            version: env.get("CARGO_PKG_VERSION")?,
            manifest_dir: &manifest_dir,
            crate_name: self.inv.crate_name.as_deref()?,
            kind,
            features: &features,
            target: self.inv.target.as_deref().unwrap_or("host"),
            profile_dir: &self.inv.profile_dir()?,
            compiler,
        };
        Some((prediction_key(&id), seed_key(&id)))
    }

    /// Where cargo keeps this unit, when cargo named its outputs (`-C extra-filename`).
    fn place(&self, cx: &Cx) -> Option<UnitPlace> {
        let env = &cx.cfg.env;
        let out_dir = self.out_dir(cx)?;
        let root = target_root(&out_dir);
        let rel = out_dir.strip_prefix(&root).ok()?.to_str()?.to_string();
        // The unit's name in cargo's layout: said by the directory (a build script,
        // every unit of the new layout), else by the package and `-C extra-filename`.
        let unit_dir = match crate::key::Place::of_out_dir(&rel)?.unit {
            Some(unit) => unit,
            None => {
                let hash = self.inv.extra_filename.strip_prefix('-')?;
                format!("{}-{hash}", env.get("CARGO_PKG_NAME")?)
            }
        };
        // An `OUT_DIR` cargo set for this unit's build-script run (one inherited from
        // elsewhere lies outside the target dir).
        let run_dir = env
            .get("OUT_DIR")
            .and_then(|d| crate::key::Place::run_of_out_dir(Path::new(d), &root));
        let mut deps = Vec::new();
        for ext in &self.inv.externs {
            let Some(p) = &ext.path else { continue };
            let p = cx.cfg.cwd.join(p);
            if p.starts_with(&root) {
                deps.push((cx.pm.normalize_path(&p), artifact_identity(&p).ok()?));
            }
        }
        Some(UnitPlace {
            target_root: root,
            out_dir: rel,
            unit_dir,
            run_dir,
            cwd: cx.cfg.cwd.clone(),
            manifest_dir: PathBuf::from(env.get("CARGO_MANIFEST_DIR")?),
            deps,
            linker: self.link.as_ref().map(|l| l.linker_used(&self.inv)),
            incremental: self.asked_incremental,
            script_compile: self.inv.kind() == CrateKind::BuildScript,
            source: self.inv.input.clone(),
        })
    }

    /// What the observer's record says the compile read, beside the dep-info.
    fn observed(
        &self,
        cx: &mut Cx,
        inv: &RustcInvocation,
        ran: &Ran,
        compiler: &CompilerId,
    ) -> Result<Vec<Input>, Uncacheable> {
        let trace = ran.trace.as_ref().ok_or(Uncacheable::Unobserved)?;
        let out_dir = cx
            .cfg
            .cwd
            .join(inv.out_dir.as_ref().ok_or(Uncacheable::UnknownFlag)?);
        let mut covered = vec![compiler.sysroot.clone()];
        // This program: in front of rustc it only passes probe compiles through.
        covered.extend(std::env::current_exe().ok());
        covered.extend(rustup_home(&cx.cfg.env));
        let mut artifact_dirs: Vec<PathBuf> = inv
            .dependency_dirs
            .iter()
            .map(|d| cx.cfg.cwd.join(d))
            .collect();
        for e in &inv.externs {
            if let Some(dir) = e.path.as_deref().and_then(Path::parent) {
                artifact_dirs.push(cx.cfg.cwd.join(dir));
            }
        }
        let stem = inv.stem();
        let scratch = scratch_dirs(&cx.cfg.env);
        let scope = Scope {
            pm: &cx.pm,
            env: cx.cfg.env.all(),
            covered,
            artifact_dirs,
            own: vec![
                (out_dir.clone(), stem.clone()),
                (out_dir.clone(), format!("lib{stem}")),
            ],
            out_dir: None,
            before: Default::default(),
            scratch,
            // rustc makes its temporary directories beside its outputs.
            writable: vec![out_dir.clone()],
            // Where the linker driver is found is the linker identity's business.
            ignored_env: &["PATH"],
            unbound_env: &["PWD"],
            started: cx.started_at,
            keyed_env: crate::key::is_rustc_key_var,
        };
        let c = classify(trace, &scope);
        if let Some((why, what)) = c.refusal() {
            cx.detail = Some(what);
            return Err(why);
        }
        let mut inputs = c.inputs;
        // Real paths in the artifact: it holds only where every root is the same.
        if cx.cfg.real_paths {
            inputs.extend(
                cx.pm
                    .roots()
                    .iter()
                    .map(|r| Input::new(InputKind::Root, r.kind.token(), r.real.clone())),
            );
            crate::key::normalize_inputs(&mut inputs);
        }
        if c.host_cpu {
            inputs.push(cx.host_cpu_input()?);
        }
        Ok(inputs)
    }
}

impl Rustc {
    /// Where this compile may be sent (`XCACHE_EXECUTOR`): a library that does not
    /// link, or a proc-macro (which links a shared library through `cc`: the worker's
    /// linker identity must be this machine's, see `run_remotely`), compiled by rustc
    /// itself. Not binaries, tests, cdylibs (their links are the world's: any system
    /// library, any linker argument), not build scripts, not `-C target-cpu=native`
    /// (the worker's CPU), not incremental, not with real paths kept in artifacts (they
    /// would name the worker's).
    fn may_run_remotely(&self, cx: &Cx) -> Option<ExecutorSpec> {
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

    /// Sends the compile to a worker: `Some` with what it did, as a local run says it
    /// (outputs in place, messages passed through); `None` when it must run here (why
    /// is in the unit's event).
    fn run_remotely(&mut self, cx: &mut Cx, spec: &ExecutorSpec, args: &[String]) -> Option<Ran> {
        let compiler = cx.compiler.as_ref()?.1.clone();
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
                    return None;
                }
                None => return None,
            },
        };
        let command = || self.command();
        let job = remote_exec::Job {
            spec,
            inv: &self.inv,
            compiler: &compiler,
            args,
            command: &command,
            link,
        };
        match remote_exec::attempt(cx, &job) {
            Ok(done) => {
                // After the outputs are in place: cargo starts dependents when it reads
                // the metadata artifact message.
                let _ = io::stderr().write_all(&done.ran.stderr);
                let _ = io::stdout().write_all(&done.ran.stdout);
                self.remote = Some(done.record);
                self.roots_stay_out = done.roots_stay_out;
                Some(done.ran)
            }
            Err((fallback, detail)) => {
                self.remote = Some(RemoteExec {
                    fallback: Some(fallback.code().to_string()),
                    detail: Some(detail),
                    action_ms: t.elapsed().as_millis() as u64,
                    ..RemoteExec::default()
                });
                None
            }
        }
    }

    /// Runs rustc (behind the workspace wrapper, if any) with the path remapping and
    /// `args`, observed when `observer` is given. With `echo`, its output is passed
    /// through as it comes (cargo starts dependents as soon as it sees the metadata
    /// artifact message); a copy is kept either way.
    fn spawn(
        &self,
        cx: &Cx,
        args: &[String],
        observer: Option<Observer>,
        echo: bool,
    ) -> io::Result<Ran> {
        let mut cmd = self.command();
        cmd.args(cx.pm.remap_args())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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

    /// The command that runs the compiler: the workspace wrapper in front of rustc, if
    /// cargo named one.
    fn command(&self) -> Command {
        match &self.workspace_wrapper {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(&self.rustc);
                c
            }
            None => Command::new(&self.rustc),
        }
    }

    /// What a compile of `inv` read: what the observer saw, and the dep-info; and the
    /// variables read by `env!`/`option_env!` whose values name a root no other read
    /// names, with those roots (for [`super::expansion::roots_stay_out`]).
    fn inputs_of(
        &self,
        cx: &mut Cx,
        inv: &RustcInvocation,
        ran: &Ran,
    ) -> Result<(Vec<Input>, ExpandedRoots), Uncacheable> {
        let compiler = cx
            .compiler
            .as_ref()
            .ok_or(Uncacheable::UnknownCompiler)?
            .1
            .clone();
        let mut inputs = self.observed(cx, inv, ran, &compiler)?;
        let observed = inputs.clone();
        let observed_roots: Vec<String> = inputs
            .iter()
            .filter(|i| i.kind == InputKind::Root)
            .map(|i| i.name.clone())
            .collect();
        let mut expanded = ExpandedRoots::default();
        // The dep-info: every file rustc reports reading (the observer saw them too),
        // and every variable read with `env!`/`option_env!` (asked by the compiler's
        // own code, so only the dep-info tells which).
        let d_path = cx
            .cfg
            .cwd
            .join(inv.depinfo_path().ok_or(Uncacheable::MissingOutput)?);
        let text = std::fs::read_to_string(&d_path).map_err(|_| Uncacheable::MissingOutput)?;
        let info = DepInfo::parse(&text, &cx.cfg.cwd);
        for f in &info.files {
            let changed = std::fs::metadata(f)
                .and_then(|m| m.modified())
                .map(|m| m > cx.started_at)
                .unwrap_or(true);
            if changed {
                cx.detail = Some(format!("{} changed during the build", f.display()));
                return Err(Uncacheable::InputChangedDuringBuild);
            }
            let state = crate::judge::path_state(f, true);
            if !state.starts_with("file:") {
                return Err(Uncacheable::UnreadableInput);
            }
            inputs.push(Input::new(InputKind::Path, cx.pm.normalize_path(f), state));
        }
        for e in &info.env {
            let read = env_inputs(&e.name, e.value.as_deref(), &cx.pm);
            let roots: Vec<&Input> = read.iter().filter(|i| i.kind == InputKind::Root).collect();
            if let (Some(v), false) = (&e.value, roots.is_empty()) {
                expanded.vars.push((e.name.clone(), v.clone()));
                for r in roots {
                    if !expanded.roots.contains(&r.name) {
                        expanded.roots.push(r.name.clone());
                    }
                }
            }
            inputs.extend(read);
        }
        expanded.sources = info.files;
        // A root another read names (a proc-macro's `std::env::var`, the linker's) is
        // not the plain expansion's to clear: only one that sees the roots everywhere at
        // their aliases (`read`), and only where variables are what named them (a read
        // of one, or of the environment whole); nor is anything when the compile itself
        // read the variable the expansion check sets.
        expanded.roots.retain(|r| !observed_roots.contains(r));
        expanded.rooted_vars = cx
            .cfg
            .env
            .all()
            .iter()
            .filter(|(_, v)| cx.pm.normalize_text(v) != **v)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let whole_env = observed.iter().any(|i| i.kind == InputKind::EnvSet);
        let by_vars: Vec<String> = observed
            .iter()
            .filter(|i| i.kind == InputKind::Env)
            .filter_map(|i| cx.cfg.env.all().get(&i.name))
            .flat_map(|v| bound_roots(v, &cx.pm))
            .map(|i| i.name)
            .collect();
        if observed_roots
            .iter()
            .all(|r| whole_env || by_vars.contains(r))
        {
            expanded.read = observed_roots.clone();
            expanded.read.dedup();
        }
        // (Every variable the dep-info names is among `inputs` by now.)
        if inputs
            .iter()
            .any(|i| i.kind == InputKind::Env && i.name == "RUSTC_BOOTSTRAP")
        {
            expanded.roots.clear();
            expanded.read.clear();
        }
        if inv.targets_native_cpu() {
            inputs.push(cx.host_cpu_input()?);
        }
        Ok((inputs, expanded))
    }
}

/// A shared library by its name (`.so`, `.so.N`, `.dylib`): a proc-macro or a plugin.
fn is_shared_library(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".so") || n.contains(".so.") || n.ends_with(".dylib"))
}

/// Whether the compile may have loaded a proc-macro: an `--extern` of a shared library,
/// or a shared library outside the compiler's sysroot opened (a crate found through
/// `-L`, a plugin). Unsure (no record, no compiler identity): yes.
fn loads_macros(inv: &RustcInvocation, ran: &Ran, cx: &Cx) -> bool {
    if inv
        .externs
        .iter()
        .any(|e| e.path.as_deref().is_some_and(is_shared_library))
    {
        return true;
    }
    let (Some(trace), Some((_, compiler))) = (ran.trace.as_ref(), cx.compiler.as_ref()) else {
        return true;
    };
    trace.events.iter().any(|e| {
        e.op == crate::observe::Op::Read
            && is_shared_library(Path::new(&e.path))
            && !Path::new(&e.path).starts_with(&compiler.sysroot)
    })
}

/// Whether the compile loaded a crate from outside the compiler's sysroot (named by
/// `--extern` or found on a search path): its macros may call `env!` where the crate's
/// own sources do not name it. `true` when the observer's record is missing.
fn loads_crates(inv: &RustcInvocation, ran: &Ran, cx: &Cx) -> bool {
    let (Some(trace), Some((_, compiler))) = (ran.trace.as_ref(), cx.compiler.as_ref()) else {
        return true;
    };
    let outside = |p: &Path| !p.starts_with(&compiler.sysroot);
    let a_crate = |p: &Path| {
        is_shared_library(p)
            || p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".rlib") || n.ends_with(".rmeta"))
    };
    // The compile's own library, which it writes (in a temporary directory first) and
    // reads back, is no crate it loads.
    let written: std::collections::HashSet<&str> = trace
        .events
        .iter()
        .filter(|e| e.op == crate::observe::Op::Write)
        .map(|e| e.path.as_str())
        .collect();
    inv.externs
        .iter()
        .any(|e| e.path.as_deref().is_some_and(outside))
        || trace.events.iter().any(|e| {
            e.op == crate::observe::Op::Read
                && a_crate(Path::new(&e.path))
                && outside(Path::new(&e.path))
                && !written.contains(e.path.as_str())
        })
}

/// Variables read by `env!`/`option_env!` (name, value) whose values name a root, the
/// tokens of the roots that only they name, and the files the compile read as its
/// dep-info lists them (its sources, included ones too).
#[derive(Default)]
struct ExpandedRoots {
    vars: Vec<(String, String)>,
    roots: Vec<String>,
    sources: Vec<PathBuf>,
    /// Roots the compile's programs (a proc-macro, the linker) read in variables, when
    /// every root the observer bound the compile to came so: an expansion with the
    /// roots at aliases everywhere may clear them where the compile loaded a proc-macro
    /// (`expansion::roots_stay_out`'s `whole`).
    read: Vec<String>,
    /// Every variable of the compile's environment whose value names a root.
    rooted_vars: Vec<(String, String)>,
}

/// Where rustup keeps its toolchains: what its proxy reads is the compiler identity's.
fn rustup_home(env: &Env) -> Option<PathBuf> {
    env.get("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".rustup")))
}

impl Cached for Rustc {
    fn record(&self, cx: &Cx) -> UnitRecord {
        let env = &cx.cfg.env;
        UnitRecord {
            target: self.inv.target.clone(),
            ..UnitRecord::new(
                env.get("CARGO_PKG_NAME").unwrap_or("").to_string(),
                env.get("CARGO_PKG_VERSION").unwrap_or("").to_string(),
                self.inv.crate_name.clone().unwrap_or_default(),
                self.inv.kind().as_str().to_string(),
                Outcome::Miss,
            )
        }
    }

    fn refusal(&self, cx: &Cx) -> Option<Uncacheable> {
        // `cargo xcache warm` builds workspace packages from placeholder sources.
        if cx.cfg.placeholder {
            return Some(Uncacheable::Placeholder);
        }
        if let Some(u) = self.inv.uncacheable {
            return Some(u);
        }
        if cx.cfg.disabled {
            return Some(Uncacheable::Disabled);
        }
        // clippy-driver's results are cached (keyed on its identity, see `l1`); any
        // other tool in front of rustc is not: what it does is unknown.
        self.workspace_wrapper
            .as_deref()
            .filter(|w| !is_clippy_driver(w))
            .map(|_| Uncacheable::WorkspaceWrapper)
    }

    fn l1(&mut self, cx: &mut Cx) -> Result<Key, Uncacheable> {
        let store = cx.store.clone().ok_or(Uncacheable::Disabled)?;
        let compiler = match compiler_id(
            &self.rustc,
            store.compilers_dir().as_deref(),
            cx.cfg.rustup_toolchain.as_deref(),
            cx.cfg.env.path_var().map(|p| p.as_os_str()),
        ) {
            Ok(c) => c,
            Err(e) => {
                cx.warn(&e);
                return Err(Uncacheable::UnknownCompiler);
            }
        };
        cx.compiler = Some((self.rustc.clone(), compiler.clone()));
        // Behind clippy-driver, known once clippy is (below).
        self.compiler_key = self.workspace_wrapper.is_none().then_some(compiler.key);
        if self.inv.links() {
            self.link = Some(LinkPlan::new(
                &self.inv,
                &cx.cfg,
                &compiler,
                &cx.pm,
                store.linkers_dir().as_deref(),
            )?);
        }
        // Behind clippy-driver, the compiler is rustc and clippy: its build joins the
        // compiler's identity. Its lint configuration is keyed as any input is: the
        // flags cargo passes (`[lints]`, `-W/-A/-D`), `CLIPPY_ARGS` and `clippy.toml`
        // (read, or probed for and absent) as the observer sees clippy-driver read them.
        let mut keyed = compiler.clone();
        if let Some(w) = &self.workspace_wrapper {
            let clippy = clippy_identity(w, cx.cfg.env.path_var().map(|p| p.as_os_str()))
                .ok_or(Uncacheable::UnknownCompiler)?;
            keyed.key = behind_clippy(&compiler.key, &clippy);
        }
        self.compiler_key = Some(keyed.key);
        let kenv = KeyEnv {
            path_map: &cx.pm,
            compiler: &keyed,
            vars: cx.cfg.env.all(),
            cwd: &cx.cfg.cwd,
            link: self.link.as_ref().map(|p| &p.key),
        };
        let keys = l1_key(&self.inv, &kenv)?;
        self.key_parts = Some(keys.parts);
        self.l1 = Some(keys.l1);
        Ok(keys.l1)
    }

    fn reason_after_miss(&self) -> Option<Uncacheable> {
        // An incremental unit was looked up as if it were not incremental (its key
        // leaves `-C incremental` out): a hit restores what a non-incremental build
        // stored. A miss compiles incrementally, as asked, and is never stored:
        // incremental outputs differ from build to build.
        self.inv.incremental.then_some(Uncacheable::Incremental)
    }

    fn restore_dir(&self, cx: &Cx) -> Option<PathBuf> {
        self.out_dir(cx)
    }

    fn restored(&mut self, cx: &mut Cx, key: &Key, restored: &Restored) {
        let mut ids: Vec<(PathBuf, String)> = restored
            .files
            .iter()
            .filter(|(p, _)| is_lib_artifact(p))
            .map(|(p, d)| (p.clone(), content_identity(d)))
            .collect();
        if let Some(so) = self.linked_lib_output(cx) {
            ids.push((so, key_identity(key)));
        }
        let exe_digest = self.build_script_output(cx).and_then(|bin| {
            restored
                .files
                .iter()
                .find(|(p, _)| *p == bin)
                .map(|(_, d)| *d)
        });
        let unbound = match &self.l1 {
            Some(l1) if self.build_script_output(cx).is_some() && self.script_holds_root(cx) => {
                cx.rooted_key(l1)
            }
            _ => None,
        };
        let _ = self.install_shim(cx, exe_digest, unbound);
        // Before replaying: the replayed metadata message lets cargo start dependents,
        // which read these.
        Self::write_identities(cx, ids);
    }

    fn replay(&self, cx: &Cx, meta: &EntryMeta) {
        let want_ansi = self.wants_ansi();
        let out = replay_text(&meta.stdout, &cx.pm, meta.ansi, want_ansi);
        let err = replay_text(&meta.stderr, &cx.pm, meta.ansi, want_ansi);
        let _ = io::stdout().write_all(out.as_bytes());
        let _ = io::stderr().write_all(err.as_bytes());
    }

    /// Runs rustc, passing its output through as it comes (cargo starts dependents as
    /// soon as it sees the metadata artifact message) and keeping a copy.
    fn run(&mut self, cx: &mut Cx, observer: Option<Observer>) -> io::Result<Ran> {
        let print_link = self.link.as_ref().map(LinkPlan::rustc_args);
        let args: Vec<String> = self
            .inv
            .args
            .iter()
            .cloned()
            .chain(print_link.into_iter().flatten())
            .collect();
        let spec = observer
            .is_some()
            .then(|| self.may_run_remotely(cx))
            .flatten();
        // Up to `XCACHE_EXECUTOR_LOCAL` of the compiles that could go to the workers run
        // here at once, each holding a slot until its compile ends.
        let local = spec.as_ref().and_then(|s| {
            let target = cx.pm.real_of(RootKind::Target)?;
            super::local_slots::take(&Path::new(target).join("xcache/local-slots"), s.local)
        });
        if local.is_some() {
            self.remote = Some(RemoteExec {
                fallback: Some(remote_exec::Fallback::LocalSlot.code().to_string()),
                ..RemoteExec::default()
            });
        }
        if let Some(spec) = spec.filter(|_| local.is_none())
            && let Some(ran) = self.run_remotely(cx, &spec, &args)
        {
            if let Some(o) = observer {
                o.discard();
            }
            return Ok(ran);
        }
        let ran = self.spawn(cx, &args, observer, true);
        // Before anything forks (the store after cargo went on): a child would hold it.
        drop(local);
        let ran = ran?;
        if ran.code != 0
            && let Some(plan) = &self.link
        {
            plan.discard();
        }
        Ok(ran)
    }

    fn inputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<Input>, Uncacheable> {
        let (mut inputs, expanded) = self.inputs_of(cx, &self.inv, ran)?;
        // Roots only `env!`/`option_env!` values name bind the unit unless its
        // expansion shows they go no further than file paths.
        // Roots what the compile ran read in variables (a proc-macro's
        // `std::env::var("CARGO_MANIFEST_DIR")`, as `git_version!` and `proc-macro-crate`
        // do): cleared by an expansion that puts every root at its alias, where the
        // compile loaded a proc-macro (its expansion is all it gives the compile).
        let macros = (!expanded.read.is_empty() || !expanded.roots.is_empty())
            && loads_macros(&self.inv, ran, cx);
        let whole = macros && !expanded.read.is_empty();
        let mut tokens = expanded.roots.clone();
        let mut vars = expanded.vars.clone();
        if whole {
            for t in &expanded.read {
                if !tokens.contains(t) {
                    tokens.push(t.clone());
                }
            }
            for (k, v) in &expanded.rooted_vars {
                if !vars.iter().any(|(n, _)| n == k) {
                    vars.push((k.clone(), v.clone()));
                }
            }
        }
        if !tokens.is_empty() {
            let roots: Vec<_> = cx
                .pm
                .roots()
                .iter()
                .filter(|r| tokens.iter().any(|t| t == r.kind.token()))
                .cloned()
                .collect();
            // A remote compile's outputs stand only where its check found these roots
            // stay out (else it was compiled here): the same question, answered once.
            let checked = !whole
                && self.roots_stay_out.as_ref().is_some_and(|stay| {
                    roots
                        .iter()
                        .all(|r| stay.iter().any(|t| t == r.kind.token()))
                });
            let stay_out = checked
                || cx.phase("expansion", |cx| {
                    (!macros
                        && !loads_crates(&self.inv, ran, cx)
                        && env_names_only_includes(
                            &expanded.sources,
                            &expanded
                                .vars
                                .iter()
                                .map(|(name, _)| name.as_str())
                                .collect::<Vec<_>>(),
                        ))
                        || roots_stay_out(
                            || self.command(),
                            &self.inv,
                            &cx.pm,
                            &vars,
                            &roots,
                            macros,
                            whole.then_some(cx.cfg.cwd.as_path()),
                        )
                });
            if stay_out {
                inputs.retain(|i| !(i.kind == InputKind::Root && tokens.contains(&i.name)));
            }
        }
        // The files the link read.
        if let Some(plan) = &self.link {
            inputs.extend(plan.inputs_after_link(&self.inv, &cx.cfg.cwd, &cx.pm, cx.started_at)?);
        }
        normalize_inputs(&mut inputs);
        Ok(inputs)
    }

    fn outputs(&mut self, cx: &mut Cx, _ran: &Ran) -> Result<Vec<OutFile>, Uncacheable> {
        let mut outputs: Vec<_> = self.inv.outputs();
        outputs.sort_by_key(|o| entry_rank(o.role));
        let mut files = Vec::with_capacity(outputs.len());
        for o in outputs {
            let path = cx.cfg.cwd.join(&o.path);
            if !path.is_file() {
                return Err(Uncacheable::MissingOutput);
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let source = if o.role == "dep-info" {
                let text =
                    std::fs::read_to_string(&path).map_err(|_| Uncacheable::MissingOutput)?;
                OutSource::Text(cx.pm.normalize_text(&text))
            } else {
                OutSource::File(path)
            };
            files.push(OutFile {
                role: o.role.to_string(),
                name,
                executable: o.executable,
                // Every compiled file: a program or shared library a user may strip
                // or patch where it is is copied into the store, never linked.
                shared: true,
                source,
            });
        }
        Ok(files)
    }

    fn ansi(&self) -> bool {
        self.wants_ansi()
    }

    fn finished(&mut self, cx: &mut Cx, stored: Option<(&Key, &PutOutcome)>) {
        let mut ids: Vec<(PathBuf, String)> = Vec::new();
        if let Some((key, outcome)) = stored {
            let mut outputs: Vec<PathBuf> = {
                let mut o = self.inv.outputs();
                o.sort_by_key(|o| entry_rank(o.role));
                o.into_iter().map(|o| cx.cfg.cwd.join(o.path)).collect()
            };
            outputs.truncate(outcome.digests.len());
            ids = outputs
                .into_iter()
                .zip(&outcome.digests)
                .filter(|(p, _)| is_lib_artifact(p))
                .map(|(p, d)| (p, content_identity(d)))
                .collect();
            if let Some(so) = self.linked_lib_output(cx) {
                ids.push((so, key_identity(key)));
            }
        }
        Self::write_identities(cx, ids);
        if !self.shim_placed {
            let unbound = match (&self.l1, stored) {
                (Some(l1), Some(_))
                    if self.build_script_output(cx).is_some() && self.script_holds_root(cx) =>
                {
                    cx.rooted_key(l1)
                }
                _ => None,
            };
            self.install_shim(cx, None, unbound);
        }
    }

    fn failure_code(&self) -> &'static str {
        RUSTC_FAILED
    }

    fn outputs_follow_inputs(&self) -> bool {
        false
    }

    /// Not a proc-macro or dylib (its dependents name it by its entry key, from the
    /// sidecar `finished` writes). A build script's executable is, its shim put in
    /// first (`before_release`).
    ///
    /// Nor a build script whose executable holds a root: it is known by its compile's
    /// key, which storing gives (`script_build`).
    fn may_store_in_background(&self, cx: &Cx) -> bool {
        self.linked_lib_output(cx).is_none()
            && !(self.build_script_output(cx).is_some() && self.script_holds_root(cx))
    }

    /// A build script's shim goes in now, as `finished` would put it: cargo runs the
    /// script once let go. The executable is stored from where it then is, under its
    /// own name (restores and seeding put the shim in front of it again).
    fn before_release(&mut self, cx: &mut Cx, files: &mut [OutFile]) {
        let Some(bin) = self.build_script_output(cx) else {
            return;
        };
        self.shim_placed = true;
        let Some(real) = self.install_shim(cx, None, None) else {
            return;
        };
        for f in files {
            if matches!(&f.source, OutSource::File(p) if *p == bin) {
                f.source = OutSource::File(real.clone());
            }
        }
    }

    fn rerun(&mut self, cx: &mut Cx, scratch: &Path) -> Result<Rerun, String> {
        std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
        let mut inv = self.inv.with_out_dir(scratch);
        inv.drop_incremental();
        // The outputs name their directory as the real compile's would: the last
        // matching remap wins, and this one is the most specific.
        if let Some(out) = &self.inv.out_dir {
            let remapped = cx.pm.remapped(&cx.cfg.cwd.join(out));
            inv.args.push(format!(
                "--remap-path-prefix={}={remapped}",
                scratch.display()
            ));
        }
        let observer = cx.observer().map_err(|u| u.to_string())?;
        let ran = self
            .spawn(cx, &inv.args, Some(observer), false)
            .map_err(|e| e.to_string())?;
        if ran.code != 0 {
            return Err(format!("the uncached compile failed ({})", ran.code));
        }
        let (mut inputs, _) = self.inputs_of(cx, &inv, &ran).map_err(|u| u.to_string())?;
        normalize_inputs(&mut inputs);
        let files = inv
            .outputs()
            .into_iter()
            .filter_map(|o| {
                let name = o.path.file_name()?.to_string_lossy().into_owned();
                Some((name, cx.cfg.cwd.join(&o.path)))
            })
            .collect();
        Ok(Rerun {
            files,
            stdout: Vec::new(),
            inputs,
        })
    }

    fn complete_event(&self, cx: &Cx, ev: &mut UnitEvent) {
        if let Some((upk, spk)) = self.prediction_keys(cx) {
            ev.upk = Some(upk.to_hex());
            ev.spk = Some(spk.to_hex());
        }
        ev.place = self.place(cx);
        ev.key_parts = self.key_parts.clone();
        ev.unit.remote_exec = self.remote.clone();
        if ev.unit.outcome == Outcome::Hit {
            ev.unit.non_incremental_restore = self.inv.incremental;
        }
    }
}

/// `.rlib` and `.rmeta` files: what dependents name in `--extern`.
fn is_lib_artifact(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("rlib" | "rmeta")
    )
}

/// Where an output goes in its entry. The `.rmeta` first: the `.rlib` begins with the
/// same metadata, which the compressor then finds close behind (see `write_entry`). The
/// `.rlib` last: planting may take it from a loose object and stop reading the entry
/// before it (`store::objects`).
fn entry_rank(role: &str) -> u8 {
    match role {
        "rmeta" => 0,
        "rlib" => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
