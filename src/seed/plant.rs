//! Planting: before cargo starts, put the recorded state of each predicted unit in the
//! target dir, when everything it read still holds. Whether it holds is the judge's
//! question (`crate::judge`), asked exactly as the wrapper asks it: first for what can be
//! observed before planting, then — after everything is in place — for what lives in
//! the target dir (the `OUT_DIR` files a run left, the dependencies' artifacts).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

use super::Arrivals;
use super::record::{LinkableFile, SeedVariant, pack_key, read_record};
use crate::config::Env;
use crate::errors::CacheError;
use crate::judge::{Here, Judge, Mode, env_before_cargo};
use crate::key::PredictedUnit;
use crate::key::{
    CompilerId, Input, Key, LinkerRequest, PathMap, RootKind, content_identity, host_cpu,
    key_identity, linker_id, rooted_key, sidecar_content, sidecar_identity, sidecar_path,
    write_artifact_identity, write_rooted_identity,
};
use crate::store::objects::Link;
use crate::store::{EntryFile, EntryMeta, LocalStore};
use crate::wrapper::PLANTED_MARKER;
use crate::wrapper::{
    REAL_SUFFIX, RestoreFilter, Warning, is_shim_text, restore_entry, write_shim,
};

/// What planting needs.
pub struct PlantInput<'a> {
    pub store: &'a LocalStore,
    pub units: &'a [PredictedUnit],
    /// The target (build) directory.
    pub target_root: &'a Path,
    pub workspace_root: &'a Path,
    pub cargo_home: Option<&'a Path>,
    pub env: &'a Env,
    /// The compiler cargo will run, and its identity (host triple, `native`).
    pub compiler: &'a (PathBuf, CompilerId),
    /// Entries a prefetch is still downloading: a unit waits for its own.
    pub arrivals: Option<&'a Arrivals>,
    /// The layout cargo will keep the units in (`plan::expected_layout`): a variant
    /// captured in the other is never planted, where cargo would not look.
    pub layout: crate::key::Layout,
}

/// One unit put in place.
#[derive(Clone, Debug)]
pub struct Planted {
    pub unit: PredictedUnit,
    /// The unit's name in its layout (`<package>-<hash>`, `<package>/<hash>`).
    pub unit_dir: String,
    /// The unit's rustc entry, if it has one.
    pub entry: Option<String>,
    /// The pack holding cargo's files for it.
    pub pack: String,
    /// The record key the variant was read under, and the variant: a build that used it
    /// gives it to its remote when the remote is not known to hold it (a build killed
    /// before its uploads recorded it here only).
    pub record: Key,
    pub variant: SeedVariant,
    /// Bytes written (uncompressed).
    pub bytes: u64,
    /// Bytes put in place by hard link from the store's loose objects.
    pub linked_bytes: u64,
    pub fingerprint_dir: String,
    pub run_fingerprint_dir: Option<String>,
    /// What compiling it took when it was captured.
    pub compile_ms: u64,
    /// Restored into an incremental build without incremental state.
    pub incremental: bool,
    /// What the judge put aside until everything was planted (target-dir inputs).
    deferred: Vec<Input>,
    /// The [`PLANTED_MARKER`] beside the build-script run's directory this variant put
    /// in place, if it did.
    pub marker: Option<PathBuf>,
    cwd: PathBuf,
    /// The files this plant wrote: taken out again if the unit does not hold.
    written: Vec<PathBuf>,
}

/// A linker identity now, for a request recorded as JSON by capture.
pub(crate) fn linker_now(
    store: &LocalStore,
    env: &Env,
    compiler: &CompilerId,
    cwd: &Path,
    request: &str,
) -> Option<String> {
    let (program, fuse_ld, target, sysroot): (String, Vec<String>, String, PathBuf) =
        serde_json::from_str(request).ok()?;
    let host = compiler.host()?;
    let id = linker_id(
        &LinkerRequest {
            program: &program,
            cwd,
            sysroot: &sysroot,
            host,
            target: &target,
            fuse_ld: &fuse_ld,
            path_var: env.path_var().map(|p| p.as_os_str()),
            vars: env.all(),
        },
        store.linkers_dir().as_deref(),
    )
    .ok()?;
    Some(id.key.to_hex())
}

/// Plants every unit that has a recorded variant whose inputs hold, and whose
/// `.fingerprint` directory is not in the target dir already (cargo's own state wins).
/// Corrupt entries met are deleted and returned as warnings (their units are compiled).
pub fn plant(input: &PlantInput<'_>) -> (Vec<Planted>, Vec<Warning>) {
    // Taken before any input is checked, less a margin: a file edited after its check
    // must look newer than every planted file, so cargo rebuilds what read it. File
    // times come from the kernel's coarse clock, which lags the precise one by up to a
    // tick (4-10 ms); 50 ms covers it. An edit made before the check is caught by the
    // judge; a file written in the margin only makes cargo rebuild its unit.
    let stamp = SystemTime::now() - std::time::Duration::from_millis(50);
    // One plant per seed key.
    let mut todo: Vec<&PredictedUnit> = input.units.iter().collect();
    todo.sort_by_key(|u| u.record);
    todo.dedup_by_key(|u| u.record);
    let mut kept: Vec<Planted> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    // Variants put in place that did not hold once everything was, for a reason of
    // their own: not tried again.
    let mut refused: HashSet<(Key, String)> = HashSet::new();
    // The files (relative to the target root) of the variants the last round took out.
    let mut taken: HashSet<String> = HashSet::new();
    // Variants of one unit share its place, so only one is there at a time; what it was
    // built against (its dependencies' artifacts) is known only once they are in place.
    // A unit whose variant did not hold then gets its next one, in another round, until
    // none is left. A variant that did not hold beside a dependency's variant that did
    // not hold either may hold beside the dependency's next one: it is not refused, but
    // put in place again in the next round (records need not agree on which variants
    // are newest: a dependent's newest may be the one that holds here while its
    // dependency's newest is not). Each round refuses at least one variant (one whose
    // dependencies all held, as a unit's dependencies hold before it), or planting
    // stops there: the rounds are as many as the variants at most.
    while !todo.is_empty() {
        let results: Vec<Result<Vec<Planted>, Warning>> = todo
            .par_iter()
            .map(|u| plant_unit(input, u, stamp, &refused))
            .collect();
        let mut judged: Vec<Planted> = Vec::new();
        for r in results {
            match r {
                Ok(p) => judged.extend(p),
                Err(w) => {
                    if !warnings.iter().any(|x| x.code == w.code) {
                        warnings.push(w);
                    }
                }
            }
        }
        // Everything of this round is in place: what lives in the target dir must hold
        // too, for these and for the units kept before that were judged against a
        // variant taken out since (a dependency planted from another variant, or left
        // to cargo, takes the unit out again, and it gets its next variant).
        let (again_judged, still): (Vec<Planted>, Vec<Planted>) = std::mem::take(&mut kept)
            .into_iter()
            .partition(|p| names_any(p, &taken));
        kept = still;
        judged.extend(again_judged);
        let holds = holding(input, &judged);
        let mut failed: Vec<Planted> = Vec::new();
        for (p, ok) in judged.into_iter().zip(holds) {
            if ok {
                kept.push(p);
            } else {
                failed.push(p);
            }
        }
        let failed_files: Vec<HashSet<String>> =
            failed.iter().map(|p| written_in_target(input, p)).collect();
        let mut again: Vec<&PredictedUnit> = Vec::new();
        let mut progress = false;
        for (i, p) in failed.iter().enumerate() {
            let beside_failed = failed_files
                .iter()
                .enumerate()
                .any(|(j, files)| j != i && names_any(p, files));
            if !beside_failed {
                progress |= refused.insert((p.unit.record, p.pack.clone()));
            }
            if let Some(u) = input.units.iter().find(|u| u.record == p.unit.record) {
                again.push(u);
            }
            take_out(input, p);
        }
        taken = failed_files.into_iter().flatten().collect();
        again.sort_by_key(|u| u.record);
        again.dedup_by_key(|u| u.record);
        todo = if progress { again } else { Vec::new() };
    }
    // What the last round took out may be what a unit kept was judged against.
    while !taken.is_empty() {
        let (judged, still): (Vec<Planted>, Vec<Planted>) = std::mem::take(&mut kept)
            .into_iter()
            .partition(|p| names_any(p, &taken));
        kept = still;
        let holds = holding(input, &judged);
        taken = HashSet::new();
        for (p, ok) in judged.into_iter().zip(holds) {
            if ok {
                kept.push(p);
            } else {
                taken.extend(written_in_target(input, &p));
                take_out(input, &p);
            }
        }
    }
    rehash(input, &kept);
    (kept, warnings)
}

/// Makes the planted units' fingerprints what cargo computes here (the source's path
/// in this `CARGO_HOME`, the dependencies' hashes as they became), for the variants
/// whose fingerprints hashed as cargo's when captured (`super::fingerprint`).
fn rehash(input: &PlantInput<'_>, kept: &[Planted]) {
    let units: Vec<super::fingerprint::ToRehash> = kept
        .iter()
        .filter_map(|p| {
            let r = p.variant.rehash.as_ref()?;
            let source = match &r.source {
                Some(s) => {
                    let pm = PathMap::new(&p.cwd, Some(input.target_root), input.cargo_home);
                    let path = pm.expand_path(s);
                    if PathMap::has_token(&path.to_string_lossy()) {
                        return None;
                    }
                    Some(path)
                }
                None => None,
            };
            let dirs = std::iter::once(&p.fingerprint_dir)
                .chain(&p.run_fingerprint_dir)
                .filter_map(|d| crate::fsx::confined(input.target_root, d).ok())
                .collect();
            Some(super::fingerprint::ToRehash { dirs, source })
        })
        .collect();
    super::fingerprint::rehash_planted(&units);
}

/// The files a planted variant wrote and the directories that hold them, relative to
/// the target root.
fn written_in_target(input: &PlantInput<'_>, p: &Planted) -> HashSet<String> {
    let mut paths = HashSet::new();
    for f in &p.written {
        let Ok(rel) = f.strip_prefix(input.target_root) else {
            continue;
        };
        for a in rel.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            if !paths.insert(a.to_string_lossy().into_owned()) {
                break;
            }
        }
    }
    paths
}

/// Whether what a planted variant put aside (inputs in the target dir) names one of
/// `paths` (relative to the target root, as [`written_in_target`] gives them).
fn names_any(p: &Planted, paths: &HashSet<String>) -> bool {
    !paths.is_empty()
        && p.deferred.iter().any(|i| {
            i.name
                .strip_prefix(RootKind::Target.token())
                .is_some_and(|rel| paths.contains(rel.trim_start_matches('/')))
        })
}

/// For each planted variant, whether what it put aside until everything was planted
/// (what lives in the target dir) holds now.
fn holding(input: &PlantInput<'_>, planted: &[Planted]) -> Vec<bool> {
    planted
        .par_iter()
        .map(|p| {
            let judge = judge_for(input, &p.cwd, Mode::Exact);
            let deferred: Vec<&Input> = p.deferred.iter().collect();
            judge.check_now(&deferred).is_ok()
        })
        .collect()
}

/// Takes a planted variant out again: nothing of it may stay, and cargo runs or
/// compiles it as if it never was here (a build script's output left in `OUT_DIR`
/// would be an earlier run's).
fn take_out(input: &PlantInput<'_>, p: &Planted) {
    for fp in std::iter::once(&p.fingerprint_dir).chain(&p.run_fingerprint_dir) {
        if let Ok(dir) = crate::fsx::confined(input.target_root, fp) {
            let _ = fs::remove_dir_all(dir);
        }
    }
    for f in &p.written {
        let _ = fs::remove_file(f);
    }
}

/// The judge for a unit whose rustc ran in `cwd`.
fn judge_for<'a>(input: &'a PlantInput<'a>, cwd: &Path, mode: Mode) -> Judge<'a> {
    let cwd_owned = cwd.to_path_buf();
    Judge::new(Here {
        pm: PathMap::new(cwd, Some(input.target_root), input.cargo_home),
        env: Box::new(move |name: &str| env_before_cargo(input.env, name)),
        env_names: Box::new(move || Some(input.env.all().keys().cloned().collect())),
        host_cpu: Box::new(move || {
            let (rustc, id) = input.compiler;
            host_cpu(rustc, &id.key, input.store.compilers_dir().as_deref())
        }),
        linker: Box::new(move |req: &str| {
            linker_now(input.store, input.env, &input.compiler.1, &cwd_owned, req)
        }),
        mode,
    })
}

/// How many variants of one seed key may be planted: the plan does not know a unit's
/// features for sure, so the newest variants with different fingerprints go in and cargo
/// uses the one whose fingerprint matches.
const VARIANTS_PLANTED: usize = 2;

fn plant_unit(
    input: &PlantInput<'_>,
    unit: &PredictedUnit,
    stamp: SystemTime,
    refused: &HashSet<(Key, String)>,
) -> Result<Vec<Planted>, Warning> {
    let record = read_record(input.store, &unit.record);
    let mut planted = Vec::new();
    if record.variants.is_empty() {
        return Ok(planted);
    }
    let ws_pm = PathMap::new(
        input.workspace_root,
        Some(input.target_root),
        input.cargo_home,
    );
    for v in &record.variants {
        if planted.len() == VARIANTS_PLANTED {
            break;
        }
        if crate::key::Layout::of_fingerprint_dir(&v.fingerprint_dir) != Some(input.layout)
            || refused.contains(&(unit.record, v.pack.clone()))
        {
            continue;
        }
        // The record comes from the store: the directories it names must lie inside
        // the target dir (they are removed when planting fails).
        let Ok(fp_dir) = crate::fsx::confined(input.target_root, &v.fingerprint_dir) else {
            continue;
        };
        if v.run_fingerprint_dir
            .as_ref()
            .is_some_and(|r| crate::fsx::confined(input.target_root, r).is_err())
        {
            continue;
        }
        // Cargo's own state wins; a variant already planted here is not planted twice.
        if fp_dir.exists() {
            continue;
        }
        let cwd = ws_pm.expand_path(&v.cwd);
        if PathMap::has_token(&cwd.to_string_lossy()) {
            continue;
        }
        let judge = judge_for(input, &cwd, Mode::Plant);
        let deferred = match judge.check(&v.inputs) {
            Ok(d) => d,
            Err(_) => continue,
        };
        let deferred: Vec<Input> = deferred.into_iter().cloned().collect();
        match put_in_place(input, unit, v, &cwd, stamp) {
            Ok((bytes, linked_bytes, written, marker)) => planted.push(Planted {
                unit: unit.clone(),
                unit_dir: crate::key::Layout::unit_of_fingerprint_dir(&v.fingerprint_dir)
                    .unwrap_or_default()
                    .to_string(),
                entry: v.entry.clone(),
                pack: v.pack.clone(),
                record: unit.record,
                variant: v.clone(),
                bytes,
                linked_bytes,
                fingerprint_dir: v.fingerprint_dir.clone(),
                run_fingerprint_dir: v.run_fingerprint_dir.clone(),
                compile_ms: v.compile_ms,
                incremental: v.incremental,
                deferred,
                cwd,
                written,
                marker,
            }),
            Err(e) => {
                // Without its fingerprint cargo rebuilds the unit: nothing half-planted
                // is ever trusted.
                let _ = fs::remove_dir_all(&fp_dir);
                if let PlantError::Cache(e) = e {
                    return Err(Warning::from(&e));
                }
            }
        }
    }
    Ok(planted)
}

/// Why a variant could not be put in place: a store problem worth a warning (a corrupt
/// entry, deleted), or anything else (a missing entry, a full disk, a pack that is not
/// the variant's), after which the unit is simply compiled.
enum PlantError {
    Cache(CacheError),
    Io,
}

impl From<io::Error> for PlantError {
    fn from(_: io::Error) -> PlantError {
        PlantError::Io
    }
}

/// Writes the variant's files; returns the bytes written, the bytes linked, the files put
/// in place and the marker of a build-script run it put in place.
fn put_in_place(
    input: &PlantInput<'_>,
    unit: &PredictedUnit,
    v: &SeedVariant,
    cwd: &Path,
    stamp: SystemTime,
) -> Result<(u64, u64, Vec<PathBuf>, Option<PathBuf>), PlantError> {
    if let Some(a) = input.arrivals {
        for k in std::iter::once(&v.pack).chain(&v.entry) {
            if let Some(k) = Key::from_hex(k) {
                a.wait(&k);
            }
        }
    }
    let root = input.target_root;
    let pm = PathMap::new(cwd, Some(root), input.cargo_home);
    let mut written: Vec<PathBuf> = Vec::new();
    // Identity sidecars: a proc-macro's `.so` is known by the entry key that built it,
    // a library by its content digest (checked while restoring), so neither dependents
    // nor the check after planting need to hash it.
    let mut identities: Vec<(PathBuf, String)> = Vec::new();
    let mut bytes = 0u64;
    let mut linked_bytes = 0u64;
    // Files hard-linked from objects (their time is the object's, never set), and
    // linkable files written from the entry (they become objects once timed).
    let mut untimed: Vec<PathBuf> = Vec::new();
    let mut adopt: Vec<(PathBuf, Key)> = Vec::new();
    if let Some(e) = v.separate_entry() {
        let key = Key::from_hex(e).ok_or(PlantError::Io)?;
        let out = crate::fsx::confined(root, &v.out_dir).map_err(|_| PlantError::Io)?;
        fs::create_dir_all(&out)?;
        // The `.rlib` may come from a loose object (`store::objects`) when the entry
        // plants its `.rmeta` beside it: then the `.rmeta`, with the plant's time, is
        // the unit's newest output, and the linked file's time is never set.
        let linkable = |m: &EntryMeta, f: &EntryFile| -> Option<Link> {
            if !crate::store::objects::served_by_object(m, f) {
                return None;
            }
            v.linkable
                .iter()
                .find(|l| l.name == f.name && l.beside.is_some())
                .map(LinkableFile::link)
        };
        let filter = RestoreFilter {
            file: &|_| true,
            meta: &|_| true,
            link: &linkable,
        };
        let restored = restore_entry(input.store, &key, &out, &pm, &filter)
            .map_err(PlantError::Cache)?
            .ok_or(PlantError::Io)?;
        bytes += restored.bytes;
        linked_bytes += restored.linked_bytes;
        untimed.extend(restored.linked);
        for (p, digest) in restored.files {
            match p.extension().and_then(|x| x.to_str()) {
                Some("so") => identities.push((p.clone(), key_identity(&key))),
                Some("rlib" | "rmeta") => identities.push((p.clone(), content_identity(&digest))),
                _ => {}
            }
            if !untimed.contains(&p)
                && v.linkable
                    .iter()
                    .any(|l| l.digest == digest && p.ends_with(&l.name))
            {
                adopt.push((p.clone(), digest));
            }
            written.push(p);
        }
    }
    // A run another unit already put in place (or cargo kept) stays as it is.
    let run_dirs = v.run_fingerprint_dir.as_ref().and_then(|fp| {
        let dir = crate::fsx::confined(root, fp).ok()?;
        let build = crate::key::Layout::run_dir_of_fingerprint(fp)?;
        dir.exists()
            .then(|| (format!("{fp}/"), format!("{build}/")))
    });
    let pack = Key::from_hex(&v.pack).ok_or(PlantError::Io)?;
    // A recipe is the wrapper's own (`wrapper::RECIPE_SUFFIX`): one in a pack is planted
    // nowhere.
    let keep = |f: &crate::store::EntryFile| {
        !f.name.ends_with(crate::wrapper::RECIPE_SUFFIX)
            && !run_dirs.as_ref().is_some_and(|(a, b)| {
                f.name.starts_with(a.as_str()) || f.name.starts_with(b.as_str())
            })
    };
    // A build script's real executable may come from a loose object: cargo never reads
    // its time (see `seed::capture`), and it is never set.
    // (The pack's key covers every digest it holds, the linked one's too.)
    let linkable_exe = |_: &EntryMeta, f: &EntryFile| -> Option<Link> {
        if !crate::wrapper::is_real_executable(f) {
            return None;
        }
        v.linkable
            .iter()
            .find(|l| l.name == f.name)
            .map(LinkableFile::link)
    };
    let filter = RestoreFilter {
        file: &keep,
        meta: &|_| true,
        link: &linkable_exe,
    };
    let restored = restore_entry(input.store, &pack, root, &pm, &filter)
        .map_err(PlantError::Cache)?
        .ok_or(PlantError::Io)?;
    // The pack must be the one captured with these inputs: its key covers both.
    let listed: Vec<(String, Key, bool)> = restored
        .meta
        .files
        .iter()
        .zip(&restored.digests)
        .map(|(f, d)| (f.name.clone(), *d, f.executable))
        .collect();
    if pack_key(&unit.record, v, &listed) != pack {
        for (p, _) in &restored.files {
            let _ = fs::remove_file(p);
        }
        return Err(PlantError::Io);
    }
    bytes += restored.bytes;
    linked_bytes += restored.linked_bytes;
    untimed.extend(restored.linked.iter().cloned());
    // A sidecar planted with the pack records the size and time its artifact had where
    // it was captured, which a planted file does not have (a build script's real
    // executable is linked from an object made by copy, or timed now): left so, the
    // check after planting and every later judge would hash the artifact again (4-5 MB
    // per build script, each warm build). One naming the content digest just planted
    // is written again for the file as it is here; any other is left to be checked.
    // A build script's executable that holds a root (`key::rooted_identity`) keeps its
    // identity where the sidecar names the digest just planted.
    let mut rooted: Vec<(PathBuf, Key, Key)> = Vec::new();
    for (dest, digest) in &restored.files {
        let side = sidecar_path(dest);
        if !restored.files.iter().any(|(p, _)| *p == side) {
            continue;
        }
        let id = content_identity(digest);
        match sidecar_identity(dest) {
            Some(named) if named == id => identities.push((dest.clone(), id)),
            Some(named) if sidecar_content(dest) == Some(*digest) => {
                if let Some(key) = rooted_key(&named) {
                    rooted.push((dest.clone(), key, *digest));
                }
            }
            _ => {}
        }
    }
    let exe = std::env::current_exe()?;
    for (dest, digest) in &restored.files {
        if !untimed.contains(dest)
            && dest.to_str().is_some_and(|d| d.ends_with(REAL_SUFFIX))
            && v.linkable
                .iter()
                .any(|l| l.digest == *digest && dest.ends_with(&l.name))
        {
            adopt.push((dest.clone(), *digest));
        }
        // A build script's shim names the program that captured it: it is written
        // again for this one (which may live elsewhere now).
        let small = fs::metadata(dest).is_ok_and(|m| m.len() < 4096);
        if small && fs::read_to_string(dest).is_ok_and(|t| is_shim_text(&t)) {
            write_shim(dest, &exe)?;
        }
        // cargo's dep-info travels in a text form, its paths expanded for this place.
        if super::dep_info::is_fingerprint_dep_info(dest)
            && let Some(bytes) = super::dep_info::from_text(&fs::read(dest)?)
        {
            fs::write(dest, bytes)?;
        }
        written.push(dest.clone());
    }
    for p in written.iter().filter(|p| !untimed.contains(p)) {
        File::open(p)?.set_modified(stamp)?;
    }
    // With its time set for good, a linkable file becomes the object of its digest.
    for (p, digest) in &adopt {
        crate::store::objects::adopt(input.store, p, digest);
    }
    // After the stamp: a sidecar names the artifact's size and modification time.
    for (p, id) in &identities {
        write_artifact_identity(p, id)?;
    }
    for (p, key, digest) in &rooted {
        write_rooted_identity(p, key, digest)?;
    }
    // The run's directory, when this variant put it in place.
    let marker = match (&v.run_fingerprint_dir, &run_dirs) {
        (Some(fp), None) => {
            let build = crate::key::Layout::run_dir_of_fingerprint(fp).ok_or(PlantError::Io)?;
            let dir = crate::fsx::confined(root, &build).map_err(|_| PlantError::Io)?;
            let marker = dir.join(PLANTED_MARKER);
            dir.is_dir()
                .then(|| fs::write(&marker, b"").map(|()| marker))
                .transpose()?
        }
        _ => None,
    };
    Ok((bytes, linked_bytes, written, marker))
}
