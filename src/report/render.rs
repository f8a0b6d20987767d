//! Human renderings of a report.

use std::fmt::Write;

use super::BuildReport;
use crate::reason::Uncacheable;
use crate::wrapper::Outcome;

fn bytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// The one-line summary printed after a build.
pub fn render_summary_line(r: &BuildReport) -> String {
    let s = &r.summary;
    let mut line = format!(
        "xcache: {} units: {} hit, {} miss, {} uncacheable",
        s.units, s.hits, s.misses, s.uncacheable
    );
    if s.errors > 0 {
        let _ = write!(line, ", {} failed", s.errors);
    }
    if s.untrusted > 0 {
        let _ = write!(line, " ({} refused as untrusted)", s.untrusted);
    }
    let _ = write!(line, " in {}", secs(s.wall_ms));
    if s.saved_ms > 0 {
        let _ = write!(line, " (about {} of compiling saved)", secs(s.saved_ms));
    }
    line
}

/// `lib 3/3, proc-macro 1/1, …`: the kinds of a build in the order they are built,
/// kinds this version does not know last.
fn by_kind(r: &BuildReport) -> String {
    const ORDER: &[&str] = &[
        "lib",
        "proc-macro",
        "build-script",
        "build-script-run",
        "bin",
        "test",
    ];
    let mut kinds: Vec<(&String, _)> = r.summary.by_kind.iter().collect();
    kinds.sort_by_key(|(k, _)| {
        let pos = ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len());
        (pos, k.to_string())
    });
    kinds
        .iter()
        .map(|(k, c)| format!("{k} {}/{}", c.hit, c.units))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table shown by `cargo xcache report`.
pub fn render_table(r: &BuildReport) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(out, "{}", render_summary_line(r));
    let _ = writeln!(out, "store: {}", r.store.display());
    if let Some(remote) = &r.remote {
        let _ = writeln!(
            out,
            "remote: {remote}{}: {} hits, {} down, {} up",
            if r.read_only { " (read-only)" } else { "" },
            s.remote_hits,
            bytes(s.bytes_down),
            bytes(s.bytes_up)
        );
    }
    let _ = writeln!(
        out,
        "time: wall {}, rustc {}, restoring {}, cache work {}, saved {}",
        secs(s.wall_ms),
        secs(s.compile_ms),
        secs(s.restore_ms),
        secs(s.overhead_ms),
        secs(s.saved_ms)
    );
    if !s.by_kind.is_empty() {
        let _ = writeln!(out, "by kind (hit/units): {}", by_kind(r));
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {} [{}]", w.message, w.code);
    }
    for outcome in [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Uncacheable,
        Outcome::Error,
    ] {
        let mut units: Vec<_> = r.units.iter().filter(|u| u.outcome == outcome).collect();
        // Completion order varies from build to build; names do not.
        units.sort_by(|a, b| {
            (&a.package, &a.crate_name, &a.kind).cmp(&(&b.package, &b.crate_name, &b.kind))
        });
        if units.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{} ({})", outcome.as_str(), units.len());
        for u in units {
            // A build-script run is not compiled: its time is the script's.
            let verb = if u.kind == "build-script-run" {
                "ran"
            } else {
                "compiled"
            };
            let ms = match outcome {
                Outcome::Hit => format!(
                    "restored in {}, {verb} in {}",
                    secs(u.restore_ms.unwrap_or(0)),
                    secs(u.compile_ms.unwrap_or(0))
                ),
                _ => format!("{verb} in {}", secs(u.compile_ms.unwrap_or(0))),
            };
            let reason = match u.reason.as_deref() {
                Some(r) => format!("  [{r}]"),
                None if u.non_incremental_restore => "  (non-incremental restore)".to_string(),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<28} {:<20} {:<13} {ms}{reason}",
                format!("{} {}", u.package, u.version),
                u.crate_name,
                u.kind,
            );
        }
    }
    // Why units were not cached, by reason, with what each reason means.
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for u in r.units.iter().filter(|u| u.outcome == Outcome::Uncacheable) {
        let code = u.reason.as_deref().unwrap_or("unknown");
        match reasons.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => reasons.push((code, 1)),
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nuncacheable, by reason");
        for (code, n) in reasons {
            let mut all = Uncacheable::all();
            let desc = all
                .find(|u| u.code() == code)
                .map(|u| u.description())
                .unwrap_or("");
            let _ = writeln!(out, "  {n:>4}  {code}: {desc}");
        }
    }
    let mut slow: Vec<_> = r.units.iter().filter(|u| u.compile_ms.is_some()).collect();
    slow.sort_by_key(|u| std::cmp::Reverse(u.compile_ms.unwrap_or(0)));
    if !slow.is_empty() {
        let _ = writeln!(out, "\nslowest units (compile time)");
        for u in slow.iter().take(10) {
            let _ = writeln!(
                out,
                "  {:>8}  {} {} ({}, {})",
                secs(u.compile_ms.unwrap_or(0)),
                u.package,
                u.version,
                u.kind,
                u.outcome.as_str()
            );
        }
    }
    out
}
