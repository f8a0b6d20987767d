//! Reading the workspace into a [`Recipe`]: `cargo metadata`, the local packages the
//! recipe keeps (all, or those a `--bin` reaches), the members whose versions are
//! masked, and the files next to the root that steer cargo and rustup.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};
use toml::{Table, Value};

use super::lockfile::rewrite_lockfile;
use super::manifest::{NormalizeCtx, TargetFilter, is_kind, is_lib, normalize_manifest};
use super::paths::{canonical, relative, slash};
use crate::errors::CliError;
use crate::recipe::format::{
    FORMAT_VERSION, LocalPackage, Placeholder, Recipe, RecipeFile, SelectedBin,
};

/// Files next to the workspace root that steer how anything is built, copied as they are.
const ROOT_FILES: &[&str] = &[
    ".cargo/config.toml",
    ".cargo/config",
    "rust-toolchain.toml",
    "rust-toolchain",
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
