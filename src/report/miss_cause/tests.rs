//! Tests of explaining misses: the nearest record, the differences named, in words.

use super::differences::{diff, input_name};
use super::{describe, explain_miss};
use crate::key::{DiffKind, Difference, KeyParts};
use crate::store::history::{InputDigest, KeyRecord};

fn rec(at: u64, args: &[&str], externs: &[&str], src: &str) -> KeyRecord {
    KeyRecord {
        bound_by: Vec::new(),
        at_ms: at,
        version: "1.0.0".into(),
        l1: format!("l1-{at}"),
        entry: Some(format!("e-{at}")),
        parts: KeyParts {
            compiler: "c".repeat(64),
            args: args.iter().map(|s| s.to_string()).collect(),
            externs: externs.iter().map(|s| s.to_string()).collect(),
            env: vec!["CARGO_PKG_NAME=0123456789abcdef".into()],
            ..KeyParts::default()
        },
        inputs: vec![InputDigest {
            kind: "path".into(),
            name: "@@xcache:ws@@/src/lib.rs".into(),
            state: src.into(),
        }],
    }
}

#[test]
fn a_walk_above_the_checkout_reads_as_words() {
    use crate::key::above::{Spec, name};
    let d = |n: String| {
        describe(&diff(
            DiffKind::SourceFile,
            Some(&input_name("above", &n, DiffKind::SourceFile)),
            Some("-"),
            None,
        ))
    };
    assert!(
        d(name("@@xcache:ws@@", Spec::Every, ".git")).contains(".git in every directory above .")
    );
    assert!(
        d(name("@@xcache:ws@@", Spec::Level(2), ""))
            .contains("(the directory) in the directory 2 above .")
    );
}

#[test]
fn a_first_build_says_so() {
    let now = rec(5, &[], &[], "a");
    let c = explain_miss(&now, &[]);
    assert_eq!(c.differences[0].what, DiffKind::FirstSeen);
}

#[test]
fn the_nearest_key_names_the_feature_and_the_dependency() {
    let old_far = rec(1, &["-C=opt-level=3"], &["dep=x"], "b");
    let old_near = rec(2, &["-C=opt-level=0"], &["dep=x"], "a");
    let now = rec(
        3,
        &["-C=opt-level=0", "--cfg=feature=\"std\""],
        &["dep=y"],
        "a",
    );
    let c = explain_miss(&now, &[old_far, old_near]);
    assert_eq!(c.nearest_l1.as_deref(), Some("l1-2"));
    let kinds: Vec<DiffKind> = c.differences.iter().map(|d| d.what).collect();
    assert_eq!(kinds, vec![DiffKind::Feature, DiffKind::Dependency]);
    assert_eq!(c.differences[1].name.as_deref(), Some("dep"));
    assert_eq!(
        c.one_line(),
        "feature --cfg=feature=\"std\" added, dependency dep changed"
    );
}

#[test]
fn a_changed_source_file_is_named() {
    let old = rec(1, &[], &[], "a");
    let mut now = rec(2, &[], &[], "b");
    now.l1 = old.l1.clone();
    let c = explain_miss(&now, &[old]);
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].what, DiffKind::SourceFile);
    assert_eq!(
        c.differences[0].name.as_deref(),
        Some("@@xcache:ws@@/src/lib.rs")
    );
}

/// An input one build read and the other did not is said by its name, not by the
/// placeholder that stands for its value.
#[test]
fn an_added_or_removed_input_is_named() {
    let added = Difference {
        what: DiffKind::SourceFile,
        name: Some("@@xcache:ws@@/src/gen.c".into()),
        before: None,
        now: Some("-".into()),
    };
    assert_eq!(describe(&added), "source-file src/gen.c added");
    let removed = Difference {
        before: Some("-".into()),
        now: None,
        ..added
    };
    assert_eq!(describe(&removed), "source-file src/gen.c removed");
}

#[test]
fn the_same_key_again_means_the_entry_is_gone() {
    let old = rec(1, &[], &[], "a");
    let mut now = old.clone();
    now.at_ms = 2;
    let c = explain_miss(&now, &[old]);
    assert_eq!(c.differences[0].what, DiffKind::NotInStore);
}

#[test]
fn a_version_bump_is_the_lockfile() {
    let old = rec(1, &[], &[], "a");
    let mut now = rec(2, &[], &[], "a");
    now.version = "1.0.1".into();
    let c = explain_miss(&now, &[old]);
    assert_eq!(c.differences[0].what, DiffKind::LockfileVersion);
    assert_eq!(c.one_line(), "lockfile-version 1.0.0 -> 1.0.1");
}

/// A build-script run's record: `rec`'s, with a run's key parts and no inputs.
fn run(at: u64, script: &str, env: &[&str], tools: &[&str], dep_trees: &[&str]) -> KeyRecord {
    let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    KeyRecord {
        bound_by: Vec::new(),
        parts: KeyParts {
            compiler: "c".repeat(64),
            script: Some(script.into()),
            c_runtime: Some("r".into()),
            env: list(env),
            tools: list(tools),
            dep_trees: list(dep_trees),
            ..KeyParts::default()
        },
        inputs: Vec::new(),
        ..rec(at, &[], &[], "")
    }
}

#[test]
fn a_build_script_run_names_what_differed() {
    let old = run(
        1,
        "s1",
        &[
            "CC=aa",
            "CARGO_FEATURE_STD=bb",
            "DEP_Z_INCLUDE=cc",
            "PATH=dd",
        ],
        &["cc=11"],
        &["DEP_Z_INCLUDE=22"],
    );
    let now = run(
        2,
        "s2",
        &["CC=ab", "DEP_Z_INCLUDE=cd", "PATH=dd"],
        &["cc=12"],
        &["DEP_Z_INCLUDE=23"],
    );
    let c = explain_miss(&now, &[old]);
    let got: Vec<(DiffKind, Option<&str>)> = c
        .differences
        .iter()
        .map(|d| (d.what, d.name.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (DiffKind::BuildScript, None),
            (DiffKind::Feature, Some("CARGO_FEATURE_STD")),
            (DiffKind::EnvVar, Some("CC")),
            (DiffKind::DepValue, Some("DEP_Z_INCLUDE")),
            (DiffKind::DepOutput, Some("DEP_Z_INCLUDE")),
            (DiffKind::Tool, Some("cc")),
        ]
    );
    assert_eq!(
        c.one_line(),
        "build-script executable changed, feature CARGO_FEATURE_STD removed, env-var CC changed, dep-value DEP_Z_INCLUDE changed, dep-output DEP_Z_INCLUDE changed, tool cc changed"
    );
    // PATH is named with what to do about it.
    let path_now = run(3, "s1", &["PATH=ee"], &[], &[]);
    let path_old = run(4, "s1", &["PATH=dd"], &[], &[]);
    let c = explain_miss(&path_now, &[path_old]);
    assert_eq!(c.differences[0].name.as_deref(), Some("PATH"));
    assert!(c.hint.unwrap().contains("PATH"));
}

/// A variable the cache added to a run is named where it alone changed (a store
/// written when the cache added others); where the user's variable of that name
/// changed, that is what is said.
#[test]
fn what_the_cache_added_to_a_run_is_named_when_only_it_changed() {
    let mut old = run(1, "s1", &["CFLAGS=aa"], &[], &[]);
    old.parts.added_env = vec!["CARGO_TRIM_PATHS_SCOPE=01".into()];
    let mut now = run(2, "s1", &["CFLAGS=aa"], &[], &[]);
    now.parts.added_env = vec!["CFLAGS=02".into()];
    let c = explain_miss(&now, std::slice::from_ref(&old));
    let got: Vec<(DiffKind, Option<&str>, bool)> = c
        .differences
        .iter()
        .map(|d| (d.what, d.name.as_deref(), d.now.is_some()))
        .collect();
    assert_eq!(
        got,
        vec![
            (DiffKind::AddedVar, Some("CARGO_TRIM_PATHS_SCOPE"), false),
            (DiffKind::AddedVar, Some("CFLAGS"), true),
        ]
    );
    // The two values are shown as keyed, roots by alias.
    let mut maps = run(5, "s1", &[], &[], &[]);
    maps.parts.added_env =
        vec!["CFLAGS_x=-fdebug-prefix-map=@@xcache:cargo-home@@=/xcache/cargo-home".into()];
    let mut fewer = run(6, "s1", &[], &[], &[]);
    fewer.parts.added_env = vec!["CFLAGS_x=".into()];
    let line = explain_miss(&fewer, &[maps]).one_line();
    assert_eq!(
        line,
        "added-var CFLAGS_x changed: \
         `-fdebug-prefix-map=$CARGO_HOME=/xcache/cargo-home` -> ``"
    );
    let mut user = run(3, "s1", &["CFLAGS=ab"], &[], &[]);
    user.parts.added_env = vec!["CFLAGS=03".into()];
    let mut before = run(4, "s1", &["CFLAGS=aa"], &[], &[]);
    before.parts.added_env = vec!["CFLAGS=02".into()];
    let c = explain_miss(&user, &[before]);
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].what, DiffKind::EnvVar);
}

#[test]
fn records_without_key_parts_compare_only_their_inputs() {
    let mut old = run(1, "s1", &["CC=aa"], &[], &[]);
    old.parts = KeyParts::default();
    let now = run(2, "s2", &["CC=ab"], &[], &[]);
    let c = explain_miss(&now, &[old]);
    assert_eq!(c.differences[0].what, DiffKind::Input, "{c:?}");
}
