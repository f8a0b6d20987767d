//! Configuration files: `xcache.toml` at the workspace root, then the user's
//! `$XDG_CONFIG_HOME/xcache/config.toml` (else `~/.config/xcache/config.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Env;
use crate::errors::CliError;

/// What a configuration file may say. Unknown keys are an error, so a typo is not
/// silently ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The remote store URI.
    pub remote: Option<String>,
    /// Read the remote, never write it.
    pub read_only: Option<bool>,
}

/// The user's configuration file path.
pub fn user_config_path(env: &Env) -> Option<PathBuf> {
    if let Some(x) = env.get("XDG_CONFIG_HOME") {
        return Some(Path::new(x).join("xcache").join("config.toml"));
    }
    env.get("HOME").map(|h| {
        Path::new(h)
            .join(".config")
            .join("xcache")
            .join("config.toml")
    })
}

/// Reads the files that exist, most specific first: the workspace's, then the user's.
pub fn read_config_files(
    workspace_root: Option<&Path>,
    env: &Env,
) -> Result<Vec<(PathBuf, ConfigFile)>, CliError> {
    let mut paths = Vec::new();
    if let Some(root) = workspace_root {
        paths.push(root.join("xcache.toml"));
    }
    paths.extend(user_config_path(env));
    let mut out = Vec::new();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(CliError::ConfigFile {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let file: ConfigFile = toml::from_str(&text).map_err(|e| CliError::ConfigFile {
            path: path.clone(),
            message: e.message().to_string(),
        })?;
        out.push((path, file));
    }
    Ok(out)
}
