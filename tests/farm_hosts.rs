//! Remote execution on a farm of other hosts (`common::hosts`): every worker in a
//! network namespace of its own, reaching BuildGrid over its link, in a root file
//! system of another Debian release (trixie: glibc 2.41, no Rust, no C compiler). Their
//! compiles run the toolchain the client ships through the CAS
//! (`xcache-toolchain=shipped`); proc-macros, linked by `cc`, find no worker with this
//! machine's linker there and compile here after the queue wait. Programs are compared
//! with plain cargo's; which worker ran what is read from the report and from
//! BuildGrid's job table.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Instant;

use crate::common::hosts::Farm;
use crate::common::{Report, Scratch, basic, cargo_build, xcache_build};

/// The library units of `basic-workspace`.
const LIBS: &[&str] = &["generated", "mid", "util"];

/// One remote compile's bound (queue included): generous, for 2 busy cores.
const EXEC_TIMEOUT: (&str, &str) = ("XCACHE_EXECUTOR_TIMEOUT", "3m");
/// The proc-macro waits this long for a worker with this machine's linker, once per
/// build, then compiles here.
const QUEUE_WAIT: (&str, &str) = ("XCACHE_EXECUTOR_QUEUE_WAIT", "5s");
/// Where each compile runs is these tests' business: none is compiled here meanwhile.
const NO_HEDGE: (&str, &str) = ("XCACHE_EXECUTOR_HEDGE", "off");

/// The hosts start, each in its own namespaces and root, and open their bot sessions
/// over their links; killing a host ends every process of it.
#[test]
fn worker_hosts_run_in_their_own_root_and_reach_the_farm_over_their_link() {
    let mut farm = Farm::start();
    let w1 = farm.host("w1", &[]);
    let mut w2 = farm.host("w2", &[]);
    w1.wait_session();
    w2.wait_session();
    // Not this machine's: another Debian release, no Rust, no C compiler.
    let root = crate::common::hosts::trixie_root();
    let release = std::fs::read_to_string(root.join("etc/debian_version")).unwrap();
    assert!(release.starts_with("13."), "{release}");
    for absent in ["usr/bin/rustc", "usr/bin/cc", "root/.cargo"] {
        assert!(!root.join(absent).exists(), "{absent}");
    }
    assert_eq!(
        w2.roots_of("cargo-xcache"),
        [root.as_path()],
        "{:?}",
        w2.processes()
    );
    w2.kill();
    assert!(w2.processes().is_empty(), "{:?}", w2.processes());
    assert_eq!(w1.roots_of("cargo-xcache"), [root]);
}

/// `basic-workspace` built through two trixie hosts: its libraries compile there (the
/// report names the worker, and BuildGrid's job table shows the jobs those workers
/// completed), the proc-macro here (`executor-unserved`, after the queue wait), and
/// the program prints what plain cargo's build of the same tree prints.
#[test]
fn libraries_compile_on_other_hosts_and_the_program_is_plain_cargos() {
    let mut farm = Farm::start();
    let w1 = farm.host("w1", &[]);
    let w2 = farm.host("w2", &[]);
    let uri = farm.exec_uri();
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
            farm.bgd_log()
        )
    };
    let ws = s.checkout("basic-workspace", "a/ws");
    let b = xcache_build(&ws, &s.store(), &[], &exec);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    let mut ran_on = std::collections::BTreeSet::new();
    for lib in LIBS {
        let rx = &r.unit(lib)["remote_exec"];
        let worker = rx["worker"].as_str().unwrap_or("");
        assert!(
            worker == "w1" || worker == "w2",
            "{lib}: {rx}\n{}\n{}",
            b.stderr(),
            logs()
        );
        assert!(rx["fallback"].is_null(), "{lib}: {rx}");
        ran_on.insert(worker.to_string());
    }
    let rx = &r.unit("macros")["remote_exec"];
    assert!(rx["worker"].is_null(), "{rx}");
    assert_eq!(rx["fallback"], "executor-unserved", "{rx}");
    // What the report says, the server says: every worker named ran jobs to the end.
    let jobs = farm.jobs();
    let completed = |w: &str| {
        jobs.iter()
            .filter(|j| j.worker == w && j.completed_ok())
            .count()
    };
    assert_eq!(
        completed("w1") + completed("w2"),
        LIBS.len(),
        "{jobs:?}\n{}",
        logs()
    );
    for w in &ran_on {
        assert!(completed(w) > 0, "{w}: {jobs:?}");
    }

    let plain_out = plain_cargos_app(&s.checkout("basic-workspace", "p/ws"));
    assert_eq!(b.run("app"), plain_out);
    assert_eq!(plain_out, basic::EXPECTED_OUTPUT);
}

/// Runs a program and returns its stdout.
fn run(exe: &Path) -> String {
    let out = std::process::Command::new(exe).output().unwrap();
    assert!(out.status.success(), "{}", exe.display());
    String::from_utf8(out.stdout).unwrap()
}

/// A workspace at `ws` whose library `slow` takes seconds to compile (a long constant
/// evaluation, the same on any machine) and whose program prints its value.
fn slow_workspace(ws: &Path) {
    let write = |rel: &str, text: &str| {
        let p = ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"slow\", \"app\"]\nresolver = \"2\"\n",
    );
    write(
        "slow/Cargo.toml",
        "[package]\nname = \"slow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "slow/src/lib.rs",
        "#![allow(long_running_const_eval)]\n\
         const fn spin(n: u64) -> u64 {\n\
         \x20   let mut i = 0;\n\
         \x20   let mut acc = 0x9e37_79b9_7f4a_7c15u64;\n\
         \x20   while i < n {\n\
         \x20       acc = (acc ^ (acc >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9).wrapping_add(i);\n\
         \x20       i += 1;\n\
         \x20   }\n\
         \x20   acc\n\
         }\n\
         pub static VALUE: u64 = spin(2_000_000);\n",
    );
    write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nslow = { path = \"../slow\" }\n",
    );
    write(
        "app/src/main.rs",
        "fn main() {\n    println!(\"value={}\", slow::VALUE);\n}\n",
    );
    crate::common::age(ws, 60);
}

/// A build running in a process group of its own, killed (SIGKILL to the group, by its
/// id) when dropped before it was waited for.
struct BuildGuard(Option<std::process::Child>);

impl Drop for BuildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = c.wait();
        }
    }
}

/// How a host fails in the middle of an action.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// Its link goes down; it runs on, unheard.
    Cut,
    /// Its processes are killed.
    Kill,
}

/// The slow library's compile goes to one of two hosts; once the job table shows it
/// executing there, that host fails; the build still gives plain cargo's program, the
/// compile done by the other host.
fn a_host_failing_mid_action(failure: Failure) {
    let mut farm = Farm::start();
    let mut hosts = vec![farm.host("w1", &[]), farm.host("w2", &[])];
    for h in &hosts {
        h.wait_session();
    }
    let uri = farm.exec_uri();
    let s = Scratch::new();
    let ws = s.path("slow/ws");
    slow_workspace(&ws);
    let mut cmd = crate::common::base_command(&crate::common::xcache_exe(), &ws, &s.store());
    cmd.args(["xcache", "build", "--message-format=json"])
        .env("XCACHE_EXECUTOR", &uri)
        .env(EXEC_TIMEOUT.0, EXEC_TIMEOUT.1)
        .env(QUEUE_WAIT.0, QUEUE_WAIT.1)
        .env(NO_HEDGE.0, NO_HEDGE.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A group of its own: a test that fails before the build ends kills it whole.
        .process_group(0);
    let started = Instant::now();
    let mut build = BuildGuard(Some(cmd.spawn().unwrap()));
    // In the middle: the job given to a host, and its rustc running there.
    let busy = farm.wait_executing();
    let i = hosts.iter().position(|h| h.name == busy).unwrap();
    hosts[i].wait_process("rustc");
    let failed_at = started.elapsed();
    match failure {
        Failure::Cut => hosts[i].cut(),
        Failure::Kill => hosts[i].kill(),
    }
    let child = build.0.take().unwrap();
    let b = crate::common::Build::from_output(child.wait_with_output().unwrap(), &ws);
    let elapsed = started.elapsed();
    eprintln!(
        "{failure:?} of {busy} {:.1} s into the build; the build took {:.1} s",
        failed_at.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    let logs = || {
        let mut t = String::new();
        for h in &hosts {
            t.push_str(&format!("{}:\n{}\n", h.name, h.log_text()));
        }
        format!("{t}bgd:\n{}\njobs: {:?}", farm.bgd_log(), farm.jobs())
    };
    b.assert_success();
    let other = &hosts[1 - i].name;
    let r = Report::read(&ws.join("target"));
    let rx = &r.unit("slow")["remote_exec"];
    assert_eq!(
        rx["worker"].as_str(),
        Some(other.as_str()),
        "{rx}\n{}",
        logs()
    );
    // The job was given to the failed host, then to the other, which completed it.
    let done = farm.completed_by(other);
    assert_eq!(done.len(), 1, "{}", logs());
    assert!(done[0].tries >= 2, "{:?}\n{}", done[0], logs());
    assert!(farm.completed_by(&busy).is_empty(), "{}", logs());

    let plain = s.path("plain/ws");
    slow_workspace(&plain);
    let plain_out = plain_cargos_app(&plain);
    assert_eq!(b.run("app"), plain_out);
    assert!(plain_out.starts_with("value="), "{plain_out}");
}

/// A host cut off (link down) while it compiles: BuildGrid hears nothing from it for
/// its bot keepalive timeout (10 s in the tests' configuration, checked every second)
/// and gives the job to the other host, which compiles it again. Bound: the time to the
/// cut (the toolchain sent, made on the host, rustc started: 10 s here), plus 11 s, plus
/// the other host making the toolchain and compiling `slow` (5 to 10 s), plus the
/// program here; in no case more than XCACHE_EXECUTOR_TIMEOUT (3 min) plus a compile
/// here. Seen: 35 s. The elapsed time is printed, not asserted.
#[test]
fn a_host_cut_off_mid_action_costs_a_keepalive_and_the_build_is_plain_cargos() {
    a_host_failing_mid_action(Failure::Cut);
}

/// A host killed while it compiles: as cut off (its sockets close, but BuildGrid takes
/// a bot for gone only when its keepalive timeout passes), the same bound. Seen: 33 s.
#[test]
fn a_host_killed_mid_action_costs_a_keepalive_and_the_build_is_plain_cargos() {
    a_host_failing_mid_action(Failure::Kill);
}

/// What `app` prints when plain cargo builds the workspace at `ws`.
fn plain_cargos_app(ws: &Path) -> String {
    let out = cargo_build(ws, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(&ws.join("target/debug/app"))
}
