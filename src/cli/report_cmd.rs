//! `cargo xcache report`.

use std::path::PathBuf;

use super::args::ReportArgs;
use crate::config::Env;
use crate::errors::CliError;
use crate::report::{BuildReport, render_table, report_path};

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    let env = Env::capture();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let target_dir = match (&args.target_dir, env.get("CARGO_TARGET_DIR")) {
        (Some(d), _) => cwd.join(d),
        (None, Some(d)) => cwd.join(d),
        (None, None) => {
            let mut cmd = cargo_metadata::MetadataCommand::new();
            cmd.no_deps().current_dir(&cwd);
            if let Some(m) = &args.manifest_path {
                cmd.manifest_path(m);
            }
            let meta = cmd.exec().map_err(|e| CliError::Metadata {
                manifest: args.manifest_path.clone(),
                message: e.to_string(),
            })?;
            meta.target_directory.into_std_path_buf()
        }
    };
    let path = report_path(&target_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::NoReport { path });
        }
        Err(e) => {
            return Err(CliError::BadReport {
                path,
                message: e.to_string(),
            });
        }
    };
    let report: BuildReport = serde_json::from_str(&text).map_err(|e| CliError::BadReport {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if args.json {
        println!("{text}");
    } else {
        print!("{}", render_table(&report));
    }
    Ok(0)
}
