//! What seeding waits for while prefetch's downloads go on: [`Arrivals`], filled by
//! prefetch as entries come, read by planting before it uses one.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};

use crate::key::Key;

/// Which wanted entries are still on their way. Waiting for one that is not wanted, or
/// after the downloads ended (also by an error or a panic), returns at once: the caller
/// then finds the entry in the local store or not, as without prefetch.
#[derive(Debug)]
pub struct Arrivals {
    state: Mutex<(HashSet<Key>, bool)>,
    cv: Condvar,
}

impl Arrivals {
    pub(crate) fn new(pending: impl Iterator<Item = Key>) -> Arrivals {
        Arrivals {
            state: Mutex::new((pending.collect(), false)),
            cv: Condvar::new(),
        }
    }

    /// Blocks until `key` has been downloaded or given up.
    pub fn wait(&self, key: &Key) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        while !s.1 && s.0.contains(key) {
            s = match self.cv.wait(s) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
    }

    /// Adds `key` to the objects on their way.
    pub(crate) fn expect(&self, key: Key) {
        if let Ok(mut s) = self.state.lock() {
            s.0.insert(key);
        }
    }

    pub(crate) fn arrived(&self, key: &Key) {
        if let Ok(mut s) = self.state.lock() {
            s.0.remove(key);
        }
        self.cv.notify_all();
    }

    pub(crate) fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        self.cv.notify_all();
    }
}
