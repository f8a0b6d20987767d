//! Variables, one by one and the sets of them a run that read its environment whole
//! saw: the value recorded, unset, naming a root, set by cargo, unknown here.

use std::sync::{Arc, Mutex};

use super::fixture::*;
use crate::judge::*;

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
