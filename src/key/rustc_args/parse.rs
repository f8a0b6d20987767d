//! Parsing one rustc command line ([`parse_rustc_args`]): the flags it knows, each
//! value recorded where the cache needs it, and why the invocation cannot be cached
//! as far as its arguments tell.

use std::path::PathBuf;

use super::invocation::{CrateKind, Extern, KeyValue, LinkLib, RustcInvocation, StaticLib};
use crate::reason::Uncacheable;

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
    uncacheable_by_kind(&mut inv, &mut unc);
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

fn uncacheable_by_kind(inv: &mut RustcInvocation, unc: &mut Option<Uncacheable>) {
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
