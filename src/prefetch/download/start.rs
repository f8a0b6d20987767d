//! Starting prefetch ([`prefetch`]): the check and the index in one round trip, the
//! variant of each predicted unit chosen by the judge, and their downloads queued;
//! [`PendingPrefetch`] runs on in the background, [`PrefetchOutcome`] is what it did.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::pool::{Downloaded, Job, KV_BYTES_IN_FLIGHT, download_all};
use crate::config::Env;
use crate::config::RemoteSpec;
use crate::errors::CacheError;
use crate::judge::{Here, Judge, Mode};
use crate::key::{Key, PathMap, RootKind};
use crate::prefetch::{Index, index_path};
use crate::seed::Arrivals;
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
    /// `(prediction key, first-level key)` of every entry the index lists for a
    /// predicted unit: a wrapper whose unit the index knows under other first-level
    /// keys only need not ask the remote either.
    pub known: Vec<(Key, Key)>,
    /// `(prediction key, entry key)` pairs the index already lists first, so a build
    /// that used only those need not rewrite it.
    pub indexed: std::collections::HashSet<(String, String)>,
    /// `(prediction key, pack key)` pairs of seeds the index already lists first.
    pub seeds_indexed: std::collections::HashSet<(String, String)>,
    /// Every entry and seed pack the index lists (the remote holds them): an object
    /// the build used from the local store and not among these is given to the remote.
    pub listed: HashSet<Key>,
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
    /// Every object wanted, in the order planting needs them (the order a bundle
    /// written by this build keeps).
    pub order: Vec<Key>,
    /// The objects the index's usable bundle pieces hold; none when a piece was found
    /// damaged or gone (the build's writer drops it from the index, and what the pieces
    /// held counts as held by none).
    pub bundled: HashSet<Key>,
    /// Bundle pieces downloaded.
    pub pieces: usize,
    /// Objects (entries and seed packs) that came out of bundle pieces.
    pub from_bundles: usize,
    /// Bundle pieces with a damaged member (keys): dropped from the index by the
    /// build's writer.
    pub damaged_pieces: Vec<String>,
    /// Requests the prefetch made: the check, the index, each piece and each object
    /// fetched alone (retries inside a request not counted).
    pub requests: usize,
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
    let remote = Arc::new(RemoteStore::open_shared(spec)?);
    // The check and the index travel side by side: one round trip, not two. The
    // check's verdict comes first (a missing bucket, refused credentials), as if it
    // had been asked alone.
    let (checked, got) = std::thread::scope(|s| {
        let check = s.spawn(|| remote.check());
        let got = remote.get_record(&index_path(compiler, workspace));
        let checked = check.join().unwrap_or_else(|_| {
            Err(CacheError::Remote {
                code: "remote-unavailable",
                uri: remote.display().to_string(),
                message: "the check of the remote did not finish".into(),
            })
        });
        (checked, got)
    });
    checked?;
    let index: Index = match got? {
        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
        None => Index::default(),
    };
    let bar = show_bar.then(|| {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("xcache prefetch [{bar:30}] {pos}/{len} entries, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    });
    // The downloads start now, before the index is judged (which reads every recorded
    // input file: a third of a second for the benchmark project, longer than a round
    // trip). Without bundles, each object is fetched as soon as it is chosen, first
    // chosen first fetched, while the rest of the index is still being judged. With
    // bundles, the ranges that hold the newest variant of every predicted unit are
    // fetched at once, unjudged (what is downloaded is judged exactly before it is
    // used; a variant that turns out not to fit costs its bytes, counted as unused), and
    // the wanted objects they do not hold are fetched once judging is done.
    let arrivals = Arc::new(Arrivals::new(std::iter::empty()));
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let early = index.bundles.is_empty();
    // A key-value store hands each value back whole, in memory: what is in flight at
    // once is bounded in bytes, not only in requests.
    let budget = spec.is_key_value().then_some(KV_BYTES_IN_FLIGHT);
    let worker = {
        let remote = Arc::clone(&remote);
        let local = local.clone();
        let arrivals = Arc::clone(&arrivals);
        let bar = bar.clone();
        std::thread::spawn(move || {
            download_all(&remote, &local, rx, jobs, budget, bar, &arrivals, started)
        })
    };
    // Whether a recorded variant fits this checkout, as far as can be told before cargo
    // runs: the judge's prediction (`Mode::Predict`). Whatever is downloaded is judged
    // again, exactly, before it is used.
    let here_in = |cwd: &std::path::Path| Here {
        pm: PathMap::new(
            cwd,
            pm.real_of(RootKind::Target).map(std::path::Path::new),
            pm.real_of(RootKind::CargoHome).map(std::path::Path::new),
        ),
        env: Box::new(|name: &str| crate::judge::env_before_cargo(env, name)),
        env_names: Box::new(|| Some(env.all().keys().cloned().collect())),
        host_cpu: Box::new(|| None),
        linker: Box::new(|_| None),
        mode: Mode::Predict,
    };
    let ws_root = pm
        .real_of(RootKind::Cwd)
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let ws_judge = Judge::new(here_in(&ws_root));
    let mut judges: std::collections::HashMap<std::path::PathBuf, Judge> = Default::default();
    let ranges = !spec.is_key_value();
    // The workers end only when the sender is dropped; a send fails only if they
    // stopped on an error, and then nobody waits for the object.
    let ahead: HashSet<Key> = if early {
        HashSet::new()
    } else {
        let newest = newest_variants(&index, seed_keys, upks)
            .filter(|(k, _)| local.entry_size(k).is_none())
            .collect::<Vec<_>>();
        let (pieces, _) = crate::prefetch::bundle::choose(&index, &newest, ranges);
        let mut ahead = HashSet::new();
        for p in pieces {
            for (k, _, _) in &p.members {
                // Expected before anything can arrive: planting waits for it if it
                // turns out to be wanted.
                arrivals.expect(*k);
                ahead.insert(*k);
                if let Some(b) = &bar {
                    b.inc_length(1);
                }
            }
            let _ = tx.send(Job::Piece(p));
        }
        ahead
    };
    let mut wanted: (HashSet<Key>, Vec<(Key, Option<u64>)>) = Default::default();
    let want = |key: Key, size: Option<u64>, wanted: &mut (HashSet<Key>, Vec<_>)| {
        if ahead.contains(&key) {
            // On its way already.
            if wanted.0.insert(key) {
                wanted.1.push((key, size));
            }
        } else if local.entry_size(&key).is_none() && wanted.0.insert(key) {
            arrivals.expect(key);
            if let Some(b) = &bar {
                b.inc_length(1);
            }
            wanted.1.push((key, size));
            if early {
                let _ = tx.send(Job::One(key, size));
            }
        }
    };
    let mut absent = Vec::new();
    let mut known = Vec::new();
    let indexed = index
        .units
        .iter()
        .filter_map(|(upk, list)| Some((upk.clone(), list.first()?.variant.entry.clone())))
        .collect();
    let listed = index
        .units
        .values()
        .flatten()
        .filter_map(|e| Key::from_hex(&e.variant.entry))
        .chain(
            index
                .seeds
                .values()
                .flatten()
                .filter_map(|s| Key::from_hex(&s.variant.pack)),
        )
        .collect();
    let seeds_indexed = index
        .seeds
        .iter()
        .filter_map(|(upk, list)| Some((upk.clone(), list.first()?.variant.pack.clone())))
        .collect();
    let mut seeds = 0;
    let mut packs: HashSet<Key> = HashSet::new();
    // What is recorded in the local store, written once the downloads are under way
    // (creating hundreds of small files is slow while the downloads write): the seed
    // variants before planting, which reads them; the input sets before cargo starts.
    let mut seed_records: Vec<(Key, Vec<crate::seed::SeedVariant>)> = Vec::new();
    let mut manifests: Vec<(Key, crate::store::Variant)> = Vec::new();
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
                // One judge per directory, all sharing what they found files to be,
                // so that a file several variants (and the units below) record is read
                // once.
                if cwd == ws_root {
                    return ws_judge.check(&s.variant.inputs).is_ok();
                }
                judges
                    .entry(cwd)
                    .or_insert_with_key(|cwd| Judge::sharing_files(here_in(cwd), &ws_judge))
                    .check(&s.variant.inputs)
                    .is_ok()
            })
            .take(2)
            .collect();
        // Oldest first, so the local record ends with the newest in front.
        let mut records = Vec::new();
        for s in fitting.into_iter().rev() {
            let Some(pack) = Key::from_hex(&s.variant.pack) else {
                continue;
            };
            records.push(s.variant.clone());
            seeds += 1;
            packs.insert(pack);
            want(pack, s.size, &mut wanted);
            if let Some(entry) = s.variant.separate_entry().and_then(Key::from_hex) {
                want(entry, None, &mut wanted);
            }
        }
        seed_records.push((*sk, records));
    }
    for upk in upks {
        let hex = upk.to_hex();
        let Some(entries) = index.units.get(&hex) else {
            absent.push(*upk);
            continue;
        };
        known.extend(
            entries
                .iter()
                .filter_map(|e| Some((*upk, Key::from_hex(&e.l1)?))),
        );
        for e in entries {
            let matches = ws_judge.check(&e.variant.inputs).is_ok();
            let (Some(l1), Some(entry)) = (Key::from_hex(&e.l1), Key::from_hex(&e.variant.entry))
            else {
                continue;
            };
            if !matches {
                continue;
            }
            manifests.push((l1, e.variant.clone()));
            want(entry, e.size, &mut wanted);
        }
    }
    let bundled = crate::prefetch::bundle::held(&index);
    if !early {
        let rest: Vec<(Key, Option<u64>)> = wanted
            .1
            .iter()
            .filter(|(k, _)| !ahead.contains(k))
            .copied()
            .collect();
        let (pieces, alone) = crate::prefetch::bundle::choose(&index, &rest, ranges);
        for p in pieces {
            let _ = tx.send(Job::Piece(p));
        }
        for (key, size) in alone {
            let _ = tx.send(Job::One(key, size));
        }
    }
    drop(tx);
    {
        use rayon::prelude::*;
        seed_records.par_iter().for_each(|(sk, records)| {
            for v in records {
                let _ = crate::seed::add_variant(local, sk, v.clone());
            }
        });
    }
    let recording = {
        let local = local.clone();
        std::thread::spawn(move || {
            for (l1, v) in manifests {
                let _ = local.add_variant(&l1, v);
            }
        })
    };
    Ok(PendingPrefetch {
        outcome: PrefetchOutcome {
            predicted: upks.len(),
            prefetched: Vec::new(),
            absent,
            known,
            indexed,
            seeds_indexed,
            listed,
            seeds,
            packs: Vec::new(),
            bytes: 0,
            ms: 0,
            damaged: None,
            damaged_keys: Vec::new(),
            order: wanted.1.into_iter().map(|(k, _)| k).collect(),
            bundled,
            ..PrefetchOutcome::default()
        },
        pack_keys: packs,
        arrivals,
        worker: Some(worker),
        recording: Some(recording),
        started,
    })
}

/// The objects of the newest variant the index lists for each seed key and each
/// prediction key, with their sizes: seeds first, in seed-key order, as planting takes
/// them.
fn newest_variants<'a>(
    index: &'a Index,
    seed_keys: &'a [Key],
    upks: &'a [Key],
) -> impl Iterator<Item = (Key, Option<u64>)> + 'a {
    let seeds = seed_keys
        .iter()
        .filter_map(|sk| index.seeds.get(&sk.to_hex())?.first())
        .flat_map(|s| {
            let pack = Key::from_hex(&s.variant.pack).map(|k| (k, s.size));
            let entry = s
                .variant
                .separate_entry()
                .and_then(Key::from_hex)
                .map(|k| (k, None));
            pack.into_iter().chain(entry)
        });
    let units = upks
        .iter()
        .filter_map(|upk| index.units.get(&upk.to_hex())?.first())
        .filter_map(|e| Some((Key::from_hex(&e.variant.entry)?, e.size)));
    seeds.chain(units)
}

/// Downloads started by [`prefetch`], running in the background. Planting waits for the
/// entries it needs through [`PendingPrefetch::arrivals`]; [`PendingPrefetch::finish`]
/// waits for the rest.
pub struct PendingPrefetch {
    outcome: PrefetchOutcome,
    pack_keys: HashSet<Key>,
    arrivals: Arc<Arrivals>,
    worker: Option<JoinHandle<Downloaded>>,
    /// Writing the chosen input sets to the local store.
    recording: Option<JoinHandle<()>>,
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
        if let Some(r) = self.recording.take() {
            let _ = r.join();
        }
        let Downloaded {
            keys,
            bytes,
            error,
            damaged,
            damaged_keys,
            pieces,
            from_bundles,
            damaged_pieces,
            requests,
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
        out.pieces = pieces;
        out.from_bundles = from_bundles;
        if !damaged_pieces.is_empty() {
            out.bundled.clear();
        }
        out.damaged_pieces = damaged_pieces;
        // The check and the index, then the downloads.
        out.requests = 2 + requests;
        out.ms = self.started.elapsed().as_millis() as u64;
        Ok(out)
    }
}

impl Drop for PendingPrefetch {
    fn drop(&mut self) {
        if let Some(r) = self.recording.take() {
            let _ = r.join();
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
