//! Paths above a root: a walk up that found nothing, a level above the checkout, the
//! checkout's depth.

use super::fixture::*;
use crate::judge::*;
use crate::key::above::{self, Spec};

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
