//! Remote execution against a real farm on 127.0.0.1: PostgreSQL, BuildGrid's
//! Execution and Bots services, and our workers (`cargo xcache worker`). The executor
//! client (`xcache::exec`) sends actions; the rows check what comes back, which worker
//! ran it, what the worker observed, and the faults: a worker killed mid-action, the
//! server restarted.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::exec_servers::{Worker, buildgrid_exec, buildgrid_exec_at, exec_uri, postgres};
use xcache::config::{RemoteDefaults, RemoteSpec};
use xcache::exec::observed::{self, Confinement};
use xcache::exec::{Bytes, ExecRequest, Executor, InputFile, InputRoot, QueueWait};

/// One remote run may take this long (the queue included): generous, for a machine
/// whose 2 cores run other tests too. Nothing is asserted about time.
const DEADLINE: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn executor(uri: &str) -> Executor {
    let spec = RemoteSpec::parse(uri, &RemoteDefaults::default()).unwrap();
    Executor::new(&spec, DEADLINE).unwrap()
}

/// `sh -c SCRIPT` reading `in.txt` (holding `text`), its outputs `outputs`.
fn shell(script: &str, text: &str, outputs: &[&str], env: &[(&str, &str)]) -> ExecRequest {
    let mut inputs = InputRoot::default();
    inputs
        .add(
            "in.txt",
            InputFile {
                bytes: Bytes::Inline(Arc::new(text.as_bytes().to_vec())),
                executable: false,
            },
        )
        .unwrap();
    let mut envs = BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
    for (k, v) in env {
        envs.insert(k.to_string(), v.to_string());
    }
    ExecRequest {
        arguments: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: envs,
        working_directory: String::new(),
        inputs,
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        platform: BTreeMap::from([("OSFamily".to_string(), std::env::consts::OS.to_string())]),
        cache_lookup: false,
    }
}

/// Removes every file under `dir`, keeping the folders; how many.
fn remove_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += remove_files(&e.path());
        } else {
            std::fs::remove_file(e.path()).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn two_workers_run_actions_with_their_outputs_and_observations() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let w1 = Worker::start(&bgd, "w1", dir.path(), &[]);
    let w2 = Worker::start(&bgd, "w2", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    let out_dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let reqs: Vec<ExecRequest> = (0..4)
            .map(|i| {
                shell(
                    &format!("mkdir -p out && tr a-z A-Z < in.txt > out/up.txt && echo run-{i}"),
                    &format!("hello {i}\n"),
                    &["out/up.txt", xcache::exec::wire::OBSERVED],
                    &[],
                )
            })
            .collect();
        let runs = futures_util::future::join_all(reqs.iter().map(|r| ex.execute(r, None))).await;
        for (i, run) in runs.into_iter().enumerate() {
            let run = run.unwrap_or_else(|e| {
                panic!(
                    "action {i}: {e}\nw1:\n{}\nw2:\n{}\nbgd:\n{}",
                    w1.log_text(),
                    w2.log_text(),
                    std::fs::read_to_string(bgd.dir.path().join("bgd.log")).unwrap_or_default()
                )
            });
            assert_eq!(run.exit_code, 0, "{}", String::from_utf8_lossy(&run.stderr));
            assert_eq!(String::from_utf8_lossy(&run.stdout), format!("run-{i}\n"));
            assert!(
                run.worker == "w1" || run.worker == "w2",
                "ran on {:?}",
                run.worker
            );
            let dest = out_dir.path().join(format!("up-{i}.txt"));
            ex.fetch(&run.outputs["out/up.txt"], &dest).await.unwrap();
            assert_eq!(
                std::fs::read_to_string(&dest).unwrap(),
                format!("HELLO {i}\n")
            );
            // What the worker observed the command read: its input among the opens.
            let observed = ex
                .read(&run.outputs[xcache::exec::wire::OBSERVED])
                .await
                .unwrap()
                .unwrap();
            let record: serde_json::Value = serde_json::from_slice(&observed).unwrap();
            assert_eq!(
                record["format_version"],
                xcache::exec::wire::OBSERVED_FORMAT
            );
            let root = record["input_root"].as_str().unwrap();
            let log = record["log"].as_str().unwrap();
            assert!(
                log.contains(&format!("{root}/in.txt")),
                "the observation names no read of in.txt:\n{log}"
            );
            // Judged: inside the input root once the system's own trees are agreed on
            // (the shell and tr live there); outside without.
            let obs = observed::parse(&observed).unwrap();
            match observed::confinement(&obs, &["/usr", "/bin", "/lib", "/lib64", "/etc"]) {
                Confinement::Confined { reads } => assert!(reads.contains("in.txt"), "{reads:?}"),
                other => panic!("{other:?}\n{log}"),
            }
            assert!(
                matches!(
                    observed::confinement(&obs, &[]),
                    Confinement::Outside { .. }
                ),
                "{log}"
            );
        }
    });
    drop((w1, w2));
}

#[test]
fn a_forged_observation_is_replaced_paths_out_of_the_root_are_refused_and_blobs_gone_are_sent_again()
 {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&bgd, "w1", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    rt.block_on(async {
        // The command writes the observation file itself: the worker's own replaces it.
        let run = ex
            .execute(
                &shell(
                    &format!("echo forged > {}", xcache::exec::wire::OBSERVED),
                    "x",
                    &[xcache::exec::wire::OBSERVED],
                    &[],
                ),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", w.log_text()));
        let observed = ex
            .read(&run.outputs[xcache::exec::wire::OBSERVED])
            .await
            .unwrap()
            .unwrap();
        let record: serde_json::Value = serde_json::from_slice(&observed)
            .unwrap_or_else(|_| panic!("not the worker's record: {observed:?}"));
        assert_eq!(
            record["format_version"],
            xcache::exec::wire::OBSERVED_FORMAT
        );

        // A run that left a symbolic link in its directory (a read through it looks
        // inside the root by name): the worker vouches for nothing, no record.
        let run = ex
            .execute(
                &shell(
                    "ln -s /etc link && cat link/hostname >/dev/null",
                    "x",
                    &[xcache::exec::wire::OBSERVED],
                    &[],
                ),
                None,
            )
            .await
            .unwrap();
        assert_eq!(run.exit_code, 0, "{}", String::from_utf8_lossy(&run.stderr));
        assert!(!run.outputs.contains_key(xcache::exec::wire::OBSERVED));

        // An output path that leaves the working directory: the worker refuses the
        // action, the client gets an error (and would compile locally), no result.
        let err = ex
            .execute(&shell("true", "x", &["../escape.txt"], &[]), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("leaves"), "{err}");

        // Every CAS blob gone (the server's storage and the worker's blob cache
        // emptied) between two runs of one action: the client finds them missing,
        // sends them again, and the action runs as before.
        let req = shell("cat in.txt", "kept", &[], &[]);
        let first = ex.execute(&req, None).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&first.stdout), "kept");
        let removed =
            remove_files(&bgd.dir.path().join("cas")) + remove_files(&dir.path().join("blobs"));
        assert!(removed > 0);
        let again = ex
            .execute(&req, None)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", w.log_text()));
        assert_eq!(again.exit_code, 0);
        assert_eq!(String::from_utf8_lossy(&again.stdout), "kept");
        assert!(again.bytes_up > 0, "nothing was sent again");
    });
    drop(w);
}

#[test]
fn a_worker_killed_mid_action_loses_nothing_and_the_server_restarted_is_served_again() {
    let pg = postgres();
    let mut bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("first-run");
    let mut w1 = Worker::start(&bgd, "w1", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let uri = exec_uri(&bgd);
    // The first run of the action marks that it started and hangs (until killed); a
    // run after it finds the mark and finishes.
    let script = format!(
        "if mkdir {lock} 2>/dev/null; then echo $$ > {lock}/pid; exec sleep 600; fi; echo done > out.txt",
        lock = lock.display()
    );
    let req = shell(&script, "x", &["out.txt"], &[]);
    let ex = executor(&uri);
    let run = rt.block_on(async {
        let pending = ex.execute(&req, None);
        tokio::pin!(pending);
        // Wait for the first run to start on w1, then kill w1 and start w2.
        let lock_pid = lock.join("pid");
        loop {
            tokio::select! {
                r = &mut pending => panic!("finished before the worker was killed: {:?}", r.map(|r| r.exit_code)),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if std::fs::read_to_string(&lock_pid).is_ok_and(|p| !p.trim().is_empty()) {
                break;
            }
        }
        w1.kill();
        let pid: i32 = std::fs::read_to_string(&lock_pid).unwrap().trim().parse().unwrap();
        // The hung command the killed worker left behind is ours to stop, by PID.
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        let w2 = Worker::start(&bgd, "w2", dir.path(), &[]);
        let r = pending.await;
        (r, w2)
    });
    let (run, w2) = run;
    let run = run.unwrap_or_else(|e| {
        panic!(
            "{e}\nw1:\n{}\nbgd:\n{}",
            w1.log_text(),
            std::fs::read_to_string(bgd.dir.path().join("bgd.log")).unwrap_or_default()
        )
    });
    assert_eq!(run.exit_code, 0);
    assert_eq!(
        run.worker, "w2",
        "the lease went back to the queue and to w2"
    );
    let out = tempfile::tempdir().unwrap();
    rt.block_on(ex.fetch(&run.outputs["out.txt"], &out.path().join("out.txt")))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("out.txt")).unwrap(),
        "done\n"
    );

    // The server restarted (same port, same database and CAS folder): the worker
    // opens a new session and serves the next action.
    let port = bgd.port;
    bgd.stop();
    let kept = std::mem::replace(&mut bgd.dir, tempfile::tempdir().unwrap());
    let bgd = buildgrid_exec_at(&pg, port, kept);
    let ex = executor(&exec_uri(&bgd));
    let run = rt
        .block_on(ex.execute(&shell("cat in.txt", "after restart", &[], &[]), None))
        .unwrap_or_else(|e| panic!("{e}\nw2:\n{}", w2.log_text()));
    assert_eq!(run.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "after restart");
    assert_eq!(run.worker, "w2");
}

/// The real rustc (not rustup's proxy) and its sysroot.
fn rustc_and_sysroot() -> (String, String) {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sysroot = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (format!("{sysroot}/bin/rustc"), sysroot)
}

/// A library compile with `lib.rs` as its source, run remotely.
fn rustc_lib(rustc: &str, lib_rs: &str) -> ExecRequest {
    let mut inputs = InputRoot::default();
    inputs
        .add(
            "src/lib.rs",
            InputFile {
                bytes: Bytes::Inline(Arc::new(lib_rs.as_bytes().to_vec())),
                executable: false,
            },
        )
        .unwrap();
    ExecRequest {
        arguments: [
            rustc,
            "--crate-name",
            "demo",
            "--edition=2021",
            "--crate-type",
            "lib",
            "--emit=metadata,link",
            "--out-dir",
            "out",
            "src/lib.rs",
        ]
        .map(String::from)
        .to_vec(),
        env: BTreeMap::new(),
        working_directory: String::new(),
        inputs,
        outputs: [
            "out/libdemo.rlib",
            "out/libdemo.rmeta",
            xcache::exec::wire::OBSERVED,
        ]
        .map(String::from)
        .to_vec(),
        platform: BTreeMap::new(),
        cache_lookup: false,
    }
}

#[test]
fn a_rustc_library_compiled_by_a_worker_is_judged_by_what_it_read() {
    let (rustc, sysroot) = rustc_and_sysroot();
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&bgd, "w1", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    let out = tempfile::tempdir().unwrap();
    rt.block_on(async {
        // Reads only its source and the toolchain: confined, with the sysroot agreed.
        let run = ex
            .execute(&rustc_lib(&rustc, "pub fn answer() -> u32 { 42 }\n"), None)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", w.log_text()));
        assert_eq!(run.exit_code, 0, "{}", String::from_utf8_lossy(&run.stderr));
        let rlib = out.path().join("libdemo.rlib");
        ex.fetch(&run.outputs["out/libdemo.rlib"], &rlib)
            .await
            .unwrap();
        assert!(std::fs::metadata(&rlib).unwrap().len() > 0);
        assert!(run.outputs.contains_key("out/libdemo.rmeta"));
        let record = ex
            .read(&run.outputs[xcache::exec::wire::OBSERVED])
            .await
            .unwrap()
            .unwrap();
        let obs = observed::parse(&record).unwrap();
        match observed::confinement(&obs, &[&sysroot]) {
            Confinement::Confined { reads } => assert!(reads.contains("src/lib.rs"), "{reads:?}"),
            other => panic!("{other:?}"),
        }

        // A source that includes a file of the worker's own: outside, a local compile.
        let run = ex
            .execute(
                &rustc_lib(
                    &rustc,
                    "pub const HOST: &str = include_str!(\"/etc/hostname\");\n",
                ),
                None,
            )
            .await
            .unwrap();
        assert_eq!(run.exit_code, 0, "{}", String::from_utf8_lossy(&run.stderr));
        let record = ex
            .read(&run.outputs[xcache::exec::wire::OBSERVED])
            .await
            .unwrap()
            .unwrap();
        let obs = observed::parse(&record).unwrap();
        assert_eq!(
            observed::confinement(&obs, &[&sysroot]),
            Confinement::Outside {
                path: "/etc/hostname".into()
            }
        );
    });
    drop(w);
}

#[test]
fn a_worker_for_anything_but_a_reapi_server_is_refused_naming_the_flag() {
    for (uri, says) in [
        ("s3://bucket", "grpc://HOST:PORT?instance=NAME"),
        ("grpc://127.0.0.1?instance=x", "names no port"),
    ] {
        let out = std::process::Command::new(common::xcache_exe())
            .args(["xcache", "worker", "--server", uri])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--server") && err.contains(says), "{err}");
    }
}

#[test]
fn a_worker_refuses_a_toolchains_keep_that_is_not_a_count_naming_the_flag() {
    for value in ["0", "-1", "three", ""] {
        let out = std::process::Command::new(common::xcache_exe())
            .args([
                "xcache",
                "worker",
                "--server",
                "grpc://127.0.0.1:1?instance=x",
            ])
            .arg(format!("--toolchains-keep={value}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--toolchains-keep") && err.contains("at least 1"),
            "{value:?}: {err}"
        );
    }
}

/// An action that ships a toolchain whose `bin/rustc` prints `which`, and runs `script`
/// (which runs that rustc as `$XCACHE_RUSTC`).
fn shipping(which: &str, script: &str) -> ExecRequest {
    let mut req = shell(script, "x", &[], &[]);
    req.inputs
        .add(
            &format!("{}/bin/rustc", xcache::exec::wire::TOOLCHAIN_DIR),
            InputFile {
                bytes: Bytes::Inline(Arc::new(format!("#!/bin/sh\necho {which}\n").into_bytes())),
                executable: true,
            },
        )
        .unwrap();
    req.platform.insert(
        xcache::exec::wire::TOOLCHAIN_PROPERTY.to_string(),
        xcache::exec::wire::SHIPPED.to_string(),
    );
    req
}

/// The toolchains the workers of `dir` keep, by what their rustc prints, sorted.
fn toolchains_kept(dir: &Path) -> Vec<String> {
    let mut kept: Vec<String> = std::fs::read_dir(dir.join("toolchains"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let rustc = std::fs::read_to_string(e.path().join("bin/rustc")).unwrap();
            rustc.trim().rsplit(' ').next().unwrap().to_string()
        })
        .collect();
    kept.sort();
    kept
}

/// Two workers sharing a `--dir`, keeping one toolchain: what a worker killed while
/// making a toolchain left is removed when they start; a toolchain an action of the
/// other worker runs with is not removed when a newer one is made, and goes once free.
#[test]
fn workers_remove_what_a_killed_one_left_and_keep_the_toolchains_they_are_told_to() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    // A toolchain made by a worker killed before it was renamed into place: read only.
    let stale = dir.path().join("toolchains/.making-killed");
    std::fs::create_dir_all(stale.join("t/bin")).unwrap();
    std::fs::write(stale.join("t/bin/rustc"), "half").unwrap();
    for p in ["t/bin/rustc", "t/bin", "t", ""] {
        std::fs::set_permissions(
            stale.join(p),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
    }
    let keep = ["--toolchains-keep", "1"];
    let w1 = Worker::start(&bgd, "w1", dir.path(), &keep);
    let w2 = Worker::start(&bgd, "w2", dir.path(), &keep);
    // Swept before a worker opens its session.
    for _ in 0..1200 {
        if w1.log_text().contains("session") && w2.log_text().contains("session") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let open = |w: &Worker| {
        w.log_text()
            .lines()
            .any(|l| l.contains("session") && l.ends_with(" open"))
    };
    assert!(
        open(&w1) && open(&w2),
        "w1:\n{}\nw2:\n{}",
        w1.log_text(),
        w2.log_text()
    );
    assert!(!stale.exists(), "the killed worker's scratch is left");

    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    let started = dir.path().join("started");
    let go = dir.path().join("go");
    let logs = || format!("w1:\n{}\nw2:\n{}", w1.log_text(), w2.log_text());
    rt.block_on(async {
        // `one` in use on one worker (it waits for the test's word)...
        let waiting = shipping(
            "one",
            &format!(
                "touch {started}; while [ ! -e {go} ]; do sleep 0.1; done; \"$XCACHE_RUSTC\"",
                started = started.display(),
                go = go.display()
            ),
        );
        let pending = ex.execute(&waiting, None);
        tokio::pin!(pending);
        while !started.exists() {
            tokio::select! {
                r = &mut pending => panic!("finished before it started: {:?}\n{}", r.map(|r| r.exit_code), logs()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        // ...while the other makes `two`: beyond the bound, `one` stays.
        let two = shipping("two", "\"$XCACHE_RUSTC\"");
        let two = ex.execute(&two, None);
        tokio::pin!(two);
        // Both polled: the first waits for its word, so the second ends first.
        let run = tokio::select! {
            r = &mut two => r.unwrap_or_else(|e| panic!("{e}\n{}", logs())),
            r = &mut pending => panic!("finished before its word: {:?}\n{}", r.map(|r| r.exit_code), logs()),
        };
        assert_eq!(String::from_utf8_lossy(&run.stdout), "two\n", "{}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(toolchains_kept(dir.path()), ["one", "two"]);
        std::fs::write(&go, "").unwrap();
        let run = pending.await.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        assert_eq!(String::from_utf8_lossy(&run.stdout), "one\n", "{}", String::from_utf8_lossy(&run.stderr));
        // Free again: the next toolchain made leaves only itself.
        let run = ex
            .execute(&shipping("three", "\"$XCACHE_RUSTC\""), None)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        assert_eq!(String::from_utf8_lossy(&run.stdout), "three\n");
        assert_eq!(toolchains_kept(dir.path()), ["three"], "{}", logs());
    });
    drop((w1, w2));
}

#[test]
fn a_worker_asked_to_stop_finishes_and_reports_its_action_then_exits() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let go = dir.path().join("go");
    let mut w = Worker::start(&bgd, "w1", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    // The action says it started, then waits for the test's word.
    let script = format!(
        "touch {started}; while [ ! -e {go} ]; do sleep 0.1; done; echo done > out.txt",
        started = started.display(),
        go = go.display()
    );
    let req = shell(&script, "x", &["out.txt"], &[]);
    let run = rt.block_on(async {
        let pending = ex.execute(&req, None);
        tokio::pin!(pending);
        while !started.exists() {
            tokio::select! {
                r = &mut pending => panic!("finished before it started: {:?}", r.map(|r| r.exit_code)),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        w.terminate();
        std::fs::write(&go, "").unwrap();
        pending.await
    });
    let run = run.unwrap_or_else(|e| panic!("{e}\n{}", w.log_text()));
    assert_eq!(run.exit_code, 0);
    assert_eq!(
        run.worker, "w1",
        "the stopping worker reported its own action"
    );
    let status = w.wait_exit();
    assert!(status.success(), "{status:?}\n{}", w.log_text());
    assert!(w.log_text().contains("stopped"), "{}", w.log_text());
}

/// An action no worker can take (its platform asks for an OS no worker offers) is given
/// up once the queue wait is over, cancelled, and said so; one that a worker takes is
/// told as taken and runs past the wait to its end; and while another action of the
/// platform is known taken (`served`), the wait does not end one either.
#[test]
fn an_action_no_worker_takes_is_given_up_after_the_queue_wait_and_a_taken_one_runs_on() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let dir = tempfile::tempdir().unwrap();
    let w1 = Worker::start(&bgd, "w1", dir.path(), &[]);
    let rt = runtime();
    let _in_rt = rt.enter();
    let ex = executor(&exec_uri(&bgd));
    let taken_count = AtomicUsize::new(0);
    let taken = || {
        taken_count.fetch_add(1, Ordering::SeqCst);
    };
    let not_served = || false;
    let not_given_up = || false;
    let now = std::time::SystemTime::now;
    let operation = std::sync::Mutex::new(None);
    let wait = QueueWait {
        limit: Duration::from_secs(2),
        since: &now,
        served: &not_served,
        taken: &taken,
        given_up: &not_given_up,
        operation: &operation,
    };

    let mut nobodys = shell("echo x > out.txt", "x", &["out.txt"], &[]);
    nobodys
        .platform
        .insert("OSFamily".into(), "xcache-no-such-os".into());
    let e = rt
        .block_on(ex.execute(&nobodys, Some(&wait)))
        .expect_err("no worker offers that platform");
    assert_eq!(e.code(), "executor-unserved", "{e}");
    assert!(e.to_string().contains("XCACHE_EXECUTOR_QUEUE_WAIT"), "{e}");
    assert_eq!(taken_count.load(Ordering::SeqCst), 0);
    // Named, so that a caller can cancel it (a compile here that ended first).
    assert!(
        operation
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|n| !n.is_empty()),
        "the server's name for the operation is kept"
    );

    // The worker has run an action (so it is polling the server), then one that runs
    // longer than the wait: taken, so the wait does not end it.
    let warm = shell("cat in.txt > out.txt", "warm", &["out.txt"], &[]);
    rt.block_on(ex.execute(&warm, None)).unwrap();
    let wait = QueueWait {
        limit: Duration::from_secs(5),
        since: &now,
        ..wait
    };
    let slow = shell("sleep 8; cat in.txt > out.txt", "slow", &["out.txt"], &[]);
    let r = rt
        .block_on(ex.execute(&slow, Some(&wait)))
        .unwrap_or_else(|e| panic!("{e}\n{}", w1.log_text()));
    assert_eq!(r.exit_code, 0);
    assert!(r.outputs.contains_key("out.txt"));
    assert_eq!(taken_count.load(Ordering::SeqCst), 1);

    // The platform known served: an action no worker takes waits past the queue wait
    // (here, to a short deadline of its own).
    let served = || true;
    let wait_served = QueueWait {
        limit: Duration::from_millis(500),
        since: &now,
        served: &served,
        taken: &taken,
        given_up: &not_given_up,
        operation: &operation,
    };
    let spec = RemoteSpec::parse(&exec_uri(&bgd), &RemoteDefaults::default()).unwrap();
    let short = Executor::new(&spec, Duration::from_secs(4)).unwrap();
    let e = rt
        .block_on(short.execute(&nobodys, Some(&wait_served)))
        .expect_err("no worker offers that platform");
    assert_eq!(e.code(), "remote-timed-out", "{e}");
    drop(w1);
}
