//! Build-script runs: stored after a cold build, replayed in another checkout with an
//! empty target dir, missed when what the script declared (or, for a script that declared
//! nothing, its package) changes, never replayed when the script looked at the system.
//! Read from our report and from what the built program prints.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Build, Report, Scratch, cargo_build, xcache_build};

const EXPECTED: &str =
    "value=42 greeting=hello from C land+plain table=98304:37a2f6b6 data=first data\n";

/// Seeding would plant the runs' directories and cargo would not run the scripts: these
/// tests look at the run cache itself.
const NO_SEED: (&str, &str) = ("XCACHE_SEED", "0");

fn build(ws: &Path, store: &Path, env: &[(&str, &str)]) -> (Build, Report) {
    build_as_told(ws, store, env)
}

fn build_as_told(ws: &Path, store: &Path, env: &[(&str, &str)]) -> (Build, Report) {
    let b = xcache_build(ws, store, &[], env);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    (b, r)
}

fn run(outcome: &str) -> (String, Option<String>) {
    (outcome.to_string(), None)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// The one `out/` directory of `package`'s run under `target`.
fn out_dir(target: &Path, package: &str) -> PathBuf {
    let build = target.join("debug/build");
    std::fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&format!("{package}-")) && p.join("out").is_dir()
        })
        .map(|p| p.join("out"))
        .unwrap_or_else(|| panic!("no run dir of {package} in {}", build.display()))
}

/// What `cargo xcache explain <package>` prints in `ws`, with `env` set.
fn explain(ws: &Path, store: &Path, package: &str, env: &[(&str, &str)]) -> String {
    let out = common::base_command(&common::xcache_exe(), ws, store)
        .envs(env.iter().copied())
        .args(["xcache", "explain", package])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `cnum`'s script uses the `cc` crate, which (from 1.6) copies the whole environment at
/// start and looks its variables up in the copy: its run is keyed on the variables cc
/// consults, not on every one. The paths cargo gives it (its package directory,
/// `OUT_DIR`) say where things are and do not bind it: another checkout replays it, and
/// so does another user with another home, runner settings and PATH order (a second
/// machine).
#[test]
fn the_cc_crates_copy_of_the_environment_is_keyed_on_what_cc_consults() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    let (_, r) = build_as_told(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    let ws2 = s.checkout("c-build", "elsewhere/ws2");
    let (b, r) = build_as_told(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(
        r.runs()["cnum"],
        run("hit"),
        "the package's path does not bind"
    );
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);
    // Variables cc never consults: another machine's.
    let home = s.path("home2");
    std::fs::create_dir_all(&home).unwrap();
    // Where cargo and rustup live stays (another HOME would move them).
    let user_home = PathBuf::from(std::env::var("HOME").unwrap());
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| user_home.join(".cargo").display().to_string());
    let rustup_home = std::env::var("RUSTUP_HOME")
        .unwrap_or_else(|_| user_home.join(".rustup").display().to_string());
    // PATH's directories in the other order: cc's runs are keyed by what each name
    // found through PATH resolves to, not by PATH's text.
    let reversed: Vec<String> = std::env::var("PATH")
        .unwrap()
        .split(':')
        .rev()
        .map(str::to_string)
        .collect();
    let reversed = reversed.join(":");
    let machine = [
        ("PATH", reversed.as_str()),
        ("CARGO_HOME", cargo_home.as_str()),
        ("RUSTUP_HOME", rustup_home.as_str()),
        ("SOME_RUNNER_SETTING", "1"),
        ("HOME", home.to_str().unwrap()),
        ("USER", "runner2"),
        ("LOGNAME", "runner2"),
        ("XDG_CACHE_HOME", "/nonexistent/xdg"),
    ];
    let ws3 = s.checkout("c-build", "ws3");
    let (b, r) = build_as_told(&ws3, &s.store(), &[&[NO_SEED][..], &machine].concat());
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);
    // One it consults (a flag variable in one of its four spellings) is a miss, and
    // `explain` says why.
    let flags = ("HOST_CFLAGS", "-DCNUM_UNUSED=1");
    let ws4 = s.checkout("c-build", "ws4");
    let (b, r) = build_as_told(&ws4, &s.store(), &[NO_SEED, flags]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
    let text = explain(&ws4, &s.store(), "cnum", &[]);
    // Keyed as read (cc's copy consults it), not as a variable of the run's first level.
    assert!(text.contains("read-env-var HOST_CFLAGS changed"), "{text}");
    assert!(
        text.contains("uses the cc crate") && !text.contains("reads the environment whole"),
        "{text}"
    );
}

/// A variable a run never reads keys nothing: two runners whose `CFLAGS` and
/// `PKG_CONFIG_PATH` differ share `plain`'s run (its script reads one file and no
/// variable), while `cnum`'s, whose `cc` consults `CFLAGS`, runs again (with the
/// runner's flags).
#[test]
fn a_c_variable_a_run_never_reads_keys_nothing() {
    let s = Scratch::new();
    let a = [
        NO_SEED,
        ("CFLAGS", "-DFLEET_RUNNER_A=1"),
        ("PKG_CONFIG_PATH", "/opt/runner-a/pkgconfig"),
    ];
    let ws1 = s.checkout("c-build", "ws1");
    let (_, r) = build_as_told(&ws1, &s.store(), &a);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(r.runs()["cnum"], run("miss"));
    let b_env = [
        NO_SEED,
        ("CFLAGS", "-DFLEET_RUNNER_B=1"),
        ("PKG_CONFIG_PATH", "/opt/runner-b/pkgconfig"),
    ];
    let ws2 = s.checkout("c-build", "elsewhere/ws2");
    let (b, r) = build_as_told(&ws2, &s.store(), &b_env);
    assert_eq!(r.runs()["plain"], run("hit"), "{}", b.stderr());
    assert_eq!(r.runs()["cnum"], run("miss"), "{}", b.stderr());
    assert_eq!(b.run("app"), EXPECTED);
}

/// A script that declares `OUT_DIR` and `CARGO_MANIFEST_DIR` for cargo to watch
/// (`rerun-if-env-changed`, as ring's does) and uses them as places only: its path check
/// frees it of both, and its record holds in a checkout at another path.
#[test]
fn a_run_that_declares_the_places_it_uses_hits_in_a_moved_checkout() {
    let s = Scratch::new();
    let env = [
        NO_SEED,
        ("LENS_RUN_PATH", "none"),
        ("LENS_DECLARE_ROOTS", "1"),
    ];
    let ws1 = s.checkout("soundness/paths", "ws1");
    let (_, r) = build_as_told(&ws1, &s.store(), &env);
    assert_eq!(r.runs()["lens"], run("miss"));
    let ws2 = s.checkout("soundness/paths", "elsewhere/much/longer/ws2");
    let (b, r) = build_as_told(&ws2, &s.store(), &env);
    assert_eq!(r.runs()["lens"], run("hit"), "{}", b.stderr());
}

/// `scan`'s script walks the whole environment itself (`std::env::vars()`): its run is
/// keyed on every variable, unless the user names some in `XCACHE_ENV_IGNORE`.
#[test]
fn a_script_reading_the_environment_whole_is_keyed_on_all_of_it() {
    let s = Scratch::new();
    let ws1 = s.checkout("soundness/env-whole", "ws1");
    let (_, r) = build_as_told(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["scan"], run("miss"));
    let ws2 = s.checkout("soundness/env-whole", "elsewhere/ws2");
    let (_, r) = build_as_told(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["scan"], run("hit"));
    // A variable nobody asks for by name (added, or changed) is a miss.
    let extra = ("SOME_RUNNER_SETTING", "1");
    let ws3 = s.checkout("soundness/env-whole", "ws3");
    let (_, r) = build_as_told(&ws3, &s.store(), &[NO_SEED, extra]);
    assert_eq!(r.runs()["scan"], run("miss"));
    let text = explain(&ws3, &s.store(), "scan", &[]);
    assert!(text.contains("SOME_RUNNER_SETTING added"), "{text}");
    assert!(
        text.contains("reads the environment whole") && text.contains("XCACHE_ENV_IGNORE"),
        "{text}"
    );
    // ... unless it is named in XCACHE_ENV_IGNORE (the list is part of the key: the
    // first build with it misses).
    let told = ("XCACHE_ENV_IGNORE", "SOME_RUNNER_*");
    let ws4 = s.checkout("soundness/env-whole", "ws4");
    let (_, r) = build_as_told(
        &ws4,
        &s.store(),
        &[NO_SEED, told, ("SOME_RUNNER_SETTING", "2")],
    );
    assert_eq!(r.runs()["scan"], run("miss"));
    let ws5 = s.checkout("soundness/env-whole", "ws5");
    let (_, r) = build_as_told(
        &ws5,
        &s.store(),
        &[NO_SEED, told, ("SOME_RUNNER_SETTING", "3")],
    );
    assert_eq!(r.runs()["scan"], run("hit"));
}

#[test]
fn runs_are_replayed_in_another_checkout_like_plain_cargo() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    let (b1, r) = build(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(b1.run("app"), EXPECTED);

    let ws2 = s.checkout("c-build", "elsewhere/deeper/ws2");
    let (b2, r) = build(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(
        r.0["summary"]["by_kind"]["build-script-run"],
        serde_json::json!({"units": 2, "hit": 2})
    );
    assert_eq!(b2.run("app"), EXPECTED);

    // The replayed directives point cargo at this target dir, and the C library came
    // back byte for byte, naming neither checkout.
    let output =
        std::fs::read_to_string(out_dir(&ws2.join("target"), "cnum").with_file_name("output"))
            .unwrap();
    assert!(
        output.contains(&format!(
            "cargo:rustc-link-search=native={}",
            out_dir(&ws2.join("target"), "cnum").display()
        )),
        "{output}"
    );
    let lib1 = std::fs::read(out_dir(&ws1.join("target"), "cnum").join("libnum.a")).unwrap();
    let lib2 = std::fs::read(out_dir(&ws2.join("target"), "cnum").join("libnum.a")).unwrap();
    assert!(lib1 == lib2);
    for ws in [&ws1, &ws2] {
        assert!(!contains(&lib2, ws.to_str().unwrap().as_bytes()));
    }

    // Plain cargo, no cache, in a third place: the same program output.
    let ws3 = s.checkout("c-build", "third/ws3");
    let out = cargo_build(&ws3, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = Command::new(ws3.join("target/debug/app")).output().unwrap();
    assert_eq!(String::from_utf8(plain.stdout).unwrap(), EXPECTED);
}

#[test]
fn what_a_script_declared_decides_its_run() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    build(&ws1, &s.store(), &[NO_SEED]);

    // A file under a declared `rerun-if-changed` directory.
    let ws2 = s.checkout("c-build", "ws2");
    edit(&ws2.join("cnum/csrc/num.c"), "41 + 1", "41 + 2");
    let (b, r) = build(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(r.runs()["plain"], run("hit"));
    assert!(b.run("app").starts_with("value=43 "), "{}", b.run("app"));

    // A declared `rerun-if-env-changed` variable.
    let ws3 = s.checkout("c-build", "ws3");
    let (b, r) = build(&ws3, &s.store(), &[NO_SEED, ("CNUM_GREETING", "hi")]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(
        b.run("app"),
        "value=42 greeting=hello from C land+hi table=98304:37a2f6b6 data=first data\n"
    );

    // A script that declared nothing: any file of its package.
    let ws4 = s.checkout("c-build", "ws4");
    edit(&ws4.join("plain/data.txt"), "first", "second");
    let (b, r) = build(&ws4, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert!(b.run("app").ends_with("data=second data\n"));
    assert!(
        !b.run("app").contains("table=98304:37a2f6b6"),
        "{}",
        b.run("app")
    );
    // A file of its package that it never reads: cargo would run it again in the same
    // target dir; the observer saw what the run read, and this was not among it.
    let ws5 = s.checkout("c-build", "ws5");
    std::fs::write(ws5.join("plain/NOTES"), "a file the script never reads").unwrap();
    let (_, r) = build(&ws5, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("hit"));

    // Another C compiler setting.
    let ws6 = s.checkout("c-build", "ws6");
    let (b, r) = build(&ws6, &s.store(), &[NO_SEED, ("CC", "cc")]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);

    // And back: every input set was kept.
    let ws7 = s.checkout("c-build", "ws7");
    let (b, r) = build(&ws7, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);
}

#[test]
fn a_script_that_names_a_system_path_is_cached_on_what_it_read() {
    // `CNUM_PROBE=1` makes the script print a directive naming a system directory, as
    // a script that found a library on the system would. What it read there (nothing
    // here; headers and libraries for real `-sys` crates) is part of its key, so the run
    // is stored and replayed like any other.
    let s = Scratch::new();
    let probe = ("CNUM_PROBE", "1");
    for (ws, outcome) in [("ws1", "miss"), ("ws2", "hit")] {
        let ws = s.checkout("c-build", ws);
        let (b, r) = build(&ws, &s.store(), &[NO_SEED, probe]);
        assert_eq!(r.runs()["cnum"], run(outcome));
        assert_eq!(b.run("app"), EXPECTED);
    }
}

#[test]
fn a_script_that_writes_into_its_package_is_run_and_not_stored() {
    let s = Scratch::new();
    let ws = s.checkout("c-build", "ws1");
    let (b, r) = build(&ws, &s.store(), &[NO_SEED, ("PLAIN_WRITE_HERE", "1")]);
    assert_eq!(
        r.runs()["plain"],
        (
            "uncacheable".to_string(),
            Some("writes-outside".to_string())
        )
    );
    assert!(ws.join("plain/written-by-build-script.txt").is_file());
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
}

/// A directory the script made in its package and removed before it ended is its own
/// scratch: the run is stored and replayed. A file moved out of it stays a write.
#[test]
fn a_script_whose_temporary_directory_is_gone_is_stored() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    let (_, r) = build(&ws1, &s.store(), &[NO_SEED, ("PLAIN_TEMP_HERE", "1")]);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert!(!ws1.join("plain/tmp-by-build-script").exists());
    let ws2 = s.checkout("c-build", "ws2");
    let (b, r) = build(&ws2, &s.store(), &[NO_SEED, ("PLAIN_TEMP_HERE", "1")]);
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);

    let ws3 = s.checkout("c-build", "ws3");
    let (_, r) = build(
        &ws3,
        &s.store(),
        &[NO_SEED, ("PLAIN_TEMP_HERE", "move-out")],
    );
    assert_eq!(
        r.runs()["plain"],
        (
            "uncacheable".to_string(),
            Some("writes-outside".to_string())
        )
    );
    assert!(ws3.join("plain/moved-by-build-script.txt").is_file());
}

/// A large file a run wrote (`plain`'s 96 KiB `table.bin`, as a C library would be) is
/// kept in the store as a loose object, copied in, not compressed into the entry: a
/// replay copies it out, a file of its own, writable, byte for byte. An object gone or
/// changed makes the run a miss, never a wrong file.
#[test]
fn a_runs_large_file_is_kept_as_an_object_and_replayed_byte_for_byte() {
    let s = Scratch::new();
    let table = |ws: &Path| out_dir(&ws.join("target"), "plain").join("table.bin");
    let ws1 = s.checkout("c-build", "ws1");
    let (b, r) = build(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
    let table1 = std::fs::read(table(&ws1)).unwrap();
    assert_eq!(table1.len(), 96 * 1024);
    let digest = blake3::hash(&table1).to_hex().to_string();
    let object = s
        .store()
        .join("v2/objects")
        .join(&digest[..2])
        .join(&digest);
    assert_eq!(
        std::fs::read(&object).unwrap(),
        table1,
        "{}",
        object.display()
    );

    let ws2 = s.checkout("c-build", "elsewhere/ws2");
    let (b, r) = build(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);
    let replayed = table(&ws2);
    assert!(std::fs::read(&replayed).unwrap() == table1);
    let meta = std::fs::metadata(&replayed).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            meta.nlink(),
            1,
            "a copy of its own, not a link to the object"
        );
    }
    assert!(!meta.permissions().readonly());

    // Gone: the run is made again, and so is the object.
    std::fs::remove_file(&object).unwrap();
    let ws3 = s.checkout("c-build", "ws3");
    let (b, r) = build(&ws3, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
    assert!(object.exists());

    // Changed (same length): a miss again, the program still right.
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[1000] ^= 0x01;
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, &bytes).unwrap();
    let ws4 = s.checkout("c-build", "ws4");
    let (b, r) = build(&ws4, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["plain"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
    let table4 = std::fs::read(table(&ws4)).unwrap();
    assert!(table4 == table1);
}

#[test]
fn a_corrupt_run_entry_is_detected_rerun_and_replaced() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    let (_, r) = build(&ws1, &s.store(), &[NO_SEED]);
    let key = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "build-script-run" && u["package"] == "cnum")
        .and_then(|u| u["key"].as_str())
        .unwrap()
        .to_string();
    let entry = s
        .store()
        .join("v2/entries")
        .join(&key[..2])
        .join(format!("{key}.xce"));
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0xff;
    std::fs::write(&entry, bytes).unwrap();

    let ws2 = s.checkout("c-build", "ws2");
    let (b, r) = build(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(r.warning_codes(), ["corrupt-entry"], "{}", b.stderr());
    assert_eq!(b.run("app"), EXPECTED);

    let ws3 = s.checkout("c-build", "ws3");
    let (b, r) = build(&ws3, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert_eq!(b.run("app"), EXPECTED);
}

#[test]
fn with_seeding_runs_are_planted_and_reported_seeded() {
    let s = Scratch::new();
    let ws1 = s.checkout("c-build", "ws1");
    build(&ws1, &s.store(), &[]);
    // A fresh clone where the first one was (as on a CI runner): `cnum`'s library reads
    // `env!("OUT_DIR")`, which binds it to the target dir's path.
    std::fs::remove_dir_all(&ws1).unwrap();
    let ws2 = s.checkout("c-build", "ws1");
    // Planting stamps cargo's records 50 ms in the past (src/seed/plant.rs), so that an
    // edit right after our check still looks newer to cargo: a build that starts within
    // 50 ms of the checkout finds the checkout's files newer than the records, and cargo
    // runs the planted units again (a cost, not a wrong build). A clone is older than
    // that by the time a CI job builds it.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (b, r) = build(&ws2, &s.store(), &[]);
    assert_eq!(b.run("app"), EXPECTED);
    let runs: Vec<&serde_json::Value> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "build-script-run")
        .collect();
    assert_eq!(runs.len(), 2, "{:?}", r.runs());
    for u in &runs {
        assert_eq!(u["outcome"], "hit", "{u}");
    }
    // `cnum`'s script reads the variables the `cc` crate consults, none of them one that
    // is known only once cargo runs it (as `LD_LIBRARY_PATH` is, which a script reading
    // the environment whole would take): the run is planted.
    // `plain`'s script declared nothing, so cargo's fingerprint of its run holds the
    // newest modification time in the package, which a fresh checkout changes: cargo
    // runs the script, and the run cache replays it.
    let by_package = |p: &str| runs.iter().find(|u| u["package"] == p).unwrap();
    assert_eq!(by_package("cnum")["seeded"], true);
    assert_eq!(by_package("plain")["seeded"], false);
    // A shim planted from the store names the program that planted it.
    let shims: Vec<PathBuf> = std::fs::read_dir(ws2.join("target/debug/build"))
        .unwrap()
        .map(|e| e.unwrap().path().join("build-script-build"))
        .filter(|p| p.is_file())
        .collect();
    assert!(!shims.is_empty());
    let exe = common::xcache_exe();
    for shim in shims {
        let text = std::fs::read_to_string(&shim).unwrap();
        assert!(text.contains(exe.to_str().unwrap()), "{text}");
    }
}

#[test]
fn runs_can_be_left_out_of_the_cache() {
    let s = Scratch::new();
    let ws = s.checkout("c-build", "ws1");
    let (b, r) = build(&ws, &s.store(), &[NO_SEED, ("XCACHE_BUILD_RUNS", "0")]);
    assert!(r.runs().is_empty(), "{:?}", r.runs());
    assert_eq!(b.run("app"), EXPECTED);
    // Not cached, but given what a cached run gets: the C it compiles has the same
    // path remapping, so its archive names no checkout.
    let build_dir = ws.join("target/debug/build");
    let mut archives = 0;
    for e in std::fs::read_dir(build_dir).unwrap() {
        let out = e.unwrap().path().join("out");
        for f in std::fs::read_dir(&out).into_iter().flatten() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "a") {
                archives += 1;
                let bytes = std::fs::read(&p).unwrap();
                let ws_bytes = ws.to_str().unwrap().as_bytes();
                assert!(
                    !bytes.windows(ws_bytes.len()).any(|w| w == ws_bytes),
                    "{} names the checkout",
                    p.display()
                );
            }
        }
    }
    assert!(archives > 0);
}

#[test]
fn runs_travel_through_a_remote_store() {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    let uri = format!("file://{}", folder.display());
    let ws1 = s.checkout("c-build", "ws1");
    let b = xcache_build(&ws1, &s.path("store-1"), &["--remote", &uri], &[NO_SEED]);
    b.assert_success();
    let r = Report::read(&ws1.join("target"));
    assert_eq!(r.runs()["cnum"], run("miss"));

    // Another machine: an empty local store, the same remote.
    let ws2 = s.checkout("c-build", "elsewhere/ws2");
    let b = xcache_build(&ws2, &s.path("store-2"), &["--remote", &uri], &[NO_SEED]);
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.runs()["cnum"], run("hit"));
    assert_eq!(r.runs()["plain"], run("hit"));
    let tiers: Vec<&str> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "build-script-run")
        .map(|u| u["tier"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["remote", "remote"]);
    assert_eq!(b.run("app"), EXPECTED);
}

/// `fixtures/cc-path`: a script compiling C with `cc` 1.2.7, which reads PATH itself to
/// look for tools. The run is keyed by what PATH resolved to, not the PATH string: a
/// PATH with an unrelated directory in front (another machine's `$CARGO_HOME/bin`)
/// replays it; another `cc` in front runs it again, and the program is what plain cargo
/// builds.
#[test]
fn a_run_is_keyed_by_what_path_resolved_to() {
    let s = Scratch::new();
    let path = std::env::var("PATH").unwrap();
    let unrelated = s.path("unrelated-bin");
    std::fs::create_dir_all(&unrelated).unwrap();
    // Another `cc`: the same compiler behind a program of its own (a C program, so
    // that, unlike a shell script, it reads no variable it does not ask for).
    let other = s.path("other-bin");
    std::fs::create_dir_all(&other).unwrap();
    let real_cc = std::env::split_paths(&path)
        .map(|d| d.join("cc"))
        .find(|p| p.is_file())
        .expect("a cc on PATH");
    let src = other.join("cc.c");
    std::fs::write(
        &src,
        format!(
            "#include <unistd.h>\nint main(int argc, char **argv) {{ (void)argc; argv[0] = {:?}; execv(argv[0], argv); return 127; }}\n",
            real_cc.to_str().unwrap()
        ),
    )
    .unwrap();
    let made = Command::new(&real_cc)
        .arg(&src)
        .arg("-o")
        .arg(other.join("cc"))
        .status()
        .unwrap();
    assert!(made.success());

    let (b, r) = build_as_told(&s.checkout("cc-path", "ws1"), &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["ccpath"], run("miss"));
    assert_eq!(b.run("ccpath"), "value=7\n");

    let front = format!("{}:{path}", unrelated.display());
    let ws2 = s.checkout("cc-path", "ws2");
    let (b, r) = build_as_told(&ws2, &s.store(), &[NO_SEED, ("PATH", &front)]);
    assert_eq!(
        r.runs()["ccpath"],
        run("hit"),
        "an unrelated directory in front"
    );
    assert_eq!(b.run("ccpath"), "value=7\n");

    let other_front = format!("{}:{path}", other.display());
    let ws3 = s.checkout("cc-path", "ws3");
    let (b, r) = build_as_told(&ws3, &s.store(), &[NO_SEED, ("PATH", &other_front)]);
    assert_eq!(r.runs()["ccpath"], run("miss"), "another cc in front");
    let text = explain(&ws3, &s.store(), "ccpath", &[("PATH", &other_front)]);
    assert!(text.contains("input lookup cc changed"), "{text}");
    let plain = s.checkout("cc-path", "plain");
    let out = cargo_build(&plain, &[], &[("PATH", &other_front)]);
    assert!(out.status.success());
    let plain_run = Command::new(plain.join("target/debug/ccpath"))
        .output()
        .unwrap();
    assert_eq!(
        b.run("ccpath"),
        String::from_utf8(plain_run.stdout).unwrap()
    );
}

/// A run too long for its path check to be made twice is bound to its roots; its next
/// run elsewhere (roots at paths of other lengths), with the same inputs, is the check's
/// second run: it printed the same, so its record replays in a third place.
#[test]
fn a_long_run_is_checked_against_its_run_at_another_place() {
    let s = Scratch::new();
    let store = s.store();
    let (b1, r1) = build(&s.checkout("slow-run", "a/ws"), &store, &[]);
    assert_eq!(r1.runs()["slow-run"], run("miss"));
    assert_eq!(b1.run("slow-run"), "plain\n");
    let (b2, r2) = build(&s.checkout("slow-run", "much/longer/b/ws"), &store, &[]);
    assert_eq!(r2.runs()["slow-run"].0, "miss", "bound to the first place");
    assert_eq!(b2.run("slow-run"), "plain\n");
    let (b3, r3) = build(&s.checkout("slow-run", "c/ws3"), &store, &[]);
    assert_eq!(r3.runs()["slow-run"].0, "hit");
    assert_eq!(b3.run("slow-run"), "plain\n");
}

/// The same with a run that passes on the length of its package's directory: the two
/// runs differ, so its records stay bound, and every place gets its own number.
#[test]
fn a_long_run_that_turns_its_directory_into_data_stays_bound() {
    let s = Scratch::new();
    let store = s.store();
    let env = [("SLOW_RUN_WHAT", "len")];
    let len = |ws: &Path| format!("{}\n", ws.display().to_string().len());
    for (i, rel) in ["a/ws", "much/longer/b/ws", "c/ws3"]
        .into_iter()
        .enumerate()
    {
        let ws = s.checkout("slow-run", rel);
        let (b, r) = build(&ws, &store, &env);
        assert_eq!(r.runs()["slow-run"].0, "miss", "build {i} at {rel}");
        assert_eq!(b.run("slow-run"), len(&ws));
    }
}

/// `cwhere`'s script compiles `csrc/where.c` named by its absolute path, and the file
/// uses `__FILE__`: the run is bound to the checkout (`observe::file_macros`), misses in
/// a moved one, and `explain` names the file and the name that bound it.
#[test]
fn a_run_bound_by_a_c_files_name_says_which_file() {
    let s = Scratch::new();
    let ws1 = s.checkout("soundness/cc-file", "ws1");
    let (_, r) = build_as_told(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cwhere"], run("miss"));
    let ws2 = s.checkout("soundness/cc-file", "elsewhere/ws2");
    let (_, r) = build_as_told(&ws2, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cwhere"], run("miss"));
    let text = explain(&ws2, &s.store(), "cwhere", &[]);
    assert!(
        text.contains("cwhere/csrc/where.c uses `__FILE__`") && text.contains("A C file's name"),
        "{text}"
    );
}

/// Moved checkouts whose workspace root, target dir and `CARGO_HOME` are each longer,
/// shorter and as long as the first build's, in both orders of length against one
/// another: every build-script run hits (the C path maps the cache adds to each run are
/// keyed by what they mean, not by the real roots in the order of their lengths), and
/// the program is plain cargo's (`EXPECTED`, which
/// `runs_are_replayed_in_another_checkout_like_plain_cargo` checks against plain cargo).
#[test]
fn runs_hit_wherever_the_roots_are_and_however_long() {
    let s = Scratch::new();
    // (workspace, target dir, CARGO_HOME), relative to the scratch directory.
    let layouts = [
        ("mid/wsssss", "mid/tgtttt", "mid/homeee"),
        ("longer/and/longer/ws", "t", "mid/homeff"),
        ("w", "longer/target/dir/t", "longer/and/longer/home"),
        ("mid/wsxxxx", "mid/tgxxxx", "mid/homexx"),
        ("very/very/long/ws/here", "mid/t", "h"),
        ("w2", "mid/tgt", "very/long/cargo/home/dir"),
        ("ws-in-home", "ws-in-home/home/target", "ws-in-home/home"),
    ];
    let first_home = s.path(layouts[0].2);
    for (n, (ws, target, home)) in layouts.into_iter().enumerate() {
        let ws = s.checkout("c-build", ws);
        let target = s.path(target);
        let home = s.path(home);
        if n > 0 {
            common::another_cargo_home(&first_home, &home);
        }
        let b = xcache_build(
            &ws,
            &s.store(),
            &["--locked"],
            &[
                NO_SEED,
                ("CARGO_HOME", home.to_str().unwrap()),
                ("CARGO_TARGET_DIR", target.to_str().unwrap()),
            ],
        );
        b.assert_success();
        let r = Report::read(&target);
        let expected = if n == 0 { "miss" } else { "hit" };
        for package in ["cnum", "plain"] {
            assert_eq!(
                r.runs()[package],
                run(expected),
                "layout {n} ({}): {}",
                ws.display(),
                explain(
                    &ws,
                    &s.store(),
                    package,
                    &[
                        ("CARGO_HOME", home.to_str().unwrap()),
                        ("CARGO_TARGET_DIR", target.to_str().unwrap())
                    ]
                )
            );
        }
        assert_eq!(b.run("app"), EXPECTED, "layout {n}");
    }
    // A checkout whose path the C maps cannot carry (a space) is not mapped: the run is
    // another, and `explain` shows the two values as keyed, roots by alias.
    let ws = s.checkout("c-build", "with space/ws");
    let (b, r) = build(&ws, &s.store(), &[NO_SEED]);
    assert_eq!(r.runs()["cnum"], run("miss"));
    assert_eq!(b.run("app"), EXPECTED);
    let text = explain(&ws, &s.store(), "cnum", &[]);
    assert!(
        text.contains("added-var CFLAGS_x86_64_unknown_linux_gnu changed: `")
            && text.contains("-fdebug-prefix-map=<workspace>=/xcache/ws"),
        "{text}"
    );
}

/// autocfg names what its probes leave in `OUT_DIR` at random in every run, so the path
/// check's two runs never write the same names: they are counted, not named, and the run
/// replays in a checkout elsewhere under another `CARGO_HOME` (longer paths both), with
/// the program plain cargo's.
#[test]
fn a_run_using_autocfg_replays_elsewhere() {
    let s = Scratch::new();
    let h1 = s.path("h1");
    let ws1 = s.checkout("autocfg-probe", "ws1");
    let (b1, r1) = build(
        &ws1,
        &s.store(),
        &[NO_SEED, ("CARGO_HOME", h1.to_str().unwrap())],
    );
    assert_eq!(r1.runs()["probed"], run("miss"));
    let expected = b1.run("probed");
    assert_eq!(expected, "i128=true nonzero=true\n");
    let h2 = s.path("another/machine/with/a/longer/cargo-home");
    common::another_cargo_home(&h1, &h2);
    let env2 = [NO_SEED, ("CARGO_HOME", h2.to_str().unwrap())];
    let ws2 = s.checkout("autocfg-probe", "much/longer/path/ws2");
    let (b2, r2) = build(&ws2, &s.store(), &env2);
    assert_eq!(
        r2.runs()["probed"],
        run("hit"),
        "{}",
        explain(&ws2, &s.store(), "probed", &env2[1..])
    );
    assert_eq!(b2.run("probed"), expected);
    // Plain cargo there prints the same.
    let ws3 = s.checkout("autocfg-probe", "plain/ws3");
    let plain = Build::from_output(
        cargo_build(&ws3, &["--message-format=json"], &env2[1..]),
        &ws3,
    );
    plain.assert_success();
    assert_eq!(plain.run("probed"), expected);
}

/// A build script holding its checkout's path (`env!("CARGO_MANIFEST_DIR")`, as
/// libsqlite3-sys's does) is compiled again in a checkout elsewhere, rightly; its run,
/// proven by the script compiled at aliases of the roots, is not made again: in longer
/// and shorter checkouts each, the program is plain cargo's.
#[test]
fn a_script_holding_its_checkout_replays_its_run_elsewhere() {
    let s = Scratch::new();
    let ws1 = s.checkout("rooted-script", "some/ws1");
    let (b1, r1) = build(&ws1, &s.store(), &[NO_SEED]);
    assert_eq!(r1.runs()["rooted"], run("miss"));
    let expected = b1.run("rooted");
    assert_eq!(expected, "from the data file\n");
    // The second with PATH in the other order, as on another machine: its linker is
    // found at another name (`/bin/cc` where `/bin` links to `usr/bin`).
    let path = std::env::var("PATH").unwrap();
    let reversed: Vec<&str> = path.split(':').rev().collect();
    let reversed = reversed.join(":");
    for (place, path) in [
        ("a/much/longer/path/to/ws2", reversed.as_str()),
        ("w3", path.as_str()),
    ] {
        let ws = s.checkout("rooted-script", place);
        let (b, r) = build(&ws, &s.store(), &[NO_SEED, ("PATH", path)]);
        assert_eq!(
            r.runs()["rooted"],
            run("hit"),
            "{place}: {}",
            explain(&ws, &s.store(), "rooted", &[])
        );
        assert_eq!(b.run("rooted"), expected, "{place}");
    }
    // Plain cargo elsewhere prints the same.
    let ws4 = s.checkout("rooted-script", "plain/ws4");
    let plain = Build::from_output(cargo_build(&ws4, &["--message-format=json"], &[]), &ws4);
    plain.assert_success();
    assert_eq!(plain.run("rooted"), expected);
}

/// The same script making a number of its compiled-in path (its length): the check with
/// the script compiled at the aliases sees it, and a checkout of another length runs it
/// again and prints its own number, as plain cargo does there.
#[test]
fn a_script_making_a_number_of_its_compiled_in_path_runs_again_elsewhere() {
    let s = Scratch::new();
    let env = [NO_SEED, ("ROOTED_FORM", "len")];
    let ws1 = s.checkout("rooted-script", "ws1");
    let (b1, r1) = build(&ws1, &s.store(), &env);
    assert_eq!(r1.runs()["rooted"], run("miss"));
    assert_eq!(
        b1.run("rooted"),
        format!("{}\n", ws1.display().to_string().len())
    );
    let ws2 = s.checkout("rooted-script", "a/longer/place/ws2");
    let (b2, r2) = build(&ws2, &s.store(), &env);
    assert_eq!(r2.runs()["rooted"].0, "miss");
    let plain = Build::from_output(
        cargo_build(&ws2, &["--message-format=json"], &env[1..]),
        &ws2,
    );
    plain.assert_success();
    assert_eq!(b2.run("rooted"), plain.run("rooted"));
    assert_eq!(
        b2.run("rooted"),
        format!("{}\n", ws2.display().to_string().len())
    );
}
