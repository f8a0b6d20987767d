//! Planting: before cargo starts, put the recorded state of each predicted unit in the
//! target dir, when its inputs are what they were at capture.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rayon::prelude::*;

use super::record::{SeedVariant, read_record};
use crate::config::Env;
use crate::errors::CacheError;
use crate::key::{
    Key, LinkerRequest, PathMap, RootKind, content_identity, hash_file, key_identity,
    link_input_identity, linker_id, write_artifact_identity,
};
use crate::prefetch::{Arrivals, PredictedUnit};
use crate::store::{LocalStore, ReadError, restore_temp_path};
use crate::wrapper::{Warning, is_shim_text, restore_entry, write_shim};

/// What planting needs.
pub struct PlantInput<'a> {
    pub store: &'a LocalStore,
    pub units: &'a [PredictedUnit],
    /// The target (build) directory.
    pub target_root: &'a Path,
    pub workspace_root: &'a Path,
    pub cargo_home: Option<&'a Path>,
    pub env: &'a Env,
    /// The compiler's host triple (for linker identities).
    pub host: Option<&'a str>,
    /// Entries a prefetch is still downloading: a unit waits for its own.
    pub arrivals: Option<&'a Arrivals>,
}

/// One unit put in place.
#[derive(Clone, Debug)]
pub struct Planted {
    pub unit: PredictedUnit,
    /// The unit's `.fingerprint` directory name (`<package>-<hash>`).
    pub unit_dir: String,
    /// The unit's rustc entry, if it has one.
    pub entry: Option<String>,
    /// The pack holding cargo's files for it.
    pub pack: String,
    /// Bytes written (uncompressed).
    pub bytes: u64,
    /// Where it was put, and what it was built against (see `SeedVariant`).
    pub fingerprint_dir: String,
    pub run_fingerprint_dir: Option<String>,
    pub cwd: PathBuf,
    pub deps: Vec<(String, String)>,
    /// What compiling it took when it was captured.
    pub compile_ms: u64,
    /// Restored into an incremental build without incremental state.
    pub incremental: bool,
}

/// Plants every unit that has a recorded variant whose inputs are unchanged, and whose
/// `.fingerprint` directory is not in the target dir already (cargo's own state wins).
/// Corrupt entries met are deleted and returned as warnings (their units are compiled).
pub fn plant(input: &PlantInput<'_>) -> (Vec<Planted>, Vec<Warning>) {
    // Taken before any input is checked, less a margin: a file edited after its check
    // must look newer than every planted file, so cargo rebuilds what read it. File
    // times come from the kernel's coarse clock, which lags the precise one by up to a
    // tick (4-10 ms); 50 ms covers it. An edit made before the check is caught by its
    // digest; a file written in the margin only makes cargo rebuild its unit.
    let stamp = SystemTime::now() - std::time::Duration::from_millis(50);
    let digests: Mutex<HashMap<PathBuf, String>> = Mutex::new(HashMap::new());
    // One plant per seed key.
    let mut units: Vec<&PredictedUnit> = input.units.iter().collect();
    units.sort_by_key(|u| u.seed_key);
    units.dedup_by_key(|u| u.seed_key);
    let results: Vec<Result<Vec<Planted>, Warning>> = units
        .par_iter()
        .map(|u| plant_unit(input, u, stamp, &digests))
        .collect();
    let mut planted: Vec<Planted> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    for r in results {
        match r {
            Ok(p) => planted.extend(p),
            Err(w) => {
                if !warnings.iter().any(|x| x.code == w.code) {
                    warnings.push(w);
                }
            }
        }
    }
    // Every unit must sit on what it was built against: a dependency planted from
    // another variant, or left to cargo, takes the unit out again (cargo rebuilds it).
    let identities: Mutex<HashMap<PathBuf, String>> = Mutex::new(HashMap::new());
    let consistent: Vec<bool> = planted
        .par_iter()
        .map(|p| deps_match(input, p, &identities))
        .collect();
    let mut kept = Vec::with_capacity(planted.len());
    for (p, ok) in planted.into_iter().zip(consistent) {
        if ok {
            kept.push(p);
        } else {
            for fp in std::iter::once(&p.fingerprint_dir).chain(&p.run_fingerprint_dir) {
                let _ = fs::remove_dir_all(input.target_root.join(fp));
            }
        }
    }
    (kept, warnings)
}

fn deps_match(
    input: &PlantInput<'_>,
    p: &Planted,
    identities: &Mutex<HashMap<PathBuf, String>>,
) -> bool {
    let pm = PathMap::new(&p.cwd, Some(input.target_root), input.cargo_home);
    p.deps.iter().all(|(path, want)| {
        let real = pm.expand_path(path);
        if PathMap::has_token(&real.to_string_lossy()) {
            return false;
        }
        if let Some(id) = identities.lock().ok().and_then(|m| m.get(&real).cloned()) {
            return &id == want;
        }
        let id = link_input_identity(&real).unwrap_or_else(|_| "?".into());
        let ok = &id == want;
        if let Ok(mut m) = identities.lock() {
            m.insert(real, id);
        }
        ok
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
    digests: &Mutex<HashMap<PathBuf, String>>,
) -> Result<Vec<Planted>, Warning> {
    let record = read_record(input.store, &unit.seed_key);
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
        // Cargo's own state wins; a variant already planted here is not planted twice.
        if input.target_root.join(&v.fingerprint_dir).exists()
            || !inputs_match(v, &ws_pm, input.env, digests)
            || !linker_matches(input, v, &ws_pm)
        {
            continue;
        }
        match put_in_place(input, v, &ws_pm, stamp) {
            Ok(bytes) => planted.push(Planted {
                unit: unit.clone(),
                unit_dir: v
                    .fingerprint_dir
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                entry: v.entry.clone(),
                pack: v.pack.clone(),
                bytes,
                fingerprint_dir: v.fingerprint_dir.clone(),
                run_fingerprint_dir: v.run_fingerprint_dir.clone(),
                cwd: ws_pm.expand_path(&v.cwd),
                deps: v.deps.clone(),
                compile_ms: v.compile_ms,
                incremental: v.incremental,
            }),
            Err(e) => {
                // Without its fingerprint cargo rebuilds the unit: nothing half-planted
                // is ever trusted.
                let _ = fs::remove_dir_all(input.target_root.join(&v.fingerprint_dir));
                if let PlantError::Cache(e) = e {
                    return Err(Warning {
                        code: e.code().to_string(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(planted)
}

/// Why a variant could not be put in place: a store problem worth a warning (a corrupt
/// entry, deleted), or anything else (a missing entry, a full disk), after which the
/// unit is simply compiled.
enum PlantError {
    Cache(CacheError),
    Io,
}

impl From<io::Error> for PlantError {
    fn from(_: io::Error) -> PlantError {
        PlantError::Io
    }
}

/// A variant that linked is planted only if the linker found now is the one it used.
fn linker_matches(input: &PlantInput<'_>, v: &SeedVariant, ws_pm: &PathMap) -> bool {
    let Some(l) = &v.linker else {
        return true;
    };
    let Some(host) = input.host else {
        return false;
    };
    let cwd = ws_pm.expand_path(&v.cwd);
    let id = linker_id(
        &LinkerRequest {
            program: &l.program,
            cwd: &cwd,
            sysroot: &l.sysroot,
            host,
            target: &l.target,
            fuse_ld: &l.fuse_ld,
            path_var: input.env.path_var().map(|p| p.as_os_str()),
            vars: input.env.all(),
        },
        Some(&input.store.linkers_dir()),
    );
    id.is_ok_and(|id| id.key.to_hex() == l.key)
}

fn inputs_match(
    v: &SeedVariant,
    pm: &PathMap,
    env: &Env,
    digests: &Mutex<HashMap<PathBuf, String>>,
) -> bool {
    let env_ok = v.env.iter().all(|(k, val)| match RootKind::from_token(k) {
        // A root the unit's outputs name: it must be the same path here.
        Some(RootKind::Cwd) => val.as_deref().map(PathBuf::from) == Some(pm.expand_path(&v.cwd)),
        Some(kind) => pm.real_of(kind) == val.as_deref(),
        None => env.get(k) == val.as_deref(),
    });
    env_ok
        && v.files.iter().all(|(p, want)| {
            let path = pm.expand_path(p);
            if PathMap::has_token(&path.to_string_lossy()) {
                return false;
            }
            if let Some(d) = digests.lock().ok().and_then(|m| m.get(&path).cloned()) {
                return &d == want;
            }
            let d = match hash_file(&path) {
                Ok(k) => k.to_hex(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => "-".to_string(),
                Err(_) => "?".to_string(),
            };
            let ok = &d == want;
            if let Ok(mut m) = digests.lock() {
                m.insert(path, d);
            }
            ok
        })
}

/// Writes the variant's files; returns the bytes written.
fn put_in_place(
    input: &PlantInput<'_>,
    v: &SeedVariant,
    ws_pm: &PathMap,
    stamp: SystemTime,
) -> Result<u64, PlantError> {
    if let Some(a) = input.arrivals {
        for k in std::iter::once(&v.pack).chain(&v.entry) {
            if let Some(k) = Key::from_hex(k) {
                a.wait(&k);
            }
        }
    }
    let root = input.target_root;
    let cwd = ws_pm.expand_path(&v.cwd);
    let pm = PathMap::new(&cwd, Some(root), input.cargo_home);
    let mut written: Vec<PathBuf> = Vec::new();
    // Identity sidecars: a proc-macro's `.so` is known by the entry key that built it,
    // a library by its content digest (checked while restoring), so neither dependents
    // nor the check below need to hash it.
    let mut linked: Vec<(PathBuf, String)> = Vec::new();
    let mut bytes = 0u64;
    if let Some(e) = v.entry.as_ref().filter(|_| !v.outputs_in_pack) {
        let key = Key::from_hex(e).ok_or_else(|| io::Error::other("bad entry key"))?;
        let out = root.join(&v.out_dir);
        fs::create_dir_all(&out)?;
        let restored = restore_entry(input.store, &key, &out, &pm)
            .map_err(PlantError::Cache)?
            .ok_or_else(|| io::Error::other("entry missing"))?;
        bytes += restored.bytes;
        for (p, digest) in restored.files {
            match p.extension().and_then(|x| x.to_str()) {
                Some("so") => linked.push((p.clone(), key_identity(&key))),
                Some("rlib" | "rmeta") => linked.push((p.clone(), content_identity(&digest))),
                _ => {}
            }
            written.push(p);
        }
    }
    // A run another unit already put in place (or cargo kept) stays as it is.
    let run_dirs = v.run_fingerprint_dir.as_ref().and_then(|fp| {
        root.join(fp).exists().then(|| {
            let build = fp.replacen("/.fingerprint/", "/build/", 1);
            (format!("{fp}/"), format!("{build}/"))
        })
    });
    let pack = Key::from_hex(&v.pack).ok_or_else(|| io::Error::other("bad pack key"))?;
    let mut reader = input
        .store
        .open_entry(&pack)
        .map_err(PlantError::Cache)?
        .ok_or_else(|| io::Error::other("pack missing"))?;
    let files = reader.meta().files.clone();
    let corrupt = |e| match e {
        ReadError::Io(_) => PlantError::Io,
        ReadError::Corrupt(m) => PlantError::Cache(input.store.discard(&pack, m)),
    };
    for f in &files {
        if !is_relative_inside(&f.name) {
            let reason = format!("bad file name {:?}", f.name);
            return Err(PlantError::Cache(input.store.discard(&pack, reason)));
        }
        if let Some((a, b)) = &run_dirs
            && (f.name.starts_with(a.as_str()) || f.name.starts_with(b.as_str()))
        {
            reader.next_file(&mut io::sink()).map_err(corrupt)?;
            continue;
        }
        let dest = root.join(&f.name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = restore_temp_path(&dest);
        let result = (|| -> Result<u64, PlantError> {
            if f.template {
                let mut buf = Vec::new();
                let (n, _) = reader.next_file(&mut buf).map_err(corrupt)?;
                let text = String::from_utf8(buf).map_err(io::Error::other)?;
                let expanded = pm.expand_text(&text);
                if PathMap::has_token(&expanded) {
                    return Err(io::Error::other("unexpandable path token").into());
                }
                fs::write(&tmp, expanded)?;
                Ok(n)
            } else {
                let mut w = BufWriter::new(File::create(&tmp)?);
                let (n, _) = reader.next_file(&mut w).map_err(corrupt)?;
                w.flush()?;
                Ok(n)
            }
        })();
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if f.role == "exec" {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        }
        fs::rename(&tmp, &dest)?;
        // A build script's shim names the program that captured it: it is written
        // again for this one (which may live elsewhere now).
        if f.role == "exec" && n < 4096 && fs::read_to_string(&dest).is_ok_and(|t| is_shim_text(&t))
        {
            let exe = std::env::current_exe()?;
            write_shim(&dest, &exe)?;
        }
        bytes += n;
        written.push(dest);
    }
    reader.finish().map_err(corrupt)?;
    for p in &written {
        File::open(p)?.set_modified(stamp)?;
    }
    // After the stamp: a sidecar names the artifact's size and modification time.
    for (p, id) in &linked {
        write_artifact_identity(p, id)?;
    }
    Ok(bytes)
}

/// A relative path that stays inside the directory it is joined to.
fn is_relative_inside(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names_stay_inside() {
        assert!(is_relative_inside("debug/.fingerprint/a-1/lib-a"));
        assert!(!is_relative_inside("/etc/passwd"));
        assert!(!is_relative_inside("debug/../../x"));
        assert!(!is_relative_inside(""));
    }
}
