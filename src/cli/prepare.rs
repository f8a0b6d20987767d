//! `cargo xcache prepare`: write the workspace's recipe.

use super::args::PrepareArgs;
use crate::config::Env;
use crate::errors::CliError;
use crate::recipe::{PrepareOptions, prepare};

pub fn run(args: PrepareArgs) -> Result<i32, CliError> {
    let env = Env::capture();
    let cwd = super::workspace::working_dir();
    let recipe = prepare(&PrepareOptions {
        cargo: env.cargo(),
        cwd: cwd.clone(),
        manifest_path: args.manifest_path,
        bin: args.bin,
        cargo_flags: Vec::new(),
    })?;
    let path = cwd.join(&args.recipe_path);
    crate::fsx::write_atomic(&path, &recipe.to_bytes()).map_err(|source| {
        CliError::RecipeWrite {
            path: path.clone(),
            source,
        }
    })?;
    eprintln!(
        "xcache: wrote {} ({} local packages, {} files, {} placeholders)",
        args.recipe_path.display(),
        recipe.local_packages.len(),
        recipe.files.len(),
        recipe.placeholders.len()
    );
    Ok(0)
}
