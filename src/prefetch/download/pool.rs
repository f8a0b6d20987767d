//! The pool of download threads ([`download_all`]): one client for all, each job an
//! object alone or a range of a bundle piece, bytes in flight bounded for key-value
//! stores, each object announced to planting as it arrives.

use std::sync::mpsc::Receiver;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use indicatif::ProgressBar;

use crate::errors::CacheError;
use crate::key::Key;
use crate::seed::Arrivals;
use crate::store::{LocalStore, RemoteStore};

#[derive(Default)]
pub(super) struct Downloaded {
    pub(super) keys: Vec<Key>,
    pub(super) bytes: u64,
    pub(super) error: Option<CacheError>,
    pub(super) damaged: Option<CacheError>,
    pub(super) damaged_keys: Vec<Key>,
    pub(super) pieces: usize,
    pub(super) from_bundles: usize,
    pub(super) damaged_pieces: Vec<String>,
    pub(super) requests: usize,
}

/// At most this many bytes of values are fetched at once from a key-value store (Redis,
/// memcached), whose client holds each value whole in memory until it is written out.
/// An object larger than that is fetched alone, nothing beside it.
pub(super) const KV_BYTES_IN_FLIGHT: u64 = 48 << 20;

/// What an object of unknown size counts for against [`KV_BYTES_IN_FLIGHT`].
const UNKNOWN_SIZE: u64 = 4 << 20;

/// One download: a range of a bundle piece, or an object alone with its size if known.
pub(super) enum Job {
    Piece(crate::prefetch::bundle::PieceJob),
    One(Key, Option<u64>),
}

impl Job {
    /// The bytes it brings down.
    fn bytes(&self) -> u64 {
        match self {
            Job::Piece(p) => p.end - p.start,
            Job::One(_, size) => size.unwrap_or(UNKNOWN_SIZE),
        }
    }
}

/// Bytes in flight, bounded ([`KV_BYTES_IN_FLIGHT`]).
struct Budget {
    limit: u64,
    used: Mutex<u64>,
    cv: Condvar,
}

impl Budget {
    /// Waits until `n` bytes fit (or nothing else is in flight), and takes them.
    fn take(&self, n: u64) -> u64 {
        let n = n.min(self.limit);
        let mut used = self.used.lock().unwrap();
        while *used > 0 && *used + n > self.limit {
            used = self.cv.wait(used).unwrap();
        }
        *used += n;
        n
    }

    fn give(&self, n: u64) {
        *self.used.lock().unwrap() -= n;
        self.cv.notify_all();
    }
}

/// Downloads what comes through `queue` with `jobs` threads at once, all on one client
/// (so one pool of connections), each object streamed to a temporary file and adopted
/// into `local`; with `budget`, at most that many bytes at once.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are distinct"
)]
pub(super) fn download_all(
    remote: &RemoteStore,
    local: &LocalStore,
    queue: Receiver<Job>,
    jobs: usize,
    budget: Option<u64>,
    bar: Option<ProgressBar>,
    arrivals: &Arrivals,
    started: Instant,
) -> Downloaded {
    let _close = CloseOnDrop(arrivals);
    let queue = Mutex::new(queue);
    let budget = budget.map(|limit| Budget {
        limit,
        used: Mutex::new(0),
        cv: Condvar::new(),
    });
    let cx = Downloads {
        remote,
        local,
        done: Mutex::new(Downloaded::default()),
        bar,
        arrivals,
        started,
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    if cx.done.lock().unwrap().error.is_some() {
                        return;
                    }
                    let Ok(job) = queue.lock().unwrap().recv() else {
                        return;
                    };
                    let taken = budget.as_ref().map(|b| b.take(job.bytes()));
                    match job {
                        Job::One(key, size) => cx.one(key, size),
                        Job::Piece(p) => cx.piece(&p),
                    }
                    if let (Some(b), Some(n)) = (&budget, taken) {
                        b.give(n);
                    }
                }
            });
        }
    });
    if let Some(b) = &cx.bar {
        b.finish_and_clear();
    }
    cx.done.into_inner().unwrap_or_default()
}

/// What the download threads share.
struct Downloads<'a> {
    remote: &'a RemoteStore,
    local: &'a LocalStore,
    done: Mutex<Downloaded>,
    bar: Option<ProgressBar>,
    arrivals: &'a Arrivals,
    started: Instant,
}

impl Downloads<'_> {
    /// Counts an object that is now in the local store (the lock held) and shows it.
    fn got(&self, d: &mut Downloaded, key: Key, n: u64) {
        d.keys.push(key);
        d.bytes += n;
        if let Some(b) = &self.bar {
            b.inc(1);
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            b.set_message(format!(
                "{:.1} MB at {:.1} MB/s",
                d.bytes as f64 / 1e6,
                d.bytes as f64 / 1e6 / secs
            ));
        }
    }

    /// Fetches one object alone.
    fn one(&self, key: Key, size: Option<u64>) {
        let tmp = self.local.temp_path();
        let result = self
            .remote
            .get_entry(&key, &tmp, size)
            .and_then(|got| match got {
                Some(n) => self.local.adopt_entry(&key, &tmp).map(|()| Some(n)),
                None => Ok(None),
            });
        let mut d = self.done.lock().unwrap();
        d.requests += 1;
        match result {
            Ok(Some(n)) => self.got(&mut d, key, n),
            Ok(None) => {}
            // Not used, and not a reason to give the remote up: the unit compiles, and
            // its upload replaces the object.
            Err(e) if e.code() == "remote-entry-damaged" => {
                let _ = std::fs::remove_file(&tmp);
                d.damaged.get_or_insert(e);
                d.damaged_keys.push(key);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                d.error.get_or_insert(e);
                // Nothing more comes: nobody waits for it.
                self.arrivals.close();
            }
        }
        drop(d);
        self.arrivals.arrived(&key);
    }

    /// Fetches a bundle piece, each member announced as it arrives; what the piece did
    /// not deliver whole and verified is fetched alone.
    fn piece(&self, job: &crate::prefetch::bundle::PieceJob) {
        let mut delivered = 0;
        let out =
            crate::prefetch::bundle::fetch_piece(self.remote, self.local, job, &mut |key, n| {
                delivered += n;
                let mut d = self.done.lock().unwrap();
                self.got(&mut d, key, n);
                d.from_bundles += 1;
                drop(d);
                self.arrivals.arrived(&key);
            });
        {
            let mut d = self.done.lock().unwrap();
            d.requests += 1;
            // The bytes between and after the wanted members came down too.
            d.bytes += out.bytes.saturating_sub(delivered);
            if out.absent {
                // Gone from the remote (collected, or never written whole): the
                // build's writer drops it from the index, as it does a damaged one.
                d.damaged_pieces.push(job.key.to_hex());
            } else {
                d.pieces += 1;
            }
            if let Some(what) = out.damaged {
                d.damaged.get_or_insert(CacheError::Remote {
                    code: "remote-entry-damaged",
                    uri: self.remote.display().to_string(),
                    message: what,
                });
                d.damaged_pieces.push(job.key.to_hex());
            }
        }
        for (key, len) in out.missing {
            if self.done.lock().unwrap().error.is_some() {
                return;
            }
            self.one(key, Some(len));
        }
    }
}

/// Closes [`Arrivals`] however the downloads end.
struct CloseOnDrop<'a>(&'a Arrivals);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn waiting_ends_when_the_entry_arrives_or_the_downloads_end() {
        let (a, b, c) = (Key::digest(b"a"), Key::digest(b"b"), Key::digest(b"c"));
        let arrivals = Arc::new(Arrivals::new([a, b].into_iter()));
        // Not wanted: no wait.
        arrivals.wait(&c);
        let waiter = {
            let arrivals = Arc::clone(&arrivals);
            std::thread::spawn(move || {
                arrivals.wait(&a);
                arrivals.wait(&b);
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "returned before `a` arrived");
        arrivals.arrived(&a);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "returned before `b` arrived");
        // The downloads end (an error, say) without `b`: the waiter goes on.
        drop(CloseOnDrop(&arrivals));
        waiter.join().unwrap();
        arrivals.wait(&b);
    }
}
