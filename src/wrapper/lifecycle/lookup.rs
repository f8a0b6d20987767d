//! The lookup of a unit: every recorded variant judged by the one judge, locally, then
//! in the remote tier; the restore and replay of a hit ([`try_hit`]); the key of a unit
//! whose outputs hold a root, wherever the roots are ([`Cx::rooted_key`]).

use std::time::Instant;

use super::cached::Cached;
use super::context::Cx;
use super::emit::event;
use super::verify_hit::{sampled, verify_hit};
use crate::judge::{EnvNow, Here, Judge, Mode};
use crate::key::{Input, Key, entry_key, without_roots};
use crate::store::{EntryFile, EntryMeta, Manifest};
use crate::wrapper::Outcome;
use crate::wrapper::restore::{RestoreFilter, restore_entry};

impl Cx {
    /// The variant of `manifest` that holds here now, newest first: its entry key,
    /// recomputed from what the judge found.
    /// The one judge, asked about this unit's place.
    fn judge(&self) -> Judge<'_> {
        Judge::new(Here {
            pm: self.pm.clone(),
            env: Box::new(|name: &str| match self.cfg.env.all().get(name) {
                Some(v) => EnvNow::Set(v.clone()),
                None => EnvNow::Unset,
            }),
            env_names: Box::new(|| Some(self.cfg.env.all().keys().cloned().collect())),
            host_cpu: Box::new(|| self.host_cpu()),
            linker: Box::new(|_| None),
            mode: Mode::Exact,
        })
    }

    fn judge_variants(&self, manifest: &Manifest, l1: &Key, stored_only: bool) -> Vec<Key> {
        let judge = self.judge();
        manifest
            .variants
            .iter()
            .filter_map(|v| {
                if judge.check(&v.inputs).is_err() {
                    return None;
                }
                let key = entry_key(l1, &v.inputs);
                let present = self
                    .store
                    .as_ref()
                    .and_then(|s| s.entry_size(&key))
                    .is_some();
                (!stored_only || present).then_some(key)
            })
            .collect()
    }

    /// Looks `l1` up: the entries whose variants hold here, newest first, locally; else
    /// the one the remote tier has. Each with its tier.
    fn lookup(&mut self, l1: &Key, remote_pick: bool) -> Vec<(Key, &'static str)> {
        let Some(store) = self.store.clone() else {
            return Vec::new();
        };
        let local = self.judge_variants(&store.read_manifest(l1), l1, true);
        if !local.is_empty() || !remote_pick {
            return local.into_iter().map(|k| (k, "local")).collect();
        }
        let Some(mut tier) = self.remote.take() else {
            return Vec::new();
        };
        let mut seen = None;
        let result = tier.fetch(&store, l1, |m| {
            seen = Some(m.clone());
            self.judge_variants(m, l1, false).into_iter().next()
        });
        self.remote_manifest = seen;
        self.remote = Some(tier);
        match result {
            Ok(Some((key, n))) => {
                self.bytes_down += n;
                vec![(key, "remote")]
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                self.warn(&e);
                Vec::new()
            }
        }
    }

    /// What a unit of `l1` whose outputs hold a root is made of, wherever the roots are
    /// (`key::rooted_identity`): the key without the roots of the first variant recorded
    /// whose inputs, its roots aside, hold here (the one judge decides). The remote's
    /// oldest first, if the lookup read its manifest, then the local store's; `None`
    /// when no variant holds (one just stored always does).
    pub fn rooted_key(&self, l1: &Key) -> Option<Key> {
        let judge = self.judge();
        let holds = |v: &&crate::store::Variant| judge.check(&without_roots(&v.inputs)).is_ok();
        let local = self.store.as_ref()?.read_manifest(l1);
        self.remote_manifest
            .iter()
            .chain(std::iter::once(&local))
            .find_map(|m| m.variants.iter().rev().find(holds))
            .map(|v| unbound_key(l1, &v.inputs))
    }
}

/// The entry key of `l1` over `inputs` but the roots.
fn unbound_key(l1: &Key, inputs: &[Input]) -> Key {
    entry_key(l1, &without_roots(inputs))
}

/// Looks the unit up and restores it. `Some(exit code)` on a hit. An entry that cannot
/// be used (refused as untrusted, damaged) does not end the lookup: the next entry whose
/// variant holds is tried.
pub(super) fn try_hit(unit: &mut impl Cached, cx: &mut Cx, l1: &Key) -> Option<i32> {
    let dir = unit.restore_dir(cx)?;
    let t = Instant::now();
    // Prefetch already asked the remote's index about this unit, and it had nothing
    // under this first-level key.
    let ask_remote = !prefetch_knows_absent(cx, unit, l1);
    let store = cx.store.clone()?;
    for (key, tier) in cx.lookup(l1, ask_remote) {
        let result = {
            let accept = |m: &EntryMeta| unit.replayable(cx, m);
            // A library's `.rlib` may come from a loose object, as when seeding.
            let objects = if store.checks_signatures() {
                Vec::new()
            } else {
                crate::store::objects::entry_objects(&store, &key)
            };
            let link = |m: &EntryMeta, f: &EntryFile| {
                if !crate::store::objects::served_by_object(m, f) {
                    return None;
                }
                objects
                    .iter()
                    .find(|o| o.name == f.name && o.beside.is_some())
                    .map(crate::store::objects::LinkableFile::link)
            };
            let filter = RestoreFilter {
                file: &|_| true,
                meta: &accept,
                link: &link,
            };
            restore_entry(&store, &key, &dir, &cx.pm, &filter)
        };
        match result {
            Ok(Some(restored)) => {
                unit.restored(cx, &key, &restored);
                unit.replay(cx, &restored.meta);
                let mut ev = event(
                    unit,
                    cx,
                    Outcome::Hit,
                    None,
                    Some(key),
                    restored.bytes,
                    Some(*l1),
                );
                ev.unit.compile_ms = Some(restored.meta.compile_ms);
                ev.bytes_linked = restored.linked_bytes;
                let restore_ms = t.elapsed().as_millis() as u64;
                ev.unit.restore_ms = Some(restore_ms);
                ev.unit.overhead.insert("restore".into(), restore_ms);
                ev.unit.tier = Some(tier.to_string());
                if sampled(cx, &key) {
                    ev.verify = Some(verify_hit(unit, cx, l1, &key, &restored, &dir));
                }
                cx.finish_event(&ev);
                return Some(0);
            }
            Ok(None) => {}
            Err(e) => cx.warn(&e),
        }
    }
    *cx.phases.entry("lookup").or_default() += t.elapsed().as_millis() as u64;
    None
}

/// True when the front-end's prefetch found nothing in the remote's index for this
/// unit's prediction key, or entries under other first-level keys only. (A manifest
/// the index does not list can still be in the remote, written by a build that did not
/// update the index; missing it costs a compile, as for a unit the index lacks, and
/// spares every unit that is compiled anyway a round trip on the build's critical
/// path.)
fn prefetch_knows_absent(cx: &Cx, unit: &impl Cached, l1: &Key) -> bool {
    let Some(list) = &cx.cfg.prefetch_absent else {
        return false;
    };
    let mut probe = event(unit, cx, Outcome::Miss, None, None, 0, None);
    unit.complete_event(cx, &mut probe);
    let Some(upk) = probe.upk else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(list) else {
        return false;
    };
    let mut listed = false;
    for line in text.lines() {
        match line.split_once(' ') {
            None if line == upk => return true,
            Some((u, k)) if u == upk => {
                if k == l1.to_hex() {
                    return false;
                }
                listed = true;
            }
            _ => {}
        }
    }
    listed
}
