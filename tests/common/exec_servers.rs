//! A remote-execution farm on 127.0.0.1 for tests/remote_exec.rs: a throwaway
//! PostgreSQL cluster (BuildGrid's Execution and Bots services refuse SQLite), a
//! BuildGrid serving CAS, ByteStream, ActionCache, Execution and Bots on it, and our
//! workers (`cargo xcache worker`). Every process is ours, stopped by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::servers::{Server, free_port, require, start, start_fresh};

/// The instance the farm serves.
pub const EXEC_INSTANCE: &str = "xcache";

/// Where Debian's PostgreSQL 15 puts its programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The `postgres` account's ids, when this test runs as root (PostgreSQL refuses to
/// run as root).
fn postgres_ids() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no `postgres` account: apt-get install postgresql (`.ci/run` installs it)");
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

/// `program` run as the `postgres` account when we are root (setpriv execs it: the
/// child's PID is the program's own, so stopping it stops PostgreSQL).
fn pg_command(program: &str) -> Command {
    let path = Path::new(PG_BIN).join(program);
    assert!(
        path.is_file(),
        "{} is not installed: apt-get install postgresql (`.ci/run` installs it)",
        path.display()
    );
    match postgres_ids() {
        None => Command::new(path),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(path);
            c
        }
    }
}

/// A fresh PostgreSQL cluster on a free 127.0.0.1 port, user `bgd` trusted.
pub fn postgres() -> Server {
    start_fresh("postgres.log", || {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).unwrap();
        if let Some((uid, gid)) = postgres_ids() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        }
        let out = pg_command("initdb")
            .args(["-U", "bgd", "--auth=trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut cmd = pg_command("postgres");
        cmd.arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&data)
            .args(["-c", "fsync=off"]);
        (cmd, port, dir, ())
    })
    .0
}

/// The farm's BuildGrid, its scheduler's state in `pg`: `bgd migrate apply` makes
/// the tables, then the server starts on a free port. The URL names the psycopg2
/// driver: BuildGrid listens for the scheduler's notifications through psycopg2's
/// API, and SQLAlchemy 2.1 would pick psycopg 3 for a bare `postgresql://`.
pub fn buildgrid_exec(pg: &Server) -> Server {
    buildgrid_exec_on(pg, "127.0.0.1")
}

/// As [`buildgrid_exec`], listening on `address` (`0.0.0.0`: every address of the
/// network namespace the caller's thread is in, as a farm of hosts has it, see
/// `common::hosts`); `pg` is reached on 127.0.0.1 of that same namespace.
pub fn buildgrid_exec_on(pg: &Server, address: &str) -> Server {
    require(
        "bgd",
        "python3 -m pip install buildgrid==0.4.4 psycopg2-binary",
    );
    let url = format!("postgresql+psycopg2://bgd@127.0.0.1:{}/postgres", pg.port);
    let out = Command::new("bgd")
        .args(["migrate", "apply", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bgd migrate apply: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    start_fresh("bgd.log", || {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cmd = buildgrid_exec_command(dir.path(), address, port, &url);
        (cmd, port, dir, ())
    })
    .0
}

/// The same farm's BuildGrid started again on `port` (its CAS in `cas`, a folder the
/// test keeps), as after a restart: sessions and jobs are in PostgreSQL, the CAS on disk.
pub fn buildgrid_exec_at(pg: &Server, port: u16, dir: tempfile::TempDir) -> Server {
    let url = format!("postgresql+psycopg2://bgd@127.0.0.1:{}/postgres", pg.port);
    let cmd = buildgrid_exec_command(dir.path(), "127.0.0.1", port, &url);
    start(cmd, port, dir, "bgd.log").unwrap_or_else(|e| panic!("{e}"))
}

fn buildgrid_exec_command(dir: &Path, address: &str, port: u16, url: &str) -> Command {
    let config = dir.join("bgd.yml");
    // Bot sessions expire 10 s after a worker was last heard from (its leases go back
    // to the queue), checked every second; jobs are tried 3 times.
    std::fs::write(
        &config,
        format!(
            "server:\n  - !channel\n    address: \"{address}:{port}\"\n    insecure-mode: true\n\
             connections:\n  - !sql-connection &sql\n    connection-string: {url}\n    pool-size: 5\n    max-overflow: 10\n\
             storages:\n  - !disk-storage &cas\n    path: {cas}\n\
             caches:\n  - !lru-action-cache &ac\n    storage: *cas\n    max-cached-refs: 100000\n    allow-updates: true\n\
             schedulers:\n  - !sql-scheduler &sched\n    sql: *sql\n    action-cache: *ac\n    storage: *cas\n\
             \x20   bot-session-keepalive-timeout: 10\n    session-expiry-timer-interval: 1\n    max-job-attempts: 3\n\
             \x20   property-set: !dynamic-property-set\n      match-property-keys: [OSFamily, ISA, xcache-compiler, xcache-linker, xcache-toolchain]\n      wildcard-property-keys: []\n\
             \x20   assigners:\n      - !priority-age-assigner\n        count: 1\n        interval: 0.1\n\
             instances:\n  - name: {EXEC_INSTANCE}\n    services:\n      - !action-cache\n        cache: *ac\n      - !execution\n        scheduler: *sched\n      - !cas\n        storage: *cas\n      - !bytestream\n        storage: *cas\n",
            cas = dir.join("cas").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new("bgd");
    cmd.args(["server", "start"]).arg(&config);
    cmd
}

/// The `grpc://` URI of a farm's BuildGrid.
pub fn exec_uri(bgd: &Server) -> String {
    format!("grpc://127.0.0.1:{}?instance={EXEC_INSTANCE}", bgd.port)
}

/// One `cargo xcache worker`, stopped (SIGKILL, by PID) when dropped.
pub struct Worker {
    child: Option<Child>,
    pub name: String,
    pub log: PathBuf,
}

impl Worker {
    /// Starts a worker named `name` for `bgd`, its actions and blob cache under `dir`
    /// (workers of one test share it, as on one machine).
    pub fn start(bgd: &Server, name: &str, dir: &Path, extra: &[&str]) -> Worker {
        Worker::start_with_env(bgd, name, dir, extra, &[])
    }

    /// As [`Worker::start`], with `env` set for the worker (a `LIBRARY_PATH` that
    /// gives it another linker identity).
    pub fn start_with_env(
        bgd: &Server,
        name: &str,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(super::xcache_exe())
            .envs(env.iter().copied())
            .args([
                "xcache",
                "worker",
                "--server",
                &exec_uri(bgd),
                "--name",
                name,
                "--dir",
            ])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Worker {
            child: Some(child),
            name: name.to_string(),
            log,
        }
    }

    /// Kills it now (SIGKILL: nothing of it runs on, as a machine that died).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks it to stop (SIGTERM, by PID): it finishes and reports what it runs.
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            let r = rustix::process::kill_process(
                rustix::process::Pid::from_child(c),
                rustix::process::Signal::TERM,
            );
            assert!(r.is_ok(), "SIGTERM to {}: {r:?}", c.id());
        }
    }

    /// Waits for it to exit by itself (checked every 100 ms; after 5 minutes the test
    /// fails rather than hangs) and returns how.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let c = self.child.as_mut().expect("running");
        for _ in 0..3000 {
            if let Some(status) = c.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("worker {} did not stop:\n{}", self.name, self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// BuildGrid's job table on the farm whose PostgreSQL is `pg` (on 127.0.0.1), read with
/// `psql`: each job's stage (2 queued, 3 executing, 4 completed) and whether it was
/// cancelled, oldest first.
pub fn job_stages(pg: &Server) -> Vec<(i64, bool)> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "bgd", "-d", "postgres", "-AtF", "|", "-c"])
        .arg("select stage, cancelled from jobs order by queued_timestamp")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e} (apt-get install postgresql-client)"));
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (stage, cancelled) = l.split_once('|').unwrap_or_else(|| panic!("{l}"));
            (
                stage.parse().unwrap_or_else(|e| panic!("{l}: {e}")),
                cancelled == "t",
            )
        })
        .collect()
}
