//! The commands as a user meets them: `report` output (snapshot, with times and paths
//! redacted), JSON fields scripts rely on, and errors that say what to do.

use crate::common::{Report, Scratch, base_command, xcache_build, xcache_exe};

fn redact(text: &str, s: &Scratch) -> String {
    let text = text.replace(s.dir.path().to_str().unwrap(), "[SCRATCH]");
    let mut out = String::new();
    // Durations like `0.42s` and byte counts change from run to run.
    for line in text.lines() {
        let mut words = Vec::new();
        for w in line.split(' ') {
            let bare = w.trim_end_matches([',', ')', ';']).trim_start_matches('(');
            let is_time = bare.ends_with('s')
                && bare[..bare.len() - 1].parse::<f64>().is_ok()
                && bare.contains('.');
            words.push(if is_time {
                w.replace(bare, "[T]")
            } else {
                w.to_string()
            });
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn report_shows_outcomes_reasons_and_time() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    // Elsewhere, with one member edited: the rest is seeded, the edit and what depends
    // on it compile, each with why.
    let ws2 = s.checkout("basic-workspace", "ws2");
    let mid = ws2.join("mid/src/lib.rs");
    let text = std::fs::read_to_string(&mid).unwrap();
    std::fs::write(&mid, format!("{text}\npub fn added_in_ws2() {{}}\n")).unwrap();
    xcache_build(&ws2, &s.store(), &[], &[]).assert_success();

    let out = base_command(&xcache_exe(), &ws2, &s.store())
        .args(["xcache", "report"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The slowest-units list depends on timing; the snapshot covers what comes before.
    let stable = text.split("\nslowest units").next().unwrap();
    insta::assert_snapshot!(redact(stable, &s));
    assert!(text.contains("slowest units (compile time)"));

    let json = base_command(&xcache_exe(), &ws2, &s.store())
        .args(["xcache", "report", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    for field in ["units", "hits", "misses", "uncacheable", "wall_ms"] {
        assert!(v["summary"][field].is_u64(), "summary.{field}");
    }
    assert_eq!(
        v["summary"]["by_kind"]["lib"],
        // `mid` was edited.
        serde_json::json!({"units": 3, "hit": 2})
    );
    assert_eq!(
        v["summary"]["by_kind"]["bin"],
        serde_json::json!({"units": 1, "hit": 0})
    );
    for u in v["units"].as_array().unwrap() {
        for field in ["package", "version", "crate_name", "kind", "outcome"] {
            assert!(u[field].is_string(), "unit.{field}");
        }
        for field in ["reason", "compile_ms", "restore_ms"] {
            assert!(u.get(field).is_some(), "unit.{field}");
        }
    }
    // Four compiled units and the build script's run (`mid` and `app` compiled again).
    assert_eq!(Report::read(&ws2.join("target")).summary("hits"), 5);
}

#[test]
fn report_without_a_build_says_what_to_do() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let out = base_command(&xcache_exe(), &ws, &s.store())
        .args(["xcache", "report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no build report at"), "{err}");
    assert!(err.contains("report.json"), "{err}");
    assert!(
        err.contains("hint: run `cargo xcache build` first"),
        "{err}"
    );
}

#[test]
fn bad_manifest_path_is_named_with_a_hint() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let b = xcache_build(
        &ws,
        &s.store(),
        &["--manifest-path", "nope/Cargo.toml"],
        &[],
    );
    assert_eq!(b.output.status.code(), Some(2));
    let err = b.stderr();
    assert!(err.contains("nope/Cargo.toml"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn cargo_exit_code_and_args_pass_through() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    // An unknown package is cargo's error: same exit code as cargo's own.
    let b = xcache_build(&ws, &s.store(), &["-p", "no-such-package"], &[]);
    assert!(!b.output.status.success());
    assert!(b.stderr().contains("no-such-package"), "{}", b.stderr());
    // `-p util` builds only util.
    let b = xcache_build(&ws, &s.store(), &["-p", "util"], &[]);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    assert_eq!(r.with_outcome("miss"), ["util:lib"]);
}

#[test]
fn outside_a_project_the_error_names_the_directory_once() {
    let s = Scratch::new();
    let empty = s.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |args: &[&str]| {
        let out = base_command(&xcache_exe(), &empty, &s.store())
            .arg("xcache")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8(out.stderr)
            .unwrap()
            .replace(s.dir.path().to_str().unwrap(), "[SCRATCH]")
    };
    let err = run(&["build"]);
    insta::assert_snapshot!(err);
    // Every command that reads the workspace says it the same way.
    assert_eq!(run(&["report"]), err);
    assert_eq!(run(&["verify"]), err);
    // A broken manifest: cargo's message, without its own `error:` repeated.
    let ws = s.checkout("basic-workspace", "ws");
    std::fs::write(ws.join("Cargo.toml"), "[workspace\n").unwrap();
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    assert_eq!(b.output.status.code(), Some(2));
    let err = b.stderr();
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains("Cargo.toml"), "{err}");
}

#[test]
fn help_after_the_double_dash_is_cargos_and_builds_nothing() {
    let s = Scratch::new();
    let empty = s.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let help = |cwd: &std::path::Path, args: &[&str]| {
        base_command(&xcache_exe(), cwd, &s.store())
            .arg("xcache")
            .args(args)
            .output()
            .unwrap()
    };
    // Outside a project too: help needs none.
    for args in [
        &["build", "--", "--help"][..],
        &["check", "--", "-h"],
        &["build", "--release", "--help"],
    ] {
        let out = help(&empty, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let name = args[0];
        assert!(
            text.starts_with(&format!(
                "cargo xcache {name}: `cargo {name}` through the cache."
            )),
            "{text}"
        );
        assert!(
            text.contains("--remote URI, --read-only and --remote-jobs N"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Usage: cargo {name} [OPTIONS]")),
            "{text}"
        );
    }
    // Our own flags are described by our own help, which points at cargo's.
    let out = help(&empty, &["build", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--remote <URI>"), "{text}");
    assert!(text.contains("cargo xcache build -- --help"), "{text}");

    // In a workspace: nothing is built and the last report stays.
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let report = ws.join("target/xcache/report.json");
    let before = std::fs::read(&report).unwrap();
    let out = help(&ws, &["build", "--", "--help"]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&report).unwrap(), before);
}
