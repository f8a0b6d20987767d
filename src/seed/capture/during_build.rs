//! Capturing while cargo still runs: whether cargo is done with a unit ([`settled`],
//! [`ready`]), a capture made then ([`capture_one`]), and whether it stands once cargo
//! has exited ([`still_as_read`]).

use std::fs;
use std::path::Path;

use super::stats::{Attempt, Stamps};
use super::unit::{Site, capture_unit};
use super::unit_files::{run_event, unit_dirs, unit_files};
use crate::wrapper::UnitEvent;

/// Captures one unit of `events` (as [`capture`](super::unit::capture) does), keeping what it read so that
/// [`still_as_read`] can tell, once cargo has exited, whether cargo wrote any of it
/// since.
pub fn capture_one(site: Site<'_>, ev: &UnitEvent, events: &[UnitEvent]) -> Attempt {
    let mut stamps = None;
    let result = capture_unit(site, ev, events, &mut stamps);
    Attempt {
        result,
        stamps: Stamps(stamps),
    }
}

/// Whether the files of the target dir a capture of `ev` read are all still as they were
/// then, and no file was added beside them: the same names, each the same inode with the
/// same length and modification time. cargo writes a unit's fingerprint after its
/// wrapper has exited, and rewrites it in place (a new length or time): a capture made
/// while cargo ran holds only if nothing it read moved since.
pub fn still_as_read(ev: &UnitEvent, events: &[UnitEvent], attempt: &Attempt) -> bool {
    let Some(read) = &attempt.stamps.0 else {
        return true;
    };
    let Some((pl, pr, run_fp, fp)) = unit_dirs(ev, events) else {
        return false;
    };
    unit_files(&pl.target_root, pl, pr, run_fp.as_deref(), &fp).is_ok_and(|files| {
        files.len() == read.len()
            && files
                .iter()
                .zip(read)
                .all(|(f, (rel, stamp))| f.rel == *rel && f.stamp == *stamp)
    })
}

/// Whether cargo is done with `ev`'s unit (and the build-script run it read): its
/// `.fingerprint` directory holds a fingerprint (a hash file and its `.json`) written
/// since the unit's wrapper started. cargo writes the fingerprint last, after the
/// wrapper has exited; until then a capture would read the last build's, or none. (Not
/// a proof: [`still_as_read`] is, once cargo has exited.)
pub fn settled(ev: &UnitEvent, events: &[UnitEvent]) -> bool {
    let Some((pl, _, run_fp, fp)) = unit_dirs(ev, events) else {
        // Nothing of the target dir is read: the capture stops at the event.
        return true;
    };
    let root = &pl.target_root;
    let written_since = |dir: &Path, since_ms: u64| -> bool {
        let Ok(rd) = fs::read_dir(dir) else {
            return false;
        };
        let since = std::time::UNIX_EPOCH + std::time::Duration::from_millis(since_ms);
        let fresh = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        };
        let mut any = false;
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                if !fresh(&p) || !fresh(&p.with_extension("")) {
                    return false;
                }
                any = true;
            }
        }
        any
    };
    if !written_since(&root.join(&fp), ev.start_ms) {
        return false;
    }
    match (&pl.run_dir, &run_fp) {
        (Some(run), Some(run_fp)) => run_event(events, run, root)
            .is_some_and(|run_ev| written_since(&root.join(run_fp), run_ev.start_ms)),
        _ => true,
    }
}

/// Whether every event capturing `ev` needs is among `events`: the event of the
/// build-script run its compile read, if any. (A unit's own event comes once its entry is
/// stored: a unit whose run is still being stored is captured later.)
pub fn ready(ev: &UnitEvent, events: &[UnitEvent]) -> bool {
    match &ev.place {
        Some(pl) => pl
            .run_dir
            .as_ref()
            .is_none_or(|run| run_event(events, run, &pl.target_root).is_some()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::capture::stats::Skip;

    /// A library unit's event whose place is `root`'s `debug/deps`, started at
    /// `start_ms`.
    fn lib_event(root: &Path, start_ms: u64) -> UnitEvent {
        serde_json::from_value(serde_json::json!({
            "format_version": 1,
            "unit": {
                "package": "foo", "version": "0.1.0", "crate_name": "foo", "kind": "lib",
                "target": null, "outcome": "miss", "reason": null, "compile_ms": 5,
                "restore_ms": null, "key": "11".repeat(32),
            },
            "overhead_ms": 0, "bytes": 0, "spk": "22".repeat(32), "warnings": [],
            "start_ms": start_ms,
            "place": {
                "target_root": root, "out_dir": "debug/deps", "unit_dir": "foo-0123",
                "run_dir": null, "cwd": root, "manifest_dir": root, "deps": [],
                "linker": null, "incremental": false,
            },
        }))
        .unwrap()
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// A unit is settled once its fingerprint (hash file and `.json`) was written after
    /// its wrapper started; a capture made then stands while nothing it read moved, and
    /// not once cargo wrote a file again (same length) or added one.
    #[test]
    fn a_capture_while_cargo_runs_stands_only_while_what_it_read_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let fp = root.join("debug/.fingerprint/foo-0123");
        fs::create_dir_all(&fp).unwrap();
        // A second early: file times come from the kernel's coarse clock, which lags
        // the precise one by a tick (the test failed about once in five).
        let started = now_ms() - 1_000;
        let ev = lib_event(root, started);
        let events = vec![ev.clone()];
        // No fingerprint yet: cargo is not done with the unit.
        assert!(!settled(&ev, &events));
        fs::write(fp.join("lib-foo.json"), "{}").unwrap();
        assert!(!settled(&ev, &events), "a .json without its hash file");
        fs::write(fp.join("lib-foo"), "0123456789abcdef").unwrap();
        assert!(settled(&ev, &events));
        // The last build's fingerprint (written before the wrapper started) is not this
        // one's.
        assert!(!settled(&lib_event(root, started + 60_000), &events));

        let read = |root: &Path| {
            let files = unit_files(
                root,
                ev.place.as_ref().unwrap(),
                "debug",
                None,
                "debug/.fingerprint/foo-0123",
            )
            .unwrap();
            Attempt {
                result: Ok(None),
                stamps: Stamps(Some(
                    files.iter().map(|f| (f.rel.clone(), f.stamp)).collect(),
                )),
            }
        };
        let attempt = read(root);
        assert_eq!(attempt.stamps.0.as_ref().unwrap().len(), 2);
        assert!(still_as_read(&ev, &events, &attempt));
        // Written again, the same length.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(fp.join("lib-foo"), "fedcba9876543210").unwrap();
        assert!(!still_as_read(&ev, &events, &attempt));
        let attempt = read(root);
        assert!(still_as_read(&ev, &events, &attempt));
        // A file added beside them.
        fs::write(fp.join("dep-lib-foo"), b"").unwrap();
        assert!(!still_as_read(&ev, &events, &attempt));
        // A capture that read nothing of the target dir stands.
        let nothing = Attempt {
            result: Err(Skip::NotCached),
            stamps: Stamps(None),
        };
        assert!(still_as_read(&ev, &events, &nothing));
        assert!(nothing.is_final());
        let io = Attempt {
            result: Err(Skip::Io),
            stamps: Stamps(None),
        };
        assert!(!io.is_final());
    }
}
