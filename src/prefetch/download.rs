//! Prefetch: one request for the index, then every predicted entry in parallel, each
//! streamed to a file in the local store.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Index, index_path};
use crate::config::Env;
use crate::config::RemoteSpec;
use crate::errors::CacheError;
use crate::judge::{Here, Judge, Mode};
use crate::key::{Key, PathMap, RootKind};
use crate::store::{LocalStore, RemoteStore};

/// What prefetch did.
#[derive(Clone, Debug, Default)]
pub struct PrefetchOutcome {
    /// Units predicted from the plan.
    pub predicted: usize,
    /// Entries downloaded before cargo started.
    pub prefetched: Vec<Key>,
    /// Predicted units the index knows nothing of: their wrappers need not ask the
    /// remote one by one.
    pub absent: Vec<Key>,
    /// `(prediction key, entry key)` pairs the index already lists first, so a build
    /// that used only those need not rewrite it.
    pub indexed: std::collections::HashSet<(String, String)>,
    /// `(prediction key, pack key)` pairs of seeds the index already lists first.
    pub seeds_indexed: std::collections::HashSet<(String, String)>,
    /// Seed variants recorded locally from the index.
    pub seeds: usize,
    /// Seed packs downloaded.
    pub packs: Vec<Key>,
    pub bytes: u64,
    pub ms: u64,
    /// The first damaged object met, as a message (it was not used; the others still
    /// were).
    pub damaged: Option<String>,
    /// Every damaged object met: dropped from the index by the build's writer.
    pub damaged_keys: Vec<Key>,
}

/// Fetches the index and starts downloading the entries of `upks` and the seed packs of
/// `seed_keys` that are not local yet, in the background ([`PendingPrefetch`]). An
/// entry is chosen when the files its input set names match the files on disk now
/// (files to be generated into the target dir cannot be checked yet and count as
/// matching). The entry's input set is added to the local manifest, so the wrapper
/// finds it without asking the remote.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are distinct"
)]
pub fn prefetch(
    spec: &RemoteSpec,
    local: &LocalStore,
    compiler: &Key,
    workspace: &[String],
    upks: &[Key],
    seed_keys: &[Key],
    pm: &PathMap,
    env: &Env,
    jobs: usize,
    show_bar: bool,
) -> Result<PendingPrefetch, CacheError> {
    let started = Instant::now();
    let remote = RemoteStore::open(spec)?;
    let index: Index = match remote.get_bytes(&index_path(compiler, workspace))? {
        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
        None => Index::default(),
    };
    // Whether a recorded variant fits this checkout, as far as can be told before cargo
    // runs: the judge's prediction (`Mode::Predict`). Whatever is downloaded is judged
    // again, exactly, before it is used.
    let judge_in = |cwd: &std::path::Path| {
        let pm = PathMap::new(
            cwd,
            pm.real_of(RootKind::Target).map(std::path::Path::new),
            pm.real_of(RootKind::CargoHome).map(std::path::Path::new),
        );
        Judge::new(Here {
            pm,
            env: Box::new(|name: &str| crate::judge::env_before_cargo(env, name)),
            host_cpu: Box::new(|| None),
            linker: Box::new(|_| None),
            mode: Mode::Predict,
        })
    };
    let ws_root = pm
        .real_of(RootKind::Cwd)
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let ws_judge = judge_in(&ws_root);
    let mut wanted: Vec<(Key, Option<u64>)> = Vec::new();
    let want = |key: Key, size: Option<u64>, wanted: &mut Vec<(Key, Option<u64>)>| {
        if local.entry_size(&key).is_none() && !wanted.iter().any(|(k, _)| *k == key) {
            wanted.push((key, size));
        }
    };
    let mut absent = Vec::new();
    let indexed = index
        .units
        .iter()
        .filter_map(|(upk, list)| Some((upk.clone(), list.first()?.variant.entry.clone())))
        .collect();
    let seeds_indexed = index
        .seeds
        .iter()
        .filter_map(|(upk, list)| Some((upk.clone(), list.first()?.variant.pack.clone())))
        .collect();
    let mut seeds = 0;
    let mut packs: HashSet<Key> = HashSet::new();
    // Seeds first, in seed-key order: planting takes units in that order and runs
    // while the downloads go on (`Arrivals`), so their packs are wanted first.
    // The newest seed variants whose inputs hold now, with their packs and entries (two
    // at most, as planting takes).
    for sk in seed_keys {
        let Some(list) = index.seeds.get(&sk.to_hex()) else {
            continue;
        };
        let fitting: Vec<_> = list
            .iter()
            .filter(|s| {
                let cwd = pm.expand_path(&s.variant.cwd);
                judge_in(&cwd).check(&s.variant.inputs).is_ok()
            })
            .take(2)
            .collect();
        // Oldest first, so the local record ends with the newest in front.
        for s in fitting.into_iter().rev() {
            let Some(pack) = Key::from_hex(&s.variant.pack) else {
                continue;
            };
            if crate::seed::add_variant(local, sk, s.variant.clone()).is_err() {
                continue;
            }
            seeds += 1;
            packs.insert(pack);
            want(pack, s.size, &mut wanted);
            if let Some(entry) = s
                .variant
                .entry
                .as_deref()
                .filter(|_| !s.variant.outputs_in_pack)
                .and_then(Key::from_hex)
            {
                want(entry, None, &mut wanted);
            }
        }
    }
    for upk in upks {
        let hex = upk.to_hex();
        let Some(entries) = index.units.get(&hex) else {
            absent.push(*upk);
            continue;
        };
        for e in entries {
            let matches = ws_judge.check(&e.variant.inputs).is_ok();
            let (Some(l1), Some(entry)) = (Key::from_hex(&e.l1), Key::from_hex(&e.variant.entry))
            else {
                continue;
            };
            if !matches {
                continue;
            }
            let _ = local.add_variant(&l1, e.variant.clone());
            want(entry, e.size, &mut wanted);
        }
    }
    drop(remote);

    let bar = if show_bar {
        let b =
            ProgressBar::with_draw_target(Some(wanted.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("xcache prefetch [{bar:30}] {pos}/{len} entries, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(b)
    } else {
        None
    };
    let arrivals = Arc::new(Arrivals::new(wanted.iter().map(|(k, _)| *k)));
    // First wanted, first fetched.
    wanted.reverse();
    let worker = {
        let spec = spec.clone();
        let local = local.clone();
        let arrivals = Arc::clone(&arrivals);
        std::thread::spawn(move || {
            download_all(&spec, &local, wanted, jobs, bar, &arrivals, started)
        })
    };
    Ok(PendingPrefetch {
        outcome: PrefetchOutcome {
            predicted: upks.len(),
            prefetched: Vec::new(),
            absent,
            indexed,
            seeds_indexed,
            seeds,
            packs: Vec::new(),
            bytes: 0,
            ms: 0,
            damaged: None,
            damaged_keys: Vec::new(),
        },
        pack_keys: packs,
        arrivals,
        worker: Some(worker),
        started,
    })
}

/// Downloads started by [`prefetch`], running in the background. Planting waits for the
/// entries it needs through [`PendingPrefetch::arrivals`]; [`PendingPrefetch::finish`]
/// waits for the rest.
pub struct PendingPrefetch {
    outcome: PrefetchOutcome,
    pack_keys: HashSet<Key>,
    arrivals: Arc<Arrivals>,
    worker: Option<JoinHandle<Downloaded>>,
    started: Instant,
}

impl PendingPrefetch {
    /// Where to wait for a wanted entry.
    pub fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }

    /// Waits for every download; the outcome, or the first error (after which the
    /// downloads stopped).
    pub fn finish(mut self) -> Result<PrefetchOutcome, CacheError> {
        let Downloaded {
            keys,
            bytes,
            error,
            damaged,
            damaged_keys,
        } = self
            .worker
            .take()
            .and_then(|w| w.join().ok())
            .unwrap_or_default();
        let mut out = std::mem::take(&mut self.outcome);
        // Seed packs are not units: the report counts entries.
        let (packs, entries): (Vec<Key>, Vec<Key>) =
            keys.into_iter().partition(|k| self.pack_keys.contains(k));
        if let Some(e) = error {
            return Err(e);
        }
        out.prefetched = entries;
        out.packs = packs;
        out.bytes = bytes;
        out.damaged = damaged.map(|e| e.to_string());
        out.damaged_keys = damaged_keys;
        out.ms = self.started.elapsed().as_millis() as u64;
        Ok(out)
    }
}

impl Drop for PendingPrefetch {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Which wanted entries are still on their way. Waiting for one that is not wanted, or
/// after the downloads ended (also by an error or a panic), returns at once: the caller
/// then finds the entry in the local store or not, as without prefetch.
#[derive(Debug)]
pub struct Arrivals {
    state: Mutex<(HashSet<Key>, bool)>,
    cv: Condvar,
}

impl Arrivals {
    fn new(pending: impl Iterator<Item = Key>) -> Arrivals {
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

    fn arrived(&self, key: &Key) {
        if let Ok(mut s) = self.state.lock() {
            s.0.remove(key);
        }
        self.cv.notify_all();
    }

    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        self.cv.notify_all();
    }
}

/// Closes [`Arrivals`] however the downloads end.
struct CloseOnDrop<'a>(&'a Arrivals);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[derive(Default)]
struct Downloaded {
    keys: Vec<Key>,
    bytes: u64,
    error: Option<CacheError>,
    damaged: Option<CacheError>,
    damaged_keys: Vec<Key>,
}

/// Downloads `wanted` (taken from the end) with `jobs` threads, each with its own
/// connection, each entry streamed to a temporary file and adopted into `local`.
fn download_all(
    spec: &RemoteSpec,
    local: &LocalStore,
    wanted: Vec<(Key, Option<u64>)>,
    jobs: usize,
    bar: Option<ProgressBar>,
    arrivals: &Arrivals,
    started: Instant,
) -> Downloaded {
    let _close = CloseOnDrop(arrivals);
    let queue = Mutex::new(wanted);
    let done: Mutex<Downloaded> = Mutex::new(Downloaded::default());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let remote = match RemoteStore::open(spec) {
                    Ok(r) => r,
                    Err(e) => {
                        done.lock().unwrap().error.get_or_insert(e);
                        arrivals.close();
                        return;
                    }
                };
                loop {
                    if done.lock().unwrap().error.is_some() {
                        return;
                    }
                    let Some((key, size)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let tmp = local.temp_path();
                    let result = remote
                        .get_entry(&key, &tmp, size)
                        .and_then(|got| match got {
                            Some(n) => local.adopt_entry(&key, &tmp).map(|()| Some(n)),
                            None => Ok(None),
                        });
                    let mut d = done.lock().unwrap();
                    match result {
                        Ok(Some(n)) => {
                            d.keys.push(key);
                            d.bytes += n;
                            if let Some(b) = &bar {
                                b.inc(1);
                                let secs = started.elapsed().as_secs_f64().max(0.001);
                                b.set_message(format!(
                                    "{:.1} MB at {:.1} MB/s",
                                    d.bytes as f64 / 1e6,
                                    d.bytes as f64 / 1e6 / secs
                                ));
                            }
                        }
                        Ok(None) => {}
                        // Not used, and not a reason to give the remote up: the unit
                        // compiles, and its upload replaces the object.
                        Err(e) if e.code() == "remote-entry-damaged" => {
                            let _ = std::fs::remove_file(&tmp);
                            d.damaged.get_or_insert(e);
                            d.damaged_keys.push(key);
                        }
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            d.error.get_or_insert(e);
                            // Nothing more comes: nobody waits for it.
                            arrivals.close();
                        }
                    }
                    drop(d);
                    arrivals.arrived(&key);
                }
            });
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    done.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
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
