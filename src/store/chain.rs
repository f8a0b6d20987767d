//! The records many builds change (a workspace's index, a manifest) on a store that
//! keeps each name once (the GitHub Actions cache; a bucket with `writes=once`): a
//! chain of versions `NAME.0.version`, `NAME.1.version`, …, each written once and holding the
//! whole record as its writer made it from the version before. A writer reads the
//! newest version, merges its change in and writes the next one only if no object has
//! that name yet; a writer that lost the name to another reads the newest again and
//! tries the one after. No version is ever replaced, so none of the writers' changes is
//! lost: each version holds all the ones before it.
//!
//! The newest version is found in about 2·log2(N) lookups for N versions (doubling,
//! then halving). A name a writer reserved and never wrote (a killed writer on the
//! GitHub Actions cache) reads as absent: the reader looks one past it, and a writer
//! that found it taken writes the next one.

use std::time::Duration;

use crate::errors::CacheError;

/// How many versions a writer tries before it gives its change up (a prefetch later,
/// never a wrong build).
const ATTEMPTS: u32 = 16;

/// The wait before round `attempt` of an update: random, growing with the attempt
/// (10-40 ms, then 20-80 ms, …, at most 640 ms), so that writers that collided do not
/// collide again.
pub(super) fn update_backoff(attempt: u32) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let base = 10u64 << attempt.min(6).saturating_sub(1);
    let spread = u64::from(u16::from_le_bytes(b)) % (3 * base + 1);
    Duration::from_millis(base + spread)
}

/// What the chain needs of a store.
pub(crate) trait Versions {
    /// Whether an object has this name (reserved and never written: no).
    fn has_version(&self, path: &str) -> Result<bool, CacheError>;
    /// The object's bytes, `None` if absent.
    fn read_version(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// Writes the object only if no object has its name: false when one had (or a
    /// writer had reserved it).
    fn create_version(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError>;
}

/// The name of version `n` of the record at `path`. No version's name begins with
/// another's (`NAME.1.version`, `NAME.10.version`), so that a service that finds a key
/// by its beginning (the GitHub Actions cache matches restore keys so) never answers
/// one version with another.
pub(crate) fn version_path(path: &str, n: u32) -> String {
    format!("{path}.{n}.version")
}

/// The record a version's name belongs to (`NAME` for `NAME.3.version`); `None` for
/// any other name.
pub fn chain_record(name: &str) -> Option<&str> {
    let (record, n) = name.strip_suffix(".version")?.rsplit_once('.')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(record)
}

/// The number of the newest version (0 when there is none, or only version 0).
fn newest_number(store: &dyn Versions, path: &str) -> Result<u32, CacheError> {
    let exists = |n: u32| store.has_version(&version_path(path, n));
    // Doubling: `low` is a version known to exist (or 0, not known), `high` one known
    // to be absent.
    let mut low = 0;
    let mut high = 1;
    while exists(high)? {
        low = high;
        high = match high.checked_mul(2) {
            Some(h) => h,
            None => return Ok(low),
        };
    }
    // Halving between them.
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if exists(mid)? {
            low = mid;
        } else {
            high = mid;
        }
    }
    // A name reserved and never written leaves a gap: one past it is looked at, and
    // further while versions follow.
    let mut top = low;
    let mut absent = Some(high);
    loop {
        if absent != Some(top + 1) && exists(top + 1)? {
            top += 1;
        } else if exists(top + 2)? {
            top += 2;
            absent = None;
        } else {
            return Ok(top);
        }
    }
}

/// The newest version of the record at `path`: its number and bytes (`None`: there is
/// none, or it was evicted between the lookup and the read, which reads as a miss).
fn newest_parts(store: &dyn Versions, path: &str) -> Result<(u32, Option<Vec<u8>>), CacheError> {
    let n = newest_number(store, path)?;
    Ok((n, store.read_version(&version_path(path, n))?))
}

/// The newest version of the record at `path`, `None` when the chain is empty.
pub(crate) fn newest(store: &dyn Versions, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
    Ok(newest_parts(store, path)?.1)
}

/// Adds a writer's change to the record at `path`: `merge` makes the new record from
/// the newest version (`None`: none), `holds` says whether a record keeps the change
/// already (then nothing is written).
pub(crate) fn update(
    store: &dyn Versions,
    path: &str,
    merge: &dyn Fn(Option<&[u8]>) -> Vec<u8>,
    holds: &dyn Fn(&[u8]) -> bool,
) -> Result<(), CacheError> {
    // The lowest number not known to be taken.
    let mut floor = 0;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(update_backoff(attempt));
        }
        let (top, now) = newest_parts(store, path)?;
        let next = if top == 0 && now.is_none() {
            0
        } else {
            top + 1
        };
        if now.as_deref().is_some_and(holds) {
            return Ok(());
        }
        let n = next.max(floor);
        if store.create_version(&version_path(path, n), merge(now.as_deref()))? {
            return Ok(());
        }
        floor = n + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    use super::*;

    /// Names written once, and names reserved by writers that never wrote.
    #[derive(Default)]
    struct Once {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        reserved: Mutex<BTreeSet<String>>,
        lookups: Mutex<u32>,
    }

    impl Versions for Once {
        fn has_version(&self, path: &str) -> Result<bool, CacheError> {
            *self.lookups.lock().unwrap() += 1;
            Ok(self.objects.lock().unwrap().contains_key(path))
        }
        fn read_version(&self, path: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Ok(self.objects.lock().unwrap().get(path).cloned())
        }
        fn create_version(&self, path: &str, bytes: Vec<u8>) -> Result<bool, CacheError> {
            if self.reserved.lock().unwrap().contains(path) {
                return Ok(false);
            }
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(path) {
                return Ok(false);
            }
            objects.insert(path.to_string(), bytes);
            Ok(true)
        }
    }

    /// A record of lines; a writer's change is one line.
    fn add(store: &Once, line: &str) {
        update(
            store,
            "r",
            &|now| {
                let mut s = now
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                s.push_str(line);
                s.push('\n');
                s.into_bytes()
            },
            &|b| String::from_utf8_lossy(b).lines().any(|l| l == line),
        )
        .unwrap();
    }

    fn lines(store: &Once) -> BTreeSet<String> {
        let b = newest(store, "r").unwrap().unwrap();
        String::from_utf8(b)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn an_empty_chain_is_none_and_the_first_version_is_number_0() {
        let store = Once::default();
        assert!(newest(&store, "r").unwrap().is_none());
        add(&store, "a");
        assert!(store.objects.lock().unwrap().contains_key("r.0.version"));
        assert_eq!(newest_number(&store, "r").unwrap(), 0);
    }

    #[test]
    fn writers_at_once_each_keep_their_change() {
        let store = Once::default();
        std::thread::scope(|s| {
            for t in 0..8 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..5 {
                        add(store, &format!("{t}-{i}"));
                    }
                });
            }
        });
        assert_eq!(lines(&store).len(), 40);
        // A change already held is not written again.
        let before = store.objects.lock().unwrap().len();
        add(&store, "3-3");
        assert_eq!(store.objects.lock().unwrap().len(), before);
    }

    #[test]
    fn a_reserved_name_never_written_is_stepped_over_by_readers_and_writers() {
        let store = Once::default();
        for line in ["a", "b", "c"] {
            add(&store, line);
        }
        // A killed writer reserved version 3.
        store.reserved.lock().unwrap().insert(version_path("r", 3));
        add(&store, "d");
        assert_eq!(newest_number(&store, "r").unwrap(), 4);
        add(&store, "e");
        assert_eq!(
            lines(&store),
            ["a", "b", "c", "d", "e"].map(String::from).into()
        );
    }

    #[test]
    fn a_version_s_name_gives_its_record() {
        assert_eq!(
            chain_record(&version_path("v2/index/ab.json", 12)),
            Some("v2/index/ab.json")
        );
        for other in [
            "v2/index/ab.json",
            "a.version",
            "a..version",
            "a.1x.version",
        ] {
            assert_eq!(chain_record(other), None, "{other}");
        }
    }

    #[test]
    fn the_newest_of_many_versions_takes_few_lookups() {
        let store = Once::default();
        for i in 0..300 {
            store
                .objects
                .lock()
                .unwrap()
                .insert(version_path("r", i), i.to_string().into_bytes());
        }
        *store.lookups.lock().unwrap() = 0;
        assert_eq!(newest_number(&store, "r").unwrap(), 299);
        let lookups = *store.lookups.lock().unwrap();
        assert!(lookups <= 20, "{lookups} lookups for 300 versions");
    }
}
