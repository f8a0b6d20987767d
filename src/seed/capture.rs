//! Capturing units as a build ends: cargo's files for each unit the wrapper cached, and
//! the inputs that must stay unchanged for them to be planted again. A unit cargo is
//! done with is captured while cargo still runs (`capture_one`), and that capture
//! stands once cargo has exited only if nothing it read moved since (`still_as_read`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::record::{LinkableFile, Rehash, SeedVariant, add_variant, pack_key, read_record};
use crate::config::Env;
use crate::key::{
    Input, InputKind, Key, PathMap, RootKind, identity_digest, link_input_identity,
    normalize_inputs, recorded_identity,
};
use crate::key::{Layout, Place};
use crate::store::{EntryFile, EntryMeta, EntrySource, LocalStore, ReadAs, Variant};
use crate::wrapper::{Outcome, UnitEvent};

/// A variant a capture recorded: what the remote index should learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The record key the variant is recorded under (`key::record_key`).
    pub upk: Key,
    pub variant: SeedVariant,
}

/// What a capture did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Variants written.
    pub captured: usize,
    /// Units whose current state was already recorded.
    pub unchanged: usize,
    /// Units that cannot be seeded (see `Skip`).
    pub unseedable: usize,
    /// The variants written.
    pub variants: Vec<Captured>,
}

/// Why a unit is not captured. Not an error: the unit is still cached by the wrapper,
/// it just goes through cargo and the wrapper next time.
#[derive(Debug)]
enum Skip {
    /// The event lacks what seeding needs (no key, no place, not cached).
    NotCached,
    /// A file cargo keeps holds a machine path, the unit's build-script run was not
    /// cached, or an input cannot be described.
    Unseedable,
    Io,
}

impl From<io::Error> for Skip {
    fn from(_: io::Error) -> Skip {
        Skip::Io
    }
}

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

impl CaptureStats {
    fn add(&mut self, r: Result<Option<Captured>, Skip>) {
        match r {
            Ok(Some(c)) => {
                self.captured += 1;
                self.variants.push(c);
            }
            Ok(None) => self.unchanged += 1,
            Err(Skip::NotCached) => {}
            Err(Skip::Unseedable | Skip::Io) => self.unseedable += 1,
        }
    }

    /// Adds what another capture did.
    pub fn merge(&mut self, other: CaptureStats) {
        self.captured += other.captured;
        self.unchanged += other.unchanged;
        self.unseedable += other.unseedable;
        self.variants.extend(other.variants);
    }
}

/// The files of the target dir a capture read (relative to the target root), each as it
/// was before it was read; `None` when the capture read none (its outcome followed from
/// the event and the store alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamps(Option<Vec<(String, ReadAs)>>);

/// A unit captured while cargo still ran: what the capture did, and what it read. It
/// stands once cargo has exited only if [`still_as_read`] says so.
#[derive(Debug)]
pub struct Attempt {
    result: Result<Option<Captured>, Skip>,
    stamps: Stamps,
}

impl Attempt {
    /// Whether the attempt's outcome may stand: not a failure to read, which the capture
    /// after cargo tries again.
    pub fn is_final(&self) -> bool {
        !matches!(self.result, Err(Skip::Io))
    }

    /// Adds the outcome to `stats`.
    pub fn count_into(self, stats: &mut CaptureStats) {
        stats.add(self.result);
    }
}

/// Captures one unit of `events` (as [`capture`] does), keeping what it read so that
/// [`still_as_read`] can tell, once cargo has exited, whether cargo wrote any of it
/// since.
pub fn capture_one(site: Site<'_>, ev: &UnitEvent, events: &[UnitEvent]) -> Attempt {
    let mut stamps = None;
    let result = capture_unit(site, ev, events, &mut stamps);
    Attempt {
        result,
        stamps: Stamps(stamps),
    }
}

/// Whether the files of the target dir a capture of `ev` read are all still as they were
/// then, and no file was added beside them: the same names, each the same inode with the
/// same length and modification time. cargo writes a unit's fingerprint after its
/// wrapper has exited, and rewrites it in place (a new length or time): a capture made
/// while cargo ran holds only if nothing it read moved since.
pub fn still_as_read(ev: &UnitEvent, events: &[UnitEvent], attempt: &Attempt) -> bool {
    let Some(read) = &attempt.stamps.0 else {
        return true;
    };
    let Some((pl, pr, run_fp, fp)) = unit_dirs(ev, events) else {
        return false;
    };
    unit_files(&pl.target_root, pl, pr, run_fp.as_deref(), &fp).is_ok_and(|files| {
        files.len() == read.len()
            && files
                .iter()
                .zip(read)
                .all(|(f, (rel, stamp))| f.rel == *rel && f.stamp == *stamp)
    })
}

/// Whether cargo is done with `ev`'s unit (and the build-script run it read): its
/// `.fingerprint` directory holds a fingerprint (a hash file and its `.json`) written
/// since the unit's wrapper started. cargo writes the fingerprint last, after the
/// wrapper has exited; until then a capture would read the last build's, or none. (Not
/// a proof: [`still_as_read`] is, once cargo has exited.)
pub fn settled(ev: &UnitEvent, events: &[UnitEvent]) -> bool {
    let Some((pl, _, run_fp, fp)) = unit_dirs(ev, events) else {
        // Nothing of the target dir is read: the capture stops at the event.
        return true;
    };
    let root = &pl.target_root;
    let written_since = |dir: &Path, since_ms: u64| -> bool {
        let Ok(rd) = fs::read_dir(dir) else {
            return false;
        };
        let since = std::time::UNIX_EPOCH + std::time::Duration::from_millis(since_ms);
        let fresh = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        };
        let mut any = false;
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                if !fresh(&p) || !fresh(&p.with_extension("")) {
                    return false;
                }
                any = true;
            }
        }
        any
    };
    if !written_since(&root.join(&fp), ev.start_ms) {
        return false;
    }
    match (&pl.run_dir, &run_fp) {
        (Some(run), Some(run_fp)) => run_event(events, run, root)
            .is_some_and(|run_ev| written_since(&root.join(run_fp), run_ev.start_ms)),
        _ => true,
    }
}

/// Where a unit's files are, for an event the capture reads the target dir for: its
/// place, its profile root, and the `.fingerprint` directories of its build-script run
/// (if any) and of itself (relative to the target root).
fn unit_dirs<'e>(
    ev: &'e UnitEvent,
    events: &[UnitEvent],
) -> Option<(
    &'e crate::wrapper::UnitPlace,
    &'e str,
    Option<String>,
    String,
)> {
    let pl = ev.place.as_ref()?;
    ev.spk.as_deref().and_then(Key::from_hex)?;
    ev.unit.key.as_ref()?;
    let pr = profile_root(&pl.out_dir)?;
    if let Some(run) = &pl.run_dir {
        run_event(events, run, &pl.target_root)?;
    }
    let run_fp = pl.run_dir.as_ref().map(|r| Layout::fingerprint_dir(pr, r));
    let fp = Layout::fingerprint_dir(pr, &pl.unit_dir);
    Some((pl, pr, run_fp, fp))
}

/// cargo's files for a unit (`pl`, under profile root `pr`), each as it is now: the
/// build script's directory (a build script's compile), the run's directory, the run's
/// and the unit's `.fingerprint` directories. Text is read; other files are not.
fn unit_files(
    root: &Path,
    pl: &crate::wrapper::UnitPlace,
    pr: &str,
    run_fp: Option<&str>,
    fp: &str,
) -> Result<Vec<PackFile>, Skip> {
    let mut files: Vec<PackFile> = Vec::new();
    if is_script_compile(pl) {
        // A build script: its directory holds the executable, cargo's hard link to it
        // and the dep-info; they travel in the pack.
        walk_into(root, &pl.out_dir, &mut files, |name, top| {
            top && name.ends_with(".d")
        })?;
    }
    if let Some(run) = &pl.run_dir {
        for (dir, names) in Layout::run_files(pr, run) {
            walk_into(root, &dir, &mut files, |name, top| {
                top && names.contains(&name)
            })?;
        }
    }
    if let Some(fp) = run_fp {
        fingerprint_into(root, fp, &mut files)?;
    }
    fingerprint_into(root, fp, &mut files)?;
    // A build script's real executable (behind the shim) goes last: planting links it
    // from its object and stops reading the pack before it.
    files.sort_by_key(is_real_executable);
    Ok(files)
}

/// Whether every event capturing `ev` needs is among `events`: the event of the
/// build-script run its compile read, if any. (A unit's own event comes once its entry is
/// stored: a unit whose run is still being stored is captured later.)
pub fn ready(ev: &UnitEvent, events: &[UnitEvent]) -> bool {
    match &ev.place {
        Some(pl) => pl
            .run_dir
            .as_ref()
            .is_none_or(|run| run_event(events, run, &pl.target_root).is_some()),
        None => true,
    }
}

/// The event of the build-script run `run` under target root `root`.
fn run_event<'e>(events: &'e [UnitEvent], run: &str, root: &Path) -> Option<&'e UnitEvent> {
    events.iter().find(|e| {
        e.unit.kind == "build-script-run"
            && e.place
                .as_ref()
                .is_some_and(|p| p.unit_dir == run && p.target_root == root)
    })
}

/// The profile directory (`debug`, `<triple>/release`) of an out-dir relative to the
/// target root, in either of cargo's layouts (`key::Place`).
pub(super) fn profile_root(out_dir: &str) -> Option<&str> {
    Place::of_out_dir(out_dir).map(|p| p.profile)
}

/// Whether the unit at `pl` is a build script's compile: its directory is its own and
/// travels whole in the pack (legacy `build/<pkg>-<hash>`, new `build/<pkg>/<hash>/out`
/// with the script's executable in it).
fn is_script_compile(pl: &crate::wrapper::UnitPlace) -> bool {
    match Place::of_out_dir(&pl.out_dir) {
        Some(Place {
            layout: Layout::Legacy,
            unit,
            ..
        }) => unit.is_some(),
        Some(Place {
            layout: Layout::New,
            ..
        }) => pl.script_compile,
        None => false,
    }
}

/// Where a pack file's bytes come from.
enum Src {
    /// Text with machine paths replaced by tokens.
    Text(String),
    File(PathBuf),
}

struct PackFile {
    /// Relative to the target root.
    rel: String,
    src: Src,
    exec: bool,
    /// The file as it was before it was read.
    stamp: ReadAs,
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

fn capture_unit(
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
    // are planted (`super::fingerprint`), and a package in CARGO_HOME is not bound to
    // it. Otherwise the variant holds only where that path is the same.
    let outside = !pl.cwd.starts_with(workspace_root);
    let home = unit_pm.real_of(RootKind::CargoHome);
    let in_home = outside && home.is_some_and(|h| pl.cwd.starts_with(h));
    let source = pl.source.as_deref().map(Path::new);
    let fp_dirs: Vec<&str> = std::iter::once(fp.as_str())
        .chain(run_fp.as_deref())
        .collect();
    let rehash = super::fingerprint::rehashable(root, &fp_dirs, source).then(|| Rehash {
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

/// The `.rlib` of a library unit, when planting may hard-link it from a loose object
/// (`store::objects`): its `.rmeta` is beside it (planted with the plant's time, it is
/// the unit's newest output for cargo) and the wrapper recorded the content digests of
/// both in sidecars that still match them (the `.rmeta`'s is what the link must be
/// restored beside). The file becomes the object of its digest here.
fn linkable_rlib(
    store: &LocalStore,
    root: &Path,
    out_dir: &str,
    crate_name: &str,
    unit_dir: &str,
) -> Vec<LinkableFile> {
    let hash = Layout::hash_of_unit(unit_dir);
    if hash.is_empty() {
        return Vec::new();
    }
    let dir = root.join(out_dir);
    let name = format!("lib{crate_name}-{hash}.rlib");
    let rlib = dir.join(&name);
    let rmeta = dir.join(format!("lib{crate_name}-{hash}.rmeta"));
    let digest_of = |p: &Path| recorded_identity(p).and_then(|id| identity_digest(&id));
    let (Some(digest), Some(beside), Ok(meta)) = (
        digest_of(&rlib),
        digest_of(&rmeta),
        fs::symlink_metadata(&rlib),
    ) else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    crate::store::objects::adopt(store, &rlib, &digest);
    vec![LinkableFile {
        name,
        digest,
        len: meta.len(),
        beside: Some(beside),
    }]
}

/// Whether a pack file is a build script's real executable (`*.xcache-real`, behind
/// the shim cargo runs).
fn is_real_executable(f: &PackFile) -> bool {
    f.exec && matches!(f.src, Src::File(_)) && f.rel.ends_with(crate::wrapper::REAL_SUFFIX)
}

/// A build script's real executable in its pack, when planting may hard-link it from a
/// loose object: cargo never reads its time (its outputs are the shim and the hard link
/// to it, planted with the plant's time), and nothing rewrites it in place (a new
/// script is renamed over it). The file becomes the object of its digest here.
fn linkable_executables(
    store: &LocalStore,
    files: &[PackFile],
    listed: &[(String, Key, bool)],
) -> Vec<LinkableFile> {
    files
        .iter()
        .zip(listed)
        .filter(|(f, _)| is_real_executable(f))
        .filter_map(|(f, (name, digest, _))| {
            let Src::File(path) = &f.src else {
                return None;
            };
            let meta = fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
            crate::store::objects::adopt(store, path, digest);
            Some(LinkableFile {
                name: name.clone(),
                digest: *digest,
                len: meta.len(),
                beside: None,
            })
        })
        .collect()
}

/// The executable of the build script whose run is `run`: the `.fingerprint` directory
/// of the same package whose hash file holds the hash the run's fingerprint names as its
/// dependency. The real executable when a shim stands in front of it. Build scripts are
/// host units: with `--target` the run is under `<triple>/<profile>` and the script under
/// `<profile>`.
fn build_script_of(root: &Path, pr: &str, run: &str, run_fp: &str) -> Option<PathBuf> {
    let pr = pr.rsplit('/').next().unwrap_or(pr);
    let json = fs::read_to_string(
        root.join(run_fp)
            .join("run-build-script-build-script-build.json"),
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&json).ok()?;
    let dep_hash = v["deps"]
        .as_array()?
        .first()?
        .as_array()?
        .get(3)?
        .as_u64()?;
    let le: String = dep_hash
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let be = format!("{dep_hash:016x}");
    // The script's compile units of the run's package, each with its fingerprint
    // directory and the directory holding its executable.
    let candidates: Vec<(PathBuf, PathBuf)> = match Layout::of_unit(run) {
        Layout::Legacy => {
            let pkg = run.rsplit_once('-')?.0;
            let fp_root = root.join(pr).join(".fingerprint");
            fs::read_dir(&fp_root)
                .ok()?
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| name.rsplit_once('-').map(|(p, _)| p) == Some(pkg))
                .map(|name| (fp_root.join(&name), root.join(pr).join("build").join(&name)))
                .collect()
        }
        Layout::New => {
            let pkg = run.rsplit_once('/')?.0;
            let pkg_dir = root.join(pr).join("build").join(pkg);
            fs::read_dir(&pkg_dir)
                .ok()?
                .flatten()
                .map(|e| (e.path().join("fingerprint"), e.path().join("out")))
                .collect()
        }
    };
    for (fp, dir) in candidates {
        let Ok(h) = fs::read_to_string(fp.join("build-script-build-script-build")) else {
            continue;
        };
        if h.trim() == le || h.trim() == be {
            let real = fs::read_dir(&dir).ok()?.find_map(|e| {
                let p = e.ok()?.path();
                p.to_str()?.ends_with(".xcache-real").then_some(p)
            });
            let ran = match Layout::of_unit(run) {
                Layout::Legacy => "build-script-build",
                Layout::New => "build_script_build",
            };
            return Some(real.unwrap_or_else(|| dir.join(ran)));
        }
    }
    None
}

/// Writes the pack of `files`, whose digests and states when hashed are `listed` and
/// `read_as` (in the same order).
fn write_pack(
    store: &LocalStore,
    pack: &Key,
    files: &[PackFile],
    listed: &[(String, Key, bool)],
    read_as: &[Option<ReadAs>],
) -> Result<(), Skip> {
    let meta = EntryMeta::with_files(
        pack,
        files
            .iter()
            .map(|f| EntryFile {
                role: if f.exec { "exec" } else { "file" }.to_string(),
                name: f.rel.clone(),
                template: matches!(&f.src, Src::Text(t) if PathMap::has_token(t)),
                executable: f.exec,
                object: None,
            })
            .collect(),
    );
    // A large file a run wrote (a C library under `OUT_DIR`) is held by reference: the
    // store keeps a copy of it as an object (`store::objects`), and planting copies it
    // out with `copy_file_range` instead of decompressing it. So is a build script's
    // real executable, whose object is made already (when it was compiled, and
    // `linkable_executables`): planting links it. Other executables (cargo's hard link
    // to the shim, the shim) stay in the stream.
    // Held by reference: the digest taken when the file was searched, if it is still
    // as it was then (the store checks), so it is not read a second time.
    let by_reference = |i: usize, p| match read_as[i] {
        Some(read) => EntrySource::Known(p, listed[i].1, read),
        None => EntrySource::Object(p),
    };
    let sources: Vec<(EntrySource<'_>, bool)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.src {
            Src::Text(t) => (EntrySource::Bytes(t.as_bytes()), false),
            Src::File(p) if is_real_executable(f) => (by_reference(i, p), false),
            // (Its length as it was searched: the store checks it still is.)
            Src::File(p)
                if !f.exec
                    && read_as[i]
                        .is_some_and(|r| r.len >= crate::store::objects::OBJECT_MIN_LEN) =>
            {
                (by_reference(i, p), false)
            }
            Src::File(p) => (EntrySource::Path(p), false),
        })
        .collect();
    store
        .put_entry(pack, &meta, &sources, &[])
        .map(|_| ())
        .map_err(|_| Skip::Io)
}

/// Adds every file under `root/rel` (recursively). `is_text(name, top_level)` picks the
/// files stored as tokenized text.
fn walk_into(
    root: &Path,
    rel: &str,
    out: &mut Vec<PackFile>,
    is_text: impl Fn(&str, bool) -> bool + Copy,
) -> Result<(), Skip> {
    fn go(
        root: &Path,
        rel: &str,
        top: bool,
        out: &mut Vec<PackFile>,
        is_text: impl Fn(&str, bool) -> bool + Copy,
    ) -> Result<(), Skip> {
        let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().map_err(|_| Skip::Unseedable)?;
            let child = format!("{rel}/{name}");
            // The wrapper's recipe of a script's compile never travels (it names what a
            // compiler runs with: `wrapper::RECIPE_SUFFIX`).
            if name.ends_with(crate::wrapper::RECIPE_SUFFIX) {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                go(root, &child, false, out, is_text)?;
            } else if ft.is_file() {
                out.push(pack_file(root, child, is_text(&name, top))?);
            } else {
                // Symlinks and special files: not represented.
                return Err(Skip::Unseedable);
            }
        }
        Ok(())
    }
    go(root, rel, true, out, is_text)
}

/// Adds a `.fingerprint` directory, the hash files last: cargo trusts a unit only once
/// its hash file is there, so a plant cut short leaves a unit cargo rebuilds.
fn fingerprint_into(root: &Path, rel: &str, out: &mut Vec<PackFile>) -> Result<(), Skip> {
    let mut names: Vec<String> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let is_hash = |n: &String| names.contains(&format!("{n}.json"));
    let (hashes, rest): (Vec<&String>, Vec<&String>) = names.iter().partition(|n| is_hash(n));
    for name in rest.into_iter().chain(hashes) {
        let rel = format!("{rel}/{name}");
        // cargo's encoded dep-info may name absolute paths: it travels in its text
        // form, tokenized, and is encoded again when planted.
        if super::dep_info::is_dep_info_name(name) {
            let path = root.join(&rel);
            let stamp = ReadAs::of(&fs::metadata(&path)?);
            if let Some(text) = super::dep_info::to_text(&fs::read(&path)?) {
                out.push(PackFile {
                    rel,
                    src: Src::Text(text),
                    exec: false,
                    stamp,
                });
                continue;
            }
        }
        let text = name.ends_with(".json") || name.starts_with("output-");
        out.push(pack_file(root, rel, text)?);
    }
    Ok(())
}

fn pack_file(root: &Path, rel: String, text: bool) -> Result<PackFile, Skip> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join(&rel);
    let meta = fs::metadata(&path)?;
    let exec = meta.permissions().mode() & 0o111 != 0;
    // Small scripts (a build script's shim names the cargo-xcache executable) are text.
    let text = text || (meta.len() < 16 * 1024 && starts_with_shebang(&path));
    let src = match text.then(|| fs::read_to_string(&path)).transpose() {
        Ok(Some(t)) => Src::Text(t),
        // Not UTF-8 after all: stored as bytes, and scanned like any binary file.
        Ok(None) | Err(_) => Src::File(path),
    };
    Ok(PackFile {
        rel,
        src,
        exec,
        stamp: ReadAs::of(&meta),
    })
}

fn starts_with_shebang(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library unit's event whose place is `root`'s `debug/deps`, started at
    /// `start_ms`.
    fn lib_event(root: &Path, start_ms: u64) -> UnitEvent {
        serde_json::from_value(serde_json::json!({
            "format_version": 1,
            "unit": {
                "package": "foo", "version": "0.1.0", "crate_name": "foo", "kind": "lib",
                "target": null, "outcome": "miss", "reason": null, "compile_ms": 5,
                "restore_ms": null, "key": "11".repeat(32),
            },
            "overhead_ms": 0, "bytes": 0, "spk": "22".repeat(32), "warnings": [],
            "start_ms": start_ms,
            "place": {
                "target_root": root, "out_dir": "debug/deps", "unit_dir": "foo-0123",
                "run_dir": null, "cwd": root, "manifest_dir": root, "deps": [],
                "linker": null, "incremental": false,
            },
        }))
        .unwrap()
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// A unit is settled once its fingerprint (hash file and `.json`) was written after
    /// its wrapper started; a capture made then stands while nothing it read moved, and
    /// not once cargo wrote a file again (same length) or added one.
    #[test]
    fn a_capture_while_cargo_runs_stands_only_while_what_it_read_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let fp = root.join("debug/.fingerprint/foo-0123");
        fs::create_dir_all(&fp).unwrap();
        // A second early: file times come from the kernel's coarse clock, which lags
        // the precise one by a tick (the test failed about once in five).
        let started = now_ms() - 1_000;
        let ev = lib_event(root, started);
        let events = vec![ev.clone()];
        // No fingerprint yet: cargo is not done with the unit.
        assert!(!settled(&ev, &events));
        fs::write(fp.join("lib-foo.json"), "{}").unwrap();
        assert!(!settled(&ev, &events), "a .json without its hash file");
        fs::write(fp.join("lib-foo"), "0123456789abcdef").unwrap();
        assert!(settled(&ev, &events));
        // The last build's fingerprint (written before the wrapper started) is not this
        // one's.
        assert!(!settled(&lib_event(root, started + 60_000), &events));

        let read = |root: &Path| {
            let files = unit_files(
                root,
                ev.place.as_ref().unwrap(),
                "debug",
                None,
                "debug/.fingerprint/foo-0123",
            )
            .unwrap();
            Attempt {
                result: Ok(None),
                stamps: Stamps(Some(
                    files.iter().map(|f| (f.rel.clone(), f.stamp)).collect(),
                )),
            }
        };
        let attempt = read(root);
        assert_eq!(attempt.stamps.0.as_ref().unwrap().len(), 2);
        assert!(still_as_read(&ev, &events, &attempt));
        // Written again, the same length.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(fp.join("lib-foo"), "fedcba9876543210").unwrap();
        assert!(!still_as_read(&ev, &events, &attempt));
        let attempt = read(root);
        assert!(still_as_read(&ev, &events, &attempt));
        // A file added beside them.
        fs::write(fp.join("dep-lib-foo"), b"").unwrap();
        assert!(!still_as_read(&ev, &events, &attempt));
        // A capture that read nothing of the target dir stands.
        let nothing = Attempt {
            result: Err(Skip::NotCached),
            stamps: Stamps(None),
        };
        assert!(still_as_read(&ev, &events, &nothing));
        assert!(nothing.is_final());
        let io = Attempt {
            result: Err(Skip::Io),
            stamps: Stamps(None),
        };
        assert!(!io.is_final());
    }

    #[test]
    fn profile_roots() {
        assert_eq!(profile_root("debug/deps"), Some("debug"));
        assert_eq!(
            profile_root("x86_64-unknown-linux-gnu/release/deps"),
            Some("x86_64-unknown-linux-gnu/release")
        );
        assert_eq!(profile_root("debug/build/foo-0123"), Some("debug"));
        assert_eq!(profile_root("debug/examples"), Some("debug"));
        assert_eq!(profile_root("debug/examples/x"), None);
    }
}
