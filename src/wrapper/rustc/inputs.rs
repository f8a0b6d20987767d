//! What a compile read: the observer's record and the dep-info ([`Rustc::inputs_of`]),
//! the variables `env!` read that name a root ([`ExpandedRoots`]), and whether it loaded
//! proc-macros or crates from outside the sysroot.

use std::path::{Path, PathBuf};

use super::unit::Rustc;
use crate::config::Env;
use crate::key::{CompilerId, DepInfo, Input, InputKind, RustcInvocation};
use crate::observe::{Scope, bound_roots, classify, env_inputs};
use crate::reason::Uncacheable;
use crate::wrapper::lifecycle::{Cx, Ran, scratch_dirs};

impl Rustc {
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

    /// What a compile of `inv` read: what the observer saw, and the dep-info; and the
    /// variables read by `env!`/`option_env!` whose values name a root no other read
    /// names, with those roots (for [`crate::wrapper::expansion::roots_stay_out`]).
    pub(super) fn inputs_of(
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
pub(super) fn is_shared_library(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".so") || n.contains(".so.") || n.ends_with(".dylib"))
}

/// Whether the compile may have loaded a proc-macro: an `--extern` of a shared library,
/// or a shared library outside the compiler's sysroot opened (a crate found through
/// `-L`, a plugin). Unsure (no record, no compiler identity): yes.
pub(super) fn loads_macros(inv: &RustcInvocation, ran: &Ran, cx: &Cx) -> bool {
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
pub(super) fn loads_crates(inv: &RustcInvocation, ran: &Ran, cx: &Cx) -> bool {
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
pub(super) struct ExpandedRoots {
    pub(super) vars: Vec<(String, String)>,
    pub(super) roots: Vec<String>,
    pub(super) sources: Vec<PathBuf>,
    /// Roots the compile's programs (a proc-macro, the linker) read in variables, when
    /// every root the observer bound the compile to came so: an expansion with the
    /// roots at aliases everywhere may clear them where the compile loaded a proc-macro
    /// (`expansion::roots_stay_out`'s `whole`).
    pub(super) read: Vec<String>,
    /// Every variable of the compile's environment whose value names a root.
    pub(super) rooted_vars: Vec<(String, String)>,
}

/// Where rustup keeps its toolchains: what its proxy reads is the compiler identity's.
pub(super) fn rustup_home(env: &Env) -> Option<PathBuf> {
    env.get("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".rustup")))
}
