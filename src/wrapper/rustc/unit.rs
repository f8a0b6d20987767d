//! One rustc invocation as a cached unit ([`Rustc`]): its roots, its outputs that
//! dependents and cargo name (identities, a build script's shim), and its messages'
//! colour.

use std::path::{Path, PathBuf};

use crate::config::{ExecutorSpec, WrapperConfig};
use crate::errors::CacheError;
use crate::exec::send::check::RemoteOutputs;
use crate::key::{CrateKind, Key, PathMap, RustcInvocation, write_artifact_identity};
use crate::wrapper::RemoteExec;
use crate::wrapper::lifecycle::{Cx, target_root};
use crate::wrapper::linked::LinkPlan;
use crate::wrapper::script_build::{Recipe, holds_root};
use crate::wrapper::shim::install_shim;

pub(super) struct Rustc {
    pub(super) rustc: PathBuf,
    pub(super) workspace_wrapper: Option<PathBuf>,
    pub(super) inv: RustcInvocation,
    /// cargo asked for `-C incremental` (even if `XCACHE_DROP_INCREMENTAL` removed it).
    pub(super) asked_incremental: bool,
    /// For a unit that links and is keyed: what its link adds to the keys.
    pub(super) link: Option<LinkPlan>,
    /// What the first-level key was hashed from (for the report's miss causes).
    pub(super) key_parts: Option<crate::key::KeyParts>,
    /// The compiler the unit is keyed on: rustc's identity, or behind clippy-driver
    /// rustc's and clippy's (set with the first-level key).
    pub(super) compiler_key: Option<Key>,
    /// With `XCACHE_EXECUTOR`: how sending the compile to a worker went.
    pub(super) remote: Option<RemoteExec>,
    /// The roots a remote compile's expansion check found to stay out of the program.
    pub(super) roots_stay_out: Option<Vec<String>>,
    /// A remote result in the checked share (`XCACHE_EXECUTOR_CHECK`): the executor and
    /// the worker's outputs by digest, compared after the compile here.
    pub(super) checking: Option<(ExecutorSpec, RemoteOutputs)>,
    /// A build script's shim went in before cargo was let go (`before_release`).
    pub(super) shim_placed: bool,
    /// The unit's first-level key, once known.
    pub(super) l1: Option<Key>,
    /// A build script's executable holds one of the roots as text (`script_build`).
    pub(super) holds_root: std::cell::OnceCell<bool>,
}

impl Rustc {
    pub(super) fn new(
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
            checking: None,
            shim_placed: false,
            l1: None,
            holds_root: std::cell::OnceCell::new(),
        }
    }

    pub(super) fn path_map(&self, cfg: &WrapperConfig) -> PathMap {
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

    pub(super) fn out_dir(&self, cx: &Cx) -> Option<PathBuf> {
        Some(cx.cfg.cwd.join(self.inv.out_dir.as_ref()?))
    }

    /// The `.so` a proc-macro or dylib unit links, identified by its entry key.
    pub(super) fn linked_lib_output(&self, cx: &Cx) -> Option<PathBuf> {
        if !matches!(self.inv.kind(), CrateKind::ProcMacro | CrateKind::Dylib) || !self.inv.links()
        {
            return None;
        }
        let so = self.inv.outputs().into_iter().next()?;
        Some(cx.cfg.cwd.join(so.path))
    }

    /// The executable of a build-script unit that links.
    pub(super) fn build_script_output(&self, cx: &Cx) -> Option<PathBuf> {
        if self.inv.kind() != CrateKind::BuildScript || !self.inv.links() {
            return None;
        }
        let bin = self.inv.outputs().into_iter().next()?;
        Some(cx.cfg.cwd.join(bin.path))
    }

    pub(super) fn wants_ansi(&self) -> bool {
        self.inv
            .args
            .iter()
            .any(|a| a.starts_with("--json") && a.contains("diagnostic-rendered-ansi"))
    }

    /// Puts the shim that sends the script's runs through the cache in front of a
    /// build-script executable (`crate::wrapper::shim`). With runs not cached (`XCACHE_DISABLE`,
    /// `XCACHE_BUILD_RUNS=0`) it still gives the run what a cached run gets (the C path
    /// remapping), so the outputs are the same either way. The build scripts of
    /// `cargo xcache warm`'s placeholder packages get none: their runs are never stored.
    /// The real executable's path behind the shim, when one was put in.
    ///
    /// An executable that holds a root (`script_build`) is known by `unbound`, its
    /// compile's key without the roots, when that is known; by its content otherwise.
    pub(super) fn install_shim(
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
    pub(super) fn script_holds_root(&self, cx: &Cx) -> bool {
        *self.holds_root.get_or_init(|| {
            self.workspace_wrapper.is_none()
                && self
                    .build_script_output(cx)
                    .is_some_and(|bin| holds_root(&bin, &cx.pm).unwrap_or(false))
        })
    }

    pub(super) fn write_identities(cx: &mut Cx, ids: Vec<(PathBuf, String)>) {
        for (p, id) in ids {
            if let Err(source) = write_artifact_identity(&p, &id) {
                cx.warn(&CacheError::Write { path: p, source });
            }
        }
    }
}
