//! [`Plan`]: the graph's packages, the units the command compiles of them, and what
//! every later stage needs to name those units (compiler identity, path map, predicted
//! keys), computed once.

use std::path::Path;

use super::command::{CargoCommand, Compiles};
use super::graph::{self, BuildPlan, Selection};
use super::predict::{MemberCompiler, PredictionInput, predict_units};
use crate::config::{BuildConfig, Env, cargo_home};
use crate::errors::CliError;
use crate::key::PredictedUnit;
use crate::key::{
    CompilerId, PathMap, behind_clippy, clippy_identity, compiler_id, toolchain_clippy_driver,
};

/// A unit rustdoc builds (documentation, doctests): cargo runs rustdoc without the
/// rustc wrapper, so the cache never sees it; the report lists it as uncacheable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustdocUnit {
    pub package: String,
    pub version: String,
    pub crate_name: String,
    /// `doc` or `doctest`.
    pub kind: &'static str,
}

/// What one cargo command will compile.
#[derive(Clone, Debug)]
pub struct Plan {
    pub command: CargoCommand,
    pub compiles: Compiles,
    pub selection: Selection,
    /// The packages cargo resolves for the selection (guppy's simulation).
    pub graph: BuildPlan,
    pub path_map: PathMap,
    /// The compiler cargo will run, when it could be identified (without it nothing is
    /// predicted: keys name the compiler).
    pub compiler: Option<CompilerId>,
    /// The units with a prediction key, sorted by it.
    pub units: Vec<PredictedUnit>,
    /// The units rustdoc builds, never cached.
    pub rustdoc: Vec<RustdocUnit>,
    /// The layout cargo will keep the units in (`super::expected_layout`), or why
    /// planting cannot know it (planting is then off).
    pub layout: Result<crate::key::Layout, String>,
    /// The environment cargo's units will start from: this process's, what the
    /// command's tool sets before it runs cargo (`cargo clippy`'s `CLIPPY_ARGS`), and
    /// the `CARGO_ENCODED_RUSTFLAGS` cargo will give build scripts where that is known
    /// (see `rustflags`). Seeding and prefetch judge recorded variables against it.
    pub unit_env: Env,
    /// The files cargo locks in its profile directories, learned from cargo
    /// (`cargo_lock`); `None` where it was not learned.
    pub cargo_locks: Option<super::CargoLocks>,
    /// Whether cargo was not asked yet which files it locks in this build's mode (the
    /// build dir apart from the target dir or not): [`Plan::learn_cargo_locks`] asks it
    /// while cargo builds, for the next build.
    pub cargo_locks_unknown: Option<bool>,
}

/// What [`Plan::make`] finds out about the files cargo locks (`plan::cargo_lock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CargoLocking {
    /// Nothing: cargo will not start beside planting in this setting.
    Off,
    /// What an earlier build learned; where nothing is remembered, nothing is asked
    /// before cargo starts (the probe's cargo runs cost more than cargo's start beside
    /// planting saves), and [`Plan::cargo_locks_unknown`] says so.
    Remembered,
    /// Asked of cargo (both modes where `cargo metadata` runs beside): a first build,
    /// whose cargo already runs, learns them for the next one.
    Learn,
}

impl Plan {
    /// Reads the workspace and predicts the units of `command` with `cargo_args`, which
    /// cargo will run with `wrapper` as its rustc wrapper; what it finds out about the
    /// files cargo locks, `locking` says.
    /// `cfg.cargo_version` must be filled in (seed records are keyed on it).
    pub fn make(
        cfg: &BuildConfig,
        env: &Env,
        command: CargoCommand,
        cargo_args: &[String],
        wrapper: &Path,
        locking: CargoLocking,
    ) -> Result<Plan, CliError> {
        let compiles = Compiles::of(command, cargo_args);
        let mut sel = graph::selection_from_cargo_args(cargo_args);
        if sel.target_dir.is_none() {
            sel.target_dir = cfg.cargo_target_dir.clone();
        }
        sel.dev = compiles.dev();
        sel.release |= compiles.release;
        if command == CargoCommand::Install
            && sel.manifest_path.is_none()
            && let Some(dir) = install_path(cargo_args)
        {
            sel.manifest_path = Some(cfg.cwd.join(dir).join("Cargo.toml"));
        }
        // The compiler's identity does not depend on the workspace: asked while `cargo
        // metadata` runs (where it is not remembered yet, a fresh machine's first build,
        // that is `rustc -vV` and `rustc --print sysroot` off the serial path), where
        // the toolchain is settled ([`toolchain_settled`]).
        let identity = || (!cfg.disabled).then(|| build_compiler(env)).flatten();
        let at_once = toolchain_settled(&cfg.cwd, env);
        // Where cargo keeps units, asked of cargo itself (remembered after the first
        // time) while `cargo metadata` runs; only seeding needs it.
        let home = cargo_home(env);
        let probe = probe(cfg, env, home.as_deref(), cargo_args);
        let seeds = cfg.seed && !cfg.disabled;
        let switched = super::layout::by_switch(cargo_args, env).is_some();
        let learn = || (seeds && !switched).then(|| probe.layout());
        // Which files cargo locks in its build dir, with it apart from the target dir
        // or not: cargo then starts while seeding plants (`cli::build_command`). A first build
        // learns them: where `cargo metadata` runs beside, both modes; otherwise only
        // the one the plan needs, after it.
        let locks = seeds && locking == CargoLocking::Learn;
        let locks_for = |apart: bool| super::cargo_lock::learn(&probe, apart);
        let (graph, compiler, (learned, both_locks)) = if at_once {
            std::thread::scope(|s| {
                let compiler = s.spawn(identity);
                let learned = s.spawn(|| {
                    let layout = learn();
                    (layout, locks.then(|| (locks_for(true), locks_for(false))))
                });
                let graph = graph::plan(&sel, &cfg.cargo, &cfg.cwd, Some(wrapper));
                (
                    graph,
                    compiler.join().ok().flatten(),
                    learned.join().unwrap_or((None, None)),
                )
            })
        } else {
            let graph = graph::plan(&sel, &cfg.cargo, &cfg.cwd, Some(wrapper));
            (graph, identity(), (learn(), None))
        };
        let graph = graph?;
        let path_map = PathMap::new(
            &graph.workspace_root,
            Some(&graph.build_dir),
            home.as_deref(),
        );
        // `cargo clippy` runs clippy-driver in front of rustc for the members.
        let member_compiler = match (&compiler, command) {
            (Some(c), CargoCommand::Clippy) => {
                let driver = toolchain_clippy_driver(&c.sysroot);
                clippy_identity(&driver, env.path_var().map(|p| p.as_os_str()))
                    .map(|clippy| behind_clippy(&c.key, &clippy))
            }
            _ => None,
        };
        // With `--no-deps` clippy-driver lints only the packages cargo names primary
        // (`CARGO_PRIMARY_PACKAGE`), which cargo's fingerprint does not cover: a result
        // recorded for a package checked as a dependency would be found fresh where the
        // package is selected. The wrapper's key holds the variable; seeds do not.
        let primary_only = command
            .clippy_args(cargo_args)
            .is_some_and(|a| a.contains(&"--no-deps"));
        let members = match (command, &member_compiler) {
            (CargoCommand::Clippy, _) if primary_only => MemberCompiler::NotPredicted,
            (CargoCommand::Clippy, Some(k)) => MemberCompiler::Behind(k),
            // Without clippy's identity its units cannot be named.
            (CargoCommand::Clippy, None) => MemberCompiler::NotPredicted,
            _ => MemberCompiler::Rustc,
        };
        let units = match &compiler {
            Some(c) => predict_units(&PredictionInput {
                plan: &graph,
                path_map: &path_map,
                compiler: &c.key,
                target: sel.target.as_deref(),
                profile_dir: &sel.profile_dir(),
                cargo_version: &cfg.cargo_version,
                compiles: &compiles,
                members,
            }),
            None => Vec::new(),
        };
        let rustdoc = rustdoc_units(&graph, &compiles);
        let mut set_for_units = command.tool_env(cargo_args);
        if let Some(v) = super::rustflags::encoded_rustflags(
            env,
            &cfg.cwd,
            home.as_deref(),
            cargo_args,
            compiler.as_ref().and_then(|c| c.host()),
        ) {
            set_for_units.push(("CARGO_ENCODED_RUSTFLAGS".to_string(), v));
        }
        let unit_env = env.with(&set_for_units);
        let apart = graph.build_dir != graph.target_dir;
        let mut cargo_locks_unknown = None;
        let cargo_locks = match both_locks {
            Some((when_apart, same)) => {
                if apart {
                    when_apart
                } else {
                    same
                }
            }
            None if locks => locks_for(apart),
            None if seeds && locking == CargoLocking::Remembered => {
                super::cargo_lock::remembered(&probe, apart).unwrap_or_else(|| {
                    cargo_locks_unknown = Some(apart);
                    None
                })
            }
            None => None,
        };
        let layout = if seeds {
            super::expected_layout(cargo_args, env, &graph.build_dir, || {
                learned.unwrap_or_else(|| Err("cargo was not asked".to_string()))
            })
        } else {
            Err("seeding is off".to_string())
        };
        Ok(Plan {
            command,
            compiles,
            selection: sel,
            layout,
            graph,
            path_map,
            compiler,
            units,
            rustdoc,
            unit_env,
            cargo_locks,
            cargo_locks_unknown,
        })
    }

    /// Asks cargo which files it locks in this build's mode where the plan found
    /// nothing remembered ([`Plan::cargo_locks_unknown`]), for the next build.
    pub fn learn_cargo_locks(&self, cfg: &BuildConfig, env: &Env, cargo_args: &[String]) {
        if let Some(apart) = self.cargo_locks_unknown {
            let home = cargo_home(env);
            super::cargo_lock::learn(&probe(cfg, env, home.as_deref(), cargo_args), apart);
        }
    }

    /// Roughly how many rustc invocations cargo makes: one per predicted unit, one per
    /// package without a prediction (no compiler identity).
    pub fn expected_units(&self) -> usize {
        if self.compiler.is_some() {
            self.units.len()
        } else {
            self.graph.expected_units()
        }
    }
}

/// The documentation and doctests rustdoc builds for the selected members' libraries.
fn rustdoc_units(graph: &BuildPlan, compiles: &Compiles) -> Vec<RustdocUnit> {
    let mut out = Vec::new();
    for p in graph.packages.iter().filter(|p| p.selected && !p.host) {
        let Some((crate_name, "lib")) = p.lib.as_ref().map(|(n, k)| (n, *k)) else {
            continue;
        };
        for (wanted, kind) in [(compiles.docs, "doc"), (compiles.doctests, "doctest")] {
            if wanted {
                out.push(RustdocUnit {
                    package: p.name.clone(),
                    version: p.version.clone(),
                    crate_name: crate_name.clone(),
                    kind,
                });
            }
        }
    }
    out
}

/// `cargo install --path DIR`: the directory.
fn install_path(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--path" {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix("--path=") {
            return Some(v);
        }
    }
    None
}

/// Finds (or reads back) the identities the first compiles of a build ask for before
/// they run, so that on a machine that remembers none (a new CI runner) they are there
/// when cargo's first units start instead of probed on the build's critical path: the
/// compiler's (the same the plan asks for), and the linker's of a host link through the
/// default driver, `cc`, which every build script, proc-macro and (without `--target`)
/// program of the build links with (a compile that names another linker probes its
/// own). Probes the wrappers would make, made sooner: a wrapper that finds one under way
/// waits for its memo (`private_dir::MemoLock`) instead of probing too. Not where
/// rustup may still have to install the toolchain (`toolchain_settled`).
pub fn identify_toolchain(cwd: &Path, env: &Env) {
    if !toolchain_settled(cwd, env) {
        return;
    }
    let Some(compiler) = build_compiler(env) else {
        return;
    };
    let path_var = env.path_var().map(|p| p.as_os_str());
    // Run through rustup's proxy, cargo hands the wrappers the toolchain's own `rustc`
    // (`<sysroot>/bin/rustc`, with `RUSTUP_TOOLCHAIN` naming the toolchain), another
    // memo than the proxy's; guessed only where rustup put the toolchain
    // (`<RUSTUP_HOME>/toolchains/<name>`: a compiler of the system's is the program
    // cargo runs itself). Identified beside the linker. A wrong guess costs one probe
    // and leaves a memo that is right for the program it names.
    let own = compiler.sysroot.join("bin").join("rustc");
    let in_rustup = compiler
        .sysroot
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "toolchains");
    let toolchain = env.get("RUSTUP_TOOLCHAIN").map(str::to_string).or_else(|| {
        in_rustup
            .then(|| compiler.sysroot.file_name())
            .flatten()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let beside = (env.get("RUSTC").is_none() && toolchain.is_some() && own.is_file()).then(|| {
        let path_var = path_var.map(std::ffi::OsStr::to_os_string);
        std::thread::spawn(move || {
            let _ = compiler_id(
                &own,
                crate::private_dir::compilers_dir().as_deref(),
                toolchain.as_deref(),
                path_var.as_deref(),
            );
        })
    });
    let Some(host) = compiler.host().filter(|h| h.contains("-linux-")) else {
        return;
    };
    let _ = crate::key::linker_id(
        &crate::key::LinkerRequest {
            program: "cc",
            cwd,
            sysroot: &compiler.sysroot,
            host,
            target: host,
            fuse_ld: &[],
            path_var,
            vars: env.all(),
        },
        crate::private_dir::linkers_dir().as_deref(),
    );
    if let Some(t) = beside {
        let _ = t.join();
    }
}

/// The identity of the compiler the build names (`RUSTC`, else `rustc` on `PATH`, often
/// rustup's proxy), found or read back.
fn build_compiler(env: &Env) -> Option<CompilerId> {
    compiler_id(
        Path::new(env.get("RUSTC").unwrap_or("rustc")),
        crate::private_dir::compilers_dir().as_deref(),
        env.get("RUSTUP_TOOLCHAIN"),
        env.path_var().map(|p| p.as_os_str()),
    )
    .ok()
}

/// The probe of the build's cargo, with the build's switches (`plan::layout`).
fn probe<'a>(
    cfg: &'a BuildConfig,
    env: &'a Env,
    home: Option<&'a Path>,
    cargo_args: &'a [String],
) -> super::layout::Probe<'a> {
    super::layout::Probe {
        cargo: &cfg.cargo,
        cargo_version: &cfg.cargo_version,
        cwd: &cfg.cwd,
        cargo_home: home,
        env,
        cargo_args,
    }
}

/// Whether the compiler may be asked beside cargo: not where rustup may still have to
/// install the toolchain a `rust-toolchain` file names (no `RUSTUP_TOOLCHAIN` from a
/// proxy that already resolved it), as two proxies installing it at once could fail the
/// build.
fn toolchain_settled(cwd: &Path, env: &Env) -> bool {
    env.get("RUSTUP_TOOLCHAIN").is_some() || !toolchain_file_above(cwd)
}

/// Whether `dir` or a directory above it holds a `rust-toolchain` or
/// `rust-toolchain.toml` file: rustup's pick of the toolchain, which it installs on first
/// use.
fn toolchain_file_above(dir: &Path) -> bool {
    dir.ancestors()
        .any(|d| d.join("rust-toolchain").is_file() || d.join("rust-toolchain.toml").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toolchain_file_in_the_directory_or_above_is_found() {
        let d = tempfile::tempdir().unwrap();
        let member = d.path().join("ws").join("member");
        std::fs::create_dir_all(&member).unwrap();
        assert!(!toolchain_file_above(&member));
        std::fs::write(d.path().join("ws").join("rust-toolchain.toml"), "").unwrap();
        assert!(toolchain_file_above(&member));
        std::fs::remove_file(d.path().join("ws").join("rust-toolchain.toml")).unwrap();
        std::fs::write(member.join("rust-toolchain"), "stable").unwrap();
        assert!(toolchain_file_above(&member));
    }
}
