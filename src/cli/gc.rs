//! `cargo xcache gc`: keep the local store under its size, remove temp files left
//! behind; with `--remote`, remove a listable remote's objects older than a duration.
//! Every run says what it removes and what that frees.

use super::args::GcArgs;
use crate::errors::CliError;
use crate::store::LocalStore;
use crate::store::gc::{GcOptions, collect, human_bytes};

pub fn run(args: GcArgs) -> Result<i32, CliError> {
    let (env, cwd, mut cfg) = super::workspace::settings_here()?;
    if args.remote {
        cfg.resolve_remote(&env, args.remote_uri.as_deref(), false, &cwd)?;
        return super::remote_gc::run(&cfg, args.older_than.unwrap_or_default(), args.dry_run);
    }
    let store = LocalStore::open(&cfg.store_dir).map_err(|e| CliError::Gc {
        path: cfg.store_dir.path().to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let max_size = args.max_size.or(store.max_size());
    let r = collect(
        &store,
        &GcOptions {
            max_size,
            dry_run: args.dry_run,
        },
    )
    .map_err(|source| CliError::Gc {
        path: store.root().to_path_buf(),
        source,
    })?;
    if r.busy {
        println!(
            "another collection of {} is running; nothing done",
            store.root().display()
        );
        return Ok(0);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "local store {}: {} entries, {} in {} files; limit {}",
        store.root().display(),
        r.entries,
        human_bytes(r.bytes),
        r.files,
        max_size.map_or("none".to_string(), human_bytes),
    );
    if r.objects_evicted > 0 {
        println!(
            "  {verb} {} loose objects kept for hard links ({}; their entries stay)",
            r.objects_evicted,
            human_bytes(r.objects_evicted_bytes)
        );
    }
    println!(
        "  {verb} {} least recently used entries ({})",
        r.evicted,
        human_bytes(r.evicted_bytes)
    );
    if r.kept_recent > 0 {
        println!(
            "  kept {} entries used within the last {} min although the store is over its limit (a build may still restore them)",
            r.kept_recent,
            r.grace.as_secs() / 60
        );
    }
    println!(
        "  {verb} {} temp files left by killed builds ({})",
        r.temps,
        human_bytes(r.temp_bytes)
    );
    println!(
        "{} {}; the store {} {}",
        if args.dry_run { "would free" } else { "freed" },
        human_bytes(r.evicted_bytes + r.objects_evicted_bytes + r.temp_bytes),
        if args.dry_run { "would hold" } else { "holds" },
        human_bytes(r.bytes_after())
    );
    Ok(0)
}
