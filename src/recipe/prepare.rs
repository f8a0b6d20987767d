//! Building a [`Recipe`] from a workspace: `cargo metadata` for the local packages and
//! their targets, their manifests normalised, the lockfile with the members' versions
//! masked, and the files that steer cargo and rustup.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand, Package, Target, TargetKind};
use toml::{Table, Value};

use super::format::{
    FORMAT_VERSION, LocalPackage, Placeholder, PlaceholderKind, Recipe, RecipeFile, SelectedBin,
};
use crate::errors::CliError;

/// The version every workspace member gets in the recipe.
pub const MASKED_VERSION: &str = "0.0.0";

/// Files next to the workspace root that steer how anything is built, copied as they are.
const ROOT_FILES: &[&str] = &[
    ".cargo/config.toml",
    ".cargo/config",
    "rust-toolchain.toml",
    "rust-toolchain",
];

/// The manifest tables that declare dependencies.
const DEP_TABLES: &[&str] = &[
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
];

/// What `cargo xcache prepare` was asked for.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    pub cargo: PathBuf,
    /// The directory cargo runs in.
    pub cwd: PathBuf,
    pub manifest_path: Option<PathBuf>,
    /// Keep only what this binary needs.
    pub bin: Option<String>,
    /// `--locked`, `--frozen`, `--offline`, passed to `cargo metadata`.
    pub cargo_flags: Vec<String>,
}

/// Reads the workspace and returns its recipe.
pub fn prepare(opts: &PrepareOptions) -> Result<Recipe, CliError> {
    let mut cmd = MetadataCommand::new();
    cmd.cargo_path(&opts.cargo).current_dir(&opts.cwd);
    if let Some(m) = &opts.manifest_path {
        cmd.manifest_path(m);
    }
    cmd.other_options(opts.cargo_flags.clone());
    let meta = cmd
        .exec()
        .map_err(|e| crate::errors::metadata_error(&e, opts.manifest_path.as_deref(), &opts.cwd))?;
    from_metadata(&meta, opts.bin.as_deref())
}

fn from_metadata(meta: &Metadata, bin: Option<&str>) -> Result<Recipe, CliError> {
    let root = meta.workspace_root.as_std_path().to_path_buf();
    let members: HashSet<&cargo_metadata::PackageId> = meta.workspace_members.iter().collect();
    let local: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| p.source.is_none())
        .collect();
    let dir_of = |p: &Package| -> PathBuf {
        p.manifest_path
            .parent()
            .map(|d| d.as_std_path().to_path_buf())
            .unwrap_or_default()
    };
    let by_dir: HashMap<PathBuf, &Package> =
        local.iter().map(|p| (canonical(&dir_of(p)), *p)).collect();

    // `--bin`: the member owning it, and every local package it reaches (through any
    // dependency kind: cargo reads the manifests of dev-dependencies too).
    let (kept, selected) = match bin {
        None => (local.clone(), None),
        Some(name) => {
            let owner = meta
                .packages
                .iter()
                .filter(|p| members.contains(&p.id))
                .find(|p| {
                    p.targets
                        .iter()
                        .any(|t| is_kind(t, &TargetKind::Bin) && t.name == name)
                })
                .ok_or_else(|| CliError::UnknownBin {
                    name: name.to_string(),
                })?;
            let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
            let mut queue = VecDeque::from([owner]);
            // A root package is always a member: the workspace cannot leave it out.
            if let Some(root_pkg) = local
                .iter()
                .find(|p| canonical(&dir_of(p)) == canonical(&root))
            {
                queue.push_back(root_pkg);
            }
            let mut kept = Vec::new();
            while let Some(p) = queue.pop_front() {
                if !seen.insert(canonical(&dir_of(p))) {
                    continue;
                }
                kept.push(p);
                for d in &p.dependencies {
                    if let Some(path) = &d.path
                        && let Some(dep) = by_dir.get(&canonical(path.as_std_path()))
                    {
                        queue.push_back(dep);
                    }
                }
            }
            let selected = SelectedBin {
                name: name.to_string(),
                package: owner.name.to_string(),
            };
            (kept, Some(selected))
        }
    };
    // Members that `[patch]` or `[replace]` put in place of a registry crate keep their
    // version: the patch must still match what depends on it.
    let patched = patched_dirs(&root)?;
    let masked_pkgs: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| members.contains(&p.id) && !patched.contains(&canonical(&dir_of(p))))
        .collect();
    let member_dirs: HashSet<PathBuf> = masked_pkgs.iter().map(|p| canonical(&dir_of(p))).collect();

    // `--bin`: the members the workspace keeps (a root package is one without saying).
    let kept_members: Option<Vec<String>> = selected.as_ref().map(|_| {
        let mut dirs: Vec<String> = kept
            .iter()
            .filter(|k| members.contains(&k.id))
            .map(|k| slash(&relative(&dir_of(k), &root)))
            .filter(|d| !d.is_empty())
            .collect();
        dirs.sort();
        dirs
    });
    let mut files = Vec::new();
    let mut placeholders = Vec::new();
    let mut local_packages = Vec::new();
    let mut root_is_package = false;
    for p in &kept {
        let dir = dir_of(p);
        let rel_dir = relative(&dir, &root);
        root_is_package |= rel_dir == Path::new("");
        let targets = TargetFilter {
            bin: selected
                .as_ref()
                .map(|s| (s.package == p.name.as_str()).then(|| s.name.clone())),
            all_bins: !p.targets.iter().any(is_lib),
        };
        let manifest = p.manifest_path.as_std_path();
        let text = read(manifest)?;
        let ctx = NormalizeCtx {
            manifest,
            dir: &dir,
            member_dirs: &member_dirs,
            mask_version: member_dirs.contains(&canonical(&dir)),
            members_override: kept_members.as_deref(),
        };
        let (normalised, ph) = normalize_manifest(&text, &ctx, Some((p, &targets)))?;
        files.push(RecipeFile {
            path: slash(&rel_dir.join("Cargo.toml")),
            contents: normalised,
        });
        placeholders.extend(ph.into_iter().map(|(path, kind)| Placeholder {
            path: slash(&rel_dir.join(path)),
            kind,
        }));
        local_packages.push(LocalPackage {
            name: p.name.to_string(),
            dir: if rel_dir.as_os_str().is_empty() {
                ".".into()
            } else {
                slash(&rel_dir)
            },
            targets: {
                let mut names: Vec<String> = p
                    .targets
                    .iter()
                    .filter(|t| targets.keeps(t))
                    .map(|t| t.name.clone())
                    .collect();
                names.sort();
                names
            },
        });
    }
    if !root_is_package {
        // A virtual manifest: the workspace's own table, normalised the same way.
        let manifest = root.join("Cargo.toml");
        let text = read(&manifest)?;
        let ctx = NormalizeCtx {
            manifest: &manifest,
            dir: &root,
            member_dirs: &member_dirs,
            mask_version: true,
            members_override: kept_members.as_deref(),
        };
        let (normalised, _) = normalize_manifest(&text, &ctx, None)?;
        files.push(RecipeFile {
            path: "Cargo.toml".into(),
            contents: normalised,
        });
    }

    let lock_path = root.join("Cargo.lock");
    if lock_path.is_file() {
        let text = read(&lock_path)?;
        let masked: HashSet<&str> = masked_pkgs.iter().map(|p| p.name.as_str()).collect();
        let keep: Option<HashSet<&str>> = selected
            .as_ref()
            .map(|_| kept.iter().map(|p| p.name.as_str()).collect());
        files.push(RecipeFile {
            path: "Cargo.lock".into(),
            contents: rewrite_lockfile(&text, &masked, keep.as_ref()),
        });
    }
    for f in ROOT_FILES {
        let p = root.join(f);
        if p.is_file() {
            files.push(RecipeFile {
                path: (*f).to_string(),
                contents: read(&p)?,
            });
        }
    }

    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    placeholders.sort();
    placeholders.dedup_by(|a, b| a.path == b.path);
    local_packages.sort();
    Ok(Recipe {
        format_version: FORMAT_VERSION,
        files,
        placeholders,
        local_packages,
        bin: selected,
    })
}

/// The directories the root manifest's `[patch.*]` and `[replace]` entries point at.
fn patched_dirs(root: &Path) -> Result<HashSet<PathBuf>, CliError> {
    let manifest = root.join("Cargo.toml");
    let doc: Table =
        read(&manifest)?
            .parse()
            .map_err(|e: toml::de::Error| CliError::PrepareRead {
                path: manifest.clone(),
                message: e.to_string(),
            })?;
    let mut out = HashSet::new();
    let mut tables: Vec<&Table> = Vec::new();
    if let Some(Value::Table(patch)) = doc.get("patch") {
        tables.extend(patch.values().filter_map(Value::as_table));
    }
    if let Some(Value::Table(replace)) = doc.get("replace") {
        tables.push(replace);
    }
    for t in tables {
        for dep in t.values() {
            if let Some(path) = dep.get("path").and_then(Value::as_str) {
                out.insert(canonical(&root.join(path)));
            }
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::PrepareRead {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The path with symlinks resolved when it exists; as given otherwise.
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `path` relative to `base`, with `..` where it lies outside.
fn relative(path: &Path, base: &Path) -> PathBuf {
    let path = canonical(path);
    let base = canonical(base);
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// A relative path with `/` separators, as the recipe stores it.
fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn is_kind(t: &Target, k: &TargetKind) -> bool {
    t.kind.contains(k)
}

fn is_lib(t: &Target) -> bool {
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
struct TargetFilter {
    /// `None`: all. `Some(None)`: libraries and build scripts (a dependency of the
    /// selected binary). `Some(Some(bin))`: those and that binary.
    bin: Option<Option<String>>,
    /// The package has no library: keep its binaries (a package needs a target; a root
    /// package is kept whether the selected binary needs it or not).
    all_bins: bool,
}

impl TargetFilter {
    fn keeps(&self, t: &Target) -> bool {
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

struct NormalizeCtx<'a> {
    manifest: &'a Path,
    /// The manifest's directory.
    dir: &'a Path,
    /// The workspace members' directories (canonical): path dependencies on them lose
    /// their version requirement, since their versions are masked.
    member_dirs: &'a HashSet<PathBuf>,
    mask_version: bool,
    /// `--bin`: the members the workspace keeps.
    members_override: Option<&'a [String]>,
}

/// The manifest as the recipe holds it, and the placeholders its targets need (paths
/// relative to the package directory).
fn normalize_manifest(
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

/// The lockfile with the masked packages' versions replaced (in their entries and in the
/// dependency lists naming them), and, when `keep` is given, only the entries reachable
/// from those local packages. Edited as text: `--locked` compares cargo's rendering
/// line by line.
pub(super) fn rewrite_lockfile(
    text: &str,
    masked: &HashSet<&str>,
    keep: Option<&HashSet<&str>>,
) -> String {
    struct Block<'a> {
        lines: Vec<&'a str>,
        is_package: bool,
        name: String,
        version: String,
        source: Option<String>,
    }
    let mut head: Vec<&str> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            blocks.push(Block {
                lines: vec![line],
                is_package: line == "[[package]]",
                name: String::new(),
                version: String::new(),
                source: None,
            });
            continue;
        }
        let Some(b) = blocks.last_mut() else {
            head.push(line);
            continue;
        };
        b.lines.push(line);
        if let Some(v) = line.strip_prefix("name = ") {
            b.name = v.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("version = ") {
            b.version = v.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("source = ") {
            b.source = Some(v.trim_matches('"').to_string());
        }
    }
    // The local entries whose versions are masked: name -> old version.
    let old: HashMap<String, String> = blocks
        .iter()
        .filter(|b| b.is_package && b.source.is_none() && masked.contains(b.name.as_str()))
        .map(|b| (b.name.clone(), b.version.clone()))
        .collect();
    // A dependency entry ` "name"`, ` "name version"`, ` "name version (source)"`.
    let dep_of = |line: &str| -> Option<(String, Option<String>, Option<String>)> {
        let inner = line
            .trim()
            .trim_end_matches(',')
            .strip_prefix('"')?
            .strip_suffix('"')?;
        let mut parts = inner.splitn(3, ' ');
        let name = parts.next()?.to_string();
        let version = parts.next().map(str::to_string);
        let source = parts
            .next()
            .map(|s| s.trim_start_matches('(').trim_end_matches(')').to_string());
        Some((name, version, source))
    };

    let keep_block: Vec<bool> = match keep {
        None => vec![true; blocks.len()],
        Some(keep) => {
            let mut kept = vec![false; blocks.len()];
            let mut queue: VecDeque<usize> = blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    b.is_package && b.source.is_none() && keep.contains(b.name.as_str())
                })
                .map(|(i, _)| i)
                .collect();
            while let Some(i) = queue.pop_front() {
                if kept[i] {
                    continue;
                }
                kept[i] = true;
                let mut in_deps = false;
                for line in &blocks[i].lines {
                    if line.starts_with("dependencies = [") {
                        in_deps = true;
                        continue;
                    }
                    if in_deps && line.starts_with(']') {
                        in_deps = false;
                    }
                    if !in_deps {
                        continue;
                    }
                    if let Some((name, version, source)) = dep_of(line) {
                        for (j, b) in blocks.iter().enumerate() {
                            let fits = b.is_package
                                && b.name == name
                                && version.as_ref().is_none_or(|v| *v == b.version)
                                && source.as_ref().is_none_or(|s| b.source.as_ref() == Some(s));
                            if fits && !kept[j] {
                                queue.push_back(j);
                            }
                        }
                    }
                }
            }
            // Sections that are not packages (`[metadata]`, `[[patch.unused]]`) stay.
            for (k, b) in kept.iter_mut().zip(&blocks) {
                *k |= !b.is_package;
            }
            kept
        }
    };

    let mut out = String::with_capacity(text.len());
    for line in &head {
        out.push_str(line);
        out.push('\n');
    }
    for (b, keep) in blocks.iter().zip(keep_block) {
        if !keep {
            continue;
        }
        let masked_entry = b.is_package && b.source.is_none() && old.contains_key(&b.name);
        let mut in_deps = false;
        for line in &b.lines {
            if masked_entry && line.starts_with("version = ") {
                out.push_str(&format!("version = \"{MASKED_VERSION}\"\n"));
                continue;
            }
            if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps
                && let Some((name, Some(version), None)) = dep_of(line)
                && old.get(&name) == Some(&version)
            {
                out.push_str(&format!(" \"{name} {MASKED_VERSION}\",\n"));
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    // Dropped blocks leave their neighbours' blank lines doubled or missing at the end;
    // cargo renders exactly one blank line between blocks and none at the end.
    let mut tidy = String::with_capacity(out.len());
    let mut blank = false;
    for line in out.lines() {
        if line.is_empty() {
            blank = true;
            continue;
        }
        if blank && line.starts_with('[') && !tidy.is_empty() {
            tidy.push('\n');
        }
        blank = false;
        tidy.push_str(line);
        tidy.push('\n');
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = \"app\"
version = \"0.3.1\"
dependencies = [
 \"core 0.3.1\",
 \"libc\",
]

[[package]]
name = \"core\"
version = \"0.3.1\"

[[package]]
name = \"core\"
version = \"9.0.0\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
checksum = \"00\"

[[package]]
name = \"libc\"
version = \"0.2.191\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
checksum = \"65\"

[[package]]
name = \"tools\"
version = \"1.0.0\"
dependencies = [
 \"core 9.0.0\",
]
";

    #[test]
    fn lockfile_masks_member_versions_and_keeps_the_rest() {
        let masked: HashSet<&str> = ["app", "core", "tools"].into();
        let out = rewrite_lockfile(LOCK, &masked, None);
        assert!(out.contains("name = \"app\"\nversion = \"0.0.0\""), "{out}");
        assert!(out.contains(" \"core 0.0.0\",\n"), "{out}");
        assert!(out.contains(" \"core 9.0.0\",\n"), "{out}");
        assert!(
            out.contains("name = \"core\"\nversion = \"9.0.0\"\nsource"),
            "{out}"
        );
        assert!(
            out.contains("name = \"tools\"\nversion = \"0.0.0\""),
            "{out}"
        );
        assert_eq!(out.lines().count(), LOCK.lines().count());
        assert!(!out.ends_with("\n\n"));
    }

    #[test]
    fn lockfile_keeps_what_the_selection_reaches() {
        let masked: HashSet<&str> = ["app", "core", "tools"].into();
        let keep: HashSet<&str> = ["app", "core"].into();
        let out = rewrite_lockfile(LOCK, &masked, Some(&keep));
        assert!(out.contains("name = \"libc\""), "{out}");
        assert!(!out.contains("name = \"tools\""), "{out}");
        assert!(!out.contains("9.0.0"), "{out}");
        assert!(!out.contains("\n\n\n") && !out.ends_with("\n\n"), "{out}");
    }

    #[test]
    fn relative_paths_climb_out() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/d")),
            PathBuf::from("../b/c")
        );
        assert_eq!(
            relative(Path::new("/a/d"), Path::new("/a/d")),
            PathBuf::new()
        );
    }
}
