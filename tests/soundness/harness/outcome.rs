//! What one build gave ([`Outcome`]), what of it must be equal between the cache and
//! plain cargo, and how it is shown when it is not.

use std::collections::BTreeSet;

use crate::common::Report;

/// What must be equal between the cache and plain cargo, owned: build success, rustc
/// error codes, and the program's stdout and exit status.
pub(super) type Signature = (bool, BTreeSet<String>, Option<(String, String)>);

/// What one build gave.
pub(super) struct Outcome {
    pub(super) label: String,
    pub(super) ok: bool,
    pub(super) codes: BTreeSet<String>,
    pub(super) stderr: String,
    pub(super) program: Option<Program>,
    pub(super) exe: Option<Vec<u8>>,
    pub(super) report: Option<Report>,
}

#[derive(PartialEq, Eq)]
pub(super) struct Program {
    pub(super) stdout: String,
    pub(super) status: String,
    pub(super) stderr: String,
}

impl Outcome {
    /// What must be equal between the cache and plain cargo.
    pub(super) fn signature(&self) -> (bool, &BTreeSet<String>, Option<(&str, &str)>) {
        (
            self.ok,
            &self.codes,
            self.program
                .as_ref()
                .map(|p| (p.stdout.as_str(), p.status.as_str())),
        )
    }

    pub(super) fn describe(&self) -> String {
        let mut s = format!("{}: ", self.label);
        if self.ok {
            let p = self.program.as_ref().unwrap();
            s += &format!("built; program {} stdout {:?}", p.status, p.stdout);
            if !p.stderr.is_empty() {
                s += &format!(" stderr {:?}", clip(&p.stderr, 300));
            }
        } else {
            s += &format!(
                "build FAILED, error codes {:?}; stderr tail:\n{}",
                self.codes,
                indent(&tail(&self.stderr, 12))
            );
        }
        if let Some(r) = &self.report {
            s += &format!("\n    report: {}", summarize(r));
        }
        s
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("      {l}\n")).collect()
}

/// One line per report: the summary counters, then each unit's outcome.
fn summarize(r: &Report) -> String {
    let summary = &r.0["summary"];
    let counters: Vec<String> = [
        "units",
        "hits",
        "misses",
        "uncacheable",
        "seeded",
        "seed_rejected",
    ]
    .iter()
    .filter_map(|k| summary[k].as_u64().map(|v| format!("{k}={v}")))
    .collect();
    let units: Vec<String> = r.0["units"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| {
                    let kind = u["kind"].as_str().unwrap_or("?");
                    // Runs and build scripts share the crate name `build_script_build`.
                    let name = if kind.starts_with("build-script") {
                        u["package"].as_str()
                    } else {
                        u["crate_name"].as_str()
                    };
                    let mut s = format!(
                        "{}:{kind}={}",
                        name.unwrap_or("?"),
                        u["outcome"].as_str().unwrap_or("?")
                    );
                    if u["seeded"] == true {
                        s += "(seeded)";
                    }
                    if let Some(t) = u["tier"].as_str() {
                        s += &format!("({t})");
                    }
                    if let Some(reason) = u["reason"].as_str() {
                        s += &format!("[{reason}]");
                    }
                    s
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{} | {}", counters.join(" "), units.join(" "))
}

/// The `error[E…]` codes in rendered diagnostics.
pub(super) fn error_codes(stderr: &str) -> BTreeSet<String> {
    stderr
        .match_indices("error[E")
        .filter_map(|(i, _)| {
            let rest = &stderr[i + "error[".len()..];
            rest.find(']').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The diagnostics in rendered output, sorted (cargo prints units' in the order they
/// finish): each `warning…`/`error…` line with the place the next line gives
/// (`--> file:line:col`), cargo's own summaries among them; this program's warnings
/// (`warning: xcache: …`) are not diagnostics.
pub(super) fn diagnostics(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let head = line.starts_with("warning") || line.starts_with("error");
        if !head || line.contains(": xcache: ") {
            continue;
        }
        let place = lines
            .get(i + 1)
            .map(|l| l.trim_start())
            .filter(|l| l.starts_with("--> "))
            .unwrap_or("");
        out.push(format!("{line} {place}").trim_end().to_string());
    }
    out.sort();
    out.join("\n")
}

pub(super) fn owned(o: &Outcome) -> Signature {
    (
        o.ok,
        o.codes.clone(),
        o.program
            .as_ref()
            .map(|p| (p.stdout.clone(), p.status.clone())),
    )
}
