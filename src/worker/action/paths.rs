//! The action's paths, which the server names and which are hostile input: each a
//! plain relative path inside the action's directory, and a run's directory that holds
//! a symbolic link not vouched for.

use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use super::failed::Failed;
use crate::exec::wire::plain;

/// `base` joined with the action's relative path `rel`, through the one confinement
/// check.
pub(super) fn inside(base: &Path, rel: &str, what: &str) -> Result<PathBuf, Failed> {
    crate::fsx::confined(base, rel)
        .map_err(|e| Failed::invalid(format!("the {what} `{rel}` leaves its directory ({e})")))
}

/// The outputs the command declares, each a plain path under its working directory.
pub(super) fn output_paths(command: &re::Command) -> Result<Vec<String>, Failed> {
    #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
    let old = command.output_files.iter();
    let all: Vec<String> = if command.output_paths.is_empty() {
        old.cloned().collect()
    } else {
        command.output_paths.clone()
    };
    for p in &all {
        if !plain(p) {
            return Err(Failed::invalid(format!(
                "the output path `{p}` leaves the working directory"
            )));
        }
    }
    Ok(all)
}

/// Whether any entry under `dir` is a symbolic link (or cannot be read).
pub(super) fn has_symlink(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    for e in entries {
        let Ok(e) = e else {
            return true;
        };
        match e.file_type() {
            Err(_) => return true,
            Ok(t) if t.is_symlink() => return true,
            Ok(t) if t.is_dir() && has_symlink(&e.path()) => return true,
            Ok(_) => {}
        }
    }
    false
}
