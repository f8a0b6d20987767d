//! `cargo xcache verify`: hits compiled again without the cache and compared.

use crate::common::layouts::{CargoLayout, pairs};
use crate::common::{Scratch, base_command, xcache_build, xcache_exe};
use std::path::Path;
use std::process::Output;

fn verify(cwd: &Path, store: &Path, args: &[&str]) -> Output {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.args(["xcache", "verify"]).args(args);
    cmd.output().unwrap()
}

fn table(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The verdict printed for a unit, `"<package> <version> (<kind>"` at the start of its row.
fn verdict_of(table: &str, unit: &str) -> Option<String> {
    table
        .lines()
        .find(|l| l.starts_with(unit))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_string)
}

/// In each of cargo's layouts: with a build dir apart, verify builds in a scratch build
/// dir too (the user's would keep every unit fresh for cargo, and nothing be checked).
#[test]
fn every_hit_of_an_honest_store_compiles_to_the_same_bytes() {
    for layout in CargoLayout::all() {
        let s = Scratch::new();
        let env = layout.env(&s.path("build-dir"));
        every_hit_compiles_to_the_same_bytes(&s, &pairs(&env), layout.name);
        layout.assert_records_apart(&s.path("ws/target"));
    }
}

fn every_hit_compiles_to_the_same_bytes(s: &Scratch, env: &[(&str, &str)], layout: &str) {
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], env).assert_success();
    let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
    cmd.args(["xcache", "verify", "--all"])
        .envs(env.iter().copied());
    let o = cmd.output().unwrap();
    eprintln!("layout: {layout}");
    let t = table(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{t}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary = t.lines().last().unwrap();
    assert!(summary.contains("(100% sample)"), "{t}");
    assert!(
        summary.contains(" 0 differ, 0 not reproducible, 0 not checked"),
        "{t}"
    );
    // Every kind of unit was checked: a library, a proc-macro, a build script, its run
    // and a binary.
    for unit in [
        "util 0.1.0 (lib",
        "macros 0.1.0 (proc-macro",
        "generated 0.1.0 (build-script)",
        "generated 0.1.0 (build-script-run",
        "app 0.1.0 (bin",
    ] {
        assert_eq!(verdict_of(&t, unit).as_deref(), Some("same"), "{unit}: {t}");
    }
    // The user's target dir is left as it was; the scratch one is gone.
    assert!(!ws.join("target/xcache/verify").exists());
    assert!(ws.join("target/debug/app").is_file());
}

#[test]
fn a_read_the_key_missed_is_found_and_fails_the_check() {
    let s = Scratch::new();
    let ws = s.checkout("verify", "ws");
    // rawread's build script reads this with raw system calls: nothing observes it.
    let outside = s.path("outside.txt");
    std::fs::write(&outside, "one").unwrap();
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(b.run("vapp"), "value=one stamped=true\n");
    // noisy's run writes the time: its path check's second run wrote another, so its
    // record is bound to the target dir it ran in. One build into the directory verify
    // builds in (`target/xcache/verify`) makes it a hit there, for verify to rerun.
    xcache_build(
        &ws,
        &s.store(),
        &["--target-dir", "target/xcache/verify"],
        &[],
    )
    .assert_success();
    std::fs::write(&outside, "two").unwrap();

    let o = verify(&ws, &s.store(), &["--all"]);
    let t = table(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{t}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        verdict_of(&t, "rawread 0.1.0 (build-script-run").as_deref(),
        Some("differs"),
        "{t}"
    );
    assert!(t.contains("differs: value.txt"), "{t}");
    // A script that writes the time differs from itself: named, not a failure.
    assert_eq!(
        verdict_of(&t, "noisy 0.1.0 (build-script-run").as_deref(),
        Some("not-reproducible"),
        "{t}"
    );
    assert!(t.contains("differs: stamp.txt"), "{t}");
    // The differing unit is listed first.
    assert!(t.lines().nth(1).unwrap().starts_with("rawread"), "{t}");
}

#[test]
fn a_sample_checks_some_hits_and_a_bad_percentage_is_refused() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let o = verify(&ws, &s.store(), &["--sample", "1"]);
    let t = table(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.lines().last().unwrap().contains("(1% sample)"), "{t}");
    let bad = verify(&ws, &s.store(), &["--sample", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--sample"));
}
