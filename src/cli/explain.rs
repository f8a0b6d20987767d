//! `cargo xcache explain <package>[@version]`: what the last build did with a package's
//! units, and for each miss the nearest earlier key and what differed.

use super::args::ExplainArgs;
use super::report_cmd::load_report;
use crate::config::{BuildConfig, Env};
use crate::errors::CliError;
use crate::report::{describe, reason_hint, section};
use crate::store::LocalStore;
use crate::store::history::UnitId;

pub fn run(args: ExplainArgs) -> Result<i32, CliError> {
    let (_, _, report) = load_report(args.manifest_path.as_deref(), args.target_dir.as_deref())?;
    let (name, version) = match args.package.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (args.package.as_str(), None),
    };
    let mut units: Vec<_> = report
        .units
        .iter()
        .filter(|u| u.package == name && version.is_none_or(|v| u.version == v))
        .collect();
    if units.is_empty() {
        let mut known: Vec<&str> = report.units.iter().map(|u| u.package.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        return Err(CliError::NotInReport {
            package: args.package.clone(),
            known: known.iter().take(20).map(|s| s.to_string()).collect(),
        });
    }
    units.sort_by(|a, b| (&a.version, &a.kind).cmp(&(&b.version, &b.kind)));
    let env = Env::capture();
    let cwd = super::workspace::working_dir();
    let store = BuildConfig::resolve(&env, cwd)
        .ok()
        .and_then(|cfg| LocalStore::open(&cfg.store_dir).ok());
    for u in units {
        println!(
            "{} {} {} ({}): {}",
            u.package,
            u.version,
            u.crate_name,
            u.kind,
            section(u)
        );
        if let Some(store) = &store {
            let id = UnitId {
                package: &u.package,
                crate_name: &u.crate_name,
                kind: &u.kind,
                target: u.target.as_deref(),
            };
            let n = store.read_history(&id).records.len();
            println!("  key history: {n} keys recorded in the store");
        }
        if let Some(r) = &u.reason {
            println!("  reason: {r}");
            if let Some(d) = &u.detail {
                println!("  what: {d}");
            }
            if let Some(h) = reason_hint(r) {
                println!("  hint: {h}");
            }
        }
        if let Some(c) = &u.miss_cause {
            match &c.nearest_l1 {
                Some(l1) => println!(
                    "  nearest earlier key: {} ({} differences)",
                    &l1[..l1.len().min(16)],
                    c.total
                ),
                None => println!("  no earlier key of this unit is recorded"),
            }
            for d in &c.differences {
                println!("    - {}", describe(d));
            }
            if c.total > c.differences.len() {
                println!("    - … {} more", c.total - c.differences.len());
            }
            if let Some(h) = &c.hint {
                println!("  hint: {h}");
            }
        }
    }
    Ok(0)
}
