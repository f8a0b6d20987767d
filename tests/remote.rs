//! The remote tier against real servers started on 127.0.0.1: SeaweedFS (S3, with
//! signatures checked, and WebDAV), Redis, memcached, wsgidav (WebDAV), fake-gcs-server
//! (GCS), Azurite (Azure Blob, shared key checked) and BuildGrid (a Remote Execution
//! API server, `grpc://`). The same scenario runs on each.

use std::path::Path;
use std::process::Output;

use crate::common::basic::{CACHEABLE, EXPECTED_OUTPUT};
use crate::common::servers::{
    self, AZURE_ACCOUNT, AZURE_CONTAINER, AZURE_KEY, GCS_BUCKET, REAPI_INSTANCE, S3_ACCESS,
    S3_BUCKET, S3_SECRET, Server,
};
use crate::common::{
    Build, HEALTHY_REMOTE, Report, Scratch, assert_warned_once, base_command, xcache_build,
    xcache_exe,
};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", S3_ACCESS),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ]
}

/// One build of a fresh checkout at `rel` with its own empty local store.
fn build(
    s: &Scratch,
    rel: &str,
    uri: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Build, Report) {
    let ws = s.checkout("basic-workspace", rel);
    let store = s.path(&format!("{rel}-store"));
    let mut args = vec!["--remote", uri];
    args.extend_from_slice(extra);
    let b = xcache_build(&ws, &store, &args, env);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    (b, r)
}

fn tiers(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["outcome"] == "hit")
        .map(|u| u["tier"].as_str().unwrap_or("none").to_string())
        .collect();
    v.sort();
    v
}

/// Read-only writes nothing; a cold build uploads; a build elsewhere with an empty
/// local store restores everything from the remote; a stopped remote warns once and
/// the build still succeeds.
fn scenario(mut server: Server, uri: &str, env: &[(&str, &str)]) {
    let s = Scratch::new();
    let env: Vec<(&str, &str)> = env.iter().copied().chain([HEALTHY_REMOTE]).collect();
    let env = env.as_slice();

    let (_, r) = build(&s, "read-only", uri, &["--read-only"], env);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(r.summary("bytes_up"), 0);
    assert_eq!(r.0["read_only"], true);

    let (_, r) = build(&s, "cold", uri, &[], env);
    assert_eq!(
        r.with_outcome("miss"),
        names(CACHEABLE),
        "read-only wrote nothing"
    );
    assert!(r.summary("bytes_up") > 0);
    assert_eq!(r.warning_codes(), Vec::<String>::new());

    let (_, r) = build(&s, "elsewhere/warm", uri, &[], env);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    assert!(r.with_outcome("miss").is_empty());
    // Six compiled units and the build script's run.
    assert_eq!(tiers(&r), vec!["remote"; 7]);
    assert_eq!(r.summary("remote_hits"), 7);
    assert!(r.summary("bytes_down") > 0);
    // Every unit the graph predicts (libraries, proc-macros, build scripts, the
    // members' binaries) that holds here came down before cargo started, and all of it
    // was used.
    assert_eq!(r.summary("prefetched"), 6, "{}", r.0["summary"]);
    assert_eq!(r.summary("prefetch_unused"), 0);
    assert!(r.summary("predicted") >= 6);
    // Seeds came down too: every unit and the run were put in place before cargo
    // started, and cargo found them fresh.
    assert_eq!(r.summary("seeded"), 7, "{}", r.0["summary"]);

    // A bumped package: the units whose inputs did not change are still prefetched.
    let ws = s.checkout("basic-workspace", "bumped");
    let manifest = ws.join("util/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("version.workspace = true", "version = \"0.1.1\""),
    )
    .unwrap();
    let b = xcache_build(&ws, &s.path("bumped-store"), &["--remote", uri], env);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    assert_eq!(
        r.with_outcome("hit"),
        names(&[
            "build_script_build:build-script",
            "generated:lib",
            "macros:proc-macro"
        ])
    );
    // With the run of `generated`'s build script.
    assert_eq!(tiers(&r), ["remote", "remote", "remote", "remote"]);
    assert_eq!(r.runs()["generated"], ("hit".to_string(), None));
    assert_eq!(
        r.with_outcome("miss"),
        names(&["app:bin", "mid:lib", "util:lib"])
    );

    server.stop();
    let (b, r) = build(&s, "down", uri, &[], env);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_warned_once(&b, &r, "remote-unavailable");
}

#[test]
fn s3_seaweedfs() {
    let server = servers::seaweedfs();
    let uri = format!(
        "s3://{S3_BUCKET}/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );
    scenario(server, &uri, &s3_env());
}

#[test]
fn redis() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    scenario(server, &uri, &[]);
}

fn cluster_uri(server: &Server, password: Option<&str>) -> String {
    let nodes: Vec<String> = server
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let login = password.map(|p| format!(":{p}@")).unwrap_or_default();
    format!("redis+cluster://{login}{}", nodes.join(","))
}

#[test]
fn redis_cluster() {
    let server = servers::redis_cluster(&[], &[]);
    let uri = cluster_uri(&server, None);
    scenario(server, &uri, &[]);
}

#[test]
fn redis_cluster_stopped_mid_build() {
    let server = servers::redis_cluster(&[], &[]);
    let uri = cluster_uri(&server, None);
    stopped_mid_build(server, &uri, &[]);
}

/// The keys of one build spread over the three nodes (the client follows the slot
/// map); a wrong password and a plain server behind `redis+cluster://` are named, with
/// the cluster URI's own advice, and the password is never printed.
#[test]
fn redis_cluster_spreads_keys_and_names_problems() {
    let pass = "cluster-pass-4711";
    let mut server = servers::redis_cluster(
        &["--requirepass", pass, "--masterauth", pass],
        &["-a", pass, "--no-auth-warning"],
    );
    let s = Scratch::new();
    let good = cluster_uri(&server, Some(pass));
    let (b, r) = build(&s, "cold", &good, &[], &[]);
    assert!(r.warning_codes().is_empty(), "{}", b.stderr());
    assert!(!b.stderr().contains(pass));
    assert!(r.summary("bytes_up") > 0);
    for port in server.ports() {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-a",
                pass,
                "--no-auth-warning",
                "-p",
                &port.to_string(),
                "dbsize",
            ])
            .output()
            .unwrap();
        let keys: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(keys > 0, "node {port} holds no key");
    }
    let (_, r) = build(&s, "warm", &good, &[], &[]);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));

    let (code, out) = doctor(&s.path("warm"), &s.store(), &["--remote", &good], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("wrote, read back and deleted a probe object"),
        "{out}"
    );
    assert!(!out.contains(pass), "{out}");

    let wrong = cluster_uri(&server, Some("not-the-cluster-pass"));
    let (b, r) = build(&s, "denied", &wrong, &[], &[]);
    assert_eq!(r.warning_codes(), ["remote-denied"], "{}", b.stderr());
    assert!(
        b.stderr().contains("redis+cluster://:PASSWORD@"),
        "{}",
        b.stderr()
    );
    assert!(
        !b.stderr().contains("not-the-cluster-pass"),
        "{}",
        b.stderr()
    );
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    let (code, out) = doctor(&s.path("warm"), &s.store(), &["--remote", &wrong], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[remote-denied]"), "{out}");
    assert!(!out.contains("not-the-cluster-pass"), "{out}");

    let plain = servers::redis();
    let uri = format!("redis+cluster://127.0.0.1:{}", plain.port);
    let (code, out) = doctor(&s.path("warm"), &s.store(), &["--remote", &uri], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[remote-config-invalid]") && out.contains("not a cluster node"),
        "{out}"
    );

    // A master down without a replica: its slots are not served, and the check says so
    // (the first node still answers).
    let first = server.port;
    server.nodes_mut()[1].stop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let info = std::process::Command::new("redis-cli")
            .args(["-a", pass, "--no-auth-warning", "-p", &first.to_string()])
            .args(["cluster", "info"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&info.stdout).contains("cluster_state:fail") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster did not fail"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, out) = doctor(&s.path("warm"), &s.store(), &["--remote", &good], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[remote-unavailable]") && out.contains("cluster_state"),
        "{out}"
    );
    assert!(!out.contains(pass), "{out}");
}

#[test]
fn memcached() {
    let server = servers::memcached();
    let uri = format!("memcached://127.0.0.1:{}", server.port);
    scenario(server, &uri, &[]);
}

#[test]
fn wrong_credentials_and_missing_bucket_are_named() {
    let server = servers::seaweedfs();
    let s = Scratch::new();
    let good = format!(
        "s3://{S3_BUCKET}/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );
    let (b, r) = build(
        &s,
        "denied",
        &good,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", S3_ACCESS),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
        ],
    );
    assert_eq!(r.warning_codes(), ["remote-denied"]);
    assert!(
        !b.stderr().contains("wrong"),
        "the secret must not be printed"
    );
    let missing = format!(
        "s3://no-such-bucket/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );
    let (_, r) = build(&s, "missing", &missing, &[], &s3_env());
    assert_eq!(r.warning_codes(), ["remote-bucket-missing"]);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
}

#[test]
fn remote_stopped_mid_build_never_fails_it() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    stopped_mid_build(server, &uri, &[]);
}

#[test]
fn webdav_stopped_mid_build() {
    let server = servers::wsgidav();
    let uri = format!("webdav://127.0.0.1:{}/xcache", server.port);
    stopped_mid_build(server, &uri, &[]);
}

#[test]
fn gcs_stopped_mid_build() {
    let server = servers::fake_gcs();
    let uri = format!(
        "gcs://{GCS_BUCKET}/ci?endpoint=http://127.0.0.1:{}&anonymous=true",
        server.port
    );
    stopped_mid_build(server, &uri, &[]);
}

#[test]
fn azure_stopped_mid_build() {
    let server = servers::azurite();
    let uri = azure_uri(server.port, AZURE_CONTAINER);
    stopped_mid_build(server, &uri, &[("AZURE_STORAGE_KEY", AZURE_KEY)]);
}

/// The server is stopped as soon as the first unit reports: the build succeeds with
/// the right output and says so once.
fn stopped_mid_build(mut server: Server, uri: &str, env: &[(&str, &str)]) {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let mut cmd = base_command(&xcache_exe(), &ws, &s.path("store"));
    cmd.args(["xcache", "build", "--message-format=json", "--remote", uri]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the server as soon as the first unit reports.
    let xdir = ws.join("target/xcache");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let started = std::fs::read_dir(&xdir)
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("events-")
                        && std::fs::metadata(e.path())
                            .map(|m| m.len() > 0)
                            .unwrap_or(false)
                })
            })
            .unwrap_or(false);
        if started || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.stop();
    let b = Build::from_output(child.wait_with_output().unwrap(), &ws);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    assert!(r.with_outcome("error").is_empty());
    // Six compiled units and one build-script run.
    assert_eq!(r.summary("units"), 7);
    // Units stored after the stop could not be uploaded: said once, not per unit
    // (refused, or timed out while the client tried to reconnect).
    let codes = r.warning_codes();
    assert!(
        codes == ["remote-unavailable"] || codes == ["remote-timed-out"],
        "{codes:?}"
    );
    assert_eq!(b.stderr().matches("[remote-").count(), 1, "{}", b.stderr());
}

#[test]
fn drop_in_mode_reads_and_writes_the_remote() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    let s = Scratch::new();
    for (n, expect) in [(1, "miss"), (2, "hit")] {
        let ws = s.checkout("basic-workspace", &format!("ws{n}"));
        let events = s.path(&format!("events{n}.jsonl"));
        let mut cmd = base_command(Path::new("cargo"), &ws, &s.path(&format!("store{n}")));
        cmd.args(["build", "--message-format=json"])
            .env("RUSTC_WRAPPER", xcache_exe())
            .env("XCACHE_REMOTE", &uri)
            .env("XCACHE_EVENTS", &events);
        let b = Build::from_output(cmd.output().unwrap(), &ws);
        b.assert_success();
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        let text = std::fs::read_to_string(&events).unwrap();
        let mut got: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["unit"].clone())
            .filter(|u| u["kind"] == "lib" && u["crate_name"] != "generated")
            .map(|u| {
                format!(
                    "{}:{}",
                    u["outcome"].as_str().unwrap(),
                    u["tier"].as_str().unwrap_or("-")
                )
            })
            .collect();
        got.sort();
        let want = if expect == "miss" {
            "miss:-"
        } else {
            "hit:remote"
        };
        // (`generated`, bound to the first checkout's target dir, is left out.)
        assert_eq!(got, vec![want; 2], "build {n}");
    }
}

fn doctor(cwd: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.args(["xcache", "doctor"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn doctor_round_trips_a_probe_and_names_problems() {
    let server = servers::seaweedfs();
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let uri = format!(
        "s3://{S3_BUCKET}/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );

    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &s3_env());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("wrote, read back and deleted a probe object"),
        "{out}"
    );
    assert!(out.contains("compiler: rustc"), "{out}");

    let bad = [
        ("AWS_ACCESS_KEY_ID", S3_ACCESS),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ];
    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[remote-denied]") && out.contains("fix: check the credentials"),
        "{out}"
    );
    assert!(!out.contains("not-the-secret"), "{out}");

    // Settings come from the workspace's xcache.toml too.
    let missing = format!(
        "s3://no-such-bucket/x?endpoint=http://127.0.0.1:{}",
        server.port
    );
    std::fs::write(ws.join("xcache.toml"), format!("remote = \"{missing}\"\n")).unwrap();
    let (code, out) = doctor(&ws, &s.store(), &[], &s3_env());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[remote-bucket-missing]"), "{out}");

    std::fs::write(ws.join("xcache.toml"), "remote = 42\n").unwrap();
    let (code, out) = doctor(&ws, &s.store(), &[], &s3_env());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("xcache.toml"), "{out}");
}

#[test]
fn entries_larger_than_memcached_accepts_stay_local() {
    // 16 KiB items: the fixture's entries are larger, its manifests smaller.
    let server = servers::memcached_with(&["-I", "16k", "-o", "slab_chunk_max=8192"]);
    let uri = format!("memcached://127.0.0.1:{}", server.port);
    let s = Scratch::new();
    let (b, r) = build(&s, "cold", &uri, &[], &[]);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(
        r.warning_codes(),
        ["remote-entry-too-large"],
        "{}",
        b.stderr()
    );
    // The remote stayed in use: the next build still asks it, and compiles what is not there.
    let (_, r) = build(&s, "warm", &uri, &[], &[]);
    assert!(
        !r.warning_codes()
            .contains(&"remote-unavailable".to_string())
    );
    // Six compiled units and one build-script run.
    assert_eq!(r.summary("hits") + r.summary("misses"), 7);
}

#[test]
fn webdav_seaweedfs() {
    let (server, port) = servers::seaweedfs_webdav();
    let uri = format!("webdav://127.0.0.1:{port}/xcache-dav");
    scenario(server, &uri, &[]);
}

#[test]
fn webdav_wsgidav() {
    let server = servers::wsgidav();
    let uri = format!("webdav://127.0.0.1:{}/xcache", server.port);
    scenario(server, &uri, &[]);
}

#[test]
fn gcs_fake_gcs_server() {
    let server = servers::fake_gcs();
    let uri = format!(
        "gcs://{GCS_BUCKET}/ci?endpoint=http://127.0.0.1:{}&anonymous=true",
        server.port
    );
    scenario(server, &uri, &[]);
}

fn azure_uri(port: u16, container: &str) -> String {
    format!(
        "azblob://{container}/ci?account={AZURE_ACCOUNT}&endpoint=http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
    )
}

#[test]
fn azure_blob_azurite() {
    let server = servers::azurite();
    let uri = azure_uri(server.port, AZURE_CONTAINER);
    scenario(server, &uri, &[("AZURE_STORAGE_KEY", AZURE_KEY)]);
}

/// A wrong key, no key and a missing container, each named with Azure's own advice.
#[test]
fn azure_wrong_key_and_missing_container_are_named() {
    let server = servers::azurite();
    let s = Scratch::new();
    let uri = azure_uri(server.port, AZURE_CONTAINER);
    // A well-formed key (base64) that is not the account's.
    let wrong = "d3JvbmctYXp1cml0ZS1rZXktZm9yLWRldnN0b3JlYWNjb3VudDEtbm90LXRoZS1vbmU=";
    let (b, r) = build(&s, "denied", &uri, &[], &[("AZURE_STORAGE_KEY", wrong)]);
    assert_eq!(r.warning_codes(), ["remote-denied"], "{}", b.stderr());
    assert!(b.stderr().contains("AZURE_STORAGE_KEY"), "{}", b.stderr());
    assert!(!b.stderr().contains("AWS_"), "{}", b.stderr());
    assert!(!b.stderr().contains(wrong), "the key must not be printed");
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));

    let missing = azure_uri(server.port, "no-such-container");
    let (b, r) = build(
        &s,
        "missing",
        &missing,
        &[],
        &[("AZURE_STORAGE_KEY", AZURE_KEY)],
    );
    assert_eq!(
        r.warning_codes(),
        ["remote-bucket-missing"],
        "{}",
        b.stderr()
    );
}

#[test]
fn shared_folder() {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    let uri = format!("file://{}", folder.display());
    let (_, r) = build(&s, "read-only", &uri, &["--read-only"], &[]);
    assert_eq!(r.summary("bytes_up"), 0);
    let (_, r) = build(&s, "cold", &uri, &[], &[]);
    assert_eq!(
        r.with_outcome("miss"),
        names(CACHEABLE),
        "read-only wrote nothing"
    );
    let (_, r) = build(&s, "elsewhere/warm", &uri, &[], &[]);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    // Six compiled units and the build script's run.
    assert_eq!(tiers(&r), vec!["remote"; 7]);
    assert_eq!(r.summary("prefetched"), 6);
}

#[test]
fn planted_secrets_reach_no_output() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let port = servers::free_port();
    let uri = format!(
        "s3://bucket/p?endpoint=http://user:planted-uri-secret@127.0.0.1:{port}&region=us-east-1"
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "someone"),
        ("AWS_SECRET_ACCESS_KEY", "planted-env-secret"),
    ];
    let b = xcache_build(&ws, &s.store(), &["--remote", &uri], &env);
    b.assert_success();
    let report_json =
        std::fs::read_to_string(ws.join("target/xcache/report.json")).unwrap_or_default();
    let mut report_cmd = base_command(&xcache_exe(), &ws, &s.store());
    report_cmd.args(["xcache", "report"]);
    let out = report_cmd.output().unwrap();
    let report_out =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let (_, doctor_out) = doctor(&ws, &s.store(), &["--remote", &uri], &env);
    let bad = format!("{uri}&unknown=planted-uri-secret");
    let mut bad_cmd = base_command(&xcache_exe(), &ws, &s.store());
    bad_cmd.args(["xcache", "build", "--remote", &bad]);
    let out = bad_cmd.output().unwrap();
    let bad_out = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(bad_out.contains("unknown option `unknown`"), "{bad_out}");
    for (what, text) in [
        ("build output", b.stderr()),
        ("report.json", report_json.clone()),
        ("report", report_out),
        ("doctor", doctor_out),
        ("bad URI error", bad_out),
    ] {
        for secret in ["planted-uri-secret", "planted-env-secret"] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
    assert!(report_json.contains("127.0.0.1"), "{report_json}");
}

/// `cargo xcache <command> --remote <uri> <args>` in `ws` with its own empty local store; checks
/// that it succeeded and returns its output and report.
fn xcache_remote(s: &Scratch, ws: &Path, uri: &str, args: &[&str]) -> (Output, Report) {
    let store = s.path(&format!(
        "{}-store",
        ws.file_name().unwrap().to_string_lossy()
    ));
    let mut cmd = base_command(&xcache_exe(), ws, &store);
    cmd.env(HEALTHY_REMOTE.0, HEALTHY_REMOTE.1);
    // Before a `--` the arguments may hold.
    cmd.args(["xcache", args[0], "--remote", uri])
        .args(&args[1..]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out, Report::read(&ws.join("target")))
}

/// `cargo xcache test` in `ws` (see [`xcache_remote`]): libtest's `test …` lines,
/// sorted, and the report.
fn xcache_test(s: &Scratch, ws: &Path, uri: &str) -> (Vec<String>, Report) {
    let (out, r) = xcache_remote(s, ws, uri, &["test"]);
    let mut results: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result"))
        .map(str::to_string)
        .collect();
    results.sort();
    (results, r)
}

/// The units rustc still compiled (rustdoc's are not rustc's), by `crate_name:kind`.
fn compiled(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["outcome"] != "hit" && u["reason"] != "rustdoc")
        .map(|u| format!("{}:{}", u["crate_name"], u["kind"]).replace('"', ""))
        .collect();
    v.sort();
    v
}

/// A fresh runner (another directory, an empty local store, an empty target dir) with
/// a remote an earlier `cargo xcache test` filled: cargo compiles nothing; after one
/// edit of a member, exactly that member's units; the test results are right.
#[test]
fn test_on_a_fresh_runner_with_a_warm_remote_compiles_only_what_changed() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    let s = Scratch::new();
    let cold_ws = s.checkout("commands", "cold");
    let (cold_results, cold) = xcache_test(&s, &cold_ws, &uri);
    assert!(!compiled(&cold).is_empty());
    assert!(cold.summary("bytes_up") > 0);
    for t in ["test tests::adds ... ok", "test sums_with_helper ... ok"] {
        assert!(
            cold_results.iter().any(|l| l == t),
            "{t} in {cold_results:?}"
        );
    }

    let warm_ws = s.checkout("commands", "runner/warm");
    let (results, r) = xcache_test(&s, &warm_ws, &uri);
    assert_eq!(results, cold_results);
    assert_eq!(compiled(&r), Vec::<String>::new(), "{}", r.0["units"]);
    // All of it came from the remote, most of it before cargo started.
    assert!(tiers(&r).iter().all(|t| t == "remote"), "{:?}", tiers(&r));
    assert!(r.summary("seeded") > 0, "{}", r.0["summary"]);

    // One member edited (a test added to the binary): only its units compile.
    let edited_ws = s.checkout("commands", "runner/edited");
    let main = edited_ws.join("cli/src/main.rs");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("\n#[test]\nfn sums_words() {\n    assert_eq!(calc::sum(\"1 x 2\"), 3);\n}\n");
    std::fs::write(&main, text).unwrap();
    let (results, r) = xcache_test(&s, &edited_ws, &uri);
    let mut want = cold_results.clone();
    want.push("test sums_words ... ok".to_string());
    want.sort();
    assert_eq!(results, want);
    assert_eq!(
        compiled(&r),
        vec!["cli:test".to_string()],
        "{}",
        r.0["units"]
    );
    assert!(tiers(&r).iter().all(|t| t == "remote"), "{:?}", tiers(&r));
}

/// `cargo xcache clippy` on a fresh runner with a warm remote: clippy's results for the
/// members come down with the dependencies' and are planted, so cargo runs nothing, and
/// prints the warning it kept with them.
#[test]
fn clippy_on_a_fresh_runner_with_a_warm_remote_runs_nothing() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    let s = Scratch::new();
    let lint = "warning: unneeded `return` statement";
    let (out, cold) = xcache_remote(&s, &s.checkout("commands", "cold"), &uri, &["clippy"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(lint));
    assert!(compiled(&cold).contains(&"calc:lib".to_string()));

    let (out, r) = xcache_remote(
        &s,
        &s.checkout("commands", "runner/warm"),
        &uri,
        &["clippy"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(lint), "{stderr}");
    assert_eq!(compiled(&r), Vec::<String>::new(), "{}", r.0["units"]);
    // Every unit, the members' clippy results among them, planted from the remote.
    assert_eq!(
        r.summary("seeded"),
        r.summary("units"),
        "{}",
        r.0["summary"]
    );
    assert_eq!(r.unit("calc")["seeded"], true);
    assert!(tiers(&r).iter().all(|t| t == "remote"), "{:?}", tiers(&r));
}

/// GitHub's documented rate limit for its Actions cache: 200 uploads of new cache
/// entries per minute per repository (GitHub changelog, 2026-01-16, "Rate limiting for
/// actions cache entries"); downloads are not limited by it, and no figure is
/// documented for them.
const GHA_UPLOADS_PER_MINUTE: u64 = 200;
/// Uploads a build may make per unit it compiled or ran and did not restore (its entry,
/// its manifest, its seed pack, with room for one more), plus the index. Today's code
/// makes about three per unit (22 for the fixture's 7 cold units, 4 for its one warm
/// miss); fewer, larger requests stay within it.
const UPLOADS_PER_MISS: u64 = 4;
const UPLOADS_PER_BUILD: u64 = 2;
/// Requests of any kind a build may make per unit, and per build (the check, the index
/// read and write): a ceiling for today's code (33 cold, 23 warm for the fixture's 7
/// units), not a figure GitHub documents.
const REQUESTS_PER_UNIT: u64 = 5;
const REQUESTS_PER_BUILD: u64 = 6;

/// Requests counted by the S3 server (SeaweedFS's own metrics) for a cold build and a
/// warm build from another directory with an empty local store. The uploads a build
/// makes grow with what it compiled, not with the size of the tree: a warm build that
/// restores everything uploads at most [`UPLOADS_PER_BUILD`] objects, so a repository's
/// fleet can run about a hundred such builds a minute under GitHub's limit on its
/// Actions cache; `bench/requests.sh` counts the same on the dependency-heavy project.
#[test]
fn s3_request_counts_stay_under_the_gha_upload_limit() {
    let (server, metrics) = servers::seaweedfs_metered();
    let uri = format!(
        "s3://{S3_BUCKET}/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );
    let s = Scratch::new();
    let c0 = servers::s3_counts(metrics);
    let (b, cold) = build(&s, "cold", &uri, &[], &s3_env());
    assert!(cold.warning_codes().is_empty(), "{}", b.stderr());
    let c1 = servers::s3_counts(metrics);
    let (b, warm) = build(&s, "elsewhere/warm", &uri, &[], &s3_env());
    assert!(warm.warning_codes().is_empty(), "{}", b.stderr());
    assert_eq!(warm.with_outcome("hit"), names(CACHEABLE));
    let c2 = servers::s3_counts(metrics);
    for (name, counts, r) in [
        ("cold", c1.since(&c0), &cold),
        ("warm", c2.since(&c1), &warm),
    ] {
        let uploads = counts.uploads();
        let misses = r.summary("misses");
        let units = r.summary("units");
        eprintln!(
            "{name}: {units} units, {misses} misses: {:?}, {} bytes up, {} down",
            counts.requests, counts.received, counts.sent
        );
        assert_eq!(
            uploads > 0,
            misses > 0,
            "{name}: uploads exactly when something compiled: {counts:?}"
        );
        assert!(
            uploads <= UPLOADS_PER_MISS * misses + UPLOADS_PER_BUILD,
            "{name}: {uploads} uploads for {misses} misses: {counts:?}"
        );
        assert!(
            counts.total() <= REQUESTS_PER_UNIT * units + REQUESTS_PER_BUILD,
            "{name}: {} requests for {units} units: {counts:?}",
            counts.total()
        );
        // The bytes the server counts are the bytes the report says moved.
        assert!(
            counts.received >= r.summary("bytes_up"),
            "{name}: {counts:?}"
        );
        assert!(counts.sent >= r.summary("bytes_down"), "{name}: {counts:?}");
    }
    // A warm build that restored every unit uploads nothing (not even the index):
    // well under the limit, whatever the size of the tree.
    assert_eq!(warm.summary("misses"), 0);
    let warm_uploads = c2.since(&c1).uploads();
    assert!(warm_uploads <= UPLOADS_PER_MISS * warm.summary("misses") + UPLOADS_PER_BUILD);
    assert!(warm_uploads < GHA_UPLOADS_PER_MINUTE / 20);
}

/// Bundled uploads (`uploads=bundles`, the default of the GitHub Actions cache): a cold
/// build writes its objects as bundle pieces and the index, nothing else, so its uploads
/// grow with its bytes (one per 16 MiB), not with its units; a build elsewhere with an
/// empty local store still plants every unit, out of ranges of those pieces; a member
/// edit compiles the units it touches and bundles them; and no object lies in the
/// remote on its own (there is nothing a wrapper could look up by key).
#[test]
fn s3_bundled_uploads_write_pieces_and_the_index_only() {
    let (server, metrics) = servers::seaweedfs_metered();
    let uri = format!(
        "s3://{S3_BUCKET}/bundled?endpoint=http://127.0.0.1:{}&uploads=bundles",
        server.port
    );
    let s = Scratch::new();
    let c0 = servers::s3_counts(metrics);
    let (b, cold) = build(&s, "cold", &uri, &[], &s3_env());
    assert!(cold.warning_codes().is_empty(), "{}", b.stderr());
    let c1 = servers::s3_counts(metrics);
    let up = c1.since(&c0);
    let pieces = cold.summary("pieces_up");
    eprintln!("cold: {pieces} pieces, {:?}", up.requests);
    // The fixture's objects fit one piece: one upload for it, one for the index.
    assert_eq!(pieces, 1, "{}", cold.0["summary"]);
    assert_eq!(up.uploads(), pieces + 1, "{up:?}");
    assert!(up.received >= cold.summary("bytes_up"), "{up:?}");

    let (b, warm) = build(&s, "elsewhere/warm", &uri, &[], &s3_env());
    assert!(warm.warning_codes().is_empty(), "{}", b.stderr());
    assert_eq!(warm.with_outcome("hit"), names(CACHEABLE));
    assert_eq!(warm.summary("seeded"), 7, "{}", warm.0["summary"]);
    let c2 = servers::s3_counts(metrics);
    let down = c2.since(&c1);
    eprintln!("warm: {:?}", down.requests);
    // Nothing to store: no upload, not even the index.
    assert_eq!(down.uploads(), 0, "{down:?}");
    // The check, the index, and the ranges of the one piece.
    assert_eq!(
        warm.summary("prefetch_pieces"),
        warm.summary("prefetch_requests") - 2
    );
    assert!(
        warm.summary("prefetch_requests") <= 4,
        "{}",
        warm.0["summary"]
    );

    // An edit elsewhere: the units it touches compile and travel as a new piece; the
    // next build elsewhere with the same edit plants them too.
    let edited = |rel: &str| {
        let ws = s.checkout("basic-workspace", rel);
        let mid = ws.join("mid/src/lib.rs");
        let text = std::fs::read_to_string(&mid).unwrap();
        std::fs::write(&mid, format!("{text}\npub fn added_elsewhere() {{}}\n")).unwrap();
        let b = xcache_build(
            &ws,
            &s.path(&format!("{rel}-store")),
            &["--remote", &uri],
            &s3_env(),
        );
        b.assert_success();
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        Report::read(&ws.join("target"))
    };
    let first = edited("edited");
    assert!(first.summary("misses") > 0, "{}", first.0["summary"]);
    assert_eq!(first.summary("pieces_up"), 1, "{}", first.0["summary"]);
    let again = edited("edited-again");
    assert_eq!(again.summary("misses"), 0, "{}", again.0["summary"]);
    assert_eq!(again.summary("seeded"), 7, "{}", again.0["summary"]);
    let c3 = servers::s3_counts(metrics);
    // Four builds, two of which stored something: two pieces and two indexes.
    let all = c3.since(&c0);
    assert_eq!(all.uploads(), 2 + 2, "{all:?}");
}

fn reapi_uri(port: u16) -> String {
    format!("grpc://127.0.0.1:{port}?instance={REAPI_INSTANCE}")
}

#[test]
fn reapi_buildgrid() {
    let server = servers::buildgrid();
    let uri = reapi_uri(server.port);
    scenario(server, &uri, &[]);
}

#[test]
fn reapi_stopped_mid_build() {
    let server = servers::buildgrid();
    let uri = reapi_uri(server.port);
    stopped_mid_build(server, &uri, &[]);
}

/// A REAPI server restarted with nothing in it (its action cache lives in memory, its
/// CAS in a fresh folder): the next build finds nothing, names no fault, and stores
/// everything again; the build after it restores every unit from the server. `doctor`
/// round-trips a probe and names a wrong instance; `gc --remote` says what the
/// server's eviction does instead.
#[test]
fn reapi_restarted_empty_is_filled_again_and_doctor_and_gc_speak_reapi() {
    let mut server = servers::buildgrid();
    let port = server.port;
    let uri = reapi_uri(port);
    let s = Scratch::new();
    let env = [HEALTHY_REMOTE];
    let ws = s.checkout("basic-workspace", "doctor");

    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("wrote, read back and deleted a probe object"),
        "{out}"
    );
    let wrong = format!("grpc://127.0.0.1:{port}?instance=no-such-instance");
    let (code, out) = doctor(&ws, &s.store(), &["--remote", &wrong], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[remote-config-invalid]") && out.contains("instance="),
        "{out}"
    );

    let (_, r) = build(&s, "cold", &uri, &[], &env);
    assert!(r.summary("bytes_up") > 0);
    server.stop();
    drop(server);
    let server = servers::buildgrid_at(port);

    let (b, r) = build(&s, "after-restart", &uri, &[], &env);
    assert_eq!(r.with_outcome("miss"), names(CACHEABLE));
    assert_eq!(r.warning_codes(), Vec::<String>::new(), "{}", b.stderr());
    assert!(r.summary("bytes_up") > 0);
    let (_, r) = build(&s, "elsewhere/warm", &uri, &[], &env);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    assert_eq!(tiers(&r), vec!["remote"; 7]);

    let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
    cmd.args([
        "xcache",
        "gc",
        "--remote",
        "--older-than",
        "1d",
        "--remote-uri",
        &uri,
    ]);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("evicts by its own policy"), "{text}");
    drop(server);
}

/// A server that asks for a token: the one in XCACHE_REMOTE_TOKEN goes with every request
/// (as `authorization: Bearer`), builds read and write through it; a wrong or missing
/// token is named, with where the token goes, and never printed.
#[test]
fn reapi_token_is_sent_and_never_printed() {
    let (server, token) = servers::buildgrid_with_jwt("xcache-jwt-secret-4711");
    let uri = reapi_uri(server.port);
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "doctor");

    let good = [("XCACHE_REMOTE_TOKEN", token.as_str())];
    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &good);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("wrote, read back and deleted a probe object"),
        "{out}"
    );
    assert!(!out.contains(&token), "{out}");

    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[remote-denied]") && out.contains("XCACHE_REMOTE_TOKEN"),
        "{out}"
    );
    let wrong = [("XCACHE_REMOTE_TOKEN", "not-the-token-0815")];
    let (code, out) = doctor(&ws, &s.store(), &["--remote", &uri], &wrong);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[remote-denied]"), "{out}");
    assert!(!out.contains("not-the-token-0815"), "{out}");

    let env = [HEALTHY_REMOTE, ("XCACHE_REMOTE_TOKEN", token.as_str())];
    let (b, r) = build(&s, "cold", &uri, &[], &env);
    assert_eq!(r.warning_codes(), Vec::<String>::new(), "{}", b.stderr());
    assert!(r.summary("bytes_up") > 0);
    assert!(!b.stderr().contains(&token));
    let (_, r) = build(&s, "elsewhere/warm", &uri, &[], &env);
    assert_eq!(r.with_outcome("hit"), names(CACHEABLE));
    drop(server);
}
