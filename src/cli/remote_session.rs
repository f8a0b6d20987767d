//! The remote tier around one `cargo xcache build`: check it once, prefetch, upload in
//! the background while cargo runs, record the index afterwards. Main type:
//! [`RemoteSession`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use crate::config::{BuildConfig, RemoteSpec, Uploads, vars};
use crate::errors::CacheError;
use crate::key::Key;
use crate::plan::Plan;
use crate::prefetch::{PendingPrefetch, PrefetchOutcome, Uploader, prefetch, update_index};
use crate::report::BuildReport;
use crate::seed::Arrivals;
use crate::seed::{Captured, SeedVariant};
use crate::store::{LocalStore, RemoteStore};
use crate::wrapper::{Outcome, UnitEvent, Warning};

use super::seed_session::Seeded;

/// How many downloads run at once, unless `--remote-jobs`/`XCACHE_REMOTE_JOBS` say
/// otherwise. Enough that the objects of a large tree travel in one or two waves of
/// round trips rather than one wave per sixteen; they share one pool of connections.
const DEFAULT_JOBS: usize = 64;

/// Uploads run beside the build's own compiles: fewer at once, so they neither starve
/// rustc nor time out against a busy server.
const UPLOAD_JOBS: usize = 4;

pub struct RemoteSession {
    spec: RemoteSpec,
    read_only: bool,
    state_file: PathBuf,
    local: LocalStore,
    up: bool,
    compiler: Option<Key>,
    workspace: Vec<String>,
    prefetched: PrefetchOutcome,
    /// Downloads still running while the target dir is seeded.
    pending: Option<PendingPrefetch>,
    upload_jobs: usize,
    uploader: Option<Uploader>,
    warnings: Vec<Warning>,
    seen_events: usize,
}

impl RemoteSession {
    /// Checks the remote and reads its index (side by side, one round trip) and starts
    /// downloading what the plan predicts; [`RemoteSession::finish_prefetch`] waits for the downloads.
    /// `None` when no remote is configured.
    pub fn start(
        cfg: &BuildConfig,
        plan: &Plan,
        state_file: PathBuf,
        show_bar: bool,
        jobs: Option<usize>,
    ) -> Option<RemoteSession> {
        if cfg.disabled {
            return None;
        }
        let spec = cfg.remote.clone()?;
        let local = LocalStore::open(&cfg.store_dir).ok()?;
        let mut s = RemoteSession {
            spec,
            read_only: cfg.read_only,
            state_file,
            local,
            up: true,
            compiler: None,
            workspace: plan.graph.workspace_members.clone(),
            prefetched: PrefetchOutcome::default(),
            pending: None,
            upload_jobs: UPLOAD_JOBS,
            uploader: None,
            warnings: Vec::new(),
            seen_events: 0,
        };
        // The plan's compiler and units: computed once, read here and by seeding.
        s.compiler = plan.compiler.as_ref().map(|c| c.key);
        let started = match s.compiler {
            // The prefetch checks the remote beside its first request.
            Some(compiler) => {
                let pm = &plan.path_map;
                let units = &plan.units;
                let mut upks: Vec<Key> = units.iter().map(|u| u.key).collect();
                upks.sort();
                upks.dedup();
                let mut seed_keys: Vec<Key> = units.iter().map(|u| u.record).collect();
                seed_keys.sort();
                seed_keys.dedup();
                // `--remote-jobs`, else `XCACHE_REMOTE_JOBS` (resolved by the caller).
                let jobs = jobs.unwrap_or(DEFAULT_JOBS);
                s.upload_jobs = jobs.min(UPLOAD_JOBS);
                prefetch(
                    &s.spec,
                    &s.local,
                    &compiler,
                    &s.workspace,
                    &upks,
                    &seed_keys,
                    pm,
                    // What the units will see: a tool's variables (`CLIPPY_ARGS`) too.
                    &plan.unit_env,
                    jobs,
                    show_bar,
                )
                .map(|pending| s.pending = Some(pending))
            }
            None => RemoteStore::open(&s.spec).and_then(|r| r.check()),
        };
        match started {
            Ok(()) => {
                let _ = crate::fsx::write_atomic(&s.state_file, b"ok\n");
            }
            Err(e) => s.down(e),
        }
        Some(s)
    }

    /// Where planting waits for the packs and entries still being downloaded.
    pub fn arrivals(&self) -> Option<&Arrivals> {
        self.pending.as_ref().map(PendingPrefetch::arrivals)
    }

    /// Waits for the prefetch to end; then uploads may start. Before cargo starts.
    pub fn finish_prefetch(&mut self) {
        if let Some(pending) = self.pending.take() {
            match pending.finish() {
                Ok(outcome) => {
                    if let Some(message) = &outcome.damaged {
                        self.warnings.push(Warning {
                            code: "remote-entry-damaged".into(),
                            message: message.clone(),
                        });
                    }
                    self.prefetched = outcome;
                }
                Err(e) => self.down(e),
            }
        }
        if self.up && !self.read_only && self.compiler.is_some() && self.uploader.is_none() {
            self.uploader = Some(Uploader::start(
                &self.spec,
                &self.local,
                self.upload_jobs,
                &self.state_file,
                self.prefetched.bundled.clone(),
            ));
        }
    }

    fn down(&mut self, e: CacheError) {
        self.up = false;
        let line = format!("down\t{}\t{e}\n", e.code());
        let _ = crate::fsx::write_atomic(&self.state_file, line.as_bytes());
        self.warn(&e);
    }

    fn warn(&mut self, e: &CacheError) {
        if !self.warnings.iter().any(|w| w.code == e.code()) {
            self.warnings.push(Warning::from(e));
        }
    }

    /// The environment the wrappers need.
    pub fn configure(&self, cmd: &mut Command) {
        if self.uploader.is_some() {
            cmd.env(vars::DEFER_UPLOAD, "1");
        }
        if self.up && !(self.prefetched.absent.is_empty() && self.prefetched.known.is_empty()) {
            // A line per prediction key the index does not know, and a line
            // `<prediction key> <first-level key>` per entry it lists.
            let list: String = self
                .prefetched
                .absent
                .iter()
                .map(|k| format!("{}\n", k.to_hex()))
                .chain(
                    self.prefetched
                        .known
                        .iter()
                        .map(|(upk, l1)| format!("{} {}\n", upk.to_hex(), l1.to_hex())),
                )
                .collect();
            let path = self.state_file.with_extension("absent");
            if crate::fsx::write_atomic(&path, list.as_bytes()).is_ok() {
                cmd.env(vars::PREFETCH_ABSENT, path);
            }
        }
    }

    /// Queues the uploads of new events (all events so far are passed).
    pub fn on_events(&mut self, events: &[UnitEvent]) {
        let Some(up) = &self.uploader else {
            self.seen_events = events.len();
            return;
        };
        for e in events.iter().skip(self.seen_events) {
            if let (true, Some(l1), Some(key)) = (e.upload, &e.l1, &e.unit.key)
                && let (Some(l1), Some(key)) = (Key::from_hex(l1), Key::from_hex(key))
            {
                up.push(l1, key);
            }
        }
        self.seen_events = self.seen_events.max(events.len());
    }

    /// Finishes uploads, records the index, and adds what happened to the report.
    pub fn finish(mut self, events: &[UnitEvent], seeded: &Seeded, report: &mut BuildReport) {
        self.on_events(events);
        let bundled = self.spec.uploads == Uploads::Bundles;
        // What the remote holds by this build's word: what its index lists, and what
        // came from it.
        let from_remote: Vec<Key> = events
            .iter()
            .filter(|e| e.unit.tier.as_deref() == Some("remote"))
            .filter_map(|e| e.unit.key.as_deref().and_then(Key::from_hex))
            .collect();
        let held_there: HashSet<Key> = self
            .prefetched
            .prefetched
            .iter()
            .chain(&self.prefetched.packs)
            .chain(&from_remote)
            .chain(&self.prefetched.listed)
            .copied()
            .collect();
        let held_there = move |k: &Key| held_there.contains(k);
        // The seeds to record there: the captured, and the planted ones it may not hold
        // (the build that recorded them here may have been killed before uploading).
        let seeds: Vec<&Captured> =
            seeded
                .captured
                .iter()
                .chain(seeded.planted.iter().filter(|c| {
                    Key::from_hex(&c.variant.pack).is_some_and(|pack| !held_there(&pack))
                }))
                .collect();
        let mut uploaded = HashSet::new();
        let mut new_pieces = Vec::new();
        if let Some(up) = self.uploader.take() {
            // What the events' uploads send already (`on_events`).
            let sent: HashSet<&str> = events
                .iter()
                .filter(|e| e.upload)
                .filter_map(|e| e.unit.key.as_deref())
                .collect();
            for c in &seeds {
                if let Some(pack) = Key::from_hex(&c.variant.pack) {
                    up.push_entry(pack);
                }
                // The unit's entry, planted beside the pack: a planted seed's came from
                // this store too, and the build that stored it may have been killed
                // before its uploads.
                if let Some(entry) = c.variant.separate_entry()
                    && !sent.contains(entry)
                    && let Some(entry) = Key::from_hex(entry)
                    && !held_there(&entry)
                {
                    up.push_entry(entry);
                }
            }
            if bundled {
                // Pieces are all the remote holds: what this build used that no piece
                // holds (hits from the local store, seed packs fetched alone) joins them,
                // so the index may list it.
                for e in events.iter().filter(|e| e.unit.outcome == Outcome::Hit) {
                    if let Some(key) = e.unit.key.as_deref().and_then(Key::from_hex) {
                        up.push_entry(key);
                    }
                }
                for pack in &self.prefetched.packs {
                    up.push_entry(*pack);
                }
            } else {
                // Hits from the local store that the remote is not known to hold: the
                // build that stored them may have been killed before its uploads, and
                // every other build hits them here and uploads nothing.
                for e in events.iter().filter(|e| e.unit.outcome == Outcome::Hit) {
                    if let (Some(l1), Some(key)) = (
                        e.l1.as_deref().and_then(Key::from_hex),
                        e.unit.key.as_deref().and_then(Key::from_hex),
                    ) && !held_there(&key)
                    {
                        up.push(l1, key);
                    }
                }
            }
            let outcome = up.finish();
            uploaded.extend(outcome.uploaded.iter().map(|k| k.to_hex()));
            new_pieces = outcome.pieces;
            report.summary.pieces_up = new_pieces.len();
            report.summary.bytes_up += outcome.bytes;
            if let Some(e) = outcome.too_large {
                self.warn(&e);
            }
            if let Some(e) = outcome.error {
                self.down(e);
            }
        }
        let damaged: HashSet<String> = self
            .prefetched
            .damaged_keys
            .iter()
            .map(Key::to_hex)
            .collect();
        // The index lists what the next build can fetch: hits, and new entries that
        // reached the remote (not those refused for their size).
        // With bundled uploads, only what a piece holds can be fetched.
        let held: HashSet<String> = self.prefetched.bundled.iter().map(Key::to_hex).collect();
        let reachable = |k: &String| {
            uploaded.contains(k)
                || if bundled {
                    held.contains(k)
                } else {
                    Key::from_hex(k).is_some_and(|k| held_there(&k))
                }
        };
        let used: Vec<(String, Key, Key)> = events
            .iter()
            .filter(|e| match e.unit.outcome {
                Outcome::Hit => e.unit.key.as_ref().is_some_and(reachable),
                Outcome::Miss => e.unit.key.as_ref().is_some_and(|k| uploaded.contains(k)),
                _ => false,
            })
            .filter_map(|e| {
                Some((
                    e.upk.clone()?,
                    Key::from_hex(e.l1.as_deref()?)?,
                    Key::from_hex(e.unit.key.as_deref()?)?,
                ))
            })
            .filter(|(upk, _, entry)| {
                // A damaged entry stored again is indexed again, with its new size.
                damaged.contains(&entry.to_hex())
                    || !self
                        .prefetched
                        .indexed
                        .contains(&(upk.clone(), entry.to_hex()))
            })
            .collect();
        // Seeds whose pack reached the remote.
        let new_seeds: Vec<(String, SeedVariant)> = seeds
            .iter()
            .filter(|c| {
                uploaded.contains(&c.variant.pack) || (bundled && held.contains(&c.variant.pack))
            })
            // And whose entry planted beside it is there.
            .filter(|c| {
                c.variant
                    .separate_entry()
                    .is_none_or(|e| reachable(&e.to_string()))
            })
            .filter(|c| {
                !self
                    .prefetched
                    .seeds_indexed
                    .contains(&(c.upk.to_hex(), c.variant.pack.clone()))
            })
            .map(|c| (c.upk.to_hex(), c.variant.clone()))
            .collect();
        // What the next build would fetch as a bundle: the objects this build had from
        // the remote or stored there, in the order planting needs them (seed packs by
        // seed key, then entries by prediction key, as the prefetch wants them). Only
        // when enough of them are in no bundle yet is the index rewritten for it.
        let bundle = if bundled {
            // The uploads wrote the pieces.
            Vec::new()
        } else {
            let hits: HashSet<String> = events
                .iter()
                .filter(|e| e.unit.outcome == Outcome::Hit)
                .filter_map(|e| e.unit.key.clone())
                .collect();
            let packs: HashSet<&Key> = self.prefetched.packs.iter().collect();
            let got: HashSet<&Key> = self.prefetched.prefetched.iter().collect();
            let mut objects: Vec<Key> = self
                .prefetched
                .order
                .iter()
                .filter(|k| packs.contains(k) || (got.contains(k) && hits.contains(&k.to_hex())))
                .copied()
                .collect();
            let mut new_packs: Vec<(Key, Key)> = seeds
                .iter()
                .filter(|c| uploaded.contains(&c.variant.pack))
                .filter_map(|c| Some((c.upk, Key::from_hex(&c.variant.pack)?)))
                .collect();
            new_packs.sort();
            let mut new_entries: Vec<(String, Key)> = events
                .iter()
                .filter(|e| e.unit.key.as_ref().is_some_and(|k| uploaded.contains(k)))
                .filter_map(|e| Some((e.upk.clone()?, Key::from_hex(e.unit.key.as_deref()?)?)))
                .collect();
            new_entries.sort();
            objects.extend(new_packs.into_iter().map(|(_, k)| k));
            objects.extend(new_entries.into_iter().map(|(_, k)| k));
            let mut seen = HashSet::new();
            objects.retain(|k| seen.insert(*k));
            if crate::prefetch::uncovered(&self.prefetched.bundled, &objects)
                >= crate::prefetch::MIN_NEW
            {
                objects
            } else {
                Vec::new()
            }
        };
        // The state file also tells whether a wrapper gave the remote up.
        let state = std::fs::read_to_string(&self.state_file).unwrap_or_default();
        let _ = std::fs::remove_file(self.state_file.with_extension("absent"));
        if self.up
            && !state.starts_with("down")
            && !self.read_only
            && let Some(compiler) = &self.compiler
        {
            match update_index(
                &self.spec,
                &self.local,
                compiler,
                &self.workspace,
                &used,
                &new_seeds,
                &self.prefetched.damaged_keys,
                &uploaded,
                &self.prefetched.damaged_pieces,
                &bundle,
                new_pieces,
            ) {
                Ok((pieces, bytes)) => {
                    report.summary.pieces_up += pieces;
                    report.summary.bytes_up += bytes;
                }
                Err(e) => self.down(e),
            }
        }

        let prefetched: HashSet<String> = self
            .prefetched
            .prefetched
            .iter()
            .map(|k| k.to_hex())
            .collect();
        let packs: HashSet<String> = self.prefetched.packs.iter().map(|k| k.to_hex()).collect();
        let mut used_prefetched = 0;
        for u in &mut report.units {
            if u.outcome != Outcome::Hit {
                continue;
            }
            if u.key.as_ref().is_some_and(|k| prefetched.contains(k)) {
                u.tier = Some("remote".into());
                used_prefetched += 1;
            } else if u.key.as_ref().is_some_and(|k| packs.contains(k)) {
                // A seeded build script: its files travel in the seed's pack.
                u.tier = Some("remote".into());
            }
        }
        let s = &mut report.summary;
        s.remote_hits = report
            .units
            .iter()
            .filter(|u| u.tier.as_deref() == Some("remote"))
            .count();
        s.predicted = self.prefetched.predicted;
        s.prefetched = self.prefetched.prefetched.len();
        s.prefetch_unused = s.prefetched.saturating_sub(used_prefetched);
        s.prefetch_ms = self.prefetched.ms;
        s.prefetch_requests = self.prefetched.requests;
        s.prefetch_pieces = self.prefetched.pieces;
        s.prefetch_bundled = self.prefetched.from_bundles;
        s.bytes_down += self.prefetched.bytes;
        for w in self.warnings.into_iter().rev() {
            if !report.warnings.iter().any(|x| x.code == w.code) {
                report.warnings.insert(0, w);
            }
        }
    }
}
