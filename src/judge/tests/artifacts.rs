//! Artifact identities: an artifact by its content or the key its sidecar names, and
//! when a judge observes them (planting writes between two checks).

use super::fixture::*;
use crate::judge::*;
use crate::key::{Key, write_artifact_identity};

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
