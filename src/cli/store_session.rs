//! The local store around one `cargo xcache build`: opened once before cargo starts (an
//! unusable store is one warning, and the build goes on without it), leased for the
//! build's length, kept under its size when the build ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::BuildConfig;
use crate::report::{BuildReport, Verbosity};
use crate::store::gc::{
    GcOptions, IDLE_EVERY, collect, counted_within, human_bytes, note_added, room_for,
    sweep_temp_files,
};
use crate::store::{Lease, LocalStore};
use crate::wrapper::Warning;

/// How often a build looks for temp files killed builds left in its target dir.
const SWEEP_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Touched when a build last looked for temp files killed builds left in its target dir.
fn swept_stamp(target_dir: &Path) -> PathBuf {
    target_dir.join("xcache").join("swept")
}

/// A target dir this build made holds no temp file a killed build left (what the sweep
/// removes is over an hour old): its first sweep is due a day from now, not when this
/// build ends (a walk of every file the build wrote, on the way out).
pub(super) fn mark_swept(target_dir: &Path) {
    let _ = std::fs::write(swept_stamp(target_dir), b"");
}

/// Room for what one build may have written to the store besides its entries and
/// objects (manifests, seed records, key history, object lists), per unit.
const PER_UNIT_ALLOWANCE: u64 = 64 * 1024;

/// At most the bytes a build added to the store: its entries' contents before
/// compression and their objects, what it restored or downloaded (an entry fetched, the
/// objects a restore makes), its seed packs twice (the pack, and the objects made of
/// its rlib and build-script executables), and an allowance per unit for the small
/// files. Objects planting makes again for files a pack held (where the store had lost
/// them) are not in it: the hourly count finds them.
pub(super) fn added_at_most(
    report: &BuildReport,
    events: &[crate::wrapper::UnitEvent],
    captured: &[crate::seed::Captured],
) -> u64 {
    let s = &report.summary;
    let objects: u64 = events.iter().map(|e| e.object_bytes).sum();
    let packs: u64 = captured.iter().map(|c| c.variant.bytes).sum();
    let units = (events.len() + captured.len()) as u64;
    [
        s.bytes_stored,
        s.bytes_restored,
        s.bytes_down,
        objects,
        packs.saturating_mul(2),
        units.saturating_mul(PER_UNIT_ALLOWANCE),
    ]
    .iter()
    .fold(0u64, |a, b| a.saturating_add(*b))
}

/// The local store of one build.
pub(super) struct StoreSession {
    store: Option<LocalStore>,
    lease: Option<Lease>,
    warning: Option<Warning>,
}

impl StoreSession {
    /// Opens the store. When it cannot be used (`XCACHE_DIR` names a file, a directory
    /// that cannot be written), the build goes on without it: the wrappers compile every
    /// unit and the report carries one warning.
    pub fn start(cfg: &BuildConfig) -> StoreSession {
        if cfg.disabled {
            return StoreSession {
                store: None,
                lease: None,
                warning: None,
            };
        }
        match LocalStore::open(&cfg.store_dir) {
            Ok(store) => {
                let lease = store.lease();
                StoreSession {
                    store: Some(store),
                    lease,
                    warning: None,
                }
            }
            Err(e) => StoreSession {
                store: None,
                lease: None,
                warning: Some(Warning {
                    code: e.code().to_string(),
                    message: format!(
                        "{e}; the build goes on without the local store (set {} to a directory you can write to)",
                        crate::config::vars::DIR
                    ),
                }),
            },
        }
    }

    /// Adds the store's warning to the report, ends the lease and keeps the store under
    /// its size; now and then removes temp files killed builds left in the target dir.
    /// `added`: at most the bytes the build added to the store ([`added_at_most`]).
    pub fn finish(
        self,
        report: &mut BuildReport,
        added: u64,
        target_dir: &Path,
        verbosity: Verbosity,
    ) {
        // The front-end's word on the store stands for the wrappers' (same code).
        if let Some(w) = self.warning {
            report.warnings.retain(|x| x.code != w.code);
            report.warnings.insert(0, w);
        }
        drop(self.lease);
        // A build that compiled, ran, downloaded (prefetched, pieces of bundles, entries
        // fetched by a wrapper) and captured nothing put little in the store (at most
        // the objects of entries it restored): it leaves the collection, whose walk
        // grows with the store, to the next build that does, or to the first after an
        // hour. One that did collects only when what it added may take the store past
        // nine tenths of its size, by the last count and what builds added since
        // (`gc::room_for`), or when the last count is an hour old.
        let s = &report.summary;
        let wrote = s.misses > 0
            || s.bytes_down > 0
            || s.prefetched > 0
            || s.prefetch_pieces > 0
            || s.remote_hits > 0
            || s.captured > 0;
        if let Some(store) = &self.store
            && let Some(max) = store.max_size()
        {
            let due = if wrote {
                !room_for(store, max, added)
            } else {
                !counted_within(store, IDLE_EVERY)
            };
            let r = due
                .then(|| {
                    collect(
                        store,
                        &GcOptions {
                            max_size: Some(max),
                            dry_run: false,
                        },
                    )
                    .ok()
                })
                .flatten();
            // What it added is in the ledger unless a collection of its own counted it
            // (another one, busy, may have walked past it).
            if wrote && r.as_ref().is_none_or(|r| r.busy) {
                note_added(store, added);
            }
            if let Some(r) = r.filter(|r| r.evicted > 0) {
                verbosity.note(&format!(
                    "xcache: evicted {} least recently used entries ({}) to keep the store under {}",
                    r.evicted,
                    human_bytes(r.evicted_bytes),
                    human_bytes(max),
                ));
            }
        }
        let stamp = swept_stamp(target_dir);
        let due = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_none_or(|age| age > SWEEP_EVERY);
        if due && std::fs::write(&stamp, b"").is_ok() {
            sweep_temp_files(target_dir);
        }
    }
}
