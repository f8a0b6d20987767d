//! Tests of collections: eviction order, leases and grace, objects, and the ledger.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::ledger::{ADDED, COUNTED};
use super::*;
use crate::key::Key;
use crate::store::LocalStore;
use crate::store::{EntryFile, EntryMeta, EntrySource};

fn put(store: &LocalStore, i: u32, len: usize, age: Duration) -> PathBuf {
    let key = Key::digest(&i.to_le_bytes());
    let meta = EntryMeta::for_test(&key, &[("rlib", "f", false)]);
    // Incompressible, so the entry's size is about `len`.
    let mut bytes = vec![0u8; len];
    blake3::Hasher::new()
        .update(&i.to_le_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    store
        .put_entry(&key, &meta, &[(EntrySource::Bytes(&bytes), false)], &[])
        .unwrap();
    let path = store.entry_path(&key);
    set_age(&path, age);
    path
}

/// A store at `dir` with no size of its own (each test passes the size it collects to).
use crate::store::local::unbounded_store;

fn set_age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

#[test]
fn evicts_least_recently_used_and_spares_recent_and_leased() {
    let dir = tempfile::tempdir().unwrap();
    let store = unbounded_store(dir.path());
    let hour = Duration::from_secs(3600);
    let old: Vec<PathBuf> = (0..4)
        .map(|i| put(&store, i, 100_000, hour * (10 - i)))
        .collect();
    let recent = put(&store, 9, 100_000, Duration::from_secs(1));
    // A temp file of a killed build, and one being written.
    let dead = store.root().join("tmp/dl-1-2-3");
    fs::write(&dead, vec![0u8; 5000]).unwrap();
    set_age(&dead, hour * 2);
    let live = store.root().join("tmp/dl-4-5-6");
    fs::write(&live, b"x").unwrap();

    let opts = |max, dry_run| GcOptions {
        max_size: Some(max),
        dry_run,
    };
    let dry = collect(&store, &opts(250_000, true)).unwrap();
    assert_eq!((dry.evicted, dry.temps), (3, 1), "{dry:?}");
    assert!(old.iter().all(|p| p.exists()) && dead.exists());

    // A build holds a lease: what was used within the hour stays, even past the size.
    let lease = store.lease().unwrap();
    let r = collect(&store, &opts(0, false)).unwrap();
    assert_eq!(r.grace, GRACE);
    assert_eq!((r.evicted, r.kept_recent, r.temps), (4, 1, 1), "{r:?}");
    assert!(old.iter().all(|p| !p.exists()));
    assert!(recent.exists() && live.exists() && !dead.exists());
    drop(lease);
    // No build: only the last minute is spared.
    set_age(&recent, Duration::from_secs(120));
    let r = collect(&store, &opts(0, false)).unwrap();
    assert_eq!((r.evicted, r.grace), (1, QUIET_GRACE), "{r:?}");
    assert!(!recent.exists() && live.exists());
}

/// A build that has run for three hours keeps what it stored two hours ago, past
/// the fixed grace, until it ends; a killed build's lease (its lock released)
/// holds nothing and its file goes.
#[test]
fn a_long_build_keeps_what_it_stored_and_a_killed_ones_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = unbounded_store(dir.path());
    let hour = Duration::from_secs(3600);
    let before = put(&store, 1, 100_000, hour * 4);
    let stored = put(&store, 2, 100_000, hour * 2);
    let lease = store.lease().unwrap();
    let leases: Vec<PathBuf> = fs::read_dir(store.root().join(LEASES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(leases.len(), 1, "{leases:?}");
    set_age(&leases[0], hour * 3);
    // A build killed long ago: its file is there, nobody holds its lock.
    let killed = store.root().join(LEASES).join("1-1.lease");
    fs::write(&killed, b"").unwrap();
    set_age(&killed, hour * 10);
    let opts = GcOptions {
        max_size: Some(0),
        dry_run: false,
    };
    let r = collect(&store, &opts).unwrap();
    assert!(r.grace > hour * 3 && r.grace < hour * 4, "{r:?}");
    assert_eq!((r.evicted, r.kept_recent), (1, 1), "{r:?}");
    assert!(!before.exists() && stored.exists() && !killed.exists());
    assert!(leases[0].exists());
    drop(lease);
    assert!(!leases[0].exists());
    let r = collect(&store, &opts).unwrap();
    assert_eq!((r.evicted, r.grace), (1, QUIET_GRACE), "{r:?}");
    assert!(!stored.exists());
}

/// A thin entry's object goes with the entry, not before it; objects no entry
/// lists go first.
#[test]
fn an_object_lives_as_long_as_an_entry_that_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = unbounded_store(&dir.path().join("store"));
    let hour = Duration::from_secs(3600);
    let thin = |i: u8, age: Duration| -> (PathBuf, PathBuf, PathBuf) {
        let key = Key::digest(&[i]);
        let rlib = dir.path().join(format!("lib{i}.rlib"));
        let mut bytes = vec![0u8; 100_000];
        blake3::Hasher::new()
            .update(&[i])
            .finalize_xof()
            .fill(&mut bytes);
        fs::write(&rlib, &bytes).unwrap();
        let file = |role: &str| EntryFile {
            role: role.into(),
            name: format!("lib{i}.{role}"),
            template: false,
            executable: false,
            object: None,
        };
        let meta = EntryMeta {
            format_version: 1,
            key: key.to_hex(),
            files: vec![file("rmeta"), file("rlib")],
            stdout: String::new(),
            stderr: String::new(),
            ansi: false,
            compile_ms: 0,
            xcache_version: "t".into(),
        };
        let out = store
            .put_entry(
                &key,
                &meta,
                &[
                    (EntrySource::Bytes(b"rmeta"), false),
                    (EntrySource::Object(&rlib), false),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(out.objects.len(), 1);
        let entry = store.entry_path(&key);
        set_age(&entry, age);
        let object = crate::store::objects::object_path(&store, &out.digests[1]);
        let hex = key.to_hex();
        let list = store
            .root()
            .join("objects/by-entry")
            .join(&hex[..2])
            .join(&hex);
        assert!(object.exists() && list.exists());
        (entry, object, list)
    };
    let old = thin(1, hour * 10);
    let newer = thin(2, hour * 2);
    // An object no entry lists (a seed's, say), older than both.
    let loose = dir.path().join("loose");
    fs::write(&loose, vec![3u8; 50_000]).unwrap();
    let digest = Key::digest(&fs::read(&loose).unwrap());
    crate::store::objects::adopt(&store, &loose, &digest);
    let loose = crate::store::objects::object_path(&store, &digest);
    set_age(&loose, hour * 20);

    let before = collect(&store, &GcOptions::default()).unwrap().bytes;
    // Room for one thin entry and its object, not for the loose object too.
    let r = collect(
        &store,
        &GcOptions {
            max_size: Some(before - 120_000),
            dry_run: false,
        },
    )
    .unwrap();
    assert_eq!((r.evicted, r.objects_evicted), (1, 2), "{r:?}");
    assert!(!loose.exists());
    assert!(!old.0.exists() && !old.1.exists() && !old.2.exists());
    assert!(newer.0.exists() && newer.1.exists() && newer.2.exists());
}

/// A build that wrote collects only when what it added may take the store past nine
/// tenths of its size by the last count and the ledger, when there is no count with
/// a size, or when the count is an hour old; a collection starts a new ledger.
#[test]
fn a_build_collects_only_when_the_ledger_says_the_store_may_be_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = unbounded_store(dir.path());
    let max = 1_000_000;
    // No count yet (a store no collection counted, or one that only touched it).
    assert!(!room_for(&store, max, 1));
    fs::write(store.root().join(COUNTED), b"").unwrap();
    assert!(!room_for(&store, max, 1));
    put(&store, 1, 300_000, Duration::from_secs(1));
    let opts = GcOptions {
        max_size: Some(max),
        dry_run: false,
    };
    let r = collect(&store, &opts).unwrap();
    let counted: u64 = fs::read_to_string(store.root().join(COUNTED))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted, r.bytes_after());
    assert!(counted >= 300_000);
    // Room: the builds' lines add up in the ledger.
    for _ in 0..2 {
        assert!(room_for(&store, max, 200_000));
        note_added(&store, 200_000);
    }
    // Past nine tenths with the ledger (counted + 400 000 + 200 000 > 900 000).
    assert!(!room_for(&store, max, 200_000));
    let ledger = fs::read_to_string(store.root().join(ADDED)).unwrap();
    assert_eq!(
        ledger, "200000\n200000\n",
        "a refused build's line is not kept"
    );
    // A collection counts again and starts a new ledger.
    collect(&store, &opts).unwrap();
    assert!(!store.root().join(ADDED).exists());
    assert!(room_for(&store, max, 200_000));
    note_added(&store, 200_000);
    // Lines a collection took and never finished counting still count.
    fs::rename(
        store.root().join(ADDED),
        store.root().join(format!("{ADDED}.counting")),
    )
    .unwrap();
    assert!(room_for(&store, max, 200_000));
    note_added(&store, 200_000);
    assert!(!room_for(&store, max, 200_000));
    // A ledger line that is no number: collect.
    collect(&store, &opts).unwrap();
    fs::write(store.root().join(ADDED), b"lots\n").unwrap();
    assert!(!room_for(&store, max, 1));
    // An hour after the last count: collect, whatever the ledger says.
    collect(&store, &opts).unwrap();
    assert!(room_for(&store, max, 1));
    set_age(
        &store.root().join(COUNTED),
        IDLE_EVERY + Duration::from_secs(60),
    );
    assert!(!room_for(&store, max, 1));
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(human_bytes(12), "12 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(10 << 30), "10.0 GiB");
}
