//! The environment read whole. Main function: [`whole_env_inputs`].
//!
//! A process can use a variable without asking for it by name: Rust's
//! `std::env::vars()`, a shell, `make`, Perl or Python taking every variable in, a read
//! of `/proc/self/environ`. The observer sees that the environment was read whole (its
//! guard on the `environ` array, `preload.c`), not which variables mattered, so such a
//! run is keyed on every variable it could see, except:
//! - those no key takes whoever reads them ([`super::is_ignored_var`]: this program's own
//!   settings and hand-offs, the jobserver, the terminal, temporary directories; the
//!   book says why for each);
//! - those the user names in `XCACHE_ENV_IGNORE` (names, or prefixes ending in `*`).
//!
//! A walk whose use is known reaches fewer variables ([`Reach`]): the `cc` crate's copy
//! of the environment is keyed on the variables its code consults (`super::cc_env`).
//!
//! Besides each variable's value, two inputs say which variables there were, so that one
//! added or removed is seen: `env-set user` (the names cargo does not set), judged
//! wherever the record is judged, and `env-set cargo` (the names cargo sets for the
//! unit), judged where cargo's values are known and otherwise taken to hold, as cargo's
//! own fingerprint of the unit covers them. Each input's name carries the reach and the
//! ignore list it was recorded with, so the judge leaves out exactly what the recording
//! did.

use std::collections::BTreeMap;

use super::{bound_roots, is_ignored_var, var_inputs};
use crate::config::EnvIgnore;
use crate::key::{Input, InputKind, PathMap, is_cargo_set_var};

impl EnvIgnore {
    /// True for a variable a whole-environment read is keyed on.
    pub fn counts(&self, name: &str) -> bool {
        !is_ignored_var(name) && !self.matches(name)
    }
}

/// Which variables a read of the whole environment is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every variable: a walk whose use is not known.
    All,
    /// Those the `cc` crate's copy of the environment may be consulted for
    /// (`super::cc_env`).
    CcSnapshot,
}

impl Reach {
    fn id(self) -> Option<&'static str> {
        match self {
            Reach::All => None,
            Reach::CcSnapshot => Some(super::cc_env::MODEL),
        }
    }

    fn from_id(id: &str) -> Option<Reach> {
        (id == super::cc_env::MODEL).then_some(Reach::CcSnapshot)
    }

    /// A variable the reader only searches, keyed by what the searches found (the
    /// caller adds those inputs) and by whether it is set, not by its value: PATH for the
    /// `cc` crate's copy.
    fn searches_only(self, name: &str) -> bool {
        self == Reach::CcSnapshot && name == "PATH"
    }

    fn reaches(self, name: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::CcSnapshot => super::cc_env::CcSnapshot::consults(name),
        }
    }
}

/// The two parts of the set of names.
const USER: &str = "user";
const CARGO: &str = "cargo";

/// `<part>[ only=<reach>][ ignore=<list>]`
fn set_name(part: &str, reach: Reach, ignore: &EnvIgnore) -> String {
    let mut name = part.to_string();
    if let Some(id) = reach.id() {
        name.push_str(" only=");
        name.push_str(id);
    }
    if !ignore.patterns().is_empty() {
        name.push_str(" ignore=");
        name.push_str(&ignore.patterns().join(","));
    }
    name
}

fn parse_set_name(name: &str) -> Option<(&str, Reach, EnvIgnore)> {
    let mut words = name.split(' ');
    let part = words.next()?;
    let mut rest = words.next();
    let reach = match rest.and_then(|w| w.strip_prefix("only=")) {
        Some(id) => {
            rest = words.next();
            Reach::from_id(id)?
        }
        None => Reach::All,
    };
    let ignore = match rest {
        Some(w) => EnvIgnore::parse(w.strip_prefix("ignore=")?).ok()?,
        None => EnvIgnore::default(),
    };
    (words.next().is_none() && matches!(part, USER | CARGO)).then_some((part, reach, ignore))
}

/// The state of one part: its names, sorted, as a JSON array (unambiguous whatever the
/// names hold).
fn set_state<'n>(
    part: &str,
    reach: Reach,
    ignore: &EnvIgnore,
    names: impl Iterator<Item = &'n str>,
) -> String {
    let mut v: Vec<&str> = names
        .filter(|n| {
            ignore.counts(n) && reach.reaches(n) && (is_cargo_set_var(n) == (part == CARGO))
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    serde_json::to_string(&v).unwrap_or_default()
}

/// The inputs of a run that read its environment `env` whole: every variable that
/// counts and that `reach` reaches, through [`var_inputs`] (so a value naming a root binds the unit, except the
/// `unbound` ones, as when it is asked for by name), and the two sets of names. A
/// variable whose value the unit's first-level key holds already (`keyed_elsewhere`: what
/// cargo sets for the unit, a run's C toolchain variables) adds only its bindings.
pub fn whole_env_inputs(
    env: &BTreeMap<String, String>,
    pm: &PathMap,
    unbound: &[&str],
    keyed_elsewhere: fn(&str) -> bool,
    reach: Reach,
) -> Vec<Input> {
    let ignore = EnvIgnore::from_env(env);
    let mut out = Vec::new();
    for (name, value) in env {
        if !ignore.counts(name) || !reach.reaches(name) || reach.searches_only(name) {
            continue;
        }
        if keyed_elsewhere(name) {
            if !super::classify::is_unbound(unbound, name) {
                out.extend(bound_roots(value, pm));
            }
        } else {
            out.extend(var_inputs(name, Some(value), pm, unbound));
        }
    }
    for part in [USER, CARGO] {
        out.push(Input::new(
            InputKind::EnvSet,
            set_name(part, reach, &ignore),
            set_state(part, reach, &ignore, env.keys().map(String::as_str)),
        ));
    }
    out
}

/// What a recorded set (`name` as [`whole_env_inputs`] wrote it) is now, given the names
/// the environment has now; `None` for a name this version does not know.
pub fn env_set_now<'n>(name: &str, names: impl Iterator<Item = &'n str>) -> Option<String> {
    let (part, reach, ignore) = parse_set_name(name)?;
    Some(set_state(part, reach, &ignore, names))
}

/// True for the part cargo sets for the unit.
pub fn is_cargo_part(name: &str) -> bool {
    parse_set_name(name).is_some_and(|(part, _, _)| part == CARGO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs a whole read of `vars` makes with `reach`, as `kind name state` lines.
    fn keyed(vars: &[(&str, &str)], reach: Reach) -> Vec<String> {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pm = PathMap::new(std::path::Path::new("/ws"), None, None);
        whole_env_inputs(&env, &pm, &[], |_| false, reach)
            .iter()
            .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
            .collect()
    }

    #[test]
    fn ignore_lists_parse_and_match() {
        let i = EnvIgnore::parse("RUNNER_*, HOSTNAME,").unwrap();
        assert!(!i.counts("RUNNER_NAME"));
        assert!(!i.counts("HOSTNAME"));
        assert!(i.counts("HOSTNAMES"));
        assert!(!i.counts("XCACHE_DIR"));
        assert!(i.counts("HOME"));
        let e = EnvIgnore::parse("GOOD,bad-name").unwrap_err();
        assert!(e.contains("`bad-name`"), "{e}");
        assert!(EnvIgnore::parse("*").is_err());
    }

    #[test]
    fn sets_are_split_and_judged_with_the_recorded_list() {
        let names = keyed(
            &[
                ("HOME", "/h"),
                ("RUNNER_X", "1"),
                ("CARGO_FEATURE_A", "1"),
                ("TERM", "xterm"),
                (crate::config::vars::ENV_IGNORE, "RUNNER_*"),
            ],
            Reach::All,
        );
        assert_eq!(
            names,
            [
                "env CARGO_FEATURE_A =1",
                "env HOME =/h",
                "env-set user ignore=RUNNER_* [\"HOME\"]",
                "env-set cargo ignore=RUNNER_* [\"CARGO_FEATURE_A\"]",
            ]
        );
        // Judged now: another RUNNER_* changes nothing, a new variable does.
        let now = ["HOME", "RUNNER_Y", "TERM"];
        assert_eq!(
            env_set_now("user ignore=RUNNER_*", now.into_iter()).unwrap(),
            "[\"HOME\"]"
        );
        assert_eq!(
            env_set_now("user", now.into_iter()).unwrap(),
            "[\"HOME\",\"RUNNER_Y\"]"
        );
        assert!(is_cargo_part("cargo ignore=RUNNER_*"));
        assert!(env_set_now("other", now.into_iter()).is_none());
    }

    #[test]
    fn the_cc_copy_is_keyed_on_what_cc_consults_and_judged_alike() {
        let names = keyed(
            &[
                ("HOME", "/h"),
                ("CC", "gcc"),
                ("CFLAGS_x86_64_unknown_linux_gnu", "-O1"),
                ("TARGET", "x86_64-unknown-linux-gnu"),
                ("RUNNER_NAME", "r1"),
                ("PATH", "/usr/bin:/bin"),
            ],
            Reach::CcSnapshot,
        );
        assert_eq!(
            names,
            [
                "env CC =gcc",
                "env CFLAGS_x86_64_unknown_linux_gnu =-O1",
                "env TARGET =x86_64-unknown-linux-gnu",
                "env-set user only=cc1 [\"CC\",\"CFLAGS_x86_64_unknown_linux_gnu\",\"PATH\"]",
                "env-set cargo only=cc1 [\"TARGET\"]",
            ]
        );
        // PATH is keyed by whether it is set (its searches by what they found, which
        // the classifier adds), not by its value. Judged with the same reach: another
        // HOME or runner changes nothing, a new spelling of a flag variable does.
        let now = ["CC", "CFLAGS_x86_64_unknown_linux_gnu", "HOME", "RUNNER_X"];
        assert_eq!(
            env_set_now("user only=cc1", now.into_iter()).unwrap(),
            "[\"CC\",\"CFLAGS_x86_64_unknown_linux_gnu\"]"
        );
        let added = ["CC", "CFLAGS_x86_64_unknown_linux_gnu", "HOST_CFLAGS"];
        assert!(
            env_set_now("user only=cc1", added.into_iter())
                .unwrap()
                .contains("HOST_CFLAGS")
        );
        assert!(is_cargo_part("cargo only=cc1 ignore=RUNNER_*"));
        assert!(env_set_now("user only=cc9", now.into_iter()).is_none());
        assert!(env_set_now("user only=cc1 ignore=A extra", now.into_iter()).is_none());
    }
}
