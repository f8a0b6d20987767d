//! `cargo xcache verify`: build through the cache in a scratch target dir, compile a
//! sample of the units that hit again without the cache, and compare.
//!
//! The scratch target dir (`<target-dir>/xcache/verify`, emptied first) makes every unit
//! go through the wrapper: nothing is fresh for cargo and nothing is seeded, so each hit
//! is one the wrapper judged. The wrapper does the checking (`XCACHE_VERIFY`, see
//! `wrapper::lifecycle`); this command sets it up and prints what the events say.

use std::path::{Path, PathBuf};

use super::args::VerifyArgs;
use super::build_command::{BuildMode, run_build};
use crate::errors::CliError;
use crate::plan::graph::selection_from_cargo_args;
use crate::wrapper::{HitVerdict, Outcome, UnitEvent};

/// The share of hits checked when neither `--all` nor `--sample` is given.
const DEFAULT_SAMPLE: u8 = 25;

pub fn run(mut args: VerifyArgs) -> Result<i32, CliError> {
    let sample = if args.all {
        100
    } else {
        args.sample.unwrap_or(DEFAULT_SAMPLE)
    };
    args.build.take_own_flags();
    let (_env, cwd, cfg) = super::workspace::settings_here()?;
    let sel = selection_from_cargo_args(&args.build.cargo_args);
    let dirs = directories(&cfg.cargo, &cwd, sel.manifest_path.as_deref())?;
    let target_dir = match &sel.target_dir {
        Some(d) => cwd.join(d),
        None => dirs.0.clone(),
    };
    let scratch = target_dir.join("xcache").join("verify");
    remove_scratch(&scratch)?;
    // A build dir apart (`build.build-dir`) would keep the user's units fresh for cargo
    // and take the verify build's: it is the scratch dir too.
    let build_dir_apart = dirs.1 != dirs.0;
    args.build.cargo_args = with_target_dir(&args.build.cargo_args, &scratch, build_dir_apart);
    // A check never writes the shared store.
    args.build.read_only = true;
    let mode = BuildMode {
        verify: Some(sample),
        ..BuildMode::default()
    };
    let outcome = run_build(crate::plan::CargoCommand::Build, args.build, &mode)?;
    let _ = remove_scratch(&scratch);
    let table = VerifyTable::from_events(&outcome.events);
    print!("{}", table.render(sample));
    if outcome.code != 0 {
        return Ok(outcome.code);
    }
    Ok(if table.differs() > 0 { 1 } else { 0 })
}

/// The target directory and build directory cargo would use, from `cargo metadata
/// --no-deps` (which reads `CARGO_TARGET_DIR`, `CARGO_BUILD_BUILD_DIR` and cargo's
/// configuration the way the build will; a cargo without build dirs names none, and it
/// is the target dir).
fn directories(
    cargo: &Path,
    cwd: &Path,
    manifest: Option<&Path>,
) -> Result<(PathBuf, PathBuf), CliError> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.cargo_path(cargo).current_dir(cwd).no_deps();
    if let Some(m) = manifest {
        cmd.manifest_path(m);
    }
    let md = cmd
        .exec()
        .map_err(|e| crate::errors::metadata_error(&e, manifest, cwd))?;
    let target = md.target_directory.into_std_path_buf();
    let build = md
        .build_directory
        .map_or_else(|| target.clone(), |b| b.into_std_path_buf());
    Ok((target, build))
}

fn remove_scratch(dir: &Path) -> Result<(), CliError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::WriteReport {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The cargo arguments with any `--target-dir` replaced by `dir`, and with
/// `build_dir_too` the build dir set to it as well (`--config build.build-dir`, which
/// wins over the variable and the files).
fn with_target_dir(args: &[String], dir: &Path, build_dir_too: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut it = args.iter();
    let mut tail = Vec::new();
    while let Some(a) = it.next() {
        if a == "--" {
            tail.push(a.clone());
            tail.extend(it.by_ref().cloned());
            break;
        }
        if a == "--target-dir" {
            it.next();
        } else if !a.starts_with("--target-dir=") {
            out.push(a.clone());
        }
    }
    out.push("--target-dir".into());
    out.push(dir.display().to_string());
    if build_dir_too {
        let path = toml::Value::String(dir.display().to_string());
        out.push("--config".into());
        out.push(format!("build.build-dir={path}"));
    }
    out.extend(tail);
    out
}

/// One checked hit.
struct Row {
    unit: String,
    key: String,
    verdict: HitVerdict,
    detail: Vec<String>,
}

/// What the verify build's events say, ready to print.
struct VerifyTable {
    hits: usize,
    rows: Vec<Row>,
}

impl VerifyTable {
    fn from_events(events: &[UnitEvent]) -> VerifyTable {
        let hits = events
            .iter()
            .filter(|e| e.unit.outcome == Outcome::Hit)
            .count();
        let mut rows: Vec<Row> = events
            .iter()
            .filter_map(|e| {
                let v = e.verify.as_ref()?;
                let u = &e.unit;
                let mut detail: Vec<String> =
                    v.files.iter().map(|f| format!("differs: {f}")).collect();
                detail.extend(v.missed.iter().map(|m| format!("key missed: {m}")));
                detail.extend(v.note.iter().map(|n| format!("note: {n}")));
                Some(Row {
                    unit: format!(
                        "{} {} ({}{})",
                        u.package,
                        u.version,
                        u.kind,
                        u.target
                            .as_deref()
                            .map(|t| format!(", {t}"))
                            .unwrap_or_default()
                    ),
                    key: u.key.clone().unwrap_or_default(),
                    verdict: v.verdict,
                    detail,
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.verdict != HitVerdict::Differs, &a.unit)
                .cmp(&(b.verdict != HitVerdict::Differs, &b.unit))
        });
        VerifyTable { hits, rows }
    }

    fn count(&self, v: HitVerdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == v).count()
    }

    fn differs(&self) -> usize {
        self.count(HitVerdict::Differs)
    }

    fn render(&self, sample: u8) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let width = self
            .rows
            .iter()
            .map(|r| r.unit.len())
            .max()
            .unwrap_or(4)
            .max(4);
        if !self.rows.is_empty() {
            let _ = writeln!(s, "{:width$}  {:16}  verdict", "unit", "key");
            for r in &self.rows {
                let key = r.key.get(..16).unwrap_or(&r.key);
                let _ = writeln!(s, "{:width$}  {key:16}  {}", r.unit, r.verdict.as_str());
                for d in &r.detail {
                    let _ = writeln!(s, "    {d}");
                }
            }
        }
        let _ = writeln!(
            s,
            "verify: {} hits, {} checked ({sample}% sample): {} same, {} differ, {} not reproducible, {} not checked",
            self.hits,
            self.rows.len(),
            self.count(HitVerdict::Same),
            self.differs(),
            self.count(HitVerdict::NotReproducible),
            self.count(HitVerdict::NotChecked),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_is_replaced() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = Path::new("/s");
        assert_eq!(
            with_target_dir(
                &args(&["--release", "--target-dir", "t", "-p", "a"]),
                d,
                false
            ),
            args(&["--release", "-p", "a", "--target-dir", "/s"])
        );
        assert_eq!(
            with_target_dir(
                &args(&["--target-dir=t", "--", "--target-dir", "x"]),
                d,
                false
            ),
            args(&["--target-dir", "/s", "--", "--target-dir", "x"])
        );
        assert_eq!(
            with_target_dir(&args(&["--", "x"]), Path::new("/s \"q\""), true),
            args(&[
                "--target-dir",
                "/s \"q\"",
                "--config",
                "build.build-dir='/s \"q\"'",
                "--",
                "x"
            ])
        );
    }
}
