//! `cargo xcache report`.

use std::path::{Path, PathBuf};

use super::args::{ReportArgs, ReportFormat};
use crate::config::Env;
use crate::errors::CliError;
use crate::report::{BuildReport, render_html, render_markdown, render_table, report_path};

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    let (target_dir, text, report) =
        load_report(args.manifest_path.as_deref(), args.target_dir.as_deref())?;
    if let Some(html) = &args.html {
        let path = match html {
            Some(p) => p.clone(),
            None => target_dir.join("xcache").join("report.html"),
        };
        crate::fsx::write_atomic(&path, render_html(&report).as_bytes()).map_err(|source| {
            CliError::WriteReport {
                path: path.clone(),
                source,
            }
        })?;
        println!("{}", path.display());
        return Ok(0);
    }
    let format = if args.json {
        ReportFormat::Json
    } else {
        args.format
    };
    match format {
        ReportFormat::Json => println!("{text}"),
        ReportFormat::Markdown => print!("{}", render_markdown(&report)),
        ReportFormat::Text => print!("{}", render_table(&report)),
    }
    Ok(0)
}

/// The target dir (flag, `CARGO_TARGET_DIR`, else cargo's), and the last report in it:
/// its text and what it says.
pub(super) fn load_report(
    manifest_path: Option<&Path>,
    target_dir: Option<&Path>,
) -> Result<(PathBuf, String, BuildReport), CliError> {
    let env = Env::capture();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let target_dir = match (target_dir, env.get("CARGO_TARGET_DIR")) {
        (Some(d), _) => cwd.join(d),
        (None, Some(d)) => cwd.join(d),
        (None, None) => {
            let mut cmd = cargo_metadata::MetadataCommand::new();
            cmd.no_deps().current_dir(&cwd);
            if let Some(m) = manifest_path {
                cmd.manifest_path(m);
            }
            let meta = cmd.exec().map_err(|e| CliError::Metadata {
                manifest: manifest_path.map(Path::to_path_buf),
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
    Ok((target_dir, text, report))
}
