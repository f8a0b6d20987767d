//! What cargo reported fresh: the units of its `compiler-artifact` messages with
//! `"fresh": true`, by the hash in their file names (an uplifted executable's through
//! the hard link cargo made from its unit).

use std::path::Path;

/// The units cargo reported fresh, by the hash in their file names.
#[derive(Debug, Default)]
pub(super) struct FreshUnits {
    pub hashes: std::collections::HashSet<String>,
    /// Executables cargo named only by their uplifted copy, each with its profile
    /// directory's place under the target dir: told by [`FreshUnits::resolve`] once the
    /// build dir is known.
    uplifted: Vec<std::path::PathBuf>,
}

impl FreshUnits {
    /// Reads one line of cargo's stdout; lines that are not artifact messages are ignored.
    pub(super) fn read_message(&mut self, line: &str) {
        if !line.starts_with('{') || !line.contains("\"compiler-artifact\"") {
            return;
        }
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        if msg["reason"] != "compiler-artifact" || msg["fresh"] != true {
            return;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            let Some(f) = f.as_str() else { continue };
            if let Some(h) = unit_hash(f) {
                self.hashes.insert(h.to_string());
            } else {
                self.uplifted.push(f.into());
            }
        }
    }

    /// Finds the units of the uplifted executables in the build dir (where cargo keeps
    /// them when it is not the target dir).
    pub fn resolve(&mut self, target_dir: &Path, build_dir: &Path) {
        for f in std::mem::take(&mut self.uplifted) {
            let profile = f.parent().and_then(|p| p.strip_prefix(target_dir).ok());
            let in_build = profile.map(|p| build_dir.join(p));
            if let Some(h) = uplifted_unit_hash(&f, in_build.as_deref()) {
                self.hashes.insert(h);
            }
        }
    }
}

/// The unit hash in an output path: `deps/libfoo-<hash>.rlib`, `deps/foo-<hash>`, the
/// directory of `build/foo-<hash>/build-script-build`, or in cargo's new layout that of
/// `build/foo/<hash>/out/…`.
fn unit_hash(path: &str) -> Option<&str> {
    let p = std::path::Path::new(path);
    let file = p.file_name()?.to_str()?;
    let stem = file.split('.').next()?;
    let name_up = |n: usize| p.ancestors().nth(n).and_then(Path::file_name)?.to_str();
    let candidate = match stem.rsplit_once('-') {
        Some((_, h)) if is_hash(h) => h,
        _ if name_up(1) == Some("out") && name_up(2).is_some_and(is_hash) => name_up(2)?,
        _ => {
            let dir = name_up(1)?;
            dir.rsplit_once('-')
                .map(|(_, h)| h)
                .filter(|h| is_hash(h))?
        }
    };
    Some(candidate)
}

/// The unit hash of an executable cargo names only by its uplifted copy
/// (`debug/my-app`): the hard link it made from `deps/my_app-<hash>` (the crate's name:
/// a dash of the binary's name is an underscore there), or in cargo's new layout from
/// `build/<pkg>/<hash>/out/my-app`, in the profile directory `in_build` of the build dir
/// (the uplifted copy's own when `None`).
fn uplifted_unit_hash(path: &Path, in_build: Option<&Path>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let file_name = path.file_name()?.to_str()?;
    let name = file_name.replace('-', "_");
    let meta = std::fs::metadata(path).ok()?;
    let same = |m: &std::fs::Metadata| m.ino() == meta.ino() && m.dev() == meta.dev();
    let profile = in_build.or(path.parent())?;
    let legacy = std::fs::read_dir(profile.join("deps")).ok().and_then(|rd| {
        rd.flatten().find_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let hash = file.strip_prefix(name.as_str())?.strip_prefix('-')?;
            let m = e.metadata().ok()?;
            (is_hash(hash) && same(&m)).then(|| hash.to_string())
        })
    });
    legacy.or_else(|| {
        let build = profile.join("build");
        std::fs::read_dir(&build).ok()?.flatten().find_map(|pkg| {
            std::fs::read_dir(pkg.path())
                .ok()?
                .flatten()
                .find_map(|unit| {
                    let hash = unit.file_name().into_string().ok()?;
                    // rustc's file is named by the crate (`my_app`), its copy by the
                    // binary (`my-app`).
                    let out = unit.path().join("out");
                    let m = std::fs::metadata(out.join(&name))
                        .or_else(|_| std::fs::metadata(out.join(file_name)))
                        .ok()?;
                    (is_hash(&hash) && same(&m)).then_some(hash)
                })
        })
    })
}

fn is_hash(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_hashes_from_output_paths() {
        assert_eq!(
            unit_hash("/t/debug/deps/libutil-d6a5ff6254e3083c.rlib"),
            Some("d6a5ff6254e3083c")
        );
        assert_eq!(
            unit_hash("/t/debug/deps/app-ee8235248c9ab2fa"),
            Some("ee8235248c9ab2fa")
        );
        assert_eq!(
            unit_hash("/t/debug/build/generated-15fc73ee974d20f9/build-script-build"),
            Some("15fc73ee974d20f9")
        );
        assert_eq!(unit_hash("/t/debug/app"), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deps")).unwrap();
        let linked = dir.path().join("deps/app-ee8235248c9ab2fa");
        std::fs::write(&linked, "x").unwrap();
        std::fs::write(dir.path().join("deps/app-0123456789abcdef"), "x").unwrap();
        std::fs::hard_link(&linked, dir.path().join("app")).unwrap();
        assert_eq!(
            uplifted_unit_hash(&dir.path().join("app"), None).as_deref(),
            Some("ee8235248c9ab2fa")
        );
        // A binary with a dash in its name: its crate (and file in deps) has an underscore.
        let linked = dir.path().join("deps/my_app-1111111111111111");
        std::fs::write(&linked, "y").unwrap();
        std::fs::hard_link(&linked, dir.path().join("my-app")).unwrap();
        assert_eq!(
            uplifted_unit_hash(&dir.path().join("my-app"), None).as_deref(),
            Some("1111111111111111")
        );
        // cargo's new layout: rustc's file in the unit's `out/` is named by the crate,
        // without a hash; its copy in the target dir by the binary.
        let build = tempfile::tempdir().unwrap();
        let out = build.path().join("build/my-app/2222222222222222/out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("my_app"), "z").unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::hard_link(out.join("my_app"), target.path().join("my-app")).unwrap();
        assert_eq!(
            uplifted_unit_hash(&target.path().join("my-app"), Some(build.path())).as_deref(),
            Some("2222222222222222")
        );
    }
}
