//! What differs between a unit's key now and the nearest one recorded for it: the
//! types a wrapper's event carries and the report explains (`report::explain_miss`
//! makes them).

use serde::{Deserialize, Serialize};

/// What part of a key differed. Each code has a section in the book's report page.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
pub enum DiffKind {
    /// No earlier key of this unit was recorded (first build, or history dropped it).
    FirstSeen,
    /// The same key was recorded before, but no recorded result held: an input the
    /// history does not keep (a listing, a probed path) changed, or the entry is not in
    /// the store now (evicted by gc, or stored elsewhere).
    NotInStore,
    /// The package's version (from the lockfile).
    LockfileVersion,
    Compiler,
    /// A build-script run's script: the executable differs (its `build.rs`, or what
    /// it was compiled with, changed; its own unit's cause says what).
    BuildScript,
    /// A rustc argument (profile setting, RUSTFLAGS, `--cfg`, …).
    Flag,
    /// A `--cfg feature="…"` (for a build-script run, a `CARGO_FEATURE_*` variable).
    Feature,
    /// A variable cargo or rustc reads (its value is never shown).
    EnvVar,
    /// A value a `links` dependency's build script passed on (`DEP_<links>_<key>`).
    DepValue,
    /// A dependency's key (`--extern`).
    Dependency,
    /// What a `links` dependency's run left in the target dir (the directory a
    /// `DEP_*` variable names: headers, libraries).
    DepOutput,
    /// The crate root or the directory rustc ran in.
    SourcePath,
    /// A file the compile read (from its dep-info or the observer).
    SourceFile,
    /// A variable the compile read (`env!`, `option_env!`, a build script's read).
    ReadEnvVar,
    /// The machine root the outputs were bound to (another checkout or target dir).
    Root,
    /// The linker, or a native library.
    Linker,
    /// A program a build-script run may call (`cc`, `c++`, `ar`, or what `CC`/`AR`
    /// name): its file or its `--version` differs.
    Tool,
    /// Another recorded input (a listing, a link, the host CPU).
    Input,
    /// A variable the cache adds to a build-script run (the C debug-info path maps),
    /// shown as keyed: roots by alias, the user's own part by its digest.
    AddedVar,
}

/// One difference: what, which one, and the two values where they may be shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub what: DiffKind,
    /// Which flag, feature, variable, dependency or file.
    #[serde(default)]
    pub name: Option<String>,
    /// Before and now (`None`: absent then / now; never a variable's value).
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub now: Option<String>,
}

/// Why a unit missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissCause {
    /// The earlier key compared with: its first-level key and when it was recorded.
    #[serde(default)]
    pub nearest_l1: Option<String>,
    #[serde(default)]
    pub nearest_at_ms: Option<u64>,
    /// What differed, most telling first (at most `MAX_SHOWN`, 12).
    pub differences: Vec<Difference>,
    /// How many differences there were in all.
    pub total: usize,
    /// What to do about it, where something can be done.
    #[serde(default)]
    pub hint: Option<String>,
}
