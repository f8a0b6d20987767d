//! The build's report: one fold of the wrappers' events (and the sessions' findings)
//! into `report.json`, then its warnings, the summary line and the CI job summary said.

use std::time::Instant;

use super::cargo_command::Ready;
use super::cargo_output::CargoStdout;
use crate::cli::remote_session::RemoteSession;
use crate::cli::seed_session::{EarlyCapture, SeedSession};
use crate::cli::store_session::StoreSession;
use crate::errors::CliError;
use crate::plan::{Plan, RustdocUnit};
use crate::reason::Uncacheable;
use crate::report::{BuildReport, Verbosity, render_markdown, render_summary_line, report_path};
use crate::wrapper::{Outcome, UnitEvent, UnitRecord, read_events};

/// The sessions of a build, each finished into the report.
pub(super) struct Sessions {
    pub local: StoreSession,
    pub remote: Option<RemoteSession>,
    pub seeds: Option<SeedSession>,
}

/// What the front-end did, for the report's summary.
pub(super) struct FrontEndSummary {
    pub started: Instant,
    /// When the build started, in milliseconds since the Unix epoch.
    pub started_epoch_ms: u64,
    pub before_cargo_ms: u64,
    /// The CPU time of what the front-end ran before cargo (`cargo metadata`).
    pub before_cargo_children_cpu: u64,
    pub background_wait_ms: u64,
    pub cargo_beside_planting: bool,
    /// The toolchain sent to the executor before cargo: bytes, milliseconds.
    pub toolchain_sent: Option<(u64, u64)>,
}

/// Reads the wrappers' events, finishes the sessions into the report and writes it
/// (unless cargo stopped before any unit), then says its warnings and summary. Returns
/// the events.
pub(super) fn report_build(
    ready: &Ready<'_>,
    sessions: Sessions,
    stdout: CargoStdout,
    early: Option<EarlyCapture>,
    front_end: FrontEndSummary,
    code: i32,
) -> Result<Vec<UnitEvent>, CliError> {
    let Ready {
        run,
        cfg,
        plan,
        paths,
        early_dir,
        progress,
        verbosity,
    } = *ready;
    let Sessions {
        local,
        remote,
        seeds,
    } = sessions;
    let (env, events_path) = (run.env, &paths.events);
    let mut events = read_events(events_path).unwrap_or_default();
    let _ = std::fs::remove_file(events_path);
    // rustdoc's units ran (or would have) without the wrapper: listed, never cached.
    if code == 0 {
        events.extend(plan.rustdoc.iter().map(rustdoc_event));
    }
    // The last frame holds every unit (and the last `-v` lines), then the bar goes.
    if progress.wants_events() {
        progress.update(
            &events,
            &[],
            seeds.as_ref().map_or(0, |s| s.seeded_so_far(&events)),
        );
    }
    progress.finish();
    let mut report = BuildReport::from_events(
        &events,
        run.cargo_args.to_vec(),
        code,
        cfg.store_dir.path().to_path_buf(),
        front_end.started.elapsed().as_millis() as u64,
        plan.expected_units(),
    );
    let captured = match seeds {
        Some(s) => {
            let mut fresh = stdout.into_fresh();
            fresh.resolve(&plan.graph.target_dir, &plan.graph.build_dir);
            let fresh = run.read_json.then_some(&fresh);
            s.finish(&events, fresh, env, &mut report, early)
        }
        None => Default::default(),
    };
    if let Some(r) = remote {
        r.finish(&events, &captured, &mut report);
    }
    let captured = captured.captured;
    let _ = std::fs::remove_file(&paths.remote_state);
    if let Some(dir) = early_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(w) = layout_check(plan, &events) {
        report.warnings.push(w);
    }
    let added = crate::cli::store_session::added_at_most(&report, &events, &captured);
    local.finish(&mut report, added, &plan.graph.target_dir, verbosity);
    report.remote = cfg.remote.as_ref().map(|r| r.display().to_string());
    report.read_only = cfg.read_only;
    report.summary.before_cargo_ms = front_end.before_cargo_ms;
    report.summary.cargo_before_plan = early_dir.is_some();
    report.summary.cargo_beside_planting = front_end.cargo_beside_planting;
    report.summary.background_wait_ms = front_end.background_wait_ms;
    if let Some((bytes, ms)) = front_end.toolchain_sent {
        report.summary.toolchain_sent_bytes = bytes;
        report.summary.toolchain_send_ms = ms;
    }
    report.summary.front_end_peak_rss_kb = crate::wrapper::peak_rss_kb().unwrap_or(0);
    report.summary.front_end_cpu_ms =
        crate::wrapper::CpuTimes::now().own_ms + front_end.before_cargo_children_cpu;
    report.reconcile();
    report.add_timing(&events, front_end.started_epoch_ms);
    crate::cli::history_session::record(cfg, &events, &mut report);
    let path = report_path(&plan.graph.target_dir);
    if code != 0 && report.units.is_empty() {
        // cargo stopped before any unit (an unknown flag, a resolution error): the last
        // build's report stays, and says what that build did.
        verbosity.note(&format!(
            "xcache: cargo exited with {code} before building anything; {} was left as it was",
            path.display()
        ));
        return Ok(events);
    }
    let json = serde_json::to_vec_pretty(&report).expect("a report serializes");
    crate::fsx::write_atomic(&path, &json).map_err(|source| CliError::WriteReport {
        path: path.clone(),
        source,
    })?;
    for w in &report.warnings {
        verbosity.warn(&format!(
            "warning: xcache: {} [{}]{}",
            w.message,
            w.code,
            warning_tail(&w.code)
        ));
    }
    verbosity.note(&render_summary_line(&report));
    if let Some(summary) = &cfg.step_summary {
        append_step_summary(summary, &render_markdown(&report), verbosity);
    }
    Ok(events)
}

/// Whether cargo kept the build's units in the layout the plan planted for: a unit in
/// the other means nothing planted was where cargo looked (the next build in this build
/// dir learns the layout from what cargo left), and the report says so.
fn layout_check(
    plan: &Plan,
    events: &[crate::wrapper::UnitEvent],
) -> Option<crate::wrapper::Warning> {
    let expected = *plan.layout.as_ref().ok()?;
    let found = events
        .iter()
        .filter_map(|e| e.place.as_ref())
        .map(|p| crate::key::Layout::of_unit(&p.unit_dir))
        .find(|l| *l != expected)?;
    let e = crate::errors::CacheError::PlantingOff(format!(
        "cargo kept this build's units in its {} layout where the plan expected the {} one \
         (set by no switch it read); nothing planted was used, and the next build in {} \
         plants in the layout cargo left",
        found.as_str(),
        expected.as_str(),
        plan.graph.build_dir.display()
    ));
    Some(crate::wrapper::Warning::from(&e))
}

/// Appends the Markdown summary to GitHub's job summary file; a failure is a warning.
fn append_step_summary(path: &std::path::Path, markdown: &str, verbosity: Verbosity) {
    use std::io::Write;
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()));
    if let Err(e) = result {
        verbosity.warn(&format!(
            "warning: xcache: failed to append the build summary to {} ({}): {e}",
            path.display(),
            crate::config::vars::GITHUB_STEP_SUMMARY
        ));
    }
}

/// The report's record of a unit rustdoc builds.
fn rustdoc_event(u: &RustdocUnit) -> UnitEvent {
    UnitEvent {
        format_version: 1,
        unit: UnitRecord {
            reason: Some(Uncacheable::Rustdoc.code().to_string()),
            ..UnitRecord::new(
                u.package.clone(),
                u.version.clone(),
                u.crate_name.clone(),
                u.kind.to_string(),
                Outcome::Uncacheable,
            )
        },
        overhead_ms: 0,
        bytes: 0,
        bytes_linked: 0,
        object_bytes: 0,
        upk: None,
        spk: None,
        l1: None,
        upload: false,
        bytes_down: 0,
        bytes_up: 0,
        place: None,
        verify: None,
        warnings: Vec::new(),
        key_parts: None,
        start_ms: 0,
        end_ms: 0,
        pid: 0,
        background_ms: 0,
        peak_rss_kb: 0,
        compile_cpu_ms: 0,
    }
}

/// What a warning meant for the build. A remote that failed left the local store in
/// use: its units were not "compiled without the cache".
fn warning_tail(code: &str) -> &'static str {
    match code {
        "remote-entry-damaged" | "remote-entry-too-large" => "",
        // The cache was used; only where the compiles ran changed.
        "executor-unavailable" | "executor-unserved" | "executor-mismatch" => "",
        // Nothing was planted; the wrapper restored what it could.
        "planting-off" => "; every unit went through the wrapper, which restores hits",
        c if c.starts_with("remote-") => "; the rest of the build used the local store only",
        _ => "; those units compiled without the cache",
    }
}
