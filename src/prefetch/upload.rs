//! Background uploads while cargo runs, and the index update after it.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::bundle::{Groups, write_piece};
use super::{BundlePiece, Index, IndexEntry, IndexSeed, index_path};
use crate::config::{RemoteSpec, Uploads};
use crate::errors::CacheError;
use crate::key::Key;
use crate::seed::SeedVariant;
use crate::store::{LocalStore, RemoteStore};

/// The objects queued for upload: `(first-level key, entry)`, the first-level key
/// `None` for a seed pack.
type Queue = std::sync::Arc<Mutex<Receiver<(Option<Key>, Key)>>>;

/// What the uploads did.
#[derive(Debug, Default)]
pub struct UploadOutcome {
    /// The entries now in the remote.
    pub uploaded: Vec<Key>,
    pub bytes: u64,
    /// The first failure; after it the remaining uploads were abandoned.
    pub error: Option<CacheError>,
    /// The first entry the backend refused for its size (it stays local; the others
    /// were still uploaded).
    pub too_large: Option<CacheError>,
    /// With bundled uploads, the pieces written (their members are in `uploaded`).
    pub pieces: Vec<BundlePiece>,
}

/// Uploads entries (and their manifests) on worker threads, so no rustc invocation
/// ever waits for the network. With bundled uploads ([`Uploads::Bundles`]), objects are
/// gathered into bundle pieces instead, each written as soon as it is full, the last
/// one when the uploads finish.
pub struct Uploader {
    tx: Option<Sender<(Option<Key>, Key)>>,
    workers: Vec<JoinHandle<()>>,
    outcome: std::sync::Arc<Mutex<UploadOutcome>>,
}

impl Uploader {
    /// `state_file` is the build's shared word on the remote: a failure here is written
    /// to it (so no wrapper waits for the remote again), and a failure a wrapper wrote
    /// there stops the uploads.
    /// With bundled uploads, the objects of `held` (in the index's pieces already) are
    /// not bundled again.
    pub fn start(
        spec: &RemoteSpec,
        local: &LocalStore,
        jobs: usize,
        state_file: &std::path::Path,
        held: std::collections::HashSet<Key>,
    ) -> Uploader {
        let (tx, rx) = channel::<(Option<Key>, Key)>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        // One client for all the workers: its runtime drives every connection, so a
        // connection one worker opened serves the others. (A client per thread, each
        // with a runtime of its own, shares the HTTP connection pool but not the
        // runtime: a request handed a connection whose runtime is idle in another
        // thread's queue wait hangs until the stall limit.)
        let remote = std::sync::Arc::new(RemoteStore::open_for_uploads(spec));
        let outcome = std::sync::Arc::new(Mutex::new(UploadOutcome::default()));
        if spec.uploads == Uploads::Bundles {
            let (spec, local, state, outcome2) = (
                spec.clone(),
                local.clone(),
                state_file.to_path_buf(),
                outcome.clone(),
            );
            let packer = std::thread::spawn(move || {
                pack(&spec, &remote, &local, rx, jobs, held, &outcome2, &state)
            });
            return Uploader {
                tx: Some(tx),
                workers: vec![packer],
                outcome,
            };
        }
        let workers = (0..jobs.max(1))
            .map(|_| {
                let (rx, outcome, spec, local, state, remote) = (
                    rx.clone(),
                    outcome.clone(),
                    spec.clone(),
                    local.clone(),
                    state_file.to_path_buf(),
                    remote.clone(),
                );
                std::thread::spawn(move || worker(&spec, &remote, &local, &rx, &outcome, &state))
            })
            .collect();
        Uploader {
            tx: Some(tx),
            workers,
            outcome,
        }
    }

    /// Queues the entry `entry` of first-level key `l1`.
    pub fn push(&self, l1: Key, entry: Key) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((Some(l1), entry));
        }
    }

    /// Queues an entry that has no manifest (a seed pack).
    pub fn push_entry(&self, entry: Key) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((None, entry));
        }
    }

    /// Waits for the queue to drain.
    pub fn finish(mut self) -> UploadOutcome {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        std::mem::take(&mut *self.outcome.lock().unwrap())
    }
}

fn worker(
    spec: &RemoteSpec,
    remote: &Result<RemoteStore, CacheError>,
    local: &LocalStore,
    rx: &Mutex<Receiver<(Option<Key>, Key)>>,
    outcome: &Mutex<UploadOutcome>,
    state_file: &std::path::Path,
) {
    loop {
        let job = rx.lock().unwrap().recv();
        let Ok((l1, entry)) = job else {
            return;
        };
        if given_up(outcome, state_file) {
            continue; // abandoned: drain the queue
        }
        let result = opened(spec, remote).and_then(|r| upload_one(r, local, l1.as_ref(), &entry));
        let mut o = outcome.lock().unwrap();
        match result {
            Ok(Some(n)) => {
                o.uploaded.push(entry);
                o.bytes += n;
            }
            // A thin entry that could not be made whole: it stays local.
            Ok(None) => {}
            Err(e) if e.code() == "remote-entry-too-large" => {
                o.too_large.get_or_insert(e);
            }
            Err(e) => failed(&mut o, state_file, e),
        }
    }
}

/// Whether the uploads were given up: by a failure of their own, or by a wrapper (whose
/// warning says so).
fn given_up(outcome: &Mutex<UploadOutcome>, state_file: &std::path::Path) -> bool {
    outcome.lock().unwrap().error.is_some()
        || std::fs::read_to_string(state_file).is_ok_and(|s| s.starts_with("down"))
}

/// The uploads' client, or why it could not be built, as the remote's error.
fn opened<'r>(
    spec: &RemoteSpec,
    remote: &'r Result<RemoteStore, CacheError>,
) -> Result<&'r RemoteStore, CacheError> {
    remote.as_ref().map_err(|e| CacheError::Remote {
        code: "remote-unavailable",
        uri: spec.display().to_string(),
        message: e.to_string(),
    })
}

/// Records the first failure and tells the build's wrappers the remote is given up.
fn failed(o: &mut UploadOutcome, state_file: &std::path::Path, e: CacheError) {
    if o.error.is_none() {
        let line = format!("down\t{}\t{e}\n", e.code());
        let _ = crate::fsx::write_atomic(state_file, line.as_bytes());
    }
    o.error.get_or_insert(e);
}

/// Bundled uploads: gathers the objects that come through `rx` (not in `held`, each
/// once, in the order they come) into groups of a piece's size, and writes each full
/// group as a piece on one of `jobs` threads while the next fills; the last group when
/// `rx` closes. The first failure ends the uploads as it does for single objects.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are distinct"
)]
fn pack(
    spec: &RemoteSpec,
    remote: &Result<RemoteStore, CacheError>,
    local: &LocalStore,
    rx: Queue,
    jobs: usize,
    mut held: std::collections::HashSet<Key>,
    outcome: &Mutex<UploadOutcome>,
    state_file: &std::path::Path,
) {
    let (full_tx, full_rx) = channel::<Vec<(Key, u64)>>();
    let full_rx = Mutex::new(full_rx);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let Ok(group) = full_rx.lock().unwrap().recv() else {
                        return;
                    };
                    if given_up(outcome, state_file) {
                        continue; // abandoned: drain the queue
                    }
                    let result = opened(spec, remote).and_then(|r| write_piece(r, local, &group));
                    let mut o = outcome.lock().unwrap();
                    match result {
                        Ok(Some(piece)) => {
                            o.uploaded.extend(group.iter().map(|(k, _)| *k));
                            o.bytes += piece.size;
                            o.pieces.push(piece);
                        }
                        // An object changed while it was read: its piece is not listed.
                        Ok(None) => {}
                        Err(e) => failed(&mut o, state_file, e),
                    }
                }
            });
        }
        let mut groups = Groups::default();
        loop {
            let job = rx.lock().unwrap().recv();
            let Ok((_, key)) = job else {
                break;
            };
            if !held.insert(key) {
                continue;
            }
            if !local.ensure_whole(&key) {
                continue;
            }
            let Some(n) = local.entry_size(&key).filter(|n| *n > 0) else {
                continue;
            };
            if let Some(group) = groups.push(key, n) {
                let _ = full_tx.send(group);
            }
        }
        if let Some(group) = groups.rest() {
            let _ = full_tx.send(group);
        }
        drop(full_tx);
    });
}

fn upload_one(
    remote: &RemoteStore,
    local: &LocalStore,
    l1: Option<&Key>,
    entry: &Key,
) -> Result<Option<u64>, CacheError> {
    if !local.ensure_whole(entry) {
        return Ok(None);
    }
    let n = remote.put_file(&RemoteStore::entry_path(entry), &local.entry_path(entry))?;
    let Some(l1) = l1 else {
        return Ok(Some(n));
    };
    let Some(variant) = local
        .read_manifest(l1)
        .variants
        .into_iter()
        .find(|v| v.entry == entry.to_hex())
    else {
        return Ok(Some(n));
    };
    remote.add_variant(l1, &variant)?;
    Ok(Some(n))
}

/// Records the entries this build used under their prediction keys: one GET and one
/// write of the index that keeps what other builds write at once
/// (`RemoteStore::update_bytes`). Objects found `damaged` (and not stored again
/// by this build, `replaced`) are dropped from the index and deleted, and so are bundle
/// pieces with a damaged member (`damaged_pieces`). The objects of `bundle` (this
/// build's, in the order planting needs them) that no piece holds are written as a new
/// bundle when there are enough (see `bundle.rs`). With bundled uploads, the pieces
/// the [`Uploader`] wrote (`new_pieces`) are listed first instead, and the index keeps
/// only what its pieces hold (there is nothing else to fetch) and the pieces that hold
/// something it lists. Returns the bundle pieces and bytes uploaded here.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are distinct"
)]
pub fn update_index(
    spec: &RemoteSpec,
    local: &LocalStore,
    compiler: &Key,
    workspace: &[String],
    used: &[(String, Key, Key)],
    seeds: &[(String, SeedVariant)],
    damaged: &[Key],
    replaced: &std::collections::HashSet<String>,
    damaged_pieces: &[String],
    bundle: &[Key],
    new_pieces: Vec<BundlePiece>,
) -> Result<(usize, u64), CacheError> {
    if used.is_empty()
        && seeds.is_empty()
        && damaged.is_empty()
        && damaged_pieces.is_empty()
        && bundle.is_empty()
        && new_pieces.is_empty()
    {
        return Ok((0, 0));
    }
    let remote = RemoteStore::open_for_uploads(spec)?;
    let path = index_path(compiler, workspace);
    let gone: std::collections::HashSet<String> = damaged
        .iter()
        .map(Key::to_hex)
        .filter(|k| !replaced.contains(k))
        .collect();
    for k in &gone {
        if let Some(key) = Key::from_hex(k) {
            // A delete of an object that is already gone is fine.
            let _ = remote.delete(&RemoteStore::entry_path(&key));
        }
    }
    for piece in damaged_pieces {
        if let Some(key) = Key::from_hex(piece) {
            let _ = remote.delete(&super::piece_path(&key));
        }
    }
    let mut ours = IndexChange {
        gone,
        damaged_pieces: damaged_pieces.to_vec(),
        entries: Vec::new(),
        seeds: Vec::new(),
        pieces: Vec::new(),
        bundles_only: spec.uploads == Uploads::Bundles,
    };
    for (upk, l1, entry) in used {
        if let Some(variant) = local
            .read_manifest(l1)
            .variants
            .into_iter()
            .find(|v| v.entry == entry.to_hex())
        {
            ours.entries.push((
                upk.clone(),
                IndexEntry {
                    l1: l1.to_hex(),
                    variant,
                    // A size hint only for what left this machine whole.
                    size: local.whole_size(entry),
                },
            ));
        }
    }
    for (upk, variant) in seeds {
        let size = Key::from_hex(&variant.pack).and_then(|k| local.entry_size(&k));
        ours.seeds.push((
            upk.clone(),
            IndexSeed {
                variant: variant.clone(),
                size,
            },
        ));
    }
    let written = if ours.bundles_only {
        // The pieces the uploader wrote, listed first.
        ours.pieces = new_pieces;
        (0, 0)
    } else {
        // New pieces for what no piece holds yet, written once (the index as it is now
        // says what is held); the update below lists them.
        let mut index = read_index(remote.get_record(&path)?.as_deref());
        ours.apply(&mut index);
        let before: std::collections::HashSet<String> =
            index.bundles.iter().map(|p| p.key.clone()).collect();
        let written = super::bundle::write(&remote, local, &mut index, bundle);
        ours.pieces = index
            .bundles
            .iter()
            .filter(|p| !before.contains(&p.key))
            .cloned()
            .collect();
        written
    };
    // Other builds update the same index at once: this build's change is merged into
    // whatever the index holds when it is written, and kept (`update_bytes`).
    remote.update_bytes(
        &path,
        &|now| {
            let mut index = read_index(now);
            ours.apply(&mut index);
            serde_json::to_vec(&index).unwrap_or_default()
        },
        &|bytes| ours.held_by(&read_index(Some(bytes))),
        true,
    )?;
    Ok(written)
}

/// The index an object holds; empty if it is absent or does not parse.
fn read_index(bytes: Option<&[u8]>) -> Index {
    bytes
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default()
}

/// What one build changes in a workspace's index, applied to whatever the index holds
/// when it is written.
struct IndexChange {
    /// Objects found damaged (and not stored again): their entries and seeds go.
    gone: std::collections::HashSet<String>,
    /// Bundle pieces with a damaged member: they go.
    damaged_pieces: Vec<String>,
    entries: Vec<(String, IndexEntry)>,
    seeds: Vec<(String, IndexSeed)>,
    /// The bundle pieces this build wrote, listed first.
    pieces: Vec<BundlePiece>,
    /// Uploads are bundled: the index keeps only what its pieces hold.
    bundles_only: bool,
}

impl IndexChange {
    fn apply(&self, index: &mut Index) {
        for list in index.units.values_mut() {
            list.retain(|e| !self.gone.contains(&e.variant.entry));
        }
        for list in index.seeds.values_mut() {
            list.retain(|s| !self.gone.contains(&s.variant.pack));
        }
        index
            .bundles
            .retain(|p| !self.damaged_pieces.contains(&p.key));
        for (upk, e) in &self.entries {
            index.add(upk, e.clone());
        }
        for (upk, s) in &self.seeds {
            index.add_seed(upk, s.clone());
        }
        let mut pieces = self.pieces.clone();
        pieces.extend(
            std::mem::take(&mut index.bundles)
                .into_iter()
                .filter(|p| !self.pieces.iter().any(|q| q.key == p.key)),
        );
        index.bundles = pieces;
        if self.bundles_only {
            super::bundle::keep_held(index);
        } else {
            index.bundles.truncate(super::bundle::MAX_PIECES);
        }
    }

    /// Whether `index` keeps this change: nothing found damaged is listed, and each
    /// entry, seed and piece is, or its list is full of others (newer ones pushed it out,
    /// as they may), or (bundled uploads) no piece holds it, so the index may not list it.
    fn held_by(&self, index: &Index) -> bool {
        let held = self.bundles_only.then(|| {
            super::bundle::held(index)
                .iter()
                .map(Key::to_hex)
                .collect::<std::collections::HashSet<_>>()
        });
        let unheld = |k: &str| held.as_ref().is_some_and(|h| !h.contains(k));
        let clean = index
            .units
            .values()
            .flatten()
            .all(|e| !self.gone.contains(&e.variant.entry))
            && index
                .seeds
                .values()
                .flatten()
                .all(|s| !self.gone.contains(&s.variant.pack))
            && index
                .bundles
                .iter()
                .all(|p| !self.damaged_pieces.contains(&p.key));
        let entries = self.entries.iter().all(|(upk, e)| {
            unheld(&e.variant.entry)
                || index.units.get(upk).is_some_and(|l| {
                    l.len() >= super::index::PER_UNIT
                        || l.iter().any(|x| x.variant.entry == e.variant.entry)
                })
        });
        let seeds = self.seeds.iter().all(|(upk, s)| {
            unheld(&s.variant.pack)
                || index.seeds.get(upk).is_some_and(|l| {
                    l.len() >= super::index::PER_UNIT || l.iter().any(|x| x.variant == s.variant)
                })
        });
        let pieces = (!self.bundles_only && index.bundles.len() >= super::bundle::MAX_PIECES)
            || self
                .pieces
                .iter()
                .all(|p| index.bundles.iter().any(|q| q.key == p.key));
        clean && entries && seeds && pieces
    }
}
