//! Each verdict the judge gives, from a record and a state of the world: real files in
//! a temporary directory, variables and the rest given as closures. Recorded states
//! are made with the crate's own observers (`path_state`, `listing_state`, …), as a
//! recording makes them.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;
use crate::key::above::{self, Spec};
use crate::key::tree_state;
use crate::key::{Key, write_artifact_identity};

/// A checkout, its target dir inside it and a `CARGO_HOME` beside it, in a temporary
/// directory of its own (by its real path: the canonical state is judged by it).
struct Machine {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    ws: PathBuf,
    target: PathBuf,
    home: PathBuf,
}

impl Machine {
    fn new() -> Machine {
        Machine::at("ws")
    }

    /// A machine whose checkout is at `rel` below its temporary directory.
    fn at(rel: &str) -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let ws = base.join(rel);
        let target = ws.join("target");
        let home = base.join("cargo-home");
        for d in [&ws.join("src"), &target, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        Machine {
            _tmp: tmp,
            base,
            ws,
            target,
            home,
        }
    }

    fn pm(&self) -> PathMap {
        PathMap::new(&self.ws, Some(&self.target), Some(&self.home))
    }

    /// Writes `text` at `rel` below the checkout and returns its path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A place where nothing but this machine's roots are known: every variable unset,
    /// no names, no host CPU, no linker.
    fn here(&self, mode: Mode) -> Here<'static> {
        Here {
            pm: self.pm(),
            env: Box::new(|_| EnvNow::Unset),
            env_names: Box::new(|| None),
            host_cpu: Box::new(|| None),
            linker: Box::new(|_| None),
            mode,
        }
    }

    fn judge(&self, mode: Mode) -> Judge<'static> {
        Judge::new(self.here(mode))
    }
}

/// A path below the checkout, as recorded.
fn ws(rel: &str) -> String {
    format!("{}/{rel}", RootKind::Cwd.token())
}

/// A path below the target dir, as recorded.
fn tgt(rel: &str) -> String {
    format!("{}/{rel}", RootKind::Target.token())
}

fn input(kind: InputKind, name: impl Into<String>, state: impl Into<String>) -> Input {
    Input::new(kind, name, state)
}

/// The inputs put aside, or the mismatch.
fn verdict(j: &Judge, inputs: &[Input]) -> Result<Vec<Input>, Mismatch> {
    j.check(inputs)
        .map(|aside| aside.into_iter().cloned().collect())
}

/// What was found instead of `input`, which must not hold.
fn found(j: &Judge, input: &Input) -> String {
    let m = verdict(j, std::slice::from_ref(input)).expect_err("holds");
    assert_eq!(m.input, *input);
    m.now
}

fn holds(j: &Judge, inputs: &[Input]) -> bool {
    match verdict(j, inputs) {
        Ok(aside) => {
            assert!(aside.is_empty(), "put aside: {aside:?}");
            true
        }
        Err(_) => false,
    }
}

fn with_env(here: Here<'static>, vars: &[(&str, EnvNow)]) -> Here<'static> {
    let vars: Vec<(String, EnvNow)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Here {
        env: Box::new(move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map_or(EnvNow::Unset, |(_, v)| v.clone())
        }),
        ..here
    }
}

// Paths.

#[test]
fn a_file_that_is_unchanged_holds() {
    let m = Machine::new();
    let p = m.write("src/lib.rs", "fn a() {}");
    let i = input(InputKind::Path, ws("src/lib.rs"), path_state(&p, true));
    assert!(i.state.starts_with("file:"));
    assert!(holds(&m.judge(Mode::Exact), &[i]));
}

#[test]
fn a_file_whose_content_changed_does_not_hold() {
    let m = Machine::new();
    let p = m.write("src/lib.rs", "fn a() {}");
    let i = input(InputKind::Path, ws("src/lib.rs"), path_state(&p, true));
    std::fs::write(&p, "fn b() {}").unwrap();
    let now = found(&m.judge(Mode::Exact), &i);
    assert_eq!(now, path_state(&p, true));
    assert_ne!(now, i.state);
}

#[test]
fn a_path_probed_absent_that_now_exists_does_not_hold() {
    let m = Machine::new();
    let p = m.ws.join("src/probed.rs");
    let i = input(InputKind::Path, ws("src/probed.rs"), path_state(&p, false));
    assert_eq!(i.state, st::ABSENT);
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    m.write("src/probed.rs", "");
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::FILE);
}

#[test]
fn a_path_below_a_file_is_absent() {
    let m = Machine::new();
    let p = m.write("src/lib.rs", "");
    let i = input(
        InputKind::Path,
        ws("src/lib.rs/mod.rs"),
        path_state(&p.join("mod.rs"), false),
    );
    assert_eq!(i.state, st::ABSENT);
    assert!(holds(&m.judge(Mode::Exact), &[i]));
}

#[test]
fn a_file_only_asked_about_holds_whatever_its_content_but_not_once_removed() {
    let m = Machine::new();
    let p = m.write("build.rs", "one");
    let i = input(InputKind::Path, ws("build.rs"), path_state(&p, false));
    assert_eq!(i.state, st::FILE);
    std::fs::write(&p, "two").unwrap();
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::remove_file(&p).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::ABSENT);
}

#[test]
fn a_directory_replaced_by_a_file_does_not_hold() {
    let m = Machine::new();
    let d = m.ws.join("src/gen");
    std::fs::create_dir(&d).unwrap();
    let i = input(InputKind::Path, ws("src/gen"), path_state(&d, false));
    assert_eq!(i.state, st::DIR);
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::remove_dir(&d).unwrap();
    m.write("src/gen", "");
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::FILE);
}

/// The memo tells a file that was read from one that was only asked about.
#[test]
fn one_path_read_and_only_asked_about_is_judged_each_way() {
    let m = Machine::new();
    let p = m.write("src/lib.rs", "x");
    let inputs = [
        input(InputKind::Path, ws("src/lib.rs"), path_state(&p, false)),
        input(InputKind::Path, ws("src/lib.rs"), path_state(&p, true)),
    ];
    assert!(holds(&m.judge(Mode::Exact), &inputs));
    let mut reversed = inputs.clone();
    reversed.reverse();
    assert!(holds(&m.judge(Mode::Exact), &reversed));
}

#[test]
fn a_file_recorded_in_one_checkout_holds_in_another_with_the_same_content() {
    let (a, b) = (Machine::new(), Machine::new());
    let pa = a.write("src/lib.rs", "same");
    let i = input(InputKind::Path, ws("src/lib.rs"), path_state(&pa, true));
    b.write("src/lib.rs", "same");
    assert!(holds(&b.judge(Mode::Exact), std::slice::from_ref(&i)));
    b.write("src/lib.rs", "other");
    assert!(!holds(&b.judge(Mode::Exact), &[i]));
}

#[test]
fn a_path_under_a_root_this_machine_lacks_is_unknown() {
    let m = Machine::new();
    let p = m.home.join("registry/a.rs");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, "").unwrap();
    let name = format!("{}/registry/a.rs", RootKind::CargoHome.token());
    let i = input(InputKind::Path, name, path_state(&p, true));
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    let no_home = Here {
        pm: PathMap::new(&m.ws, Some(&m.target), None),
        ..m.here(Mode::Exact)
    };
    assert_eq!(found(&Judge::new(no_home), &i), UNKNOWN);
}

// Listings.

#[test]
fn a_listing_holds_until_an_entry_is_added_or_removed() {
    let m = Machine::new();
    m.write("src/a.rs", "");
    let dir = m.ws.join("src");
    let i = input(InputKind::Listing, ws("src"), listing_state(&dir));
    assert!(i.state.starts_with("list:"));
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    // A file's contents are no part of a listing.
    m.write("src/a.rs", "changed");
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    let b = m.write("src/b.rs", "");
    assert_eq!(found(&m.judge(Mode::Exact), &i), listing_state(&dir));
    std::fs::remove_file(&b).unwrap();
    std::fs::remove_file(m.ws.join("src/a.rs")).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), empty_listing_state());
}

#[test]
fn a_listing_sees_a_file_become_a_directory_of_the_same_name() {
    let m = Machine::new();
    let a = m.write("src/a", "");
    let i = input(
        InputKind::Listing,
        ws("src"),
        listing_state(&m.ws.join("src")),
    );
    std::fs::remove_file(&a).unwrap();
    std::fs::create_dir(&a).unwrap();
    assert!(found(&m.judge(Mode::Exact), &i).starts_with("list:"));
}

#[test]
fn an_empty_directory_a_missing_one_and_a_file_are_listed_as_such() {
    let m = Machine::new();
    let empty = m.ws.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let f = m.write("file", "");
    let inputs = [
        input(InputKind::Listing, ws("empty"), empty_listing_state()),
        input(InputKind::Listing, ws("missing"), st::ABSENT),
        input(InputKind::Listing, ws("file"), "not-dir"),
    ];
    assert_eq!(listing_state(&empty), empty_listing_state());
    assert_eq!(listing_state(&f), "not-dir");
    assert!(holds(&m.judge(Mode::Exact), &inputs));
    std::fs::create_dir(m.ws.join("missing")).unwrap();
    assert_eq!(
        found(&m.judge(Mode::Exact), &inputs[1]),
        empty_listing_state()
    );
}

// Declared trees.

#[test]
fn a_declared_tree_holds_until_a_file_in_it_changes() {
    let m = Machine::new();
    m.write("assets/a.txt", "a");
    m.write("assets/sub/b.txt", "b");
    let pm = m.pm();
    let i = input(
        InputKind::Tree,
        ws("assets"),
        tree_state(&m.ws.join("assets"), &pm),
    );
    assert!(i.state.starts_with("dir:"));
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    m.write("assets/sub/b.txt", "B");
    assert_eq!(
        found(&m.judge(Mode::Exact), &i),
        tree_state(&m.ws.join("assets"), &pm)
    );
}

#[test]
fn a_declared_tree_leaves_the_target_dir_out() {
    let m = Machine::new();
    m.write("src/lib.rs", "");
    let pm = m.pm();
    let i = input(
        InputKind::Tree,
        RootKind::Cwd.token(),
        tree_state(&m.ws, &pm),
    );
    std::fs::write(m.target.join("out.txt"), "built").unwrap();
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    m.write("src/new.rs", "");
    assert!(!holds(&m.judge(Mode::Exact), &[i]));
}

#[test]
fn a_declared_file_holds_by_its_contents_and_absent_when_removed() {
    let m = Machine::new();
    let p = m.write("wrapper.h", "int x;");
    let i = input(InputKind::Tree, ws("wrapper.h"), tree_state(&p, &m.pm()));
    assert!(i.state.starts_with("file:"));
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::remove_file(&p).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::ABSENT);
}

// Links and canonical paths.

#[test]
fn a_link_holds_until_it_is_pointed_elsewhere() {
    let m = Machine::new();
    let l = m.ws.join("current");
    symlink("v1", &l).unwrap();
    let i = input(InputKind::Link, ws("current"), link_state(&l, &m.pm()));
    assert_eq!(i.state, "link:v1");
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::remove_file(&l).unwrap();
    symlink("v2", &l).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), "link:v2");
    std::fs::remove_file(&l).unwrap();
    m.write("current", "");
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::NOT_LINK);
    std::fs::remove_file(&l).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::ABSENT);
}

#[test]
fn a_link_into_the_checkout_holds_in_a_moved_checkout() {
    let (a, b) = (Machine::new(), Machine::new());
    for m in [&a, &b] {
        symlink(m.ws.join("src"), m.ws.join("src-link")).unwrap();
    }
    let i = input(
        InputKind::Link,
        ws("src-link"),
        link_state(&a.ws.join("src-link"), &a.pm()),
    );
    assert_eq!(i.state, format!("link:{}", ws("src")));
    assert!(holds(&b.judge(Mode::Exact), &[i]));
}

#[test]
fn a_canonical_path_holds_in_a_moved_checkout_and_changes_with_its_link() {
    let (a, b) = (Machine::new(), Machine::new());
    for m in [&a, &b] {
        m.write("v1/lib.rs", "");
        m.write("v2/lib.rs", "");
        symlink("v1", m.ws.join("cur")).unwrap();
    }
    let i = input(
        InputKind::Canonical,
        ws("cur/lib.rs"),
        canonical_state(&a.ws.join("cur/lib.rs"), &a.pm()),
    );
    assert_eq!(i.state, format!("real:{}", ws("v1/lib.rs")));
    assert!(holds(&b.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::remove_file(b.ws.join("cur")).unwrap();
    symlink("v2", b.ws.join("cur")).unwrap();
    assert_eq!(
        found(&b.judge(Mode::Exact), &i),
        format!("real:{}", ws("v2/lib.rs"))
    );
    std::fs::remove_file(b.ws.join("cur")).unwrap();
    assert_eq!(found(&b.judge(Mode::Exact), &i), st::ABSENT);
}

// Artifact identities.

#[test]
fn an_artifact_holds_by_its_content_until_its_bytes_change() {
    let m = Machine::new();
    let p = m.target.join("libdep.rlib");
    std::fs::write(&p, "rlib one").unwrap();
    let i = input(
        InputKind::Identity,
        tgt("libdep.rlib"),
        link_input_identity(&p).unwrap(),
    );
    assert!(i.state.starts_with("content:"));
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::write(&p, "rlib two").unwrap();
    assert_eq!(
        found(&m.judge(Mode::Exact), &i),
        link_input_identity(&p).unwrap()
    );
    std::fs::remove_file(&p).unwrap();
    assert_eq!(found(&m.judge(Mode::Exact), &i), st::ABSENT);
}

#[test]
fn an_artifact_with_a_sidecar_holds_by_the_key_it_names() {
    let m = Machine::new();
    let p = m.target.join("libmacro.so");
    std::fs::write(&p, "so").unwrap();
    let key = Key::digest(b"entry");
    write_artifact_identity(&p, &crate::key::key_identity(&key)).unwrap();
    let i = input(
        InputKind::Identity,
        tgt("libmacro.so"),
        crate::key::key_identity(&key),
    );
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    // Rewritten (another size): the sidecar no longer speaks for it.
    std::fs::write(&p, "another so").unwrap();
    assert!(found(&m.judge(Mode::Exact), &i).starts_with("content:"));
}

/// Planting writes the artifacts identities name, between two checks of one judge;
/// files and listings are taken as they were for the moment the judge judges.
#[test]
fn an_identity_is_observed_at_each_check_and_a_file_once_per_judge() {
    let m = Machine::new();
    let art = m.target.join("libdep.rmeta");
    std::fs::write(&art, "one").unwrap();
    let src = m.write("src/lib.rs", "one");
    let id = input(
        InputKind::Identity,
        tgt("libdep.rmeta"),
        link_input_identity(&art).unwrap(),
    );
    let file = input(InputKind::Path, ws("src/lib.rs"), path_state(&src, true));
    let j = m.judge(Mode::Exact);
    assert!(holds(&j, &[id.clone(), file.clone()]));
    std::fs::write(&art, "two").unwrap();
    std::fs::write(&src, "two").unwrap();
    assert!(holds(&j, std::slice::from_ref(&file)));
    assert!(!holds(&j, &[id]));
    assert!(!holds(&m.judge(Mode::Exact), &[file]));
}

#[test]
fn judges_sharing_files_take_a_file_as_the_first_found_it() {
    let m = Machine::new();
    let src = m.write("src/lib.rs", "one");
    let file = input(InputKind::Path, ws("src/lib.rs"), path_state(&src, true));
    let first = m.judge(Mode::Predict);
    assert!(holds(&first, std::slice::from_ref(&file)));
    std::fs::write(&src, "two").unwrap();
    let sharing = Judge::sharing_files(m.here(Mode::Predict), &first);
    assert!(holds(&sharing, std::slice::from_ref(&file)));
    let alone = m.judge(Mode::Predict);
    assert!(!holds(&alone, &[file]));
}

// Variables.

#[test]
fn a_variable_with_the_recorded_value_holds() {
    let m = Machine::new();
    let j = Judge::new(with_env(
        m.here(Mode::Exact),
        &[("OPT", EnvNow::Set("1".into()))],
    ));
    assert!(holds(
        &j,
        &[Input::env("OPT", Some("1")), Input::env("NONE", None)]
    ));
}

#[test]
fn a_variable_whose_value_changed_does_not_hold() {
    let m = Machine::new();
    let j = Judge::new(with_env(
        m.here(Mode::Exact),
        &[("OPT", EnvNow::Set("2".into()))],
    ));
    assert_eq!(found(&j, &Input::env("OPT", Some("1"))), "=2");
}

#[test]
fn a_variable_now_unset_does_not_hold() {
    let m = Machine::new();
    let j = m.judge(Mode::Exact);
    assert_eq!(found(&j, &Input::env("OPT", Some("1"))), st::UNSET);
}

#[test]
fn a_variable_recorded_unset_that_is_now_set_does_not_hold() {
    let m = Machine::new();
    let j = Judge::new(with_env(
        m.here(Mode::Exact),
        &[("OPT", EnvNow::Set(String::new()))],
    ));
    assert_eq!(found(&j, &Input::env("OPT", None)), "=");
}

#[test]
fn a_variable_naming_the_checkout_holds_in_a_moved_checkout() {
    let (a, b) = (Machine::new(), Machine::new());
    let value = |m: &Machine| m.ws.join("include").to_string_lossy().into_owned();
    let i = Input::env("INCLUDE", Some(&a.pm().normalize_text(&value(&a))));
    assert_eq!(i.state, format!("={}", ws("include")));
    let j = Judge::new(with_env(
        b.here(Mode::Exact),
        &[("INCLUDE", EnvNow::Set(value(&b)))],
    ));
    assert!(holds(&j, std::slice::from_ref(&i)));
    let elsewhere = Judge::new(with_env(
        b.here(Mode::Exact),
        &[("INCLUDE", EnvNow::Set("/usr/include".into()))],
    ));
    assert_eq!(found(&elsewhere, &i), "=/usr/include");
}

#[test]
fn a_variable_cargo_sets_holds_whatever_was_recorded() {
    let m = Machine::new();
    for mode in [Mode::Exact, Mode::Plant, Mode::Predict] {
        let j = Judge::new(with_env(m.here(mode), &[("OUT_DIR", EnvNow::CargoSets)]));
        assert!(holds(&j, &[Input::env("OUT_DIR", Some("/anything"))]));
        assert!(holds(&j, &[Input::env("OUT_DIR", None)]));
    }
}

#[test]
fn a_variable_not_known_here_does_not_hold_unless_predicting() {
    let m = Machine::new();
    let vars = [("OPT", EnvNow::Unknown)];
    let i = Input::env("OPT", Some("1"));
    for mode in [Mode::Exact, Mode::Plant] {
        let j = Judge::new(with_env(m.here(mode), &vars));
        assert_eq!(found(&j, &i), UNKNOWN);
    }
    let j = Judge::new(with_env(m.here(Mode::Predict), &vars));
    assert!(holds(&j, &[i]));
}

#[test]
fn a_variable_is_looked_up_again_at_each_check() {
    let m = Machine::new();
    let value = Arc::new(Mutex::new("1".to_string()));
    let v = Arc::clone(&value);
    let j = Judge::new(Here {
        env: Box::new(move |_| EnvNow::Set(v.lock().unwrap().clone())),
        ..m.here(Mode::Exact)
    });
    let i = Input::env("OPT", Some("1"));
    assert!(holds(&j, std::slice::from_ref(&i)));
    *value.lock().unwrap() = "2".into();
    assert_eq!(found(&j, &i), "=2");
}

#[test]
fn env_before_cargo_takes_what_cargo_sets_to_hold_and_reads_the_rest() {
    let env = crate::config::Env::from_pairs([("HOME", "/h"), ("OUT_DIR", "/stale")]);
    for name in [
        "OUT_DIR",
        "CARGO_PKG_NAME",
        "DEP_Z_INCLUDE",
        "TARGET",
        "PWD",
    ] {
        assert_eq!(env_before_cargo(&env, name), EnvNow::CargoSets, "{name}");
    }
    assert_eq!(env_before_cargo(&env, "HOME"), EnvNow::Set("/h".into()));
    assert_eq!(env_before_cargo(&env, "CC"), EnvNow::Unset);
}

// The sets of variables of a run that read its environment whole.

fn set_state(part: &str, names: &[&str]) -> String {
    crate::observe::env_set_now(part, names.iter().copied()).unwrap()
}

fn with_names(here: Here<'static>, names: Option<&[&str]>) -> Here<'static> {
    let names: Option<Vec<String>> = names.map(|n| n.iter().map(|s| s.to_string()).collect());
    Here {
        env_names: Box::new(move || names.clone()),
        ..here
    }
}

#[test]
fn the_set_of_user_variables_holds_until_one_is_added() {
    let m = Machine::new();
    let names = ["HOME", "MY_SETTING", "CARGO_PKG_NAME"];
    let i = input(InputKind::EnvSet, "user", set_state("user", &names));
    let j = Judge::new(with_names(m.here(Mode::Exact), Some(&names)));
    assert!(holds(&j, std::slice::from_ref(&i)));
    // One cargo sets is no part of the user's set.
    let j = Judge::new(with_names(
        m.here(Mode::Exact),
        Some(&["HOME", "MY_SETTING", "CARGO_PKG_NAME", "CARGO_FEATURE_X"]),
    ));
    assert!(holds(&j, std::slice::from_ref(&i)));
    let more = ["HOME", "MY_SETTING", "MY_OTHER", "CARGO_PKG_NAME"];
    let j = Judge::new(with_names(m.here(Mode::Exact), Some(&more)));
    assert_eq!(found(&j, &i), set_state("user", &more));
    // Before cargo runs too.
    let j = Judge::new(with_names(m.here(Mode::Plant), Some(&more)));
    assert!(!holds(&j, &[i]));
}

#[test]
fn the_set_of_cargo_variables_is_taken_to_hold_before_cargo_runs_and_judged_after() {
    let m = Machine::new();
    let i = input(
        InputKind::EnvSet,
        "cargo",
        set_state("cargo", &["CARGO_PKG_NAME", "CARGO_FEATURE_X"]),
    );
    let now = ["CARGO_PKG_NAME"];
    for mode in [Mode::Plant, Mode::Predict] {
        let j = Judge::new(with_names(m.here(mode), None));
        assert!(holds(&j, std::slice::from_ref(&i)), "{mode:?}");
    }
    let j = Judge::new(with_names(m.here(Mode::Exact), Some(&now)));
    assert_eq!(found(&j, &i), set_state("cargo", &now));
}

#[test]
fn a_set_of_variables_is_unknown_without_the_names_or_with_a_name_not_understood() {
    let m = Machine::new();
    let user = input(InputKind::EnvSet, "user", set_state("user", &["HOME"]));
    let j = Judge::new(with_names(m.here(Mode::Exact), None));
    assert_eq!(found(&j, &user), UNKNOWN);
    let j = Judge::new(with_names(m.here(Mode::Plant), None));
    assert_eq!(found(&j, &user), UNKNOWN);
    let odd = input(InputKind::EnvSet, "someone", "[]");
    let j = Judge::new(with_names(m.here(Mode::Exact), Some(&[])));
    assert_eq!(found(&j, &odd), UNKNOWN);
}

// Roots, the host CPU and the linker.

#[test]
fn a_root_holds_at_the_same_path_only() {
    let (a, b) = (Machine::new(), Machine::new());
    let real = a.target.to_string_lossy().into_owned();
    let i = input(InputKind::Root, RootKind::Target.token(), real);
    for mode in [Mode::Exact, Mode::Plant, Mode::Predict] {
        assert!(holds(&a.judge(mode), std::slice::from_ref(&i)), "{mode:?}");
        // A root is never put aside nor taken to hold, wherever it points.
        assert_eq!(found(&b.judge(mode), &i), b.target.to_string_lossy());
    }
}

#[test]
fn a_root_this_machine_lacks_or_does_not_know_is_unknown() {
    let m = Machine::new();
    let j = Judge::new(Here {
        pm: PathMap::new(&m.ws, None, None),
        ..m.here(Mode::Exact)
    });
    let target = input(InputKind::Root, RootKind::Target.token(), "/t");
    assert_eq!(found(&j, &target), UNKNOWN);
    let odd = input(InputKind::Root, "@@xcache:elsewhere@@", "/t");
    assert_eq!(found(&m.judge(Mode::Exact), &odd), UNKNOWN);
}

#[test]
fn the_host_cpu_holds_when_it_means_the_same() {
    let m = Machine::new();
    let i = input(InputKind::HostCpu, "native", "znver3");
    let cpu = |c: Option<&'static str>| {
        Judge::new(Here {
            host_cpu: Box::new(move || c.map(str::to_string)),
            ..m.here(Mode::Exact)
        })
    };
    assert!(holds(&cpu(Some("znver3")), std::slice::from_ref(&i)));
    assert_eq!(found(&cpu(Some("skylake")), &i), "skylake");
    assert_eq!(found(&cpu(None), &i), UNKNOWN);
}

#[test]
fn a_linker_is_judged_by_the_identity_of_its_request_now() {
    let m = Machine::new();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let j = Judge::new(Here {
        linker: Box::new(move |req| {
            seen.lock().unwrap().push(req.to_string());
            match req {
                "{\"cc\":\"cc\"}" => Some("id-1".into()),
                "{\"cc\":\"clang\"}" => Some("id-2".into()),
                _ => None,
            }
        }),
        ..m.here(Mode::Exact)
    });
    assert!(holds(
        &j,
        &[input(InputKind::Linker, "{\"cc\":\"cc\"}", "id-1")]
    ));
    assert_eq!(
        found(&j, &input(InputKind::Linker, "{\"cc\":\"clang\"}", "id-1")),
        "id-2"
    );
    assert_eq!(
        found(&j, &input(InputKind::Linker, "{\"cc\":\"gcc\"}", "id-1")),
        UNKNOWN
    );
    assert_eq!(asked.lock().unwrap()[0], "{\"cc\":\"cc\"}");
}

// Programs looked up through PATH.

/// A directory of `m` holding an executable `tool` with `text` in it.
fn tool_dir(m: &Machine, dir: &str, text: &str, mode: u32) -> PathBuf {
    let d = m.base.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("xcache-test-tool");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    d
}

fn path_var(dirs: &[&Path]) -> String {
    dirs.iter()
        .map(|d| d.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn a_program_found_through_path_holds_until_its_contents_change() {
    let m = Machine::new();
    let bin = tool_dir(&m, "bin", "#!/bin/sh\n", 0o755);
    let path = path_var(&[&bin]);
    let i = input(
        InputKind::Lookup,
        "xcache-test-tool",
        lookup_state("xcache-test-tool", Some(&path)),
    );
    assert!(i.state.starts_with("file:"));
    let j = || {
        Judge::new(with_env(
            m.here(Mode::Exact),
            &[("PATH", EnvNow::Set(path.clone()))],
        ))
    };
    assert!(holds(&j(), std::slice::from_ref(&i)));
    tool_dir(&m, "bin", "#!/bin/sh\nexit 1\n", 0o755);
    assert_eq!(
        found(&j(), &i),
        lookup_state("xcache-test-tool", Some(&path))
    );
    // Not executable: not found.
    std::fs::set_permissions(
        bin.join("xcache-test-tool"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(found(&j(), &i).starts_with("f:file:"));
}

#[test]
fn a_program_behind_an_earlier_file_that_is_not_executable_does_not_hold() {
    let m = Machine::new();
    let bin = tool_dir(&m, "bin", "tool", 0o755);
    let early = m.base.join("early");
    std::fs::create_dir(&early).unwrap();
    let i = input(
        InputKind::Lookup,
        "xcache-test-tool",
        lookup_state("xcache-test-tool", Some(&path_var(&[&early, &bin]))),
    );
    let j = || {
        Judge::new(with_env(
            m.here(Mode::Exact),
            &[("PATH", EnvNow::Set(path_var(&[&early, &bin])))],
        ))
    };
    assert!(holds(&j(), std::slice::from_ref(&i)));
    tool_dir(&m, "early", "shadow", 0o644);
    let now = found(&j(), &i);
    assert!(
        now.starts_with("f:file:") && now.ends_with(&i.state),
        "{now}"
    );
}

#[test]
fn a_lookup_with_path_unset_searches_the_default_directories() {
    let m = Machine::new();
    let bin = tool_dir(&m, "bin", "tool", 0o755);
    let unset = m.judge(Mode::Exact);
    let default = input(
        InputKind::Lookup,
        "xcache-test-tool",
        lookup_state("xcache-test-tool", None),
    );
    assert_eq!(default.state, st::ABSENT);
    assert!(holds(&unset, &[default]));
    let via_bin = input(
        InputKind::Lookup,
        "xcache-test-tool",
        lookup_state("xcache-test-tool", Some(&path_var(&[&bin]))),
    );
    assert_eq!(found(&unset, &via_bin), st::ABSENT);
}

#[test]
fn a_lookup_is_unknown_when_path_is_not_known_unless_predicting() {
    let m = Machine::new();
    let i = input(
        InputKind::Lookup,
        "xcache-test-tool",
        lookup_state("xcache-test-tool", None),
    );
    for now in [EnvNow::CargoSets, EnvNow::Unknown] {
        let j = Judge::new(with_env(m.here(Mode::Exact), &[("PATH", now.clone())]));
        assert_eq!(found(&j, &i), UNKNOWN);
        let j = Judge::new(with_env(m.here(Mode::Predict), &[("PATH", now)]));
        assert!(holds(&j, std::slice::from_ref(&i)));
    }
}

// Paths above a root.

#[test]
fn a_walk_up_that_found_nothing_does_not_hold_once_a_directory_above_has_it() {
    let m = Machine::at("a/ws");
    let name = above::name(RootKind::Cwd.token(), Spec::Every, ".xcache-test-marker");
    let i = input(
        InputKind::Above,
        name,
        above_state(&m.ws, Spec::Every, ".xcache-test-marker", false),
    );
    assert_eq!(i.state, st::ABSENT);
    assert!(holds(&m.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::create_dir(m.base.join("a/.xcache-test-marker")).unwrap();
    let now = found(&m.judge(Mode::Exact), &i);
    assert_eq!(now, format!("differs:{}:{}", m.base.display(), st::ABSENT));
}

#[test]
fn a_level_above_is_judged_above_the_checkout_it_is_in() {
    let (a, b) = (Machine::at("a/ws"), Machine::at("b/ws"));
    for m in [&a, &b] {
        std::fs::write(m.ws.parent().unwrap().join("Cargo.toml"), "[workspace]").unwrap();
    }
    let i = input(
        InputKind::Above,
        above::name(RootKind::Cwd.token(), Spec::Level(1), "Cargo.toml"),
        above_state(&a.ws, Spec::Level(1), "Cargo.toml", true),
    );
    assert!(i.state.starts_with("file:"));
    assert!(holds(&b.judge(Mode::Exact), std::slice::from_ref(&i)));
    std::fs::write(b.base.join("b/Cargo.toml"), "[package]").unwrap();
    assert_eq!(
        found(&b.judge(Mode::Exact), &i),
        above_state(&b.ws, Spec::Level(1), "Cargo.toml", true)
    );
    let beyond = input(
        InputKind::Above,
        above::name(RootKind::Cwd.token(), Spec::Level(999), ""),
        "dir",
    );
    assert_eq!(found(&b.judge(Mode::Exact), &beyond), "beyond-top");
}

#[test]
fn the_depth_of_the_checkout_holds_only_at_the_same_depth() {
    let (a, same, deeper) = (
        Machine::at("a/ws"),
        Machine::at("b/ws"),
        Machine::at("c/d/ws"),
    );
    let i = input(
        InputKind::Above,
        above::name(RootKind::Cwd.token(), Spec::Depth, ""),
        above_state(&a.ws, Spec::Depth, "", false),
    );
    assert!(i.state.starts_with("depth:"));
    assert!(holds(&same.judge(Mode::Exact), std::slice::from_ref(&i)));
    assert_eq!(
        found(&deeper.judge(Mode::Exact), &i),
        above_state(&deeper.ws, Spec::Depth, "", false)
    );
}

#[test]
fn an_above_input_with_an_unknown_anchor_or_a_bad_name_is_unknown() {
    let m = Machine::new();
    let j = m.judge(Mode::Exact);
    let unknown_root = input(
        InputKind::Above,
        above::name("@@xcache:elsewhere@@", Spec::Depth, ""),
        "depth:3",
    );
    assert_eq!(found(&j, &unknown_root), UNKNOWN);
    let relative = input(
        InputKind::Above,
        above::name("relative/dir", Spec::Depth, ""),
        "depth:3",
    );
    assert_eq!(found(&j, &relative), UNKNOWN);
    let bad = input(InputKind::Above, "no tabs here", "depth:3");
    assert_eq!(found(&j, &bad), UNKNOWN);
}

// Modes.

/// A record with an input outside the target dir that holds, and one inside it that
/// does not hold yet (planting makes it).
fn planted_record(m: &Machine) -> (Input, Input) {
    let src = m.write("src/lib.rs", "x");
    let outside = input(InputKind::Path, ws("src/lib.rs"), path_state(&src, true));
    let mut built = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut built, b"rlib").unwrap();
    let inside = input(
        InputKind::Identity,
        tgt("debug/deps/libdep.rlib"),
        link_input_identity(built.path()).unwrap(),
    );
    (outside, inside)
}

#[test]
fn plant_mode_puts_inputs_in_the_target_dir_aside_for_a_check_after_planting() {
    let m = Machine::new();
    let (outside, inside) = planted_record(&m);
    let j = m.judge(Mode::Plant);
    assert_eq!(j.mode(), Mode::Plant);
    let record = [inside.clone(), outside];
    let aside = j.check(&record).unwrap();
    assert_eq!(aside, vec![&inside]);
    assert_eq!(j.check_now(&aside).unwrap_err().now, st::ABSENT);
    let p = m.target.join("debug/deps/libdep.rlib");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, "rlib").unwrap();
    assert_eq!(j.check_now(&aside), Ok(()));
}

#[test]
fn plant_mode_puts_every_kind_of_path_in_the_target_dir_aside_and_nothing_else() {
    let m = Machine::new();
    let kinds = [
        InputKind::Path,
        InputKind::Listing,
        InputKind::Tree,
        InputKind::Link,
        InputKind::Canonical,
        InputKind::Identity,
    ];
    let record: Vec<Input> = kinds
        .iter()
        .map(|k| input(*k, tgt("debug/not-yet"), "never"))
        .chain([input(
            InputKind::Above,
            above::name(RootKind::Target.token(), Spec::Depth, ""),
            "never",
        )])
        .collect();
    let aside = verdict(&m.judge(Mode::Plant), &record).unwrap();
    assert_eq!(aside, record);
    // The target dir itself is in it; the same path in the checkout is not.
    let root = input(InputKind::Path, RootKind::Target.token(), "never");
    assert_eq!(
        verdict(&m.judge(Mode::Plant), std::slice::from_ref(&root)).unwrap(),
        vec![root]
    );
    let outside = input(InputKind::Path, ws("debug/not-yet"), "never");
    assert!(!holds(&m.judge(Mode::Plant), &[outside]));
}

#[test]
fn plant_mode_judges_inputs_outside_the_target_dir_at_once() {
    let m = Machine::new();
    let (outside, inside) = planted_record(&m);
    m.write("src/lib.rs", "changed");
    let m2 = verdict(&m.judge(Mode::Plant), &[inside, outside.clone()]).unwrap_err();
    assert_eq!(m2.input, outside);
}

#[test]
fn exact_mode_judges_inputs_in_the_target_dir() {
    let m = Machine::new();
    let (outside, inside) = planted_record(&m);
    assert_eq!(found(&m.judge(Mode::Exact), &inside), st::ABSENT);
    assert!(holds(&m.judge(Mode::Exact), &[outside]));
}

#[test]
fn predict_mode_takes_inputs_in_the_target_dir_to_hold_and_puts_none_aside() {
    let m = Machine::new();
    let (outside, inside) = planted_record(&m);
    let aside = verdict(&m.judge(Mode::Predict), &[inside, outside.clone()]).unwrap();
    assert!(aside.is_empty());
    m.write("src/lib.rs", "changed");
    assert!(!holds(&m.judge(Mode::Predict), &[outside]));
}

#[test]
fn predict_mode_takes_what_cannot_be_known_to_hold_but_not_what_differs() {
    let m = Machine::new();
    let unknown = input(InputKind::HostCpu, "native", "znver3");
    assert!(holds(
        &m.judge(Mode::Predict),
        std::slice::from_ref(&unknown)
    ));
    assert!(!holds(
        &m.judge(Mode::Exact),
        std::slice::from_ref(&unknown)
    ));
    assert!(!holds(&m.judge(Mode::Plant), &[unknown]));
    let differs = Input::env("OPT", Some("1"));
    assert_eq!(found(&m.judge(Mode::Predict), &differs), st::UNSET);
}

#[test]
fn a_record_with_no_inputs_holds_in_every_mode() {
    let m = Machine::new();
    for mode in [Mode::Exact, Mode::Plant, Mode::Predict] {
        assert_eq!(verdict(&m.judge(mode), &[]), Ok(Vec::new()));
    }
    assert_eq!(m.judge(Mode::Exact).check_now(&[]), Ok(()));
}

#[test]
fn the_first_input_that_does_not_hold_is_the_one_reported() {
    let m = Machine::new();
    let j = Judge::new(with_env(
        m.here(Mode::Exact),
        &[
            ("A", EnvNow::Set("1".into())),
            ("B", EnvNow::Set("2".into())),
        ],
    ));
    let record = [
        Input::env("A", Some("1")),
        Input::env("B", Some("0")),
        Input::env("C", Some("0")),
    ];
    let mismatch = verdict(&j, &record).unwrap_err();
    assert_eq!(mismatch.input, record[1]);
    assert_eq!(mismatch.now, "=2");
    let refs: Vec<&Input> = record.iter().rev().collect();
    assert_eq!(j.check_now(&refs).unwrap_err().input, record[2]);
}

#[test]
fn a_mismatch_says_the_kind_the_name_what_was_recorded_and_what_was_found() {
    let m = Machine::new();
    let mismatch = verdict(&m.judge(Mode::Exact), &[Input::env("OPT", Some("1"))]).unwrap_err();
    assert_eq!(mismatch.to_string(), "env OPT: recorded =1, now unset");
}
