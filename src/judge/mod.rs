//! The one judge of whether a recorded result still holds here and now. Main type:
//! [`Judge`].
//!
//! Every cached thing — a rustc unit's entry, a build-script run, a seed pack — is
//! recorded with the inputs it read (`key::Input`). Whoever asks whether such a record
//! may be used — the wrapper before restoring, the build-script shim before replaying,
//! seeding before planting, prefetch before downloading — asks [`Judge::check`], which
//! observes each input as it is now and compares. There is no second copy of this
//! logic: seeding can never be looser than the wrapper.
//!
//! What "now" means is the caller's [`Here`]: the machine roots, the environment, and
//! how to treat what cannot be known yet ([`Mode`]).

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::key::{
    above_state, canonical_state, empty_listing_state, link_state, listing_state, lookup_state,
    path_state,
};

use crate::key::{Input, InputKind, PathMap, RootKind, link_input_identity, state as st};

/// How inputs that cannot be observed yet are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything is observed; what cannot be known does not hold. The wrapper and the
    /// shim, and seeding's second pass.
    Exact,
    /// Before planting: inputs inside the target dir are put aside for a check after
    /// planting ([`Judge::check`] returns them); the rest as [`Mode::Exact`].
    Plant,
    /// Prefetch's prediction: inputs inside the target dir and variables that only cargo
    /// sets are taken to hold. A wrong prediction costs a download, never a build:
    /// whatever is downloaded is judged again, exactly, before it is used.
    Predict,
}

/// How a variable is found now.
pub type EnvLookup<'a> = Box<dyn Fn(&str) -> EnvNow + Sync + 'a>;
/// What `-C target-cpu=native` means now.
pub type CpuLookup<'a> = Box<dyn Fn() -> Option<String> + Sync + 'a>;
/// The names of the variables the unit's environment has now (`None`: not known).
pub type EnvNames<'a> = Box<dyn Fn() -> Option<Vec<String>> + Sync + 'a>;
/// A linker request's identity now.
pub type LinkerLookup<'a> = Box<dyn Fn(&str) -> Option<String> + Sync + 'a>;

/// Where the judge looks.
pub struct Here<'a> {
    /// The machine roots (checkout, target dir, `CARGO_HOME`) that tokens expand to.
    pub pm: PathMap,
    /// A variable's raw value now.
    pub env: EnvLookup<'a>,
    /// Which variables there are (for runs that read the environment whole).
    pub env_names: EnvNames<'a>,
    /// What `-C target-cpu=native` means on this host, if it can be found.
    pub host_cpu: CpuLookup<'a>,
    /// The identity key of a linker request (`key::linker_id`), if it can be found.
    pub linker: LinkerLookup<'a>,
    pub mode: Mode,
}

/// What a variable is here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvNow {
    Set(String),
    Unset,
    /// Cargo sets it for the unit, and cargo's own fingerprint of the unit covers its
    /// value (asked before cargo runs, by seeding and prefetch): taken to hold.
    CargoSets,
    /// Not known here: does not hold.
    Unknown,
}

/// A variable as it will be for a unit cargo is about to run, asked before cargo runs
/// (by seeding and prefetch): the front-end's environment, except the variables cargo
/// sets for the unit itself, which cargo's own fingerprint of the unit covers (their
/// values that name a machine root are bound by a [`InputKind::Root`] input, which is
/// checked).
pub fn env_before_cargo(env: &crate::config::Env, name: &str) -> EnvNow {
    // `PWD` names the directory the unit runs in (a build script's shell sets it),
    // which is where cargo runs that unit.
    if crate::key::is_cargo_set_var(name) || name == "PWD" {
        return EnvNow::CargoSets;
    }
    match env.all().get(name) {
        Some(v) => EnvNow::Set(v.clone()),
        None => EnvNow::Unset,
    }
}

/// A recorded input that no longer holds, with what was found instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub input: Input,
    pub now: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: recorded {}, now {}",
            self.input.kind.as_str(),
            self.input.name,
            self.input.state,
            self.now
        )
    }
}

/// The state of an input that cannot be observed: it matches no recorded state.
pub const UNKNOWN: &str = "unknown";

/// What files and listings were found to be, by absolute path: the same whatever the
/// roots a judge names them from, so judges of one moment may share it.
type FileMemo = std::sync::Arc<Mutex<HashMap<(InputKind, std::path::PathBuf, bool), String>>>;

/// The judge, with a memo of what it observed (many records share inputs).
pub struct Judge<'a> {
    here: Here<'a>,
    memo: Mutex<HashMap<(InputKind, String, bool), String>>,
    files: FileMemo,
}

impl<'a> Judge<'a> {
    pub fn new(here: Here<'a>) -> Judge<'a> {
        Judge {
            here,
            memo: Mutex::new(HashMap::new()),
            files: FileMemo::default(),
        }
    }

    /// A judge for other roots (another unit's directory) that takes what `other` found
    /// files and listings to be as still true: for judges asked at the same moment
    /// (prefetch judges every recorded variant at once), so that a file that many
    /// records name is read once.
    pub fn sharing_files(here: Here<'a>, other: &Judge<'_>) -> Judge<'a> {
        Judge {
            here,
            memo: Mutex::new(HashMap::new()),
            files: std::sync::Arc::clone(&other.files),
        }
    }

    pub fn mode(&self) -> Mode {
        self.here.mode
    }

    /// Whether every input holds. `Ok` carries the inputs put aside ([`Mode::Plant`]),
    /// `Err` the first one that does not hold.
    pub fn check<'i>(&self, inputs: &'i [Input]) -> Result<Vec<&'i Input>, Mismatch> {
        let mut deferred = Vec::new();
        for input in inputs {
            if self.in_target(input) {
                match self.here.mode {
                    Mode::Predict => continue,
                    Mode::Plant => {
                        deferred.push(input);
                        continue;
                    }
                    Mode::Exact => {}
                }
            }
            let now = self.now(input);
            if now != input.state {
                if self.here.mode == Mode::Predict && now == UNKNOWN {
                    continue;
                }
                return Err(Mismatch {
                    input: input.clone(),
                    now,
                });
            }
        }
        Ok(deferred)
    }

    /// Whether every input holds, all observed now (the second pass after planting).
    pub fn check_now(&self, inputs: &[&Input]) -> Result<(), Mismatch> {
        for input in inputs {
            let now = self.now(input);
            if now != input.state {
                return Err(Mismatch {
                    input: (*input).clone(),
                    now,
                });
            }
        }
        Ok(())
    }

    fn in_target(&self, input: &Input) -> bool {
        matches!(
            input.kind,
            InputKind::Path
                | InputKind::Listing
                | InputKind::Tree
                | InputKind::Link
                | InputKind::Canonical
                | InputKind::Identity
                | InputKind::Above
        ) && input.name.starts_with(RootKind::Target.token())
    }

    /// The input's state now, observed as strongly as it was recorded (a file that was
    /// only asked about is not read).
    fn now(&self, input: &Input) -> String {
        let contents = input.state.starts_with("file:");
        let memo_key = (input.kind, input.name.clone(), contents);
        // Identities are observed each time: planting writes the artifacts they name.
        // Variables are cheap, and one cargo sets holds whatever was recorded. Files and
        // listings have a memo of their own, by absolute path (`observe_file`).
        let memoize = !matches!(
            input.kind,
            InputKind::Identity | InputKind::Env | InputKind::Path | InputKind::Listing
        );
        if memoize
            && let Some(s) = self
                .memo
                .lock()
                .ok()
                .and_then(|m| m.get(&memo_key).cloned())
        {
            return s;
        }
        let s = self.observe(input, contents);
        if memoize && let Ok(mut m) = self.memo.lock() {
            m.insert(memo_key, s.clone());
        }
        s
    }

    /// A file's or listing's state, through the memo judges may share.
    fn observe_file(
        &self,
        kind: InputKind,
        p: std::path::PathBuf,
        contents: bool,
        observe: impl FnOnce(&std::path::Path) -> String,
    ) -> String {
        let key = (kind, p, contents);
        if let Some(s) = self.files.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        let s = observe(&key.1);
        if let Ok(mut m) = self.files.lock() {
            m.insert(key, s.clone());
        }
        s
    }

    fn observe(&self, input: &Input, contents: bool) -> String {
        let pm = &self.here.pm;
        let path = || {
            let p = pm.expand_path(&input.name);
            (!PathMap::has_token(&p.to_string_lossy())).then_some(p)
        };
        match input.kind {
            InputKind::Path => path().map_or(UNKNOWN.into(), |p| {
                self.observe_file(input.kind, p, contents, |p| path_state(p, contents))
            }),
            InputKind::Listing => path().map_or(UNKNOWN.into(), |p| {
                self.observe_file(input.kind, p, contents, listing_state)
            }),
            InputKind::Tree => path().map_or(UNKNOWN.into(), |p| crate::key::tree_state(&p, pm)),
            InputKind::Link => path().map_or(UNKNOWN.into(), |p| crate::key::link_state(&p, pm)),
            InputKind::Canonical => {
                path().map_or(UNKNOWN.into(), |p| crate::key::canonical_state(&p, pm))
            }
            InputKind::Identity => path().map_or(UNKNOWN.into(), |p| {
                link_input_identity(&p).unwrap_or_else(|_| "unreadable".into())
            }),
            InputKind::Env => match (self.here.env)(&input.name) {
                EnvNow::Unknown => UNKNOWN.into(),
                EnvNow::CargoSets => input.state.clone(),
                EnvNow::Unset => st::UNSET.into(),
                EnvNow::Set(v) => st::value(&pm.normalize_text(&v)),
            },
            // The names cargo sets are known only once cargo runs the unit; before, its own
            // fingerprint of the unit covers them, as it covers their values.
            InputKind::EnvSet
                if self.here.mode != Mode::Exact && crate::observe::is_cargo_part(&input.name) =>
            {
                input.state.clone()
            }
            InputKind::EnvSet => (self.here.env_names)()
                .and_then(|names| {
                    crate::observe::env_set_now(&input.name, names.iter().map(String::as_str))
                })
                .unwrap_or_else(|| UNKNOWN.into()),
            InputKind::Root => RootKind::from_token(&input.name)
                .and_then(|k| pm.real_of(k))
                .map_or(UNKNOWN.into(), str::to_string),
            InputKind::HostCpu => (self.here.host_cpu)().unwrap_or_else(|| UNKNOWN.into()),
            InputKind::Linker => (self.here.linker)(&input.name).unwrap_or_else(|| UNKNOWN.into()),
            InputKind::Above => match crate::key::above::parse(&input.name) {
                Some((anchor, spec, rel)) => {
                    let anchor = pm.expand_path(anchor);
                    if PathMap::has_token(&anchor.to_string_lossy()) || !anchor.is_absolute() {
                        UNKNOWN.into()
                    } else {
                        above_state(&anchor, spec, rel, contents)
                    }
                }
                None => UNKNOWN.into(),
            },
            InputKind::Lookup => match (self.here.env)("PATH") {
                EnvNow::Set(v) => crate::key::lookup_state(&input.name, Some(&v)),
                EnvNow::Unset => crate::key::lookup_state(&input.name, None),
                EnvNow::CargoSets | EnvNow::Unknown => UNKNOWN.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
