//! Where a command runs: the working directory, the settings resolved there, and the
//! workspace around it, whose `xcache.toml` may name the remote.

use std::path::{Path, PathBuf};

use crate::config::{BuildConfig, Env};
use crate::errors::CliError;

/// The directory the command runs in (`.` where it cannot be read).
pub(super) fn working_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The environment, the working directory, and the settings resolved there.
pub(super) fn settings_here() -> Result<(Env, PathBuf, BuildConfig), CliError> {
    let env = Env::capture();
    let cwd = working_dir();
    let cfg = BuildConfig::resolve(&env, cwd.clone())?;
    Ok((env, cwd, cfg))
}

/// Resolves the remote (`remote`: the one given on the command line) where the workspace
/// around `cwd` has its root: the workspace's `xcache.toml` counts when the command runs
/// inside a workspace; elsewhere `cwd` stands for the root. Returns the workspace's
/// `cargo metadata` (without dependencies), if `cwd` is in one. `cargo`: the cargo that
/// answers (`None`: `CARGO`, else `cargo`, as `cargo_metadata` chooses).
pub(super) fn resolve_remote_in_workspace(
    cargo: Option<PathBuf>,
    cfg: &mut BuildConfig,
    env: &Env,
    cwd: &Path,
    remote: Option<&str>,
    read_only: bool,
) -> Result<Option<cargo_metadata::Metadata>, CliError> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    if let Some(cargo) = cargo {
        cmd.cargo_path(cargo);
    }
    let metadata = cmd.no_deps().current_dir(cwd).exec().ok();
    let root = metadata.as_ref().map_or_else(
        || cwd.to_path_buf(),
        |m| m.workspace_root.clone().into_std_path_buf(),
    );
    cfg.resolve_remote(env, remote, read_only, &root)?;
    Ok(metadata)
}
