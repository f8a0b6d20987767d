//! Human renderings of a report.

use std::fmt::Write;

use super::BuildReport;
use crate::reason::Uncacheable;
use crate::wrapper::{Outcome, UnitRecord};

fn bytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// The one-line summary printed after a build.
pub fn render_summary_line(r: &BuildReport) -> String {
    let s = &r.summary;
    let mut line = format!("xcache: {} units: {}", s.units, counts(r));
    if s.untrusted > 0 {
        let _ = write!(line, " ({} refused as untrusted)", s.untrusted);
    }
    let _ = write!(
        line,
        " in {} ({} before cargo)",
        secs(s.wall_ms),
        secs(s.before_cargo_ms)
    );
    if s.cpu_saved_ms > 0 {
        let _ = write!(
            line,
            "; saved {} of compile CPU, about {} of wall time",
            secs(s.cpu_saved_ms),
            secs(s.wall_saved_ms)
        );
    }
    line
}

/// `44 seeded, 6 restored, 3 compiled, 1 ran, 0 uncacheable`: the one vocabulary.
pub fn counts(r: &BuildReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "{} seeded, {} restored, {} compiled, {} ran, {} uncacheable",
        s.seeded, s.restored, s.compiled, s.ran, s.uncacheable
    );
    if s.errors > 0 {
        let _ = write!(out, ", {} failed", s.errors);
    }
    out
}

/// The section a unit is listed under: seeded, restored, compiled, ran, uncacheable
/// or failed.
pub fn section(u: &UnitRecord) -> &'static str {
    match u.outcome {
        Outcome::Hit if u.seeded => "seeded",
        Outcome::Hit => "restored",
        Outcome::Miss if u.kind == "build-script-run" => "ran",
        Outcome::Miss => "compiled",
        Outcome::Uncacheable => "uncacheable",
        Outcome::Error => "failed",
    }
}

/// The sections in the order the table lists them.
pub const SECTIONS: &[&str] = &[
    "seeded",
    "restored",
    "compiled",
    "ran",
    "uncacheable",
    "failed",
];

/// What to do about an uncacheable reason, where something can be done.
pub fn reason_hint(code: &str) -> Option<&'static str> {
    match code {
        "incremental" => Some(
            "set CARGO_INCREMENTAL=0 for builds through the cache (or `incremental = false` in the profile); incremental outputs are never stored",
        ),
        "disabled" => Some("unset XCACHE_DISABLE to use the cache"),
        _ => None,
    }
}

/// A unit's time in the vocabulary: `restored in 0.01s (compiled in 1.20s originally)`.
fn unit_time(u: &UnitRecord) -> String {
    let verb = if u.kind == "build-script-run" {
        "ran"
    } else {
        "compiled"
    };
    let original = u.compile_ms.unwrap_or(0);
    match section(u) {
        "seeded" => format!(
            "placed before cargo started ({verb} in {} originally)",
            secs(original)
        ),
        "restored" => format!(
            "restored in {} ({verb} in {} originally)",
            secs(u.restore_ms.unwrap_or(0)),
            secs(original)
        ),
        _ => format!("{verb} in {}", secs(original)),
    }
}

/// One unit's line as `-v` prints it while the build runs.
pub fn render_unit_line(u: &UnitRecord) -> String {
    let mut line = format!(
        "xcache: {} {} {} ({}): {}, {}",
        section(u),
        u.package,
        u.version,
        u.kind,
        u.crate_name,
        unit_time(u)
    );
    if let Some(r) = &u.reason {
        let _ = write!(line, " [{r}]");
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

/// With `XCACHE_EXECUTOR`: how many compiles workers ran, how many ran here and why.
fn remote_exec_line(s: &super::Summary) -> Option<String> {
    if s.remote_compiled == 0 && s.remote_fallbacks.is_empty() {
        return None;
    }
    let here: usize = s.remote_fallbacks.values().sum();
    let why: Vec<String> = s
        .remote_fallbacks
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect();
    let checked = if s.remote_checked > 0 {
        format!(" ({} of them checked here, equal)", s.remote_checked)
    } else {
        String::new()
    };
    let hedged = if s.remote_hedged > 0 {
        format!(
            "; {} compiled here as well while waiting for a worker",
            s.remote_hedged
        )
    } else {
        String::new()
    };
    let sent = if s.toolchain_sent_bytes > 0 {
        format!(
            "; toolchain sent first: {:.0} MiB in {:.1}s",
            s.toolchain_sent_bytes as f64 / (1u64 << 20) as f64,
            s.toolchain_send_ms as f64 / 1000.0
        )
    } else {
        String::new()
    };
    Some(format!(
        "remote execution: {} compiled on workers{checked}, {here} here instead{}{hedged}{sent}",
        s.remote_compiled,
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        }
    ))
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
    if let Some(line) = remote_exec_line(s) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "time: wall {}, before cargo {} (placing seeded units {}), critical path {}, rustc {}, restoring {}, cache work {}",
        secs(s.wall_ms),
        secs(s.before_cargo_ms),
        secs(s.seed_ms),
        secs(s.critical_path_ms),
        secs(s.compile_ms),
        secs(s.restore_ms),
        secs(s.overhead_ms),
    );
    let _ = writeln!(
        out,
        "saved: compile CPU {} (the hits' original compile times, summed), wall about {} (estimate from the critical path)",
        secs(s.cpu_saved_ms),
        secs(s.wall_saved_ms)
    );
    if s.planned > 0 {
        let _ = writeln!(
            out,
            "planned: about {} units (an estimate made before cargo started)",
            s.planned
        );
    }
    if !s.by_kind.is_empty() {
        let _ = writeln!(out, "by kind (hit/units): {}", by_kind(r));
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {} [{}]", w.message, w.code);
    }
    let widths = column_widths(&r.units);
    for name in SECTIONS {
        let mut units: Vec<_> = r.units.iter().filter(|u| section(u) == *name).collect();
        // Completion order varies from build to build; names do not.
        units.sort_by(|a, b| {
            (&a.package, &a.crate_name, &a.kind).cmp(&(&b.package, &b.crate_name, &b.kind))
        });
        if units.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{name} ({})", units.len());
        for u in units {
            let reason = match u.reason.as_deref() {
                Some(r) => format!("  [{r}]"),
                None if u.non_incremental_restore => "  (non-incremental restore)".to_string(),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<w0$}  {:<w1$}  {:<w2$}  {}{reason}",
                format!("{} {}", u.package, u.version),
                u.crate_name,
                u.kind,
                unit_time(u),
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
            );
            if let Some(c) = &u.miss_cause {
                let _ = writeln!(out, "      why: {}", c.one_line());
                if let Some(h) = &c.hint {
                    let _ = writeln!(out, "      hint: {h}");
                }
            }
        }
    }
    let reasons = reasons(r);
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nuncacheable, by reason");
        for (code, n, desc) in reasons {
            let _ = writeln!(out, "  {n:>4}  {code}: {desc}");
            if let Some(h) = reason_hint(code) {
                let _ = writeln!(out, "        hint: {h}");
            }
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
                section(u)
            );
        }
    }
    out
}

/// The widths of a section's name, crate and kind columns: the widest value of each
/// across every section, so no value runs into the next column (`build-script-run`,
/// long package names) and the sections line up.
fn column_widths(units: &[UnitRecord]) -> [usize; 3] {
    let mut w = [0usize; 3];
    for u in units {
        w[0] = w[0].max(u.package.chars().count() + 1 + u.version.chars().count());
        w[1] = w[1].max(u.crate_name.chars().count());
        w[2] = w[2].max(u.kind.chars().count());
    }
    w
}

/// Why units were not cached: each reason's code, how many units, what it means; the
/// most frequent first.
pub fn reasons(r: &BuildReport) -> Vec<(&str, usize, &'static str)> {
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for u in r.units.iter().filter(|u| u.outcome == Outcome::Uncacheable) {
        let code = u.reason.as_deref().unwrap_or("unknown");
        match reasons.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => reasons.push((code, 1)),
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    reasons
        .into_iter()
        .map(|(code, n)| {
            let desc = Uncacheable::all()
                .find(|u| u.code() == code)
                .map(|u| u.description())
                .unwrap_or("");
            (code, n, desc)
        })
        .collect()
}

/// Escapes what Markdown tables would read as structure.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;")
}

/// The Markdown summary (`cargo xcache report --format markdown`, and what a build
/// appends to `GITHUB_STEP_SUMMARY`).
pub fn render_markdown(r: &BuildReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### cargo-xcache: {} of {} units from the cache\n",
        s.hits, s.units
    );
    let _ = writeln!(
        out,
        "| seeded | restored | compiled | ran | uncacheable | failed |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |\n",
        s.seeded, s.restored, s.compiled, s.ran, s.uncacheable, s.errors
    );
    let _ = writeln!(
        out,
        "**Time:** wall {}, before cargo {}, critical path {}. **Saved:** {} of compile CPU, about {} of wall time (estimate).\n",
        secs(s.wall_ms),
        secs(s.before_cargo_ms),
        secs(s.critical_path_ms),
        secs(s.cpu_saved_ms),
        secs(s.wall_saved_ms)
    );
    if let Some(remote) = &r.remote {
        let _ = writeln!(
            out,
            "**Remote:** {} ({} hits, {} down, {} up)\n",
            md(remote),
            s.remote_hits,
            bytes(s.bytes_down),
            bytes(s.bytes_up)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "> warning: {} `{}`\n", md(&w.message), w.code);
    }
    let mut misses: Vec<_> = r
        .units
        .iter()
        .filter(|u| u.outcome == Outcome::Miss)
        .collect();
    misses.sort_by(|a, b| (&a.package, &a.kind).cmp(&(&b.package, &b.kind)));
    if !misses.is_empty() {
        let _ = writeln!(out, "#### Misses ({})\n", misses.len());
        let _ = writeln!(out, "| unit | kind | time | why |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for u in misses.iter().take(50) {
            let why = u
                .miss_cause
                .as_ref()
                .map(|c| c.one_line())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} |",
                md(&u.package),
                md(&u.version),
                u.kind,
                secs(u.compile_ms.unwrap_or(0)),
                md(&why)
            );
        }
        if misses.len() > 50 {
            let _ = writeln!(
                out,
                "\n{} more in `cargo xcache report`.",
                misses.len() - 50
            );
        }
        out.push('\n');
    }
    let reasons = reasons(r);
    if !reasons.is_empty() {
        let _ = writeln!(out, "#### Uncacheable, by reason\n");
        let _ = writeln!(out, "| reason | units | what it means |");
        let _ = writeln!(out, "|---|---:|---|");
        for (code, n, desc) in reasons {
            let hint = reason_hint(code)
                .map(|h| format!(" Hint: {h}."))
                .unwrap_or_default();
            let _ = writeln!(out, "| `{code}` | {n} | {}{} |", md(desc), md(&hint));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_column_runs_into_the_next() {
        let mut r = BuildReport::from_events(&[], Vec::new(), 0, "/s".into(), 0, 0);
        let unit = |package: &str, crate_name: &str, kind: &str, outcome| UnitRecord {
            compile_ms: Some(1200),
            restore_ms: Some(10),
            ..UnitRecord::new(
                package.into(),
                "0.1.0".into(),
                crate_name.into(),
                kind.into(),
                outcome,
            )
        };
        r.units = vec![
            unit(
                "a-package-with-a-rather-long-name",
                "build_script_build",
                "build-script-run",
                Outcome::Hit,
            ),
            unit("mid", "mid", "lib", Outcome::Miss),
            unit("x", "x", "build-script-run", Outcome::Miss),
        ];
        r.reconcile();
        let table = render_table(&r);
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .collect();
        assert_eq!(rows.len(), 3, "{table}");
        // Columns are set apart by two spaces at least, and start in the same place in
        // every section.
        let mut kind_at = Vec::new();
        for l in &rows {
            let fields: Vec<&str> = l
                .trim_start()
                .split("  ")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            assert_eq!(fields.len(), 4, "{l}");
            let kind = fields[2];
            assert!(["lib", "build-script-run"].contains(&kind), "{l}");
            kind_at.push(l.find(&format!("  {kind}  ")).unwrap());
        }
        assert!(kind_at.iter().all(|k| *k == kind_at[0]), "{table}");
    }
}
