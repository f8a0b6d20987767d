//! The local fault suite: each class of fault a local store can meet is injected into
//! real builds of `fixtures/basic-workspace`, and every build is judged by its exit
//! code and by what the built program prints, compared with plain cargo. The table it
//! prints (faults injected, builds failed, wrong outputs, seconds added) is quoted in
//! the book ("Store layout and entry format", Faults). Randomness is seeded: the same
//! faults are injected on every run.
//!
//! Classes: corrupt, truncated, empty and forged entries and seed packs; hostile names
//! in entries and packs (absolute, `..`, a symbolic link planted in the target dir on
//! the way); `kill -9` of a build at random points, then a build that must be right;
//! concurrent builds on one store; a full disk under the store (a small tmpfs); and
//! entries no trusted key signed, read with `XCACHE_TRUSTED_KEYS`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Scratch, base_command, cargo_build, copy_fixture, xcache_build, xcache_exe};
use xcache::key::Key;
use xcache::sign::Signer;
use xcache::store::{EntryMeta, EntryReader, EntrySource, write_entry};

const FIXTURE: &str = "basic-workspace";

/// A small deterministic generator (xorshift64*): the suite's faults are the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One row of the table.
#[derive(Default)]
struct Row {
    class: String,
    faults: usize,
    builds: usize,
    failed: usize,
    wrong: usize,
    added: f64,
    note: String,
}

struct Suite {
    s: Scratch,
    /// What the program prints when plain cargo builds it.
    expected: String,
    /// A store filled by one build, never touched afterwards.
    pristine: PathBuf,
    /// A warm build (every unit from the store) into a fresh target dir, and a cold one.
    warm_secs: f64,
    cold_secs: f64,
    rng: Rng,
    rounds: usize,
}

/// What one build did, judged.
struct Judged {
    failed: bool,
    wrong: bool,
    secs: f64,
    stderr: String,
}

impl Suite {
    fn new() -> Suite {
        let s = Scratch::new();
        let plain = s.checkout(FIXTURE, "plain");
        let out = cargo_build(&plain, &[], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = Command::new(plain.join("target/debug/app"))
            .output()
            .unwrap();
        let expected = String::from_utf8(run.stdout).unwrap();
        let pristine = s.path("pristine");
        let ws = s.checkout(FIXTURE, "fill");
        let t = Instant::now();
        xcache_build(&ws, &pristine, &[], &[]).assert_success();
        let cold_secs = t.elapsed().as_secs_f64();
        let mut suite = Suite {
            s,
            expected,
            pristine,
            warm_secs: 0.0,
            cold_secs,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            rounds: 0,
        };
        let store = suite.fresh_store();
        let warm = suite.judge(&store, &[], |_| {});
        assert!(!warm.failed && !warm.wrong, "{}", warm.stderr);
        suite.warm_secs = warm.secs;
        suite
    }

    /// A copy of the pristine store.
    fn fresh_store(&mut self) -> PathBuf {
        self.rounds += 1;
        let dest = self.s.path(&format!("store-{}", self.rounds));
        copy_dir(&self.pristine, &dest);
        dest
    }

    /// Builds a fresh checkout through `store` (after `prepare` ran on the checkout),
    /// and judges it against plain cargo.
    fn judge(&mut self, store: &Path, env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Judged {
        self.rounds += 1;
        let ws = self.s.path(&format!("ws-{}", self.rounds));
        copy_fixture(FIXTURE, &ws);
        prepare(&ws);
        let t = Instant::now();
        let b = xcache_build(&ws, store, &[], env);
        let secs = t.elapsed().as_secs_f64();
        let failed = !b.output.status.success();
        let wrong = !failed && run_app(&ws) != self.expected;
        Judged {
            failed,
            wrong,
            secs,
            stderr: b.stderr(),
        }
    }

    /// Entry files of a store: (seed packs, unit entries).
    fn entries(store: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut packs = Vec::new();
        for rec in files_under(&store.join("v2/seeds")) {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
            for var in v["variants"].as_array().into_iter().flatten() {
                if let Some(p) = var["pack"].as_str() {
                    packs.push(entry_path(store, p));
                }
            }
        }
        packs.sort();
        packs.dedup();
        let units = files_under(&store.join("v2/entries"))
            .into_iter()
            .filter(|p| !packs.contains(p))
            .collect();
        (packs, units)
    }

    /// Damages `per_build` entries (packs or unit entries) with `damage` in each of
    /// `builds` builds.
    fn damage_round(
        &mut self,
        class: &str,
        packs: bool,
        builds: usize,
        per_build: usize,
        damage: impl Fn(&Path, &mut Rng),
    ) -> Row {
        let mut row = Row {
            class: class.into(),
            ..Row::default()
        };
        for _ in 0..builds {
            let store = self.fresh_store();
            let (p, u) = Suite::entries(&store);
            let pool = if packs { p } else { u };
            assert!(!pool.is_empty(), "{class}: nothing to damage");
            for _ in 0..per_build {
                let victim = pool[self.rng.below(pool.len())].clone();
                damage(&victim, &mut self.rng);
                row.faults += 1;
            }
            self.tally(&mut row, &store, &[], self.warm_secs, |_| {});
        }
        row
    }

    fn tally(
        &mut self,
        row: &mut Row,
        store: &Path,
        env: &[(&str, &str)],
        baseline: f64,
        prepare: impl FnOnce(&Path),
    ) -> Judged {
        let j = self.judge(store, env, prepare);
        row.builds += 1;
        row.failed += usize::from(j.failed);
        row.wrong += usize::from(j.wrong);
        row.added += j.secs - baseline;
        if j.failed {
            eprintln!("{}: build failed:\n{}", row.class, j.stderr);
        }
        j
    }
}

fn run_app(ws: &Path) -> String {
    match Command::new(ws.join("target/debug/app")).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("<{e}>"),
    }
}

fn entry_path(store: &Path, hex: &str) -> PathBuf {
    store
        .join("v2/entries")
        .join(&hex[..2])
        .join(format!("{hex}.xce"))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        // Links are not followed: what is reached through one is counted where it is.
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_under(&p)),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &dst);
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// The key an entry file is stored under.
fn key_of(path: &Path) -> Key {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    Key::from_hex(stem).unwrap()
}

/// Reads an entry whole: its header and files.
fn read_whole(path: &Path) -> (EntryMeta, Vec<Vec<u8>>) {
    let mut r = EntryReader::open(path, &key_of(path)).unwrap();
    let meta = r.meta().clone();
    let mut files = Vec::new();
    // `<store>/v2/entries/<2 hex>/<key>.xce`: a file a thin entry holds by reference is
    // the store's object of its digest.
    let layout = path.parent().unwrap().parent().unwrap().parent().unwrap();
    for _ in 0..meta.files.len() {
        if let Some(o) = r.next_object() {
            r.skip_object().unwrap();
            let hex = o.digest.to_hex();
            files.push(std::fs::read(layout.join("objects").join(&hex[..2]).join(&hex)).unwrap());
            continue;
        }
        let mut buf = Vec::new();
        r.next_file(&mut buf).unwrap();
        files.push(buf);
    }
    r.finish().unwrap();
    (meta, files)
}

/// Rewrites an entry as a well-formed one (fresh digests, the right key), signed by
/// `signer` if given.
fn rewrite(path: &Path, meta: &EntryMeta, files: &[Vec<u8>], signer: Option<&Signer>) {
    let sources: Vec<(EntrySource<'_>, bool)> = files
        .iter()
        .map(|f| (EntrySource::Bytes(f), false))
        .collect();
    let tmp = path.with_extension("forging");
    write_entry(File::create(&tmp).unwrap(), meta, &sources, &[], signer).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Replaces every executable of an entry by a shell script: the attack of a writer of
/// the store who wants to run code in its readers' builds.
fn forge(path: &Path, signer: Option<&Signer>) -> bool {
    let (meta, mut files) = read_whole(path);
    let mut forged = false;
    for (f, bytes) in meta.files.iter().zip(files.iter_mut()) {
        if f.executable {
            *bytes = b"#!/bin/sh\necho forged\n".to_vec();
            forged = true;
        }
    }
    if forged {
        rewrite(path, &meta, &files, signer);
    }
    forged
}

/// Renames the first file of an entry to `name`, keeping it well-formed.
fn rename_first(path: &Path, name: &str) {
    let (mut meta, files) = read_whole(path);
    meta.files[0].name = name.to_string();
    rewrite(path, &meta, &files, None);
}

/// A symbolic link at `ws/rel` to `to`, as someone with access to the target dir could
/// plant it.
fn plant_link(ws: &Path, rel: &str, to: &Path) {
    let link = ws.join(rel);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(to, link).unwrap();
}

/// Files a hostile name put outside the target dir: in `outside`, or named `escaped`
/// anywhere in the scratch area but inside a target dir (a build script's `OUT_DIR`
/// may hold subdirectories, so `planted/escaped` there is a plain restore).
fn escaped(s: &Scratch, outside: &Path) -> Vec<PathBuf> {
    let in_target = |p: &Path| p.components().any(|c| c.as_os_str() == "target");
    let mut v: Vec<PathBuf> = files_under(s.dir.path())
        .into_iter()
        .filter(|p| {
            p.starts_with(outside)
                || (p.file_name().is_some_and(|n| n == "escaped") && !in_target(p))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn local_store_faults_never_fail_a_build_nor_change_its_output() {
    let started = Instant::now();
    let mut suite = Suite::new();
    let mut rows: Vec<Row> = Vec::new();

    // Damaged bytes: the digests catch them.
    let flip = |p: &Path, rng: &mut Rng| {
        let mut b = std::fs::read(p).unwrap();
        let i = rng.below(b.len());
        b[i] ^= 1 + (rng.next() % 255) as u8;
        std::fs::write(p, b).unwrap();
    };
    let truncate = |p: &Path, rng: &mut Rng| {
        let len = std::fs::metadata(p).unwrap().len();
        let keep = rng.below(len as usize) as u64;
        File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(keep)
            .unwrap();
    };
    let empty = |p: &Path, _: &mut Rng| std::fs::write(p, b"").unwrap();
    for (packs, what) in [(false, "entry"), (true, "seed pack")] {
        rows.push(suite.damage_round(&format!("corrupt {what}"), packs, 2, 3, flip));
        rows.push(suite.damage_round(&format!("truncated {what}"), packs, 1, 3, truncate));
        rows.push(suite.damage_round(&format!("empty {what}"), packs, 1, 3, empty));
    }

    // Forged entries: well-formed, the right key, other content. Without trusted keys
    // nothing can tell them from the real ones (the book says so); with them they are
    // refused.
    let key = suite.s.path("writer.key");
    let writer = Signer::generate().unwrap();
    writer.write_new(&key).unwrap();
    let attacker = Signer::generate().unwrap();
    let trusted = writer.public_key().to_string();
    for (class, signer, env) in [
        ("forged entry, no trusted keys", None, vec![]),
        (
            "forged entry, unsigned, keys trusted",
            None,
            vec![("XCACHE_TRUSTED_KEYS", trusted.as_str())],
        ),
        (
            "forged entry, other key, keys trusted",
            Some(&attacker),
            vec![("XCACHE_TRUSTED_KEYS", trusted.as_str())],
        ),
    ] {
        let mut row = Row {
            class: class.into(),
            ..Row::default()
        };
        let store = suite.fresh_store();
        let (packs, units) = Suite::entries(&store);
        for p in units.iter().chain(&packs) {
            row.faults += usize::from(forge(p, signer));
        }
        let j = suite.tally(&mut row, &store, &env, suite.warm_secs, |_| {});
        if env.is_empty() {
            row.note =
                "expected: without keys a writer of the store runs code in its readers' builds"
                    .into();
            assert!(
                j.wrong || j.failed,
                "a forged executable went unnoticed and unused"
            );
            // Counted apart from the classes that must be harmless.
            row.wrong = usize::from(j.wrong);
        }
        rows.push(row);
    }

    // Signed by the trusted writer: every unit is used; unsigned with keys: all refused.
    {
        let mut row = Row {
            class: "unsigned store, keys trusted".into(),
            ..Row::default()
        };
        let store = suite.fresh_store();
        row.faults = files_under(&store.join("v2/entries")).len();
        let env = [("XCACHE_TRUSTED_KEYS", trusted.as_str())];
        let j = suite.tally(&mut row, &store, &env, suite.warm_secs, |_| {});
        assert!(j.stderr.contains("[untrusted-entry]"), "{}", j.stderr);
        rows.push(row);

        let signed = suite.s.path("signed-store");
        let ws = suite.s.checkout(FIXTURE, "signed-fill");
        let k = key.display().to_string();
        xcache_build(&ws, &signed, &[], &[("XCACHE_SIGNING_KEY", &k)]).assert_success();
        let j = suite.judge(&signed, &env, |_| {});
        assert!(
            !j.failed && !j.wrong && !j.stderr.contains("untrusted"),
            "{}",
            j.stderr
        );
    }

    // Hostile names: absolute, `..`, and a symbolic link planted in the target dir on
    // the way to where an entry says a file goes. (A pack naming a path through such a
    // link is `planting_never_follows_a_link_planted_in_the_target_dir`, below.)
    {
        let mut row = Row {
            class: "hostile names".into(),
            ..Row::default()
        };
        let outside = suite.s.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let abs = outside.join("absolute").display().to_string();
        // (A name that stays inside, `sub/name`, is no hostile name but a forgery: it
        // changes what the unit holds, like any forged content.)
        for (pack, name) in [
            (false, abs.as_str()),
            (false, "../../escaped"),
            (true, abs.as_str()),
            (true, "../../../escaped"),
        ] {
            let store = suite.fresh_store();
            let (packs, units) = Suite::entries(&store);
            let pool = if pack { packs } else { units };
            for p in &pool {
                rename_first(p, name);
                row.faults += 1;
            }
            let link_to = outside.clone();
            suite.tally(&mut row, &store, &[], suite.warm_secs, |ws| {
                plant_link(ws, "target/debug/deps/planted", &link_to);
            });
        }
        let escaped = escaped(&suite.s, &outside);
        row.note = format!("{} files written outside", escaped.len());
        assert!(escaped.is_empty(), "written outside: {escaped:?}");
        rows.push(row);
    }

    // kill -9 of the whole build (cargo, rustc, wrappers) at random points, then a build
    // through the same store and target dir that must be right.
    {
        let mut row = Row {
            class: "kill -9 mid-build".into(),
            ..Row::default()
        };
        let store = suite.s.path("killed-store");
        let ws = suite.s.checkout(FIXTURE, "killed");
        for _ in 0..4 {
            let at = Duration::from_millis(100 + (suite.rng.next() % 1400));
            let mut child = base_command(&xcache_exe(), &ws, &store)
                .args(["xcache", "build"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let t = Instant::now();
            std::thread::sleep(at);
            // The whole process group, by syscall (not procps' `kill`, whose 4.0.2
            // reads `-9 -PGID` as "every process" for some PGIDs).
            let pgid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            let _ = child.wait();
            row.faults += 1;
            row.added += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let b = xcache_build(&ws, &store, &[], &[]);
            row.builds += 1;
            let failed = !b.output.status.success();
            row.failed += usize::from(failed);
            row.wrong += usize::from(!failed && run_app(&ws) != suite.expected);
            row.added += t.elapsed().as_secs_f64();
            if failed {
                eprintln!("after kill -9: {}", b.stderr());
            }
        }
        // The killed builds and their rebuilds, against one cold build.
        row.added -= suite.cold_secs;
        rows.push(row);
    }

    // Concurrent builds on one empty store.
    {
        let mut row = Row {
            class: "concurrent builds".into(),
            ..Row::default()
        };
        let store = suite.s.path("shared-store");
        let wss: Vec<PathBuf> = (0..3)
            .map(|i| suite.s.checkout(FIXTURE, &format!("conc-{i}")))
            .collect();
        let t = Instant::now();
        let builds: Vec<_> = std::thread::scope(|sc| {
            let handles: Vec<_> = wss
                .iter()
                .map(|ws| {
                    let store = store.clone();
                    sc.spawn(move || xcache_build(ws, &store, &[], &[]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        row.added = t.elapsed().as_secs_f64() - suite.cold_secs;
        for (ws, b) in wss.iter().zip(&builds) {
            row.faults += 1;
            row.builds += 1;
            let failed = !b.output.status.success();
            row.failed += usize::from(failed);
            row.wrong += usize::from(!failed && run_app(ws) != suite.expected);
        }
        let j = suite.tally(&mut row, &store, &[], suite.warm_secs, |_| {});
        assert!(!j.failed, "{}", j.stderr);
        rows.push(row);
    }

    // A full disk under the store: a 1 MiB tmpfs (the fixture's entries take more).
    {
        let mut row = Row {
            class: "full disk (1 MiB tmpfs store)".into(),
            ..Row::default()
        };
        let mount_point = suite.s.path("small-disk");
        match Tmpfs::mount(&mount_point, "1m") {
            Ok(_disk) => {
                for _ in 0..2 {
                    row.faults += 1;
                    let j = suite.tally(&mut row, &mount_point, &[], suite.cold_secs, |_| {});
                    assert!(j.stderr.contains("[store-write-failed]"), "{}", j.stderr);
                }
            }
            Err(e) => {
                row.note = format!("not run: mounting a tmpfs failed ({e})");
                eprintln!("faults_local: full disk {}", row.note);
            }
        }
        rows.push(row);
    }

    println!();
    println!(
        "{:<40} {:>6} {:>6} {:>6} {:>6} {:>8}",
        "fault", "faults", "builds", "failed", "wrong", "s added"
    );
    let mut total = Row::default();
    for r in &rows {
        println!(
            "{:<40} {:>6} {:>6} {:>6} {:>6} {:>8.1}  {}",
            r.class, r.faults, r.builds, r.failed, r.wrong, r.added, r.note
        );
        if !r.class.ends_with("no trusted keys") {
            total.faults += r.faults;
            total.builds += r.builds;
            total.failed += r.failed;
            total.wrong += r.wrong;
        }
    }
    println!(
        "{:<40} {:>6} {:>6} {:>6} {:>6}",
        "total (forged without keys apart)", total.faults, total.builds, total.failed, total.wrong
    );
    println!(
        "baseline: warm build {:.2} s, cold build {:.2} s; suite {:.0} s",
        suite.warm_secs,
        suite.cold_secs,
        started.elapsed().as_secs_f64()
    );
    assert_eq!((total.failed, total.wrong), (0, 0), "see the table above");
}

/// A seed pack naming a file through a symbolic link someone planted in the target dir
/// must not write through it.
#[test]
fn planting_never_follows_a_link_planted_in_the_target_dir() {
    let mut suite = Suite::new();
    let outside = suite.s.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let store = suite.fresh_store();
    let (packs, _) = Suite::entries(&store);
    for p in &packs {
        rename_first(p, "debug/planted/escaped");
    }
    let link_to = outside.clone();
    let j = suite.judge(&store, &[], |ws| {
        plant_link(ws, "target/debug/planted", &link_to)
    });
    assert!(!j.failed && !j.wrong, "{}", j.stderr);
    assert_eq!(escaped(&suite.s, &outside), Vec::<PathBuf>::new());
}

/// Seed records name the directories cargo keeps a unit's state in, and planting
/// removes them when a unit cannot stay: a record naming a directory outside the target
/// dir is never planted, and nothing outside is removed.
#[test]
fn a_seed_record_naming_a_directory_outside_the_target_dir_is_not_planted() {
    let mut suite = Suite::new();
    let victim = suite.s.path("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "mine").unwrap();
    let store = suite.fresh_store();
    let mut edited = 0;
    for rec in files_under(&store.join("v2/seeds")) {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
        for var in v["variants"].as_array_mut().into_iter().flatten() {
            // From the target dir of any checkout in the scratch area, up to it.
            var["fingerprint_dir"] = "../../../../../victim/fp".into();
            var["run_fingerprint_dir"] = "../../../../../victim".into();
            edited += 1;
        }
        std::fs::write(&rec, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    assert!(edited > 0, "the store holds no seed records");
    let j = suite.judge(&store, &[], |_| {});
    assert!(!j.failed && !j.wrong, "{}", j.stderr);
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!victim.join("fp").exists());
}
