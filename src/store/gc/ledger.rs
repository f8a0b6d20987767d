//! When a build's end must collect: the last count of the store's size, and the
//! ledger of what builds added since ([`room_for`], [`note_added`]), or a count older
//! than [`IDLE_EVERY`].

use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use crate::store::LocalStore;

/// How long builds that wrote nothing new may go without a collection.
pub const IDLE_EVERY: Duration = Duration::from_secs(60 * 60);
/// Written by every collection when it ends: when the store was last counted (its
/// time) and the bytes it held then (its text).
pub(super) const COUNTED: &str = "gc.counted";
/// What builds that wrote to the store said they added since the last count: a number
/// of bytes a line ([`room_for`]).
pub(super) const ADDED: &str = "gc.added";
/// How full, by the last count and the ledger, a store may get before a build that
/// wrote to it collects (nine tenths of its size).
const ROOM_TENTHS: u64 = 9;
/// The longest count or ledger read (a line per build that wrote within the hour);
/// longer, a collection is due.
const LEDGER_LIMIT: u64 = 64 * 1024;

/// True when a build that added at most `adding` bytes to the store leaves it within
/// nine tenths of `max` by the last count and the ledger of what builds added since:
/// then it need not walk the store, whose cost grows with it (0.2 s for 60 000 files,
/// at the end of every build that compiled anything); [`note_added`] puts `adding` in
/// the ledger.
/// False, a collection due, when the store has no count with its size (none ran, or
/// one older than the ledger did), when the last count is older than [`IDLE_EVERY`]
/// (what keeps no ledger: the drop-in mode's writes, another tool), or when the ledger
/// cannot be read. The ledger is the store's word, like all of it: a false one can
/// only put a collection off until the hourly count.
pub fn room_for(store: &LocalStore, max: u64, adding: u64) -> bool {
    let root = store.root();
    if !counted_within(store, IDLE_EVERY) {
        return false;
    }
    let Some(counted) = crate::fsx::read_small(&root.join(COUNTED), LEDGER_LIMIT)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    else {
        return false;
    };
    // With the lines a collection took to count (one running now, or one that died
    // before it wrote its count).
    let mut ledger = 0u64;
    for name in [ADDED.to_string(), format!("{ADDED}.counting")] {
        match crate::fsx::read_small(&root.join(name), LEDGER_LIMIT) {
            Ok(text) => match text
                .lines()
                .map(|l| l.trim().parse::<u64>())
                .sum::<Result<u64, _>>()
            {
                Ok(n) => ledger = ledger.saturating_add(n),
                Err(_) => return false,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return false,
        }
    }
    let total = counted.saturating_add(ledger).saturating_add(adding);
    total <= max / 10 * ROOM_TENTHS
}

/// Adds `adding` bytes to the ledger of what builds added since the last count (see
/// [`room_for`]). Best effort: a ledger that cannot be written leaves the count to the
/// hourly collection.
pub fn note_added(store: &LocalStore, adding: u64) {
    use std::io::Write;
    // One short line appended: the lines of builds ending together do not mix.
    let _ = crate::fsx::open_in_place(
        &store.root().join(ADDED),
        fs::OpenOptions::new().create(true).append(true),
    )
    .and_then(|mut f| f.write_all(format!("{adding}\n").as_bytes()));
}

/// True when a collection ended within `period` (by `gc.counted`'s time; a time in the
/// future, or none, counts as long ago). A build that wrote nothing new to the store
/// collects only when this is false (one that wrote: [`room_for`]): the collection walks
/// every file of the store, and reads every entry's list of objects, so its cost grows
/// with the store, while such a build added at most the objects of entries it restored.
pub fn counted_within(store: &LocalStore, period: Duration) -> bool {
    fs::metadata(store.root().join(COUNTED))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < period)
}
