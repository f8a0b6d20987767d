//! The path check's unit tests: the compiles found in a record, the memo, the aliasing
//! library's answers and archives, the comparison's names, the second run's CPU.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::compare::{is_probe_leftover, same_names};
use super::compiles::fields as record_fields;
use super::compiles::{Compile, Step, appends_as_one, archive_of, compiles};
use super::memo::{archives_in_part, memo};
use super::second_run::{cpu_of_stat, cpu_used};
use crate::interpose::ALIAS as LIBRARY;
use crate::observe::Trace;

/// A record in the observer's words (`<pid> <op> <errno> <path>`), parsed.
fn trace(lines: &[String]) -> Trace {
    Trace::parse(&(lines.join("\n") + "\n"), 1)
}

fn fields(parts: &[&str]) -> String {
    let mut s = parts.len().to_string();
    for p in parts {
        s.push('\u{1f}');
        s.push_str(p);
    }
    s
}

/// A temporary directory holding the aliasing library, and the library's path.
fn alias_library() -> (tempfile::TempDir, PathBuf) {
    assert!(
        !LIBRARY.is_empty(),
        "the aliasing library is built on Linux"
    );
    let d = tempfile::tempdir().unwrap();
    let lib = d.path().join("libalias.so");
    std::fs::write(&lib, LIBRARY).unwrap();
    (d, lib)
}

/// The aliasing library answers `--version`, `-V`, `-vV` and `--version --verbose` of
/// the compiler it is given (here a path where nothing is) from the answers' files,
/// by `cat`; any other arguments, or another program, start the program itself.
#[test]
fn version_probes_of_the_runs_compiler_are_answered_without_starting_it() {
    let (d, lib) = alias_library();
    let short = d.path().join("rustc-V");
    let long = d.path().join("rustc-vV");
    std::fs::write(&short, "rustc 9.9.9 (test)\n").unwrap();
    std::fs::write(&long, "rustc 9.9.9 (test)\nbinary: rustc\n").unwrap();
    let rustc = d.path().join("no-such-dir/rustc");
    let other = d.path().join("no-such-dir/other");
    let script = format!(
        "r='{r}'; o='{o}'; $r --version; $r -V; $r -vV; $r --version --verbose; \
         $r --print sysroot 2>/dev/null || echo started; \
         $r --version --color 2>/dev/null || echo started; \
         $o --version 2>/dev/null || echo started",
        r = rustc.display(),
        o = other.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LD_PRELOAD", &lib)
        .env(
            "XCACHE_RUSTC_QUERY",
            format!(
                "{}\n{}\n{}\n",
                short.display(),
                long.display(),
                rustc.display()
            ),
        )
        .output()
        .unwrap();
    let v = "rustc 9.9.9 (test)\n";
    let vv = "rustc 9.9.9 (test)\nbinary: rustc\n";
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{v}{v}{vv}{vv}started\nstarted\nstarted\n")
    );
}

/// Two compiles into `OUT_DIR`: one of a source in the package, one of a source the
/// script wrote into the temporary directory first. Only the first may be taken.
#[test]
fn a_compile_of_what_the_run_made_is_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.o"), "a").unwrap();
    std::fs::write(out.join("b.o"), "b").unwrap();
    let o = |n: &str| out.join(n).display().to_string();
    let lines = vec![
        "1 I 0 /ws/target/build-script-build".to_string(),
        "1 w 0 /tmp/gen.c".to_string(),
        "10 I 1 /usr/bin/cc".to_string(),
        format!(
            "10 a 0 {}",
            fields(&["/ws", "cc", "-c", "-o", &o("a.o"), "src/a.c"])
        ),
        format!("10 A 0 {}", fields(&["PATH=/usr/bin"])),
        "10 o 0 /ws/src/a.c".to_string(),
        format!("10 w 0 {}", o("a.o")),
        "11 I 1 /usr/bin/cc".to_string(),
        format!(
            "11 a 0 {}",
            fields(&["/ws", "cc", "-c", "-o", &o("b.o"), "/tmp/gen.c"])
        ),
        format!("11 A 0 {}", fields(&["PATH=/usr/bin"])),
        // The driver's child, cc1, reads the source.
        "12 I 11 /usr/lib/gcc/cc1".to_string(),
        "12 o 0 /tmp/gen.c".to_string(),
        format!("11 w 0 {}", o("b.o")),
    ];
    let found = compiles(&trace(&lines), &out);
    let outputs: Vec<&Path> = found.iter().map(|c| c.output.as_path()).collect();
    assert_eq!(outputs, [out.join("a.o").as_path()]);
    assert_eq!(found[0].argv, ["cc", "-c", "-o", &o("a.o"), "src/a.c"]);
    assert_eq!(found[0].env, ["PATH=/usr/bin"]);
    assert_eq!(found[0].cwd, "/ws");
}

/// Headers the script wrote into `OUT_DIR`: a compile that read one written before
/// it started is taken if the second run's has the same bytes (it is listed, with
/// the names it looked for there in vain); one the script wrote again after the
/// compile started is not taken.
#[test]
fn a_compile_of_a_header_in_out_dir_is_taken_when_the_header_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("include")).unwrap();
    std::fs::write(out.join("a.o"), "a").unwrap();
    std::fs::write(out.join("b.o"), "b").unwrap();
    let o = |n: &str| out.join(n).display().to_string();
    let compile = |pid: u32, obj: &str| {
        vec![
            format!("{pid} I 1 /usr/bin/cc"),
            format!(
                "{pid} a 0 {}",
                fields(&["/ws", "cc", "-I", &o("include"), "-c", "-o", &o(obj), "s.c"])
            ),
            format!("{pid} A 0 {}", fields(&["PATH=/usr/bin"])),
            format!("{pid} o 2 {}", o("include/stdio.h")),
            format!("{pid} o 0 {}", o("include/h.h")),
            format!("{pid} w 0 {}", o(obj)),
        ]
    };
    let mut lines = vec![
        "1 I 0 /ws/target/build-script-build".to_string(),
        format!("1 w 0 {}", o("include/h.h")),
    ];
    lines.extend(compile(10, "a.o"));
    // Written again while a compile runs: what it read is no longer there.
    let mut again = lines.clone();
    again.extend(compile(11, "b.o").into_iter().take(3));
    again.push(format!("1 w 0 {}", o("include/h.h")));
    again.extend(compile(11, "b.o").into_iter().skip(3));
    let found = compiles(&trace(&again), &out);
    assert!(
        found.is_empty(),
        "{:?}",
        found.iter().map(|c| &c.output).collect::<Vec<_>>()
    );
    let found = compiles(&trace(&lines), &out);
    let outputs: Vec<&Path> = found.iter().map(|c| c.output.as_path()).collect();
    assert_eq!(outputs, [out.join("a.o").as_path()]);
    assert_eq!(found[0].same, [Path::new("include/h.h")]);
    assert_eq!(found[0].absent, [Path::new("include/stdio.h")]);
    let memo_text = memo(&found, |s| s.to_string(), &out, Path::new("/second"));
    assert!(
        memo_text.contains(&format!("f {}\n", o("include/h.h"))),
        "{memo_text}"
    );
    assert!(memo_text.contains("g /second/include/h.h\n"), "{memo_text}");
    assert!(
        memo_text.contains("n /second/include/stdio.h\n"),
        "{memo_text}"
    );
}

/// Values holding 0x1f (cargo's encoded flags) or a newline (a package's description)
/// come through the record and the memo.
#[test]
fn separators_and_newlines_in_a_compile_s_environment_come_through() {
    let record = "2\u{1f}CARGO_ENCODED_RUSTFLAGS=-C\u{1b}1debuginfo=1\u{1f}E=\u{1b}\u{1b}";
    assert_eq!(
        record_fields(record).unwrap(),
        ["CARGO_ENCODED_RUSTFLAGS=-C\u{1f}debuginfo=1", "E=\u{1b}"]
    );
    assert!(record_fields("1\u{1f}bad\u{1b}x").is_none());
    let c = Compile {
        cwd: "/ws".into(),
        argv: vec!["cc".into()],
        env: vec!["CARGO_PKG_DESCRIPTION=two\nlines \\ and a tab\t".into()],
        output: PathBuf::from("/out/a.o"),
        same: Vec::new(),
        absent: Vec::new(),
        chain: None,
        members: Vec::new(),
    };
    let text = memo(
        &[c],
        |s| s.to_string(),
        Path::new("/out"),
        Path::new("/second"),
    );
    assert!(
        text.contains("e CARGO_PKG_DESCRIPTION=two\\nlines \\\\ and a tab\t\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 6, "{text}");
}

/// The archivers' forms whose archive holds the members' names and bytes only.
#[test]
fn an_archive_is_taken_only_in_forms_that_keep_names_and_bytes() {
    let of = |a: &str| -> Option<String> {
        let v: Vec<String> = a.split(' ').map(str::to_string).collect();
        archive_of(&v).map(str::to_string)
    };
    for ok in [
        "ar cq lib.a a.o b.o",
        "ar s lib.a",
        "ar crs lib.a a.o",
        "ar -rcs lib.a a.o",
        "ar rcD lib.a a.o",
        "/usr/bin/x86_64-linux-gnu-ar cq lib.a a.o",
        "gcc-ar qc lib.a a.o",
    ] {
        assert_eq!(of(ok).as_deref(), Some("lib.a"), "{ok}");
    }
    for refused in [
        "ar rcsP lib.a a.o",
        "ar rcT lib.a a.o",
        "ar rcsu lib.a a.o",
        "ar rcU lib.a a.o",
        "ar rco lib.a a.o",
        "ar rcsa m.o lib.a a.o",
        "ar x lib.a",
        "ar t lib.a",
        "ar d lib.a a.o",
        "ar qr lib.a a.o",
        "ar cq lib.a @list",
        "ar --plugin p.so cq lib.a a.o",
        "ar cq lib.a -a.o",
        "ranlib lib.a",
        "car cq lib.a a.o",
        "ar",
        "ar cq",
    ] {
        assert_eq!(of(refused), None, "{refused}");
    }
}

/// The record of the `cc` crate's archiving: the script removes the archive, `ar cq`
/// looks for it in vain, makes it through a temporary file and reads it back, `ar s`
/// indexes it. Both steps are one chain; variants where the archive was there before,
/// was read or written by another process between or after the steps, or the steps
/// overlapped, are not taken.
#[test]
fn an_archive_s_steps_are_one_chain_taken_only_when_nobody_else_touched_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.o"), "a").unwrap();
    std::fs::write(out.join("lib.a"), "archive").unwrap();
    let o = |n: &str| out.join(n).display().to_string();
    let env = || format!("A 0 {}", fields(&["PATH=/usr/bin"]));
    let step1 = |pid: u32| {
        vec![
            format!("{pid} I 1 /usr/bin/ar"),
            format!(
                "{pid} a 0 {}",
                fields(&["/ws", "ar", "cq", &o("lib.a"), &o("a.o")])
            ),
            format!("{pid} {}", env()),
            "{pid} o 0 /usr/lib/bfd-plugins/liblto_plugin.so".replace("{pid}", &pid.to_string()),
            format!("{pid} s 2 {}", o("lib.a")),
            format!("{pid} w 0 {}", o("lib.a")),
            format!("{pid} o 0 {}", o("lib.a")),
            format!("{pid} o 0 {}", o("a.o")),
            format!("{pid} w 0 {}", o("stAbCdEf")),
            format!("{pid} w 0 {}", o("lib.a")),
            format!("{pid} w 0 {}", o("stAbCdEf")),
        ]
    };
    let step2 = |pid: u32| {
        vec![
            format!("{pid} I 1 /usr/bin/ar"),
            format!("{pid} a 0 {}", fields(&["/ws", "ar", "s", &o("lib.a")])),
            format!("{pid} {}", env()),
            format!("{pid} o 0 {}", o("lib.a")),
            format!("{pid} w 0 {}", o("stGhIjKl")),
            format!("{pid} w 0 {}", o("lib.a")),
            format!("{pid} w 0 {}", o("stGhIjKl")),
        ]
    };
    let script = |extra: &[String]| {
        let mut l = vec![
            "1 I 0 /ws/target/build-script-build".to_string(),
            format!("1 w 0 {}", o("a.o")),
            format!("1 w 0 {}", o("lib.a")),
        ];
        l.extend(extra.iter().cloned());
        l
    };
    let both: Vec<String> = step1(10).into_iter().chain(step2(11)).collect();
    let found = compiles(&trace(&script(&both)), &out);
    let steps: Vec<(Vec<String>, Option<Step>)> =
        found.iter().map(|c| (c.argv.clone(), c.chain)).collect();
    assert_eq!(
        steps,
        [
            (
                vec!["ar".into(), "cq".into(), o("lib.a")],
                Some(Step {
                    chain: 0,
                    step: 0,
                    steps: 2
                })
            ),
            (
                vec!["ar".into(), "s".into(), o("lib.a")],
                Some(Step {
                    chain: 0,
                    step: 1,
                    steps: 2
                })
            ),
        ]
    );
    assert_eq!(found[0].members, [o("a.o")]);
    assert_eq!(found[0].same, [Path::new("a.o")]);
    assert_eq!(found[0].absent, [Path::new("lib.a")]);
    assert!(found[1].same.is_empty(), "{:?}", found[1].same);
    let memo_text = memo(&found, |s| s.to_string(), &out, Path::new("/second"));
    assert!(
        memo_text.contains("k 0 0\n") && memo_text.contains("k 0 1\n"),
        "{memo_text}"
    );
    assert!(memo_text.contains("o /second/lib.a\n"), "{memo_text}");

    // The archive was there when the first step started: it appended to it.
    let mut there = step1(10);
    there.retain(|l| !l.contains(" s 2 "));
    there.insert(3, format!("10 o 0 {}", o("lib.a")));
    let v: Vec<String> = there.into_iter().chain(step2(11)).collect();
    assert!(
        compiles(&trace(&script(&v)), &out).is_empty(),
        "existing archive"
    );
    // Another process read it between the steps.
    let mut between = step1(10);
    between.push(format!("1 o 0 {}", o("lib.a")));
    between.extend(step2(11));
    assert!(
        compiles(&trace(&script(&between)), &out).is_empty(),
        "read between"
    );
    // Another process wrote it after the last step.
    let mut after = both.clone();
    after.push(format!("1 w 0 {}", o("lib.a")));
    assert!(
        compiles(&trace(&script(&after)), &out).is_empty(),
        "written after"
    );
    // The steps overlapped: the second started before the first's last call.
    let mut overlap = step1(10);
    let last = overlap.pop().unwrap();
    overlap.extend(step2(11));
    overlap.push(last);
    assert!(
        compiles(&trace(&script(&overlap)), &out).is_empty(),
        "overlapping"
    );
    // A member the run wrote again after the first step started.
    let mut rewritten = step1(10);
    rewritten.insert(2, format!("1 w 0 {}", o("a.o")));
    rewritten.extend(step2(11));
    assert!(
        compiles(&trace(&script(&rewritten)), &out).is_empty(),
        "member rewritten"
    );
}

/// The aliasing library, with real `ar` behind a stand-in that records being run:
/// the `cc` crate's two steps in order are both taken (the first run's archive put in
/// place, nothing run, both steps marked); in another order, or with another member,
/// the archiver runs and a chain begun and not finished is reported.
#[test]
fn the_second_run_takes_an_archive_s_steps_in_order_only() {
    let (d, lib) = alias_library();
    let first = d.path().join("first");
    let second = d.path().join("second");
    let bin = d.path().join("bin");
    for dir in [&first, &second, &bin] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for dir in [&first, &second] {
        std::fs::write(dir.join("a.o"), "member a\n").unwrap();
        std::fs::write(dir.join("b.o"), "member b\n").unwrap();
    }
    let ar = |args: &[&str], cwd: &Path| {
        let st = Command::new("ar")
            .args(args)
            .current_dir(cwd)
            .status()
            .unwrap();
        assert!(st.success());
    };
    ar(&["cq", "lib.a", "a.o", "b.o"], &first);
    ar(&["s", "lib.a"], &first);
    let made = std::fs::read(first.join("lib.a")).unwrap();
    // The stand-in: logs, then runs the real archiver.
    let log = d.path().join("ran");
    let real_ar = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ar"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        bin.join("ar"),
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            real_ar.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("ar"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let step = |args: &[&str], step: usize, same: Vec<PathBuf>, absent: Vec<PathBuf>| Compile {
        cwd: second.display().to_string(),
        argv: args.iter().map(|a| a.to_string()).collect(),
        env: vec![format!("PATH={path}"), format!("PWD={}", second.display())],
        output: first.join("lib.a"),
        same,
        absent,
        chain: Some(Step {
            chain: 0,
            step,
            steps: 2,
        }),
        members: Vec::new(),
    };
    // The first run appended in two batches.
    let chain = appends_as_one(vec![
        step(
            &["ar", "cq", "lib.a", "a.o"],
            0,
            vec!["a.o".into()],
            vec!["lib.a".into()],
        ),
        step(&["ar", "cq", "lib.a", "b.o"], 1, vec!["b.o".into()], vec![]),
        step(&["ar", "s", "lib.a"], 2, vec![], vec![]),
    ]);
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].members, ["a.o", "b.o"]);
    let run = |script: &str, tag: &str| -> (String, Option<String>) {
        let memo_path = d.path().join(format!("memo-{tag}"));
        std::fs::write(&memo_path, memo(&chain, |s| s.to_string(), &first, &second)).unwrap();
        let _ = std::fs::remove_file(second.join("lib.a"));
        let _ = std::fs::remove_file(&log);
        let st = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&second)
            .env_clear()
            .env("PATH", &path)
            .env("LD_PRELOAD", &lib)
            .env("XCACHE_CC_MEMO", &memo_path)
            .status()
            .unwrap();
        assert!(st.success(), "{tag}");
        (
            std::fs::read_to_string(&log).unwrap_or_default(),
            archives_in_part(&chain, &memo_path),
        )
    };
    let (ran, part) = run(
        "ar cq lib.a a.o && ar cq lib.a b.o && ar s lib.a",
        "in-order",
    );
    assert_eq!(ran, "", "both steps taken");
    assert_eq!(part, None);
    assert_eq!(std::fs::read(second.join("lib.a")).unwrap(), made);
    // Out of order: the index first runs (on nothing), then the first step is taken,
    // and the chain is left begun and not finished.
    let (ran, part) = run("ar s lib.a 2>/dev/null; ar cq lib.a a.o b.o", "reversed");
    assert_eq!(ran, "s lib.a\n");
    assert!(part.is_some());
    // The members in other batches: taken all the same.
    let (ran, part) = run("ar cq lib.a a.o b.o && ar s lib.a", "one-batch");
    assert_eq!(ran, "", "both steps taken");
    assert_eq!(part, None);
    assert_eq!(std::fs::read(second.join("lib.a")).unwrap(), made);
    // The members out of order: nothing is taken (the archive is there when the
    // batch with the first member comes).
    let (ran, part) = run(
        "ar cq lib.a b.o && ar cq lib.a a.o && ar s lib.a",
        "swapped",
    );
    assert_eq!(ran, "cq lib.a b.o\ncq lib.a a.o\ns lib.a\n");
    assert_eq!(part, None);
    // A batch taken, the rest never given: the index runs (over no archive), and
    // the chain is left begun and not finished.
    let (ran, part) = run("ar cq lib.a a.o; ar s lib.a 2>/dev/null; true", "cut");
    assert_eq!(ran, "s lib.a\n");
    assert!(part.is_some());
    // The archive already the first run's when the index comes, but the first step
    // was never taken: the index runs.
    let script = format!("cp {} lib.a && ar s lib.a", first.join("lib.a").display());
    let (ran, part) = run(&script, "no-first-step");
    assert_eq!(ran, "s lib.a\n");
    assert_eq!(part, None);
    // A member changed after the first batch was taken: the last batch runs, and the
    // chain is left begun and not finished.
    let (ran, part) = run(
        "ar cq lib.a a.o && echo changed > b.o && ar cq lib.a b.o && ar s lib.a",
        "changed-between",
    );
    assert_eq!(ran, "cq lib.a b.o\ns lib.a\n");
    assert!(part.is_some());
    // Another member in the second run: nothing is taken, the archiver makes it.
    std::fs::write(second.join("b.o"), "member b, changed\n").unwrap();
    let (ran, part) = run("ar cq lib.a a.o b.o && ar s lib.a", "changed");
    assert_eq!(ran, "cq lib.a a.o b.o\ns lib.a\n");
    assert_eq!(part, None);
    assert_ne!(std::fs::read(second.join("lib.a")).unwrap(), made);
}

/// A record cut short (its count says more fields) is no compile.
#[test]
fn autocfgs_probe_leftovers_are_counted_not_named() {
    let a = [
        "gen.rs",
        "libautocfg_586730a5eb88ba99_0.rmeta",
        "autocfg_586730a5eb88ba99_1.ll",
    ];
    let b = [
        "autocfg_9773048dc12fae19_1.ll",
        "gen.rs",
        "libautocfg_9773048dc12fae19_0.rmeta",
    ];
    assert!(same_names(&a, &b));
    assert!(!same_names(&a, &b[..2]), "as many of them");
    assert!(!same_names(&["gen.rs"], &["other.rs"]));
    for not in [
        "libautocfg_586730a5eb88ba99_0.rlib",
        "autocfg_586730a5eb88ba99_0.rmeta",
        "libautocfg_586730a5eb88ba99_0.ll",
        "libautocfg_586730a5eb88ba9_0.rmeta",
        "libautocfg_586730a5eb88ba99_.rmeta",
        "libautocfg_586730a5eb88ba9z_0.rmeta",
    ] {
        assert!(!is_probe_leftover(not), "{not}");
    }
}

#[test]
fn a_cut_record_is_not_a_compile() {
    assert_eq!(
        record_fields(&fields(&["/ws", "cc", "-c"])).unwrap().len(),
        3
    );
    let cut = fields(&["/ws", "cc", "-c"]).replacen('3', "5", 1);
    assert!(record_fields(&cut).is_none());
}

/// The CPU a second run used: its own and its waited-for children's, from the
/// fields after the command name, whatever that name holds.
#[test]
fn cpu_is_read_past_a_name_with_spaces_and_parentheses() {
    let stat = "4242 (build (script) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                150 50 270 30 20 0 1 0 100 1000 200";
    assert_eq!(cpu_of_stat(stat, 100), Some(Duration::from_millis(5000)));
    assert_eq!(cpu_of_stat("4242 (cut) S 1", 100), None);
    assert_eq!(cpu_of_stat(stat, 0), None);
}

/// A process that works is seen to use CPU; one that waits is not.
#[test]
fn a_working_process_is_seen_to_use_cpu() {
    let mut busy = std::process::Command::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 30",
        ])
        .spawn()
        .unwrap();
    let mut idle = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    let mut used = Duration::ZERO;
    while used < Duration::from_millis(100) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        used = cpu_used(busy.id()).unwrap();
    }
    let idle_used = cpu_used(idle.id()).unwrap();
    for c in [&mut busy, &mut idle] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(used >= Duration::from_millis(100), "{used:?}");
    assert!(idle_used < Duration::from_millis(100), "{idle_used:?}");
}
