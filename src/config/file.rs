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
        let file = parse_config(&text).map_err(|message| CliError::ConfigFile {
            path: path.clone(),
            message,
        })?;
        out.push((path, file));
    }
    Ok(out)
}

/// Parses a configuration file's text. The error names the line and column (1-based)
/// where the file stops making sense, and what is wrong there.
pub fn parse_config(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_string();
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: {message}")
            }
            None => message,
        }
    })
}

/// The 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let mut before = &text[..text.floor_char_boundary(at)];
    let line = before.matches('\n').count() + 1;
    if let Some(i) = before.rfind('\n') {
        before = &before[i + 1..];
    }
    (line, before.chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_column() {
        let e = parse_config("remote = \"s3://b\"\nread_only = maybe\n").unwrap_err();
        assert!(e.starts_with("line 2, column 13:"), "{e}");
        let e = parse_config("read_only = \"yes\"\n").unwrap_err();
        assert!(
            e.starts_with("line 1, column 13:") && e.contains("bool"),
            "{e}"
        );
        let e = parse_config("\n\nremote_uri = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("line 3, column 1:") && e.contains("remote_uri"),
            "{e}"
        );
        let c = parse_config("remote = \"s3://b\"\nread_only = true\n").unwrap();
        assert_eq!(c.read_only, Some(true));
    }
}
