//! A parsed rustc command line ([`RustcInvocation`]) and its parts: the crate's kind,
//! what it emits, its `--extern`s and `-l` libraries, its outputs; the kind it builds,
//! its features and the arguments that feed the key.

use std::path::{Path, PathBuf};

use crate::reason::Uncacheable;

/// What kind of crate a unit builds, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrateKind {
    Lib,
    ProcMacro,
    Bin,
    BuildScript,
    Test,
    Dylib,
    Cdylib,
    Staticlib,
}

impl CrateKind {
    /// Stable name used in report.json.
    pub fn as_str(self) -> &'static str {
        match self {
            CrateKind::Lib => "lib",
            CrateKind::ProcMacro => "proc-macro",
            CrateKind::Bin => "bin",
            CrateKind::BuildScript => "build-script",
            CrateKind::Test => "test",
            CrateKind::Dylib => "dylib",
            CrateKind::Cdylib => "cdylib",
            CrateKind::Staticlib => "staticlib",
        }
    }
}

/// Which outputs `--emit` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Emit {
    pub dep_info: bool,
    pub metadata: bool,
    pub link: bool,
    /// Anything else (obj, asm, llvm-ir, mir, an explicit output path).
    pub other: bool,
}

/// One `--extern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// The name with its modifiers (`noprelude:foo`), as written.
    pub name: String,
    pub path: Option<PathBuf>,
}

/// One `-l` naming a static library that rustc bundles into an rlib.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticLib {
    pub name: String,
    pub verbatim: bool,
}

/// One `-l [KIND[:MODIFIERS]=]NAME[:RENAME]`, as a linked unit passes it to the linker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLib {
    /// `static`, `dylib` (also when no kind is given), `framework`, `link-arg`, …
    pub kind: String,
    pub name: String,
    pub verbatim: bool,
}

/// One output file of a unit: its role in the entry, where rustc writes it, and whether
/// it is restored executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub role: &'static str,
    pub path: PathBuf,
    pub executable: bool,
}

/// A parsed rustc command line.
#[derive(Clone, Debug, Default)]
pub struct RustcInvocation {
    /// The arguments as cargo passed them (without the rustc path).
    pub args: Vec<String>,
    pub crate_name: Option<String>,
    pub crate_types: Vec<String>,
    pub emit: Emit,
    pub out_dir: Option<PathBuf>,
    pub extra_filename: String,
    pub input: Option<String>,
    pub externs: Vec<Extern>,
    pub incremental: bool,
    pub test: bool,
    pub target: Option<String>,
    /// `-L` search paths with their kind (`native`, `all`, …; `all` when unspecified).
    pub search_paths: Vec<(String, PathBuf)>,
    /// `-L dependency=` directories: where rustc finds the crates `--extern` does not
    /// name (not keyed: see `-L` in `handle_value`).
    pub dependency_dirs: Vec<PathBuf>,
    pub static_libs: Vec<StaticLib>,
    /// Every `-l`, for units that link.
    pub link_libs: Vec<LinkLib>,
    /// `-C linker=`, as given.
    pub linker: Option<String>,
    /// `-C link-arg=` and the words of `-C link-args=`, in order.
    pub link_args: Vec<String>,
    /// `-C split-debuginfo=`, as given.
    pub split_debuginfo: Option<String>,
    /// `--sysroot`, as given.
    pub sysroot: Option<PathBuf>,
    /// `--cfg` values, as given.
    pub cfgs: Vec<String>,
    /// Arguments that feed the key, each as `(flag, value)`, in command-line order,
    /// with output locations, incremental dirs and `--extern`s taken out. Values that
    /// are paths are normalized later, by [`RustcInvocation::key_args`].
    pub(super) key_args: Vec<(String, Option<KeyValue>)>,
    /// Why this invocation cannot be cached, as far as its arguments tell.
    pub uncacheable: Option<Uncacheable>,
    /// `--print`, `-vV`, reading from stdin, `--explain`: not a compile.
    pub is_query: bool,
}

#[derive(Clone, Debug)]
pub(super) enum KeyValue {
    Plain(String),
    Path(String),
}

impl RustcInvocation {
    /// The kind of crate this invocation builds.
    pub fn kind(&self) -> CrateKind {
        let types: Vec<&str> = if self.crate_types.is_empty() {
            vec!["bin"]
        } else {
            self.crate_types.iter().map(String::as_str).collect()
        };
        if self.test {
            return CrateKind::Test;
        }
        if types.contains(&"proc-macro") {
            return CrateKind::ProcMacro;
        }
        if types.contains(&"bin") {
            let is_build_script = self
                .crate_name
                .as_deref()
                .is_some_and(|n| n.starts_with("build_script_"));
            return if is_build_script {
                CrateKind::BuildScript
            } else {
                CrateKind::Bin
            };
        }
        if types.contains(&"cdylib") {
            return CrateKind::Cdylib;
        }
        if types.contains(&"dylib") {
            return CrateKind::Dylib;
        }
        if types.contains(&"staticlib") {
            return CrateKind::Staticlib;
        }
        CrateKind::Lib
    }

    /// The features cargo enabled (`--cfg feature="x"`), sorted.
    pub fn features(&self) -> Vec<String> {
        let mut f: Vec<String> = self
            .cfgs
            .iter()
            .filter_map(|c| c.strip_prefix("feature=\""))
            .map(|v| v.trim_end_matches('"').to_string())
            .collect();
        f.sort();
        f
    }

    /// The key arguments with every path normalized by `normalize`.
    pub fn key_args(&self, normalize: impl Fn(&Path) -> String) -> Vec<String> {
        self.key_args
            .iter()
            .map(|(flag, v)| match v {
                None => flag.clone(),
                Some(KeyValue::Plain(s)) => format!("{flag}={s}"),
                Some(KeyValue::Path(p)) => format!("{flag}={}", normalize(Path::new(p))),
            })
            .collect()
    }
}
