//! Target-dir seeding: units put in place before cargo starts are fresh for cargo, and
//! cargo never skips a unit whose inputs changed after they were put in place.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::basic::EXPECTED_OUTPUT;
use crate::common::{Build, Report, Scratch, assert_warned_once, cargo_build, xcache_build};

/// A `cargo` that answers everything but `build`: `cargo xcache build` with it plants
/// the target dir and stops, so a test can change inputs between planting and cargo.
fn plant_only_cargo(s: &Scratch) -> PathBuf {
    cargo_script(
        s,
        "plant-only-cargo",
        "#!/bin/sh\nif [ \"$1\" = build ]; then exit 0; fi\nexec cargo \"$@\"\n",
    )
}

/// An executable script `name` in the scratch directory, to stand for cargo (`CARGO`).
fn cargo_script(s: &Scratch, name: &str, text: &str) -> PathBuf {
    let path = s.path(name);
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A cold build in `ws1` that fills the store.
fn fill_store(s: &Scratch) {
    let ws = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert!(Report::read(&ws.join("target")).summary("captured") >= 3);
}

/// The names of a store's seed records.
fn seed_records(store: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for d in std::fs::read_dir(store.join("v2/seeds")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            names.push(f.unwrap().file_name().into_string().unwrap());
        }
    }
    names.sort();
    names
}

/// The front-end captures the units cargo is done with while it runs, those whose
/// events are in while it waits for the wrappers still storing after cargo, and the rest
/// after: every unit once, as a build whose wrappers store before cargo goes on (nothing
/// to wait for) captures them.
#[test]
fn units_captured_while_the_last_store_is_waited_for_are_all_the_units() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws.join("target"));

    let other = s.path("store-in-line");
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b2 = xcache_build(&ws2, &other, &[], &[("XCACHE_BACKGROUND_STORE", "0")]);
    b2.assert_success();
    let r2 = Report::read(&ws2.join("target"));

    assert!(r.summary("captured") >= 3);
    assert_eq!(r.summary("captured"), r2.summary("captured"));
    assert_eq!(seed_records(&s.store()), seed_records(&other));

    // Seeded from the first store, a third checkout builds nothing.
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b3 = xcache_build(&ws3, &s.store(), &[], &[]);
    b3.assert_success();
    assert_eq!(b3.run("app"), EXPECTED_OUTPUT);
    let r3 = Report::read(&ws3.join("target"));
    assert_eq!(r3.summary("misses"), 0);
    assert!(r3.summary("seeded") >= r.summary("captured"));
}

/// A cargo (`CARGO`) that, once the real one has built, runs `after` (a shell command in
/// the workspace) and then lingers: the front-end's capture while cargo runs sees every
/// unit done.
fn lingering_cargo(s: &Scratch, after: &str) -> PathBuf {
    cargo_script(
        s,
        "lingering-cargo",
        &format!(
            "#!/bin/sh\ncargo \"$@\" || exit $?\nif [ \"$1\" = build ]; then sleep 3; {after}; fi\n"
        ),
    )
}

/// Each seed record's fingerprint directories (one per variant), sorted.
fn recorded_variants(store: &Path) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(store.join("v2/seeds")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
            let mut dirs: Vec<String> = v["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["fingerprint_dir"].as_str().unwrap().to_string())
                .collect();
            dirs.sort();
            out.push(dirs);
        }
    }
    out.sort();
    out
}

/// Units cargo is done with are captured while it still runs: one variant each, and a
/// checkout seeded from them builds nothing. A unit whose fingerprint cargo writes again
/// after its capture (the same length, other bytes) is captured again once cargo has
/// exited, from what cargo left: a second variant.
#[test]
fn units_are_captured_while_cargo_runs_and_again_once_cargo_wrote_what_they_read() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws1");
    let lingering = lingering_cargo(&s, "true");
    let b = xcache_build(
        &ws,
        &s.store(),
        &[],
        &[("CARGO", lingering.to_str().unwrap())],
    );
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    assert!(r.summary("captured") >= 3);
    assert!(r.summary("capture_during_ms") > 0, "{}", b.stderr());
    let once = recorded_variants(&s.store());
    assert!(once.iter().all(|v| v.len() == 1), "{once:?}");

    let ws3 = s.checkout("basic-workspace", "ws3");
    let b3 = xcache_build(&ws3, &s.store(), &[], &[]);
    b3.assert_success();
    assert_eq!(b3.run("app"), EXPECTED_OUTPUT);
    let r3 = Report::read(&ws3.join("target"));
    assert_eq!(r3.summary("misses"), 0);

    // cargo writes util's hash file again after util was captured.
    let other = s.path("store-rewritten");
    let ws2 = s.checkout("basic-workspace", "ws2");
    let rewriting = lingering_cargo(
        &s,
        "for f in target/debug/.fingerprint/util-*/lib-util; do printf ffffffffffffffff > \"$f\"; done",
    );
    let b2 = xcache_build(&ws2, &other, &[], &[("CARGO", rewriting.to_str().unwrap())]);
    b2.assert_success();
    let twice = recorded_variants(&other);
    let util: Vec<&Vec<String>> = twice
        .iter()
        .filter(|v| v.iter().any(|d| d.contains("/util-")))
        .collect();
    assert_eq!(util.len(), 1, "{twice:?}");
    assert_eq!(util[0].len(), 2, "util captured again: {twice:?}");
    assert_eq!(
        twice.iter().filter(|v| v.len() == 1).count(),
        once.len() - 1,
        "{twice:?}"
    );
}

/// Plants `ws`'s target dir from the store without building; returns the planted
/// `.fingerprint` directory names.
fn plant(s: &Scratch, ws: &Path) -> Vec<String> {
    let fake = plant_only_cargo(s);
    let b = xcache_build(ws, &s.store(), &[], &[("CARGO", fake.to_str().unwrap())]);
    b.assert_success();
    let mut dirs: Vec<String> = std::fs::read_dir(ws.join("target/debug/.fingerprint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert!(
        dirs.iter().any(|d| d.starts_with("util-")),
        "util not planted: {dirs:?}\n{}",
        b.stderr()
    );
    dirs
}

/// Dates every file of a checkout a minute back, as a checkout made before the build
/// would be (planted files are stamped 50 ms before planting).
fn age(dir: &Path) {
    common::age(dir, 60);
}

fn seeded_units(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["seeded"] == true)
        .map(|u| {
            format!(
                "{}:{}",
                u["crate_name"].as_str().unwrap(),
                u["kind"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

fn plain(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Build {
    let mut all = vec!["--message-format=json"];
    all.extend_from_slice(args);
    let b = Build::from_output(cargo_build(ws, &all, env), ws);
    b.assert_success();
    b
}

/// A fresh clone where the first one was, as on a CI runner or in a Docker layer.
fn fresh_clone_in_place(s: &Scratch, rel: &str) -> PathBuf {
    let ws = s.path(rel);
    std::fs::remove_dir_all(&ws).unwrap();
    let ws = s.checkout("basic-workspace", rel);
    age(&ws);
    ws
}

#[test]
fn seeded_units_are_fresh_for_cargo_in_a_fresh_clone() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = fresh_clone_in_place(&s, "ws1");
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    let seeded = seeded_units(&r);
    assert!(seeded.contains(&"util:lib".to_string()), "{seeded:?}");
    // Every unit was put in place, and cargo found every one fresh: nothing ran.
    let fresh = b.fresh();
    // Six compiled units and the build script's run, planted with `generated`.
    assert_eq!(seeded.len(), 7, "{seeded:?}");
    assert!(seeded.contains(&"build_script_build:build-script-run".to_string()));
    assert_eq!(fresh.len(), 6, "{fresh:?}");
    assert!(fresh.values().all(|f| *f), "{fresh:?}");
    assert_eq!(r.summary("seed_rejected"), 0);
    assert_eq!(r.summary("seeded"), seeded.len() as u64);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    // cargo resolved the workspace while the units were planted, waiting for its build
    // dir's lock, and what it said of the wait is not shown.
    assert_eq!(
        r.0["summary"]["cargo_beside_planting"],
        true,
        "{}",
        b.stderr()
    );
    assert!(
        !b.stderr().lines().any(xcache::plan::is_lock_wait),
        "{}",
        b.stderr()
    );
    // cargo replays the seeded unit's warning itself.
    assert!(b.diagnostics().iter().any(|d| d.contains("never_called")));
}

/// A new target dir gets cargo's answers to its compiler probes as cargo left them after
/// the last build: cargo finds its own fingerprint and probes nothing.
#[test]
fn a_new_target_dir_has_cargos_compiler_probes_answered() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    let log = [("CARGO_LOG", "cargo::util::rustc=debug")];
    let b = xcache_build(&ws2, &s.store(), &[], &log);
    b.assert_success();
    let err = b.stderr();
    assert!(err.contains("rustc info cache hit"), "{err}");
    assert!(!err.contains("rustc info cache miss"), "{err}");
    assert!(!err.contains("different compiler"), "{err}");
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    // And the next build in the same target dir keeps them: `cargo metadata` probes
    // through the same wrapper, so it does not throw the build's answers away.
    let again = xcache_build(&ws2, &s.store(), &[], &log);
    again.assert_success();
    assert!(
        !again.stderr().contains("different compiler"),
        "{}",
        again.stderr()
    );
}

#[test]
fn in_a_moved_checkout_what_is_bound_to_the_old_place_is_not_planted() {
    let s = Scratch::new();
    let ws1 = s.bound_checkout("ws1");
    xcache_build(&ws1, &s.store(), &[], &[]).assert_success();
    let ws2 = s.bound_checkout("elsewhere/ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    // `generated` turns `OUT_DIR` into a number: its seed holds only where the target
    // dir is the same path. What does not depend on it is planted and fresh for cargo;
    // it and its dependents go through cargo and the wrapper, and compile (the number
    // is in `generated`'s crate hash, which its dependents' keys name).
    assert_eq!(
        seeded_units(&r),
        [
            "build_script_build:build-script",
            "macros:proc-macro",
            "util:lib"
        ]
    );
    assert_eq!(
        r.with_outcome("miss"),
        ["app:bin", "generated:lib", "mid:lib"]
    );
    assert_eq!(r.with_outcome("hit").len(), 3, "{:?}", r.outcomes());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

#[test]
fn a_path_dependency_edited_after_planting_is_rebuilt() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    plant(&s, &ws2);
    std::fs::write(ws2.join("util/src/greeting.txt"), "edited after planting").unwrap();
    let b = plain(&ws2, &[], &[]);
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("greeting=edited after planting"));
}

#[test]
fn a_path_dependency_edited_before_planting_is_not_planted() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    std::fs::write(ws2.join("util/src/greeting.txt"), "edited before planting").unwrap();
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert!(!seeded_units(&r).contains(&"util:lib".to_string()));
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("greeting=edited before planting"));
}

#[test]
fn a_feature_changed_after_planting_rebuilds() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    plant(&s, &ws2);
    let b = plain(&ws2, &["--features", "util/loud"], &[]);
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("volume=LOUD"));
}

#[test]
fn rustflags_changed_after_planting_rebuild() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    plant(&s, &ws2);
    let b = plain(&ws2, &[], &[("RUSTFLAGS", "--cfg xcache_fixture_cfg")]);
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("rustflags=with-cfg"));

    // Through xcache: whatever is planted, cargo's fingerprint decides.
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b = xcache_build(
        &ws3,
        &s.store(),
        &[],
        &[("RUSTFLAGS", "--cfg xcache_fixture_cfg")],
    );
    b.assert_success();
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("rustflags=with-cfg"));
}

#[test]
fn an_env_var_read_by_a_crate_decides_planting() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[("XCACHE_FIXTURE_FLAVOR", "spicy")]);
    b.assert_success();
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert!(b.run("app").contains("flavor=spicy"));
}

#[test]
fn seeding_can_be_turned_off() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("seeded"), 0);
    assert_eq!(b.fresh().get("util:lib"), Some(&false));
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// The host triple, from `rustc -vV`.
fn host() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap()
}

#[test]
fn an_explicit_target_is_seeded_too() {
    let s = Scratch::new();
    let host = host();
    let args = ["--target", host.as_str()];
    let ws1 = s.checkout("basic-workspace", "ws1");
    xcache_build(&ws1, &s.store(), &args, &[]).assert_success();
    let ws2 = fresh_clone_in_place(&s, "ws1");
    let b = xcache_build(&ws2, &s.store(), &args, &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    // Host units (the proc-macro, the build script and its run) and target units alike.
    let seeded = seeded_units(&r);
    assert_eq!(seeded.len(), 7, "{seeded:?}");
    assert!(
        seeded.iter().any(|u| u.ends_with(":build-script-run")),
        "{seeded:?}"
    );
    let fresh = b.fresh();
    assert!(fresh.values().all(|f| *f), "{fresh:?}");
    assert!(
        b.executable("app")
            .starts_with(ws2.join("target").join(&host))
    );
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);

    // The same units without --target are other units for cargo: nothing planted
    // for the host-less layout may pass for them.
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b = xcache_build(&ws3, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// Fills the store, then builds a checkout elsewhere whose `.cargo/config.toml` is
/// `config`: the build, its report and the units it planted.
fn seeded_beside_config(s: &Scratch, config: &str) -> (Build, Report, Vec<String>) {
    fill_store(s);
    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    std::fs::create_dir_all(ws2.join(".cargo")).unwrap();
    std::fs::write(ws2.join(".cargo/config.toml"), config).unwrap();
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    let seeded = seeded_units(&r);
    (b, r, seeded)
}

/// `generated`'s build script reads `CARGO_ENCODED_RUSTFLAGS` (as the compiler-probing
/// ones do: `autocfg`, `proc-macro2`, `anyhow`). With no flags set anywhere, the value
/// cargo will give it is known before cargo runs, and the run is planted (the other
/// seed tests count it). With a configuration file that mentions rustflags, here empty
/// ones (the same value for cargo, but not known without reading cargo's configuration
/// as cargo does), the run goes to cargo and the wrapper, which restores it.
#[test]
fn a_run_that_read_cargos_rustflags_is_planted_only_where_they_are_known() {
    let s = Scratch::new();
    let (b, r, seeded) = seeded_beside_config(&s, "[build]\nrustflags = []\n");
    assert!(
        !seeded.contains(&"build_script_build:build-script-run".to_string()),
        "{seeded:?}"
    );
    assert!(seeded.contains(&"util:lib".to_string()), "{seeded:?}");
    assert_eq!(r.runs()["generated"].0, "hit", "{:?}", r.outcomes());
    assert!(r.with_outcome("miss").is_empty(), "{:?}", r.outcomes());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// A configuration file that gives flags only to other triples (ripgrep's: Windows and
/// musl) leaves the value cargo gives this build's scripts known: the run that read it
/// is planted.
#[test]
fn a_run_that_read_cargos_rustflags_is_planted_beside_flags_for_other_triples() {
    let s = Scratch::new();
    let (b, r, seeded) = seeded_beside_config(
        &s,
        "[target.x86_64-pc-windows-msvc]\nrustflags = [\"-C\", \"target-feature=+crt-static\"]\n\
         [target.aarch64-unknown-linux-musl]\nrustflags = [\"-C\", \"link-self-contained=yes\"]\n",
    );
    assert!(
        seeded.contains(&"build_script_build:build-script-run".to_string()),
        "{seeded:?}"
    );
    assert!(r.with_outcome("miss").is_empty(), "{:?}", r.outcomes());
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// The `.rlib` files under `ws`'s `target/debug/deps`, by name.
fn rlibs(ws: &Path) -> std::collections::BTreeMap<String, std::fs::Metadata> {
    std::fs::read_dir(ws.join("target/debug/deps"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rlib"))
        .map(|e| (e.file_name().into_string().unwrap(), e.metadata().unwrap()))
        .collect()
}

/// The build scripts' real executables (behind the shims) in a checkout's target dir.
fn real_executables(ws: &Path) -> std::collections::BTreeMap<String, std::fs::Metadata> {
    let mut out = std::collections::BTreeMap::new();
    for d in std::fs::read_dir(ws.join("target/debug/build")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().into_string().unwrap();
            if name.ends_with(".xcache-real") {
                out.insert(name, f.metadata().unwrap());
            }
        }
    }
    out
}

/// Every loose object in the store (`store::objects`).
fn objects(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(store.join("v2/objects")) else {
        return out;
    };
    for d in rd {
        let d = d.unwrap();
        // The lists of which entry's files have objects are not objects.
        if d.file_name() == "by-entry" {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn rlibs_are_hard_linked_from_the_store_and_their_times_are_never_set() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    fill_store(&s);
    let ws1 = s.path("ws1");
    let before = rlibs(&ws1);
    assert!(before.len() >= 3, "{:?}", before.keys());
    let scripts_before = real_executables(&ws1);
    assert!(!scripts_before.is_empty());
    assert!(!objects(&s.store()).is_empty(), "no objects were made");

    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert!(r.summary("bytes_linked") > 0, "{}", b.stderr());
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    // The same files as the first checkout's (one inode), read-only; the first
    // checkout's times did not move.
    let linked = rlibs(&ws2);
    let util = linked.keys().find(|n| n.starts_with("libutil-")).unwrap();
    assert_eq!(linked[util].ino(), before[util].ino());
    assert_eq!(linked[util].mode() & 0o222, 0);
    for (name, m) in rlibs(&ws1) {
        assert_eq!(m.mtime_nsec(), before[&name].mtime_nsec(), "{name}");
        assert_eq!(m.mtime(), before[&name].mtime(), "{name}");
    }
    // So are the build scripts' real executables (behind the shims), still executable:
    // each is the store's object of its content (copied there when it was compiled,
    // so the first checkout's file stays its own).
    let store_objects = objects(&s.store());
    for (name, m) in real_executables(&ws2) {
        let path = ws2.join("target/debug/build");
        let digest = std::fs::read_dir(&path)
            .unwrap()
            .map(|d| d.unwrap().path().join(&name))
            .find(|p| p.exists())
            .map(|p| {
                blake3::hash(&std::fs::read(p).unwrap())
                    .to_hex()
                    .to_string()
            })
            .unwrap();
        let object = store_objects
            .iter()
            .find(|o| o.file_name().unwrap().to_str() == Some(digest.as_str()))
            .unwrap_or_else(|| panic!("{name}: no object of its digest"));
        assert_eq!(m.ino(), std::fs::metadata(object).unwrap().ino(), "{name}");
        // Its identity sidecar names it as planted here (its size and time, the
        // object's), so nothing hashes it again: the one captured named the file the
        // object was copied from.
        let sidecar = std::fs::read_dir(&path)
            .unwrap()
            .map(|d| d.unwrap().path().join(format!("{name}.xcache-key")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{name}: no identity sidecar"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
        assert_eq!(v["identity"], format!("content:{digest}"), "{name}");
        assert_eq!(v["len"], m.len(), "{name}");
        let mtime_ns = m.mtime() as u128 * 1_000_000_000 + m.mtime_nsec() as u128;
        assert_eq!(
            v["mtime_ns"].as_u64().map(u128::from),
            Some(mtime_ns),
            "{name}"
        );
        assert!(scripts_before.contains_key(&name), "{name}");
        assert_eq!(m.mode() & 0o222, 0, "{name}");
        assert_eq!(m.mode() & 0o111, 0o111, "{name}");
    }
    for (name, m) in real_executables(&ws1) {
        assert_eq!(m.mtime_nsec(), scripts_before[&name].mtime_nsec(), "{name}");
        assert_eq!(m.mtime(), scripts_before[&name].mtime(), "{name}");
    }

    an_edit_in_ws1_stays_there(&ws1, &ws2);
    // A build script rebuilt in one checkout leaves the other's (and the object) alone.
    let script = ws1.join("generated/build.rs");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("\n// edited in ws1\n");
    std::fs::write(&script, text).unwrap();
    plain(&ws1, &[], &[]).assert_success();
    assert!(real_executables(&ws1).len() >= scripts_before.len());
    let b2 = plain(&ws2, &[], &[]);
    assert!(b2.fresh().values().all(|f| *f), "{:?}", b2.fresh());
    assert_eq!(b2.run("app"), EXPECTED_OUTPUT);
    for o in objects(&s.store()) {
        let digest = blake3::hash(&std::fs::read(&o).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(o.file_name().unwrap().to_str().unwrap(), digest);
    }
    a_dependency_edited_in_ws2_rebuilds_in_place(&ws2);
    an_edit_in_ws2_rebuilds_there(&ws2);
}

/// No output under a target dir's `deps` but an `.rlib` is read-only: rustc refuses to
/// write over a read-only output ("output file … is not writeable"); cargo removes a
/// library's `.rlib` before rustc writes it again, and nothing else of the unit.
fn no_read_only_outputs(ws: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = 0;
    for e in std::fs::read_dir(ws.join("target/debug/deps")).unwrap() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "rlib") {
            continue;
        }
        seen += 1;
        let m = e.metadata().unwrap();
        assert_ne!(
            m.permissions().mode() & 0o200,
            0,
            "{} is read-only",
            e.path().display()
        );
    }
    assert!(seen > 0);
}

/// A library that is no root of the build (`-p app`: its outputs are not uplifted) and a
/// proc-macro rebuilt in the seeded target dir by plain cargo: rustc writes over the
/// planted `.rmeta` and `.so`, which are files of the target dir's own.
fn a_dependency_edited_in_ws2_rebuilds_in_place(ws2: &Path) {
    no_read_only_outputs(ws2);
    std::fs::write(
        ws2.join("util/src/greeting.txt"),
        "util edited, built for app",
    )
    .unwrap();
    let macros = ws2.join("macros/src/lib.rs");
    let text = std::fs::read_to_string(&macros).unwrap();
    std::fs::write(&macros, format!("{text}\n// edited\n")).unwrap();
    let b = plain(ws2, &["-p", "app"], &[]);
    assert_eq!(b.fresh().get("util:lib"), Some(&false), "{:?}", b.fresh());
    assert_eq!(
        b.fresh().get("macros:proc-macro"),
        Some(&false),
        "{:?}",
        b.fresh()
    );
    assert!(b.run("app").contains("greeting=util edited, built for app"));
}

/// A source edited in `ws1` rebuilds there, and `ws2` (whose `.rlib` files are the same
/// inodes) stays fresh and as it was.
fn an_edit_in_ws1_stays_there(ws1: &Path, ws2: &Path) {
    std::fs::write(ws1.join("util/src/greeting.txt"), "edited in ws1").unwrap();
    let b1 = plain(ws1, &[], &[]);
    assert_eq!(b1.fresh().get("util:lib"), Some(&false));
    assert!(b1.run("app").contains("greeting=edited in ws1"));
    let b2 = plain(ws2, &[], &[]);
    assert!(b2.fresh().values().all(|f| *f), "{:?}", b2.fresh());
    assert_eq!(b2.run("app"), EXPECTED_OUTPUT);
}

/// And the other way round: an edit in the checkout that took the links rebuilds there.
fn an_edit_in_ws2_rebuilds_there(ws2: &Path) {
    std::fs::write(ws2.join("util/src/greeting.txt"), "edited in ws2").unwrap();
    let b2 = plain(ws2, &[], &[]);
    assert_eq!(b2.fresh().get("util:lib"), Some(&false));
    assert!(b2.run("app").contains("greeting=edited in ws2"));
}

#[test]
fn the_wrappers_restores_link_rlibs_too() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    fill_store(&s);
    let ws1 = s.path("ws1");
    let before = rlibs(&ws1);
    // Without seeding (as where another CARGO_HOME keeps cargo from taking planted
    // units), cargo runs the wrapper, which restores each unit.
    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("seeded"), 0);
    assert!(r.summary("bytes_linked") > 0, "{}", b.stderr());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let linked = rlibs(&ws2);
    let util = linked.keys().find(|n| n.starts_with("libutil-")).unwrap();
    assert_eq!(linked[util].ino(), before[util].ino());
    for (name, m) in rlibs(&ws1) {
        assert_eq!(m.mtime_nsec(), before[&name].mtime_nsec(), "{name}");
    }
    // Fresh for cargo afterwards; an edit rebuilds where it was made only.
    let again = plain(&ws2, &[], &[]);
    assert!(again.fresh().values().all(|f| *f), "{:?}", again.fresh());
    an_edit_in_ws1_stays_there(&ws1, &ws2);
    no_read_only_outputs(&ws2);
    // Rebuilt in place through the wrapper (the units it restored, a dependency of the
    // root only).
    std::fs::write(
        ws2.join("util/src/greeting.txt"),
        "edited through the wrapper",
    )
    .unwrap();
    let b = xcache_build(&ws2, &s.store(), &["-p", "app"], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    assert!(b.run("app").contains("greeting=edited through the wrapper"));
    an_edit_in_ws2_rebuilds_there(&ws2);
}

#[test]
fn an_rlib_from_another_compile_is_never_linked_beside_an_entrys_rmeta() {
    let s = Scratch::new();
    fill_store(&s);
    // Each library entry's list names its `.rlib` object and the `.rmeta` digest of the
    // same compile. Make util's list name mid's pair, as a list (or seed record) left
    // from another compile would: the object checks out, the pair does not.
    let lists: Vec<PathBuf> = std::fs::read_dir(s.store().join("v2/objects/by-entry"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let find = |prefix: &str| {
        lists
            .iter()
            .find(|p| read(p)[0]["name"].as_str().unwrap().starts_with(prefix))
            .unwrap()
            .clone()
    };
    let (util, mid) = (find("libutil-"), find("libmid-"));
    let mut forged = read(&mid);
    forged[0]["name"] = read(&util)[0]["name"].clone();
    std::fs::write(&util, serde_json::to_vec(&forged).unwrap()).unwrap();

    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[("XCACHE_SEED", "0")]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    // The link is undone and util restored from its entry alone: still a hit, no
    // warning (the entry is sound; only the list was not its own).
    let r = Report::read(&ws2.join("target"));
    assert!(
        r.with_outcome("hit").contains(&"util:lib".to_string()),
        "{:?}",
        r.with_outcome("hit")
    );
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    // util's own `.rlib` is in place, not mid's.
    let linked = rlibs(&ws2);
    let util_rlib = linked.keys().find(|n| n.starts_with("libutil-")).unwrap();
    let bytes = std::fs::read(ws2.join("target/debug/deps").join(util_rlib)).unwrap();
    let named = read(&mid)[0]["digest"].as_str().unwrap().to_string();
    assert_ne!(blake3::hash(&bytes).to_hex().to_string(), named);
    let again = plain(&ws2, &[], &[]);
    assert!(again.fresh().values().all(|f| *f), "{:?}", again.fresh());
}

#[test]
fn a_changed_object_is_never_used_and_is_made_again() {
    use std::io::{Seek, Write};
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    fill_store(&s);
    let objs = objects(&s.store());
    assert!(!objs.is_empty());
    // Changed in place (same length), and one made writable as well.
    for o in &objs {
        let mut f = std::fs::OpenOptions::new().write(true).open(o).unwrap();
        f.seek(std::io::SeekFrom::Start(100)).unwrap();
        f.write_all(b"changed").unwrap();
    }
    std::fs::set_permissions(&objs[0], std::fs::Permissions::from_mode(0o644)).unwrap();

    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("bytes_linked"), 0, "a changed object was linked");
    // The libraries' entries hold their `.rlib` files by reference (thin): without a
    // sound object they cannot be restored, so those units compile, and store again.
    assert_eq!(b.fresh().get("util:lib"), Some(&false), "{:?}", b.fresh());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    // Made again by those compiles, each named by its content.
    let again = objects(&s.store());
    assert!(!again.is_empty());
    for o in &again {
        let digest = blake3::hash(&std::fs::read(o).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(o.file_name().unwrap().to_str().unwrap(), digest);
    }
    let ws3 = s.checkout("basic-workspace", "ws3");
    age(&ws3);
    let b = xcache_build(&ws3, &s.store(), &[], &[]);
    b.assert_success();
    assert!(Report::read(&ws3.join("target")).summary("bytes_linked") > 0);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

#[test]
fn a_store_on_another_file_system_plants_by_writing_and_copying() {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs a tmpfs at /dev/shm");
    let store = tempfile::Builder::new()
        .prefix("xcache-test-store-")
        .tempdir_in(shm)
        .unwrap();
    // The checkouts and target dirs on the disk, whatever TMPDIR says.
    let s = Scratch::on_disk();
    let ws1 = s.checkout("basic-workspace", "ws1");
    xcache_build(&ws1, store.path(), &[], &[]).assert_success();
    // The `.rlib` files cannot be linked into it: written into their entries. The
    // `.rmeta` files and the proc-macro are copied into it all the same.
    let objs = objects(store.path());
    let rlib_digests: Vec<String> = rlibs(&ws1)
        .keys()
        .map(|n| {
            let bytes = std::fs::read(ws1.join("target/debug/deps").join(n)).unwrap();
            blake3::hash(&bytes).to_hex().to_string()
        })
        .collect();
    assert!(!objs.is_empty());
    for o in &objs {
        let name = o.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            !rlib_digests.contains(&name),
            "an .rlib became an object: {name}"
        );
    }
    no_read_only_outputs(&ws1);
    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, store.path(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("bytes_linked"), 0);
    assert!(r.summary("seeded") >= 6);
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// A library's entry holds its `.rlib` by reference (thin): the wrapper that stores it
/// makes the file the store's object at once, so the `.rlib` is neither compressed nor
/// written twice. Such an entry restores into a target dir on another file system (a
/// checked copy of the object), and one whose object is gone is a miss, compiled and
/// stored again, never a failed or wrong build.
#[test]
fn libraries_are_stored_by_reference_and_restore_wherever_the_target_dir_is() {
    use std::os::unix::fs::MetadataExt;
    // On the disk (whatever TMPDIR says): the second target dir is on another file
    // system, /dev/shm.
    let s = Scratch::on_disk();
    let ws1 = s.checkout("basic-workspace", "ws1");
    // No seed capture: whatever objects there are, the wrappers made.
    xcache_build(&ws1, &s.store(), &[], &[("XCACHE_SEED", "0")]).assert_success();
    let objs = objects(&s.store());
    let rlibs1 = rlibs(&ws1);
    let util = rlibs1.keys().find(|n| n.starts_with("libutil-")).unwrap();
    assert!(
        objs.iter()
            .any(|o| std::fs::metadata(o).unwrap().ino() == rlibs1[util].ino()),
        "util's .rlib is no object: {objs:?}"
    );
    // Every library entry names its `.rlib` by digest instead of holding it.
    let mut by_reference = Vec::new();
    for p in walk_files(&s.store().join("v2/entries")) {
        let hex = p.file_stem().unwrap().to_str().unwrap();
        let key = xcache::key::Key::from_hex(hex).unwrap();
        let r = xcache::store::EntryReader::open(&p, &key).unwrap();
        for f in &r.meta().files {
            if f.role == "rlib" {
                let o = f.object.expect("an .rlib held in its entry");
                assert!(r.is_thin());
                by_reference.push((f.name.clone(), o.len));
            }
        }
    }
    by_reference.sort();
    let expected: Vec<(String, u64)> = rlibs1.iter().map(|(n, m)| (n.clone(), m.len())).collect();
    assert_eq!(by_reference, expected);
    // So is every `.rmeta` and proc-macro, copied into the store: what the compile wrote
    // stays writable where it is.
    let mut copied = Vec::new();
    for p in walk_files(&s.store().join("v2/entries")) {
        let hex = p.file_stem().unwrap().to_str().unwrap();
        let key = xcache::key::Key::from_hex(hex).unwrap();
        let r = xcache::store::EntryReader::open(&p, &key).unwrap();
        for f in &r.meta().files {
            if f.role == "rmeta" || f.role == "dylib" {
                f.object.expect("an .rmeta or proc-macro held in its entry");
                copied.push(f.name.clone());
            }
        }
    }
    assert_eq!(copied.len(), expected.len() + 1, "{copied:?}");
    no_read_only_outputs(&ws1);

    // A target dir on another file system: the objects are copied, checked.
    let shm = tempfile::Builder::new()
        .prefix("xcache-test-target-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let target = shm.path().to_str().unwrap();
    let b = xcache_build(&ws2, &s.store(), &[], &[("CARGO_TARGET_DIR", target)]);
    b.assert_success();
    let r = Report::read(shm.path());
    assert_eq!(r.summary("bytes_linked"), 0);
    // No seed records (the first build captured none): the wrappers restore each unit.
    let cacheable: Vec<String> = common::basic::CACHEABLE
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(r.with_outcome("hit"), cacheable, "{}", r.0["summary"]);
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);

    // The objects gone (removed by hand): the thin entries are misses, compiled and
    // stored again, quietly; the next build restores them.
    std::fs::remove_dir_all(s.store().join("v2/objects")).unwrap();
    let ws3 = s.checkout("basic-workspace", "ws3");
    age(&ws3);
    let b = xcache_build(&ws3, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert_eq!(b.fresh().get("util:lib"), Some(&false), "{:?}", b.fresh());
    let r = Report::read(&ws3.join("target"));
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    let ws4 = s.checkout("basic-workspace", "ws4");
    age(&ws4);
    let b = xcache_build(&ws4, &s.store(), &[], &[]);
    b.assert_success();
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
    assert!(Report::read(&ws4.join("target")).summary("bytes_linked") > 0);
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// Every file under `dir`, recursively.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// In a store another user writes too, that user's objects are not linked (the owner
/// could change them under this user's target dir) but copied and checked: a thin entry
/// of theirs restores here, and their objects stay.
#[test]
fn another_users_objects_are_copied_not_linked_nor_removed() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    fill_store(&s);
    let objs = objects(&s.store());
    assert!(!objs.is_empty());
    for o in &objs {
        std::os::unix::fs::chown(o, Some(4242), Some(4242)).unwrap();
    }
    let ws2 = s.checkout("basic-workspace", "ws2");
    age(&ws2);
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("bytes_linked"), 0);
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    for o in &objs {
        assert_eq!(std::fs::metadata(o).unwrap().uid(), 4242, "{}", o.display());
    }
}

/// A layout's name, the variables that select it and cargo's arguments for it.
type Layout = (&'static str, Vec<(&'static str, String)>, Vec<&'static str>);

/// The layouts cargo keeps units in: its legacy one with the build dir in the target
/// dir, a build dir apart (`CARGO_BUILD_BUILD_DIR`, and `build.build-dir` with a template
/// in `.cargo/config.toml`), and the new layout (on the nightly toolchain, by
/// `-Zbuild-dir-new-layout` and by `[unstable]` in `.cargo/config.toml`). Each: a build in one checkout fills the store; a moved checkout with a new
/// target (and build) dir gets every unit planted, cargo finds every one fresh, and the
/// program is plain cargo's.
#[test]
fn every_layout_plants_what_the_last_build_left() {
    // The nightly toolchain's own cargo and rustc (not rustup's proxies, which a
    // toolchain's directory on PATH would bypass).
    let nightly = common::layouts::nightly_bin().map(|bin| {
        let tool = |t: &str| bin.join(t).display().to_string();
        (tool("cargo"), tool("rustc"))
    });
    let mut layouts: Vec<Layout> = vec![
        ("legacy", vec![], vec![]),
        (
            "build-dir-variable",
            vec![("CARGO_BUILD_BUILD_DIR", String::new())],
            vec![],
        ),
        ("build-dir-template", vec![], vec![]),
    ];
    if let Some((cargo, rustc)) = nightly {
        let tools = vec![("CARGO", cargo), ("RUSTC", rustc)];
        layouts.push(("new", tools.clone(), vec!["-Zbuild-dir-new-layout"]));
        // Chosen by a configuration file that no switch of the build names: only
        // cargo itself can say it (as a cargo whose default is the new layout would).
        layouts.push(("new-by-config", tools.clone(), vec![]));
        let mut apart = tools;
        apart.push(("CARGO_BUILD_BUILD_DIR", String::new()));
        layouts.push(("new-build-dir", apart, vec!["-Zbuild-dir-new-layout"]));
    } else {
        println!(
            "the new layout is not tried: no nightly toolchain is installed (rustup run nightly)"
        );
    }
    for (name, env, args) in layouts {
        let s = Scratch::new();
        for (n, rel) in [(1, "ws1"), (2, "elsewhere/ws2")] {
            let ws = s.checkout("basic-workspace", rel);
            let config = match name {
                "build-dir-template" => {
                    Some("[build]\nbuild-dir = \"{workspace-root}/../bd-{workspace-path-hash}\"\n")
                }
                "new-by-config" => Some("[unstable]\nbuild-dir-new-layout = true\n"),
                _ => None,
            };
            if let Some(text) = config {
                std::fs::create_dir_all(ws.join(".cargo")).unwrap();
                std::fs::write(ws.join(".cargo/config.toml"), text).unwrap();
            }
            let build_dir = s.path(&format!("build-dir-{n}"));
            let env: Vec<(&str, String)> = env
                .iter()
                .map(|(k, v)| match *k {
                    "CARGO_BUILD_BUILD_DIR" => (*k, build_dir.display().to_string()),
                    _ => (*k, v.clone()),
                })
                .collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let b = xcache_build(&ws, &s.store(), &args, &env);
            b.assert_success();
            assert_eq!(b.run("app"), EXPECTED_OUTPUT, "{name}, build {n}");
            let r = Report::read(&ws.join("target"));
            assert!(
                !r.warning_codes().contains(&"planting-off".to_string()),
                "{name}, build {n}: {}",
                b.stderr()
            );
            if n == 1 {
                assert!(r.summary("captured") >= 3, "{name}: {}", b.stderr());
                continue;
            }
            let seeded = seeded_units(&r);
            assert_eq!(seeded.len(), 7, "{name}: {seeded:?}\n{}", b.stderr());
            let fresh = b.fresh();
            assert_eq!(fresh.len(), 6, "{name}: {fresh:?}");
            assert!(
                fresh.values().all(|f| *f),
                "{name}: {fresh:?}\n{}",
                b.stderr()
            );
            if name.starts_with("new") {
                assert!(
                    ws.join("target/debug/build/app").is_dir() || name.contains("build-dir"),
                    "{name}"
                );
            }
            if name.contains("build-dir") {
                // Nothing of cargo's records went to the target dir.
                for records in [".fingerprint", "build", "deps"] {
                    let p = ws.join("target/debug").join(records);
                    assert!(!p.exists(), "{name}: {}", p.display());
                }
            }
        }
    }
}

/// A cargo that cannot say where it keeps units (here one that refuses the layout
/// probe, as a future cargo might answer in a way this program does not know), on a
/// fresh build dir: planting is off, said once with why (the build's warning, the report,
/// `doctor`); the wrapper restores every unit and the program is plain cargo's. Once
/// the build dir holds cargo's units, their shape says the layout and planting is on.
#[test]
fn a_cargo_that_cannot_say_its_layout_turns_planting_off_with_why() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let script = s.path("bin/cargo");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *xcache-layout-probe*) \
             echo 'error: this cargo will not say' >&2; exit 101;; esac; done\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = [("CARGO", script.to_str().unwrap())];
    fill_store(&s);
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &env);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = Report::read(&ws2.join("target"));
    assert_warned_once(&b, &r, "planting-off");
    assert!(
        b.stderr()
            .contains("planting off: cargo could not be asked")
            && b.stderr().contains("this cargo will not say"),
        "{}",
        b.stderr()
    );
    assert_eq!(seeded_units(&r), Vec::<String>::new());
    assert!(r.summary("restored") >= 6, "{}", b.stderr());
    let doctor = |ws: &Path| {
        let mut cmd = common::base_command(&common::xcache_exe(), ws, &s.store());
        cmd.args(["xcache", "doctor"]).envs(env);
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fresh = s.checkout("basic-workspace", "ws3");
    let said = doctor(&fresh);
    assert!(
        said.contains("planting: off: cargo could not be asked"),
        "{said}"
    );
    // What cargo left in ws2 says its layout.
    let said = doctor(&ws2);
    assert!(
        said.contains("planting: on:") && said.contains("legacy layout"),
        "{said}"
    );
    std::fs::remove_dir_all(ws2.join("target/xcache")).unwrap();
    let b = xcache_build(&ws2, &s.store(), &[], &env);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert!(r.warning_codes().is_empty(), "{}", b.stderr());
}

/// A unit's newest variant was built against another version of a dependency (a
/// branch that edited it); the one before holds here. Both share the unit's place, so
/// only one is in place at a time, and what it was built against is known only once
/// the dependencies are planted: the newest is put in place, found not to hold, and the
/// next one planted instead. Every unit is planted, and the program is right.
/// A fresh checkout at `rel` built with the store of `s`: every unit planted, fresh for
/// cargo, and the program plain cargo's.
fn a_checkout_plants_every_unit(s: &Scratch, rel: &str) {
    let ws = s.checkout("basic-workspace", rel);
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert_eq!(
        seeded_units(&r).len(),
        7,
        "{:?}\n{}",
        seeded_units(&r),
        b.stderr()
    );
    assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
}

#[test]
fn a_variant_built_against_another_dependency_gives_way_to_the_next() {
    let s = Scratch::new();
    let first = s.checkout("basic-workspace", "first");
    xcache_build(&first, &s.store(), &[], &[]).assert_success();
    let edited = s.checkout("basic-workspace", "edited");
    let lib = edited.join("util/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{text}\npub fn added_on_a_branch() {{}}\n")).unwrap();
    xcache_build(&edited, &s.store(), &[], &[]).assert_success();
    a_checkout_plants_every_unit(&s, "again");
}

/// As [`a_variant_built_against_another_dependency_gives_way_to_the_next`], but the
/// records disagree on which variant is newest: `mid`'s newest was built against the
/// edited `util`, `app`'s newest against the tree as it is here (the order a remote's
/// index takes when builds of both trees record at once, their captures split between
/// them). The first round puts both newest in place and neither holds, `app`'s only
/// because `mid`'s did not; `app`'s variant must be tried again beside `mid`'s next one
/// (in a build of the busy CI machine's many-writers test, `app` was compiled instead:
/// 6 units seeded of 7).
#[test]
fn a_variant_refused_beside_a_dependency_that_gave_way_is_tried_again() {
    let s = Scratch::new();
    let first = s.checkout("basic-workspace", "first");
    xcache_build(&first, &s.store(), &[], &[]).assert_success();
    let edited = s.checkout("basic-workspace", "edited");
    let lib = edited.join("util/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{text}\npub fn added_on_a_branch() {{}}\n")).unwrap();
    xcache_build(&edited, &s.store(), &[], &[]).assert_success();
    // Each record lists its newest variant first: `mid`'s and `app`'s are the edited
    // tree's; `app`'s order is turned around.
    let mut turned = 0;
    for path in walk_files(&s.store().join("v2/seeds")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut record: serde_json::Value = serde_json::from_str(&text).unwrap();
        let variants = record["variants"].as_array_mut().unwrap();
        if variants[0]["fingerprint_dir"]
            .as_str()
            .unwrap()
            .starts_with("debug/.fingerprint/app-")
        {
            assert_eq!(variants.len(), 2, "{text}");
            variants.reverse();
            std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
            turned += 1;
        }
    }
    assert_eq!(turned, 1);
    a_checkout_plants_every_unit(&s, "again");
}

/// Another process holds cargo's build dir lock: this build's cargo is not started
/// while planting (its locks cannot be had), waits for that process as cargo does, and
/// says so; then finds every planted unit fresh.
#[test]
fn a_build_dir_locked_by_another_process_is_planted_first_and_waited_for() {
    let s = Scratch::new();
    fill_store(&s);
    let ws2 = fresh_clone_in_place(&s, "ws1");
    let lock = ws2.join("target/debug/.cargo-lock");
    let held = xcache::plan::HeldLocks::hold(std::slice::from_ref(&lock)).unwrap();
    let mut cmd = common::base_command(&common::xcache_exe(), &ws2, &s.store());
    cmd.args(["xcache", "build", "--message-format=json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    drop(held);
    let b = Build::from_output(child.wait_with_output().unwrap(), &ws2);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.0["summary"]["cargo_beside_planting"], false);
    assert_eq!(seeded_units(&r).len(), 7, "{}", b.stderr());
    assert!(
        b.stderr().lines().any(xcache::plan::is_lock_wait),
        "{}",
        b.stderr()
    );
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
}

/// A machine that never asked its cargo which files it locks (a fresh runner whose
/// store came from elsewhere): the build plants, then starts cargo, without asking
/// first; it asks while cargo runs, and the next build's cargo resolves the workspace
/// while its units are planted.
#[test]
fn a_cargo_whose_locks_are_not_known_yet_starts_after_planting_and_they_are_learned() {
    let s = Scratch::new();
    // A private directory of its own: nothing remembered of any cargo. And a CARGO_HOME
    // of its own (the workspace needs nothing from a registry): a lock message can then
    // only come from this test's builds, not from another test's cargo holding the
    // package cache of the shared one.
    let private = s.path("runtime");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let home = s.path("cargo-home");
    std::fs::create_dir_all(&home).unwrap();
    let home_env = [("CARGO_HOME", home.to_str().unwrap())];
    let ws = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws, &s.store(), &[], &home_env);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let env = [
        ("XDG_RUNTIME_DIR", private.to_str().unwrap()),
        ("CARGO_HOME", home.to_str().unwrap()),
    ];
    let mut beside = Vec::new();
    for rel in ["ws1", "ws1"] {
        let ws = fresh_clone_in_place(&s, rel);
        let b = xcache_build(&ws, &s.store(), &[], &env);
        b.assert_success();
        let r = Report::read(&ws.join("target"));
        assert_eq!(seeded_units(&r).len(), 7, "{}", b.stderr());
        assert!(b.fresh().values().all(|f| *f), "{:?}", b.fresh());
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        // Asking cargo while it runs never makes it wait for a lock.
        assert!(
            !b.stderr().contains("Blocking waiting for file lock"),
            "{}",
            b.stderr()
        );
        beside.push(r.0["summary"]["cargo_beside_planting"].clone());
    }
    assert_eq!(
        beside,
        [false, true],
        "cargo beside planting, build by build"
    );
    let learned = std::fs::read_dir(private.join("xcache/v1/cargo-locks"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-same"))
        .count();
    assert_eq!(learned, 1, "what cargo locks is remembered once");
}

/// A checkout built on another machine: another path, an empty target dir and another
/// `CARGO_HOME` (at a longer path, with the registry the first one fetched). cargo's
/// fingerprint of a crates.io package hashes its sources' path in `CARGO_HOME`, and every
/// unit built on one hashes that: planting makes each what cargo computes here, so every
/// unit planted in a checkout moved on the first machine is planted there too, cargo
/// finds them fresh, and the program is plain cargo's.
#[test]
fn another_cargo_home_plants_what_a_moved_checkout_plants() {
    let s = Scratch::new();
    let home = |rel: &str| {
        let h = s.path(rel);
        [("CARGO_HOME", h.to_str().unwrap().to_string())]
    };
    let env = |h: &[(&'static str, String); 1]| -> Vec<(&'static str, String)> { h.to_vec() };
    let build = |ws: &Path, h: &[(&'static str, String)]| {
        let env: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let b = xcache_build(ws, &s.store(), &["--locked"], &env);
        b.assert_success();
        let r = Report::read(&ws.join("target"));
        (b, r)
    };
    let home1 = env(&home("h1"));
    let (b1, _) = build(&s.checkout("c-build", "ws1"), &home1);
    let expected = b1.run("app");
    // Moved on the first machine.
    let ws2 = s.checkout("c-build", "elsewhere/ws2");
    age(&ws2);
    let (_, r2) = build(&ws2, &home1);
    let moved = seeded_units(&r2);
    // On another machine.
    let home2 = env(&home("another/machine/with/a/longer/cargo-home"));
    let h2 = PathBuf::from(&home2[0].1);
    common::another_cargo_home(&s.path("h1"), &h2);
    let ws3 = s.checkout("c-build", "w3");
    age(&ws3);
    let (b3, r3) = build(&ws3, &home2);
    let seeded = seeded_units(&r3);
    for unit in [
        "cc:lib",
        "shlex:lib",
        "cnum:lib",
        "build_script_build:build-script-run",
    ] {
        assert!(
            seeded.contains(&unit.to_string()),
            "{unit} not planted: {seeded:?}\n{}",
            b3.stderr()
        );
    }
    assert_eq!(seeded, moved, "{}", b3.stderr());
    assert!(r3.with_outcome("miss").is_empty(), "{:?}", r3.outcomes());
    assert_eq!(b3.run("app"), expected);
    // Plain cargo with that CARGO_HOME agrees: nothing to do.
    let env3: Vec<(&str, &str)> = home2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = plain(&ws3, &["--locked"], &env3);
    assert!(again.fresh().values().all(|f| *f), "{:?}", again.fresh());
    // And plain cargo's own program, built from nothing there, prints the same.
    let ws4 = s.checkout("c-build", "plain/ws4");
    assert_eq!(plain(&ws4, &["--locked"], &env3).run("app"), expected);
}
