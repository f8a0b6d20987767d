//! The leases of running builds: each build's lease file, and when the oldest build
//! still running began ([`oldest_lease`]); a killed build's lease is removed.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

/// The directory of running builds' lease files ([`crate::store::LocalStore::lease`]).
pub const LEASES: &str = "leases";

/// When the oldest build still running began, by its lease file: a file whose lock can
/// be taken is a killed build's, removed here (unless `dry_run`).
pub(super) fn oldest_lease(root: &Path, dry_run: bool) -> Option<SystemTime> {
    let mut oldest: Option<SystemTime> = None;
    for e in fs::read_dir(root.join(LEASES)).ok()?.flatten() {
        let path = e.path();
        // Read only: another user's lease file counts too.
        let Ok(f) = crate::fsx::open_in_place(&path, fs::OpenOptions::new().read(true)) else {
            continue;
        };
        match f.try_lock() {
            Ok(()) => {
                if !dry_run {
                    let _ = fs::remove_file(&path);
                }
            }
            Err(fs::TryLockError::WouldBlock) => {
                if let Ok(t) = f.metadata().and_then(|m| m.modified()) {
                    oldest = Some(oldest.map_or(t, |o| o.min(t)));
                }
            }
            Err(fs::TryLockError::Error(_)) => {}
        }
    }
    oldest
}
