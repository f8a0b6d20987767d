//! `cargo xcache <command>`: every cargo command through the cache, on the `commands`
//! fixture. Each is run cold in one checkout, then warm in another checkout with an
//! empty target dir (the same store): the warm run must compile nothing, and print
//! what the cold run printed (test results, clippy's warnings, the program's output).

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::layouts::{CargoLayout, pairs};
use crate::common::{Report, Scratch, base_command, xcache_exe};

/// `cargo xcache <args>` in `cwd`, with `stdin` fed to it.
fn xcache(cwd: &Path, store: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.arg("xcache").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({:?}):\n{}\n{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    );
}

/// The units rustc still compiled (every unit that was not restored), by
/// `crate_name:kind`. rustdoc's units are not rustc's: they are listed apart.
fn compiled(r: &Report) -> Vec<String> {
    r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["outcome"] != "hit")
        .filter(|u| u["reason"] != "rustdoc")
        .map(|u| format!("{}:{}", u["crate_name"], u["kind"]).replace('"', ""))
        .collect()
}

/// How many units were restored.
fn hits(r: &Report) -> u64 {
    r.summary("hits")
}

/// The `test result:` lines of libtest, in order, without their timing.
fn test_results(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result"))
        .map(str::to_string)
        .collect()
}

/// A command cold in `a`, then warm in `b` (another checkout, empty target dir):
/// returns both outputs and the warm report, after checking that the warm run
/// compiled nothing.
fn cold_then_warm(s: &Scratch, args: &[&str], stdin: &str) -> (Output, Output, Report) {
    let a = s.checkout("commands", &format!("a-{}", args[0]));
    let b = s.checkout("commands", &format!("b-{}", args[0]));
    let cold = xcache(&a, &s.store(), args, &[], stdin);
    assert_ok(&cold);
    let cold_report = Report::read(&a.join("target"));
    assert!(
        !compiled(&cold_report).is_empty(),
        "the cold run compiled: {:?}",
        cold_report.0
    );
    let warm = xcache(&b, &s.store(), args, &[], stdin);
    assert_ok(&warm);
    let r = Report::read(&b.join("target"));
    assert_eq!(
        compiled(&r),
        Vec::<String>::new(),
        "`cargo xcache {}` warm from another directory compiled units:\n{}",
        args.join(" "),
        text(&warm.stderr)
    );
    assert!(hits(&r) > 0, "{}", text(&warm.stderr));
    (cold, warm, r)
}

#[test]
fn test_runs_the_tests_and_compiles_nothing_warm() {
    let s = Scratch::new();
    let (cold, warm, r) = cold_then_warm(&s, &["test"], "");
    let results = test_results(&text(&warm.stdout));
    assert_eq!(results, test_results(&text(&cold.stdout)));
    for t in [
        "test tests::adds ... ok",
        "test sums_with_helper ... ok",
        "test calc/src/lib.rs - add (line 5) ... ok",
    ] {
        assert!(results.iter().any(|l| l == t), "{t} in {results:?}");
    }
    // The test harnesses and the dev-dependency came from the cache.
    let outcomes = r.outcomes();
    assert_eq!(outcomes["calc:test"], "hit");
    assert_eq!(outcomes["sums:test"], "hit");
    assert_eq!(outcomes["helper:lib"], "hit");
    // Doctests are rustdoc's: listed, with their reason.
    assert_eq!(outcomes["calc:doctest"], "uncacheable");
    let doctest = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "doctest" && u["crate_name"] == "calc")
        .cloned()
        .unwrap();
    assert_eq!(doctest["reason"], "rustdoc");
    // The plan counts the test harnesses and the dev-dependency: more than a build.
    let build = xcache(
        &s.checkout("commands", "c"),
        &s.store(),
        &["build"],
        &[],
        "",
    );
    assert_ok(&build);
    let build_planned = Report::read(&s.path("c/target")).summary("planned");
    assert!(
        r.summary("planned") > build_planned,
        "test plans {} units, build {build_planned}",
        r.summary("planned")
    );
}

#[test]
fn a_failing_test_fails_with_cargos_exit_code() {
    let s = Scratch::new();
    let a = s.checkout("commands", "a");
    let tests = a.join("calc/tests/sums.rs");
    let src = std::fs::read_to_string(&tests).unwrap();
    std::fs::write(&tests, src.replace("helper::expected()", "54")).unwrap();
    let out = xcache(&a, &s.store(), &["test", "--test", "sums"], &[], "");
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("test sums_with_helper ... FAILED"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn run_leaves_stdin_and_stdout_to_the_program() {
    let s = Scratch::new();
    let args = ["run", "-q", "-p", "cli", "--", "x", "--release"];
    let (cold, warm, _) = cold_then_warm(&s, &args, "1 2 3\n4");
    assert_eq!(text(&cold.stdout), "sum=10 args=x,--release\n");
    assert_eq!(text(&warm.stdout), "sum=10 args=x,--release\n");
    // The program's exit code is cargo's.
    let missing = xcache(
        &s.path("b-run"),
        &s.store(),
        &["run", "-q", "--bin", "no-such-bin"],
        &[],
        "",
    );
    assert_eq!(missing.status.code(), Some(101));
}

#[test]
fn clippy_warnings_are_replayed_and_its_configuration_is_keyed() {
    let s = Scratch::new();
    let lint = "unneeded `return` statement";
    let (cold, warm, r) = cold_then_warm(&s, &["clippy"], "");
    assert!(text(&cold.stderr).contains(lint), "{}", text(&cold.stderr));
    assert!(text(&warm.stderr).contains(lint), "{}", text(&warm.stderr));
    // clippy's result for the member was planted before cargo started: cargo found it
    // fresh and printed the warnings it had kept with it.
    let calc = r.unit("calc");
    assert_eq!(calc["outcome"], "hit", "{calc}");
    assert_eq!(calc["seeded"], true, "{calc}");
    assert_eq!(r.summary("seed_rejected"), 0);

    // The lint allowed on the command line: not the recorded result.
    let c = s.checkout("commands", "c");
    let allowed = xcache(
        &c,
        &s.store(),
        &["clippy", "--", "-A", "clippy::needless_return"],
        &[],
        "",
    );
    assert_ok(&allowed);
    assert!(!text(&allowed.stderr).contains(lint));
    let rc = Report::read(&c.join("target"));
    assert!(
        compiled(&rc).contains(&"calc:lib".to_string()),
        "{:?}",
        rc.0
    );
    // With the same flags elsewhere, that result is planted (the plan predicts the
    // `CLIPPY_ARGS` cargo-clippy sets for them).
    let c2 = s.checkout("commands", "c2");
    let again = xcache(
        &c2,
        &s.store(),
        &["clippy", "--", "-A", "clippy::needless_return"],
        &[],
        "",
    );
    assert_ok(&again);
    assert!(!text(&again.stderr).contains(lint));
    let rc2 = Report::read(&c2.join("target"));
    assert_eq!(rc2.unit("calc")["seeded"], true, "{:?}", rc2.0);

    // A clippy.toml adds a lint: not the recorded result either.
    let d = s.checkout("commands", "d");
    std::fs::write(d.join("clippy.toml"), "disallowed-names = [\"a\"]\n").unwrap();
    let configured = xcache(&d, &s.store(), &["clippy"], &[], "");
    assert_ok(&configured);
    assert!(
        text(&configured.stderr).contains("disallowed/placeholder name `a`"),
        "{}",
        text(&configured.stderr)
    );
    let rd = Report::read(&d.join("target"));
    assert!(
        compiled(&rd).contains(&"calc:lib".to_string()),
        "{:?}",
        rd.0
    );

    // `-D warnings` fails the build, with clippy's error, cached or not.
    let e = s.checkout("commands", "e");
    let denied = xcache(&e, &s.store(), &["clippy", "--", "-D", "warnings"], &[], "");
    assert_eq!(denied.status.code(), Some(101));
    assert!(text(&denied.stderr).contains(&format!("error: {lint}")));
}

#[test]
fn check_bench_doc_and_build_compile_nothing_warm() {
    // A store each: every cold run starts cold.
    let (_, _, r) = cold_then_warm(&Scratch::new(), &["check", "--all-targets"], "");
    // Every unit is planned, so seeded: the library and binary checked as unit tests,
    // the example (compiled into `examples/`) and the bench without a harness (a plain
    // executable, as its manifest says).
    let mut not_seeded: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["seeded"] != true)
        .map(|u| format!("{}:{}", u["crate_name"], u["kind"]).replace('"', ""))
        .collect();
    not_seeded.sort();
    assert!(not_seeded.is_empty(), "{not_seeded:?} {}", r.0["units"]);
    assert!(r.summary("seeded") > 0);
    let (_, warm, _) = cold_then_warm(&Scratch::new(), &["bench"], "");
    assert!(text(&warm.stdout).contains("bench sum = 55"));
    let s = Scratch::new();
    let (_, _, doc) = cold_then_warm(&s, &["doc", "--no-deps"], "");
    assert_eq!(doc.outcomes()["calc:doc"], "uncacheable");
    assert!(s.path("b-doc/target/doc/calc/index.html").is_file());
    cold_then_warm(&Scratch::new(), &["build", "--release", "-p", "cli"], "");
}

#[test]
fn install_path_goes_through_the_cache() {
    let s = Scratch::new();
    let root = s.path("installed");
    let root_arg = root.display().to_string();
    cold_then_warm(
        &s,
        &["install", "--path", "cli", "--root", &root_arg, "--force"],
        "",
    );
    let out = std::process::Command::new(root.join("bin/cli"))
        .arg("y")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "sum=0 args=y\n");
}

#[test]
fn nextest_builds_through_the_cache() {
    let s = Scratch::new();
    let has_nextest = std::process::Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_nextest,
        "cargo-nextest is missing: .ci/run installs it (cargo install --locked cargo-nextest)"
    );
    let (_, warm, r) = cold_then_warm(&s, &["nextest", "run"], "");
    assert!(
        text(&warm.stderr).contains("2 tests run: 2 passed"),
        "{}",
        text(&warm.stderr)
    );
    assert_eq!(r.outcomes()["sums:test"], "hit");
    let bad = xcache(
        &s.path("b-nextest"),
        &s.store(),
        &["nextest", "bogus"],
        &[],
        "",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("cargo xcache nextest run"));
}

#[test]
fn drop_in_mode_leaves_a_report() {
    let s = Scratch::new();
    let a = s.checkout("commands", "a");
    let mut cmd = base_command(Path::new("cargo"), &a, &s.store());
    cmd.args(["check", "-p", "calc"])
        .env("RUSTC_WRAPPER", xcache_exe());
    let out = cmd.output().unwrap();
    assert_ok(&out);
    let report = xcache(&a, &s.store(), &["report", "--json"], &[], "");
    assert_ok(&report);
    let r = Report(serde_json::from_slice(&report.stdout).unwrap());
    assert_eq!(r.outcomes()["calc:lib"], "miss");
    // The next build's own report replaces it.
    let build = xcache(&a, &s.store(), &["build", "-p", "helper"], &[], "");
    assert_ok(&build);
    let r = Report::read(&a.join("target"));
    assert!(r.outcomes().contains_key("helper:lib"));
    assert!(!r.outcomes().contains_key("calc:lib"));
}

/// A workspace with a test, a dev-dependency and a build script that reads one file and
/// no environment: `test`, `check` and `clippy` in one checkout and target dir, then each
/// from a checkout whose path is longer than `CARGO_HOME`'s where the first was shorter,
/// into a fresh target dir, compiles nothing and runs no build script. (The C path maps
/// the cache adds to every run were keyed in the order of the roots' lengths: such a
/// checkout ran the script again under `check`.)
#[test]
fn every_command_from_a_checkout_of_another_length_compiles_nothing() {
    let s = Scratch::new();
    let home = s.path("home-of-mid-length");
    std::fs::create_dir_all(&home).unwrap();
    let home_env = ("CARGO_HOME", home.to_str().unwrap());
    let a = s.checkout("script-commands", "a");
    let commands: [&[&str]; 3] = [&["test"], &["check"], &["clippy"]];
    for args in commands {
        let out = xcache(&a, &s.store(), args, &[home_env], "");
        assert_ok(&out);
    }
    let b = s.checkout("script-commands", "b-a-checkout-longer-than-cargo-home");
    for args in commands {
        let target = s.path(&format!("target-{}", args[0]));
        let target_env = ("CARGO_TARGET_DIR", target.to_str().unwrap());
        let out = xcache(&b, &s.store(), args, &[home_env, target_env], "");
        assert_ok(&out);
        let r = Report::read(&target);
        assert_eq!(
            compiled(&r),
            Vec::<String>::new(),
            "`cargo xcache {}` from {} compiled units:\n{}",
            args[0],
            b.display(),
            text(&out.stderr)
        );
        let runs = r.runs();
        assert!(
            runs.values().all(|(outcome, _)| outcome == "hit"),
            "`cargo xcache {}`: {runs:?}",
            args[0]
        );
        if args[0] == "test" {
            assert!(text(&out.stdout).contains("test helper_sees_the_value ... ok"));
        }
    }
    // The program the cache gave is plain cargo's.
    let out = xcache(&b, &s.store(), &["run", "-q"], &[home_env], "");
    assert_ok(&out);
    let plain = s.checkout("script-commands", "plain");
    let p = common::cargo_build(&plain, &["-q"], &[home_env]);
    assert!(p.status.success());
    let program = std::process::Command::new(plain.join("target/debug/sclib"))
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), text(&program.stdout));
    assert_eq!(text(&out.stdout), "value=forty-two shout=FORTY-TWO\n");
}

/// Every command, cold in one checkout and then warm from another into a fresh target
/// dir (and build dir), in one of cargo's layouts: the warm run compiles nothing,
/// plants (nothing says planting is off) while cargo resolves the workspace, keeps
/// cargo's records where cargo does, and prints what the cold run printed. (The legacy
/// layout is the other tests'.)
fn every_command_compiles_nothing_in(layout: &str) {
    let Some(layout) = CargoLayout::all().into_iter().find(|l| l.name == layout) else {
        return;
    };
    let s = Scratch::new();
    let commands: [&[&str]; 5] = [
        &["check", "--all-targets"],
        &["test"],
        &["clippy"],
        &["doc", "--no-deps"],
        &["nextest", "run"],
    ];
    let a = s.checkout("commands", "a");
    let b = s.checkout("commands", "elsewhere/b");
    for args in commands {
        let cold_env = layout.env(&s.path("build-a"));
        let cold = xcache(&a, &s.store(), args, &pairs(&cold_env), "");
        assert_ok(&cold);
        let n = args[0];
        let target = s.path(&format!("target-{n}"));
        let mut warm_env = layout.env(&s.path(&format!("build-b-{n}")));
        warm_env.push(("CARGO_TARGET_DIR".into(), target.display().to_string()));
        let warm = xcache(&b, &s.store(), args, &pairs(&warm_env), "");
        assert_ok(&warm);
        let r = Report::read(&target);
        let what = format!("{}: `cargo xcache {}`", layout.name, args.join(" "));
        assert_eq!(
            compiled(&r),
            Vec::<String>::new(),
            "{what} from another checkout compiled units:\n{}",
            text(&warm.stderr)
        );
        assert!(
            !r.warning_codes().iter().any(|c| c == "planting-off"),
            "{what}: {}",
            text(&warm.stderr)
        );
        if n != "doc" {
            assert!(r.summary("seeded") > 0, "{what}: {}", text(&warm.stderr));
        }
        layout.assert_records_apart(&target);
        if n == "check" || n == "clippy" {
            // cargo resolved while the units were planted, waiting for its build dir's
            // locks, and what it said of that wait is not shown.
            assert_eq!(
                r.0["summary"]["cargo_beside_planting"],
                true,
                "{what}: {}",
                text(&warm.stderr)
            );
            assert!(
                !text(&warm.stderr).lines().any(xcache::plan::is_lock_wait),
                "{what}: {}",
                text(&warm.stderr)
            );
        }
        if n == "check" {
            // Every unit is planned, so every one is planted and found fresh.
            let not_seeded: Vec<&serde_json::Value> = r.0["units"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| u["seeded"] != true)
                .collect();
            assert!(not_seeded.is_empty(), "{what}: {not_seeded:?}");
        }
        match n {
            "test" => assert_eq!(
                test_results(&text(&warm.stdout)),
                test_results(&text(&cold.stdout)),
                "{what}"
            ),
            "nextest" => assert!(
                text(&warm.stderr).contains("2 tests run: 2 passed"),
                "{what}: {}",
                text(&warm.stderr)
            ),
            "doc" => assert!(target.join("doc/calc/index.html").is_file(), "{what}"),
            _ => {}
        }
    }
}

#[test]
fn every_command_compiles_nothing_with_a_build_dir_apart() {
    every_command_compiles_nothing_in("build-dir");
}

#[test]
fn every_command_compiles_nothing_in_the_new_layout() {
    every_command_compiles_nothing_in("new");
}

#[test]
fn every_command_compiles_nothing_in_the_new_layout_with_a_build_dir_apart() {
    every_command_compiles_nothing_in("new-build-dir");
}
