//! `cargo xcache gc --remote --older-than D`: removes a remote's objects that were last
//! written longer ago than `D`, on the stores that can list their objects. Object
//! stores keep no read times, so "unused" means "not written for `D`": entries rewritten
//! by builds that compile them again stay, as a main branch's do. A REAPI server
//! (`grpc://`) evicts by its own policy: the command says so and removes nothing.

use std::time::{Duration, SystemTime};

use crate::config::BuildConfig;
use crate::errors::CliError;
use crate::store::RemoteStore;
use crate::store::gc::human_bytes;

pub fn run(cfg: &BuildConfig, older_than: Duration, dry_run: bool) -> Result<i32, CliError> {
    let Some(spec) = &cfg.remote else {
        return Err(CliError::GcRemote(
            "no remote store is configured (XCACHE_REMOTE, --remote-uri or `remote` in xcache.toml)".into(),
        ));
    };
    if let crate::config::RemoteKind::Reapi { .. } = spec.kind {
        // REAPI gives clients no listing and no deletion: the server collects.
        println!(
            "remote store {spec}: a REAPI server evicts by its own policy (the size, LRU or TTL bound of its CAS and action cache, set in the server's configuration); clients can neither list nor delete, so nothing is removed here"
        );
        println!(
            "  an evicted object reads as a miss, and the next build that compiles the unit stores it again"
        );
        return Ok(0);
    }
    let remote = RemoteStore::open(spec).map_err(|e| CliError::GcRemote(e.to_string()))?;
    let Some(objects) = remote
        .list()
        .map_err(|e| CliError::GcRemote(e.to_string()))?
    else {
        return Err(CliError::GcRemote(format!(
            "{spec} cannot list its objects"
        )));
    };
    let now = SystemTime::now();
    let aged = |t: Option<SystemTime>| {
        t.and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > older_than)
    };
    // A record kept as a chain of versions (`writes=once`) is found from its first
    // versions: it goes whole, once its newest version is old, or not at all.
    let mut newest_of_chain: std::collections::HashMap<&str, Option<SystemTime>> =
        std::collections::HashMap::new();
    for o in &objects {
        if let Some(record) = crate::store::chain_record(&o.path) {
            let newest = newest_of_chain.entry(record).or_insert(o.modified);
            *newest = (*newest).max(o.modified);
        }
    }
    let old: Vec<_> = objects
        .iter()
        .filter(|o| match crate::store::chain_record(&o.path) {
            Some(record) => aged(newest_of_chain[record]),
            None => aged(o.modified),
        })
        .collect();
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let mut freed = 0u64;
    let mut removed = 0usize;
    let mut failed = 0usize;
    for o in &old {
        if dry_run {
            removed += 1;
            freed += o.size;
            continue;
        }
        match remote.delete(&o.path) {
            Ok(()) => {
                removed += 1;
                freed += o.size;
            }
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("warning: xcache: failed to delete {}: {e}", o.path);
                }
            }
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "remote store {spec}: {} objects, {}",
        objects.len(),
        human_bytes(total)
    );
    println!(
        "  {verb} {removed} objects not written for {} ({})",
        humane(older_than),
        human_bytes(freed)
    );
    if failed > 0 {
        println!("  {failed} objects could not be deleted");
    }
    println!(
        "{} {}",
        if dry_run { "would free" } else { "freed" },
        human_bytes(freed)
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

fn humane(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
