//! Parsing one rustc command line into what the cache needs to know.
//!
//! The parser is deliberately strict: a flag it does not know makes the unit
//! uncacheable (`unknown-flag`), never silently ignored.

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
    key_args: Vec<(String, Option<KeyValue>)>,
    /// Why this invocation cannot be cached, as far as its arguments tell.
    pub uncacheable: Option<Uncacheable>,
    /// `--print`, `-vV`, reading from stdin, `--explain`: not a compile.
    pub is_query: bool,
}

#[derive(Clone, Debug)]
enum KeyValue {
    Plain(String),
    Path(String),
}

/// Long flags that take a value, with whether the value is a path.
const LONG_WITH_VALUE: &[(&str, bool)] = &[
    ("--crate-name", false),
    ("--crate-type", false),
    ("--edition", false),
    ("--emit", false),
    ("--out-dir", true),
    ("--extern", false),
    ("--cfg", false),
    ("--check-cfg", false),
    ("--target", false),
    ("--codegen", false),
    ("--cap-lints", false),
    ("--warn", false),
    ("--allow", false),
    ("--deny", false),
    ("--forbid", false),
    ("--force-warn", false),
    ("--error-format", false),
    ("--json", false),
    ("--color", false),
    ("--diagnostic-width", false),
    ("--remap-path-prefix", false),
    ("--remap-path-scope", false),
    ("--sysroot", true),
    ("--print", false),
    ("--explain", false),
    ("--env-set", false),
    ("--crate-attr", false),
    ("--extern-location", false),
    ("--cfg-set", false),
];

/// Short flags that take a value (`-C x` or `-Cx`).
const SHORT_WITH_VALUE: &[&str] = &["-C", "-L", "-l", "-W", "-A", "-D", "-F", "-Z", "-o"];

/// Flags without a value.
const NO_VALUE: &[&str] = &["--test", "-O", "-g", "--verbose", "-v", "--bench"];

/// Parses the arguments after the rustc path.
pub fn parse_rustc_args(args: &[String]) -> RustcInvocation {
    let mut inv = RustcInvocation {
        args: args.to_vec(),
        ..Default::default()
    };
    let mut i = 0;
    let mut unc: Option<Uncacheable> = None;
    let set_unc = |u: Uncacheable, slot: &mut Option<Uncacheable>| {
        if slot.is_none() {
            *slot = Some(u);
        }
    };
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "-vV" || arg == "-V" || arg == "--version" || arg == "-h" || arg == "--help" {
            inv.is_query = true;
            continue;
        }
        if arg == "-" {
            inv.is_query = true;
            continue;
        }
        if let Some(rest) = arg.strip_prefix('@') {
            let _ = rest;
            set_unc(Uncacheable::ArgFile, &mut unc);
            continue;
        }
        if NO_VALUE.contains(&arg.as_str()) {
            if arg == "--test" || arg == "--bench" {
                inv.test = true;
            }
            inv.key_args.push((arg.clone(), None));
            continue;
        }
        // Long flags: `--flag value` or `--flag=value`.
        if arg.starts_with("--") {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let Some(&(_, is_path)) = LONG_WITH_VALUE.iter().find(|(f, _)| *f == flag) else {
                set_unc(Uncacheable::UnknownFlag, &mut unc);
                inv.key_args.push((arg.clone(), None));
                continue;
            };
            let value = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else {
                        set_unc(Uncacheable::UnknownFlag, &mut unc);
                        continue;
                    };
                    i += 1;
                    v.clone()
                }
            };
            handle_value(&mut inv, &flag, value, is_path, &mut unc);
            continue;
        }
        // A short flag is `-` and one ASCII letter (`arg.get` keeps a non-ASCII second
        // character from splitting a code point).
        if let Some(flag) = arg.get(..2).filter(|f| f.starts_with('-')) {
            if SHORT_WITH_VALUE.contains(&flag) {
                let value = if arg.len() > 2 {
                    arg[2..].to_string()
                } else {
                    let Some(v) = args.get(i) else {
                        set_unc(Uncacheable::UnknownFlag, &mut unc);
                        continue;
                    };
                    i += 1;
                    v.clone()
                };
                handle_value(&mut inv, flag, value, false, &mut unc);
                continue;
            }
            set_unc(Uncacheable::UnknownFlag, &mut unc);
            inv.key_args.push((arg.clone(), None));
            continue;
        }
        // A positional argument: the crate root.
        if inv.input.is_some() {
            set_unc(Uncacheable::UnknownFlag, &mut unc);
        }
        inv.input = Some(arg.clone());
    }
    if inv.input.is_none() && !inv.is_query {
        // `rustc --print cfg` and friends have no input either.
        inv.is_query = true;
    }
    classify(&mut inv, &mut unc);
    inv.uncacheable = unc;
    inv
}

fn handle_value(
    inv: &mut RustcInvocation,
    flag: &str,
    value: String,
    is_path: bool,
    unc: &mut Option<Uncacheable>,
) {
    let mut set = |u: Uncacheable| {
        if unc.is_none() {
            *unc = Some(u);
        }
    };
    match flag {
        "--crate-name" => {
            inv.crate_name = Some(value.clone());
        }
        "--crate-type" => {
            inv.crate_types.extend(value.split(',').map(str::to_string));
        }
        "--emit" => {
            for part in value.split(',') {
                let (kind, path) = match part.split_once('=') {
                    Some((k, p)) => (k, Some(p)),
                    None => (part, None),
                };
                if path.is_some() {
                    inv.emit.other = true;
                }
                match kind {
                    "dep-info" => inv.emit.dep_info = true,
                    "metadata" => inv.emit.metadata = true,
                    "link" => inv.emit.link = true,
                    _ => inv.emit.other = true,
                }
            }
        }
        "--out-dir" => {
            inv.out_dir = Some(PathBuf::from(value));
            return;
        }
        "-o" => {
            set(Uncacheable::UnsupportedEmit);
            return;
        }
        "--extern" => {
            let (name, path) = match value.split_once('=') {
                Some((n, p)) => (n.to_string(), Some(PathBuf::from(p))),
                None => (value.clone(), None),
            };
            inv.externs.push(Extern { name, path });
            return;
        }
        "--target" => {
            inv.target = Some(value.clone());
            // A target spec file: a path (normalized in the key like any), whose
            // contents rustc reads and the observer records.
            if value.ends_with(".json") {
                inv.key_args
                    .push((flag.to_string(), Some(KeyValue::Path(value))));
                return;
            }
        }
        "--print" | "--explain" => {
            inv.is_query = true;
        }
        "--sysroot" => inv.sysroot = Some(PathBuf::from(&value)),
        "--remap-path-prefix" | "--remap-path-scope" => {
            // The user's own remapping holds real paths: it stays in the key as written.
        }
        "--color" | "--diagnostic-width" => {
            // Presentation only; the stored messages are replayed as rustc rendered them.
            return;
        }
        "--json" => {
            // ANSI colour in rendered diagnostics is presentation only (see `replay`).
            let kept: Vec<&str> = value
                .split(',')
                .filter(|p| *p != "diagnostic-rendered-ansi")
                .collect();
            inv.key_args
                .push((flag.to_string(), Some(KeyValue::Plain(kept.join(",")))));
            return;
        }
        "-C" | "--codegen" => {
            let (opt, val) = match value.split_once('=') {
                Some((o, v)) => (o, Some(v)),
                None => (value.as_str(), None),
            };
            match opt {
                "incremental" => {
                    // Not part of the key: an incremental unit is looked up as if it were
                    // not incremental, and never stored (see `wrapper::run`).
                    inv.incremental = true;
                    return;
                }
                "extra-filename" => inv.extra_filename = val.unwrap_or_default().to_string(),
                "linker" => inv.linker = val.map(str::to_string),
                "link-arg" => inv.link_args.extend(val.map(str::to_string)),
                "link-args" => inv.link_args.extend(
                    val.unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string),
                ),
                "split-debuginfo" => inv.split_debuginfo = val.map(str::to_string),
                "save-temps" | "profile-use" | "profile-sample-use" | "profile-generate" => {
                    set(Uncacheable::UnsupportedCodegenOption)
                }
                _ => {}
            }
            inv.key_args
                .push(("-C".to_string(), Some(KeyValue::Plain(value))));
            return;
        }
        "-L" => {
            let (kind, path) = match value.split_once('=') {
                Some((k, p))
                    if ["dependency", "crate", "native", "framework", "all"].contains(&k) =>
                {
                    (k.to_string(), p.to_string())
                }
                _ => ("all".to_string(), value.clone()),
            };
            if kind == "dependency" {
                // Where cargo keeps dependencies: what rustc finds there is covered by
                // the `--extern`s (and, transitively, their keys) and, for units that
                // link, by the files the link read.
                inv.dependency_dirs.push(PathBuf::from(&path));
                return;
            }
            inv.search_paths.push((kind.clone(), PathBuf::from(&path)));
            inv.key_args
                .push((format!("-L{kind}"), Some(KeyValue::Path(path))));
            return;
        }
        "-l" => {
            parse_link_lib(inv, &value);
        }
        "--cfg" => inv.cfgs.push(value.clone()),
        _ => {}
    }
    let v = if is_path {
        KeyValue::Path(value)
    } else {
        KeyValue::Plain(value)
    };
    inv.key_args.push((flag.to_string(), Some(v)));
}

/// `-l [KIND[:MODIFIERS]=]NAME[:RENAME]`: records every library (for units that link)
/// and the static libraries that will be bundled (for rlibs).
fn parse_link_lib(inv: &mut RustcInvocation, value: &str) {
    let (kind_part, name_part) = match value.split_once('=') {
        Some((k, n)) => (Some(k), n),
        None => (None, value),
    };
    let (kind, modifiers) = match kind_part.map(|k| k.split_once(':').unwrap_or((k, ""))) {
        Some((k, m)) => (k, m),
        None => ("dylib", ""),
    };
    let mods: Vec<&str> = modifiers.split(',').collect();
    let name = name_part.split(':').next().unwrap_or(name_part).to_string();
    let verbatim = mods.contains(&"+verbatim");
    inv.link_libs.push(LinkLib {
        kind: kind.to_string(),
        name: name.clone(),
        verbatim,
    });
    if kind != "static" || mods.contains(&"-bundle") {
        return;
    }
    inv.static_libs.push(StaticLib { name, verbatim });
}

fn classify(inv: &mut RustcInvocation, unc: &mut Option<Uncacheable>) {
    if inv.is_query {
        return;
    }
    let kind = inv.kind();
    let not_cached = match kind {
        CrateKind::Dylib => Some(Uncacheable::Dylib),
        CrateKind::Cdylib => Some(Uncacheable::Cdylib),
        CrateKind::Staticlib => Some(Uncacheable::Staticlib),
        _ => None,
    };
    // The crate type explains more than any flag: report it first.
    if let Some(u) = not_cached {
        *unc = Some(u);
        return;
    }
    if unc.is_some() {
        return;
    }
    if inv.emit.other || !(inv.emit.metadata || inv.emit.link) {
        *unc = Some(Uncacheable::UnsupportedEmit);
    } else if inv.out_dir.is_none() || inv.crate_name.is_none() {
        *unc = Some(Uncacheable::UnknownFlag);
    } else if inv.links() && inv.emit.metadata {
        // Cargo never asks a linked unit for metadata; which files rustc would write
        // then is not something the cache knows.
        *unc = Some(Uncacheable::UnsupportedEmit);
    } else if inv.links() && inv.split_debuginfo.as_deref().is_some_and(|v| v != "off") {
        // Split debug info leaves `.dwo`/`.dwp` files next to the output that the entry
        // would not hold.
        *unc = Some(Uncacheable::UnsupportedCodegenOption);
    }
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

    /// `crate_name` + `extra_filename`: the stem cargo gives every output.
    pub fn stem(&self) -> String {
        format!(
            "{}{}",
            self.crate_name.as_deref().unwrap_or("unknown"),
            self.extra_filename
        )
    }

    /// True if this invocation runs the linker: a proc-macro, dylib, executable, build
    /// script or test harness with `--emit=link`. (`cargo check` of a binary only
    /// writes metadata, like a library.)
    pub fn links(&self) -> bool {
        self.emit.link
            && matches!(
                self.kind(),
                CrateKind::ProcMacro
                    | CrateKind::Dylib
                    | CrateKind::Cdylib
                    | CrateKind::Bin
                    | CrateKind::BuildScript
                    | CrateKind::Test
            )
    }

    /// The files a cacheable invocation writes (Linux naming for linked outputs).
    pub fn outputs(&self) -> Vec<Output> {
        if !self.links() {
            return self
                .lib_outputs()
                .into_iter()
                .map(|(role, path)| Output {
                    role,
                    path,
                    executable: false,
                })
                .collect();
        }
        let Some(dir) = &self.out_dir else {
            return Vec::new();
        };
        let stem = self.stem();
        let mut out = vec![match self.kind() {
            CrateKind::ProcMacro | CrateKind::Dylib | CrateKind::Cdylib => Output {
                role: "dylib",
                path: dir.join(format!("lib{stem}.so")),
                executable: true,
            },
            _ => Output {
                role: "executable",
                path: dir.join(&stem),
                executable: true,
            },
        }];
        if self.emit.dep_info {
            out.push(Output {
                role: "dep-info",
                path: dir.join(format!("{stem}.d")),
                executable: false,
            });
        }
        out
    }

    /// The files a library (rlib) invocation writes, as (role, path).
    pub fn lib_outputs(&self) -> Vec<(&'static str, PathBuf)> {
        let Some(dir) = &self.out_dir else {
            return Vec::new();
        };
        let stem = self.stem();
        let mut out = Vec::new();
        if self.emit.link {
            out.push(("rlib", dir.join(format!("lib{stem}.rlib"))));
        }
        if self.emit.metadata {
            out.push(("rmeta", dir.join(format!("lib{stem}.rmeta"))));
        }
        if self.emit.dep_info {
            out.push(("dep-info", dir.join(format!("{stem}.d"))));
        }
        out
    }

    /// The first option that chooses how the unit links beyond what a linker identity
    /// of `cc` covers: `-C linker=`, `-C link-arg(s)=` (a `-fuse-ld=` among them),
    /// `-C linker-flavor=`, `-C linker-features=`, `-C link-self-contained=`, and any
    /// `-Z` option about linking. `None`: the link is rustc's default through `cc`.
    pub fn link_option_beyond_cc(&self) -> Option<String> {
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let (flag, value) = if a == "-C" || a == "--codegen" || a == "-Z" {
                (a.as_str(), args.next().map(String::as_str))
            } else if let Some(v) = a.strip_prefix("--codegen=") {
                ("-C", Some(v))
            } else if let Some(v) = a.strip_prefix("-C") {
                ("-C", Some(v))
            } else if let Some(v) = a.strip_prefix("-Z") {
                ("-Z", Some(v))
            } else {
                continue;
            };
            let Some(value) = value else { continue };
            let opt = value.split_once('=').map_or(value, |(o, _)| o);
            let beyond = match flag {
                "-Z" => opt.contains("link"),
                _ => matches!(
                    opt,
                    "linker"
                        | "link-arg"
                        | "link-args"
                        | "linker-flavor"
                        | "linker-features"
                        | "link-self-contained"
                ),
            };
            if beyond {
                return Some(format!("{flag} {value}"));
            }
        }
        None
    }

    /// True when a `-C target-cpu=native` asks for the host's CPU (the last
    /// `target-cpu` wins, as in rustc).
    pub fn targets_native_cpu(&self) -> bool {
        let mut native = false;
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let value = if a == "-C" || a == "--codegen" {
                args.next().map(String::as_str)
            } else {
                a.strip_prefix("-C")
                    .or_else(|| a.strip_prefix("--codegen="))
            };
            if let Some(cpu) = value.and_then(|v| v.strip_prefix("target-cpu=")) {
                native = cpu == "native";
            }
        }
        native
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

    /// The profile's directory (`debug`, `release`): the parent of `--out-dir`'s `deps`
    /// (or `examples`, where cargo compiles examples), or of `build` for a build script
    /// (`debug/build/<pkg>-<hash>`) and for every unit of cargo's new layout
    /// (`debug/build/<pkg>/<hash>/out`, see `key::Layout`).
    pub fn profile_dir(&self) -> Option<String> {
        let dir = self.out_dir.as_ref()?;
        let name_up = |n: usize| dir.ancestors().nth(n).and_then(Path::file_name);
        let parent = if dir.file_name()? == "deps" || dir.file_name()? == "examples" {
            dir.parent()?
        } else if name_up(1) == Some("build".as_ref()) {
            dir.parent()?.parent()?
        } else if name_up(0) == Some("out".as_ref()) && name_up(3) == Some("build".as_ref()) {
            dir.ancestors().nth(4)?
        } else {
            dir
        };
        Some(parent.file_name()?.to_string_lossy().into_owned())
    }

    /// The dep-info file rustc writes, if asked for.
    pub fn depinfo_path(&self) -> Option<PathBuf> {
        if !self.emit.dep_info {
            return None;
        }
        Some(self.out_dir.as_ref()?.join(format!("{}.d", self.stem())))
    }

    /// The same invocation writing its outputs into `dir` (`--out-dir` replaced).
    pub fn with_out_dir(&self, dir: &Path) -> RustcInvocation {
        let dir = dir.to_string_lossy().into_owned();
        let mut args = Vec::with_capacity(self.args.len());
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == "--out-dir" {
                it.next();
                args.push(a.clone());
                args.push(dir.clone());
            } else if a.starts_with("--out-dir=") {
                args.push(format!("--out-dir={dir}"));
            } else {
                args.push(a.clone());
            }
        }
        parse_rustc_args(&args)
    }

    /// Takes `-C incremental` out of the command line: rustc then compiles as it would
    /// without it (the key never held it).
    pub fn drop_incremental(&mut self) {
        let mut kept = Vec::with_capacity(self.args.len());
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let value = if a == "-C" || a == "--codegen" {
                match args.next() {
                    Some(v) if v.starts_with("incremental=") => continue,
                    Some(v) => {
                        kept.push(a.clone());
                        v
                    }
                    None => a,
                }
            } else {
                a
            };
            let joined = ["-Cincremental=", "--codegen=incremental="]
                .iter()
                .any(|p| value.starts_with(p));
            if !joined {
                kept.push(value.clone());
            }
        }
        self.args = kept;
        self.incremental = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RustcInvocation {
        let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse_rustc_args(&args)
    }

    const LIB: &str = "--crate-name dep --edition=2024 dep/src/lib.rs --error-format=json \
        --json=diagnostic-rendered-ansi,artifacts,future-incompat --crate-type lib \
        --emit=dep-info,metadata,link -C embed-bitcode=no -C debuginfo=2 \
        -C metadata=05bd352a9f70e55a -C extra-filename=-9517d73897b5767e \
        --out-dir /t/debug/deps -L dependency=/t/debug/deps --extern itoa=/t/debug/deps/libitoa-1.rmeta";

    #[test]
    fn parses_a_cargo_lib_invocation() {
        let inv = parse(LIB);
        assert_eq!(inv.uncacheable, None);
        assert!(!inv.is_query);
        assert_eq!(inv.kind(), CrateKind::Lib);
        assert_eq!(inv.stem(), "dep-9517d73897b5767e");
        assert_eq!(inv.externs.len(), 1);
        let outs: Vec<_> = inv.lib_outputs().into_iter().map(|(r, _)| r).collect();
        assert_eq!(outs, ["rlib", "rmeta", "dep-info"]);
        let key = inv.key_args(|p| p.display().to_string());
        assert!(key.contains(&"--json=artifacts,future-incompat".to_string()));
        assert!(!key.iter().any(|a| a.contains("/t/debug")), "{key:?}");
    }

    #[test]
    fn classifies_units() {
        let inc = parse(&format!("{LIB} -C incremental=/t/inc"));
        assert!(inc.incremental);
        assert_eq!(inc.uncacheable, None);
        assert!(
            !inc.key_args(|p| p.display().to_string())
                .iter()
                .any(|a| a.contains("incremental"))
        );
        let linked = |s: &str| s.replace("--emit=dep-info,metadata,link", "--emit=dep-info,link");
        let pm = parse(&linked(
            &LIB.replace("--crate-type lib", "--crate-type proc-macro"),
        ));
        assert_eq!(pm.uncacheable, None);
        assert!(pm.links());
        let bs = parse(&linked(
            &LIB.replace("--crate-type lib", "--crate-type bin")
                .replace("--crate-name dep", "--crate-name build_script_build"),
        ));
        assert_eq!(bs.kind(), CrateKind::BuildScript);
        assert_eq!(bs.uncacheable, None);
        let unknown = parse(&format!("{LIB} --frobnicate"));
        assert_eq!(unknown.uncacheable, Some(Uncacheable::UnknownFlag));
        let test = parse(&linked(&format!("{LIB} --test")));
        assert_eq!(test.kind(), CrateKind::Test);
        assert_eq!(test.uncacheable, None);
        let asm = parse(&LIB.replace("--emit=dep-info,metadata,link", "--emit=asm"));
        assert_eq!(asm.uncacheable, Some(Uncacheable::UnsupportedEmit));
        let split = parse(&linked(&format!("{LIB} --test -C split-debuginfo=packed")));
        assert_eq!(
            split.uncacheable,
            Some(Uncacheable::UnsupportedCodegenOption)
        );
        let cdylib = parse(&LIB.replace("--crate-type lib", "--crate-type cdylib"));
        assert_eq!(cdylib.uncacheable, Some(Uncacheable::Cdylib));
    }

    #[test]
    fn incremental_can_be_dropped() {
        let mut inv = parse(&format!(
            "{LIB} -C incremental=/t/inc -Cincremental=/t/i2 -C opt-level=1"
        ));
        assert!(inv.incremental);
        let before = inv.key_args(|p| p.display().to_string());
        inv.drop_incremental();
        assert!(!inv.incremental);
        assert!(
            !inv.args.iter().any(|a| a.contains("incremental")),
            "{:?}",
            inv.args
        );
        assert!(
            inv.args
                .ends_with(&["-C".to_string(), "opt-level=1".to_string()])
        );
        let reparsed = parse_rustc_args(&inv.args);
        assert_eq!(reparsed.key_args(|p| p.display().to_string()), before);
    }

    #[test]
    fn linked_outputs_are_named_as_on_linux() {
        let bin = parse(
            &LIB.replace("--crate-type lib", "--crate-type bin")
                .replace("--emit=dep-info,metadata,link", "--emit=dep-info,link"),
        );
        let outs = bin.outputs();
        assert_eq!(
            outs[0].path,
            Path::new("/t/debug/deps/dep-9517d73897b5767e")
        );
        assert!(outs[0].executable);
        assert_eq!(outs[1].role, "dep-info");
        let pm = parse(
            &LIB.replace("--crate-type lib", "--crate-type proc-macro")
                .replace("--emit=dep-info,metadata,link", "--emit=dep-info,link"),
        );
        assert_eq!(
            pm.outputs()[0].path,
            Path::new("/t/debug/deps/libdep-9517d73897b5767e.so")
        );
        // `cargo check` of a binary writes metadata only: no linker involved.
        let check = parse(
            &LIB.replace("--crate-type lib", "--crate-type bin")
                .replace("--emit=dep-info,metadata,link", "--emit=dep-info,metadata"),
        );
        assert!(!check.links());
        assert_eq!(check.uncacheable, None);
        assert_eq!(check.outputs()[0].role, "rmeta");
    }

    #[test]
    fn a_non_ascii_short_flag_is_an_unknown_flag() {
        let inv = parse(&format!("{LIB} -é"));
        assert_eq!(inv.uncacheable, Some(Uncacheable::UnknownFlag));
    }

    #[test]
    fn probes_are_queries() {
        assert!(parse("-vV").is_query);
        assert!(parse("- --crate-name ___ --print=file-names --crate-type lib").is_query);
    }

    #[test]
    fn static_libs_are_recorded() {
        let inv = parse(&format!(
            "{LIB} -l static=foo -l dylib=bar -l static:-bundle=baz"
        ));
        assert_eq!(inv.static_libs.len(), 1);
        assert_eq!(inv.static_libs[0].name, "foo");
        let kinds: Vec<&str> = inv.link_libs.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(kinds, ["static", "dylib", "static"]);
        let plain = parse(&format!("{LIB} -l z -C link-arg=-Wl,-O1"));
        assert_eq!(plain.link_libs[0].kind, "dylib");
        assert_eq!(plain.link_libs[0].name, "z");
        assert_eq!(plain.link_args, ["-Wl,-O1"]);
    }

    #[test]
    fn link_options_beyond_cc_are_named() {
        assert_eq!(parse(LIB).link_option_beyond_cc(), None);
        // Options that do not choose the link.
        assert_eq!(
            parse(&format!(
                "{LIB} -C opt-level=3 -C link-dead-code -Z unstable-options"
            ))
            .link_option_beyond_cc(),
            None
        );
        for (extra, named) in [
            ("-C linker=clang", "-C linker=clang"),
            ("-Clink-arg=-fuse-ld=mold", "-C link-arg=-fuse-ld=mold"),
            ("-C link-args=-Wl,-O1", "-C link-args=-Wl,-O1"),
            (
                "-Clink-self-contained=+linker",
                "-C link-self-contained=+linker",
            ),
            (
                "--codegen=linker-flavor=gnu-lld-cc",
                "-C linker-flavor=gnu-lld-cc",
            ),
            ("-Z linker-features=-lld", "-Z linker-features=-lld"),
            ("-Zpre-link-arg=x.o", "-Z pre-link-arg=x.o"),
        ] {
            assert_eq!(
                parse(&format!("{LIB} {extra}")).link_option_beyond_cc(),
                Some(named.to_string()),
                "{extra}"
            );
        }
    }
}
