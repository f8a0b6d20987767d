//! Where cargo keeps a unit in its build directory. Main type: [`Layout`].
//!
//! cargo has kept units in two shapes (both under `<build-dir>/<profile>/`, where the
//! build dir is the target dir unless `build.build-dir` sets another):
//! - the legacy layout: outputs in `deps/` (`examples/`), a build script's compile and
//!   its run each in `build/<package>-<hash>/`, cargo's records in
//!   `.fingerprint/<package>-<hash>/`;
//! - the new layout (`-Zbuild-dir-new-layout`, cargo's default from 1.99 nightly and
//!   1.100 stable): everything of a unit in `build/<package>/<hash>/`, its outputs in
//!   `out/` (a run's `OUT_DIR`), its records in `fingerprint/`, a run's own files in
//!   `run/` (`stdout`, `stderr`, `root-output`, `invoked.timestamp`).
//!
//! The hash is the same in both (cargo's `-C extra-filename`), so a unit has one name
//! in each: `<package>-<hash>` ([`Layout::Legacy`]) or `<package>/<hash>`
//! ([`Layout::New`]); the name says the layout. Which layout a unit is in is read from
//! where cargo told rustc to write ([`Place::of_out_dir`]), never from cargo's version.

use std::path::Path;

/// One of cargo's build-directory layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Legacy,
    New,
}

impl Layout {
    /// The layout a unit name (`<package>-<hash>` or `<package>/<hash>`) belongs to.
    pub fn of_unit(unit: &str) -> Layout {
        if unit.contains('/') {
            Layout::New
        } else {
            Layout::Legacy
        }
    }

    /// The layout of a unit's fingerprint directory (relative to the build dir), if it
    /// is one of cargo's.
    pub fn of_fingerprint_dir(fingerprint_dir: &str) -> Option<Layout> {
        if fingerprint_dir.contains("/.fingerprint/") {
            Some(Layout::Legacy)
        } else if fingerprint_dir.ends_with("/fingerprint") && fingerprint_dir.contains("/build/") {
            Some(Layout::New)
        } else {
            None
        }
    }

    /// The hash in a unit's name (`<package>-<hash>`, `<package>/<hash>`).
    pub fn hash_of_unit(unit: &str) -> &str {
        let sep = match Layout::of_unit(unit) {
            Layout::Legacy => '-',
            Layout::New => '/',
        };
        unit.rsplit_once(sep).map_or("", |(_, h)| h)
    }

    /// A unit's name from its package and hash.
    pub fn unit_name(self, package: &str, hash: &str) -> String {
        match self {
            Layout::Legacy => format!("{package}-{hash}"),
            Layout::New => format!("{package}/{hash}"),
        }
    }

    /// What the report and the book call it.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Legacy => "legacy",
            Layout::New => "new",
        }
    }

    /// The directory of cargo's records of `unit` under profile root `profile`
    /// (`debug`, `<triple>/release`), relative to the build dir.
    pub fn fingerprint_dir(profile: &str, unit: &str) -> String {
        match Layout::of_unit(unit) {
            Layout::Legacy => format!("{profile}/.fingerprint/{unit}"),
            Layout::New => format!("{profile}/build/{unit}/fingerprint"),
        }
    }

    /// The directories of a build-script run, relative to the build dir, each with the
    /// names of the files at its top that hold text cargo wrote (what the run printed,
    /// where its `OUT_DIR` was): legacy `build/<run>` (its files beside `out/`), new
    /// `build/<run>/run` and `build/<run>/out`.
    pub fn run_files(profile: &str, run: &str) -> Vec<(String, &'static [&'static str])> {
        match Layout::of_unit(run) {
            Layout::Legacy => vec![(
                format!("{profile}/build/{run}"),
                &["output", "root-output", "stderr"],
            )],
            Layout::New => vec![
                (
                    format!("{profile}/build/{run}/run"),
                    &["stdout", "root-output", "stderr"],
                ),
                (format!("{profile}/build/{run}/out"), &[]),
            ],
        }
    }

    /// The file holding what a run printed on stdout (its directives).
    pub fn run_stdout(profile: &str, run: &str) -> String {
        let files = Layout::run_files(profile, run);
        format!("{}/{}", files[0].0, files[0].1[0])
    }

    /// A run's `OUT_DIR`, relative to the build dir (the same form in both layouts).
    pub fn run_out_dir(profile: &str, run: &str) -> String {
        format!("{profile}/build/{run}/out")
    }

    /// The unit whose records `fingerprint_dir` (relative to the build dir) holds: its
    /// name, `<package>-<hash>` or `<package>/<hash>`.
    pub fn unit_of_fingerprint_dir(fingerprint_dir: &str) -> Option<&str> {
        if let Some((_, unit)) = fingerprint_dir.rsplit_once("/.fingerprint/") {
            return plain(unit).then_some(unit);
        }
        let dir = fingerprint_dir.strip_suffix("/fingerprint")?;
        let (_, unit) = dir.rsplit_once("/build/")?;
        let (package, hash) = unit.split_once('/')?;
        (plain(package) && plain(hash)).then_some(unit)
    }

    /// The build-script run directory whose records `fingerprint_dir` holds: legacy
    /// `<p>/build/<run>` (files and `out/`), new `<p>/build/<run>` (`run/` and `out/`).
    pub fn run_dir_of_fingerprint(fingerprint_dir: &str) -> Option<String> {
        if let Some(dir) = fingerprint_dir.strip_suffix("/fingerprint")
            && dir.contains("/build/")
        {
            return Some(dir.to_string());
        }
        let (profile, unit) = fingerprint_dir.rsplit_once("/.fingerprint/")?;
        Some(format!("{profile}/build/{unit}"))
    }
}

/// Where a rustc invocation writes, read from its `--out-dir` relative to the build
/// dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    pub layout: Layout,
    /// The profile root: `debug`, `<triple>/release`.
    pub profile: &'a str,
    /// The unit's name when the directory says it (a build script's compile in either
    /// layout, every unit in the new one); in the legacy `deps/` it is the package and
    /// `-C extra-filename`.
    pub unit: Option<String>,
}

impl<'a> Place<'a> {
    /// Reads `out_dir` (relative to the build dir): the legacy `<p>/deps`,
    /// `<p>/examples` or `<p>/build/<package>-<hash>`, or the new
    /// `<p>/build/<package>/<hash>/out`. Anything else is not a place cargo gives.
    pub fn of_out_dir(out_dir: &'a str) -> Option<Place<'a>> {
        if let Some(profile) = out_dir
            .strip_suffix("/deps")
            .or_else(|| out_dir.strip_suffix("/examples"))
        {
            return Some(Place {
                layout: Layout::Legacy,
                profile,
                unit: None,
            });
        }
        if let Some(unit_dir) = out_dir.strip_suffix("/out")
            && let Some((profile, unit)) = unit_dir.rsplit_once("/build/")
            && let Some((package, hash)) = unit.split_once('/')
            && plain(package)
            && plain(hash)
        {
            return Some(Place {
                layout: Layout::New,
                profile,
                unit: Some(Layout::New.unit_name(package, hash)),
            });
        }
        let (profile, unit) = out_dir.rsplit_once("/build/")?;
        (plain(unit) && unit.contains('-')).then(|| Place {
            layout: Layout::Legacy,
            profile,
            unit: Some(unit.to_string()),
        })
    }

    /// The build-script run an `OUT_DIR` (absolute, under `root`) belongs to: its name.
    pub fn run_of_out_dir(out_dir: &Path, root: &Path) -> Option<String> {
        let rel = out_dir.strip_prefix(root).ok()?.to_str()?;
        if let Some(Place {
            layout: Layout::New,
            unit,
            ..
        }) = Place::of_out_dir(rel)
        {
            return unit;
        }
        let (_, run) = rel.strip_suffix("/out")?.rsplit_once("/build/")?;
        (plain(run) && run.contains('-')).then(|| run.to_string())
    }
}

/// A single path component cargo would write: no separator, not empty, not `.`/`..`.
fn plain(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_read_from_cargos_out_dirs_in_both_layouts() {
        let legacy = Place::of_out_dir("debug/deps").unwrap();
        assert_eq!((legacy.layout, legacy.profile), (Layout::Legacy, "debug"));
        assert_eq!(legacy.unit, None);
        let script = Place::of_out_dir("x86_64-unknown-linux-gnu/release/build/foo-0123").unwrap();
        assert_eq!(script.profile, "x86_64-unknown-linux-gnu/release");
        assert_eq!(script.unit.as_deref(), Some("foo-0123"));
        let new = Place::of_out_dir("debug/build/foo/0123abcd/out").unwrap();
        assert_eq!((new.layout, new.profile), (Layout::New, "debug"));
        assert_eq!(new.unit.as_deref(), Some("foo/0123abcd"));
        assert_eq!(Place::of_out_dir("debug/elsewhere"), None);
        assert_eq!(Place::of_out_dir("debug/build/../x/out"), None);

        let root = Path::new("/b");
        assert_eq!(
            Place::run_of_out_dir(Path::new("/b/debug/build/foo-0123/out"), root).as_deref(),
            Some("foo-0123")
        );
        assert_eq!(
            Place::run_of_out_dir(Path::new("/b/debug/build/foo/0123/out"), root).as_deref(),
            Some("foo/0123")
        );
        assert_eq!(
            Place::run_of_out_dir(Path::new("/elsewhere/out"), root),
            None
        );
    }

    #[test]
    fn a_units_files_are_named_in_its_own_layout() {
        assert_eq!(
            Layout::fingerprint_dir("debug", "foo-01"),
            "debug/.fingerprint/foo-01"
        );
        assert_eq!(
            Layout::fingerprint_dir("debug", "foo/01"),
            "debug/build/foo/01/fingerprint"
        );
        assert_eq!(
            Layout::run_stdout("debug", "foo-01"),
            "debug/build/foo-01/output"
        );
        assert_eq!(
            Layout::run_stdout("debug", "foo/01"),
            "debug/build/foo/01/run/stdout"
        );
        assert_eq!(
            Layout::run_dir_of_fingerprint("debug/.fingerprint/foo-01").as_deref(),
            Some("debug/build/foo-01")
        );
        assert_eq!(
            Layout::run_dir_of_fingerprint("debug/build/foo/01/fingerprint").as_deref(),
            Some("debug/build/foo/01")
        );
        for (fp, unit) in [
            ("debug/.fingerprint/foo-01", Some("foo-01")),
            ("debug/build/foo/01/fingerprint", Some("foo/01")),
            ("debug/build/01/fingerprint", None),
            ("debug/build/../01/fingerprint", None),
        ] {
            assert_eq!(Layout::unit_of_fingerprint_dir(fp), unit, "{fp}");
        }
        assert_eq!(
            Layout::hash_of_unit(
                Layout::unit_of_fingerprint_dir("debug/build/foo/01/fingerprint").unwrap()
            ),
            "01"
        );
    }
}
