//! Capturing one unit the wrapper cached: the inputs that must stay unchanged for its
//! variant to be planted again (its compile's, its build-script run's, what it was
//! built against), its pack written, and the variant added to its record.

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::pack::{Src, linkable_executables, linkable_rlib, write_pack};
use super::stats::{CaptureStats, Captured, Skip};
use super::unit_files::{
    build_script_of, is_script_compile, profile_root, run_event, unit_dirs, unit_files,
};
use crate::config::Env;
use crate::key::Layout;
use crate::key::{Input, InputKind, Key, PathMap, RootKind, link_input_identity, normalize_inputs};
use crate::seed::record::{Rehash, SeedVariant, add_variant, pack_key, read_record};
use crate::store::{LocalStore, ReadAs, Variant};
use crate::wrapper::{Outcome, UnitEvent};

/// Variables rustc reads itself that change its output: the compiler identity's part
/// of a unit's key that no recorded input carries.
pub(super) const RUSTC_ENV: &[&str] = &["RUSTC_BOOTSTRAP", "RUSTC_FORCE_RUSTC_VERSION"];

/// What every capture of one build shares: the store, where the workspace and
/// `CARGO_HOME` are, the environment and cargo's version.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    pub store: &'a LocalStore,
    pub workspace_root: &'a Path,
    pub cargo_home: Option<&'a Path>,
    pub env: &'a Env,
    pub cargo_version: &'a str,
}

/// Captures each unit of `events` that the wrapper hit or stored and `wanted` picks (by
/// its index in `events`).
pub fn capture(
    site: Site<'_>,
    events: &[UnitEvent],
    wanted: impl Fn(usize) -> bool + Sync,
) -> CaptureStats {
    let results: Vec<Result<Option<Captured>, Skip>> = events
        .par_iter()
        .enumerate()
        .filter(|(i, _)| wanted(*i))
        .map(|(_, ev)| capture_unit(site, ev, events, &mut None))
        .collect();
    let mut stats = CaptureStats::default();
    for r in results {
        stats.add(r);
    }
    stats
}

/// The variant the wrapper recorded for an event's entry: what that unit (or run) read.
fn recorded_variant(store: &LocalStore, ev: &UnitEvent) -> Option<Variant> {
    if !matches!(ev.unit.outcome, Outcome::Hit | Outcome::Miss) {
        return None;
    }
    let l1 = Key::from_hex(ev.l1.as_deref()?)?;
    let entry = ev.unit.key.as_deref()?;
    store
        .read_manifest(&l1)
        .variants
        .into_iter()
        .find(|v| v.entry == entry)
}

/// An input recorded with one set of roots, told with another (a build-script run's
/// inputs, recorded with the package directory as working directory, joined to its
/// unit's, recorded with the workspace root).
fn retokenize(i: Input, from: &PathMap, to: &PathMap) -> Input {
    let text = |s: &str| to.normalize_text(&from.expand_text(s));
    match i.kind {
        InputKind::Root => match RootKind::from_token(&i.name) {
            // A binding to the run's working directory: the same real path, named by
            // whichever root of the unit holds it.
            Some(_) => {
                let real = Path::new(&i.state);
                match to.roots().iter().find(|r| real.starts_with(&r.real)) {
                    Some(r) => Input::new(InputKind::Root, r.kind.token(), r.real.clone()),
                    None => i,
                }
            }
            None => i,
        },
        InputKind::Env | InputKind::HostCpu | InputKind::Linker => Input {
            state: text(&i.state),
            ..i
        },
        // Names of variables only; a program's name and its contents' digest.
        InputKind::EnvSet | InputKind::Lookup => i,
        _ => Input {
            name: text(&i.name),
            state: text(&i.state),
            kind: i.kind,
        },
    }
}

/// A run's input about its own `OUT_DIR` describes the directory before the run. A
/// seed is planted only where the run's directory is new, so such an input must say what
/// a new `OUT_DIR` holds (the directory, empty): then it holds wherever the seed is
/// planted and is dropped; a run that found anything else there (files an earlier run
/// left) is not seeded.
fn fresh_out_dir(i: Input, out_dir: &str) -> Result<Option<Input>, Skip> {
    let inside = i.name.strip_prefix(out_dir);
    let Some(rest) = inside.filter(|r| r.is_empty() || r.starts_with('/')) else {
        return Ok(Some(i));
    };
    let fresh = match (i.kind, rest.is_empty()) {
        (InputKind::Path, true) => i.state == crate::key::state::DIR,
        (InputKind::Listing, true) => i.state == crate::judge::empty_listing_state(),
        (InputKind::Canonical | InputKind::Link, true) => return Ok(Some(i)),
        (InputKind::Path | InputKind::Listing | InputKind::Canonical | InputKind::Link, false) => {
            i.state == crate::key::state::ABSENT
        }
        _ => return Ok(Some(i)),
    };
    if fresh {
        Ok(None)
    } else {
        Err(Skip::Unseedable)
    }
}

pub(super) fn capture_unit(
    site: Site<'_>,
    ev: &UnitEvent,
    events: &[UnitEvent],
    read: &mut Option<Vec<(String, ReadAs)>>,
) -> Result<Option<Captured>, Skip> {
    let Site {
        store,
        workspace_root,
        cargo_home,
        env,
        cargo_version,
    } = site;
    let (Some(pl), Some(spk)) = (&ev.place, ev.spk.as_deref().and_then(Key::from_hex)) else {
        return Err(Skip::NotCached);
    };
    let upk = crate::key::record_key(&spk, cargo_version);
    let unit_variant = recorded_variant(store, ev).ok_or(Skip::NotCached)?;
    let entry = ev.unit.key.clone().ok_or(Skip::NotCached)?;
    let pr = profile_root(&pl.out_dir).ok_or(Skip::Unseedable)?;
    let root = &pl.target_root;
    let unit_pm = PathMap::new(&pl.cwd, Some(root), cargo_home);
    let ws_pm = PathMap::new(workspace_root, Some(root), cargo_home);
    // A run the cache did not vouch for, or that this build did not see, is not
    // planted, nor is what read its `OUT_DIR`.
    let run_ev = match &pl.run_dir {
        Some(run) => Some(run_event(events, run, root).ok_or(Skip::Unseedable)?),
        None => None,
    };
    let (_, _, run_fp, fp) = unit_dirs(ev, events).ok_or(Skip::Unseedable)?;
    // cargo's files for the unit, listed (and their states taken) before anything of
    // the target dir is read. (A listing that fails holds nothing: it is made again.)
    *read = Some(Vec::new());
    let mut files = unit_files(root, pl, pr, run_fp.as_deref(), &fp)?;
    *read = Some(files.iter().map(|f| (f.rel.clone(), f.stamp)).collect());

    // What must hold: what the compile read, …
    let mut inputs: Vec<Input> = unit_variant.inputs;
    // … what its build-script run read, …
    if let (Some(run), Some(run_ev)) = (&pl.run_dir, run_ev) {
        let run_variant = recorded_variant(store, run_ev).ok_or(Skip::Unseedable)?;
        let run_cwd = run_ev
            .place
            .as_ref()
            .map(|p| p.cwd.clone())
            .unwrap_or_default();
        let run_pm = PathMap::new(&run_cwd, Some(root), cargo_home);
        let out_dir = unit_pm.normalize_path(&root.join(Layout::run_out_dir(pr, run)));
        for i in run_variant.inputs {
            if let Some(i) = fresh_out_dir(retokenize(i, &run_pm, &unit_pm), &out_dir)? {
                inputs.push(i);
            }
        }
        // The variables the run sets for the compile (`cargo:rustc-env=`) are the
        // run's output, planted with it: what the compile read of them holds with it.
        let output = fs::read_to_string(root.join(Layout::run_stdout(pr, run)))?;
        let set_by_run: Vec<&str> = output
            .lines()
            .filter_map(|l| {
                l.strip_prefix("cargo::rustc-env=")
                    .or_else(|| l.strip_prefix("cargo:rustc-env="))
            })
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .collect();
        inputs.retain(|i| !(i.kind == InputKind::Env && set_by_run.contains(&i.name.as_str())));
    }
    // … what it was built against, …
    for (path, identity) in &pl.deps {
        inputs.push(Input::new(
            InputKind::Identity,
            path.clone(),
            identity.clone(),
        ));
    }
    if let (Some(run), Some(fp)) = (&pl.run_dir, &run_fp) {
        let script = build_script_of(root, pr, run, fp).ok_or(Skip::Unseedable)?;
        let id = link_input_identity(&script)?;
        inputs.push(Input::new(
            InputKind::Identity,
            unit_pm.normalize_path(&script),
            id,
        ));
    }
    // … the linker it used, and the compiler's own settings.
    if let Some(l) = &pl.linker {
        let request = serde_json::to_string(&(&l.program, &l.fuse_ld, &l.target, &l.sysroot))
            .map_err(|_| Skip::Unseedable)?;
        inputs.push(Input::new(InputKind::Linker, request, l.key.clone()));
    }
    // cargo's fingerprint of a package outside the workspace (a registry or git package
    // in CARGO_HOME, a path dependency elsewhere) hashes its sources' absolute path:
    // planted where that path differs, cargo would reject the unit (and every unit
    // built on it, whose deferred identities then fail). Where the unit's fingerprints
    // hash here as cargo hashed them, planting makes them what cargo computes where they
    // are planted (`crate::seed::fingerprint`), and a package in CARGO_HOME is not bound to
    // it. Otherwise the variant holds only where that path is the same.
    let outside = !pl.cwd.starts_with(workspace_root);
    let home = unit_pm.real_of(RootKind::CargoHome);
    let in_home = outside && home.is_some_and(|h| pl.cwd.starts_with(h));
    let source = pl.source.as_deref().map(Path::new);
    let fp_dirs: Vec<&str> = std::iter::once(fp.as_str())
        .chain(run_fp.as_deref())
        .collect();
    let rehash = crate::seed::fingerprint::rehashable(root, &fp_dirs, source).then(|| Rehash {
        source: source
            .filter(|s| in_home && s.is_absolute())
            .map(|s| unit_pm.normalize_path(s)),
    });
    let unbound = in_home && rehash.as_ref().is_some_and(|r| r.source.is_some());
    let bind = |inputs: &mut Vec<Input>| {
        let kind = if in_home {
            RootKind::CargoHome
        } else {
            RootKind::Cwd
        };
        if let Some(real) = unit_pm.real_of(kind) {
            inputs.push(Input::new(InputKind::Root, kind.token(), real.to_string()));
        }
    };
    if outside && !unbound {
        bind(&mut inputs);
    }
    for v in RUSTC_ENV {
        inputs.push(Input::env(
            v,
            env.get(v).map(|x| unit_pm.normalize_text(x)).as_deref(),
        ));
    }
    normalize_inputs(&mut inputs);

    // Cargo's files for the unit. Text is tokenized; anything else must not hold a
    // machine path (but those of the roots the unit is bound to).
    let bound: Vec<&str> = inputs
        .iter()
        .filter(|i| i.kind == InputKind::Root)
        .map(|i| i.name.as_str())
        .collect();
    let mut needles: Vec<Vec<u8>> = unit_pm
        .roots()
        .iter()
        .chain(ws_pm.roots())
        .filter(|r| !bound.contains(&r.kind.token()))
        .map(|r| r.real.as_bytes().to_vec())
        .collect();
    needles.sort();
    needles.dedup();
    // Unbound from CARGO_HOME, a binary file that names it binds the variant after all.
    let strict: Vec<Vec<u8>> = match home.filter(|_| unbound) {
        Some(h) => needles
            .iter()
            .filter(|n| n.as_slice() != h.as_bytes())
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let mut names_home = false;
    let in_build_dir = is_script_compile(pl);
    let mut listed = Vec::with_capacity(files.len());
    // Each file read, as it was when read: the pack holds the larger ones by reference
    // to the digest taken here, without reading them again.
    let mut read_as = Vec::with_capacity(files.len());
    let mut bytes = 0u64;
    for f in &mut files {
        let (digest, read) = match &mut f.src {
            Src::Text(t) => {
                *t = unit_pm.normalize_text(t);
                bytes += t.len() as u64;
                (Key::digest(t.as_bytes()), None)
            }
            Src::File(p) => {
                // Read in pieces: a C library a run left in `OUT_DIR` may be large.
                let file = fs::File::open(&*p)?;
                let before = ReadAs::of(&file.metadata()?);
                let (len, digest, found) = crate::store::digest_and_find(&file, &needles)?;
                if found {
                    let (_, _, other) =
                        crate::store::digest_and_find(fs::File::open(&*p)?, &strict)?;
                    if !unbound || other {
                        return Err(Skip::Unseedable);
                    }
                    names_home = true;
                }
                if ReadAs::of(&file.metadata()?) != before || len != before.len {
                    return Err(Skip::Io);
                }
                bytes += len;
                (digest, Some(before))
            }
        };
        listed.push((f.rel.clone(), digest, f.exec));
        read_as.push(read);
    }
    let linkable = if in_build_dir {
        linkable_executables(store, &files, &listed)
    } else {
        let rlib = linkable_rlib(store, root, &pl.out_dir, &ev.unit.crate_name, &pl.unit_dir);
        // The wrapper's restores of the entry (where seeding does not reach) link it too.
        if let Some(e) = Key::from_hex(&entry) {
            crate::store::objects::record_entry_objects(store, &e, &rlib);
        }
        rlib
    };

    if names_home {
        bind(&mut inputs);
        normalize_inputs(&mut inputs);
    }
    let mut variant = SeedVariant {
        pack: String::new(),
        entry: Some(entry),
        outputs_in_pack: in_build_dir,
        out_dir: pl.out_dir.clone(),
        fingerprint_dir: fp,
        run_fingerprint_dir: run_fp,
        cwd: ws_pm.normalize_path(&pl.cwd),
        inputs,
        bytes,
        compile_ms: ev.unit.compile_ms.unwrap_or(0),
        incremental: pl.incremental,
        linkable,
        rehash,
    };
    let pack = pack_key(&upk, &variant, &listed);
    variant.pack = pack.to_hex();
    let recorded = read_record(store, &upk)
        .variants
        .iter()
        .any(|v| v.pack == variant.pack);
    // A pack deleted as corrupt is written again.
    let pack_present = store.entry_size(&pack).is_some();
    if recorded && pack_present {
        return Ok(None);
    }
    if !pack_present {
        write_pack(store, &pack, &files, &listed, &read_as)?;
    }
    add_variant(store, &upk, variant.clone())?;
    Ok(Some(Captured { upk, variant }))
}
