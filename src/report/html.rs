//! The timeline: one self-contained HTML file (`cargo xcache report --html`). Nothing
//! is fetched: the styles and the little script (sorting the tables) are inline, so the
//! file works opened from a CI artifact. The timeline itself is plain HTML, drawn here:
//! the units over time in job slots, coloured by what happened to them, the critical
//! path outlined.

use std::fmt::Write;

use super::BuildReport;
use super::render::{counts, reason_hint, reasons, section};
use crate::wrapper::UnitRecord;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// Puts units with times into job slots: each unit in the first slot free at its start.
fn slots(units: &[&UnitRecord]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| (units[i].start_ms, units[i].end_ms));
    let mut ends: Vec<u64> = Vec::new();
    let mut slot = vec![0; units.len()];
    for i in order {
        let (start, end) = (units[i].start_ms.unwrap_or(0), units[i].end_ms.unwrap_or(0));
        match ends.iter().position(|&e| e <= start) {
            Some(s) => {
                ends[s] = end;
                slot[i] = s;
            }
            None => {
                slot[i] = ends.len();
                ends.push(end);
            }
        }
    }
    slot
}

/// The colour of an outcome (the same as the timeline's bars).
fn colour(section: &str) -> &'static str {
    match section {
        "seeded" => "#2b8a3e",
        "restored" => "#40c057",
        "compiled" => "#e8590c",
        "ran" => "#f08c00",
        "uncacheable" => "#868e96",
        _ => "#c92a2a",
    }
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border-radius:3px}
.timeline{position:relative;border:1px solid #ccc;background:#fafafa;overflow:hidden}
.bar{position:absolute;height:16px;border-radius:2px;font-size:10px;line-height:16px;
 white-space:nowrap;overflow:hidden;color:#fff;padding-left:2px;box-sizing:border-box}
.bar.critical{outline:2px solid #000;z-index:2}
.c-seeded{background:#2b8a3e;color:#fff}.c-restored{background:#40c057;color:#fff}
.c-compiled{background:#e8590c;color:#fff}.c-ran{background:#f08c00;color:#fff}
.c-uncacheable{background:#868e96;color:#fff}.c-failed{background:#c92a2a;color:#fff}
td.o{border-left-width:6px}
.before{position:absolute;top:0;bottom:0;left:0;background:repeating-linear-gradient(45deg,#d3f9d8,#d3f9d8 6px,#ebfbee 6px,#ebfbee 12px)}
table{border-collapse:collapse;margin-top:.5em}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f1f3f5;cursor:pointer;user-select:none}
td.n{text-align:right;font-variant-numeric:tabular-nums}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var dir=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=dir;
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.v||a.cells[col].textContent,
            y=b.cells[col].dataset.v||b.cells[col].textContent;
        var nx=parseFloat(x),ny=parseFloat(y),r;
        r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return dir==='asc'?r:-r;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
document.body.dataset.ready='1';
"#;

/// The whole page.
pub fn render_html(r: &BuildReport) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>cargo-xcache build report</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(
        out,
        "<h1>cargo-xcache: {} units: {}</h1>",
        s.units,
        esc(&counts(r))
    );
    let _ = writeln!(
        out,
        "<p id=\"summary\">Wall {} ({} before cargo, placing seeded units {}), critical path {}. \
         Saved {} of compile CPU, about {} of wall time (estimate from the critical path). \
         Store: {}.</p>",
        secs(s.wall_ms),
        secs(s.before_cargo_ms),
        secs(s.seed_ms),
        secs(s.critical_path_ms),
        secs(s.cpu_saved_ms),
        secs(s.wall_saved_ms),
        esc(&r.store.display().to_string())
    );
    for w in &r.warnings {
        let _ = writeln!(
            out,
            "<p class=\"warning\">warning: {} [{}]</p>",
            esc(&w.message),
            esc(&w.code)
        );
    }

    // The timeline.
    let timed: Vec<&UnitRecord> = r.units.iter().filter(|u| u.start_ms.is_some()).collect();
    let slot = slots(&timed);
    let lanes = slot.iter().max().map_or(0, |m| m + 1);
    let span = timed
        .iter()
        .filter_map(|u| u.end_ms)
        .max()
        .unwrap_or(0)
        .max(s.wall_ms)
        .max(1);
    let pct = |ms: u64| ms as f64 * 100.0 / span as f64;
    let _ = writeln!(out, "<h2>Timeline</h2>");
    let _ = writeln!(
        out,
        "<p class=\"legend\">{}<span style=\"outline:2px solid #000\">critical path</span> \
         hatched: before cargo started ({} seeded units placed)</p>",
        super::render::SECTIONS
            .iter()
            .map(|c| format!("<span class=\"c-{c}\">{c}</span>"))
            .collect::<String>(),
        s.seeded
    );
    let _ = writeln!(
        out,
        "<div class=\"timeline\" id=\"timeline\" data-slots=\"{lanes}\" style=\"height:{}px\">",
        lanes.max(1) * 20 + 4
    );
    let _ = writeln!(
        out,
        "<div class=\"before\" style=\"width:{:.3}%\" title=\"before cargo: {}\"></div>",
        pct(s.before_cargo_ms),
        secs(s.before_cargo_ms)
    );
    for (u, lane) in timed.iter().zip(&slot) {
        let (start, end) = (u.start_ms.unwrap_or(0), u.end_ms.unwrap_or(0));
        let class = section(u);
        let _ = writeln!(
            out,
            "<div class=\"bar c-{class}{}\" style=\"left:{:.3}%;width:{:.3}%;top:{}px\" \
             title=\"{} {} ({}): {class}, {} to {}\">{}</div>",
            if u.critical { " critical" } else { "" },
            pct(start),
            pct(end.saturating_sub(start)).max(0.2),
            lane * 20 + 2,
            esc(&u.package),
            esc(&u.version),
            esc(&u.kind),
            secs(start),
            secs(end),
            esc(&u.package),
        );
    }
    let _ = writeln!(out, "</div>");
    let _ = writeln!(
        out,
        "<p>{} units in {lanes} job slots over {}; the critical path runs through {} units.</p>",
        timed.len(),
        secs(span),
        r.units.iter().filter(|u| u.critical).count()
    );

    // Uncacheable reasons.
    let reasons = reasons(r);
    if !reasons.is_empty() {
        let _ = writeln!(out, "<h2>Uncacheable, by reason</h2>");
        let _ = writeln!(
            out,
            "<table class=\"sortable\" id=\"reasons\"><thead><tr><th>reason</th><th>units</th>\
             <th>what it means</th></tr></thead><tbody>"
        );
        for (code, n, desc) in reasons {
            let hint = reason_hint(code)
                .map(|h| format!(" <em>Hint: {}</em>", esc(h)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"n\">{n}</td><td>{}{hint}</td></tr>",
                esc(code),
                esc(desc)
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }

    // Every unit.
    let _ = writeln!(out, "<h2>Units</h2>");
    let _ = writeln!(
        out,
        "<table class=\"sortable\" id=\"units\"><thead><tr><th>package</th><th>version</th>\
         <th>kind</th><th>outcome</th><th>compile</th><th>restore</th><th>start</th>\
         <th>critical</th><th>why</th></tr></thead><tbody>"
    );
    for u in &r.units {
        let ms = |v: Option<u64>| match v {
            Some(v) => format!("<td class=\"n\" data-v=\"{v}\">{}</td>", secs(v)),
            None => "<td class=\"n\" data-v=\"-1\"></td>".to_string(),
        };
        let why = match (&u.reason, &u.miss_cause) {
            (Some(r), _) => r.clone(),
            (None, Some(c)) => c.one_line(),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"row {}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"o\" style=\"border-left-color:{}\">{}</td>{}{}{}<td>{}</td><td>{}</td></tr>",
            section(u),
            esc(&u.package),
            esc(&u.version),
            esc(&u.kind),
            colour(section(u)),
            section(u),
            ms(u.compile_ms),
            ms(u.restore_ms),
            ms(u.start_ms),
            if u.critical { "yes" } else { "" },
            esc(&why)
        );
    }
    let _ = writeln!(out, "</tbody></table>");
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
