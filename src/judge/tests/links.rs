//! Links and canonical paths: a link by where it points, in a checkout moved or not.

use std::os::unix::fs::symlink;

use super::fixture::*;
use crate::judge::*;

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
