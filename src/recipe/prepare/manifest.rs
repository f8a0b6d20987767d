//! A package's manifest as the recipe holds it: its version masked, path dependencies
//! on members without a version requirement, and its targets listed explicitly (those
//! the recipe keeps), each with the placeholder source it needs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cargo_metadata::{Package, Target, TargetKind};
use toml::{Table, Value};

use super::paths::{canonical, relative, slash};
use crate::errors::CliError;
use crate::recipe::format::PlaceholderKind;

/// The version every workspace member gets in the recipe.
pub(super) const MASKED_VERSION: &str = "0.0.0";

/// The manifest tables that declare dependencies.
const DEP_TABLES: &[&str] = &[
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
];

pub(super) fn is_kind(t: &Target, k: &TargetKind) -> bool {
    t.kind.contains(k)
}

pub(super) fn is_lib(t: &Target) -> bool {
    t.kind.iter().any(|k| {
        matches!(
            k,
            TargetKind::Lib
                | TargetKind::RLib
                | TargetKind::DyLib
                | TargetKind::CDyLib
                | TargetKind::StaticLib
                | TargetKind::ProcMacro
        )
    })
}

/// Which targets of a package the recipe keeps.
pub(super) struct TargetFilter {
    /// `None`: all. `Some(None)`: libraries and build scripts (a dependency of the
    /// selected binary). `Some(Some(bin))`: those and that binary.
    pub(super) bin: Option<Option<String>>,
    /// The package has no library: keep its binaries (a package needs a target; a root
    /// package is kept whether the selected binary needs it or not).
    pub(super) all_bins: bool,
}

impl TargetFilter {
    pub(super) fn keeps(&self, t: &Target) -> bool {
        match &self.bin {
            None => true,
            Some(bin) => {
                is_lib(t)
                    || is_kind(t, &TargetKind::CustomBuild)
                    || (is_kind(t, &TargetKind::Bin)
                        && (bin.as_deref() == Some(t.name.as_str())
                            || (bin.is_none() && self.all_bins)))
            }
        }
    }
}

pub(super) struct NormalizeCtx<'a> {
    pub(super) manifest: &'a Path,
    /// The manifest's directory.
    pub(super) dir: &'a Path,
    /// The workspace members' directories (canonical): path dependencies on them lose
    /// their version requirement, since their versions are masked.
    pub(super) member_dirs: &'a HashSet<PathBuf>,
    pub(super) mask_version: bool,
    /// `--bin`: the members the workspace keeps.
    pub(super) members_override: Option<&'a [String]>,
}

/// The manifest as the recipe holds it, and the placeholders its targets need (paths
/// relative to the package directory).
pub(super) fn normalize_manifest(
    text: &str,
    ctx: &NormalizeCtx<'_>,
    package: Option<(&Package, &TargetFilter)>,
) -> Result<(String, Vec<(PathBuf, PlaceholderKind)>), CliError> {
    let invalid = |message: String| CliError::PrepareRead {
        path: ctx.manifest.to_path_buf(),
        message,
    };
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    let mut placeholders = Vec::new();

    if let Some(Value::Table(pkg)) = doc.get_mut("package")
        && ctx.mask_version
        && matches!(pkg.get("version"), Some(Value::String(_)))
    {
        pkg.insert("version".into(), MASKED_VERSION.into());
    }
    if let Some(Value::Table(ws)) = doc.get_mut("workspace") {
        if let Some(Value::Table(wp)) = ws.get_mut("package")
            && matches!(wp.get("version"), Some(Value::String(_)))
        {
            wp.insert("version".into(), MASKED_VERSION.into());
        }
        if let Some(Value::Table(deps)) = ws.get_mut("dependencies") {
            unversion_member_deps(deps, ctx);
        }
        if let Some(members) = ctx.members_override {
            ws.insert(
                "members".into(),
                Value::Array(members.iter().map(|m| Value::from(m.as_str())).collect()),
            );
            ws.remove("default-members");
        }
    }
    for name in DEP_TABLES {
        if let Some(Value::Table(deps)) = doc.get_mut(*name) {
            unversion_member_deps(deps, ctx);
        }
    }
    if let Some(Value::Table(targets)) = doc.get_mut("target") {
        for (_, t) in targets.iter_mut() {
            if let Value::Table(t) = t {
                for name in DEP_TABLES {
                    if let Some(Value::Table(deps)) = t.get_mut(*name) {
                        unversion_member_deps(deps, ctx);
                    }
                }
            }
        }
    }

    if let Some((p, filter)) = package {
        let old = |doc: &Table, table: &str, name: &str| -> Table {
            match doc.get(table) {
                Some(Value::Table(t)) if table == "lib" => t.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_table)
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
                    .cloned()
                    .unwrap_or_default(),
                _ => Table::new(),
            }
        };
        let mut lib: Option<Table> = None;
        let mut arrays: Vec<(&str, Vec<Value>)> = ["bin", "example", "test", "bench"]
            .into_iter()
            .map(|k| (k, Vec::new()))
            .collect();
        let mut build: Option<PathBuf> = None;
        let mut sorted: Vec<&Target> = p.targets.iter().filter(|t| filter.keeps(t)).collect();
        sorted.sort_by(|a, b| (&a.name, &a.src_path).cmp(&(&b.name, &b.src_path)));
        for t in sorted {
            let rel = relative(t.src_path.as_std_path(), ctx.dir);
            if is_kind(t, &TargetKind::CustomBuild) {
                placeholders.push((rel.clone(), PlaceholderKind::Main));
                build = Some(rel);
                continue;
            }
            let table_name = if is_lib(t) {
                "lib"
            } else if is_kind(t, &TargetKind::Bin) {
                "bin"
            } else if is_kind(t, &TargetKind::Example) {
                "example"
            } else if is_kind(t, &TargetKind::Test) {
                "test"
            } else if is_kind(t, &TargetKind::Bench) {
                "bench"
            } else {
                continue;
            };
            let mut entry = old(&doc, table_name, &t.name);
            entry.insert("name".into(), t.name.clone().into());
            entry.insert("path".into(), slash(&rel).into());
            // cargo deprecates a target edition that repeats the package's.
            if t.edition != p.edition {
                entry.insert("edition".into(), t.edition.as_str().into());
            } else {
                entry.remove("edition");
            }
            if !t.required_features.is_empty() {
                entry.insert(
                    "required-features".into(),
                    Value::Array(
                        t.required_features
                            .iter()
                            .map(|f| f.as_str().into())
                            .collect(),
                    ),
                );
            }
            if table_name == "lib" {
                if t.kind.contains(&TargetKind::ProcMacro) {
                    entry.remove("crate-type");
                    entry.remove("crate_type");
                    entry.insert("proc-macro".into(), true.into());
                } else {
                    entry.remove("crate_type");
                    entry.insert(
                        "crate-type".into(),
                        Value::Array(t.crate_types.iter().map(|c| c.to_string().into()).collect()),
                    );
                }
                placeholders.push((rel, PlaceholderKind::Lib));
                lib = Some(entry);
            } else {
                placeholders.push((rel, PlaceholderKind::Main));
                if let Some((_, list)) = arrays.iter_mut().find(|(k, _)| *k == table_name) {
                    list.push(Value::Table(entry));
                }
            }
        }
        match lib {
            Some(l) => doc.insert("lib".into(), Value::Table(l)),
            None => doc.remove("lib"),
        };
        for (k, list) in arrays {
            if list.is_empty() {
                doc.remove(k);
            } else {
                doc.insert(k.into(), Value::Array(list));
            }
        }
        if let Some(Value::Table(pkg)) = doc.get_mut("package") {
            for auto in [
                "autolib",
                "autobins",
                "autoexamples",
                "autotests",
                "autobenches",
            ] {
                pkg.insert(auto.into(), false.into());
            }
            match build {
                Some(b) => pkg.insert("build".into(), slash(&b).into()),
                None => pkg.insert("build".into(), false.into()),
            };
        }
    }
    let out = toml::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
    Ok((out, placeholders))
}

/// Path dependencies on workspace members lose their version requirement (the members'
/// versions are masked).
fn unversion_member_deps(deps: &mut Table, ctx: &NormalizeCtx<'_>) {
    for (_, d) in deps.iter_mut() {
        if let Value::Table(d) = d
            && let Some(path) = d.get("path").and_then(Value::as_str)
            && ctx.member_dirs.contains(&canonical(&ctx.dir.join(path)))
        {
            d.remove("version");
        }
    }
}
