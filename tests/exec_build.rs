//! `cargo xcache build` with `XCACHE_EXECUTOR`: library and proc-macro compiles that
//! miss the cache run on workers of a real farm on 127.0.0.1 (PostgreSQL, BuildGrid's Execution and
//! Bots services, `cargo xcache worker`), and anything that keeps a remote result from
//! standing for a local compile compiles here. Outcomes are read from the report's
//! `remote_exec` records, programs compared with what plain cargo's print, artifacts
//! with a local build's bytes.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::exec_servers::{Worker, buildgrid_exec, exec_uri, job_stages, postgres};
use crate::common::{Report, Scratch, basic, xcache_build};

/// The library units of `basic-workspace`.
const LIBS: &[&str] = &["generated", "mid", "util"];

/// What of `basic-workspace` may run remotely: its libraries and its proc-macro.
const SENT: &[&str] = &["generated", "macros", "mid", "util"];

/// A remote compile may wait this long (queue included): generous, for 2 busy cores.
const EXEC_TIMEOUT: (&str, &str) = ("XCACHE_EXECUTOR_TIMEOUT", "5m");
/// Long enough that a worker busy with one compile on that machine is not taken for no
/// worker at all (the queue wait's own test is the proc-macro's, below).
const QUEUE_WAIT: (&str, &str) = ("XCACHE_EXECUTOR_QUEUE_WAIT", "5m");
/// The tests of where a compile runs: no compile here meanwhile (the hedge's own tests
/// are below).
const NO_HEDGE: (&str, &str) = ("XCACHE_EXECUTOR_HEDGE", "off");

fn remote_exec(r: &Report, crate_name: &str) -> serde_json::Value {
    r.unit(crate_name)["remote_exec"].clone()
}

/// The `lib<crate>-<hash>.{rlib,rmeta,so}` files of `crate_name` in `target/debug/deps`.
fn artifacts(ws: &Path, crate_name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(ws.join("target/debug/deps"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!("lib{crate_name}-"))
                && (n.ends_with(".rlib") || n.ends_with(".rmeta") || n.ends_with(".so"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn libraries_compile_on_workers_as_they_would_here_and_a_second_build_hits() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w1 = Worker::start(&bgd, "w1", wdir.path(), &[]);
    let w2 = Worker::start(&bgd, "w2", wdir.path(), &[]);
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        EXEC_TIMEOUT,
        QUEUE_WAIT,
        NO_HEDGE,
    ];
    let logs = || {
        format!(
            "w1:\n{}\nw2:\n{}\nbgd:\n{}",
            w1.log_text(),
            w2.log_text(),
            std::fs::read_to_string(bgd.dir.path().join("bgd.log")).unwrap_or_default()
        )
    };

    // Every library and the proc-macro (linked by the worker's `cc`, the same as this
    // machine's) on a worker; the build script and its run, the binary here.
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert!(
            rx["worker"] == "w1" || rx["worker"] == "w2",
            "{lib}: {rx}\n{}\n{}",
            b.stderr(),
            logs()
        );
        assert!(rx["fallback"].is_null(), "{lib}: {rx}");
        assert_eq!(r.unit(lib)["outcome"], "miss", "{lib}");
    }
    for local in ["app", "build_script_build"] {
        assert!(remote_exec(&r, local).is_null(), "{local}");
    }
    assert_eq!(r.summary("remote_compiled"), SENT.len() as u64);
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    // Outputs and inputs stream: a wrapper that sent its compile stays small.
    let rss = r.summary("wrapper_peak_rss_kb");
    assert!(rss < 100 * 1024, "a wrapper peaked at {rss} KiB");
    let shown = common::base_command(&common::xcache_exe(), &ws, &s.store())
        .args(["xcache", "report"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("remote execution: 4 compiled on workers, 0 here instead"),
        "{shown}"
    );

    // The same workspace built here, elsewhere, with a store of its own: the same
    // bytes (rustc is deterministic, and the remote compile names the same remapped
    // paths).
    let here = s.checkout("basic-workspace", "b/ws");
    let local = xcache_build(&here, &s.path("store-b"), &[], &[]);
    local.assert_success();
    // What a worker's compile read, judged, is what a compile here read: the same
    // entry key (for the proc-macro, its link's inputs included).
    let rl = Report::read(&here.join("target"));
    for lib in SENT {
        assert_eq!(r.unit(lib)["key"], rl.unit(lib)["key"], "{lib}");
    }
    for lib in SENT {
        let (remote, local) = (artifacts(&ws, lib), artifacts(&here, lib));
        let want = if *lib == "macros" { 1 } else { 2 };
        assert_eq!(remote.len(), want, "{lib}: {remote:?}");
        for (a, b) in remote.iter().zip(&local) {
            assert_eq!(a.file_name(), b.file_name());
            assert!(
                std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                "{} differs from a local compile's",
                a.display()
            );
        }
    }

    // A clean target dir: everything comes from the store, nothing is sent.
    std::fs::remove_dir_all(ws.join("target")).unwrap();
    let again = xcache_build(&ws, &s.store(), &[], &exec);
    again.assert_success();
    assert_eq!(again.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert_eq!(r.summary("remote_compiled"), 0);
    // The server has the toolchain: one question, nothing sent.
    assert_eq!(r.summary("toolchain_sent_bytes"), 0);
    for lib in SENT {
        assert_eq!(r.unit(lib)["outcome"], "hit", "{lib}");
        assert!(remote_exec(&r, lib).is_null(), "{lib}");
    }

    // A library that reads a file outside its package (the worker's own copy of it):
    // compiled here, and stored from that compile.
    let ws = s.checkout("basic-workspace", "c/ws");
    let lib = ws.join("util/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        format!("{text}\npub const HOST: &str = include_str!(\"/etc/hostname\");\n"),
    )
    .unwrap();
    // And one that reads a variable the worker sets and this machine does not: its
    // value would be the worker's.
    let lib = ws.join("mid/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        format!("{text}\npub const WORKER_RUSTC: Option<&str> = option_env!(\"XCACHE_RUSTC\");\n"),
    )
    .unwrap();
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    let rx = remote_exec(&r, "mid");
    assert_eq!(rx["fallback"], "environment", "{rx}");
    assert_eq!(r.unit("mid")["outcome"], "miss");
    let rx = remote_exec(&r, "util");
    assert_eq!(rx["fallback"], "read-outside", "{rx}");
    assert!(
        rx["detail"].as_str().unwrap().contains("/etc/hostname"),
        "{rx}"
    );
    assert_eq!(r.unit("util")["outcome"], "miss");
    assert_eq!(r.summary("remote_compiled"), 0);
    assert_eq!(r.0["summary"]["remote_fallbacks"]["read-outside"], 1);
    assert_eq!(r.0["summary"]["remote_fallbacks"]["environment"], 1);

    // A proc-macro that reads PATH while it expands (a worker's is `/usr/bin:/bin`): the
    // library it expands in compiles here.
    let ws = s.checkout("basic-workspace", "e/ws");
    let lib = ws.join("macros/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        text.replace(
            "\"fn answer() -> u32 { 42 }\".parse().unwrap()",
            "let n = std::env::var(\"PATH\").map_or(0, |p| p.len().min(1)) + 41;\n    \
             format!(\"fn answer() -> u32 {{ {n} }}\").parse().unwrap()",
        ),
    )
    .unwrap();
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert!(remote_exec(&r, "macros")["worker"].is_string());
    let rx = remote_exec(&r, "mid");
    assert_eq!(rx["fallback"], "environment", "{rx}");
    assert!(rx["detail"].as_str().unwrap().contains("PATH"), "{rx}");

    // A crates.io dependency: rustc runs in its directory inside CARGO_HOME, which the
    // worker has as `cargo-home/`. (Needs crates.io the first time `itoa` is fetched.)
    let ws = s.checkout("registry-dep", "d/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("registry-dep"), "1234567\n");
    let r = Report::read(&ws.join("target"));
    let rx = remote_exec(&r, "itoa");
    assert!(rx["worker"].is_string(), "{rx}\n{}", logs());
    drop((w1, w2));
}

#[test]
fn an_executor_that_is_down_costs_one_warning_and_every_compile_runs_here() {
    let port = common::servers::free_port();
    let uri = format!("grpc://127.0.0.1:{port}?instance=xcache");
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let t = Instant::now();
    let b = xcache_build(&ws, &s.store(), &[], &[("XCACHE_EXECUTOR", &uri)]);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    common::assert_warned_once(&b, &r, "executor-unavailable");
    for lib in LIBS {
        let rx = remote_exec(&r, lib);
        assert_eq!(rx["fallback"], "executor-unavailable", "{lib}: {rx}");
        assert_eq!(r.unit(lib)["outcome"], "miss", "{lib}");
    }
    assert_eq!(r.summary("remote_compiled"), 0);
    // Bounded: a refused connection, once; nothing like a deadline per unit.
    assert!(t.elapsed() < Duration::from_secs(300));

    // A setting not understood stops the build, naming the variable: a URI that is not
    // an Execution service, a timeout past the bound, a count that is not one, a wait
    // that is not a duration.
    let refused = |env: &[(&str, &str)], name: &str| {
        let bad = xcache_build(&ws, &s.store(), &[], env);
        assert!(!bad.output.status.success());
        assert!(bad.stderr().contains(name), "{}", bad.stderr());
    };
    refused(
        &[("XCACHE_EXECUTOR", "redis://127.0.0.1:1/0")],
        "XCACHE_EXECUTOR",
    );
    refused(
        &[("XCACHE_EXECUTOR", &uri), ("XCACHE_EXECUTOR_TIMEOUT", "1h")],
        "XCACHE_EXECUTOR_TIMEOUT",
    );
    refused(
        &[("XCACHE_EXECUTOR", &uri), ("XCACHE_EXECUTOR_LOCAL", "half")],
        "XCACHE_EXECUTOR_LOCAL",
    );
    refused(
        &[
            ("XCACHE_EXECUTOR", &uri),
            ("XCACHE_EXECUTOR_QUEUE_WAIT", "soon"),
        ],
        "XCACHE_EXECUTOR_QUEUE_WAIT",
    );
    refused(
        &[
            ("XCACHE_EXECUTOR", &uri),
            ("XCACHE_EXECUTOR_HEDGE", "maybe"),
        ],
        "XCACHE_EXECUTOR_HEDGE",
    );
}

/// `XCACHE_EXECUTOR_LOCAL=1`: a compile that finds the local slot free runs here (one
/// job at a time, every library); one that finds it taken goes to the workers.
#[test]
fn a_free_local_slot_keeps_a_compile_here_and_a_taken_one_sends_it() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w1 = Worker::start(&bgd, "w1", wdir.path(), &[]);
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        ("XCACHE_EXECUTOR_LOCAL", "1"),
        EXEC_TIMEOUT,
        QUEUE_WAIT,
        NO_HEDGE,
    ];

    // One job at a time: the slot is always free.
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &["-j", "1"], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert_eq!(rx["fallback"], "local-slot", "{lib}: {rx}");
        assert!(rx["worker"].is_null(), "{lib}: {rx}");
    }
    assert_eq!(r.summary("remote_compiled"), 0);
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());

    // The slot held by someone else (here, this test): every library goes to the worker.
    let ws = s.checkout("basic-workspace", "b/ws");
    let slots = ws.join("target/xcache/local-slots");
    std::fs::create_dir_all(&slots).unwrap();
    let held = std::fs::File::create(slots.join("slot-0")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let b = xcache_build(&ws, &s.path("store-b"), &["-j", "1"], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert_eq!(rx["worker"], "w1", "{lib}: {rx}\n{}", w1.log_text());
        assert!(rx["fallback"].is_null(), "{lib}: {rx}");
    }
    assert_eq!(r.summary("remote_compiled"), SENT.len() as u64);
    drop(held);
}

/// A worker whose linker is not this machine's (here: started with a `LIBRARY_PATH`,
/// which the driver reads, so its linker identity differs) is never given the
/// proc-macro: the action waits for a worker that offers this machine's linker for the
/// queue wait, then compiles here (`executor-unserved`, well before the deadline); the
/// libraries are its. A proc-macro whose link a `-C link-arg` changes is not sent at all
/// (`linker`).
#[test]
fn a_proc_macro_is_not_given_to_a_worker_with_another_linker() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w1 = Worker::start_with_env(
        &bgd,
        "w1",
        wdir.path(),
        &[],
        &[("LIBRARY_PATH", "/nonexistent/xcache-other-libs")],
    );
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        // Long enough for a library on a busy 2-core machine: the proc-macro's wait is
        // ended by the queue wait, not by this.
        ("XCACHE_EXECUTOR_TIMEOUT", "5m"),
        ("XCACHE_EXECUTOR_QUEUE_WAIT", "8s"),
        NO_HEDGE,
    ];
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    let rx = remote_exec(&r, "macros");
    assert!(rx["worker"].is_null(), "{rx}\n{}", w1.log_text());
    assert_eq!(rx["fallback"], "executor-unserved", "{rx}");
    assert!(
        rx["detail"]
            .as_str()
            .unwrap()
            .contains("XCACHE_EXECUTOR_QUEUE_WAIT"),
        "{rx}"
    );
    // Said once; the cache stays in use.
    let stderr = b.stderr();
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("[executor-unserved]"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(!said[0].contains("without the cache"), "{}", said[0]);
    assert_eq!(r.unit("macros")["outcome"], "miss");
    // The libraries that did not wait behind the proc-macro ran on the worker.
    assert_eq!(remote_exec(&r, "util")["worker"], "w1", "{}", w1.log_text());
    // Compiled here, it is what a build without workers makes.
    let here = s.checkout("basic-workspace", "b/ws");
    let local = xcache_build(&here, &s.path("store-b"), &[], &[]);
    local.assert_success();
    let rl = Report::read(&here.join("target"));
    assert_eq!(r.unit("macros")["key"], rl.unit("macros")["key"]);

    // A link argument of its own: not sent, said so.
    let ws = s.checkout("basic-workspace", "c/ws");
    let b = xcache_build(
        &ws,
        &s.path("store-c"),
        &[],
        &[
            ("XCACHE_EXECUTOR", uri.as_str()),
            EXEC_TIMEOUT,
            ("RUSTFLAGS", "-C link-arg=-Wl,-O1"),
        ],
    );
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    let rx = remote_exec(&r, "macros");
    assert_eq!(rx["fallback"], "linker", "{rx}");
    assert!(rx["detail"].as_str().unwrap().contains("link-arg"), "{rx}");
    drop(w1);
}

#[test]
fn inputs_gone_from_the_cas_before_a_worker_reads_them_compile_here() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    // No worker yet: the first actions wait in the queue, their inputs uploaded.
    let mut cmd = common::base_command(&common::xcache_exe(), &ws, &s.store());
    cmd.args(["xcache", "build", "--message-format=json"])
        .env("XCACHE_EXECUTOR", &uri)
        .env(EXEC_TIMEOUT.0, EXEC_TIMEOUT.1)
        .env(QUEUE_WAIT.0, QUEUE_WAIT.1)
        .env(NO_HEDGE.0, NO_HEDGE.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let cas = bgd.dir.path().join("cas");
    // Wait for the uploads to settle (files in the CAS, none new for 3 s).
    let mut last = (0usize, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert!(Instant::now() < deadline, "nothing was uploaded");
        let n = common::count_files(&cas);
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > 0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(remove_files(&cas) > 0);
    let wdir = tempfile::tempdir().unwrap();
    let w = Worker::start(&bgd, "w1", wdir.path(), &[]);
    let out = child.wait_with_output().unwrap();
    let b = common::Build::from_output(out, &ws);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    let fell: Vec<String> = LIBS
        .iter()
        .filter(|l| remote_exec(&r, l)["fallback"] == "executor-failed")
        .map(|l| l.to_string())
        .collect();
    assert!(
        !fell.is_empty(),
        "no compile fell back: {}\n{}",
        serde_json::to_string_pretty(&r.0["units"]).unwrap(),
        w.log_text()
    );
    for lib in &fell {
        let rx = remote_exec(&r, lib);
        let detail = rx["detail"].as_str().unwrap();
        assert!(detail.contains("missing from the CAS"), "{lib}: {rx}");
    }
    for lib in LIBS {
        assert_eq!(r.unit(lib)["outcome"], "miss", "{lib}");
    }
    drop(w);
}

/// Removes every file under `dir`, keeping the folders; how many.
fn remove_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += remove_files(&e.path());
        } else if std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// A worker with no Rust at all (no rustc on its PATH, no `--rustc`): library compiles
/// carry this machine's toolchain through the CAS (`XCACHE_EXECUTOR_TOOLCHAIN=ship`, the
/// default) and run on it with that toolchain, made once in the worker's cache, read
/// only; the proc-macro, which links, asks for the installed route and is not taken.
/// With `installed`, nothing of the build is taken.
#[test]
fn a_worker_without_rust_compiles_libraries_with_the_toolchain_they_ship() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w = Worker::start_with_env(&bgd, "bare", wdir.path(), &[], &[("PATH", "/usr/bin:/bin")]);
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let wait = ("XCACHE_EXECUTOR_QUEUE_WAIT", "3s");
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        EXEC_TIMEOUT,
        wait,
        NO_HEDGE,
    ];
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    assert!(
        w.log_text().contains("no rustc installed"),
        "{}",
        w.log_text()
    );
    let r = Report::read(&ws.join("target"));
    for lib in LIBS {
        let rx = remote_exec(&r, lib);
        assert_eq!(
            rx["worker"],
            "bare",
            "{lib}: {rx}\n{}\n{}",
            b.stderr(),
            w.log_text()
        );
    }
    let rx = remote_exec(&r, "macros");
    assert_eq!(rx["fallback"], "executor-unserved", "{rx}");
    assert_eq!(r.warning_codes(), ["executor-unserved"]);

    // The toolchain, made once, read only: rustc and the standard library of the host;
    // beside it, its lock and last use (`<digest>.used`).
    let made: Vec<PathBuf> = std::fs::read_dir(wdir.path().join("toolchains"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].with_extension("used").is_file(), "{made:?}");
    let rustc = made[0].join("bin/rustc");
    let meta = std::fs::metadata(&rustc).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o222, 0, "{}", rustc.display());
    assert!(made[0].join("lib/rustlib").is_dir());
    assert!(!made[0].join("bin/cargo").exists());
    // Made straight from the CAS: the blob cache holds the actions' inputs, not the
    // toolchain's files a second time (its rustc driver alone is over 100 MB).
    let blob_bytes: u64 = std::fs::read_dir(wdir.path().join("blobs"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(
        blob_bytes < 100 << 20,
        "the blob cache holds {blob_bytes} bytes"
    );

    // The installed route asks for a worker with this machine's compiler: none here.
    let ws = s.checkout("basic-workspace", "b/ws");
    let mut installed = exec.to_vec();
    installed.push(("XCACHE_EXECUTOR_TOOLCHAIN", "installed"));
    let b = xcache_build(&ws, &s.path("store-b"), &[], &installed);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert_eq!(r.summary("toolchain_sent_bytes"), 0);
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert_eq!(rx["fallback"], "executor-unserved", "{lib}: {rx}");
    }
}

/// A farm that can take none of the compiles (its one worker has no Rust, and the
/// compiles ask for a worker with this machine's toolchain installed), with a queue
/// wait far longer than the build: each compile sent is compiled here meanwhile
/// (`XCACHE_EXECUTOR_HEDGE`, on by default), that compile stands, and its action is
/// cancelled on the server. Without it, the first compile alone would wait the whole
/// wait (the bound checked), as `XCACHE_EXECUTOR_HEDGE=off` shows the proc-macro's
/// queue wait (`a_proc_macro_is_not_given_to_a_worker_with_another_linker`).
#[test]
fn a_farm_that_takes_no_compile_costs_no_wait_the_compile_here_stands() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w = Worker::start_with_env(&bgd, "bare", wdir.path(), &[], &[("PATH", "/usr/bin:/bin")]);
    let uri = exec_uri(&bgd);
    let s = Scratch::new();
    let wait = "5m";
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        ("XCACHE_EXECUTOR_TOOLCHAIN", "installed"),
        EXEC_TIMEOUT,
        ("XCACHE_EXECUTOR_QUEUE_WAIT", wait),
    ];
    let ws = s.checkout("basic-workspace", "a/ws");
    let t = Instant::now();
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    let took = t.elapsed();
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    assert!(
        took < Duration::from_secs(300),
        "the build waited for a worker: {took:?}"
    );
    let r = Report::read(&ws.join("target"));
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert_eq!(
            rx["fallback"],
            "here-first",
            "{lib}: {rx}\n{}\n{}",
            b.stderr(),
            w.log_text()
        );
        assert_eq!(rx["hedged"], true, "{lib}: {rx}");
        assert!(
            rx["detail"]
                .as_str()
                .unwrap()
                .contains("no worker had taken the action"),
            "{lib}: {rx}"
        );
        assert_eq!(r.unit(lib)["outcome"], "miss", "{lib}");
    }
    assert_eq!(r.summary("remote_hedged"), SENT.len() as u64);
    assert_eq!(r.summary("remote_compiled"), 0);
    // Within the wait, the platform is not given up: nothing to warn about.
    assert!(r.warning_codes().is_empty(), "{:?}", r.warning_codes());
    // Every action sent was cancelled: none waits in the queue for nobody.
    let jobs = job_stages(&pg);
    assert!(!jobs.is_empty(), "the compiles were sent");
    let left: Vec<_> = jobs.iter().filter(|(stage, c)| *stage < 4 && !c).collect();
    assert!(left.is_empty(), "jobs left in the queue: {jobs:?}");
    // What stood is what a build without an executor makes: the same entries.
    let here = s.checkout("basic-workspace", "b/ws");
    let local = xcache_build(&here, &s.path("store-b"), &[], &[]);
    local.assert_success();
    let rl = Report::read(&here.join("target"));
    for lib in SENT {
        assert_eq!(r.unit(lib)["key"], rl.unit(lib)["key"], "{lib}");
    }
}

/// A compile here that is slow (a library preloaded into rustc sleeps 30 s in library
/// and proc-macro compiles, and says when it starts and when it wakes) against a worker
/// that is quick: the worker's result stands, the compile here is stopped before it
/// wakes (with its process group), and the artifacts are the worker's, as a build
/// without an executor makes them.
#[test]
fn a_worker_that_ends_first_stops_the_compile_here() {
    let s = Scratch::new();
    let marks = s.path("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let slow = s.path("slow-here.so");
    let src = s.path("slow-here.c");
    std::fs::write(&src, SLOW_HERE_C).unwrap();
    let cc = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&slow)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );

    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let w1 = Worker::start(&bgd, "w1", wdir.path(), &[]);
    let uri = exec_uri(&bgd);
    let exec = [
        ("XCACHE_EXECUTOR", uri.as_str()),
        EXEC_TIMEOUT,
        QUEUE_WAIT,
        ("LD_PRELOAD", slow.to_str().unwrap()),
        ("XCACHE_TEST_SLOW_MARKS", marks.to_str().unwrap()),
    ];
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    let mut hedged = 0;
    for lib in SENT {
        let rx = remote_exec(&r, lib);
        assert_eq!(rx["worker"], "w1", "{lib}: {rx}\n{}", w1.log_text());
        assert!(rx["fallback"].is_null(), "{lib}: {rx}");
        hedged += usize::from(rx["hedged"] == true);
    }
    let names = |prefix: &str| -> Vec<String> {
        std::fs::read_dir(&marks)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    // At least the build's first compile was compiled here meanwhile (none was known
    // to be served then), and no compile here woke: each was stopped.
    assert!(hedged >= 1, "{}", b.stderr());
    assert!(!names("slept-").is_empty(), "the compiles here started");
    let woke: Vec<String> = names("woke-")
        .iter()
        .map(|n| {
            let slept = marks.join(n.replace("woke-", "slept-"));
            let line = std::fs::read_to_string(slept).unwrap_or_default();
            let tail: String = line
                .chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("{n}: …{tail}")
        })
        .collect();
    assert!(woke.is_empty(), "a compile here ran on: {woke:#?}");

    let here = s.checkout("basic-workspace", "b/ws");
    let local = xcache_build(&here, &s.path("store-b"), &[], &[]);
    local.assert_success();
    for lib in SENT {
        for (a, b) in artifacts(&ws, lib).iter().zip(&artifacts(&here, lib)) {
            assert_eq!(
                std::fs::read(a).unwrap(),
                std::fs::read(b).unwrap(),
                "{}",
                a.display()
            );
        }
    }
}

/// Preloaded into every process of a build: a rustc compiling a library or a
/// proc-macro as cargo asks for it (not cargo's or a build script's probes, not the
/// expansion check) sleeps 30 s, leaving `slept-PID` before and `woke-PID` after in
/// `$XCACHE_TEST_SLOW_MARKS` (once per process tree: the variable it sets is inherited).
const SLOW_HERE_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void slow_here(void) {
    const char *dir = getenv("XCACHE_TEST_SLOW_MARKS");
    if (!dir || getenv("XCACHE_TEST_SLOWED")) return;
    static char buf[1 << 16];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    if (strcmp(base, "rustc") != 0) return;
    int lib = 0, named = 0;
    for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) {
        if (i + (ssize_t)strlen(buf + i) + 1 >= n) break;
        const char *v = buf + i + strlen(buf + i) + 1;
        if (strcmp(buf + i, "--crate-type") == 0)
            lib |= strcmp(v, "lib") == 0 || strcmp(v, "proc-macro") == 0;
    }
    /* A compile cargo asked for (not its probes, a build script's, or the expansion
       check's `-Zunpretty`): it writes dep-info. */
    for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1)
        named |= strncmp(buf + i, "--emit=dep-info,", 16) == 0;
    if (!lib || !named) return;
    setenv("XCACHE_TEST_SLOWED", "1", 1);
    char mark[4096];
    snprintf(mark, sizeof mark, "%s/slept-%d", dir, (int)getpid());
    int m = open(mark, O_CREAT | O_WRONLY, 0644);
    for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
    if (m >= 0) { write(m, buf, n); close(m); }
    sleep(30);
    snprintf(mark, sizeof mark, "%s/woke-%d", dir, (int)getpid());
    close(open(mark, O_CREAT | O_WRONLY, 0644));
}
"#;
