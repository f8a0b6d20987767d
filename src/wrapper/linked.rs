//! Units that link — proc-macros, executables, build-script executables, test
//! harnesses: what the link adds to their keys. Main type: [`LinkPlan`].
//!
//! Before rustc runs, the plan identifies the linker (`key::linker_id`) and the `-l`
//! libraries of the command line, for the first-level key. rustc is then asked to print
//! the linker command line it runs (`--print link-args=<file>`, which changes nothing
//! else), and after the link every file that line names or leads the linker to becomes
//! part of the entry key (`key::link_inputs`), so a transitive rlib or native library
//! that changed is a miss even when every direct `--extern` is unchanged.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::WrapperConfig;
use crate::key::{
    CompilerId, Input, Key, LinkContext, LinkerId, LinkerRequest, PathMap, RustcInvocation,
    link_inputs, link_key, linker_id, parse_link_line,
};
use crate::reason::Uncacheable;

/// What one linked unit's key needs from its link.
pub struct LinkPlan {
    linker: LinkerId,
    /// The program rustc is expected to run as the linker.
    program: String,
    target: String,
    sysroot: PathBuf,
    /// The first-level key's link part.
    pub key: Key,
    /// Where rustc prints the linker command line.
    args_file: PathBuf,
    /// With an executor, for a proc-macro: the linker identity a worker must offer to
    /// link it (hex), or why none can vouch for this link.
    pub for_workers: Option<Result<String, String>>,
}

impl LinkPlan {
    /// Identifies the link of `inv` before it runs. `memo_dir` remembers linker
    /// identities (inside the store).
    pub fn new(
        inv: &RustcInvocation,
        cfg: &WrapperConfig,
        compiler: &CompilerId,
        pm: &PathMap,
        memo_dir: Option<&Path>,
    ) -> Result<LinkPlan, Uncacheable> {
        let host = compiler.host().ok_or(Uncacheable::UnknownLinker)?;
        let target = inv.target.clone().unwrap_or_else(|| host.to_string());
        // Output names, the default linker and the probes are those of Linux (ELF).
        if !target.contains("-linux-") {
            return Err(Uncacheable::UnsupportedLinkTarget);
        }
        let sysroot = match &inv.sysroot {
            Some(s) => cfg.cwd.join(s),
            None => compiler.sysroot.clone(),
        };
        let program = inv.linker.clone().unwrap_or_else(|| "cc".to_string());
        let fuse_ld: Vec<String> = inv
            .link_args
            .iter()
            .filter_map(|a| a.strip_prefix("-fuse-ld="))
            .map(str::to_string)
            .collect();
        let linker = linker_id(
            &LinkerRequest {
                program: &program,
                cwd: &cfg.cwd,
                sysroot: &sysroot,
                host,
                target: &target,
                fuse_ld: &fuse_ld,
                path_var: cfg.env.path_var().map(|p| p.as_os_str()),
                vars: cfg.env.all(),
            },
            memo_dir,
        )?;
        let key = link_key(&linker, inv, &cfg.cwd, &target_lib(&sysroot, &target), pm)?;
        let out_dir = cfg
            .cwd
            .join(inv.out_dir.as_ref().ok_or(Uncacheable::UnknownFlag)?);
        let args_file = out_dir.join(format!("{}.xcache-link-args", inv.stem()));
        let for_workers = (cfg.executor.is_some()
            && inv.kind() == crate::key::CrateKind::ProcMacro)
            .then(|| for_workers(inv, cfg, &linker, &sysroot, host, &target, memo_dir));
        Ok(LinkPlan {
            linker,
            program,
            target,
            sysroot,
            key,
            args_file,
            for_workers,
        })
    }

    /// The file rustc prints the linker command line to.
    pub fn args_file(&self) -> &Path {
        &self.args_file
    }

    /// The linker this plan identified, for seeding.
    pub fn linker_used(&self, inv: &RustcInvocation) -> super::LinkerUsed {
        super::LinkerUsed {
            program: self.program.clone(),
            fuse_ld: inv
                .link_args
                .iter()
                .filter_map(|a| a.strip_prefix("-fuse-ld="))
                .map(str::to_string)
                .collect(),
            target: self.target.clone(),
            sysroot: self.sysroot.clone(),
            key: self.linker.key.to_hex(),
        }
    }

    /// The arguments that make rustc print its linker command line.
    pub fn rustc_args(&self) -> Vec<String> {
        // A stale file from an interrupted build must not pass for this link's.
        let _ = fs::remove_file(&self.args_file);
        vec![format!("--print=link-args={}", self.args_file.display())]
    }

    /// Removes the printed command line (after a failed compile, or once read).
    pub fn discard(&self) {
        let _ = fs::remove_file(&self.args_file);
    }

    /// After a successful link: every file it read and every place it looked in vain,
    /// normalized and with their identities, sorted. A file changed since `started`
    /// may not be what the link read.
    pub fn inputs_after_link(
        &self,
        inv: &RustcInvocation,
        cwd: &Path,
        pm: &PathMap,
        started: SystemTime,
    ) -> Result<Vec<Input>, Uncacheable> {
        let text = fs::read_to_string(&self.args_file);
        self.discard();
        let line = parse_link_line(&text.map_err(|_| Uncacheable::UnresolvedLinkInput)?)
            .ok_or(Uncacheable::UnresolvedLinkInput)?;
        if line.program != self.program {
            return Err(Uncacheable::UnknownLinker);
        }
        let out_dir = cwd.join(inv.out_dir.as_ref().ok_or(Uncacheable::UnknownFlag)?);
        let output = inv
            .outputs()
            .first()
            .map(|o| cwd.join(&o.path))
            .ok_or(Uncacheable::MissingOutput)?;
        let mut crate_dirs = inv.dependency_dirs.clone();
        for e in &inv.externs {
            if let Some(dir) = e.path.as_deref().and_then(Path::parent) {
                crate_dirs.push(dir.to_path_buf());
            }
        }
        let inputs = link_inputs(
            &line,
            &LinkContext {
                cwd,
                out_dir: &out_dir,
                stem: &inv.stem(),
                output: &output,
                sysroot: &self.sysroot,
                target: &self.target,
                linker: &self.linker,
                crate_dirs: &crate_dirs,
            },
        )?;
        for i in &inputs {
            let changed = fs::metadata(i.path())
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > started);
            if changed {
                return Err(Uncacheable::InputChangedDuringBuild);
            }
        }
        crate::key::describe_inputs(&inputs, pm)
    }
}

/// The linker identity a worker must offer to link `inv` (hex): the unit's own, which
/// must be the same for `cc` on the PATH an action runs with
/// ([`crate::key::ACTION_PATH`]; the worker identifies its `cc` there). `Err` says why
/// no worker can vouch for this link.
fn for_workers(
    inv: &RustcInvocation,
    cfg: &WrapperConfig,
    linker: &LinkerId,
    sysroot: &Path,
    host: &str,
    target: &str,
    memo_dir: Option<&Path>,
) -> Result<String, String> {
    if let Some(opt) = inv.link_option_beyond_cc() {
        return Err(format!("{opt} chooses the link"));
    }
    if target != host {
        return Err(format!("a link for {target} on a {host} host"));
    }
    let path = std::ffi::OsString::from(crate::key::ACTION_PATH);
    let there = linker_id(
        &LinkerRequest {
            program: "cc",
            cwd: &cfg.cwd,
            sysroot,
            host,
            target,
            fuse_ld: &[],
            path_var: Some(&path),
            vars: cfg.env.all(),
        },
        memo_dir,
    )
    .map_err(|e| {
        format!(
            "cc on {} cannot be identified ({})",
            crate::key::ACTION_PATH,
            e.code()
        )
    })?;
    if there.key != linker.key {
        return Err(format!(
            "cc on this machine's PATH is not the cc on {}",
            crate::key::ACTION_PATH
        ));
    }
    Ok(linker.key.to_hex())
}

/// `<sysroot>/lib/rustlib/<target>/lib`: the standard library the compiler identity
/// covers.
fn target_lib(sysroot: &Path, target: &str) -> PathBuf {
    sysroot.join("lib").join("rustlib").join(target).join("lib")
}
