//! A remote-execution farm of other hosts ([`Farm`], [`Host`]): the farm's PostgreSQL
//! and BuildGrid in a network namespace of their own, reached from this one (where the
//! test and its builds run) over a veth pair; each worker a host of its own, in its own
//! network namespace linked to the farm's by another veth pair, with its own root file
//! system (Debian trixie minbase, made by `.ci/trixie-root`: another libc, no Rust, no
//! C compiler) and its own mount, PID and UTS namespaces. A host is cut off by setting
//! its link down and killed by one SIGKILL (its PID namespace goes with its first
//! process). Everything is removed when dropped, also when the test panics.
//!
//! Tests run as parallel processes: each farm takes a slot (a number, locked with
//! `flock` on `/run/xcache-hosts/slot-N`, which the kernel releases when the process
//! dies however it dies), and the slot names its namespaces (`xcache<N>-…`), links and
//! subnets (`10.213.N.0/30` between here and the farm, `10.214.N.4i/30` to host `i`).
//! What a killed test left in its slot is removed by the next test that takes it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exec_servers::{EXEC_INSTANCE, buildgrid_exec_on, postgres};
use super::servers::Server;

/// Where `.ci/trixie-root` makes the hosts' root (`XCACHE_TEST_ROOTS` moves it).
const ROOTS: &str = "/var/cache/xcache-tests/roots";
/// The marker `.ci/trixie-root` writes last, holding its `ROOT_VERSION`.
const ROOT_MARKER: &str = ".xcache-root-complete";
const ROOT_VERSION: &str = "1";
/// How many farms may run at once on this machine (a subnet octet each).
const SLOTS: u16 = 64;
/// What a hang guard waits for a host's processes to end, or a job to show.
const PATIENCE: Duration = Duration::from_secs(120);

/// The trixie root file system of the hosts; a missing or half-made one fails the test
/// with the command that makes it.
pub fn trixie_root() -> PathBuf {
    let roots = std::env::var_os("XCACHE_TEST_ROOTS").map_or_else(|| ROOTS.into(), PathBuf::from);
    let root = roots.join("trixie");
    let marker = std::fs::read_to_string(root.join(ROOT_MARKER)).unwrap_or_default();
    assert!(
        marker.trim() == ROOT_VERSION,
        "no complete trixie root at {} (marker {ROOT_MARKER} says {:?}, want {ROOT_VERSION}): \
         run `.ci/trixie-root` (`.ci/run` runs it), as root, with mmdebstrap installed",
        root.display(),
        marker.trim()
    );
    root
}

/// Runs `ip <args>`, asserting it succeeded.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("running ip {args:?}: {e} (the farm of hosts needs iproute2, as root)")
    });
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PIDs of the processes in network namespace `ns` (none when it is gone).
fn pids_in(ns: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Kills (SIGKILL, by PID) whatever runs in `ns`, waits until nothing does (a hang
/// guard fails the test after [`PATIENCE`]), and deletes the namespace (its links go
/// with it). For a namespace of this slot only: everything in it is ours.
fn remove_namespace(ns: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pids = pids_in(ns);
        if pids.is_empty() {
            break;
        }
        for p in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(p) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        if Instant::now() > deadline {
            // In a Drop: say it, do not panic again.
            eprintln!("processes in network namespace {ns} did not end");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

/// A farm's number, held (locked) while any of its namespaces exists.
struct Slot {
    n: u16,
    _lock: File,
}

impl Slot {
    fn take() -> Slot {
        let dir = Path::new("/run/xcache-hosts");
        std::fs::create_dir_all(dir).unwrap();
        for n in 0..SLOTS {
            let lock = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("slot-{n}")))
                .unwrap();
            if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
            {
                continue;
            }
            let slot = Slot { n, _lock: lock };
            slot.remove_leftovers();
            return slot;
        }
        panic!("all {SLOTS} farm slots under {} are taken", dir.display());
    }

    fn prefix(&self) -> String {
        format!("xcache{}-", self.n)
    }

    /// Removes what a test that died (SIGKILL, no Drop) left in this slot.
    fn remove_leftovers(&self) {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let ns = line.split_whitespace().next().unwrap_or("");
            if ns.starts_with(&self.prefix()) {
                remove_namespace(ns);
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("xc{}r", self.n)])
            .output();
    }

    /// Runs `f` in a thread inside network namespace `ns` (a thread of its own: the
    /// namespace is a thread's), so that what it binds and spawns is there.
    fn in_namespace<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&fd),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap_or_else(|e| panic!("entering {ns}: {e}"));
                f()
            });
            t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

/// The farm: PostgreSQL and BuildGrid in namespace `xcache<N>-farm`, reached from here
/// at `10.213.N.2` (this side is `.1`).
pub struct Farm {
    slot: Arc<Slot>,
    ns: String,
    pg: Option<Server>,
    bgd: Option<Server>,
    hosts: u16,
    root: PathBuf,
}

impl Farm {
    /// Starts the farm (its namespace and link, PostgreSQL, BuildGrid on every address
    /// of the farm's namespace). Fails at once when the hosts' root is missing.
    pub fn start() -> Farm {
        let root = trixie_root();
        let slot = Arc::new(Slot::take());
        let n = slot.n;
        let ns = format!("{}farm", slot.prefix());
        ip(&["netns", "add", &ns]);
        // From here on a panic drops the farm, which removes the namespace.
        let mut farm = Farm {
            slot,
            ns,
            pg: None,
            bgd: None,
            hosts: 0,
            root,
        };
        let (here, there) = (format!("xc{n}r"), format!("xc{n}f"));
        ip(&[
            "link", "add", &here, "type", "veth", "peer", "name", &there, "netns", &farm.ns,
        ]);
        ip(&["addr", "add", &format!("10.213.{n}.1/30"), "dev", &here]);
        ip(&["link", "set", &here, "up"]);
        ip(&["-n", &farm.ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &farm.ns,
            "addr",
            "add",
            &format!("10.213.{n}.2/30"),
            "dev",
            &there,
        ]);
        ip(&["-n", &farm.ns, "link", "set", &there, "up"]);
        let (pg, bgd) = farm.slot.in_namespace(&farm.ns, || {
            let pg = postgres();
            let bgd = buildgrid_exec_on(&pg, "0.0.0.0");
            (pg, bgd)
        });
        farm.pg = Some(pg);
        farm.bgd = Some(bgd);
        farm
    }

    fn port(&self) -> u16 {
        self.bgd.as_ref().unwrap().port
    }

    /// BuildGrid's URI from this namespace: over the link to the farm.
    pub fn exec_uri(&self) -> String {
        format!(
            "grpc://10.213.{}.2:{}?instance={EXEC_INSTANCE}",
            self.slot.n,
            self.port()
        )
    }

    /// BuildGrid's log.
    pub fn bgd_log(&self) -> String {
        let bgd = self.bgd.as_ref().unwrap();
        std::fs::read_to_string(bgd.dir.path().join("bgd.log")).unwrap_or_default()
    }

    /// BuildGrid's job table, read with `psql` in the farm's namespace, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        let port = self.pg.as_ref().unwrap().port.to_string();
        let out =
            self.slot.in_namespace(&self.ns, || {
                Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "bgd", "-d", "postgres"])
                .args(["-AtF", "|", "-c"])
                .arg(
                    "select coalesce(worker_name, ''), stage, coalesce(status_code, -1), n_tries \
                     from jobs order by queued_timestamp",
                )
                .output()
                .unwrap_or_else(|e| panic!("psql: {e} (apt-get install postgresql-client)"))
            });
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                let n = |i: usize| f[i].parse::<i64>().unwrap_or_else(|e| panic!("{l}: {e}"));
                Job {
                    worker: f[0].to_string(),
                    stage: n(1),
                    status: n(2),
                    tries: n(3),
                }
            })
            .collect()
    }

    /// The jobs the worker named `name` completed with status OK.
    pub fn completed_by(&self, name: &str) -> Vec<Job> {
        self.jobs()
            .into_iter()
            .filter(|j| j.worker == name && j.completed_ok())
            .collect()
    }

    /// Waits until the job table shows a job executing on a worker (checked every
    /// 100 ms; the test fails after [`PATIENCE`] rather than hangs) and returns the
    /// worker's name.
    pub fn wait_executing(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let jobs = self.jobs();
            if let Some(j) = jobs.iter().find(|j| j.stage == 3 && !j.worker.is_empty()) {
                return j.worker.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no job executed on a worker: {:?}\n{}",
                self.jobs(),
                self.bgd_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts a worker host named `name` (also its hostname and its worker's name): a
    /// namespace `xcache<N>-<name>` linked to the farm's (`10.214.N.4i+2`, the farm
    /// `.4i+1`), `cargo xcache worker` chrooted into the trixie root with the test's
    /// `cargo-xcache` bound into it, its `--dir` and `HOME` in a directory of its own,
    /// `extra` passed to the worker.
    pub fn host(&mut self, name: &str, extra: &[&str]) -> Host {
        let (n, i) = (self.slot.n, self.hosts);
        assert!(i < 63, "at most 63 hosts on a farm");
        self.hosts += 1;
        let ns = format!("{}{name}", self.slot.prefix());
        ip(&["netns", "add", &ns]);
        let dir = tempfile::Builder::new()
            .prefix(&format!("xcache-host-{name}-"))
            .tempdir()
            .unwrap();
        let mut host = Host {
            _slot: self.slot.clone(),
            name: name.to_string(),
            ns,
            farm_ns: self.ns.clone(),
            farm_link: format!("xc{n}f{i}"),
            child: None,
            log: dir.path().join("worker.log"),
            dir,
        };
        let link = format!("xc{n}w{i}");
        ip(&[
            "link",
            "add",
            &link,
            "netns",
            &host.ns,
            "type",
            "veth",
            "peer",
            "name",
            &host.farm_link,
            "netns",
            &self.ns,
        ]);
        let farm_addr = format!("10.214.{n}.{}", 4 * i + 1);
        ip(&[
            "-n",
            &self.ns,
            "addr",
            "add",
            &format!("{farm_addr}/30"),
            "dev",
            &host.farm_link,
        ]);
        ip(&["-n", &self.ns, "link", "set", &host.farm_link, "up"]);
        ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &host.ns,
            "addr",
            "add",
            &format!("10.214.{n}.{}/30", 4 * i + 2),
            "dev",
            &link,
        ]);
        ip(&["-n", &host.ns, "link", "set", &link, "up"]);

        let d = host.dir.path();
        // Mount points inside the bound directory: the binary, the worker's files.
        File::create(d.join("cargo-xcache")).unwrap();
        std::fs::create_dir(d.join("home")).unwrap();
        std::fs::create_dir(d.join("work")).unwrap();
        let uri = format!(
            "grpc://{farm_addr}:{}?instance={EXEC_INSTANCE}",
            self.port()
        );
        let log = File::create(&host.log).unwrap();
        // unshare forks the host's first process (PID 1 of its PID namespace) and
        // kills it when unshare dies (--kill-child): one SIGKILL to unshare, whose PID
        // nsenter keeps (it execs), ends the host. The mounts are private to the
        // host's mount namespace; the root is shared by the test's hosts, read only
        // in effect (its /tmp is a tmpfs of the host's own).
        const SETUP: &str = r#"set -e
root=$1 dir=$2 exe=$3 name=$4
shift 4
mount -t proc proc "$root/proc"
mount -t tmpfs tmpfs "$root/tmp"
mount --bind "$dir" "$root/xcache"
mount --bind -o ro "$exe" "$root/xcache/cargo-xcache"
echo "$name" > /proc/sys/kernel/hostname
exec chroot "$root" /usr/bin/env -i HOME=/xcache/home PATH=/usr/local/bin:/usr/bin:/bin "$@"
"#;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", host.ns))
            .args(["--", "unshare", "--mount", "--uts", "--pid", "--fork"])
            .args(["--kill-child", "--", "sh", "-c", SETUP, "sh"])
            .arg(&self.root)
            .arg(d)
            .arg(super::xcache_exe())
            .arg(name)
            .args(["/xcache/cargo-xcache", "xcache", "worker", "--server", &uri])
            .args(["--name", name, "--dir", "/xcache/work"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        host.child = Some(child);
        host
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        self.bgd.take();
        self.pg.take();
        remove_namespace(&self.ns);
    }
}

/// One row of BuildGrid's job table.
#[derive(Clone, Debug)]
pub struct Job {
    /// The worker it was last given to (`""`: none).
    pub worker: String,
    /// 2 queued, 3 executing, 4 completed.
    pub stage: i64,
    /// The operation's gRPC status once completed (0: OK), else -1.
    pub status: i64,
    /// How many times it was given to a worker.
    pub tries: i64,
}

impl Job {
    pub fn completed_ok(&self) -> bool {
        self.stage == 4 && self.status == 0
    }
}

/// One worker host (see [`Farm::host`]); removed (processes killed, namespace
/// deleted) when dropped.
pub struct Host {
    _slot: Arc<Slot>,
    pub name: String,
    ns: String,
    farm_ns: String,
    farm_link: String,
    child: Option<Child>,
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl Host {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the worker's log says its bot session is open (the test fails after
    /// [`PATIENCE`], with the log, rather than hangs).
    pub fn wait_session(&self) {
        let deadline = Instant::now() + PATIENCE;
        while !self
            .log_text()
            .lines()
            .any(|l| l.contains("session") && l.ends_with(" open"))
        {
            assert!(
                Instant::now() < deadline,
                "worker {} opened no session:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cuts the host off: its link to the farm goes down (as a cable pulled); it runs on.
    pub fn cut(&self) {
        ip(&["-n", &self.farm_ns, "link", "set", &self.farm_link, "down"]);
    }

    /// Kills the host: SIGKILL to its first process (by PID), which takes every process
    /// of the host with it; returns when none is left.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + PATIENCE;
        while !pids_in(&self.ns).is_empty() {
            if Instant::now() > deadline {
                eprintln!("host {}: processes left after its kill", self.name);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The names of the processes running on the host now.
    pub fn processes(&self) -> Vec<String> {
        pids_in(&self.ns)
            .into_iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    /// Waits until a process named `comm` runs on the host (checked every 50 ms; the
    /// test fails after [`PATIENCE`], with the log, rather than hangs).
    pub fn wait_process(&self, comm: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.processes().iter().any(|c| c == comm) {
            assert!(
                Instant::now() < deadline,
                "no {comm} ran on {}:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The root directory of each of the host's processes named `comm`, as seen from
    /// here (`/proc/PID/root`).
    pub fn roots_of(&self, comm: &str) -> Vec<PathBuf> {
        pids_in(&self.ns)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
            })
            .filter_map(|p| std::fs::read_link(format!("/proc/{p}/root")).ok())
            .collect()
    }

    /// The host's directory as seen from here (`/xcache` on the host).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        remove_namespace(&self.ns);
    }
}
