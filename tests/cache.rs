//! Cache behaviour as scenario x modification x expectation, read from cargo's JSON
//! messages and from our report — never from timing.

use crate::common;

use std::path::Path;

use crate::common::basic::{CACHEABLE, EXPECTED_OUTPUT};
use crate::common::{
    Build, Report, Scratch, assert_warned_once, base_command, cargo_build, xcache_build, xcache_exe,
};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Cold build of a fresh checkout at `ws1`, checked for the cold expectations.
fn cold(s: &Scratch) -> Build {
    let ws = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(r.with_outcome("hit"), Vec::<String>::new());
    // The build script's failing probe compile is not a unit of the build.
    assert_eq!(r.with_outcome("error"), Vec::<String>::new());
    // Six compiled units and the run of `generated`'s build script.
    assert_eq!(r.summary("units"), 7);
    assert_eq!(r.runs()["generated"], ("miss".to_string(), None));
    assert_eq!(r.with_outcome("uncacheable"), Vec::<String>::new());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    b
}

#[test]
fn moved_checkout_and_other_target_dir_hit_every_cacheable_unit() {
    let s = Scratch::new();
    let cold = cold(&s);
    assert!(
        cold.diagnostics()
            .iter()
            .any(|d| d.contains("never_called")),
        "the fixture's warning shows on the cold build"
    );

    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    let t2 = s.path("target-by-flag");
    let warm = xcache_build(
        &ws2,
        &s.store(),
        &["--target-dir", t2.to_str().unwrap()],
        &[],
    );
    warm.assert_success();
    let r = Report::read(&t2);
    // Every unit, `generated` too: it reads `env!("OUT_DIR")`, a path that could be
    // turned into data (`env!("OUT_DIR").len()`, which binds: the soundness case
    // `paths`), but its expansion shows the path names only the file it includes.
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    assert!(r.with_outcome("miss").is_empty());
    assert_eq!(r.summary("hits"), 7);
    assert_eq!(r.runs()["generated"].0, "hit");
    assert_eq!(warm.run("app"), EXPECTED_OUTPUT);
    // The workspace crate's warning is replayed from the cache, exactly.
    assert_eq!(
        warm.diagnostics()
            .iter()
            .filter(|d| d.contains("never_called"))
            .collect::<Vec<_>>(),
        cold.diagnostics()
            .iter()
            .filter(|d| d.contains("never_called"))
            .collect::<Vec<_>>()
    );

    // And once more through CARGO_TARGET_DIR, from a third directory.
    let ws3 = s.checkout("basic-workspace", "third/ws3");
    let t3 = s.path("target-by-env");
    let b3 = xcache_build(
        &ws3,
        &s.store(),
        &[],
        &[("CARGO_TARGET_DIR", t3.to_str().unwrap())],
    );
    b3.assert_success();
    assert_eq!(Report::read(&t3).with_outcome("hit"), names(CACHEABLE));
    assert_eq!(b3.run("app"), EXPECTED_OUTPUT);

    // Where the target dir is the same path again (a fresh clone where the old one
    // was, as on a CI runner), every unit hits too.
    std::fs::remove_dir_all(&t2).unwrap();
    let ws4 = s.checkout("basic-workspace", "fourth/ws4");
    let b4 = xcache_build(
        &ws4,
        &s.store(),
        &["--target-dir", t2.to_str().unwrap()],
        &[("XCACHE_SEED", "0")],
    );
    b4.assert_success();
    assert_eq!(Report::read(&t2).with_outcome("hit"), names(CACHEABLE));
    assert_eq!(b4.run("app"), EXPECTED_OUTPUT);
}

/// A crate that loads no proc-macro and no crate but the sysroot's, and reads
/// `OUT_DIR` only as the path of the code its build script wrote (`generated`), is
/// cleared of the target dir by reading its sources: no expansion runs. With a compiler
/// (`RUSTC`, a program in front of rustc) that fails every expansion, which leaves a
/// unit bound to its roots, `generated` still hits in a moved checkout with another
/// target dir, and the program is plain cargo's.
#[test]
fn an_include_of_the_out_dir_needs_no_expansion() {
    let s = Scratch::new();
    let rustc = String::from_utf8(
        std::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rustc = format!("{}/bin/rustc", rustc.trim());
    let log = s.path("expansions.log");
    let source = s.path("no-expansion.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n\
             int main(int argc, char **argv) {{\n\
             for (int i = 1; i < argc; i++)\n\
             if (strncmp(argv[i], \"-Zunpretty=\", 11) == 0) {{\n\
             FILE *f = fopen(\"{}\", \"a\"); if (f) {{ fputs(argv[i], f); fclose(f); }}\n\
             return 1; }}\n\
             argv[0] = \"{rustc}\"; execv(argv[0], argv); return 127; }}\n",
            log.display()
        ),
    )
    .unwrap();
    let compiler = s.path("no-expansion");
    let cc = std::process::Command::new("cc")
        .arg("-o")
        .arg(&compiler)
        .arg(&source)
        .status()
        .unwrap();
    assert!(cc.success());
    let env = [("RUSTC", compiler.to_str().unwrap())];
    let ws1 = s.checkout("basic-workspace", "ws1");
    xcache_build(&ws1, &s.store(), &[], &env).assert_success();
    assert_eq!(
        Report::read(&ws1.join("target")).with_outcome("miss"),
        names(CACHEABLE)
    );

    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    let t2 = s.path("target2");
    let warm = xcache_build(
        &ws2,
        &s.store(),
        &["--target-dir", t2.to_str().unwrap()],
        &env,
    );
    warm.assert_success();
    let r = Report::read(&t2);
    assert_eq!(
        r.with_outcome("hit"),
        names(CACHEABLE),
        "expansions refused: {:?}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(!log.exists(), "an expansion was asked for");
    assert_eq!(warm.run("app"), EXPECTED_OUTPUT);
}

/// Applies `modify` to a second checkout, builds it with `args`/`env` into a fresh target
/// dir, and checks which units missed and what the program prints.
fn modified(
    modify: impl FnOnce(&Path),
    args: &[&str],
    env: &[(&str, &str)],
    expect_miss: &[&str],
    expect_output: &str,
) -> Scratch {
    let s = Scratch::new();
    cold(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    modify(&ws2);
    let b = xcache_build(&ws2, &s.store(), args, env);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    let mut expect_miss: Vec<&str> = expect_miss.to_vec();
    expect_miss.sort();
    expect_miss.dedup();
    assert_eq!(r.with_outcome("miss"), names(&expect_miss), "misses");
    let expect_hit: Vec<&str> = CACHEABLE
        .iter()
        .copied()
        .filter(|c| !expect_miss.contains(c))
        .collect();
    assert_eq!(r.with_outcome("hit"), names(&expect_hit), "hits");
    assert_eq!(b.run("app"), expect_output);
    s
}

#[test]
fn edited_source_misses_the_crate_and_its_dependents() {
    let s = modified(
        |ws| {
            let p = ws.join("util/src/lib.rs");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replace("hello from a text file", "unused")).unwrap();
            std::fs::write(ws.join("util/src/greeting.txt"), "edited greeting\n").unwrap();
        },
        &[],
        &[],
        &["app:bin", "mid:lib", "util:lib"],
        &EXPECTED_OUTPUT.replace("hello from a text file", "edited greeting"),
    );
    // The original sources still hit: the store keeps both variants.
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b = xcache_build(&ws3, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(
        Report::read(&ws3.join("target")).with_outcome("hit"),
        names(CACHEABLE)
    );
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

#[test]
fn edited_build_script_input_misses_the_generated_crate() {
    modified(
        |ws| std::fs::write(ws.join("generated/data.txt"), "alpha beta gamma delta\n").unwrap(),
        &[],
        &[],
        &["app:bin", "generated:lib", "mid:lib"],
        &EXPECTED_OUTPUT
            .replace("alpha+beta+gamma", "alpha+beta+gamma+delta")
            .replace("count=3", "count=4"),
    );
}

#[test]
fn changed_option_env_variable_misses_the_reader() {
    modified(
        |_| {},
        &[],
        &[("XCACHE_FIXTURE_FLAVOR", "spicy")],
        &["app:bin", "mid:lib", "util:lib"],
        &EXPECTED_OUTPUT.replace("flavor=plain", "flavor=spicy"),
    );
}

#[test]
fn changed_feature_misses_the_crates_it_reaches() {
    modified(
        |_| {},
        &["--features", "loud"],
        &[],
        &["app:bin", "mid:lib", "util:lib"],
        &EXPECTED_OUTPUT.replace("volume=quiet", "volume=LOUD"),
    );
}

#[test]
fn changed_rustflags_miss_everything() {
    modified(
        |_| {},
        &[],
        &[("RUSTFLAGS", "--cfg xcache_fixture_cfg")],
        CACHEABLE,
        &EXPECTED_OUTPUT.replace("rustflags=without-cfg", "rustflags=with-cfg"),
    );
}

#[test]
fn different_compiler_misses_everything() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = shim_dir.path().join("rustc-shim");
    std::fs::write(
        &shim,
        "#!/bin/sh\n\
         if [ \"$1\" = \"-vV\" ]; then rustc -vV | sed 's/^commit-hash: .*/commit-hash: 0123456789abcdef/'; exit 0; fi\n\
         exec rustc \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    modified(
        |_| {},
        &[],
        &[("RUSTC", shim.to_str().unwrap())],
        CACHEABLE,
        EXPECTED_OUTPUT,
    );
}

#[test]
fn compile_error_is_reported_exactly_as_without_the_cache() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let lib = ws.join("mid/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        format!("{text}\npub fn broken() -> u32 {{ \"not a number\" }}\n"),
    )
    .unwrap();

    let plain = cargo_build(&ws, &["--target-dir", s.path("t0").to_str().unwrap()], &[]);
    assert!(!plain.status.success());
    // What rustc said, in order, without cargo's scheduling lines (which jobs were
    // running, who waited for a lock), which vary from run to run with or without a cache.
    let filter = |stderr: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| {
                !(l.starts_with("   Compiling")
                    || l.starts_with("    Blocking")
                    || l.starts_with("xcache:")
                    || l.starts_with("warning: build failed, waiting")
                    || (l.starts_with("warning: `") && l.contains("generated")))
            })
            .map(str::to_string)
            .collect()
    };
    let expected = filter(&plain.stderr);
    assert!(
        expected.iter().any(|l| l.contains("error[E0308]")),
        "{expected:?}"
    );
    for t in ["t1", "t2"] {
        let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
        cmd.args([
            "xcache",
            "build",
            "--target-dir",
            s.path(t).to_str().unwrap(),
        ]);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), plain.status.code(), "exit code ({t})");
        assert_eq!(filter(&out.stderr), expected, "stderr ({t})");
    }
    // The second run restored the dependencies; the failing unit is never cached.
    let r = Report::read(&s.path("t2"));
    assert_eq!(
        r.with_outcome("hit"),
        names(&[
            "build_script_build:build-script",
            "generated:lib",
            "macros:proc-macro",
            "util:lib"
        ])
    );
    assert!(r.with_outcome("miss").is_empty());
    assert_eq!(r.with_outcome("error"), names(&["mid:lib"]));
    assert_eq!(r.reason_of("mid").as_deref(), Some("rustc-failed"));
}

#[test]
fn drop_in_wrapper_shares_entries_with_the_build_command() {
    let s = Scratch::new();
    cold(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    let events = s.path("events.jsonl");
    let mut cmd = base_command(Path::new("cargo"), &ws2, &s.store());
    cmd.args(["build", "--message-format=json"])
        .env("RUSTC_WRAPPER", xcache_exe())
        .env("XCACHE_EVENTS", &events);
    let b = Build::from_output(cmd.output().unwrap(), &ws2);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let text = std::fs::read_to_string(&events).unwrap();
    let mut hits: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| e["unit"].clone())
        .filter(|e| e["outcome"] == "hit")
        .map(|e| {
            format!(
                "{}:{}",
                e["crate_name"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect();
    hits.sort();
    // The drop-in wrapper gives build scripts the shim too: the run is replayed.
    let mut expected = names(CACHEABLE);
    expected.push("build_script_build:build-script-run".to_string());
    expected.sort();
    assert_eq!(hits, expected);
}

#[test]
fn corrupt_entries_are_detected_replaced_and_never_fail_the_build() {
    let s = Scratch::new();
    cold(&s);
    let mut corrupted = 0;
    for dir in std::fs::read_dir(s.store().join("v2/entries")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let mut bytes = std::fs::read(&p).unwrap();
            // Damaged in the part every restore reads (the first block holds the
            // header) and in the middle. A restore that links a file from its loose
            // object stops reading before that file, so damage only there would go
            // unseen, and unused, until the object is gone.
            for at in [64.min(bytes.len() / 8), bytes.len() / 2] {
                bytes[at] ^= 0xff;
                bytes[at + 1] ^= 0xff;
            }
            std::fs::write(&p, bytes).unwrap();
            corrupted += 1;
        }
    }
    // Each cacheable unit has its entry and its seed pack (see `seed`); the build
    // script's run has its entry.
    assert_eq!(corrupted, 2 * CACHEABLE.len() + 1);
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(r.runs()["generated"], ("miss".to_string(), None));
    assert_warned_once(&b, &r, "corrupt-entry");
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);

    let ws3 = s.checkout("basic-workspace", "ws3");
    let b3 = xcache_build(&ws3, &s.store(), &[], &[]);
    b3.assert_success();
    assert_eq!(
        Report::read(&ws3.join("target")).with_outcome("hit"),
        names(CACHEABLE)
    );
}

#[test]
fn unusable_store_warns_once_and_builds() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let not_a_dir = s.path("store-is-a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    // The front-end cannot create the store either: it says so once, naming the path
    // and the variable, and the build goes on without the store.
    let b = xcache_build(&ws, &not_a_dir, &[], &[]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert!(
        b.stderr().contains(not_a_dir.to_str().unwrap()),
        "{}",
        b.stderr()
    );
    assert!(b.stderr().contains("XCACHE_DIR"), "{}", b.stderr());
    assert_eq!(
        b.stderr().matches("[store-write-failed]").count(),
        1,
        "{}",
        b.stderr()
    );
    std::fs::remove_dir_all(ws.join("target")).unwrap();

    // In drop-in mode the wrapper is on its own: it warns and compiles.
    let mut cmd = base_command(Path::new("cargo"), &ws, &not_a_dir);
    cmd.args(["build", "--message-format=json"])
        .env("RUSTC_WRAPPER", xcache_exe());
    let b = Build::from_output(cmd.output().unwrap(), &ws);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert_eq!(
        b.stderr().matches("[store-write-failed]").count(),
        1,
        "{}",
        b.stderr()
    );
}

#[test]
fn release_profile_members_hit_after_the_checkout_moves() {
    let s = Scratch::new();
    for ws in ["a/ws", "b/ws"] {
        let ws = s.checkout("basic-workspace", ws);
        let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
        // The release profile is non-incremental by default: no CARGO_INCREMENTAL here.
        cmd.env_remove("CARGO_INCREMENTAL").args([
            "xcache",
            "build",
            "--release",
            "--message-format=json",
        ]);
        let b = Build::from_output(cmd.output().unwrap(), &ws);
        b.assert_success();
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    }
    let r = Report::read(&s.path("b/ws/target"));
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
}

/// A dev-profile build as a developer runs it: cargo compiles workspace members with
/// `-C incremental`.
fn incremental_build(ws: &Path, store: &Path, env: &[(&str, &str)]) -> (Build, Report) {
    let mut cmd = base_command(&xcache_exe(), ws, store);
    cmd.env_remove("CARGO_INCREMENTAL")
        .args(["xcache", "build", "--message-format=json"])
        .envs(env.iter().copied());
    let b = Build::from_output(cmd.output().unwrap(), ws);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    (b, r)
}

#[test]
fn incremental_units_restore_non_incremental_entries_and_are_never_stored() {
    let s = Scratch::new();
    let unit_names = || CACHEABLE.iter().map(|c| c.split(':').next().unwrap());
    // An empty cache: incremental units compile as asked, say why they are not stored,
    // and leave nothing in the store.
    let dev0 = s.checkout("basic-workspace", "dev0");
    let (b, r) = incremental_build(&dev0, &s.store(), &[]);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert_eq!(r.with_outcome("uncacheable"), names(CACHEABLE));
    for name in unit_names() {
        assert_eq!(r.reason_of(name).as_deref(), Some("incremental"), "{name}");
    }
    // Only the build script's run is stored: running a script is never incremental.
    assert_eq!(r.runs()["generated"], ("miss".to_string(), None));
    assert_eq!(
        common::count_files(&s.store().join("v2/entries")),
        1,
        "nothing but the run stored"
    );

    // Entries of a CARGO_INCREMENTAL=0 build do not serve incremental builds: cargo's
    // unit hashes (`-C metadata`, file names) of workspace members include the profile's
    // incremental setting.
    cold(&s);
    let dev1 = s.checkout("basic-workspace", "dev1");
    let (_, r) = incremental_build(&dev1, &s.store(), &[]);
    assert_eq!(r.with_outcome("uncacheable"), names(CACHEABLE));

    // A build with cargo's incremental profile and XCACHE_DROP_INCREMENTAL=1 (the CI
    // setting for caches developers share) compiles without -C incremental and stores.
    let ci = s.checkout("basic-workspace", "ci");
    let (b, r) = incremental_build(&ci, &s.store(), &[("XCACHE_DROP_INCREMENTAL", "1")]);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(common::count_files(&ci.join("target/debug/incremental")), 0);

    // A developer's incremental build elsewhere restores every unchanged unit, and the
    // report says the restore was not incremental.
    let dev = s.checkout("basic-workspace", "elsewhere/dev");
    let (b, r) = incremental_build(&dev, &s.store(), &[]);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    for name in unit_names() {
        assert_eq!(r.unit(name)["non_incremental_restore"], true, "{name}");
    }

    // The developer edits a member: it and what depends on it compile incrementally
    // (and are not stored); what cargo considers fresh is not rebuilt.
    let entries = common::count_files(&s.store().join("v2/entries"));
    std::fs::write(dev.join("util/src/greeting.txt"), "edited greeting\n").unwrap();
    let (b, r) = incremental_build(&dev, &s.store(), &[]);
    assert_eq!(
        b.run("app"),
        EXPECTED_OUTPUT.replace("hello from a text file", "edited greeting")
    );
    assert_eq!(r.summary("units"), 3);
    assert_eq!(
        r.with_outcome("uncacheable"),
        names(&["app:bin", "mid:lib", "util:lib"])
    );
    assert_eq!(r.reason_of("util").as_deref(), Some("incremental"));
    assert!(
        common::count_files(&dev.join("target/debug/incremental")) > 0,
        "rustc kept incremental state"
    );
    assert_eq!(common::count_files(&s.store().join("v2/entries")), entries);
}

#[test]
fn concurrent_builds_share_one_store() {
    let s = Scratch::new();
    let a = s.checkout("basic-workspace", "a");
    let b = s.checkout("basic-workspace", "b");
    let store = s.store();
    std::thread::scope(|scope| {
        let h1 = scope.spawn(|| xcache_build(&a, &store, &[], &[]));
        let h2 = scope.spawn(|| xcache_build(&b, &store, &[], &[]));
        for h in [h1, h2] {
            let b = h.join().unwrap();
            b.assert_success();
            assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        }
    });
    let c = s.checkout("basic-workspace", "c");
    let b3 = xcache_build(&c, &s.store(), &[], &[]);
    b3.assert_success();
    assert_eq!(
        Report::read(&c.join("target")).with_outcome("hit"),
        names(CACHEABLE)
    );
}

#[test]
fn a_unit_built_for_another_cpu_is_not_restored() {
    // `-C target-cpu=native` means this host's CPU: the key holds what it resolves to.
    // A store written on another machine (simulated by rewriting what the records say
    // `native` meant) must not serve this one.
    let s = Scratch::new();
    let native = [("RUSTFLAGS", "-Ctarget-cpu=native")];
    let ws1 = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws1, &s.store(), &[], &native);
    b.assert_success();
    let mut rewritten = 0;
    for p in walk_paths(&s.store().join("v2")) {
        if p.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if rewrite_host_cpu(&mut v) {
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
            rewritten += 1;
        }
    }
    assert!(rewritten > 0, "no record names the host CPU");

    std::fs::remove_dir_all(&ws1).unwrap();
    let ws1 = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws1, &s.store(), &[], &native);
    b.assert_success();
    let r = Report::read(&ws1.join("target"));
    // Every compiled unit targets the CPU; only the build script's run does not.
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(r.summary("seeded"), 0);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// Sets every `host-cpu` input's state to another CPU's; true if there was one.
fn rewrite_host_cpu(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("kind").and_then(|k| k.as_str()) == Some("host-cpu") {
                m.insert("state".into(), "another-cpu;+made-up".into());
                return true;
            }
            let mut any = false;
            for x in m.values_mut() {
                any |= rewrite_host_cpu(x);
            }
            any
        }
        serde_json::Value::Array(a) => {
            let mut any = false;
            for x in a {
                any |= rewrite_host_cpu(x);
            }
            any
        }
        _ => false,
    }
}

fn walk_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_paths(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// By default a wrapper lets cargo go on before it stores (`wrapper::background`); the
/// build waits for those stores before it reports, and what they stored serves the next
/// build. `XCACHE_BACKGROUND_STORE=0` stores first, with the same results.
#[test]
fn entries_stored_after_cargo_went_on_are_complete_when_the_build_ends() {
    let units = |r: &Report| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = r.0["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    format!(
                        "{}:{}",
                        u["crate_name"].as_str().unwrap(),
                        u["kind"].as_str().unwrap()
                    ),
                    u["end_ms"].as_u64().expect("every unit has its end"),
                )
            })
            .collect();
        v.sort();
        v
    };
    for (background, switch) in [(true, "1"), (false, "0")] {
        let s = Scratch::new();
        let ws = s.checkout("basic-workspace", "ws1");
        let env = [("XCACHE_BACKGROUND_STORE", switch)];
        let b = xcache_build(&ws, &s.store(), &[], &env);
        b.assert_success();
        let r = Report::read(&ws.join("target"));
        assert_eq!(r.with_outcome("miss"), names(CACHEABLE), "{switch}");
        assert_eq!(units(&r).len(), 7, "{switch}");
        // Libraries, the binary, the build script's executable (behind its shim, put
        // in first) and the build-script run are stored after cargo went on; the
        // proc-macro never is (dependents name it by its entry key).
        assert_eq!(r.summary("background_ms") > 0, background, "{switch}");
        // Nothing is left running: the pending directory is gone.
        let left: Vec<_> = std::fs::read_dir(ws.join("target/xcache"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pending-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // Everything stored is there for the next checkout.
        let ws2 = s.checkout("basic-workspace", "ws2");
        let warm = xcache_build(&ws2, &s.store(), &[], &env);
        warm.assert_success();
        let r = Report::read(&ws2.join("target"));
        assert_eq!(r.with_outcome("hit"), names(CACHEABLE), "{switch}");
        assert_eq!(r.runs()["generated"].0, "hit", "{switch}");
        assert_eq!(warm.run("app"), EXPECTED_OUTPUT);
    }
}

/// What `git rev-parse --short=10 HEAD` prints in `dir`.
fn commit_of(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A build script that runs git (ripgrep's): git walks up from the checkout to `/`
/// and finds nothing. The record names that walk from the checkout, so a checkout at
/// another depth, built after the first one was deleted, replays the run. (On the disk
/// `/` is on: git stops its walk where another file system is mounted, `/dev/shm` where
/// `.ci/run` puts `TMPDIR`, and a walk that stopped short of `/` is named by its levels,
/// which a deeper checkout does not match: a miss.)
#[test]
fn a_walk_up_from_the_checkout_hits_in_a_deeper_checkout_after_the_first_is_gone() {
    let s = Scratch::on_disk();
    let ws1 = s.checkout("soundness/git-rev", "a/ws");
    let b1 = xcache_build(&ws1, &s.store(), &[], &[]);
    b1.assert_success();
    assert_eq!(
        Report::read(&ws1.join("target")).runs()["git-rev"].0,
        "miss"
    );
    assert_eq!(b1.run("git-rev"), "commit: none\n");
    std::fs::remove_dir_all(s.path("a")).unwrap();

    let ws2 = s.checkout("soundness/git-rev", "elsewhere/much/deeper/ws2");
    let b2 = xcache_build(&ws2, &s.store(), &[], &[]);
    b2.assert_success();
    assert_eq!(Report::read(&ws2.join("target")).runs()["git-rev"].0, "hit");
    assert_eq!(b2.run("git-rev"), "commit: none\n");
}

/// The checkout is a directory of a larger repository (a monorepo), and git finds that
/// repository's commit above it. Another repository, at another commit, holding another
/// checkout: the run is not replayed, though every file the first run read is still
/// there as it was. The first repository made again where it was, at the same commit
/// (a CI runner's fresh clone): replayed. (At another place it is not: the run's path
/// check, made at aliases of the roots, finds no repository above them, so the record
/// is bound to its roots.)
#[test]
fn a_repository_above_the_checkout_is_read_from_the_checkout() {
    let s = Scratch::new();
    common::git_repository_at(&s.path("r1"), "one");
    let ws1 = s.checkout("soundness/git-rev", "r1/ws");
    let b1 = xcache_build(&ws1, &s.store(), &[], &[]);
    b1.assert_success();
    let c1 = commit_of(&ws1);
    assert_eq!(b1.run("git-rev"), format!("commit: {c1}\n"));

    common::git_repository_at(&s.path("r2"), "two");
    let ws2 = s.checkout("soundness/git-rev", "r2/ws");
    let b2 = xcache_build(&ws2, &s.store(), &[], &[]);
    b2.assert_success();
    let c2 = commit_of(&ws2);
    assert_ne!(c1, c2);
    assert_eq!(
        Report::read(&ws2.join("target")).runs()["git-rev"].0,
        "miss"
    );
    assert_eq!(b2.run("git-rev"), format!("commit: {c2}\n"));

    std::fs::remove_dir_all(s.path("r1")).unwrap();
    common::git_repository_at(&s.path("r1"), "one");
    let ws3 = s.checkout("soundness/git-rev", "r1/ws");
    let b3 = xcache_build(&ws3, &s.store(), &[], &[]);
    b3.assert_success();
    assert_eq!(commit_of(&ws3), c1);
    assert_eq!(Report::read(&ws3.join("target")).runs()["git-rev"].0, "hit");
    assert_eq!(b3.run("git-rev"), format!("commit: {c1}\n"));
}

/// Temp files a killed build left in a target dir (over an hour old) are removed by the
/// next build whose sweep is due; a target dir the build made is not walked for them on
/// the way out (none can be there), its first sweep is due a day later.
#[test]
fn a_killed_builds_temp_files_are_swept_from_an_old_target_dir_only_when_due() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws1");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let target = ws.join("target");
    let stamp = target.join("xcache").join("swept");
    assert!(
        stamp.exists(),
        "a target dir the build made is marked swept"
    );
    let left = |name: &str| {
        let p = target.join("debug").join("deps").join(name);
        std::fs::write(&p, b"left by a killed build").unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
        std::fs::File::open(&p).unwrap().set_modified(then).unwrap();
        p
    };
    // Not due: the stamp is fresh.
    let first = left("libx.rlib.xcache-tmp-one");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    assert!(first.exists(), "swept although the last sweep was just now");
    // Due (no stamp, as in a target dir older builds of cargo-xcache made).
    std::fs::remove_file(&stamp).unwrap();
    let second = left("liby.rlib.xcache-tmp-two");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    assert!(
        !first.exists() && !second.exists(),
        "left behind: the sweep did not run"
    );
    assert!(stamp.exists());
}

/// A crate whose proc-macro reads `CARGO_MANIFEST_DIR` with `std::env::var` and uses it
/// as a path only (`fixtures/soundness/macro-paths`' `reads`) is restored in a moved
/// checkout, where those that make a number of it (`lengths`, `canonical`) compile
/// again; every program is plain cargo's there.
#[test]
fn a_proc_macro_reading_the_manifest_dir_as_a_path_is_restored_in_a_moved_checkout() {
    let s = Scratch::new();
    let ws1 = s.checkout("soundness/macro-paths", "ws1");
    xcache_build(&ws1, &s.store(), &[], &[("XCACHE_SEED", "0")]).assert_success();
    let ws2 = s.checkout("soundness/macro-paths", "somewhere/much/longer/ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    let outcomes = r.outcomes();
    assert_eq!(outcomes["reads:bin"], "hit", "{outcomes:?}");
    assert_eq!(outcomes["lengths:bin"], "miss", "{outcomes:?}");
    assert_eq!(outcomes["canonical:bin"], "miss", "{outcomes:?}");
    let plain_ws = s.checkout("soundness/macro-paths", "plain/ws3-longer-still-than-ws2");
    let plain = Build::from_output(
        cargo_build(&plain_ws, &["--message-format=json"], &[]),
        &plain_ws,
    );
    plain.assert_success();
    assert_eq!(b.run("reads"), plain.run("reads"));
    assert_eq!(b.run("reads"), "read through the macro\n");
    let len = |ws: &Path| format!("{}\n", ws.join("lengths").display().to_string().len());
    assert_eq!(b.run("lengths"), len(&ws2));
}
