//! The worker's action, piece by piece: the wire names, paths, failures and their
//! codes, timestamps, symlinks, leases and blobs (no server: a CAS nobody serves).

use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use prost::Message as _;

use super::failed::{Failed, missing};
use super::inputs::{Caches, cached_blob};
use super::lease::action_of;
use super::paths::{has_symlink, inside, output_paths};
use super::record::observed_record;
use super::run::{DEFAULT_TIMEOUT, action_timeout, command_outputs, run, stamp};
use super::toolchains::{DEFAULT_KEEP, InUse, Toolchains};
use crate::config::{RemoteDefaults, RemoteSpec};
use crate::errors::CacheError;
use crate::exec::wire::{
    COMPILER_PROPERTY, LINKER_PROPERTY, OBSERVED, OBSERVED_FORMAT, RUSTC_VAR, plain,
};
use crate::reapi::Reapi;

/// Runs `f` on a runtime of its own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A client of a CAS nobody serves: nothing is sent until a call is made, and the
/// tests make none that reaches it.
fn cas() -> Reapi {
    let spec = RemoteSpec::parse("grpc://127.0.0.1:1", &RemoteDefaults::default()).unwrap();
    Reapi::new(&spec, Duration::from_secs(1)).unwrap()
}

fn any(type_name: &str, value: Vec<u8>) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_wire_names_are_the_ones_clients_and_workers_agree_on() {
    // Changing one of these splits a farm: old clients and new workers no longer
    // understand each other (see `OBSERVED_FORMAT`).
    assert_eq!(OBSERVED, "xcache-observed.json");
    assert_eq!(OBSERVED_FORMAT, 2);
    assert_eq!(COMPILER_PROPERTY, "xcache-compiler");
    assert_eq!(LINKER_PROPERTY, "xcache-linker");
    assert_eq!(RUSTC_VAR, "XCACHE_RUSTC");
    // A client asks for the record as an output, which must pass the output check.
    assert!(plain(OBSERVED));
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(900));
}

#[test]
fn plain_paths_are_relative_paths_of_plain_names() {
    for p in [
        "a",
        "a.rs",
        "target/debug/deps/liba.rlib",
        "..a/b..",
        ".hidden/x",
    ] {
        assert!(plain(p), "{p}");
    }
}

#[test]
fn empty_absolute_dotted_and_odd_paths_are_not_plain() {
    for p in [
        "",
        "/etc/passwd",
        "a//b",
        "a/",
        "./a",
        "a/.",
        "..",
        "../a",
        "a/../b",
        "a\\b",
        "a\0b",
    ] {
        assert!(!plain(p), "{p:?}");
    }
}

#[test]
fn outputs_are_the_output_paths_when_the_command_names_any() {
    #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
    let command = re::Command {
        output_paths: strings(&["out/a.rlib", "xcache-observed.json"]),
        output_files: strings(&["old.rlib"]),
        ..Default::default()
    };
    assert_eq!(
        output_paths(&command).unwrap(),
        ["out/a.rlib", "xcache-observed.json"]
    );
}

#[test]
fn outputs_fall_back_to_the_output_files_of_older_clients() {
    #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
    let command = re::Command {
        output_files: strings(&["old.rlib", "old.d"]),
        ..Default::default()
    };
    assert_eq!(output_paths(&command).unwrap(), ["old.rlib", "old.d"]);
    assert!(output_paths(&re::Command::default()).unwrap().is_empty());
}

#[test]
fn an_output_that_leaves_the_working_directory_makes_the_action_invalid() {
    for bad in ["../escape", "/abs/out", "a//b"] {
        let command = re::Command {
            output_paths: strings(&["good.rlib", bad]),
            ..Default::default()
        };
        let e = output_paths(&command).unwrap_err();
        assert_eq!(e.code, 3, "{bad}");
        assert!(e.message.contains(&format!("`{bad}`")), "{}", e.message);
    }
    #[expect(deprecated, reason = "REAPI before 2.1 names outputs here")]
    let old = re::Command {
        output_files: strings(&["../old"]),
        ..Default::default()
    };
    assert_eq!(output_paths(&old).unwrap_err().code, 3);
}

#[test]
fn inside_joins_a_plain_path_below_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        inside(dir.path(), "a/b/c.rs", "output path").unwrap(),
        dir.path().join("a/b/c.rs")
    );
}

#[test]
fn inside_refuses_a_path_that_leaves_or_passes_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/", dir.path().join("up")).unwrap();
    for bad in ["../x", "/x", "", "up/etc/passwd"] {
        let e = inside(dir.path(), bad, "working directory").unwrap_err();
        assert_eq!(e.code, 3, "{bad}");
        assert!(
            e.message.starts_with(&format!(
                "the working directory `{bad}` leaves its directory"
            )),
            "{}",
            e.message
        );
    }
}

#[test]
fn each_kind_of_failure_carries_its_rpc_code() {
    assert_eq!(Failed::precondition("p".into()).code, 9);
    assert_eq!(Failed::invalid("i".into()).code, 3);
    assert_eq!(Failed::internal("n".into()).code, 13);
    let e = CacheError::RemoteConfig("down".into());
    let text = e.to_string();
    let f = Failed::from(e);
    // UNAVAILABLE: the server gives the lease to another worker.
    assert_eq!((f.code, f.message), (14, text));
}

#[test]
fn a_blob_missing_from_the_cas_is_a_failed_precondition_naming_it() {
    let d = re::Digest {
        hash: "ab".repeat(32),
        size_bytes: 7,
    };
    let f = missing(&d, "Command");
    assert_eq!(f.code, 9);
    assert_eq!(
        f.message,
        format!(
            "the Command blob {}/7 is missing from the CAS",
            "ab".repeat(32)
        )
    );
}

#[test]
fn a_timestamp_keeps_seconds_and_nanoseconds_and_clamps_before_the_epoch() {
    let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
    assert_eq!(
        stamp(t),
        Timestamp {
            seconds: 1_700_000_000,
            nanos: 250_000_000
        }
    );
    let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
    assert_eq!(
        stamp(before),
        Timestamp {
            seconds: 0,
            nanos: 0
        }
    );
}

#[test]
fn a_tree_of_files_and_directories_has_no_symlink() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
    std::fs::write(dir.path().join("a/b/c/f"), "").unwrap();
    std::fs::write(dir.path().join("top"), "").unwrap();
    assert!(!has_symlink(dir.path()));
}

#[test]
fn a_symlink_deep_in_a_tree_or_an_unreadable_tree_counts_as_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
    std::os::unix::fs::symlink("missing", dir.path().join("a/b/c/l")).unwrap();
    assert!(has_symlink(dir.path()));
    assert!(has_symlink(&dir.path().join("not-there")));
}

#[test]
fn a_run_without_an_observer_has_no_record() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(observed_record(None, 1, dir.path(), dir.path(), None), None);
}

#[test]
fn a_lease_without_a_payload_is_invalid() {
    let e = block_on(async { action_of(&cas(), None).await }).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (3, "the lease has no payload")
    );
}

#[test]
fn a_lease_holding_an_action_is_decoded_without_the_cas() {
    let action = re::Action {
        command_digest: Some(re::Digest {
            hash: "cd".repeat(32),
            size_bytes: 12,
        }),
        do_not_cache: true,
        ..Default::default()
    };
    let payload = any(
        "build.bazel.remote.execution.v2.Action",
        action.encode_to_vec(),
    );
    let got = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap();
    assert_eq!(got, action);
}

#[test]
fn a_lease_whose_action_or_digest_does_not_decode_is_invalid() {
    for (type_name, what) in [
        ("build.bazel.remote.execution.v2.Action", "Action"),
        ("build.bazel.remote.execution.v2.Digest", "Digest"),
    ] {
        // A string field whose length runs past the end.
        let payload = any(type_name, vec![0x0a, 0x05, b'a']);
        let e = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(
            e.message
                .starts_with(&format!("the lease's {what} does not decode")),
            "{}",
            e.message
        );
    }
}

#[test]
fn a_lease_holding_anything_else_is_refused_by_its_type() {
    let payload = any("google.protobuf.Empty", Vec::new());
    let e = block_on(async { action_of(&cas(), Some(&payload)).await }).unwrap_err();
    assert_eq!(e.code, 3);
    assert_eq!(
        e.message,
        "the lease's payload is a type.googleapis.com/google.protobuf.Empty, not an Action"
    );
}

#[test]
fn an_action_without_a_command_fails_before_anything_is_fetched_or_made() {
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let caches = Caches {
        blobs: dir.path().join("blobs"),
        toolchains: Toolchains::new(dir.path().join("toolchains"), 1),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let action = re::Action {
        input_root_digest: Some(re::Digest::default()),
        ..Default::default()
    };
    let e = block_on(async { run(&cas(), &action, work.path(), &caches, "w", None, &rx).await })
        .err()
        .unwrap();
    assert_eq!(
        (e.code, e.message.as_str()),
        (3, "the Action names no command")
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn a_blob_not_named_by_a_sha256_digest_is_refused_before_it_is_fetched() {
    let blobs = tempfile::tempdir().unwrap();
    for hash in [
        "../../etc/passwd".to_string(),
        "ab".repeat(31),
        "zz".repeat(32),
        "ab".repeat(33),
    ] {
        let d = re::Digest {
            hash: hash.clone(),
            size_bytes: 1,
        };
        let e = block_on(async { cached_blob(&cas(), &d, blobs.path()).await }).unwrap_err();
        assert_eq!(e.code, 3, "{hash}");
        assert_eq!(e.message, format!("`{hash}` is not a SHA-256 digest"));
    }
    assert_eq!(std::fs::read_dir(blobs.path()).unwrap().count(), 0);
}

#[test]
fn an_action_timeout_keeps_its_part_of_a_second_and_none_or_zero_is_the_default() {
    let with = |seconds, nanos| re::Action {
        timeout: Some(bazel_remote_apis::google::protobuf::Duration { seconds, nanos }),
        ..Default::default()
    };
    assert_eq!(
        action_timeout(&with(0, 300_000_000)),
        Duration::from_millis(300)
    );
    assert_eq!(
        action_timeout(&with(2, 500_000_000)),
        Duration::from_millis(2500)
    );
    assert_eq!(action_timeout(&with(0, 0)), DEFAULT_TIMEOUT);
    assert_eq!(action_timeout(&with(-5, -1)), DEFAULT_TIMEOUT);
    assert_eq!(action_timeout(&re::Action::default()), DEFAULT_TIMEOUT);
}

#[test]
fn a_command_without_arguments_is_invalid_before_its_outputs_are_looked_at() {
    let command = re::Command {
        output_paths: strings(&["../out"]),
        ..Default::default()
    };
    let e = command_outputs(&command).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (3, "the Command has no arguments")
    );
    let command = re::Command {
        arguments: strings(&["rustc"]),
        output_paths: strings(&["out/lib.rlib"]),
        ..Default::default()
    };
    assert_eq!(
        command_outputs(&command).unwrap(),
        strings(&["out/lib.rlib"])
    );
}

/// A toolchain's name as the worker names its digest: `n` repeated, and a size.
fn toolchain_name(n: char) -> String {
    format!("{}-{}", n.to_string().repeat(64), 100 + n as u32)
}

/// Makes the synthetic toolchain `n` (a `bin/rustc` that says which it is) in `toolchains`
/// through the worker's own making, or holds it when it is there; whether it was made.
fn use_toolchain(toolchains: &Toolchains, n: char) -> (InUse, bool) {
    let mut made = false;
    let held = block_on(toolchains.ready(&toolchain_name(n), |tree| {
        made = true;
        async move {
            std::fs::create_dir_all(tree.join("bin")).unwrap();
            std::fs::write(tree.join("bin/rustc"), format!("#!/bin/sh\necho {n}\n")).unwrap();
            Ok(())
        }
    }))
    .unwrap();
    (held, made)
}

/// The toolchains there are under `dir`, by letter.
fn toolchains_in(dir: &std::path::Path) -> String {
    let mut names: Vec<char> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| n.chars().next().unwrap())
        .collect();
    names.sort();
    names.into_iter().collect()
}

#[test]
fn a_toolchain_is_made_once_read_only_under_its_name_and_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let toolchains = Toolchains::new(dir.path().to_path_buf(), DEFAULT_KEEP);
    let (held, made) = use_toolchain(&toolchains, 'a');
    assert!(made);
    assert_eq!(held.path, dir.path().join(toolchain_name('a')));
    assert_eq!(
        std::fs::read_to_string(held.path.join("bin/rustc")).unwrap(),
        "#!/bin/sh\necho a\n"
    );
    // Read only (by its modes: root, as tests may run, writes through them).
    for p in ["", "bin", "bin/rustc"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(held.path.join(p)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o222, 0, "{p}: {mode:o}");
    }
    drop(held);
    let (held, made) = use_toolchain(&toolchains, 'a');
    assert!(!made, "made once");
    assert!(held.path.join("bin/rustc").is_file());
    // Nothing of its making is left beside it.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let a = toolchain_name('a');
    assert_eq!(left, [".lock".to_string(), a.clone(), format!("{a}.used")]);
}

#[test]
fn beyond_the_bound_the_least_recently_used_toolchains_go_but_never_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let toolchains = Toolchains::new(dir.path().to_path_buf(), 1);
    // Used in turn: the older one goes once the newer is made.
    drop(use_toolchain(&toolchains, 'a'));
    assert_eq!(toolchains_in(dir.path()), "a");
    drop(use_toolchain(&toolchains, 'b'));
    assert_eq!(toolchains_in(dir.path()), "b");
    assert!(
        !dir.path()
            .join(format!("{}.used", toolchain_name('a')))
            .exists()
    );
    // One an action runs with stays, over the bound, until a collection finds it free.
    let (in_use, _) = use_toolchain(&toolchains, 'b');
    drop(use_toolchain(&toolchains, 'c'));
    assert_eq!(toolchains_in(dir.path()), "bc");
    assert!(in_use.path.join("bin/rustc").is_file());
    drop(in_use);
    drop(use_toolchain(&toolchains, 'd'));
    assert_eq!(toolchains_in(dir.path()), "d");

    // Least recently used, not least recently made: `e` made first, used again last.
    let toolchains = Toolchains::new(dir.path().to_path_buf(), 2);
    drop(use_toolchain(&toolchains, 'e'));
    std::thread::sleep(Duration::from_millis(20));
    drop(use_toolchain(&toolchains, 'd'));
    std::thread::sleep(Duration::from_millis(20));
    let (_, made) = use_toolchain(&toolchains, 'e');
    assert!(!made);
    std::thread::sleep(Duration::from_millis(20));
    drop(use_toolchain(&toolchains, 'f'));
    assert_eq!(toolchains_in(dir.path()), "ef");
}

#[test]
fn a_collection_leaves_a_toolchain_another_process_holds() {
    // The lock is a `flock` on the toolchain's `.used` file: another open of it (as
    // another worker's) holding it shared keeps the toolchain.
    let dir = tempfile::tempdir().unwrap();
    let toolchains = Toolchains::new(dir.path().to_path_buf(), 1);
    drop(use_toolchain(&toolchains, 'a'));
    let other =
        std::fs::File::open(dir.path().join(format!("{}.used", toolchain_name('a')))).unwrap();
    other.lock_shared().unwrap();
    drop(use_toolchain(&toolchains, 'b'));
    assert_eq!(toolchains_in(dir.path()), "ab");
    drop(other);
    toolchains.collect();
    assert_eq!(toolchains_in(dir.path()), "b");
}

#[test]
fn scratch_a_killed_worker_left_is_swept_and_scratch_a_live_one_holds_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let toolchains = Toolchains::new(dir.path().to_path_buf(), 1);
    // A toolchain is not scratch, whatever its state.
    drop(use_toolchain(&toolchains, 'a'));
    // Left by a worker killed while making: read only, as a tree about to be renamed.
    let dead = dir.path().join(".making-dead");
    std::fs::create_dir_all(dead.join("t/bin")).unwrap();
    std::fs::write(dead.join("t/bin/rustc"), "x").unwrap();
    std::fs::set_permissions(
        dead.join("t/bin/rustc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    for d in ["t/bin", "t", ""] {
        std::fs::set_permissions(
            dead.join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
    }
    // Held by a live maker.
    let live = dir.path().join(".making-live");
    std::fs::create_dir_all(live.join("t")).unwrap();
    let held = std::fs::File::open(&live).unwrap();
    held.try_lock().unwrap();
    toolchains.sweep();
    assert!(!dead.exists());
    assert!(live.join("t").is_dir());
    assert_eq!(toolchains_in(dir.path()), "a");
    drop(held);
    // Before making a toolchain, too.
    drop(use_toolchain(&toolchains, 'b'));
    assert!(!live.exists());
}
