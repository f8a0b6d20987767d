//! One recorded input of a unit: what a compile or a build-script run read, and what it
//! found. Main type: [`Input`].
//!
//! A unit's entry key covers its first-level key and every input it recorded, so two
//! runs with equal entry keys read the same things and found the same states. Whether a
//! recorded input still holds *now* is decided in one place only, the judge.

use serde::{Deserialize, Serialize};

use super::{Key, KeyHasher};

/// What kind of thing an input names, and so how its state is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// A path: its contents when it was read, else whether it existed and as what.
    Path,
    /// A directory whose entries were listed.
    Listing,
    /// A file or a whole tree a build script declared (`rerun-if-changed`).
    Tree,
    /// A path whose symbolic link target was read.
    Link,
    /// A path that was resolved to its real path (`realpath`).
    Canonical,
    /// An environment variable that was read.
    Env,
    /// Which variables there were, for a run that read the environment whole (name:
    /// the part, `user` or `cargo`, and the ignore list; see `observe::whole_env`).
    EnvSet,
    /// A built artifact, by identity (`key::artifact_identity`): what a unit was built
    /// against.
    Identity,
    /// A machine root the outputs are bound to (its token, and its real path).
    Root,
    /// What `-C target-cpu=native` means on this host.
    HostCpu,
    /// The linker a unit used (name: the request, JSON), by its identity.
    Linker,
    /// A program looked up by name through PATH (name: the program's name): what the
    /// search finds, the first executable file's contents or `absent`. Keyed instead of
    /// the PATH string, so machines whose PATH differs but finds the same programs share.
    Lookup,
    /// A path probed in the directories above a machine root, named from the root (a
    /// walk up from the checkout looking for `.git`): see [`above`].
    Above,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Path => "path",
            InputKind::Listing => "listing",
            InputKind::Tree => "tree",
            InputKind::Link => "link",
            InputKind::Canonical => "canonical",
            InputKind::Env => "env",
            InputKind::EnvSet => "env-set",
            InputKind::Identity => "identity",
            InputKind::Root => "root",
            InputKind::HostCpu => "host-cpu",
            InputKind::Linker => "linker",
            InputKind::Lookup => "lookup",
            InputKind::Above => "above",
        }
    }
}

/// One input as recorded. `name` is a tokenized path (`@@xcache:ws@@/src/lib.rs`), a
/// variable name, a root token, …; `state` is what was found, in the kind's own words
/// (see [`state`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Input {
    pub kind: InputKind,
    pub name: String,
    pub state: String,
}

/// The states inputs record. Every state is a short string, so that what a lookup finds
/// now can be compared with what was recorded, whatever the kind.
pub mod state {
    /// Nothing at the path (or a component of it is not a directory).
    pub const ABSENT: &str = "absent";
    /// A directory at the path (existence only).
    pub const DIR: &str = "dir";
    /// A file at the path (existence only: it was asked about, not read).
    pub const FILE: &str = "file";
    /// Something else at the path (a socket, a device).
    pub const OTHER: &str = "other";
    /// A path that is not a symbolic link (for [`super::InputKind::Link`]).
    pub const NOT_LINK: &str = "not-link";
    /// An unset variable (a set one records `=` and its value).
    pub const UNSET: &str = "unset";

    /// A file read: its content digest.
    pub fn contents(digest: &crate::key::Key) -> String {
        format!("file:{digest}")
    }

    /// A variable set to `value` (normalized).
    pub fn value(value: &str) -> String {
        format!("={value}")
    }
}

impl Input {
    pub fn new(kind: InputKind, name: impl Into<String>, state: impl Into<String>) -> Input {
        Input {
            kind,
            name: name.into(),
            state: state.into(),
        }
    }

    /// An environment variable: its normalized value, or unset.
    pub fn env(name: &str, value: Option<&str>) -> Input {
        Input::new(
            InputKind::Env,
            name,
            value.map_or_else(|| state::UNSET.to_string(), state::value),
        )
    }

    /// The form hashed into keys: kind, name and state, separated by NUL bytes (none of
    /// them can hold one).
    pub fn canonical(&self) -> String {
        format!("{}\0{}\0{}", self.kind.as_str(), self.name, self.state)
    }
}

/// Names of [`InputKind::Above`] inputs: a path probed in a directory above a machine
/// root, named by the root (its anchor, a tokenized path), which directories above it
/// ([`above::Spec`]), and the path below each (`rel`, empty for the directory itself). A program
/// that walks up from where it runs (git looking for `.git`, a tool for its config file)
/// reads the directories above the checkout: in another checkout it reads those above
/// that one, which are what must be checked there, not the first checkout's.
///
/// The three parts are joined by tabs; paths holding a tab are never named so.
pub mod above {
    /// Which directories above the anchor.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Spec {
        /// Every one, up to `/`: the path's state is the same in each.
        Every,
        /// The `n`th (1: the anchor's parent).
        Level(usize),
        /// How many there are (the state is `depth:<n>`; `rel` is empty).
        Depth,
    }

    pub fn name(anchor: &str, spec: Spec, rel: &str) -> String {
        let spec = match spec {
            Spec::Every => "*".to_string(),
            Spec::Level(n) => n.to_string(),
            Spec::Depth => "depth".to_string(),
        };
        format!("{anchor}\t{spec}\t{rel}")
    }

    /// The anchor, spec and path of a name [`name`] made.
    pub fn parse(name: &str) -> Option<(&str, Spec, &str)> {
        let mut parts = name.split('\t');
        let (anchor, spec, rel) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let spec = match spec {
            "*" => Spec::Every,
            "depth" => Spec::Depth,
            n => Spec::Level(n.parse().ok().filter(|n| *n > 0)?),
        };
        Some((anchor, spec, rel))
    }

    /// The directories above `anchor`, nearest first: its lexical ancestors, as a program
    /// that walks up from a directory it got from `getcwd` finds them. What is recorded
    /// (`observe::above`) and what is judged (`judge::above_state`) both count from here.
    pub fn dirs(anchor: &std::path::Path) -> impl Iterator<Item = &std::path::Path> {
        anchor.ancestors().skip(1)
    }

    /// The state of a [`Spec::Depth`] input.
    pub fn depth_state(n: usize) -> String {
        format!("depth:{n}")
    }
}

/// Sorts and deduplicates inputs, the form every key and record holds them in. Two
/// records of one name with different states cannot both hold; both are kept, so such
/// a set never matches anything.
pub fn normalize_inputs(inputs: &mut Vec<Input>) {
    inputs.sort();
    inputs.dedup();
}

/// `inputs` without the roots a variant is bound to ([`InputKind::Root`]), normalized:
/// what the unit was made of, wherever the roots are.
pub fn without_roots(inputs: &[Input]) -> Vec<Input> {
    let mut rest: Vec<Input> = inputs
        .iter()
        .filter(|i| i.kind != InputKind::Root)
        .cloned()
        .collect();
    normalize_inputs(&mut rest);
    rest
}

/// The entry key: the first-level key plus every recorded input. `inputs` must be
/// normalized ([`normalize_inputs`]).
pub fn entry_key(l1: &Key, inputs: &[Input]) -> Key {
    let listed: Vec<String> = inputs.iter().map(Input::canonical).collect();
    KeyHasher::new("unit-entry")
        .key("l1", l1)
        .list("inputs", listed.iter().map(String::as_str))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_key_covers_kind_name_and_state() {
        let l1 = Key::digest(b"l1");
        let a = Input::new(InputKind::Path, "@@xcache:ws@@/a", state::ABSENT);
        let keys = [
            entry_key(&l1, std::slice::from_ref(&a)),
            entry_key(
                &l1,
                &[Input::new(InputKind::Path, "@@xcache:ws@@/a", state::FILE)],
            ),
            entry_key(
                &l1,
                &[Input::new(
                    InputKind::Path,
                    "@@xcache:ws@@/b",
                    state::ABSENT,
                )],
            ),
            entry_key(
                &l1,
                &[Input::new(
                    InputKind::Listing,
                    "@@xcache:ws@@/a",
                    state::ABSENT,
                )],
            ),
            entry_key(&Key::digest(b"other"), &[a]),
            entry_key(&l1, &[]),
        ];
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_ne!(
            Input::env("X", None).canonical(),
            Input::env("X", Some("unset")).canonical()
        );
    }
}
