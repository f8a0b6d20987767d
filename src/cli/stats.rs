//! `cargo xcache stats [--json]`: what the cache did across the builds the store
//! recorded (`store::history`), and what the store holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::StatsArgs;
use super::workspace::{resolve_remote_in_workspace, settings_here};
use crate::config::BuildConfig;
use crate::errors::CliError;
use crate::store::gc::{GcOptions, collect, human_bytes};
use crate::store::{LocalStore, RemoteStore};

pub fn run(args: StatsArgs) -> Result<i32, CliError> {
    let (env, cwd, mut cfg) = settings_here()?;
    resolve_remote_in_workspace(None, &mut cfg, &env, &cwd, args.remote.as_deref(), true)?;
    let store = LocalStore::open(&cfg.store_dir).map_err(|e| CliError::StoreDir {
        path: cfg.store_dir.path().to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let stats = Stats::gather(&store, &cfg);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats.json()).expect("stats serialize")
        );
    } else {
        print!("{}", stats.text());
    }
    Ok(0)
}

/// Totals over the recorded builds, and the store's size.
#[derive(Debug, Default)]
struct Stats {
    store: PathBuf,
    builds: usize,
    units: u64,
    hits: u64,
    seeded: u64,
    restored: u64,
    compiled: u64,
    ran: u64,
    uncacheable: u64,
    cpu_saved_ms: u64,
    wall_saved_ms: u64,
    bytes_restored: u64,
    bytes_stored: u64,
    bytes_down: u64,
    bytes_up: u64,
    causes: BTreeMap<String, u64>,
    local_bytes: u64,
    local_entries: usize,
    remote: Option<String>,
    /// `Some((bytes, entries))` when the remote could be listed.
    remote_size: Option<(u64, usize)>,
    remote_note: Option<String>,
}

impl Stats {
    fn gather(store: &LocalStore, cfg: &BuildConfig) -> Stats {
        let mut s = Stats {
            store: cfg.store_dir.path().to_path_buf(),
            ..Stats::default()
        };
        let n = |v: &serde_json::Value, f: &str| v[f].as_u64().unwrap_or(0);
        for b in store.read_builds() {
            s.builds += 1;
            s.units += n(&b, "units");
            s.hits += n(&b, "hits");
            s.seeded += n(&b, "seeded");
            s.restored += n(&b, "restored");
            s.compiled += n(&b, "compiled");
            s.ran += n(&b, "ran");
            s.uncacheable += n(&b, "uncacheable");
            s.cpu_saved_ms += n(&b, "cpu_saved_ms");
            s.wall_saved_ms += n(&b, "wall_saved_ms");
            s.bytes_restored += n(&b, "bytes_restored");
            s.bytes_stored += n(&b, "bytes_stored");
            s.bytes_down += n(&b, "bytes_down");
            s.bytes_up += n(&b, "bytes_up");
            if let Some(m) = b["miss_causes"].as_object() {
                for (k, v) in m {
                    *s.causes.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
                }
            }
        }
        // A dry run without a size evicts and removes nothing: a survey.
        if let Ok(r) = collect(
            store,
            &GcOptions {
                max_size: None,
                dry_run: true,
            },
        ) {
            s.local_bytes = r.bytes;
            s.local_entries = r.entries;
        }
        if let Some(spec) = &cfg.remote {
            s.remote = Some(spec.display().to_string());
            match RemoteStore::open(spec).and_then(|r| r.list()) {
                Ok(Some(objects)) => {
                    let entries = objects.iter().filter(|o| o.path.ends_with(".xce")).count();
                    s.remote_size = Some((objects.iter().map(|o| o.size).sum(), entries));
                }
                Ok(None) => s.remote_note = Some("this service cannot list its objects".into()),
                Err(e) => s.remote_note = Some(format!("failed to list: {e}")),
            }
        }
        s
    }

    fn hit_rate(&self) -> f64 {
        if self.units == 0 {
            0.0
        } else {
            self.hits as f64 / self.units as f64
        }
    }

    /// Miss causes, the most frequent first.
    fn top_causes(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.causes.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": 1,
            "store": self.store,
            "builds": self.builds,
            "units": self.units,
            "hits": self.hits,
            "hit_rate": self.hit_rate(),
            "seeded": self.seeded,
            "restored": self.restored,
            "compiled": self.compiled,
            "ran": self.ran,
            "uncacheable": self.uncacheable,
            "cpu_saved_ms": self.cpu_saved_ms,
            "wall_saved_ms": self.wall_saved_ms,
            "bytes": {
                "restored_local": self.bytes_restored,
                "stored_local": self.bytes_stored,
                "down_remote": self.bytes_down,
                "up_remote": self.bytes_up,
            },
            "local": { "bytes": self.local_bytes, "entries": self.local_entries },
            "remote": self.remote.as_ref().map(|r| serde_json::json!({
                "store": r,
                "bytes": self.remote_size.map(|(b, _)| b),
                "entries": self.remote_size.map(|(_, e)| e),
                "note": self.remote_note,
            })),
            "miss_causes": self.top_causes().into_iter()
                .map(|(k, n)| serde_json::json!({"cause": k, "units": n}))
                .collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        use std::fmt::Write;
        let secs = |ms: u64| format!("{:.2}s", ms as f64 / 1000.0);
        let mut out = String::new();
        let _ = writeln!(out, "store: {}", self.store.display());
        let _ = writeln!(
            out,
            "builds recorded: {} (the last {} are kept)",
            self.builds,
            crate::store::history::MAX_BUILDS
        );
        let _ = writeln!(
            out,
            "units: {}, hit rate {:.1}% ({} seeded, {} restored, {} compiled, {} ran, {} uncacheable)",
            self.units,
            self.hit_rate() * 100.0,
            self.seeded,
            self.restored,
            self.compiled,
            self.ran,
            self.uncacheable
        );
        let _ = writeln!(
            out,
            "saved: compile CPU {}, wall about {} (estimates, summed over builds)",
            secs(self.cpu_saved_ms),
            secs(self.wall_saved_ms)
        );
        let _ = writeln!(
            out,
            "bytes: local {} restored, {} stored; remote {} down, {} up",
            human_bytes(self.bytes_restored),
            human_bytes(self.bytes_stored),
            human_bytes(self.bytes_down),
            human_bytes(self.bytes_up)
        );
        let _ = writeln!(
            out,
            "local store: {} in {} entries",
            human_bytes(self.local_bytes),
            self.local_entries
        );
        if let Some(r) = &self.remote {
            match (self.remote_size, &self.remote_note) {
                (Some((b, e)), _) => {
                    let _ = writeln!(out, "remote store {r}: {} in {e} entries", human_bytes(b));
                }
                (None, Some(note)) => {
                    let _ = writeln!(out, "remote store {r}: size unknown ({note})");
                }
                (None, None) => {}
            }
        }
        let top = self.top_causes();
        if !top.is_empty() {
            let _ = writeln!(out, "most frequent miss causes:");
            for (k, n) in top.iter().take(8) {
                let _ = writeln!(out, "  {n:>6}  {k}");
            }
        }
        out
    }
}
