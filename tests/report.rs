//! The report as a user reads it: numbers that reconcile in every build, why each miss
//! happened, the Markdown summary and GitHub's job summary, statistics across builds,
//! our lines under `-q`, a failed cargo invocation that keeps the last report, and the
//! HTML timeline rendered in a real headless Chromium.

use crate::common;

use std::path::Path;
use std::process::Command;

use crate::common::{Scratch, base_command, xcache_build, xcache_exe};
use xcache::report::BuildReport;

fn read_report(ws: &Path) -> BuildReport {
    let text = std::fs::read_to_string(ws.join("target/xcache/report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every identity of the summary holds, and the summary line says the same numbers.
fn assert_reconciles(ws: &Path, stderr: &str) -> BuildReport {
    let r = read_report(ws);
    assert_eq!(r.identities(), Vec::<String>::new(), "{:#?}", r.summary);
    let s = &r.summary;
    let counts = format!(
        "{} units: {} seeded, {} restored, {} compiled, {} ran, {} uncacheable",
        s.units, s.seeded, s.restored, s.compiled, s.ran, s.uncacheable
    );
    assert!(stderr.contains(&counts), "{counts}\n{stderr}");
    assert!(s.cpu_saved_ms >= s.wall_saved_ms, "{s:?}");
    r
}

fn xcache(ws: &Path, s: &Scratch, args: &[&str]) -> std::process::Output {
    base_command(&xcache_exe(), ws, &s.store())
        .arg("xcache")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn numbers_reconcile_and_misses_are_explained() {
    let s = Scratch::new();
    let ws = s.bound_checkout("ws");

    // Cold: everything compiled or ran, each miss the unit's first key.
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    let r = assert_reconciles(&ws, &b.stderr());
    assert_eq!(r.summary.hits, 0);
    assert!(
        r.summary.compiled > 0 && r.summary.ran == 1,
        "{:?}",
        r.summary
    );
    for u in &r.units {
        let cause = u.miss_cause.as_ref().expect("every miss has a cause");
        assert_eq!(cause.differences[0].what.as_str(), "first-seen");
    }
    assert!(r.units.iter().any(|u| u.critical));
    assert!(r.units.iter().all(|u| u.start_ms.is_some()));
    // Where the CPU went: the compiles' and runs', the wrappers' own, the checks'
    // programs (`generated`'s expansion, the script's second run), the front-end's.
    let cpu = &r.summary;
    assert!(
        cpu.compile_cpu_ms > 0
            && cpu.wrapper_cpu_ms > 0
            && cpu.checks_cpu_ms > 0
            && cpu.front_end_cpu_ms > 0,
        "{cpu:?}"
    );
    assert!(cpu.compile_cpu_ms > cpu.wrapper_cpu_ms, "{cpu:?}");
    // Per unit too, adding up to the summary's.
    let units_cpu: u64 = r.units.iter().filter_map(|u| u.cpu_ms).sum();
    let units_checks: u64 = r.units.iter().filter_map(|u| u.checks_cpu_ms).sum();
    assert_eq!(units_cpu, cpu.wrapper_cpu_ms, "{:?}", r.units);
    assert_eq!(units_checks, cpu.checks_cpu_ms, "{:?}", r.units);
    let script_run = r
        .units
        .iter()
        .find(|u| u.kind == "build-script-run")
        .unwrap();
    assert!(
        script_run.checks_cpu_ms.is_some_and(|ms| ms > 0),
        "{script_run:?}"
    );

    // A second checkout: seeded and restored units, and the unit bound to the first
    // checkout's target dir (`generated`, made to turn `OUT_DIR` into a number) misses
    // for that reason.
    let ws2 = s.bound_checkout("ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = assert_reconciles(&ws2, &b.stderr());
    assert!(r.summary.seeded > 0, "{:?}", r.summary);
    assert!(r.summary.cpu_saved_ms > 0);
    let generated = r
        .units
        .iter()
        .find(|u| u.crate_name == "generated" && u.kind == "lib")
        .unwrap();
    let cause = generated.miss_cause.as_ref().unwrap();
    assert_eq!(cause.differences[0].what.as_str(), "root", "{cause:?}");

    // A source file changed: its unit names the file, its dependents the dependency.
    let lib = ws2.join("util/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{text}\npub fn added() {{}}\n")).unwrap();
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = assert_reconciles(&ws2, &b.stderr());
    let unit = |name: &str| {
        r.units
            .iter()
            .find(|u| u.crate_name == name && u.kind != "build-script")
            .unwrap()
            .clone()
    };
    let util = unit("util").miss_cause.unwrap();
    assert!(
        util.differences
            .iter()
            .any(|d| d.what.as_str() == "source-file"
                && d.name
                    .as_deref()
                    .is_some_and(|n| n.ends_with("util/src/lib.rs"))),
        "{util:?}"
    );
    let mid = unit("mid").miss_cause.unwrap();
    assert!(
        mid.differences
            .iter()
            .any(|d| d.what.as_str() == "dependency" && d.name.as_deref() == Some("util")),
        "{mid:?}"
    );

    // A feature: `util` is built with `loud` now.
    let b = xcache_build(&ws2, &s.store(), &["--features", "loud"], &[]);
    b.assert_success();
    let r = assert_reconciles(&ws2, &b.stderr());
    let util = r
        .units
        .iter()
        .find(|u| u.crate_name == "util")
        .and_then(|u| u.miss_cause.clone())
        .unwrap();
    assert!(
        util.differences.iter().any(|d| d.what.as_str() == "feature"
            && d.now.as_deref().is_some_and(|n| n.contains("loud"))),
        "{util:?}"
    );
    assert!(util.hint.is_some());

    // `explain` says the same.
    let out = xcache(&ws2, &s, &["explain", "util"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("util 0.1.0 util (lib): compiled"), "{text}");
    assert!(text.contains("feature --cfg"), "{text}");
    assert!(text.contains("loud"), "{text}");
    let out = xcache(&ws2, &s, &["explain", "util@9.9.9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("failed to find package `util@9.9.9`"), "{err}");
    assert!(err.contains("hint: name a package"), "{err}");

    // Across builds: four recorded, the store's size, the causes.
    let out = xcache(&ws2, &s, &["stats", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["builds"], 4);
    assert!(v["local"]["entries"].as_u64().unwrap() > 0);
    assert!(v["local"]["bytes"].as_u64().unwrap() > 0);
    let causes: Vec<&str> = v["miss_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cause"].as_str().unwrap())
        .collect();
    for c in ["first-seen", "root", "source-file", "dependency", "feature"] {
        assert!(causes.contains(&c), "{c} in {causes:?}");
    }
    let out = xcache(&ws2, &s, &["stats"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("builds recorded: 4"), "{text}");
    assert!(text.contains("local store: "), "{text}");
    let out = xcache(&ws2, &s, &["doctor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  holds: "), "{text}");
}

#[test]
fn markdown_goes_to_the_job_summary() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let summary = s.path("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let env = [("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())];
    xcache_build(&ws, &s.store(), &[], &env).assert_success();
    let out = xcache(&ws, &s, &["report", "--format", "markdown"]);
    assert!(out.status.success());
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.starts_with("### cargo-xcache: 0 of 7 units from the cache"),
        "{md}"
    );
    assert!(md.contains("| seeded | restored | compiled | ran | uncacheable | failed |"));
    assert!(md.contains("first build of this unit"), "{md}");
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("earlier step\n"), "{written}");
    assert!(written.contains(&md), "{written}");
}

#[test]
fn quiet_verbose_and_a_failed_cargo_keep_their_word() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let b = xcache_build(&ws, &s.store(), &["-q"], &[]);
    b.assert_success();
    assert!(!b.stderr().contains("xcache:"), "{}", b.stderr());
    let before = std::fs::read(ws.join("target/xcache/report.json")).unwrap();

    // An unknown flag: cargo fails before building anything; the report stays.
    let b = xcache_build(&ws, &s.store(), &["--no-such-flag"], &[]);
    assert!(!b.output.status.success());
    assert!(b.stderr().contains("was left as it was"), "{}", b.stderr());
    assert_eq!(
        std::fs::read(ws.join("target/xcache/report.json")).unwrap(),
        before
    );

    // `-v`: each unit's outcome as it happens, in the report's words: one line for
    // every unit a wrapper handled (seeded ones are placed before cargo starts: here
    // none is, so that the wrapper restores every unit).
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &["-v"], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    let err = b.stderr();
    assert!(err.contains("xcache: restored app 0.1.0 (bin)"), "{err}");
    let r = assert_reconciles(&ws2, &err);
    let unit_lines = err
        .lines()
        .filter(|l| {
            ["restored", "compiled", "ran", "uncacheable", "failed"]
                .iter()
                .any(|w| l.starts_with(&format!("xcache: {w} ")))
        })
        .count();
    assert_eq!(unit_lines, r.summary.units - r.summary.seeded, "{err}");
    // Each line comes before the summary line: printed as the unit finished.
    let summary_at = err
        .find(&format!("xcache: {} units:", r.summary.units))
        .unwrap();
    assert!(err.find("xcache: restored app").unwrap() < summary_at);

    // `-q` with a store kept tiny: the store's eviction line is ours and is not
    // printed (entries used in the last hour are never evicted: the store is aged
    // first, and each build uses one package's entries); a warning that matters (an
    // unusable store) still is, once.
    let tiny = [("XCACHE_CACHE_SIZE", "1K")];
    // Every file two hours old, as if no build had used the store since.
    common::age(&s.store(), 2 * 3600);
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b = xcache_build(&ws3, &s.store(), &["-p", "util"], &tiny);
    b.assert_success();
    assert!(b.stderr().contains("xcache: evicted "), "{}", b.stderr());
    // The store filled again, then the same with `-q`: entries go, the line does not.
    xcache_build(&ws2, &s.store(), &["--features", "util/loud"], &[]).assert_success();
    common::age(&s.store(), 2 * 3600);
    let before = entries(&s.store());
    let b = xcache_build(&ws3, &s.store(), &["-q", "-p", "macros"], &tiny);
    b.assert_success();
    assert!(entries(&s.store()) < before, "nothing was evicted");
    assert!(!b.stderr().contains("xcache:"), "{}", b.stderr());
    let not_a_dir = s.path("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    let ws4 = s.checkout("basic-workspace", "ws4");
    let b = xcache_build(&ws4, &not_a_dir, &["-q"], &[]);
    b.assert_success();
    let err = b.stderr();
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning: xcache:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(!err.lines().any(|l| l.starts_with("xcache:")), "{err}");
}

/// How many entries the store holds.
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                entries(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "xce"))
            }
        })
        .sum()
}

/// A build that only found its units in the store leaves the count (a walk of the whole
/// store) for an hour, and counts once the last count is older; one that compiled counts
/// when what it added may take the store past nine tenths of its size by the last count
/// and the ledger of what builds added since, else adds its bytes to the ledger.
#[test]
fn the_store_is_counted_after_builds_that_wrote_to_it() {
    let s = Scratch::new();
    let counted = || {
        let p = s.store().join("v2/gc.counted");
        std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let set = |ago: u64| {
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        std::fs::File::open(s.store().join("v2/gc.counted"))
            .unwrap()
            .set_modified(then)
            .unwrap();
        counted()
    };
    let ws = s.checkout("basic-workspace", "a/ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let after_cold = counted();
    assert!(
        after_cold.elapsed().unwrap().as_secs() < 600,
        "{after_cold:?}"
    );

    // Everything from the store, 10 minutes after the last count: not counted.
    let ten_minutes_ago = set(600);
    let warm = s.checkout("basic-workspace", "b/ws");
    xcache_build(&warm, &s.store(), &[], &[]).assert_success();
    let r = read_report(&warm);
    assert_eq!(r.summary.misses, 0, "{:?}", r.summary);
    assert_eq!(counted(), ten_minutes_ago);

    // The same two hours after the last count: counted.
    let two_hours_ago = set(2 * 3600);
    let again = s.checkout("basic-workspace", "c/ws");
    xcache_build(&again, &s.store(), &[], &[]).assert_success();
    assert!(counted() > two_hours_ago);

    // A build that compiles, with room in the store by the last count and what builds
    // added since (`gc.added`): not counted; what it added goes in the ledger.
    let ten_minutes_ago = set(600);
    let changed = s.checkout("basic-workspace", "d/ws");
    xcache_build(&changed, &s.store(), &["--features", "util/loud"], &[]).assert_success();
    let r = read_report(&changed);
    assert!(r.summary.misses > 0);
    assert_eq!(counted(), ten_minutes_ago);
    let number = |name: &str| -> u64 {
        std::fs::read_to_string(s.store().join("v2").join(name))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse::<u64>().unwrap())
            .sum()
    };
    let ledger = number("gc.added");
    assert!(ledger > r.summary.bytes_stored, "{ledger} {:?}", r.summary);

    // One that may take the store past nine tenths of its size with what it adds:
    // counted, and the ledger starts again.
    let full = number("gc.counted") + ledger;
    let release = s.checkout("basic-workspace", "e/ws");
    let size = full.to_string();
    xcache_build(
        &release,
        &s.store(),
        &["--release"],
        &[("XCACHE_CACHE_SIZE", size.as_str())],
    )
    .assert_success();
    assert!(read_report(&release).summary.misses > 0);
    assert!(counted() > ten_minutes_ago);
    assert!(!s.store().join("v2/gc.added").exists());
}

#[test]
fn wrappers_say_which_units_are_in_flight() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    // The wrapper as `cargo xcache build` starts it, with the events file kept.
    let events = s.path("events.jsonl");
    let out = base_command(Path::new("cargo"), &ws, &s.store())
        .arg("build")
        .env("RUSTC_WRAPPER", xcache_exe())
        .env("XCACHE_EVENTS", &events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let stream = xcache::wrapper::read_stream(&events).unwrap();
    // Every unit done was announced first by the same wrapper; none is left in flight.
    assert!(!stream.events.is_empty());
    assert!(stream.in_flight.is_empty(), "{:?}", stream.in_flight);
    let started: Vec<xcache::wrapper::StartEvent> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(started.len(), stream.events.len(), "{text}");
    for e in &stream.events {
        let s = started
            .iter()
            .find(|s| s.pid == e.pid)
            .expect("a start line");
        assert_eq!(s.started, xcache::wrapper::UnitName::from(&e.unit));
    }
    // A start line alone is a unit in flight, named as cargo's bar names it.
    let partial = s.path("partial.jsonl");
    let first_start = text.lines().find(|l| l.contains("\"started\"")).unwrap();
    std::fs::write(&partial, format!("{first_start}\n")).unwrap();
    let stream = xcache::wrapper::read_stream(&partial).unwrap();
    assert_eq!(stream.in_flight.len(), 1);
    assert!(stream.events.is_empty());
    assert_eq!(
        xcache::report::in_flight_names(&stream.in_flight),
        stream.in_flight[0].started.label()
    );
}

#[test]
fn a_build_script_run_miss_names_its_key_parts() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    // Another checkout, not seeded (so cargo runs the script), with another value of
    // a variable the run's key covers (and no rustc unit's does): the rustdoc cargo
    // names to build scripts. (A C variable such as `CFLAGS` keys only the runs that
    // read it, which this script does not.)
    let ws2 = s.checkout("basic-workspace", "ws2");
    let env = [("XCACHE_SEED", "0"), ("RUSTDOC", "/nonexistent/rustdoc")];
    let b = xcache_build(&ws2, &s.store(), &[], &env);
    b.assert_success();
    let r = assert_reconciles(&ws2, &b.stderr());
    let run = |r: &BuildReport| {
        r.units
            .iter()
            .find(|u| u.kind == "build-script-run")
            .unwrap()
            .clone()
    };
    let cause = run(&r).miss_cause.expect("the run missed");
    let got: Vec<(&str, Option<&str>)> = cause
        .differences
        .iter()
        .map(|d| (d.what.as_str(), d.name.as_deref()))
        .collect();
    assert_eq!(got, [("env-var", Some("RUSTDOC"))], "{cause:?}");
    let out = xcache(&ws2, &s, &["explain", "generated"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("generated 0.1.0 build_script_build (build-script-run): ran"),
        "{text}"
    );
    assert!(text.contains("    - env-var RUSTDOC changed"), "{text}");

    // The file the script declared (`rerun-if-changed=data.txt`) is named.
    let data = ws2.join("generated/data.txt");
    let words = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, format!("{words} more")).unwrap();
    let b = xcache_build(&ws2, &s.store(), &[], &env);
    b.assert_success();
    let r = assert_reconciles(&ws2, &b.stderr());
    let cause = run(&r).miss_cause.expect("the run missed");
    let got: Vec<(&str, Option<&str>)> = cause
        .differences
        .iter()
        .map(|d| (d.what.as_str(), d.name.as_deref()))
        .collect();
    // The path as the run saw it: below its workspace's root (`key::run_root`).
    assert_eq!(
        got,
        [("source-file", Some("@@xcache:ws@@/generated/data.txt"))],
        "{cause:?}"
    );
}

/// Where Debian's chromium is; the test command (`.ci/run`) installs it.
fn chromium() -> std::path::PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return String::from_utf8(out.stdout).unwrap().trim().into();
        }
    }
    panic!("chromium is not installed: run .ci/run, or apt-get install chromium");
}

#[test]
fn the_html_timeline_renders_in_headless_chromium() {
    let s = Scratch::new();
    // A warm build elsewhere with units restored (no seeding) and compiled (`generated`
    // is bound to the first place, and what depends on it compiles too).
    let ws = s.bound_checkout("ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let ws2 = s.bound_checkout("ws2");
    xcache_build(&ws2, &s.store(), &[], &[("XCACHE_SEED", "0")]).assert_success();
    let page = s.path("timeline.html");
    let out = xcache(&ws2, &s, &["report", "--html", page.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched.
    for fetch in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(fetch), "{fetch}");
    }

    let profile = s.path("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    // The script ran (it marks the body once the tables are sortable).
    assert!(dom.contains("data-ready=\"1\""), "{dom}");
    let r = read_report(&ws2);
    let timed = r.units.iter().filter(|u| u.start_ms.is_some()).count();
    assert_eq!(dom.matches("class=\"bar ").count(), timed, "{dom}");
    assert!(dom.contains("bar c-restored"), "{dom}");
    assert!(dom.contains("bar c-compiled"), "{dom}");
    assert!(dom.contains(" critical\""), "{dom}");
    assert_eq!(
        dom.matches("<tr class=").count(),
        r.units.len(),
        "one row per unit"
    );
    assert!(dom.contains(&format!("cargo-xcache: {} units:", r.summary.units)));
}

#[test]
fn every_miss_cause_code_has_a_section_in_the_book() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/reference/report.md"),
    )
    .unwrap();
    for kind in xcache::report::DiffKind::all() {
        assert!(
            page.contains(&format!("### `{}`", kind.as_str())),
            "no section for {}",
            kind.as_str()
        );
    }
}

/// A first build (empty store, no remote) has nothing to place before cargo: cargo
/// starts at once and the workspace is read while it works. The build is the same, its
/// messages are all shown, and what it stored seeds the next checkout; once the store
/// holds seeds, or a workspace file may name a remote, the plan comes first again.
#[test]
fn a_first_build_starts_cargo_before_the_plan() {
    use crate::common::basic::EXPECTED_OUTPUT;
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    let err = b.stderr();
    // cargo's messages, held until the plan was read, then shown.
    assert!(err.contains("Compiling app"), "{err}");
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = common::Report::read(&ws.join("target"));
    assert_eq!(r.0["summary"]["cargo_before_plan"], true, "{err}");
    assert!(r.summary("captured") > 0);
    // The wrappers' files were the run's own, not the target dir's.
    let left: Vec<_> = std::fs::read_dir(ws.join("target/xcache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("events-") || n.starts_with("pending-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The store now holds seeds: they are placed first.
    let ws2 = s.checkout("basic-workspace", "ws2");
    let warm = xcache_build(&ws2, &s.store(), &[], &[]);
    warm.assert_success();
    let r = common::Report::read(&ws2.join("target"));
    assert_eq!(r.0["summary"]["cargo_before_plan"], false);
    assert!(r.summary("seeded") > 0);
    assert_eq!(warm.run("app"), EXPECTED_OUTPUT);

    // An empty store, but a workspace file that could name a remote: plan first.
    let s3 = Scratch::new();
    let ws3 = s3.checkout("basic-workspace", "ws3");
    std::fs::write(ws3.join("xcache.toml"), "read_only = true\n").unwrap();
    xcache_build(&ws3, &s3.store(), &[], &[]).assert_success();
    let r = common::Report::read(&ws3.join("target"));
    assert_eq!(r.0["summary"]["cargo_before_plan"], false);
}

/// A package whose `package.workspace` puts the workspace root outside the directories
/// above it: an `xcache.toml` there is read only with the plan, after cargo started.
/// The build goes on without that remote and says so; the next build uses it.
#[test]
fn a_remote_found_only_with_the_plan_is_named_and_not_used() {
    let s = Scratch::new();
    let root = s.path("tree");
    let (ws, member) = (root.join("ws"), root.join("member"));
    std::fs::create_dir_all(member.join("src")).unwrap();
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[workspace]\nmembers = [\"../member\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    std::fs::write(
        member.join("Cargo.toml"),
        "[package]\nname = \"member\"\nversion = \"0.1.0\"\nedition = \"2021\"\nworkspace = \"../ws\"\n",
    )
    .unwrap();
    std::fs::write(
        member.join("src/main.rs"),
        "fn main() { println!(\"hi\"); }\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("xcache.toml"),
        "remote = \"redis://127.0.0.1:1/0\"\n",
    )
    .unwrap();
    let b = xcache_build(&member, &s.store(), &[], &[]);
    b.assert_success();
    let err = b.stderr();
    assert!(
        err.contains("is not used by this build") && err.contains("xcache.toml"),
        "{err}"
    );
    let r = common::Report::read(&ws.join("target"));
    assert_eq!(r.0["summary"]["cargo_before_plan"], true, "{err}");
    assert!(r.0["remote"].is_null(), "{}", r.0["remote"]);
}

/// In each of cargo's other layouts (a build dir apart; the new layout, alone and with a
/// build dir apart): a miss is explained by `explain` as in the legacy layout, and
/// `report --html` writes the timeline of the build, from the report the target dir
/// keeps wherever cargo kept the units.
#[test]
fn explain_and_the_html_timeline_in_every_layout() {
    use crate::common::layouts::{CargoLayout, pairs};
    for layout in CargoLayout::others() {
        let s = Scratch::new();
        // Each checkout with a build dir of its own (one shared would keep the second
        // build's unchanged units fresh, and out of its report).
        let first = layout.env(&s.path("build-dir-1"));
        let ws = s.checkout("basic-workspace", "ws");
        xcache_build(&ws, &s.store(), &[], &pairs(&first)).assert_success();
        let env = layout.env(&s.path("build-dir-2"));
        let env = pairs(&env);
        let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
        xcache_build(&ws2, &s.store(), &["--features", "loud"], &env).assert_success();
        layout.assert_records_apart(&ws2.join("target"));
        let run = |args: &[&str]| {
            base_command(&xcache_exe(), &ws2, &s.store())
                .envs(env.iter().copied())
                .arg("xcache")
                .args(args)
                .output()
                .unwrap()
        };
        let out = run(&["explain", "util"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {text}", layout.name);
        assert!(
            text.contains("util 0.1.0 util (lib): compiled") && text.contains("loud"),
            "{}: {text}",
            layout.name
        );
        let page = s.path("timeline.html");
        let out = run(&["report", "--html", page.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            layout.name,
            String::from_utf8_lossy(&out.stderr)
        );
        // Every unit has its row: those compiled, and those planted before cargo
        // started.
        let html = std::fs::read_to_string(&page).unwrap();
        for unit in ["util", "mid", "app", "macros", "generated"] {
            let row = format!("<td>{unit}</td><td>0.1.0</td>");
            assert!(html.contains(&row), "{}: {unit} has no row", layout.name);
        }
        assert!(
            html.contains(">seeded<"),
            "{}: nothing planted",
            layout.name
        );
    }
}
