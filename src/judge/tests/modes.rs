//! The modes: plant (inputs in the target dir put aside), exact, predict; and which
//! mismatch is reported, and how.

use super::fixture::*;
use crate::judge::*;
use crate::key::above::{self, Spec};

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
