//! The remote fault suite: real servers (Redis, SeaweedFS's S3 and BuildGrid's REAPI,
//! on 127.0.0.1) that
//! are down, hang from the start, stall in the middle of a build (the server process
//! frozen with SIGSTOP), refuse the credentials or the database, or hold damaged
//! objects. Every build must succeed with the right program output, name the fault
//! with its own code, and cost a bounded delay. Prints a table (faults injected,
//! builds failed, wrong outputs, seconds added over a build without a remote), which
//! the book quotes; speed is printed, never asserted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::basic::EXPECTED_OUTPUT;
use crate::common::servers::{self, REAPI_INSTANCE, S3_ACCESS, S3_BUCKET, S3_SECRET, Server};
use crate::common::{Build, Report, Scratch, base_command, xcache_build, xcache_exe};
use xcache::config::{RemoteDefaults, RemoteSpec};
use xcache::key::Key;
use xcache::store::RemoteStore;

/// Six compiled units and one build-script run.
const UNITS: u64 = 7;

#[derive(Default)]
struct Row {
    faults: usize,
    failed: usize,
    wrong: usize,
    added: f64,
}

struct Suite {
    s: Scratch,
    n: usize,
    /// Wall time of the same build without a remote.
    baseline: f64,
    rows: Vec<(&'static str, Row)>,
}

impl Suite {
    fn new() -> Suite {
        let s = Scratch::new();
        // The faster of two builds without a remote (the first also warms the disk).
        let mut baseline = f64::MAX;
        for n in 0..2 {
            let ws = s.checkout("basic-workspace", &format!("baseline{n}"));
            let t = Instant::now();
            let b = xcache_build(&ws, &s.path(&format!("baseline{n}-store")), &[], &[]);
            baseline = baseline.min(t.elapsed().as_secs_f64());
            b.assert_success();
        }
        Suite {
            s,
            n: 0,
            baseline,
            rows: Vec::new(),
        }
    }

    fn row(&mut self, class: &'static str) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|(c, _)| *c == class) {
            return &mut self.rows[i].1;
        }
        self.rows.push((class, Row::default()));
        &mut self.rows.last_mut().unwrap().1
    }

    /// One build of a fresh checkout with an empty local store; `during` runs once the
    /// first unit has reported (to fault the remote in the middle of the build).
    fn build(
        &mut self,
        uri: &str,
        env: &[(&str, &str)],
        during: Option<&dyn Fn()>,
    ) -> (Build, Option<Report>, f64, PathBuf) {
        self.n += 1;
        let rel = format!("b{}", self.n);
        let ws = self.s.checkout("basic-workspace", &rel);
        let store = self.s.path(&format!("{rel}-store"));
        let mut cmd = base_command(&xcache_exe(), &ws, &store);
        cmd.args(["xcache", "build", "--message-format=json", "--remote", uri]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let t = Instant::now();
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(during) = during {
            wait_for_first_event(&ws);
            during();
        }
        let out = child.wait_with_output().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let b = Build::from_output(out, &ws);
        let r = std::fs::read_to_string(ws.join("target/xcache/report.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .map(Report);
        (b, r, secs, store)
    }

    /// A build with a fault: counted in `class`'s row; returns the report's warning
    /// codes and the build's stderr.
    fn faulted(
        &mut self,
        class: &'static str,
        uri: &str,
        env: &[(&str, &str)],
        during: Option<&dyn Fn()>,
    ) -> (Vec<String>, String, PathBuf) {
        let (b, r, secs, store) = self.build(uri, env, during);
        let ok = b.output.status.success();
        let right = ok && b.run("app") == EXPECTED_OUTPUT;
        let added = (secs - self.baseline).max(0.0);
        let row = self.row(class);
        row.faults += 1;
        row.failed += usize::from(!ok);
        row.wrong += usize::from(ok && !right);
        row.added = row.added.max(added);
        let codes = r.as_ref().map(Report::warning_codes).unwrap_or_default();
        if let Some(r) = &r {
            assert_eq!(
                r.summary("hits") + r.summary("misses"),
                UNITS,
                "{}",
                b.stderr()
            );
        }
        (codes, b.stderr(), store)
    }

    /// A build elsewhere on a remote whose objects were damaged names the damage, uses
    /// none of it, keeps the remote and stores the units again; the next build restores
    /// them from the remote.
    fn damaged_then_replaced(&mut self, class: &'static str, uri: &str) {
        let (codes, err, _) = self.faulted(class, uri, &[], None);
        assert_eq!(codes, ["remote-entry-damaged"], "{err}");
        assert!(!err.contains("remote-unavailable"), "{err}");
        let (b, r, _, _) = self.build(uri, &[], None);
        b.assert_success();
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        let r = r.unwrap();
        assert_eq!(r.warning_codes(), Vec::<String>::new(), "{}", b.stderr());
        assert!(
            r.summary("remote_hits") >= 5,
            "the damaged objects were replaced: {}",
            r.0["summary"]
        );
    }

    fn print(&self) {
        println!(
            "\nremote fault suite (baseline build without a remote: {:.1} s)",
            self.baseline
        );
        println!(
            "| fault | faults injected | builds failed | wrong outputs | seconds added (max) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: |");
        let mut total = Row::default();
        for (class, r) in &self.rows {
            println!(
                "| {class} | {} | {} | {} | {:.1} |",
                r.faults, r.failed, r.wrong, r.added
            );
            total.faults += r.faults;
            total.failed += r.failed;
            total.wrong += r.wrong;
            total.added = total.added.max(r.added);
        }
        println!(
            "| all | {} | {} | {} | {:.1} |",
            total.faults, total.failed, total.wrong, total.added
        );
    }

    fn assert_clean(&self) {
        for (class, r) in &self.rows {
            assert_eq!(r.failed, 0, "{class}: builds failed");
            assert_eq!(r.wrong, 0, "{class}: wrong outputs");
        }
    }
}

fn wait_for_first_event(ws: &Path) {
    let xdir = ws.join("target/xcache");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let started = std::fs::read_dir(&xdir)
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("events-")
                        && e.metadata().map(|m| m.len() > 0).unwrap_or(false)
                })
            })
            .unwrap_or(false);
        if started {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn s3_uri(server: &Server) -> String {
    format!(
        "s3://{S3_BUCKET}/faults?endpoint=http://127.0.0.1:{}",
        server.port
    )
}

fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", S3_ACCESS),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ]
}

/// Every entry (and seed pack) a local store holds, by key.
fn entry_keys(store: &Path) -> Vec<Key> {
    entry_files(store).into_iter().map(|(k, _)| k).collect()
}

/// Every entry (and seed pack) file a local store holds, with its key.
fn entry_files(store: &Path) -> Vec<(Key, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs = vec![store.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "xce")
                && let Some(k) = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(Key::from_hex)
            {
                out.push((k, p));
            }
        }
    }
    out
}

/// Damages every object of `keys` in the remote: the first empty, the others cut to
/// half their length.
fn damage(uri: &str, keys: &[Key]) -> usize {
    let spec = RemoteSpec::parse(uri, &RemoteDefaults::default()).unwrap();
    let remote = RemoteStore::open(&spec).unwrap();
    let mut n = 0;
    for (i, k) in keys.iter().enumerate() {
        let path = RemoteStore::entry_path(k);
        let Some(bytes) = remote.get_bytes(&path).unwrap() else {
            continue;
        };
        let cut = if i == 0 { 0 } else { bytes.len() / 2 };
        remote.put_bytes(&path, bytes[..cut].to_vec()).unwrap();
        n += 1;
    }
    n
}

/// Empties every bundle piece in the Redis on `port`; returns how many.
fn empty_pieces(port: u16) -> usize {
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let pieces: Vec<String> = cli(&["--scan", "--pattern", "*bundles/*"])
        .lines()
        .map(str::to_string)
        .collect();
    for p in &pieces {
        cli(&["SET", p, ""]);
    }
    pieces.len()
}

#[test]
fn remote_faults_cost_a_bounded_delay_and_never_a_build() {
    let mut suite = Suite::new();
    let redis = servers::redis();
    let redis_uri = format!("redis://127.0.0.1:{}/0", redis.port);

    // Damaged objects: a cold build fills the remote, every entry and seed pack is
    // damaged, and a build elsewhere names them, uses none, keeps the remote and
    // stores the units again; the next build elsewhere restores them all.
    let (b, _, _, cold_store) = suite.build(&redis_uri, &[], None);
    b.assert_success();
    let keys = entry_keys(&cold_store);
    let damaged = damage(&redis_uri, &keys);
    assert!(damaged >= 5, "{damaged} objects damaged");
    // And the bundle the cold build wrote, which holds the same objects again.
    assert_eq!(empty_pieces(redis.port), 1);
    suite.damaged_then_replaced("damaged objects (redis)", &redis_uri);

    // Denied: a wrong password and a missing database, named at once with Redis's
    // own advice (not S3's).
    let locked = servers::redis_with(&["--requirepass", "right-pass"]);
    let uri = format!("redis://:wrong-pass@127.0.0.1:{}/0", locked.port);
    let (codes, err, _) = suite.faulted("denied (redis password)", &uri, &[], None);
    assert_eq!(codes, ["remote-denied"], "{err}");
    assert!(err.contains("redis://:PASSWORD@"), "{err}");
    assert!(!err.contains("AWS") && !err.contains("wrong-pass"), "{err}");
    let uri = format!("redis://:right-pass@127.0.0.1:{}/99", locked.port);
    let (codes, err, _) = suite.faulted("denied (redis database)", &uri, &[], None);
    assert_eq!(codes, ["remote-database-invalid"], "{err}");
    assert!(!err.contains("right-pass"), "{err}");
    drop(locked);

    // Hanging from the start, and stalling after the first unit.
    redis.pause();
    let (codes, err, _) = suite.faulted("hanging (redis)", &redis_uri, &[], None);
    assert_eq!(codes, ["remote-timed-out"], "{err}");
    redis.resume();
    let pause = || redis.pause();
    let (codes, err, _) =
        suite.faulted("stalling mid-build (redis)", &redis_uri, &[], Some(&pause));
    // Paused after the first unit reported: the uploads of the next ones stall.
    assert!(
        codes.is_empty() || codes == ["remote-timed-out"],
        "{codes:?} {err}"
    );
    redis.resume();

    // Down: the server is gone.
    let mut redis = redis;
    redis.stop();
    let (codes, err, _) = suite.faulted("down (redis)", &redis_uri, &[], None);
    assert_eq!(codes, ["remote-unavailable"], "{err}");

    // S3: refused credentials, hanging, stalling.
    let s3 = servers::seaweedfs();
    let uri = s3_uri(&s3);
    let (codes, err, _) = suite.faulted(
        "denied (s3 secret)",
        &uri,
        &[
            ("AWS_ACCESS_KEY_ID", S3_ACCESS),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
        ],
        None,
    );
    assert_eq!(codes, ["remote-denied"], "{err}");
    assert!(err.contains("AWS_SECRET_ACCESS_KEY") && !err.contains("wrong-secret"));
    s3.pause();
    let (codes, err, _) = suite.faulted("hanging (s3)", &uri, &s3_env(), None);
    assert_eq!(codes, ["remote-timed-out"], "{err}");
    s3.resume();
    let pause = || s3.pause();
    let (codes, err, _) = suite.faulted("stalling mid-build (s3)", &uri, &s3_env(), Some(&pause));
    assert!(
        codes.is_empty() || codes == ["remote-timed-out"],
        "{codes:?} {err}"
    );
    s3.resume();

    suite.print();
    suite.assert_clean();
}

/// The blob files of BuildGrid's disk storage that hold our objects' bytes (entries,
/// seed packs and bundle pieces all start with a zstd frame; action results, manifests
/// and the probe do not), by content digest.
fn reapi_object_blobs(server: &Server) -> Vec<(String, PathBuf)> {
    let objects = server.dir.path().join("cas/cas/objects");
    let mut out = Vec::new();
    for d in std::fs::read_dir(&objects).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let bytes = std::fs::read(f.path()).unwrap_or_default();
            if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                let hash = format!(
                    "{}{}",
                    d.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                out.push((hash, f.path()));
            }
        }
    }
    out
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The same faults on a REAPI server (BuildGrid): objects damaged through the protocol
/// (their names bound to cut blobs), blobs the server lost while action results still
/// name them (removed from its disk), a server that hangs from the start or stalls
/// mid-build, and one that is gone.
#[test]
fn reapi_faults_cost_a_bounded_delay_and_never_a_build() {
    let mut suite = Suite::new();
    let mut bgd = servers::buildgrid();
    let uri = format!("grpc://127.0.0.1:{}?instance={REAPI_INSTANCE}", bgd.port);

    // Hanging from the start, and stalling after the first unit (while the server is
    // still empty: a build that finds every unit seeds them all and starts no rustc).
    bgd.pause();
    let (codes, err, _) = suite.faulted("hanging (reapi)", &uri, &[], None);
    assert_eq!(codes, ["remote-timed-out"], "{err}");
    bgd.resume();
    let pause = || bgd.pause();
    let (codes, err, _) = suite.faulted("stalling mid-build (reapi)", &uri, &[], Some(&pause));
    assert!(
        codes.is_empty() || codes == ["remote-timed-out"],
        "{codes:?} {err}"
    );
    bgd.resume();

    // Damaged objects: every entry and seed pack is bound to a cut blob, and the
    // bundle pieces (the other blobs of our objects) are lost; a build elsewhere names
    // the damage, uses none of it, and stores the units again; the next restores them.
    let (b, _, _, cold_store) = suite.build(&uri, &[], None);
    b.assert_success();
    let files = entry_files(&cold_store);
    let keys: Vec<Key> = files.iter().map(|(k, _)| *k).collect();
    let local: Vec<String> = files.iter().map(|(_, p)| sha256_hex(p)).collect();
    let ours = reapi_object_blobs(&bgd);
    let n_ours = ours.len();
    let pieces: Vec<PathBuf> = ours
        .into_iter()
        .filter(|(h, _)| !local.contains(h))
        .map(|(_, p)| p)
        .collect();
    assert!(
        !pieces.is_empty(),
        "the cold build wrote a bundle piece: {n_ours} blobs of objects, {} local",
        local.len()
    );
    for p in &pieces {
        std::fs::remove_file(p).unwrap();
    }
    let damaged = damage(&uri, &keys);
    assert!(damaged >= 5, "{damaged} objects damaged");
    suite.damaged_then_replaced("damaged objects (reapi)", &uri);

    // Lost blobs: the server no longer holds any of our objects' bytes, though its
    // action results still name them. Misses, without a word; stored again.
    let lost = reapi_object_blobs(&bgd);
    assert!(lost.len() >= 5, "{} blobs", lost.len());
    for (_, p) in &lost {
        std::fs::remove_file(p).unwrap();
    }
    let (codes, err, _) = suite.faulted("lost blobs (reapi)", &uri, &[], None);
    assert_eq!(codes, Vec::<String>::new(), "{err}");
    let (b, r, _, _) = suite.build(&uri, &[], None);
    b.assert_success();
    let r = r.unwrap();
    assert_eq!(r.warning_codes(), Vec::<String>::new(), "{}", b.stderr());
    assert_eq!(r.summary("remote_hits"), UNITS, "{}", r.0["summary"]);

    // Down: the server is gone.
    bgd.stop();
    let (codes, err, _) = suite.faulted("down (reapi)", &uri, &[], None);
    assert_eq!(codes, ["remote-unavailable"], "{err}");

    suite.print();
    suite.assert_clean();
}
