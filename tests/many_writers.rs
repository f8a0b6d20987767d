//! Many writers, one remote: builds at once on one remote (and one machine's local
//! stores each) lose nothing of each other's; a build from an empty local store then
//! plants every unit, as after a single writer. On S3 (SeaweedFS, conditional writes)
//! and Redis (none: writes are read back and merged again).

mod common;

use std::process::Stdio;
use std::time::Instant;

use common::basic::EXPECTED_OUTPUT;
use common::servers::{self, S3_ACCESS, S3_BUCKET, S3_SECRET};
use common::{Build, HEALTHY_REMOTE, Report, Scratch, base_command, xcache_build, xcache_exe};

/// Four builds at once of four checkouts (three of the same tree, one with an edited
/// library), each with an empty local store of its own; then a build of the tree from
/// an empty local store elsewhere.
fn writers_at_once(uri: &str, env: &[(&str, &str)]) {
    let s = Scratch::new();
    let env: Vec<(&str, &str)> = env.iter().copied().chain([HEALTHY_REMOTE]).collect();
    let mut children = Vec::new();
    for n in 0..4 {
        let ws = s.checkout("basic-workspace", &format!("writer-{n}/ws"));
        if n == 3 {
            let lib = ws.join("util/src/lib.rs");
            let text = std::fs::read_to_string(&lib).unwrap();
            std::fs::write(&lib, format!("{text}\npub fn added_by_writer_3() {{}}\n")).unwrap();
        }
        let mut cmd = base_command(&xcache_exe(), &ws, &s.path(&format!("store-{n}")));
        cmd.args(["xcache", "build", "--message-format=json", "--remote", uri])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push((ws, Instant::now(), cmd.spawn().unwrap()));
    }
    let mut spans = Vec::new();
    for (ws, started, child) in children {
        let out = child.wait_with_output().unwrap();
        let ended = Instant::now();
        let b = Build::from_output(out, &ws);
        b.assert_success();
        spans.push((started, ended));
    }
    // They overlapped: every build started before any ended.
    let last_start = spans.iter().map(|(s, _)| *s).max().unwrap();
    let first_end = spans.iter().map(|(_, e)| *e).min().unwrap();
    assert!(last_start < first_end, "the writers did not run at once");

    let ws = s.checkout("basic-workspace", "reader/elsewhere/ws");
    let b = xcache_build(&ws, &s.path("store-reader"), &["--remote", uri], &env);
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    let r = Report::read(&ws.join("target"));
    // Every unit (six compiles and the build script's run) planted from the remote,
    // nothing compiled.
    let units: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {} seeded={} from {}",
                u["crate_name"], u["kind"], u["seeded"], u["tier"]
            )
        })
        .collect();
    assert_eq!(r.summary("seeded"), 7, "{units:#?}\n{}", b.stderr());
    assert_eq!(r.summary("compiled"), 0, "{}", b.stderr());
}

#[test]
fn s3_writers_at_once_lose_nothing() {
    let server = servers::seaweedfs();
    let uri = format!(
        "s3://{S3_BUCKET}/ci?endpoint=http://127.0.0.1:{}",
        server.port
    );
    writers_at_once(
        &uri,
        &[
            ("AWS_ACCESS_KEY_ID", S3_ACCESS),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
        ],
    );
}

#[test]
fn redis_writers_at_once_lose_nothing() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    writers_at_once(&uri, &[]);
}
