//! Capturing units after a successful build: cargo's files for each unit the wrapper
//! cached, and the inputs that must stay unchanged for them to be planted again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use memchr::memmem;
use rayon::prelude::*;

use super::record::{SeedVariant, add_variant, read_record};
use crate::config::Env;
use crate::key::{DepInfo, Key, KeyHasher, PathMap, RootKind, hash_file, link_input_identity};
use crate::store::{EntryFile, EntryMeta, EntrySource, LocalStore};
use crate::wrapper::{Outcome, UnitEvent};

/// A variant a capture recorded: what the remote index should learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The seed key the variant is recorded under.
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
    /// A file cargo keeps holds a machine path, or an input cannot be described.
    Unseedable,
    Io,
}

impl From<io::Error> for Skip {
    fn from(_: io::Error) -> Skip {
        Skip::Io
    }
}

/// Package variables that follow from the unit's identity (name and version), which
/// the prediction key and cargo's fingerprint already cover. Any other `CARGO_*`
/// variable a path package's crate read (`env!("CARGO_PKG_DESCRIPTION")`) can change
/// without cargo noticing, so such a unit is not seeded.
const IDENTITY_VARS: &[&str] = &[
    "CARGO_PKG_NAME",
    "CARGO_PKG_VERSION",
    "CARGO_PKG_VERSION_MAJOR",
    "CARGO_PKG_VERSION_MINOR",
    "CARGO_PKG_VERSION_PATCH",
    "CARGO_PKG_VERSION_PRE",
    "CARGO_CRATE_NAME",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "OUT_DIR",
];

/// Variables rustc reads itself, recorded with every variant.
pub(super) const RUSTC_ENV: &[&str] = &["RUSTC_BOOTSTRAP"];

/// The most files a package walk may hash (build scripts that declared nothing).
const MAX_WALK: usize = 10_000;

/// Captures every unit of `events` that the wrapper hit or stored.
pub fn capture(
    store: &LocalStore,
    events: &[UnitEvent],
    workspace_root: &Path,
    cargo_home: Option<&Path>,
    env: &Env,
) -> CaptureStats {
    let results: Vec<Result<Option<Captured>, Skip>> = events
        .par_iter()
        .map(|ev| capture_unit(store, ev, workspace_root, cargo_home, env))
        .collect();
    let mut stats = CaptureStats::default();
    for r in results {
        match r {
            Ok(Some(c)) => {
                stats.captured += 1;
                stats.variants.push(c);
            }
            Ok(None) => stats.unchanged += 1,
            Err(Skip::NotCached) => {}
            Err(Skip::Unseedable | Skip::Io) => stats.unseedable += 1,
        }
    }
    stats
}

/// The profile directory (`debug`, `<triple>/release`) of an out-dir relative to the
/// target root: the parent of `deps`, or what precedes `build/<unit>`.
pub(super) fn profile_root(out_dir: &str) -> Option<&str> {
    if let Some(p) = out_dir.strip_suffix("/deps") {
        return Some(p);
    }
    let (p, unit) = out_dir.rsplit_once("/build/")?;
    (!unit.contains('/')).then_some(p)
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
}

fn capture_unit(
    store: &LocalStore,
    ev: &UnitEvent,
    workspace_root: &Path,
    cargo_home: Option<&Path>,
    env: &Env,
) -> Result<Option<Captured>, Skip> {
    if !matches!(ev.unit.outcome, Outcome::Hit | Outcome::Miss) {
        return Err(Skip::NotCached);
    }
    let (Some(pl), Some(upk)) = (&ev.place, ev.spk.as_deref().and_then(Key::from_hex)) else {
        return Err(Skip::NotCached);
    };
    let Some(entry) = ev.unit.key.clone() else {
        return Err(Skip::NotCached);
    };
    let pr = profile_root(&pl.out_dir).ok_or(Skip::Unseedable)?;
    let root = &pl.target_root;
    let unit_pm = PathMap::new(&pl.cwd, Some(root), cargo_home);
    let ws_pm = PathMap::new(workspace_root, Some(root), cargo_home);
    // The roots the entry is bound to (the wrapper's `store_entry`): the outputs may
    // hold their real paths, and the seed holds only where they are the same.
    let manifest_variant = ev.l1.as_deref().and_then(Key::from_hex).and_then(|l1| {
        store
            .read_manifest(&l1)
            .variants
            .into_iter()
            .find(|v| v.entry == entry)
    });
    let bound: Vec<(String, Option<String>)> = manifest_variant
        .iter()
        .flat_map(|v| &v.env)
        .filter(|e| RootKind::from_token(&e.name).is_some())
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let mut needles: Vec<Vec<u8>> = unit_pm
        .roots()
        .iter()
        .chain(ws_pm.roots())
        .filter(|r| !bound.iter().any(|(t, _)| t == r.kind.token()))
        .map(|r| r.real.as_bytes().to_vec())
        .collect();
    needles.sort();
    needles.dedup();

    let in_build_dir = pl.out_dir.contains("/build/");
    let mut files: Vec<PackFile> = Vec::new();
    if in_build_dir {
        // A build script: its directory holds the executable, cargo's hard link to it
        // and the dep-info; they travel in the pack.
        walk_into(root, &pl.out_dir, &mut files, |name, top| {
            top && name.ends_with(".d")
        })?;
    }
    let run_fp = pl
        .run_dir
        .as_ref()
        .map(|r| format!("{pr}/.fingerprint/{r}"));
    if let Some(run) = &pl.run_dir {
        walk_into(
            root,
            &format!("{pr}/build/{run}"),
            &mut files,
            |name, top| top && matches!(name, "output" | "root-output" | "stderr"),
        )?;
    }
    if let Some(fp) = &run_fp {
        fingerprint_into(root, fp, &mut files)?;
    }
    let fp = format!("{pr}/.fingerprint/{}", pl.unit_dir);
    fingerprint_into(root, &fp, &mut files)?;

    // Text is tokenized; anything else must not hold a machine path.
    let mut digests = Vec::with_capacity(files.len());
    let mut bytes = 0u64;
    for f in &mut files {
        match &mut f.src {
            Src::Text(t) => {
                *t = unit_pm.normalize_text(t);
                bytes += t.len() as u64;
                digests.push(Key::digest(t.as_bytes()));
            }
            Src::File(p) => {
                let data = fs::read(&*p)?;
                if needles.iter().any(|n| memmem::find(&data, n).is_some()) {
                    return Err(Skip::Unseedable);
                }
                bytes += data.len() as u64;
                digests.push(Key::digest(&data));
            }
        }
    }

    // What must be unchanged for the plant to be sound.
    let registry = cargo_home.is_some_and(|h| pl.manifest_dir.starts_with(h));
    let outside = |p: &Path| p.starts_with(root) || cargo_home.is_some_and(|h| p.starts_with(h));
    let mut inputs: Vec<(String, String)> = Vec::new();
    let mut vars: Vec<(String, Option<String>)> = Vec::new();
    let hash = pl.unit_dir.rsplit_once('-').map(|(_, h)| h).unwrap_or("");
    let depinfo = root
        .join(&pl.out_dir)
        .join(format!("{}-{hash}.d", ev.unit.crate_name));
    let di = DepInfo::parse(&fs::read_to_string(&depinfo)?, &pl.cwd);
    for f in &di.files {
        if !outside(f) {
            inputs.push((ws_pm.normalize_path(f), hash_file(f)?.to_hex()));
        }
    }
    // The build-script run this unit read: what it declared decides what must be
    // unchanged for the run, and the variables it set for rustc are its own output.
    let mut script_vars: Vec<String> = Vec::new();
    if let Some(run) = &pl.run_dir {
        let output = fs::read_to_string(root.join(pr).join("build").join(run).join("output"))?;
        let mut declared_files = false;
        for line in output.lines() {
            let Some(d) = line
                .strip_prefix("cargo::")
                .or_else(|| line.strip_prefix("cargo:"))
            else {
                continue;
            };
            if let Some(p) = d.strip_prefix("rerun-if-changed=") {
                declared_files = true;
                let p = pl.manifest_dir.join(p);
                if !outside(&p) {
                    hash_tree(&p, &ws_pm, root, &mut inputs)?;
                }
            } else if let Some(v) = d.strip_prefix("rerun-if-env-changed=") {
                vars.push((v.to_string(), env.get(v).map(str::to_string)));
            } else if let Some(kv) = d.strip_prefix("rustc-env=") {
                script_vars.push(kv.split('=').next().unwrap_or(kv).to_string());
            }
        }
        // Cargo's rule for a script that named no file: any file of the package.
        if !declared_files && !registry {
            hash_tree(&pl.manifest_dir, &ws_pm, root, &mut inputs)?;
        }
    }
    for d in &di.env {
        if script_vars.contains(&d.name) {
            continue;
        }
        if d.name.starts_with("CARGO_") || d.name == "OUT_DIR" {
            if registry || IDENTITY_VARS.contains(&d.name.as_str()) {
                continue;
            }
            return Err(Skip::Unseedable);
        }
        vars.push((d.name.clone(), d.value.clone()));
    }
    for v in RUSTC_ENV {
        vars.push((v.to_string(), env.get(v).map(str::to_string)));
    }
    vars.extend(bound);
    inputs.sort();
    inputs.dedup();
    vars.sort();
    vars.dedup();

    // What the unit was built against: its externs, what its link read (recorded in the
    // manifest variant the wrapper wrote), the build script that made its OUT_DIR.
    let mut deps: Vec<(String, String)> = pl.deps.clone();
    if let Some(v) = manifest_variant {
        deps.extend(v.link_inputs.into_iter().map(|i| (i.path, i.digest)));
    }
    if let (Some(run), Some(fp)) = (&pl.run_dir, &run_fp) {
        let script = build_script_of(root, pr, run, fp).ok_or(Skip::Unseedable)?;
        let id = link_input_identity(&script)?;
        deps.push((unit_pm.normalize_path(&script), id));
    }
    deps.sort();
    deps.dedup();

    let entry = Some(entry);
    let mut h = KeyHasher::new("seed-pack");
    h.str("upk", &upk.to_hex())
        .str("entry", entry.as_deref().unwrap_or(""))
        .str("outputs-in-pack", &in_build_dir.to_string())
        .str("out-dir", &pl.out_dir);
    let listed: Vec<String> = files
        .iter()
        .zip(&digests)
        .map(|(f, d)| format!("{}\0{}\0{}", f.rel, d.to_hex(), f.exec))
        .collect();
    h.list("files", listed.iter().map(String::as_str));
    let inputs_listed: Vec<String> = inputs.iter().map(|(p, d)| format!("{p}\0{d}")).collect();
    h.list("inputs", inputs_listed.iter().map(String::as_str));
    let vars_listed: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}\0{}", v.as_deref().unwrap_or("\u{1}")))
        .collect();
    h.list("env", vars_listed.iter().map(String::as_str));
    let mut deps_listed: Vec<String> = deps.iter().map(|(p, d)| format!("{p}\0{d}")).collect();
    if let Some(l) = &pl.linker {
        deps_listed.push(format!("linker\0{}", l.key));
    }
    h.list("deps", deps_listed.iter().map(String::as_str));
    let pack = h.finish();

    let variant = SeedVariant {
        pack: pack.to_hex(),
        entry,
        out_dir: pl.out_dir.clone(),
        fingerprint_dir: fp,
        run_fingerprint_dir: run_fp,
        cwd: ws_pm.normalize_path(&pl.cwd),
        files: inputs,
        env: vars,
        bytes,
        deps,
        linker: pl.linker.clone(),
        compile_ms: ev.unit.compile_ms.unwrap_or(0),
        incremental: pl.incremental,
        outputs_in_pack: in_build_dir,
    };
    let recorded = read_record(store, &upk).variants.contains(&variant);
    // A pack deleted as corrupt is written again.
    let pack_present = store.entry_size(&pack).is_some();
    if recorded && pack_present {
        return Ok(None);
    }
    if !pack_present {
        write_pack(store, &pack, &files)?;
    }
    add_variant(store, &upk, variant.clone())?;
    Ok(Some(Captured { upk, variant }))
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
    let pkg = run.rsplit_once('-')?.0;
    let fp_root = root.join(pr).join(".fingerprint");
    for e in fs::read_dir(&fp_root).ok()? {
        let name = e.ok()?.file_name().into_string().ok()?;
        if name.rsplit_once('-').map(|(p, _)| p) != Some(pkg) {
            continue;
        }
        let Ok(h) = fs::read_to_string(fp_root.join(&name).join("build-script-build-script-build"))
        else {
            continue;
        };
        if h.trim() == le || h.trim() == be {
            let dir = root.join(pr).join("build").join(&name);
            let real = fs::read_dir(&dir).ok()?.find_map(|e| {
                let p = e.ok()?.path();
                p.to_str()?.ends_with(".xcache-real").then_some(p)
            });
            return Some(real.unwrap_or_else(|| dir.join("build-script-build")));
        }
    }
    None
}

fn write_pack(store: &LocalStore, pack: &Key, files: &[PackFile]) -> Result<(), Skip> {
    let meta = EntryMeta {
        format_version: 1,
        key: pack.to_hex(),
        files: files
            .iter()
            .map(|f| EntryFile {
                role: if f.exec { "exec" } else { "file" }.to_string(),
                name: f.rel.clone(),
                template: matches!(&f.src, Src::Text(t) if PathMap::has_token(t)),
                executable: f.exec,
            })
            .collect(),
        stdout: String::new(),
        stderr: String::new(),
        ansi: false,
        compile_ms: 0,
        xcache_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let sources: Vec<(EntrySource<'_>, bool)> = files
        .iter()
        .map(|f| match &f.src {
            Src::Text(t) => (EntrySource::Bytes(t.as_bytes()), false),
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
        let text = name.ends_with(".json") || name.starts_with("output-");
        out.push(pack_file(root, format!("{rel}/{name}"), text)?);
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
    Ok(PackFile { rel, src, exec })
}

fn starts_with_shebang(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

/// Hashes a file, or every file under a directory (`.git` and the target dir skipped);
/// a path that does not exist is recorded as `-`.
fn hash_tree(
    p: &Path,
    pm: &PathMap,
    target_root: &Path,
    out: &mut Vec<(String, String)>,
) -> Result<(), Skip> {
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.push((pm.normalize_path(p), "-".into()));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if meta.is_file() {
        out.push((pm.normalize_path(p), hash_file(p)?.to_hex()));
        return Ok(());
    }
    let mut stack = vec![p.to_path_buf()];
    let mut n = 0usize;
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                if e.file_name() != ".git" && !path.starts_with(target_root) {
                    stack.push(path);
                }
            } else if ft.is_file() {
                n += 1;
                if n > MAX_WALK {
                    return Err(Skip::Unseedable);
                }
                out.push((pm.normalize_path(&path), hash_file(&path)?.to_hex()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_roots() {
        assert_eq!(profile_root("debug/deps"), Some("debug"));
        assert_eq!(
            profile_root("x86_64-unknown-linux-gnu/release/deps"),
            Some("x86_64-unknown-linux-gnu/release")
        );
        assert_eq!(profile_root("debug/build/foo-0123"), Some("debug"));
        assert_eq!(profile_root("debug/examples"), None);
    }
}
