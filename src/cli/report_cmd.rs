//! `cargo xcache report`.

use std::path::{Path, PathBuf};

use super::args::{ReportArgs, ReportFormat};
use crate::config::Env;
use crate::errors::CliError;
use crate::report::{BuildReport, render_html, render_markdown, render_table, report_path};
use crate::wrapper::{DROPIN_PREFIX, Outcome, read_events};

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
    let cwd = super::workspace::working_dir();
    let target_dir = match (target_dir, env.get("CARGO_TARGET_DIR")) {
        (Some(d), _) => cwd.join(d),
        (None, Some(d)) => cwd.join(d),
        (None, None) => {
            let mut cmd = cargo_metadata::MetadataCommand::new();
            cmd.no_deps().current_dir(&cwd);
            if let Some(m) = manifest_path {
                cmd.manifest_path(m);
            }
            let meta = cmd
                .exec()
                .map_err(|e| crate::errors::metadata_error(&e, manifest_path, &cwd))?;
            meta.target_directory.into_std_path_buf()
        }
    };
    let path = report_path(&target_dir);
    fold_dropin(&target_dir, &path, &env);
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

/// Drop-in mode (`RUSTC_WRAPPER=cargo-xcache cargo …`) leaves the wrappers' events in
/// the target dir, one file per cargo process. When the newest is newer than the last
/// report, it becomes the report (the same fold `cargo xcache build` makes); the event
/// files are then removed. Nothing to fold, or a file that cannot be read: the report
/// stays as it is.
fn fold_dropin(target_dir: &std::path::Path, report: &std::path::Path, env: &Env) {
    let xdir = target_dir.join("xcache");
    let Ok(entries) = std::fs::read_dir(&xdir) else {
        return;
    };
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(DROPIN_PREFIX) && n.ends_with(".jsonl"))
        })
        .filter_map(|p| Some((modified(&p)?, p)))
        .collect();
    files.sort();
    let Some((newest_at, newest)) = files.last().cloned() else {
        return;
    };
    if modified(report).is_some_and(|r| r >= newest_at) {
        return;
    }
    let Ok(events) = read_events(&newest) else {
        return;
    };
    // cargo's exit code is not known here: a unit that failed failed the build.
    let failed = events.iter().any(|e| e.unit.outcome == Outcome::Error);
    let store = crate::config::store_dir(env).unwrap_or_default();
    let folded = BuildReport::from_events(
        &events,
        Vec::new(),
        if failed { 101 } else { 0 },
        store,
        0,
        0,
    );
    let json = serde_json::to_vec_pretty(&folded).expect("a report serializes");
    if crate::fsx::write_atomic(report, &json).is_ok() {
        for (_, f) in files {
            let _ = std::fs::remove_file(f);
        }
    }
}
