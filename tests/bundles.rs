//! Bundles: a warm build fetches what it needs in a few large pieces instead of one
//! request per object, and a damaged or hostile piece (truncated, a member that is not
//! what the index says, a member table outside the piece) is detected, not used, and
//! the build is still right. An index written before bundles still works.
//!
//! S3 (SeaweedFS, a real server) for the request pattern; a shared folder for damage,
//! since its objects are plain files a test can change.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::basic::{CACHEABLE, EXPECTED_OUTPUT};
use crate::common::servers::{self, S3_ACCESS, S3_BUCKET, S3_SECRET};
use crate::common::{HEALTHY_REMOTE, Report, Scratch, xcache_build};
use serde_json::Value;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A build of a fresh checkout at `rel` with its own empty local store: right output.
fn build(s: &Scratch, rel: &str, uri: &str, env: &[(&str, &str)]) -> (String, Report) {
    let ws = s.checkout("basic-workspace", rel);
    let env: Vec<(&str, &str)> = env.iter().copied().chain([HEALTHY_REMOTE]).collect();
    let b = xcache_build(
        &ws,
        &s.path(&format!("{rel}-store")),
        &["--remote", uri],
        &env,
    );
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    (b.stderr(), Report::read(&ws.join("target")))
}

/// What a warm build elsewhere must restore whatever happened to the bundles: every
/// unit, each planted before cargo started or restored by the wrapper.
fn assert_all_restored(r: &Report) {
    assert_eq!(
        r.with_outcome("hit"),
        names(CACHEABLE),
        "{}",
        r.0["summary"]
    );
    assert_eq!(r.summary("prefetched"), 6, "{}", r.0["summary"]);
    // Six units and the build script's run.
    assert_eq!(
        r.summary("seeded") + r.summary("restored"),
        7,
        "{}",
        r.0["summary"]
    );
}

/// [`assert_all_restored`], every unit planted before cargo started.
fn assert_all_seeded(r: &Report) {
    assert_all_restored(r);
    assert_eq!(r.summary("seeded"), 7, "{}", r.0["summary"]);
}

#[test]
fn a_warm_build_elsewhere_fetches_bundles_in_a_few_requests() {
    let _server = servers::seaweedfs();
    let uri = format!(
        "s3://{S3_BUCKET}/bundles?endpoint=http://127.0.0.1:{}",
        _server.port
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", S3_ACCESS),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ];
    let s = Scratch::new();
    let (stderr, cold) = build(&s, "cold", &uri, &env);
    // The cold build stored every object alone and, after cargo, as one bundle.
    assert_eq!(cold.summary("pieces_up"), 1, "{stderr}\n{}", cold.0);
    assert_eq!(cold.summary("prefetch_pieces"), 0);

    let (_, warm) = build(&s, "elsewhere/warm", &uri, &env);
    assert_all_seeded(&warm);
    assert_eq!(warm.warning_codes(), Vec::<String>::new());
    // Entries and seed packs came out of one piece: the check, the index and the
    // piece are all the requests the prefetch made.
    assert_eq!(warm.summary("prefetch_pieces"), 1, "{}", warm.0["summary"]);
    assert!(
        warm.summary("prefetch_bundled") >= 8,
        "{}",
        warm.0["summary"]
    );
    assert_eq!(
        warm.summary("prefetch_requests"),
        3,
        "{}",
        warm.0["summary"]
    );
    // Nothing new to bundle: the index is left as it was.
    assert_eq!(warm.summary("pieces_up"), 0);
}

/// A shared folder filled by a cold build; the index and the bundle's one piece.
struct Filled {
    s: Scratch,
    uri: String,
    index: PathBuf,
    piece: PathBuf,
}

fn filled() -> Filled {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    let uri = format!("file://{}", folder.display());
    let (_, cold) = build(&s, "cold", &uri, &[]);
    assert_eq!(cold.summary("pieces_up"), 1, "{}", cold.0["summary"]);
    let only = |dir: &Path| {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    };
    // The store layout's version (`v2/`...) is whatever the one folder is.
    let layout = only(&folder);
    let index = only(&layout.join("index"));
    let piece = only(&layout.join("bundles"));
    Filled {
        s,
        uri,
        index,
        piece,
    }
}

fn edit_index(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn a_truncated_piece_delivers_what_it_holds_and_the_rest_comes_alone() {
    let f = filled();
    let bytes = std::fs::read(&f.piece).unwrap();
    std::fs::write(&f.piece, &bytes[..bytes.len() / 2]).unwrap();
    let (_, r) = build(&f.s, "elsewhere/warm", &f.uri, &[]);
    assert_all_restored(&r);
    assert_eq!(r.summary("prefetch_pieces"), 1);
    // The objects in the piece's first half came out of it; each one the piece did not
    // deliver was asked for alone (whole, the piece delivers them all: 3 requests).
    assert!(r.summary("prefetch_bundled") >= 1, "{}", r.0["summary"]);
    assert!(r.summary("prefetch_requests") > 3, "{}", r.0["summary"]);
}

#[test]
fn a_member_that_is_not_what_the_index_says_is_not_used() {
    let f = filled();
    // The first two members trade names: each one's bytes are another entry's.
    edit_index(&f.index, |v| {
        let m = v["bundles"][0]["members"].as_array_mut().unwrap();
        let (a, b) = (m[0]["key"].clone(), m[1]["key"].clone());
        m[0]["key"] = b;
        m[1]["key"] = a;
    });
    let (stderr, r) = build(&f.s, "elsewhere/warm", &f.uri, &[]);
    assert_all_restored(&r);
    assert_eq!(r.warning_codes(), ["remote-entry-damaged"], "{stderr}");
    assert!(stderr.contains("bundle piece"), "{stderr}");
    // The damaged piece is gone from the index (and a good one took its place): the
    // next build is clean.
    let (_, r) = build(&f.s, "third/warm", &f.uri, &[]);
    assert_all_seeded(&r);
    assert_eq!(r.warning_codes(), Vec::<String>::new());
    assert_eq!(r.summary("prefetch_pieces"), 1, "{}", r.0["summary"]);
}

#[test]
fn a_member_table_outside_the_piece_makes_it_unused() {
    let f = filled();
    let size = std::fs::metadata(&f.piece).unwrap().len();
    edit_index(&f.index, |v| {
        let m = v["bundles"][0]["members"].as_array_mut().unwrap();
        let last = m.len() - 1;
        m[last]["len"] = Value::from(size + 1);
    });
    let (_, r) = build(&f.s, "elsewhere/warm", &f.uri, &[]);
    assert_all_restored(&r);
    assert_eq!(r.summary("prefetch_pieces"), 0, "{}", r.0["summary"]);
    assert_eq!(r.summary("prefetch_bundled"), 0);
}

#[test]
fn an_index_written_before_bundles_still_works() {
    let f = filled();
    edit_index(&f.index, |v| {
        v.as_object_mut().unwrap().remove("bundles");
    });
    let (_, r) = build(&f.s, "elsewhere/warm", &f.uri, &[]);
    assert_all_seeded(&r);
    assert_eq!(r.summary("prefetch_pieces"), 0, "{}", r.0["summary"]);
    // Every object came alone. What the next build needs (the seven seed packs: every
    // unit was planted) is fewer than a piece is written for, so none is.
    assert!(
        r.summary("prefetch_requests") >= 2 + 8,
        "{}",
        r.0["summary"]
    );
    assert_eq!(r.summary("pieces_up"), 0, "{}", r.0["summary"]);
}

/// A cold build then a warm build elsewhere of `fixture` through a shared folder:
/// the warm build's report.
fn warm_from_folder(fixture: &str) -> Report {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    let uri = format!("file://{}", folder.display());
    for rel in ["cold", "elsewhere/warm"] {
        let ws = s.path(rel);
        common::copy_fixture(fixture, &ws.join(fixture));
        if fixture == "chef" {
            // Its path dependency lies outside the workspace.
            common::copy_fixture("chef-outside", &ws.join("chef-outside"));
        }
        // A checkout made before the build (see `common::age`).
        common::age(&ws, 60);
        let ws = ws.join(fixture);
        let b = xcache_build(
            &ws,
            &s.path(&format!("{rel}-store")),
            &["--remote", &uri],
            &[HEALTHY_REMOTE],
        );
        b.assert_success();
        if rel != "cold" {
            return Report::read(&ws.join("target"));
        }
    }
    unreachable!()
}

#[test]
fn the_requests_of_a_warm_build_do_not_grow_with_the_tree() {
    let small = warm_from_folder("basic-workspace");
    let large = warm_from_folder("chef");
    assert!(
        large.summary("units") > small.summary("units"),
        "{} vs {}",
        large.0["summary"],
        small.0["summary"]
    );
    assert!(large.summary("prefetch_bundled") > small.summary("prefetch_bundled"));
    for r in [&small, &large] {
        // The check, the index and one piece: however many objects came out of it.
        assert_eq!(r.summary("prefetch_pieces"), 1, "{}", r.0["summary"]);
        assert_eq!(r.summary("prefetch_requests"), 3, "{}", r.0["summary"]);
    }
}

/// The prefetch requests the pieces of each unit's newest variant before it has judged
/// the index. When the newest does not fit this checkout (another checkout edited a
/// member since), that download is wasted and counted, the variant that fits follows
/// once judging is done, and the build is the one plain cargo makes.
#[test]
fn a_newest_variant_that_does_not_fit_costs_bytes_not_a_wrong_build() {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    // Bundled uploads: the edited build's few objects travel in a piece too.
    let uri = format!("file://{}?uploads=bundles", folder.display());
    build(&s, "cold", &uri, &[]);
    // An edit that changes what the program prints: using its variants here would
    // show.
    let ws = s.checkout("basic-workspace", "edited");
    let mid = ws.join("mid/src/lib.rs");
    let text = std::fs::read_to_string(&mid).unwrap();
    assert!(text.contains("\"answer={} "), "{text}");
    std::fs::write(&mid, text.replace("\"answer={} ", "\"answer:{} ")).unwrap();
    let b = xcache_build(
        &ws,
        &s.path("edited-store"),
        &["--remote", &uri],
        &[HEALTHY_REMOTE],
    );
    b.assert_success();
    assert_eq!(b.run("app"), EXPECTED_OUTPUT.replace("answer=", "answer:"));
    let edited = Report::read(&ws.join("target"));
    assert_eq!(edited.summary("pieces_up"), 1, "{}", edited.0["summary"]);

    // Unedited again, elsewhere: the edited variants are the newest.
    let (_, r) = build(&s, "elsewhere/warm", &uri, &[]);
    assert_eq!(
        r.with_outcome("hit"),
        names(CACHEABLE),
        "{}",
        r.0["summary"]
    );
    assert_eq!(r.warning_codes(), Vec::<String>::new());
    // Six units and the build script's run, before cargo or by their wrappers (`app`'s
    // newest seed variant names the edited `mid` it linked, which is not the `mid`
    // planted: planting takes `app` out again and its wrapper restores it).
    assert_eq!(
        r.summary("seeded") + r.summary("restored"),
        7,
        "{}",
        r.0["summary"]
    );
    // The edited variants of `mid` and `app` came down for nothing.
    assert!(r.summary("prefetch_unused") >= 1, "{}", r.0["summary"]);
}

/// A piece the index lists but the remote no longer holds (collected by
/// `gc --remote`, say) costs its objects' requests once: the build is right, and its
/// writer drops the piece from the index, so the next build does not ask for it again.
#[test]
fn a_piece_gone_from_the_remote_is_dropped_from_the_index() {
    let f = filled();
    let gone: Value = serde_json::from_slice(&std::fs::read(&f.index).unwrap()).unwrap();
    let gone = gone["bundles"][0]["key"].as_str().unwrap().to_string();
    std::fs::remove_file(&f.piece).unwrap();
    let (_, r) = build(&f.s, "elsewhere/warm", &f.uri, &[]);
    assert_all_restored(&r);
    assert_eq!(r.summary("prefetch_pieces"), 0, "{}", r.0["summary"]);
    let index: Value = serde_json::from_slice(&std::fs::read(&f.index).unwrap()).unwrap();
    let listed: Vec<&str> = index["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&gone.as_str()), "{listed:?}");
}

/// With bundled uploads, pieces are all the remote holds: when one is gone, the build
/// that finds it so compiles what it held (and prints what plain cargo's prints), stores
/// it as a new piece in place of the old one, and the next build elsewhere plants
/// everything again.
#[test]
fn bundled_uploads_heal_a_piece_gone_from_the_remote() {
    let s = Scratch::new();
    let folder = s.path("shared");
    std::fs::create_dir_all(&folder).unwrap();
    let uri = format!("file://{}?uploads=bundles", folder.display());
    let (_, cold) = build(&s, "cold", &uri, &[]);
    assert_eq!(cold.summary("pieces_up"), 1, "{}", cold.0["summary"]);
    let layout = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for piece in std::fs::read_dir(layout.join("bundles")).unwrap() {
        std::fs::remove_file(piece.unwrap().path()).unwrap();
    }
    let (_, healing) = build(&s, "healing", &uri, &[]);
    assert!(healing.summary("misses") > 0, "{}", healing.0["summary"]);
    assert_eq!(healing.summary("pieces_up"), 1, "{}", healing.0["summary"]);
    let (_, r) = build(&s, "elsewhere/warm", &uri, &[]);
    assert_all_seeded(&r);
    assert_eq!(r.warning_codes(), Vec::<String>::new());
}

/// A store filled without a remote holds libraries' entries thin (each `.rlib` by
/// reference to a loose object of that store). A later build with a remote uploads
/// what it used whole: a build elsewhere, with nothing but the remote, restores every
/// library and runs the same program. (Bundled uploads send what a build used from its
/// local store; uploads of objects send only what it stored.)
#[test]
fn entries_stored_without_a_remote_leave_the_machine_whole() {
    for uploads in ["bundles"] {
        let s = Scratch::new();
        let folder = s.path("shared");
        std::fs::create_dir_all(&folder).unwrap();
        let uri = format!("file://{}?uploads={uploads}", folder.display());
        let store = s.path("local-store");
        let ws = s.checkout("basic-workspace", "first");
        xcache_build(&ws, &store, &[], &[]).assert_success();
        let ws = s.checkout("basic-workspace", "second");
        // Restored by the wrappers (no seeding), so each unit is a hit the build used.
        let b = xcache_build(
            &ws,
            &store,
            &["--remote", &uri],
            &[HEALTHY_REMOTE, ("XCACHE_SEED", "0")],
        );
        b.assert_success();
        assert_eq!(b.run("app"), EXPECTED_OUTPUT);
        let (_, r) = build(&s, "elsewhere", &uri, &[]);
        // The libraries, whose entries were thin, arrive whole. (The generated crate's
        // build-script run is not among what a build sends from its local store.)
        let hits = r.with_outcome("hit");
        for lib in ["util:lib", "mid:lib", "app:bin"] {
            assert!(
                hits.contains(&lib.to_string()),
                "uploads={uploads}: {lib}: {}",
                r.0["summary"]
            );
        }
        assert!(
            r.warning_codes().is_empty(),
            "uploads={uploads}: {:?}",
            r.warning_codes()
        );
    }
}
