//! The unit's events: the start line for the front-end's progress, the one event of its
//! outcome ([`event`]), and in drop-in mode its warnings printed once per build.

use std::time::SystemTime;

use super::cached::Cached;
use super::context::Cx;
use crate::key::Key;
use crate::wrapper::event::CpuTimes;
use crate::wrapper::{Outcome, StartEvent, UnitEvent, UnitRecord, Warning, append_event};

impl Cx {
    /// Tells the front-end that this unit is being worked on (for its progress
    /// display); nothing in drop-in mode.
    pub fn start_event(&self, unit: &UnitRecord) {
        if let Some(path) = &self.cfg.events {
            let started = StartEvent {
                format_version: 1,
                pid: std::process::id(),
                started: unit.into(),
                start_ms: epoch_ms(self.started_at),
            };
            let _ = append_event(path, &started);
        }
    }

    /// Sends an event to the front-end, or (drop-in mode) prints its warnings once.
    pub fn finish_event(&self, ev: &UnitEvent) {
        match &self.cfg.events {
            Some(path) => {
                let _ = append_event(path, ev);
            }
            None => {
                warn_once_per_build(&ev.warnings);
                // Drop-in mode (`RUSTC_WRAPPER=cargo-xcache cargo …`): the events go
                // beside the target dir's report, for `cargo xcache report` to fold.
                if let Some(root) = self.pm.real_of(crate::key::RootKind::Target) {
                    let path =
                        crate::wrapper::event::dropin_events_path(std::path::Path::new(root));
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = append_event(&path, ev);
                }
            }
        }
    }
}

/// The unit's event.
pub(super) fn event(
    unit: &impl Cached,
    cx: &Cx,
    outcome: Outcome,
    reason: Option<String>,
    key: Option<Key>,
    bytes: u64,
    l1: Option<Key>,
) -> UnitEvent {
    // What cargo waited for ends where the wrapper let it go on (`background`).
    let (total, end_at, background_ms) = match &cx.background {
        Some(p) => (
            p.released.duration_since(cx.started).as_millis() as u64,
            p.released_at,
            // Rounded up: a unit stored after cargo went on says so.
            (p.released.elapsed().as_micros() as u64)
                .div_ceil(1000)
                .max(1),
        ),
        None => (
            cx.started.elapsed().as_millis() as u64,
            SystemTime::now(),
            0,
        ),
    };
    let mut record = unit.record(cx);
    record.outcome = outcome;
    record.reason = reason;
    if outcome == Outcome::Uncacheable {
        record.detail = cx.detail.clone();
    }
    record.compile_ms = (outcome != Outcome::Hit).then_some(cx.run_ms);
    record.key = key.map(|k| k.to_hex());
    let overhead_ms = total.saturating_sub(cx.run_ms);
    record.overhead = cx.phases.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let parts: u64 = record.overhead.values().sum();
    if overhead_ms > parts {
        record.overhead.insert("other".into(), overhead_ms - parts);
    }
    let mut ev = UnitEvent {
        format_version: 1,
        unit: record,
        overhead_ms,
        bytes,
        bytes_linked: 0,
        object_bytes: 0,
        upk: None,
        spk: None,
        l1: l1.map(|k| k.to_hex()),
        upload: false,
        bytes_down: cx.bytes_down,
        bytes_up: cx.bytes_up,
        place: None,
        verify: None,
        warnings: cx.warnings.clone(),
        key_parts: None,
        start_ms: epoch_ms(cx.started_at),
        end_ms: epoch_ms(end_at),
        background_ms,
        pid: std::process::id(),
        peak_rss_kb: crate::wrapper::event::peak_rss_kb().unwrap_or(0),
        compile_cpu_ms: cx.compile_cpu_ms,
    };
    let cpu = CpuTimes::now().plus(cx.cpu_before_fork);
    ev.unit.cpu_ms = Some(cpu.own_ms);
    ev.unit.checks_cpu_ms = Some(cpu.children_ms.saturating_sub(cx.compile_cpu_ms));
    unit.complete_event(cx, &mut ev);
    ev
}

/// Milliseconds since the Unix epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Drop-in mode has no front-end to gather warnings: print each code once per cargo
/// process, using a marker file named for cargo's PID.
pub(in crate::wrapper) fn warn_once_per_build(warnings: &[Warning]) {
    let ppid = std::os::unix::process::parent_id();
    for w in warnings {
        let marker = std::env::temp_dir().join(format!("xcache-warned-{ppid}-{}", w.code));
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            // The executor down leaves the cache in use: only where compiles run changed.
            let tail = match w.code.as_str() {
                "executor-unavailable" | "executor-unserved" | "executor-mismatch" => "",
                _ => "; compiling without the cache",
            };
            eprintln!("warning: xcache: {} [{}]{tail}", w.message, w.code);
        }
    }
}
