//! A store directory is hostile input (CI caches of it are restored across branches):
//! nothing in it may decide what runs. The observer library that is loaded into every
//! compile and build-script run, and the memos of what a compiler, a linker or cargo is,
//! live in a directory only this user writes (`src/private_dir.rs`). Here a writer of the
//! store plants a library of the same name and size, and memos, and the next build must
//! neither run the planted code nor build a different program.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Scratch, basic, xcache_build};

fn files_named(dir: &Path, pred: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_named(&p, pred, out);
        } else if pred(&e.file_name().to_string_lossy()) {
            out.push(p);
        }
    }
}

/// Every place the observer library may be kept on this machine: the store, and the
/// private directories this user's builds use.
fn observer_libraries(store: &Path) -> Vec<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let mut roots = vec![
        store.to_path_buf(),
        std::env::temp_dir().join(format!("xcache-{uid}")),
    ];
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        roots.push(PathBuf::from(run).join("xcache"));
    }
    let mut out = Vec::new();
    for r in roots {
        files_named(
            &r,
            &|n| n.starts_with("observe-") && n.ends_with(".so"),
            &mut out,
        );
    }
    out
}

#[test]
fn a_library_planted_in_the_store_never_runs() {
    let s = Scratch::new();
    let store = s.store();
    let ws1 = s.checkout("basic-workspace", "ws1");
    let b = xcache_build(&ws1, &store, &[], &[]);
    b.assert_success();

    // A library whose constructor leaves a mark, padded to the size of the real one and
    // put under the real one's name in the store's layout directory.
    let marker = s.path("planted-code-ran");
    let src = s.path("evil.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void evil(void) {{\n\
             FILE *f = fopen(\"{}\", \"a\"); if (f) {{ fputs(\"ran\\n\", f); fclose(f); }} }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let evil = s.path("evil.so");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&evil)
        .arg(&src)
        .status()
        .unwrap();
    assert!(cc.success());
    let libs = observer_libraries(&store);
    assert!(!libs.is_empty(), "the first build kept no observer library");
    let layout = store.join("v2");
    for real in &libs {
        let mut bytes = std::fs::read(&evil).unwrap();
        let size = std::fs::metadata(real).unwrap().len() as usize;
        assert!(bytes.len() <= size);
        bytes.resize(size, 0);
        std::fs::write(layout.join(real.file_name().unwrap()), &bytes).unwrap();
    }
    // Memos naming every compiler the root of the file system, which would make every
    // read look like the compiler's own.
    for sub in ["compilers", "linkers"] {
        let d = layout.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("planted"), "0000\n/\n\nrustc 0.0.0\n").unwrap();
    }
    // Everything compiles again, observed.
    std::fs::remove_dir_all(layout.join("entries")).unwrap();
    std::fs::remove_dir_all(layout.join("manifests")).unwrap();
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &store, &[], &[]);
    b.assert_success();
    assert!(
        !marker.exists(),
        "code planted in the store ran inside the build: {:?}",
        std::fs::read_to_string(&marker)
    );
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
}

#[test]
fn the_store_holds_nothing_that_runs_or_says_what_a_compiler_is() {
    let s = Scratch::new();
    let store = s.store();
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &store, &[], &[]).assert_success();
    let mut found = Vec::new();
    files_named(&store, &|n| n.ends_with(".so"), &mut found);
    assert!(found.is_empty(), "executable code in the store: {found:?}");
    for sub in ["compilers", "linkers"] {
        assert!(
            !store.join("v2").join(sub).exists(),
            "{sub} memos in the store"
        );
    }
}

/// The store's own bookkeeping files (its locks, the size ledger and count, the builds
/// log, a unit's records) are never written through a link a writer of the store
/// planted at their names, and a FIFO planted there never holds a build up.
#[test]
fn links_and_fifos_planted_at_the_stores_own_files_are_not_followed() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "a/ws");
    xcache_build(&ws, &s.store(), &[], &[("CARGO_INCREMENTAL", "0")]).assert_success();
    let v2 = s.store().join("v2");
    let outside = s.path("users-file");
    std::fs::write(&outside, b"the user's own\n").unwrap();
    for name in ["lock", "gc.lock", "gc.added", "history/builds.jsonl"] {
        let p = v2.join(name);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&outside, &p).unwrap();
    }
    let _ = std::fs::remove_file(v2.join("gc.counted"));
    assert!(
        Command::new("mkfifo")
            .arg(v2.join("gc.counted"))
            .status()
            .unwrap()
            .success()
    );
    // A build that compiles (so it counts the store or adds to the ledger) and logs.
    let other = s.checkout("basic-workspace", "b/ws");
    let b = xcache_build(
        &other,
        &s.store(),
        &["--release"],
        &[("CARGO_INCREMENTAL", "0")],
    );
    b.assert_success();
    assert_eq!(b.run("app"), basic::EXPECTED_OUTPUT);
    assert_eq!(std::fs::read(&outside).unwrap(), b"the user's own\n");
}

/// FIFOs planted where a store keeps its entries, manifests, seed records and object lists
/// never hold a build up: the build compiles what it cannot read, and is right.
#[test]
fn fifos_planted_at_a_stores_entries_and_records_never_hold_a_build_up() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "a/ws");
    let env = [("CARGO_INCREMENTAL", "0")];
    xcache_build(&ws, &s.store(), &[], &env).assert_success();
    let mut planted = Vec::new();
    files_named(&s.store(), &|_| true, &mut planted);
    let planted: Vec<PathBuf> = planted
        .into_iter()
        .filter(|p| {
            let rel = p
                .strip_prefix(s.store())
                .unwrap()
                .to_string_lossy()
                .to_string();
            ["entries/", "manifests/", "seeds/", "objects/"]
                .iter()
                .any(|d| rel.contains(d))
        })
        .collect();
    assert!(planted.len() > 10, "{planted:?}");
    for p in &planted {
        std::fs::remove_file(p).unwrap();
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    }
    // In a thread: a build held up by a FIFO would never return.
    let (tx, rx) = std::sync::mpsc::channel();
    let (other, store) = (s.checkout("basic-workspace", "b/ws"), s.store());
    std::thread::spawn(move || {
        let b = xcache_build(&other, &store, &[], &[("CARGO_INCREMENTAL", "0")]);
        let ok = b.output.status.success();
        let _ = tx.send((ok, if ok { b.run("app") } else { b.stderr() }));
    });
    let (ok, out) = rx
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("the build was held up by a FIFO in the store");
    assert!(ok, "{out}");
    assert_eq!(out, basic::EXPECTED_OUTPUT);
}
