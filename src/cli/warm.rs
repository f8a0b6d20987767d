//! `cargo xcache warm`: build only the dependencies, through the cache. With a recipe,
//! the skeleton is laid out in the current directory; without, the current workspace's
//! own recipe is laid out in a temporary directory (the cache is path-independent, so a
//! later `cargo xcache build` of the real workspace finds what this stored).

use std::path::{Component, Path, PathBuf};

use super::args::{WarmArgs, take_args};
use super::build_command::{BuildMode, run_build};
use crate::config::Env;
use crate::errors::CliError;
use crate::recipe::{PrepareOptions, Recipe, lay_out, prepare, remove_local_artifacts};

pub fn run(mut args: WarmArgs) -> Result<i32, CliError> {
    args.take_recipe_path();
    let env = Env::capture();
    let cwd = super::workspace::working_dir();
    let mut _tmp = None;
    let (recipe, root, bound) = match &args.recipe_path {
        Some(p) => {
            let bound = match &args.skeleton_root {
                None => cwd.clone(),
                Some(dir) => {
                    let dir = std::fs::canonicalize(cwd.join(dir)).map_err(|source| {
                        CliError::SkeletonWrite {
                            path: cwd.join(dir),
                            source,
                        }
                    })?;
                    let real_cwd = std::fs::canonicalize(&cwd).unwrap_or_else(|_| cwd.clone());
                    // The bound is the current directory or above it; the skeleton is
                    // laid out from the real path, so that the two compare.
                    if !real_cwd.starts_with(&dir) {
                        return Err(CliError::InvalidSetting {
                            name: "--skeleton-root".into(),
                            value: dir.display().to_string(),
                            message: "expected the current directory or a directory above it"
                                .into(),
                        });
                    }
                    dir
                }
            };
            let root = if args.skeleton_root.is_some() {
                std::fs::canonicalize(&cwd).unwrap_or_else(|_| cwd.clone())
            } else {
                cwd.clone()
            };
            (Recipe::read(&cwd.join(p))?, root, bound)
        }
        None => {
            let manifest_path = take_manifest_path(&mut args.build.cargo_args);
            let cargo_flags: Vec<String> = args
                .build
                .cargo_args
                .iter()
                .take_while(|a| *a != "--")
                .filter(|a| matches!(a.as_str(), "--locked" | "--frozen" | "--offline"))
                .cloned()
                .collect();
            let recipe = prepare(&PrepareOptions {
                cargo: env.cargo(),
                cwd: cwd.clone(),
                manifest_path,
                bin: None,
                cargo_flags,
            })?;
            let tmp = tempfile::Builder::new()
                .prefix("xcache-warm-")
                .tempdir()
                .map_err(|source| CliError::SkeletonWrite {
                    path: std::env::temp_dir(),
                    source,
                })?;
            // Path dependencies outside the workspace (`../x`) land inside the
            // temporary directory too.
            let mut root = tmp.path().to_path_buf();
            for _ in 0..climb(&recipe) {
                root.push("w");
            }
            // The skeleton build runs elsewhere: a target dir the user named is
            // resolved here, where they named it.
            absolute_target_dir(
                &mut args.build.cargo_args,
                &cwd,
                env.get("CARGO_TARGET_DIR"),
            );
            let bound = tmp.path().to_path_buf();
            _tmp = Some(tmp);
            (recipe, root, bound)
        }
    };
    let skeleton = lay_out(&recipe, &root, &bound)?;
    let mode = BuildMode {
        cwd: (root != cwd).then(|| root.clone()),
        placeholders: skeleton.local_dirs.clone(),
        ..BuildMode::default()
    };
    let outcome = run_build(crate::plan::CargoCommand::Build, args.build, &mode)?;
    let mut removed = remove_local_artifacts(&recipe, &outcome.target_dir);
    if outcome.build_dir != outcome.target_dir {
        removed += remove_local_artifacts(&recipe, &outcome.build_dir);
    }
    if removed > 0 {
        let dirs = if outcome.build_dir != outcome.target_dir {
            format!(
                "{} and its build dir {}",
                outcome.target_dir.display(),
                outcome.build_dir.display()
            )
        } else {
            outcome.target_dir.display().to_string()
        };
        outcome.verbosity.note(&format!(
            "xcache: removed {removed} build outputs of the placeholder packages from {dirs}"
        ));
    }
    Ok(outcome.code)
}

/// How many directories above the workspace root the recipe's paths reach.
fn climb(recipe: &Recipe) -> usize {
    recipe
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(recipe.placeholders.iter().map(|p| p.path.as_str()))
        .map(|p| {
            Path::new(p)
                .components()
                .take_while(|c| matches!(c, Component::ParentDir | Component::CurDir))
                .filter(|c| matches!(c, Component::ParentDir))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// `--manifest-path` names the real workspace: the skeleton build runs without it.
fn take_manifest_path(cargo_args: &mut Vec<String>) -> Option<PathBuf> {
    let mut found = None;
    take_args(cargo_args, |a, it| {
        if a == "--manifest-path" {
            found = it.next().map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--manifest-path=") {
            found = Some(PathBuf::from(v));
        } else {
            return false;
        }
        true
    });
    found
}

/// Makes `--target-dir` absolute against `cwd`, or adds it for `CARGO_TARGET_DIR`.
fn absolute_target_dir(cargo_args: &mut Vec<String>, cwd: &Path, env_dir: Option<&str>) {
    let end = cargo_args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(cargo_args.len());
    let mut found = false;
    let mut i = 0;
    while i < end {
        if cargo_args[i] == "--target-dir" && i + 1 < end {
            cargo_args[i + 1] = cwd.join(&cargo_args[i + 1]).display().to_string();
            found = true;
            i += 1;
        } else if let Some(v) = cargo_args[i].strip_prefix("--target-dir=") {
            cargo_args[i] = format!("--target-dir={}", cwd.join(v).display());
            found = true;
        }
        i += 1;
    }
    if !found && let Some(d) = env_dir {
        cargo_args.insert(0, format!("--target-dir={}", cwd.join(d).display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_is_made_absolute() {
        let cwd = Path::new("/ws");
        let mut a: Vec<String> = ["--release", "--target-dir", "t", "--", "--target-dir", "x"]
            .map(String::from)
            .to_vec();
        absolute_target_dir(&mut a, cwd, Some("ignored"));
        assert_eq!(
            a,
            [
                "--release",
                "--target-dir",
                "/ws/t",
                "--",
                "--target-dir",
                "x"
            ]
        );
        let mut a = vec!["--target-dir=t".to_string()];
        absolute_target_dir(&mut a, cwd, None);
        assert_eq!(a, ["--target-dir=/ws/t"]);
        let mut a = vec!["--locked".to_string()];
        absolute_target_dir(&mut a, cwd, Some("/abs"));
        assert_eq!(a, ["--target-dir=/abs", "--locked"]);
    }
}
