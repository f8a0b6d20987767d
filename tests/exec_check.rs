//! `XCACHE_EXECUTOR_CHECK`: a share of the compiles workers ran is compiled here as well
//! and compared, and a worker caught lying gives the farm up for the build. The liar is
//! a real `cargo xcache worker` of a real farm (PostgreSQL, BuildGrid) whose `--rustc`
//! forges: a copy of this machine's sysroot (hard links) whose `bin/rustc` is a small
//! program that runs the real rustc, adding `--cfg xcache_fixture_cfg` to the compile
//! of `util` (which then says `rustflags=with-cfg`). Its compiler identity is this
//! machine's (the same `rustc -vV`, the same standard libraries), and the forged
//! compile reads nothing outside its input root and the sysroot, so the client has no
//! other reason to refuse its result: the negative control shows the forgery is used
//! without the check.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::exec_servers::{Worker, buildgrid_exec, exec_uri, postgres};
use crate::common::{Report, Scratch, assert_warned_once, basic, xcache_build};

/// What of `basic-workspace` may run remotely: its libraries and its proc-macro.
const SENT: &[&str] = &["generated", "macros", "mid", "util"];

/// A remote compile may wait this long (queue included): generous, for 2 busy cores.
const EXEC_TIMEOUT: (&str, &str) = ("XCACHE_EXECUTOR_TIMEOUT", "5m");
const QUEUE_WAIT: (&str, &str) = ("XCACHE_EXECUTOR_QUEUE_WAIT", "5m");

/// What the program prints when `util` was compiled by the liar.
const FORGED: &str = "rustflags=with-cfg";

/// The forging compiler: the real rustc (`rustc-real`, beside it) with `--cfg
/// xcache_fixture_cfg` added when the crate is `util`. Execs it, so the run's record is
/// the real rustc's after this program's start; reads nothing but its own file.
const FORGER: &str = r#"
use std::os::unix::process::CommandExt;
fn main() {
    let mut args = std::env::args_os();
    let me = std::path::PathBuf::from(args.next().unwrap());
    let mut rest: Vec<std::ffi::OsString> = args.collect();
    if rest.windows(2).any(|w| w[0] == "--crate-name" && w[1] == "util") {
        rest.push("--cfg".into());
        rest.push("xcache_fixture_cfg".into());
    }
    let err = std::process::Command::new(me.with_file_name("rustc-real")).args(rest).exec();
    eprintln!("forger: {err}");
    std::process::exit(101);
}
"#;

/// A copy of this machine's sysroot in `dir` (hard links where the file system allows,
/// else copies) whose `bin/rustc` is [`FORGER`]; its path.
fn forging_rustc(dir: &Path) -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let copy = dir.join("sysroot");
    std::fs::create_dir_all(&copy).unwrap();
    for part in ["bin", "lib"] {
        let linked = Command::new("cp")
            .arg("-al")
            .arg(sysroot.join(part))
            .arg(&copy)
            .status()
            .unwrap();
        if !linked.success() {
            let _ = std::fs::remove_dir_all(copy.join(part));
            let copied = Command::new("cp")
                .arg("-a")
                .arg(sysroot.join(part))
                .arg(&copy)
                .status()
                .unwrap();
            assert!(copied.success(), "copying {}", sysroot.display());
        }
    }
    let bin = copy.join("bin");
    // The link moves; the real sysroot's file stays as it was.
    std::fs::rename(bin.join("rustc"), bin.join("rustc-real")).unwrap();
    let src = dir.join("forger.rs");
    std::fs::write(&src, FORGER).unwrap();
    let built = Command::new("rustc")
        .args(["--edition", "2021", "-O", "-o"])
        .arg(bin.join("rustc"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    // The copy is a toolchain of its own: its rustc names it as its sysroot (rustc
    // finds it from where its driver library was loaded: the copy's, unless a
    // LD_LIBRARY_PATH, which cargo sets for the tests it runs, names the real one).
    let said = Command::new(bin.join("rustc"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&said.stdout).trim(),
        copy.to_string_lossy(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    bin.join("rustc")
}

fn remote_exec(r: &Report, crate_name: &str) -> serde_json::Value {
    r.unit(crate_name)["remote_exec"].clone()
}

#[test]
fn a_worker_that_forges_an_output_is_caught_by_the_check_and_the_farm_given_up() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    // On a disk, beside the toolchain, so that the sysroot's copy can be hard links.
    let tools = tempfile::Builder::new()
        .prefix("xcache-forger-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let forger = forging_rustc(tools.path());
    let wdir = tempfile::tempdir().unwrap();
    // Without cargo's LD_LIBRARY_PATH (see `forging_rustc`), as the actions run: the
    // worker states the copy as its sysroot, which the compiles read.
    let liar = Worker::start_with_env(
        &bgd,
        "liar",
        wdir.path(),
        &["--rustc", forger.to_str().unwrap()],
        &[("LD_LIBRARY_PATH", "")],
    );
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        ("XCACHE_EXECUTOR_TOOLCHAIN", "installed"),
        EXEC_TIMEOUT,
        QUEUE_WAIT,
        // Where each compile runs is the test's: none here meanwhile.
        ("XCACHE_EXECUTOR_HEDGE", "off"),
    ];

    // Negative control, without the check: the liar's `util` is taken, and the program
    // is not plain cargo's. (Were the forgery refused for another reason, `util` would
    // show a fallback here and the program would be plain cargo's.)
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    let rx = remote_exec(&r, "util");
    assert_eq!(
        rx["worker"],
        "liar",
        "{rx}\n{}\n{}",
        b.stderr(),
        liar.log_text()
    );
    assert!(rx["fallback"].is_null(), "{rx}");
    assert!(rx["checked"].is_null(), "{rx}");
    let forged = b.run("app");
    assert!(basic::EXPECTED_OUTPUT.contains("rustflags=without-cfg"));
    assert!(forged.contains(FORGED), "{forged}");
    assert_ne!(forged, basic::EXPECTED_OUTPUT);
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());

    // Every remote result checked (a store of its own, so nothing is a hit): the
    // forgery is found, said once, the compile here stands, and the farm is given up.
    let ws = s.checkout("basic-workspace", "b/ws");
    let store = s.path("store-b");
    let mut checked = exec.to_vec();
    checked.push(("XCACHE_EXECUTOR_CHECK", "100%"));
    let b = xcache_build(&ws, &store, &[], &checked);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert_warned_once(&b, &r, "executor-mismatch");
    let said = b
        .stderr()
        .lines()
        .find(|l| l.contains("[executor-mismatch]"))
        .unwrap()
        .to_string();
    assert!(said.contains("util") && said.contains("liar"), "{said}");
    assert!(!said.contains("without the cache"), "{said}");
    let rx = remote_exec(&r, "util");
    assert_eq!(rx["fallback"], "executor-mismatch", "{rx}");
    assert_eq!(rx["worker"], "liar", "{rx}");
    assert_eq!(rx["checked"], true, "{rx}");
    assert!(rx["detail"].as_str().unwrap().contains("libutil-"), "{rx}");
    assert_eq!(r.unit("util")["outcome"], "miss");
    // The others: compiled by the liar (honest on them) and found equal, or compiled
    // here because the farm was given up (`mid` depends on `util`: always after it).
    for lib in SENT.iter().filter(|l| **l != "util") {
        let rx = remote_exec(&r, lib);
        let equal = rx["checked"] == true && rx["fallback"].is_null();
        let given_up = rx["fallback"] == "executor-mismatch"
            && rx["detail"]
                .as_str()
                .unwrap()
                .contains("given up earlier in this build");
        assert!(equal || given_up, "{lib}: {rx}");
    }
    let mid = remote_exec(&r, "mid");
    assert_eq!(mid["fallback"], "executor-mismatch", "{mid}");
    assert!(r.0["summary"]["remote_fallbacks"]["executor-mismatch"].as_u64() >= Some(2));
    assert_eq!(
        r.summary("remote_checked"),
        r.summary("remote_compiled"),
        "every result taken from a worker was checked"
    );
    // What the check stored is this machine's: from a clean target dir, without
    // workers, every library is a hit and the program is plain cargo's.
    std::fs::remove_dir_all(ws.join("target")).unwrap();
    let again = xcache_build(&ws, &store, &[], &[]);
    again.assert_success();
    assert_eq!(again.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    for lib in SENT {
        assert_eq!(r.unit(lib)["outcome"], "hit", "{lib}");
    }

    // An honest worker (this machine's toolchain), every result checked: all equal,
    // nothing said, the report counts them.
    drop(liar);
    let honest = Worker::start(&bgd, "honest", wdir.path(), &[]);
    let ws = s.checkout("basic-workspace", "c/ws");
    let b = xcache_build(&ws, &s.path("store-c"), &[], &checked);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    all_checked_equal(&r, &honest);
    assert_eq!(r.summary("remote_checked"), SENT.len() as u64);
    let shown = crate::common::base_command(&crate::common::xcache_exe(), &ws, &s.path("store-c"))
        .args(["xcache", "report"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("remote execution: 4 compiled on workers (4 of them checked here, equal), 0 here instead"),
        "{shown}"
    );

    // The same with the toolchain shipped through the CAS (the default route, for the
    // libraries): a worker running this machine's rustc from its copy of the shipped
    // tree compiles the same bytes.
    let shipped: Vec<(&str, &str)> = checked
        .iter()
        .copied()
        .filter(|(k, _)| *k != "XCACHE_EXECUTOR_TOOLCHAIN")
        .collect();
    let ws = s.checkout("basic-workspace", "d/ws");
    let b = xcache_build(&ws, &s.path("store-d"), &[], &shipped);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    all_checked_equal(&r, &honest);
    drop(honest);
}

/// A share or a route not understood stops the build, naming the variable (no farm
/// needed: the settings are read before anything is sent).
#[test]
fn a_check_share_or_toolchain_route_not_understood_stops_the_build_naming_it() {
    let port = crate::common::servers::free_port();
    let uri = format!("grpc://127.0.0.1:{port}?instance=xcache");
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    for (name, value) in [
        ("XCACHE_EXECUTOR_CHECK", "half"),
        ("XCACHE_EXECUTOR_CHECK", "150%"),
        ("XCACHE_EXECUTOR_TOOLCHAIN", "elsewhere"),
    ] {
        let b = xcache_build(
            &ws,
            &s.store(),
            &[],
            &[("XCACHE_EXECUTOR", uri.as_str()), (name, value)],
        );
        assert!(!b.output.status.success(), "{name}={value}");
        assert!(
            b.stderr().contains(name) && b.stderr().contains(value),
            "{name}={value}: {}",
            b.stderr()
        );
    }
    // Understood: the build goes on (the executor is down: compiled here).
    let b = xcache_build(
        &ws,
        &s.store(),
        &[],
        &[
            ("XCACHE_EXECUTOR", uri.as_str()),
            ("XCACHE_EXECUTOR_CHECK", "0.1"),
            ("XCACHE_EXECUTOR_TOOLCHAIN", "installed"),
        ],
    );
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
}

/// Every unit sent ran on `worker`, was checked here and found equal, nothing said.
fn all_checked_equal(r: &Report, worker: &Worker) {
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    for lib in SENT {
        let rx = remote_exec(r, lib);
        assert_eq!(
            rx["worker"],
            worker.name.as_str(),
            "{lib}: {rx}\n{}",
            worker.log_text()
        );
        assert_eq!(rx["checked"], true, "{lib}: {rx}");
        assert!(rx["fallback"].is_null(), "{lib}: {rx}");
    }
}
