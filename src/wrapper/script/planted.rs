//! Planting's marker in a build-script run's directory ([`PLANTED_MARKER`]), and the
//! `OUT_DIR` emptied when cargo runs a planted script anyway.

use std::fs;
use std::path::Path;

/// The file planting leaves in a build-script run's directory (beside its `OUT_DIR`)
/// that it put in place. cargo may still find the run stale (its fingerprint embeds what
/// the cache cannot predict, such as the path of a package in another `CARGO_HOME`) and
/// run the script: then the `OUT_DIR` holds what planting put there, which a fresh
/// target dir would not, and the shim empties it first ([`clear_rejected_plant`]). The
/// front-end removes the markers of the runs cargo used, after the build.
pub const PLANTED_MARKER: &str = "xcache-planted";

/// Empties `out_dir` when planting put it in place in this build and cargo runs the
/// script anyway (see [`PLANTED_MARKER`]), so the run sees what a fresh target dir holds.
pub fn clear_rejected_plant(out_dir: &Path) {
    let Some(marker) = out_dir.parent().map(|d| d.join(PLANTED_MARKER)) else {
        return;
    };
    if !marker.exists() {
        return;
    }
    let _ = fs::remove_dir_all(out_dir);
    let _ = fs::create_dir_all(out_dir);
    let _ = fs::remove_file(marker);
}
