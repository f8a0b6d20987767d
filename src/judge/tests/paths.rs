//! Paths, listings and declared trees: a file by its contents, a path probed absent,
//! a directory's entries, a tree a build script declared.

use super::fixture::*;
use crate::judge::*;
use crate::key::tree_state;

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
