//! cargo's files for a unit in the target dir: where they are (its profile root, its
//! `.fingerprint` directories, its build-script run's), each listed as a pack file as it
//! is now, and the build script's executable a run's fingerprint names.

use std::fs;
use std::path::{Path, PathBuf};

use super::pack::{PackFile, Src, is_real_executable};
use super::stats::Skip;
use crate::key::{Key, Layout, Place};
use crate::store::ReadAs;
use crate::wrapper::UnitEvent;

/// Where a unit's files are, for an event the capture reads the target dir for: its
/// place, its profile root, and the `.fingerprint` directories of its build-script run
/// (if any) and of itself (relative to the target root).
pub(super) fn unit_dirs<'e>(
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
pub(super) fn unit_files(
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

/// The event of the build-script run `run` under target root `root`.
pub(super) fn run_event<'e>(
    events: &'e [UnitEvent],
    run: &str,
    root: &Path,
) -> Option<&'e UnitEvent> {
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
pub(super) fn is_script_compile(pl: &crate::wrapper::UnitPlace) -> bool {
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

/// The executable of the build script whose run is `run`: the `.fingerprint` directory
/// of the same package whose hash file holds the hash the run's fingerprint names as its
/// dependency. The real executable when a shim stands in front of it. Build scripts are
/// host units: with `--target` the run is under `<triple>/<profile>` and the script under
/// `<profile>`.
pub(super) fn build_script_of(root: &Path, pr: &str, run: &str, run_fp: &str) -> Option<PathBuf> {
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
        if crate::seed::dep_info::is_dep_info_name(name) {
            let path = root.join(&rel);
            let stamp = ReadAs::of(&fs::metadata(&path)?);
            if let Some(text) = crate::seed::dep_info::to_text(&fs::read(&path)?) {
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
