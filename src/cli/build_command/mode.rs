//! What a caller of the build pipeline says and gets back: [`BuildMode`], how a build
//! differs from `cargo xcache build` (`warm`, `verify`), and [`BuildOutcome`], what it
//! left behind.

use std::path::PathBuf;

use crate::report::Verbosity;

/// How a build differs from `cargo xcache build` (`warm` builds a skeleton).
#[derive(Clone, Debug, Default)]
pub(in crate::cli) struct BuildMode {
    /// Run cargo here instead of the current directory.
    pub cwd: Option<PathBuf>,
    /// Directories of packages whose sources are placeholders: never stored nor seeded.
    pub placeholders: Vec<PathBuf>,
    /// `cargo xcache verify`: the percentage of hits the wrapper compiles again and
    /// compares; nothing is seeded, so every unit goes through the wrapper.
    pub verify: Option<u8>,
}

/// What a build left behind.
pub(in crate::cli) struct BuildOutcome {
    /// cargo's exit code.
    pub code: i32,
    pub target_dir: PathBuf,
    /// Where cargo kept the units (`graph::BuildPlan::build_dir`).
    pub build_dir: PathBuf,
    /// What the wrapper reported, unit by unit.
    pub events: Vec<crate::wrapper::UnitEvent>,
    /// How much of ours the build prints (`-q`, `-v`, `--color`).
    pub verbosity: Verbosity,
}
