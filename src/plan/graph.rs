//! What the build will compile, read before cargo starts: cargo_metadata for the
//! workspace, guppy's cargo simulation for the packages and features. Main type:
//! [`BuildPlan`].
//!
//! The plan is an estimate used for progress and the report; the wrapper never trusts
//! it for correctness (guppy does not model profiles, nor when cargo merges host and
//! target units).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use guppy::graph::cargo::{CargoOptions, CargoResolverVersion};
use guppy::graph::feature::{StandardFeatures, named_feature_filter};
use guppy::graph::{BuildTargetId, BuildTargetKind, PackageGraph};
use guppy::platform::{Platform, PlatformSpec, TargetFeatures};

use crate::errors::{CliError, metadata_error};

/// The cargo arguments that decide what gets built.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub manifest_path: Option<PathBuf>,
    pub packages: Vec<String>,
    pub workspace: bool,
    pub exclude: Vec<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub target: Option<String>,
    pub target_dir: Option<PathBuf>,
    pub release: bool,
    pub profile: Option<String>,
    /// The command builds test, bench or example targets: the selected members'
    /// dev-dependencies are compiled too.
    pub dev: bool,
}

impl Selection {
    /// The directory cargo names after the profile (`dev` builds into `debug`).
    pub fn profile_dir(&self) -> String {
        match self.profile.as_deref() {
            Some("dev") | Some("test") => "debug".into(),
            Some("bench") => "release".into(),
            Some(p) => p.to_string(),
            None if self.release => "release".into(),
            None => "debug".into(),
        }
    }
}

/// One package the build is expected to compile.
#[derive(Clone, Debug)]
pub struct PlannedPackage {
    pub name: String,
    pub version: String,
    pub workspace_member: bool,
    pub build_script: bool,
    /// Built for the host (proc-macros, build dependencies).
    pub host: bool,
    /// The directory holding the package's Cargo.toml.
    pub manifest_dir: PathBuf,
    /// The library target: crate name and kind (`lib` or `proc-macro`).
    pub lib: Option<(String, &'static str)>,
    /// Enabled named features, sorted.
    pub features: Vec<String>,
    /// Crate names of the binary targets of a workspace member (target side only).
    pub bins: Vec<String>,
    /// The package is one the command selected (`-p`, `--workspace`, default members).
    pub selected: bool,
    /// Crate names of a workspace member's integration tests, benches and examples
    /// (target side only).
    pub tests: Vec<String>,
    pub benches: Vec<String>,
    pub examples: Vec<String>,
    /// Crate names of the tests and benches the manifest builds without a test harness
    /// (`harness = false`): cargo compiles them as plain executables.
    pub no_harness: Vec<String>,
}

/// What `cargo build` with a selection will compile.
#[derive(Clone, Debug)]
pub struct BuildPlan {
    pub workspace_root: PathBuf,
    /// The workspace members' names, sorted: the workspace's identity in the remote index.
    pub workspace_members: Vec<String>,
    /// Where cargo puts the final artifacts (and this program its report).
    pub target_dir: PathBuf,
    /// Where cargo keeps every unit and its records (`build.build-dir`, cargo 1.91 and
    /// later): the target dir unless configured apart. Seeding plants here, and keys
    /// name it as the target root.
    pub build_dir: PathBuf,
    pub packages: Vec<PlannedPackage>,
}

impl BuildPlan {
    /// Roughly how many rustc invocations the build makes: one per package and side,
    /// plus one per build script.
    pub fn expected_units(&self) -> usize {
        self.packages
            .iter()
            .map(|p| 1 + usize::from(p.build_script))
            .sum()
    }
}

/// Reads the workspace and simulates cargo's resolution for `sel`. `wrapper` is the
/// rustc wrapper the build will run with: `cargo metadata` probes the compiler too, and
/// with the same wrapper its answers and the build's share cargo's probe cache
/// (seeding's `RustcInfo`) instead of each throwing the other's away.
pub fn plan(
    sel: &Selection,
    cargo: &Path,
    cwd: &Path,
    wrapper: Option<&Path>,
) -> Result<BuildPlan, CliError> {
    let merr = |message: String| CliError::Metadata {
        manifest: sel.manifest_path.clone(),
        message,
    };
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.cargo_path(cargo).current_dir(cwd);
    if let Some(w) = wrapper {
        cmd.env("RUSTC_WRAPPER", w);
    }
    if let Some(m) = &sel.manifest_path {
        cmd.manifest_path(m);
    }
    let metadata = cmd
        .exec()
        .map_err(|e| metadata_error(&e, sel.manifest_path.as_deref(), cwd))?;
    let json = serde_json::to_string(&metadata).map_err(|e| merr(e.to_string()))?;
    let graph = PackageGraph::from_json(json).map_err(|e| merr(e.to_string()))?;

    let workspace_root = metadata.workspace_root.clone().into_std_path_buf();
    let target_dir = match &sel.target_dir {
        Some(d) => cwd.join(d),
        None => metadata.target_directory.clone().into_std_path_buf(),
    };
    // cargo reports the build dir with its templates resolved; the same as the target
    // dir when none is configured, and then it follows `--target-dir`, which `cargo
    // metadata` was not given.
    let build_dir = match &metadata.build_directory {
        Some(b) if *b != metadata.target_directory => b.clone().into_std_path_buf(),
        _ => target_dir.clone(),
    };

    let workspace = graph.workspace();
    let initial_names: Vec<String> = if !sel.packages.is_empty() {
        sel.packages.clone()
    } else if sel.workspace {
        workspace
            .iter()
            .map(|p| p.name().to_string())
            .filter(|n| !sel.exclude.contains(n))
            .collect()
    } else {
        metadata
            .workspace_default_members
            .iter()
            .filter_map(|id| metadata.packages.iter().find(|p| &p.id == id))
            .map(|p| p.name.to_string())
            .collect()
    };
    // `-p` may name any package of the graph (`-p serde`, `-p serde@1.0.219`), as cargo
    // allows; a name that is not there is cargo's error, reported as today.
    let mut ids = Vec::new();
    for spec in &initial_names {
        let (name, version) = match spec.split_once(['@', ':']) {
            Some((n, v)) => (n, Some(v)),
            None => (spec.as_str(), None),
        };
        let in_ws = version
            .is_none()
            .then(|| workspace.member_by_name(name).ok())
            .flatten();
        match in_ws {
            Some(p) => ids.push(p.id().clone()),
            None => {
                let found: Vec<_> = graph
                    .packages()
                    .filter(|p| p.name() == name)
                    .filter(|p| version.is_none_or(|v| p.version().to_string().starts_with(v)))
                    .map(|p| p.id().clone())
                    .collect();
                if found.is_empty() {
                    return Err(merr(format!("unknown package name: {spec}")));
                }
                ids.extend(found);
            }
        }
    }
    let query = graph
        .query_forward(ids.iter())
        .map_err(|e| merr(e.to_string()))?;
    let base = if sel.all_features {
        StandardFeatures::All
    } else if sel.no_default_features {
        StandardFeatures::None
    } else {
        StandardFeatures::Default
    };
    // `--features a,b` and `-F pkg/feat` both name features of the selected packages.
    let features: Vec<&str> = sel
        .features
        .iter()
        .flat_map(|f| f.split([',', ' ']))
        .map(|f| f.rsplit('/').next().unwrap_or(f))
        .filter(|f| !f.is_empty())
        .collect();
    let feature_set = query
        .to_feature_query(named_feature_filter(base, features.iter().copied()))
        .resolve();

    let host = PlatformSpec::build_target().map_err(|e| merr(e.to_string()))?;
    let target = match &sel.target {
        Some(t) => PlatformSpec::Platforms(vec![Arc::new(
            Platform::new(t.clone(), TargetFeatures::Unknown).map_err(|e| merr(e.to_string()))?,
        )]),
        None => host.clone(),
    };
    let mut opts = CargoOptions::new();
    opts.set_resolver(CargoResolverVersion::V2)
        .set_include_dev(sel.dev)
        .set_host_platform(host)
        .set_target_platform(target);
    let cargo_set = feature_set
        .into_cargo_set(&opts)
        .map_err(|e| merr(e.to_string()))?;

    let mut packages = Vec::new();
    for (set, host) in [
        (cargo_set.target_features(), false),
        (cargo_set.host_features(), true),
    ] {
        for pkg in set
            .to_package_set()
            .packages(guppy::graph::DependencyDirection::Forward)
        {
            let lib = pkg.build_target(&BuildTargetId::Library).map(|t| {
                let kind = match t.kind() {
                    BuildTargetKind::ProcMacro => "proc-macro",
                    _ => "lib",
                };
                (t.name().replace('-', "_"), kind)
            });
            let mut features: Vec<String> = set
                .features_for(pkg.id())
                .ok()
                .flatten()
                .map(|f| f.named_features().map(str::to_string).collect())
                .unwrap_or_default();
            features.sort();
            let targets = |kind: fn(&BuildTargetId<'_>) -> bool| -> Vec<String> {
                if !pkg.in_workspace() || host {
                    return Vec::new();
                }
                pkg.build_targets()
                    .filter(|t| kind(&t.id()))
                    .map(|t| t.name().replace('-', "_"))
                    .collect()
            };
            let bins = targets(|id| matches!(id, BuildTargetId::Binary(_)));
            let tests = targets(|id| matches!(id, BuildTargetId::Test(_)));
            let benches = targets(|id| matches!(id, BuildTargetId::Benchmark(_)));
            let examples = targets(|id| matches!(id, BuildTargetId::Example(_)));
            let no_harness = if tests.is_empty() && benches.is_empty() {
                Vec::new()
            } else {
                no_harness(pkg.manifest_path().as_std_path())
            };
            let selected = pkg.in_workspace() && initial_names.iter().any(|n| n == pkg.name());
            packages.push(PlannedPackage {
                name: pkg.name().to_string(),
                version: pkg.version().to_string(),
                workspace_member: pkg.in_workspace(),
                build_script: pkg.build_target(&BuildTargetId::BuildScript).is_some(),
                host,
                manifest_dir: pkg
                    .manifest_path()
                    .parent()
                    .map(|p| p.as_std_path().to_path_buf())
                    .unwrap_or_default(),
                lib,
                features,
                bins,
                selected,
                tests,
                benches,
                examples,
                no_harness,
            });
        }
    }
    let mut workspace_members: Vec<String> = graph
        .workspace()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    workspace_members.sort();
    Ok(BuildPlan {
        workspace_root,
        workspace_members,
        target_dir,
        build_dir,
        packages,
    })
}

/// Reads the cargo arguments that decide what is built (`-p`, `--features`, …).
/// Unknown arguments are cargo's business and are ignored here.
pub fn selection_from_cargo_args(args: &[String]) -> Selection {
    let mut sel = Selection::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "--" {
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        let mut value = || -> Option<String> {
            if let Some(v) = &inline {
                return Some(v.clone());
            }
            let v = args.get(i).cloned();
            i += 1;
            v
        };
        match flag {
            "-p" | "--package" => sel.packages.extend(value()),
            "--workspace" | "--all" => sel.workspace = true,
            "--exclude" => sel.exclude.extend(value()),
            "-F" | "--features" => sel.features.extend(value()),
            "--all-features" => sel.all_features = true,
            "--no-default-features" => sel.no_default_features = true,
            "--target" => sel.target = value(),
            "--target-dir" => sel.target_dir = value().map(PathBuf::from),
            "--manifest-path" => sel.manifest_path = value().map(PathBuf::from),
            "-r" | "--release" => sel.release = true,
            "--profile" => sel.profile = value(),
            _ => {
                // `-pfoo` and `-Ffeat` spellings.
                if let Some(p) = a
                    .strip_prefix("-p")
                    .filter(|p| !p.is_empty() && !a.starts_with("--"))
                {
                    sel.packages.push(p.to_string());
                } else if let Some(f) = a.strip_prefix("-F").filter(|f| !f.is_empty()) {
                    sel.features.push(f.to_string());
                }
            }
        }
    }
    sel
}

/// The crate names of the `[[test]]` and `[[bench]]` targets `manifest` declares with
/// `harness = false` (cargo's metadata does not say). A manifest that cannot be read
/// names none: those targets are then predicted as harnesses, and only miss the seed.
fn no_harness(manifest: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    ["test", "bench"]
        .iter()
        .filter_map(|section| doc.get(*section)?.as_array())
        .flatten()
        .filter(|t| t.get("harness").and_then(toml::Value::as_bool) == Some(false))
        .filter_map(|t| t.get("name")?.as_str())
        .map(|n| n.replace('-', "_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> Selection {
        selection_from_cargo_args(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn reads_selection_flags() {
        let sel = s(&[
            "--release",
            "-p",
            "a",
            "--package=b",
            "-pc",
            "--features",
            "x,y",
            "-Fz",
            "--target-dir",
            "t",
        ]);
        assert_eq!(sel.packages, ["a", "b", "c"]);
        assert_eq!(sel.features, ["x,y", "z"]);
        assert_eq!(sel.target_dir, Some(PathBuf::from("t")));
        let sel = s(&[
            "--workspace",
            "--all-features",
            "--target",
            "x86_64-unknown-linux-gnu",
        ]);
        assert!(sel.workspace && sel.all_features);
        assert_eq!(sel.target.as_deref(), Some("x86_64-unknown-linux-gnu"));
    }
}
