//! Prefetch: one request for the index, then every predicted entry in parallel, each
//! streamed to a file in the local store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Index, index_path};
use crate::config::RemoteSpec;
use crate::errors::CacheError;
use crate::key::{Key, PathMap, hash_file};
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
}

/// Fetches the index and downloads the entries of `upks` that are not local yet. An
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
    jobs: usize,
    show_bar: bool,
) -> Result<PrefetchOutcome, CacheError> {
    let started = Instant::now();
    let remote = RemoteStore::open(spec)?;
    let index: Index = match remote.get_bytes(&index_path(compiler, workspace))? {
        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
        None => Index::default(),
    };
    let mut digests: HashMap<String, String> = HashMap::new();
    // The digest of a file now: `-` if it does not exist, `?` if it cannot be read.
    let mut current = |path: &str| -> String {
        digests
            .entry(path.to_string())
            .or_insert_with(|| {
                let real = pm.expand_path(path);
                if PathMap::has_token(&real.to_string_lossy()) {
                    return "?".into();
                }
                match hash_file(&real) {
                    Ok(k) => k.to_hex(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => "-".into(),
                    Err(_) => "?".into(),
                }
            })
            .clone()
    };
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
    let mut packs: std::collections::HashSet<Key> = std::collections::HashSet::new();
    for upk in upks {
        let hex = upk.to_hex();
        let Some(entries) = index.units.get(&hex) else {
            absent.push(*upk);
            continue;
        };
        for e in entries {
            let matches = e.variant.inputs.iter().all(|input| {
                input.path.starts_with(crate::key::RootKind::Target.token())
                    || current(&input.path) == input.digest
            });
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
    // The newest seed variants whose inputs hold now, with their packs and entries (two
    // at most, as planting takes).
    for sk in seed_keys {
        let Some(list) = index.seeds.get(&sk.to_hex()) else {
            continue;
        };
        let fitting: Vec<_> = list
            .iter()
            .filter(|s| s.variant.files.iter().all(|(p, d)| &current(p) == d))
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
    let queue = Mutex::new(wanted);
    let done: Mutex<(Vec<Key>, u64, Option<CacheError>)> = Mutex::new((Vec::new(), 0, None));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let remote = match RemoteStore::open(spec) {
                    Ok(r) => r,
                    Err(e) => {
                        done.lock().unwrap().2.get_or_insert(e);
                        return;
                    }
                };
                loop {
                    if done.lock().unwrap().2.is_some() {
                        return;
                    }
                    let Some((key, size)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let tmp = local.temp_path();
                    let result = remote
                        .get_file(&RemoteStore::entry_path(&key), &tmp, size)
                        .and_then(|got| match got {
                            Some(n) => local.adopt_entry(&key, &tmp).map(|()| Some(n)),
                            None => Ok(None),
                        });
                    let mut d = done.lock().unwrap();
                    match result {
                        Ok(Some(n)) => {
                            d.0.push(key);
                            d.1 += n;
                            if let Some(b) = &bar {
                                b.inc(1);
                                let secs = started.elapsed().as_secs_f64().max(0.001);
                                b.set_message(format!(
                                    "{:.1} MB at {:.1} MB/s",
                                    d.1 as f64 / 1e6,
                                    d.1 as f64 / 1e6 / secs
                                ));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            d.2.get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (mut prefetched, bytes, err) = done.into_inner().unwrap();
    // Seed packs are not units: the report counts entries.
    let packs: Vec<Key> = prefetched
        .iter()
        .filter(|k| packs.contains(k))
        .copied()
        .collect();
    prefetched.retain(|k| !packs.contains(k));
    if let Some(e) = err {
        return Err(e);
    }
    Ok(PrefetchOutcome {
        predicted: upks.len(),
        prefetched,
        absent,
        indexed,
        seeds_indexed,
        seeds,
        packs,
        bytes,
        ms: started.elapsed().as_millis() as u64,
    })
}
