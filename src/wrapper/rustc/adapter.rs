//! The rustc adapter of the lifecycle: [`run_wrapper`], the wrapper's entry, and what
//! the lifecycle asks of a compile ([`Cached`] for [`Rustc`]): its key, restore and
//! replay, run, inputs (roots an expansion shows stay out cleared), outputs, rerun.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::inputs::{loads_crates, loads_macros};
use super::run::{Sent, passthrough};
use super::unit::Rustc;
use crate::config::{Env, WrapperConfig};
use crate::key::{
    Input, InputKind, Key, KeyEnv, RootKind, behind_clippy, clippy_identity, compiler_id,
    content_identity, is_clippy_driver, key_identity, l1_key, normalize_inputs, parse_rustc_args,
};
use crate::observe::Observer;
use crate::reason::{RUSTC_FAILED, Uncacheable};
use crate::store::{EntryMeta, PutOutcome};
use crate::wrapper::expansion::{env_names_only_includes, roots_stay_out};
use crate::wrapper::lifecycle::{Cached, Cx, OutFile, OutSource, Ran, Rerun, run_cached};
use crate::wrapper::linked::LinkPlan;
use crate::wrapper::remote_exec;
use crate::wrapper::restore::{Restored, replay_text};
use crate::wrapper::{Outcome, RemoteExec, UnitEvent, UnitRecord};

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
            crate::wrapper::local_slots::take(
                &Path::new(target).join("xcache/local-slots"),
                s.local,
            )
        });
        if local.is_some() {
            self.remote = Some(RemoteExec {
                fallback: Some(remote_exec::Fallback::LocalSlot.code().to_string()),
                ..RemoteExec::default()
            });
        }
        let mut here = None;
        if let Some(spec) = spec.filter(|_| local.is_none()) {
            match self.run_remotely(cx, &spec, &args) {
                Sent::Worker(ran) => {
                    if let Some(o) = observer {
                        o.discard();
                    }
                    return Ok(ran);
                }
                Sent::Here(ran) => here = Some(ran),
                Sent::Not => {}
            }
        }
        let ran = match here {
            Some(ran) => {
                if let Some(o) = observer {
                    o.discard();
                }
                Ok(ran)
            }
            None => self.spawn(cx, &args, observer, true),
        };
        // Before anything forks (the store after cargo went on): a child would hold it.
        drop(local);
        let ran = ran?;
        self.compare_with_worker(cx, &ran);
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
pub(super) fn is_lib_artifact(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("rlib" | "rmeta")
    )
}

/// Where an output goes in its entry. The `.rmeta` first: the `.rlib` begins with the
/// same metadata, which the compressor then finds close behind (see `write_entry`). The
/// `.rlib` last: planting may take it from a loose object and stop reading the entry
/// before it (`store::objects`).
pub(super) fn entry_rank(role: &str) -> u8 {
    match role {
        "rmeta" => 0,
        "rlib" => 2,
        _ => 1,
    }
}
