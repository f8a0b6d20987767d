//! Many writers, one remote: builds at once on one remote (and one machine's local
//! stores each, or one local store for all, with a collection running beside them and
//! a build killed) lose nothing of each other's; a build from an empty local store then
//! plants every unit, as after a single writer. On S3 (SeaweedFS, conditional writes)
//! and Redis (compare-and-swap by a script). And slow writers of one object at once on
//! Redis, a Redis Cluster and memcached, whose compare-and-swap keeps every change.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::basic::EXPECTED_OUTPUT;
use crate::common::servers::{self, GCS_BUCKET, S3_ACCESS, S3_BUCKET, S3_SECRET};
use crate::common::{
    Build, HEALTHY_REMOTE, Report, Scratch, base_command, xcache_build, xcache_exe,
};

/// Four builds at once of four checkouts (three of the same tree, one with an edited
/// library), each with an empty local store of its own; then a build of the tree from
/// an empty local store elsewhere.
fn writers_at_once(uri: &str, env: &[(&str, &str)]) {
    let s = Scratch::new();
    let env: Vec<(&str, &str)> = env.iter().copied().chain([HEALTHY_REMOTE]).collect();
    let store = |n: usize| s.path(&format!("store-{n}"));
    four_writers(&s, uri, &env, store);
    assert_reader_plants_everything(&s, uri, &env, &(0..4).map(store).collect::<Vec<_>>());
}

/// Four builds at once on `uri`, writer `n` with the local store `store(n)`: three of
/// one tree and one with an edited library. Each must succeed, and they must overlap
/// (every build started before any ended).
fn four_writers(s: &Scratch, uri: &str, env: &[(&str, &str)], store: impl Fn(usize) -> PathBuf) {
    let mut children = Vec::new();
    for n in 0..4 {
        let ws = s.checkout("basic-workspace", &format!("writer-{n}/ws"));
        if n == 3 {
            let lib = ws.join("util/src/lib.rs");
            let text = std::fs::read_to_string(&lib).unwrap();
            std::fs::write(&lib, format!("{text}\npub fn added_by_writer_3() {{}}\n")).unwrap();
        }
        let mut cmd = base_command(&xcache_exe(), &ws, &store(n));
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
        // Shown where the test fails: what each writer did.
        let r = Report::read(&ws.join("target"));
        eprintln!(
            "writer {}: {:?}; units {:?}; warnings {:?}",
            ws.display(),
            [
                "seeded",
                "restored",
                "compiled",
                "remote_hits",
                "bytes_up",
                "captured"
            ]
            .map(|f| (f, r.summary(f))),
            r.0["units"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| format!("{} {} {}", u["crate_name"], u["outcome"], u["tier"]))
                .collect::<Vec<_>>(),
            r.warning_codes()
        );
        spans.push((started, ended));
    }
    let last_start = spans.iter().map(|(s, _)| *s).max().unwrap();
    let first_end = spans.iter().map(|(_, e)| *e).min().unwrap();
    assert!(last_start < first_end, "the writers did not run at once");
}

/// A build of the tree from an empty local store elsewhere plants every unit (six
/// compiles and the build script's run) from the remote and compiles nothing; then
/// `verify --all` there finds nothing that differs.
fn assert_reader_plants_everything(
    s: &Scratch,
    uri: &str,
    env: &[(&str, &str)],
    writer_stores: &[PathBuf],
) {
    let ws = s.checkout("basic-workspace", "reader/elsewhere/ws");
    let store = s.path("store-reader");
    let b = xcache_build(&ws, &store, &["--remote", uri], env);
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
                "{} {} seeded={} from {} key {}",
                u["crate_name"],
                u["kind"],
                u["seeded"],
                u["tier"],
                short(&u["key"])
            )
        })
        .collect();
    // Where a unit was not planted, what each store recorded for it says where its
    // seed went missing: never captured (no writer's store records it), not given to
    // the remote or not fetched from it (the writers' stores do, the reader's does
    // not), or not planted here (the reader's does: which variants, newest first, and
    // what they were built against, the units' keys above; `seed_rejected` counts
    // those planted that cargo rebuilt).
    assert_eq!(
        r.summary("seeded"),
        7,
        "{units:#?}\nseed_rejected: {}\nthe reader's seed records: {:#?}\nthe writers': {:#?}\n{}",
        r.summary("seed_rejected"),
        seed_records(&store),
        writer_stores
            .iter()
            .map(|s| (s.display().to_string(), seed_records(s)))
            .collect::<Vec<_>>(),
        b.stderr()
    );
    assert_eq!(r.summary("compiled"), 0, "{}", b.stderr());
    let v = base_command(&xcache_exe(), &ws, &store)
        .args(["xcache", "verify", "--all", "--remote", uri])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&v.stdout);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{table}\n{}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        table
            .lines()
            .last()
            .unwrap_or_default()
            .contains(" 0 differ"),
        "{table}"
    );
}

/// A store's seed records, one line each: the unit's `.fingerprint` directory, then
/// its variants newest first, each as its entry's key (short) and whether the variant's
/// pack and entry are in the store.
fn seed_records(store: &Path) -> Vec<String> {
    let held = |key: &serde_json::Value| match key.as_str() {
        Some(k) if k.len() > 2 => store
            .join(format!("v2/entries/{}/{k}.xce", &k[..2]))
            .exists(),
        _ => false,
    };
    let mut lines = Vec::new();
    for shard in std::fs::read_dir(store.join("v2/seeds"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let variants = record["variants"].as_array().cloned().unwrap_or_default();
            let dir = variants
                .first()
                .and_then(|v| v["fingerprint_dir"].as_str())
                .unwrap_or("unreadable")
                .to_string();
            let listed: Vec<String> = variants
                .iter()
                .map(|v| {
                    format!(
                        "{} (pack {}, entry {})",
                        short(&v["entry"]),
                        if held(&v["pack"]) { "held" } else { "absent" },
                        if held(&v["entry"]) { "held" } else { "absent" },
                    )
                })
                .collect();
            lines.push(format!("{dir}: {}", listed.join(", ")));
        }
    }
    lines.sort();
    lines
}

/// The first 8 digits of a key in a report or a record.
fn short(key: &serde_json::Value) -> String {
    key.as_str()
        .map_or_else(|| "none".to_string(), |k| k.chars().take(8).collect())
}

/// Entry files in a local store.
fn entries_in(store: &Path) -> usize {
    walk_count(&store.join("v2/entries"))
}

fn walk_count(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_count(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "xce"))
            }
        })
        .sum()
}

/// One build of the tree alone, from an empty local store, on `uri`: what a writer
/// costs when it is the only one (seconds).
fn one_writer(s: &Scratch, uri: &str, env: &[(&str, &str)]) -> f64 {
    let ws = s.checkout("basic-workspace", "alone/ws");
    let t = Instant::now();
    xcache_build(&ws, &s.path("store-alone"), &["--remote", uri], env).assert_success();
    t.elapsed().as_secs_f64()
}

/// One local store for every writer, `cargo xcache gc --max-size 1` on it every half
/// second while they run, and a build killed (`kill -9` of its process group) once it
/// has stored entries and before its uploads: the four builds after it (three of its
/// tree, one with an edited library) hit what it left, and must give the remote what
/// it never could. Then a build from an empty local store elsewhere plants every unit,
/// and `verify --all` finds nothing that differs. Prints what four writers cost against
/// one (`alone_uri`: another, empty remote).
fn killed_writer_and_collections_beside(uri: &str, alone_uri: &str, env: &[(&str, &str)]) {
    let s = Scratch::new();
    let env: Vec<(&str, &str)> = env.iter().copied().chain([HEALTHY_REMOTE]).collect();
    let shared = s.path("shared-store");
    let alone = one_writer(&s, alone_uri, &env);

    // The build killed once it has stored an entry or two.
    let ws = s.checkout("basic-workspace", "killed/ws");
    let mut victim = base_command(&xcache_exe(), &ws, &shared);
    victim
        .args(["xcache", "build", "--remote", uri])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut victim = victim.spawn().unwrap();
    let t = Instant::now();
    while entries_in(&shared) < 2 {
        assert!(
            victim.try_wait().unwrap().is_none(),
            "the build to kill ended first"
        );
        assert!(t.elapsed() < Duration::from_secs(60), "no entry stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pgid = rustix::process::Pid::from_child(&victim);
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    let status = victim.wait().unwrap();
    assert!(!status.success(), "the build was not killed: {status}");
    let left = entries_in(&shared);

    // Collections beside the writers, as small as a store can be asked to be.
    let stop = AtomicBool::new(false);
    let collections = AtomicUsize::new(0);
    let many = std::thread::scope(|scope| {
        let gc = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let o = base_command(&xcache_exe(), &ws, &shared)
                    .args(["xcache", "gc", "--max-size", "1"])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "gc: {o:?}");
                collections.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let t = Instant::now();
        four_writers(&s, uri, &env, |_| shared.clone());
        let many = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        gc.join().unwrap();
        many
    });
    let collections = collections.into_inner();
    assert!(
        collections >= 2,
        "{collections} collections ran beside the writers"
    );
    eprintln!(
        "one writer alone: {alone:.2} s; four at once on one local store, a killed \
         build's {left} entries in it and {collections} collections beside: {many:.2} s \
         ({:.2} x one)",
        many / alone
    );
    assert_reader_plants_everything(&s, uri, &env, &[shared]);
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

/// Four builds at once on a bucket that keeps each name once (`writes=once`): objects
/// are sent only where their name is free, the index and manifests are chains of
/// versions; a reader plants every unit.
#[test]
fn s3_keeping_each_name_once_writers_at_once_lose_nothing() {
    let server = servers::seaweedfs();
    let uri = format!(
        "s3://{S3_BUCKET}/once?endpoint=http://127.0.0.1:{}&writes=once",
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

/// `writes=once` on WebDAV (no `If-None-Match` from opendal there): one writer, then a
/// reader plants every unit from the chains and objects it wrote. (wsgidav replaces a
/// name written twice, so writers at once are not asked of it.)
#[test]
fn webdav_keeping_each_name_once_one_writer_then_a_reader_plants_everything() {
    let server = servers::wsgidav();
    let uri = format!("webdav://127.0.0.1:{}/once?writes=once", server.port);
    let s = Scratch::new();
    let env = [HEALTHY_REMOTE];
    one_writer(&s, &uri, &env);
    assert_reader_plants_everything(&s, &uri, &env, &[s.path("store-alone")]);
}

#[test]
fn redis_writers_at_once_lose_nothing() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    writers_at_once(&uri, &[]);
}

#[test]
fn s3_a_killed_writer_and_collections_beside_lose_nothing() {
    let server = servers::seaweedfs();
    let uri = |prefix: &str| {
        format!(
            "s3://{S3_BUCKET}/{prefix}?endpoint=http://127.0.0.1:{}",
            server.port
        )
    };
    killed_writer_and_collections_beside(
        &uri("many"),
        &uri("alone"),
        &[
            ("AWS_ACCESS_KEY_ID", S3_ACCESS),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
        ],
    );
}

#[test]
fn redis_a_killed_writer_and_collections_beside_lose_nothing() {
    let server = servers::redis();
    killed_writer_and_collections_beside(
        &format!("redis://127.0.0.1:{}/0", server.port),
        &format!("redis://127.0.0.1:{}/1", server.port),
        &[],
    );
}

/// GCS takes a generation precondition (opendal writes with `ifGenerationMatch`); its
/// emulator here ignores it, so what this shows is the read-back that follows.
#[test]
fn gcs_writers_at_once_lose_nothing() {
    let server = servers::fake_gcs();
    let uri = format!(
        "gcs://{GCS_BUCKET}/ci?endpoint=http://127.0.0.1:{}&anonymous=true",
        server.port
    );
    writers_at_once(&uri, &[]);
}

/// Six writers change one object at once, each slower between its read and its write
/// than the 300 ms a writer without conditional writes waits before it reads its change
/// back a second time (as over a distant link): no writer's change is lost. On the
/// services opendal writes without conditions, that takes their own compare-and-swap.
fn slow_updates_at_once_lose_nothing(uri: &str) {
    slow_updates_at_once_lose_nothing_with(uri, &xcache::config::RemoteDefaults::default());
}

fn slow_updates_at_once_lose_nothing_with(uri: &str, defaults: &xcache::config::RemoteDefaults) {
    use xcache::config::RemoteSpec;
    use xcache::store::RemoteStore;
    let spec = RemoteSpec::parse(uri, defaults).unwrap();
    let path = "tests/changed-by-six.txt";
    let started = Instant::now();
    std::thread::scope(|scope| {
        for n in 0..6 {
            let spec = &spec;
            scope.spawn(move || {
                let remote = RemoteStore::open(spec).unwrap();
                let mine = format!("writer-{n}");
                remote
                    .update_bytes(
                        path,
                        &|now| {
                            std::thread::sleep(Duration::from_millis(1000));
                            let mut text = now
                                .map(|b| String::from_utf8_lossy(b).into_owned())
                                .unwrap_or_default();
                            text.push_str(&mine);
                            text.push('\n');
                            text.into_bytes()
                        },
                        &|b| String::from_utf8_lossy(b).lines().any(|l| l == mine),
                        true,
                    )
                    .unwrap();
            });
        }
    });
    let remote = RemoteStore::open(&spec).unwrap();
    let bytes = remote
        .get_record(path)
        .unwrap()
        .expect("the object was written");
    let text = String::from_utf8(bytes).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    eprintln!(
        "six slow writers of one object on {uri}: {} s, kept {kept:?}",
        started.elapsed().as_secs_f64()
    );
    for n in 0..6 {
        assert!(
            kept.contains(&format!("writer-{n}").as_str()),
            "writer {n}'s change was lost on {uri}: the object holds {kept:?}"
        );
    }
    assert_eq!(kept.len(), 6, "each change once: {kept:?}");
    if spec.writes == xcache::config::Writes::Once {
        // Kept as a chain of versions, each written once: version n holds the n + 1
        // changes made so far, those of the version before it and one more. A version
        // written twice (the second replacing the first) would have lost a change.
        let mut before: Vec<String> = Vec::new();
        let mut n = 0;
        loop {
            let name = format!("{path}.{n}.version");
            let Some(bytes) = remote.get_bytes(&name).unwrap() else {
                break;
            };
            let lines: Vec<String> = String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            assert_eq!(lines.len(), n + 1, "version {n}: {lines:?}");
            assert_eq!(
                lines[..n],
                before[..],
                "version {n} keeps version {}",
                n.max(1) - 1
            );
            before = lines;
            n += 1;
        }
        assert_eq!(n, 6, "six writers make six versions");
    }
}

/// A container that keeps each name once (`writes=once`, as the GitHub Actions cache
/// always is): every write is made only if the name is free (`If-None-Match: *`), and
/// the changed records are chains of versions.
#[test]
fn azblob_keeping_each_name_once_slow_updates_at_once_lose_nothing() {
    let server = servers::azurite();
    let defaults = xcache::config::RemoteDefaults {
        azure_key: Some(xcache::config::Secret(servers::AZURE_KEY.into())),
        ..Default::default()
    };
    slow_updates_at_once_lose_nothing_with(
        &format!(
            "azblob://{}/once?account={}&endpoint=http://127.0.0.1:{}/{}&writes=once",
            servers::AZURE_CONTAINER,
            servers::AZURE_ACCOUNT,
            server.port,
            servers::AZURE_ACCOUNT
        ),
        &defaults,
    );
}

#[test]
fn redis_slow_updates_at_once_lose_nothing() {
    let server = servers::redis();
    slow_updates_at_once_lose_nothing(&format!("redis://127.0.0.1:{}/1", server.port));
}

#[test]
fn redis_cluster_slow_updates_at_once_lose_nothing() {
    let server = servers::redis_cluster(&[], &[]);
    let nodes: Vec<String> = server
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    slow_updates_at_once_lose_nothing(&format!("redis+cluster://{}", nodes.join(",")));
}

#[test]
fn memcached_slow_updates_at_once_lose_nothing() {
    let server = servers::memcached();
    slow_updates_at_once_lose_nothing(&format!("memcached://127.0.0.1:{}", server.port));
}

/// A local store filled by builds without the remote (or by a build killed before its
/// uploads), then a build with the remote that plants every unit from it: the remote
/// gets what planting used, the packs and the entries planted beside them, and a build
/// from an empty local store elsewhere plants every unit.
#[test]
fn what_a_build_planted_from_the_local_store_reaches_the_remote() {
    let server = servers::redis();
    let uri = format!("redis://127.0.0.1:{}/0", server.port);
    let s = Scratch::new();
    let env = [HEALTHY_REMOTE];
    let store = s.path("store");
    let first = s.checkout("basic-workspace", "first/ws");
    xcache_build(&first, &store, &[], &env).assert_success();
    let second = s.checkout("basic-workspace", "second/ws");
    let b = xcache_build(&second, &store, &["--remote", &uri], &env);
    b.assert_success();
    let r = Report::read(&second.join("target"));
    assert_eq!(r.summary("seeded"), 7, "{}", b.stderr());
    assert_reader_plants_everything(&s, &uri, &env, &[store]);
}

/// `gc --remote --older-than` on a store that keeps each name once: a record's chain of
/// versions goes whole once its newest version is old, never in part (its first
/// versions are how its newest is found); any other object goes by its own age.
#[test]
fn a_remote_collection_takes_a_chain_of_versions_whole_or_not_at_all() {
    let s = Scratch::new();
    let remote = s.path("remote");
    let old = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    let object = |name: &str, aged: bool| {
        let p = remote.join("v2").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"{}").unwrap();
        if aged {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        p
    };
    let kept_first = object("index/live.json.0.version", true);
    let kept_newest = object("index/live.json.1.version", false);
    let gone_chain = [
        object("index/dead.json.0.version", true),
        object("index/dead.json.1.version", true),
    ];
    let gone_entry = object("entries/old.xce", true);
    let kept_entry = object("entries/new.xce", false);
    let ws = s.checkout("basic-workspace", "ws");
    let uri = format!("file://{}?writes=once", remote.display());
    let out = base_command(&xcache_exe(), &ws, &s.store())
        .args([
            "xcache",
            "gc",
            "--remote",
            "--older-than",
            "1d",
            "--remote-uri",
            &uri,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in [&kept_first, &kept_newest, &kept_entry] {
        assert!(p.exists(), "{} was removed:\n{text}", p.display());
    }
    for p in gone_chain.iter().chain([&gone_entry]) {
        assert!(!p.exists(), "{} was kept:\n{text}", p.display());
    }
}
