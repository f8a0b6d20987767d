//! Programs looked up through PATH: the program a name finds, by its contents, and
//! PATH unset or unknown.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::fixture::*;
use crate::judge::*;

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
