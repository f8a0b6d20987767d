//! `cargo xcache verify`'s check of a hit: which hits are sampled, and the unit run again
//! without the cache (twice when it differs) and compared with what was restored.

use std::path::{Path, PathBuf};

use super::cached::{Cached, Rerun};
use super::context::Cx;
use crate::key::{Input, Key, RootKind};
use crate::wrapper::restore::Restored;
use crate::wrapper::{HitVerdict, Verified};

/// Whether `cargo xcache verify` checks this hit: every one with `--all`, else the
/// sample the key falls in (the same units from run to run).
pub(super) fn sampled(cx: &Cx, key: &Key) -> bool {
    cx.cfg
        .verify
        .is_some_and(|pct| (u16::from_le_bytes([key.0[0], key.0[1]]) % 100) < pct as u16)
}

/// Compiles (or runs) a restored unit again without the cache and compares.
pub(super) fn verify_hit(
    unit: &mut impl Cached,
    cx: &mut Cx,
    l1: &Key,
    key: &Key,
    restored: &Restored,
    dir: &Path,
) -> Verified {
    let not_checked = |why: String| Verified {
        verdict: HitVerdict::NotChecked,
        note: Some(why),
        ..Verified::default()
    };
    let Some(store) = cx.store.clone() else {
        return not_checked("no store".into());
    };
    let recorded: Vec<Input> = store
        .read_manifest(l1)
        .variants
        .into_iter()
        .find(|v| v.entry == key.to_hex())
        .map(|v| v.inputs)
        .unwrap_or_default();
    // Inside the target dir, so the compile again sees the same roots (what it reads
    // there is judged as for the real one) and its paths are remapped the same way.
    let runs = match cx.pm.real_of(RootKind::Target) {
        Some(t) => Path::new(t).join("xcache").join("verify-runs"),
        None => store.tmp_dir(),
    };
    let scratch = runs.join(format!("{}-{}", &key.to_hex()[..16], std::process::id()));
    let first = match unit.rerun(cx, &scratch.join("1")) {
        Ok(r) => r,
        Err(why) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return not_checked(why);
        }
    };
    let restored_files: Vec<(String, PathBuf)> = restored
        .meta
        .files
        .iter()
        .map(|f| (f.name.clone(), restored_file(dir, &f.name)))
        .collect();
    let mut files = differing(&restored_files, dir, &first, &scratch.join("1"));
    let stored_out = cx.pm.expand_text(&restored.meta.stdout);
    let fresh_out = String::from_utf8_lossy(&first.stdout).replace(
        &scratch.join("1").display().to_string(),
        &dir.display().to_string(),
    );
    if stored_out != fresh_out {
        files.push("(stdout)".into());
    }
    let verdict = if files.is_empty() {
        Verified {
            verdict: HitVerdict::Same,
            ..Verified::default()
        }
    } else {
        // The compile again wrote into the scratch directory: read its paths as the
        // restore directory's before comparing with what was recorded.
        let (from, to) = (
            cx.pm.normalize_path(&scratch.join("1")),
            cx.pm.normalize_path(dir),
        );
        // Names it probed and did not find in its own output directory are its
        // temporary files (random names), not inputs the key missed.
        let own = format!("{to}/");
        let missed: Vec<String> = first
            .inputs
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if let Some(rest) = i.name.strip_prefix(&from) {
                    i.name = format!("{to}{rest}");
                }
                i
            })
            .filter(|i| !recorded.contains(i))
            .filter(|i| !(i.state == "absent" && i.name.starts_with(&own)))
            .map(|i| format!("{} {} ({})", i.kind.as_str(), i.name, i.state))
            .collect();
        // Is the unit reproducible at all? Two uncached runs that differ from each
        // other say it is not, whatever the key holds.
        let (one, two) = (scratch.join("1"), scratch.join("2"));
        match unit.rerun(cx, &two) {
            Ok(second) => {
                let mut between = differing(&second.files.clone(), &two, &first, &one);
                let second_out = String::from_utf8_lossy(&second.stdout)
                    .replace(&two.display().to_string(), &one.display().to_string());
                if second_out != String::from_utf8_lossy(&first.stdout) {
                    between.push("(stdout)".into());
                }
                Verified {
                    verdict: if between.is_empty() {
                        HitVerdict::Differs
                    } else {
                        HitVerdict::NotReproducible
                    },
                    files,
                    missed,
                    note: None,
                }
            }
            Err(why) => Verified {
                verdict: HitVerdict::Differs,
                files,
                missed,
                note: Some(why),
            },
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    verdict
}

/// Where a restored output is now: a build-script executable was moved aside for the
/// shim put in its place.
fn restored_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let real = dir.join(format!("{name}{}", crate::wrapper::REAL_SUFFIX));
    let shimmed = std::fs::read_to_string(&path).is_ok_and(|t| crate::wrapper::is_shim_text(&t));
    if shimmed && real.is_file() {
        real
    } else {
        path
    }
}

/// The names whose files differ between `a` (below `a_dir`) and a rerun's (below
/// `b_dir`); text is compared with the rerun's directory read as `a_dir`.
fn differing(a: &[(String, PathBuf)], a_dir: &Path, b: &Rerun, b_dir: &Path) -> Vec<String> {
    let (a_dir, b_dir) = (a_dir.display().to_string(), b_dir.display().to_string());
    let mut out = Vec::new();
    for (name, path) in a {
        let fresh = b.files.iter().find(|(n, _)| n == name);
        let same = match (std::fs::read(path), fresh.map(|(_, p)| std::fs::read(p))) {
            (Ok(x), Some(Ok(y))) => {
                x == y
                    || match (String::from_utf8(x), String::from_utf8(y)) {
                        (Ok(x), Ok(y)) => x.replace(&a_dir, "\0") == y.replace(&b_dir, "\0"),
                        _ => false,
                    }
            }
            _ => false,
        };
        if !same {
            out.push(name.clone());
        }
    }
    for (name, _) in &b.files {
        if !a.iter().any(|(n, _)| n == name) {
            out.push(format!("{name} (only in the uncached run)"));
        }
    }
    out
}
