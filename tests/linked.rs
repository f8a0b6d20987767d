//! Units that link — proc-macros, build-script executables, binaries: restored in a
//! moved checkout, keyed on the linker and on every file the link read, never stale
//! when C code linked into them changes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::basic::EXPECTED_OUTPUT;
use crate::common::{Build, Report, Scratch, xcache_build};

const LIBS: &[&str] = &["generated:lib", "mid:lib", "util:lib"];
const LINKED: &[&str] = &[
    "app:bin",
    "build_script_build:build-script",
    "macros:proc-macro",
];

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn all_units() -> Vec<String> {
    names(&[LIBS, LINKED].concat())
}

/// A build that must succeed, with its report.
fn build(ws: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> (Build, Report) {
    let b = xcache_build(ws, store, args, env);
    b.assert_success();
    let r = Report::read(&ws.join("target"));
    (b, r)
}

/// The linked files of a build dir: the binary, the build script and the proc-macro.
fn linked_files(target: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["debug/deps", "debug/build"] {
        walk(&target.join(dir), &mut out);
    }
    out.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let stem_only = !name.contains('.');
        let executable = name.starts_with("app-") || name.starts_with("build_script_build-");
        (executable && stem_only) || (name.starts_with("libmacros-") && name.ends_with(".so"))
    });
    // A build-script executable the cache put a shim in front of (to replay its runs)
    // is compared by the real executable behind the shim.
    for p in &mut out {
        let real = PathBuf::from(format!("{}.xcache-real", p.display()));
        if real.is_file() {
            *p = real;
        }
    }
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn linked_units_hit_in_a_moved_checkout_and_match_an_uncached_build() {
    let s = Scratch::new();
    let ws1 = s.checkout("basic-workspace", "ws1");
    let (b1, r) = build(&ws1, &s.store(), &[], &[]);
    assert_eq!(r.with_outcome("miss"), all_units());
    assert_eq!(b1.run("app"), EXPECTED_OUTPUT);

    // Another checkout, an empty target dir, the same store: every unit is restored,
    // the build script restored from the cache ran (it generated `words`), and the
    // restored proc-macro expanded (`answer`, `widget`).
    let ws2 = s.checkout("basic-workspace", "elsewhere/deeper/ws2");
    let (b2, r) = build(&ws2, &s.store(), &[], &[]);
    assert_eq!(r.with_outcome("hit"), all_units());
    assert!(r.with_outcome("miss").is_empty());
    assert_eq!(b2.run("app"), EXPECTED_OUTPUT);
    for kind in ["lib", "proc-macro", "build-script", "bin"] {
        let units = if kind == "lib" { 3 } else { 1 };
        assert_eq!(r.0["summary"]["by_kind"][kind]["units"], units, "{kind}");
        assert_eq!(r.0["summary"]["by_kind"][kind]["hit"], units, "{kind}");
    }

    // The same bytes as a build without the cache (which passes the same path
    // remapping) in a third place, executable, and free of any checkout path.
    let ws3 = s.checkout("basic-workspace", "third/ws3");
    let (_, r) = build(&ws3, &s.store(), &[], &[("XCACHE_DISABLE", "1")]);
    assert_eq!(r.summary("hits"), 0);
    let restored = linked_files(&ws2.join("target"));
    let uncached = linked_files(&ws3.join("target"));
    assert_eq!(restored.len(), 3, "{restored:?}");
    for (a, b) in restored.iter().zip(&uncached) {
        assert_eq!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".xcache-real", ""),
            b.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".xcache-real", "")
        );
        let bytes = std::fs::read(a).unwrap();
        assert!(
            bytes == std::fs::read(b).unwrap(),
            "{} differs",
            a.display()
        );
        let mode = std::fs::metadata(a).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} is not executable", a.display());
        for root in [&ws1, &ws2] {
            let root = root.to_str().unwrap().as_bytes();
            assert!(!contains(&bytes, root), "{} names a checkout", a.display());
        }
    }

    // A dependent compiled against the restored proc-macro in yet another checkout.
    let ws4 = s.checkout("basic-workspace", "ws4");
    let mid = ws4.join("mid/src/lib.rs");
    let text = std::fs::read_to_string(&mid).unwrap();
    std::fs::write(&mid, format!("{text}\npub fn unused_addition() {{}}\n")).unwrap();
    let (b4, r) = build(&ws4, &s.store(), &[], &[]);
    assert_eq!(r.with_outcome("miss"), names(&["app:bin", "mid:lib"]));
    assert_eq!(b4.run("app"), EXPECTED_OUTPUT);
}

/// The host triple, from `rustc -vV`.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap()
}

#[test]
fn explicit_host_target_is_cached_too() {
    let s = Scratch::new();
    let host = host();
    let args = ["--target", host.as_str()];
    let ws1 = s.checkout("basic-workspace", "ws1");
    let (b1, r) = build(&ws1, &s.store(), &args, &[]);
    assert_eq!(r.with_outcome("miss"), all_units());
    assert!(
        b1.executable("app")
            .starts_with(ws1.join("target").join(&host))
    );
    assert_eq!(b1.run("app"), EXPECTED_OUTPUT);

    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    let (b2, r) = build(&ws2, &s.store(), &args, &[]);
    assert_eq!(r.with_outcome("hit"), all_units());
    assert_eq!(b2.run("app"), EXPECTED_OUTPUT);
    assert!(
        std::fs::read(b1.executable("app")).unwrap()
            == std::fs::read(b2.executable("app")).unwrap()
    );
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `cc` as found on PATH now.
fn real_cc() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join("cc"))
        .find(|p| p.is_file())
        .expect("cc on PATH")
}

/// The libraries that neither link nor use the proc-macro.
const NOT_LINKED_OR_EXPANDED: [&str; 2] = ["generated:lib", "util:lib"];

#[test]
fn another_linker_misses_the_linked_units_and_the_proc_macros_dependents() {
    let s = Scratch::new();
    let ws1 = s.checkout("basic-workspace", "ws1");
    build(&ws1, &s.store(), &[], &[]);
    let cc = real_cc();

    // Another `cc` first on PATH: nothing on any command line changed, yet what links
    // is another program.
    let shim_dir = s.path("shim-bin");
    script(
        &shim_dir.join("cc"),
        &format!("# another C compiler driver\nexec {} \"$@\"", cc.display()),
    );
    let path = format!("{}:{}", shim_dir.display(), std::env::var("PATH").unwrap());
    // `mid` misses too: its dependents know the proc-macro by the entry key that built
    // it, and that names the linker.
    let ws2 = s.checkout("basic-workspace", "ws2");
    let (b, r) = build(&ws2, &s.store(), &[], &[("PATH", &path)]);
    assert_eq!(r.with_outcome("hit"), NOT_LINKED_OR_EXPANDED);
    assert_eq!(
        r.with_outcome("miss"),
        names(&[LINKED, &["mid:lib"]].concat())
    );
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);

    // `-C linker=` a script at the same path, changed in between: the same arguments
    // everywhere, another linker.
    // rustc picks the linker flavour from the name: `…-cc` is a C compiler driver.
    let linker = s.path("tools/wrapped-cc");
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        host().to_uppercase().replace('-', "_")
    );
    script(&linker, &format!("exec {} \"$@\"", cc.display()));
    let ws3 = s.checkout("basic-workspace", "ws3");
    let (_, r) = build(&ws3, &s.store(), &[], &[(&var, linker.to_str().unwrap())]);
    assert_eq!(
        r.with_outcome("miss"),
        all_units(),
        "-C linker is an argument of every unit"
    );
    script(
        &linker,
        &format!("# version 2\nexec {} \"$@\"", cc.display()),
    );
    let ws4 = s.checkout("basic-workspace", "ws4");
    let (b, r) = build(&ws4, &s.store(), &[], &[(&var, linker.to_str().unwrap())]);
    assert_eq!(r.with_outcome("hit"), NOT_LINKED_OR_EXPANDED);
    assert_eq!(
        r.with_outcome("miss"),
        names(&[LINKED, &["mid:lib"]].concat())
    );
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);

    // A link argument: every unit's arguments changed, and the binary with them.
    let ws5 = s.checkout("basic-workspace", "ws5");
    let (b, r) = build(
        &ws5,
        &s.store(),
        &[],
        &[("RUSTFLAGS", "-C link-arg=-Wl,--build-id=none")],
    );
    assert_eq!(r.with_outcome("miss"), all_units());
    assert_eq!(b.run("app"), EXPECTED_OUTPUT);
    assert!(
        std::fs::read(b.executable("app")).unwrap()
            != std::fs::read(ws1.join("target/debug/app")).unwrap()
    );
}

#[test]
fn a_binary_embedding_its_checkout_path_is_bound_to_that_path() {
    let s = Scratch::new();
    let main_rs = "fn main() {\n    println!(\"{} dir={}\", mid::summary(), env!(\"CARGO_MANIFEST_DIR\"));\n}\n";
    let ws = s.checkout("basic-workspace", "ws");
    std::fs::write(ws.join("app/src/main.rs"), main_rs).unwrap();
    let (b, r) = build(&ws, &s.store(), &[], &[]);
    // Stored, under a key that holds the checkout's real path.
    assert_eq!(r.unit("app")["outcome"], "miss");
    assert!(b.run("app").contains(ws.to_str().unwrap()));
    let bound_key = r.unit("app")["key"].clone();

    // The same checkout, its target dir emptied: restored, and still right.
    std::fs::remove_dir_all(ws.join("target")).unwrap();
    let (b, r) = build(&ws, &s.store(), &[], &[]);
    assert_eq!(r.unit("app")["outcome"], "hit");
    assert_eq!(r.unit("app")["key"], bound_key);
    assert!(
        b.run("app")
            .contains(&format!("dir={}", ws.join("app").display()))
    );

    // Another checkout of the same sources: the bound entry is not for it. The binary
    // names the new path, and its own entry is bound to that one.
    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    std::fs::write(ws2.join("app/src/main.rs"), main_rs).unwrap();
    let (b, r) = build(&ws2, &s.store(), &[], &[]);
    assert_eq!(r.unit("app")["outcome"], "miss");
    assert_ne!(r.unit("app")["key"], bound_key);
    let out = b.run("app");
    assert!(
        out.contains(&format!("dir={}", ws2.join("app").display())),
        "{out}"
    );
    assert!(!out.contains(ws.to_str().unwrap()), "{out}");
    // Units that embed nothing still hit across the move.
    assert_eq!(r.unit("mid")["outcome"], "hit");
}

/// `package crate:kind` -> outcome (the fixture has two build scripts).
fn outcomes(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r.0["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {}:{}={}",
                u["package"].as_str().unwrap(),
                u["crate_name"].as_str().unwrap(),
                u["kind"].as_str().unwrap(),
                u["outcome"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn c_code_linked_into_a_binary_is_never_stale() {
    let s = Scratch::new();
    let n1 = s.checkout("native-link", "n1");
    let (b1, r) = build(&n1, &s.store(), &[], &[]);
    // Five compiled units and the two build-script runs.
    assert_eq!(r.summary("misses"), 7, "{:?}", outcomes(&r));
    assert_eq!(b1.run("capp"), "c-value=7 extra=100\n");

    let all_hit = [
        "capp build_script_build:build-script-run=hit",
        "capp build_script_build:build-script=hit",
        "capp capp:bin=hit",
        "cprint build_script_build:build-script-run=hit",
        "cprint build_script_build:build-script=hit",
        "cprint cprint:lib=hit",
        "wrap wrap:lib=hit",
    ];
    let n2 = s.checkout("native-link", "elsewhere/n2");
    let (b2, r) = build(&n2, &s.store(), &[], &[]);
    assert_eq!(outcomes(&r), all_hit);
    assert_eq!(b2.run("capp"), "c-value=7 extra=100\n");
    assert!(
        std::fs::read(b1.executable("capp")).unwrap()
            == std::fs::read(b2.executable("capp")).unwrap()
    );

    // The C code of a library two levels down: `cprint` bundles a new archive, but
    // `wrap` compiles to the same bytes (the archive is not part of `cprint`'s crate
    // hash), so the binary's direct dependencies are unchanged. Only the files the link
    // read tell the binary apart.
    let n3 = s.checkout("native-link", "n3");
    edit(&n3.join("cprint/csrc/cprint.c"), "return 7", "return 9");
    let (b3, r) = build(&n3, &s.store(), &[], &[]);
    assert_eq!(
        outcomes(&r),
        [
            "capp build_script_build:build-script-run=hit",
            "capp build_script_build:build-script=hit",
            "capp capp:bin=miss",
            "cprint build_script_build:build-script-run=miss",
            "cprint build_script_build:build-script=hit",
            "cprint cprint:lib=miss",
            "wrap wrap:lib=hit",
        ]
    );
    assert_eq!(b3.run("capp"), "c-value=9 extra=100\n");

    // The C code of the binary's own `-l static=extra`.
    let n4 = s.checkout("native-link", "n4");
    edit(&n4.join("capp/csrc/extra.c"), "return 100", "return 101");
    let (b4, r) = build(&n4, &s.store(), &[], &[]);
    assert_eq!(
        outcomes(&r),
        [
            "capp build_script_build:build-script-run=miss",
            "capp build_script_build:build-script=hit",
            "capp capp:bin=miss",
            "cprint build_script_build:build-script-run=hit",
            "cprint build_script_build:build-script=hit",
            "cprint cprint:lib=hit",
            "wrap wrap:lib=hit",
        ]
    );
    assert_eq!(b4.run("capp"), "c-value=7 extra=101\n");

    // And back: the store kept every variant.
    let n5 = s.checkout("native-link", "n5");
    let (b5, r) = build(&n5, &s.store(), &[], &[]);
    assert_eq!(outcomes(&r), all_hit);
    assert_eq!(b5.run("capp"), "c-value=7 extra=100\n");
}

#[test]
fn c_code_behind_lto_is_never_stale() {
    // With LTO rustc links the bundled C objects from a temporary copy of `cprint`'s
    // rlib; the copy's original is the input.
    let s = Scratch::new();
    let env = [("CARGO_PROFILE_RELEASE_LTO", "true")];
    let n1 = s.checkout("native-link", "n1");
    let (b1, _) = build(&n1, &s.store(), &["--release"], &env);
    assert_eq!(b1.run("capp"), "c-value=7 extra=100\n");
    let n2 = s.checkout("native-link", "n2");
    edit(&n2.join("cprint/csrc/cprint.c"), "return 7", "return 9");
    let (b2, r) = build(&n2, &s.store(), &["--release"], &env);
    assert!(
        outcomes(&r).contains(&"capp capp:bin=miss".to_string()),
        "{:?}",
        outcomes(&r)
    );
    assert_eq!(b2.run("capp"), "c-value=9 extra=100\n");
    let n3 = s.checkout("native-link", "n3");
    let (b3, r) = build(&n3, &s.store(), &["--release"], &env);
    // Five compiled units and the two build-script runs.
    assert_eq!(r.summary("hits"), 7, "{:?}", outcomes(&r));
    assert_eq!(b3.run("capp"), "c-value=7 extra=100\n");
}

#[test]
fn test_harnesses_hit_in_a_moved_checkout() {
    let s = Scratch::new();
    let args = ["--workspace", "--tests"];
    let ws1 = s.checkout("basic-workspace", "ws1");
    let (b1, r) = build(&ws1, &s.store(), &args, &[]);
    let tests = r.0["summary"]["by_kind"]["test"]["units"].as_u64().unwrap();
    // One harness per library and binary target.
    assert_eq!(tests, 5, "{:?}", r.outcomes());
    assert_eq!(r.summary("misses"), r.summary("units"));

    let ws2 = s.checkout("basic-workspace", "elsewhere/ws2");
    let (b2, r) = build(&ws2, &s.store(), &args, &[]);
    // `generated`'s library and its test harness read `env!("OUT_DIR")`, which only
    // names the file they include: they hit too.
    assert_eq!(r.summary("hits"), r.summary("units"));
    assert_eq!(r.0["summary"]["by_kind"]["test"]["hit"], tests);
    // A restored harness runs, and is the one the cold build linked.
    for b in [&b1, &b2] {
        let out = Command::new(b.executable("util")).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("test result: ok. 0 passed"));
    }
    assert!(
        std::fs::read(b1.executable("util")).unwrap()
            == std::fs::read(b2.executable("util")).unwrap()
    );
}

/// On a machine that remembers no identity (a new CI runner: an empty private
/// directory), the front-end identifies the compiler and the default linker while cargo
/// starts, under the same memos the compiles look for: each identity is remembered once.
/// A linker request of the front-end's that differed from the compiles' (another `PATH`,
/// sysroot or driver) would leave a second linker memo; a wrong guess at the compiler
/// cargo hands the wrappers, a third compiler memo (rustup's proxy, the toolchain's own
/// `rustc`, and the guess).
#[test]
fn a_new_machine_identifies_its_compiler_and_linker_once() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let private = tempfile::tempdir().unwrap();
    let runtime = private.path().to_string_lossy().into_owned();
    let (_, r) = build(&ws, &s.store(), &[], &[("XDG_RUNTIME_DIR", &runtime)]);
    assert_eq!(r.with_outcome("miss").len(), all_units().len());
    let memos = |sub: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(private.path().join("xcache/v1").join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock") && !n.starts_with("cargo-"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(memos("linkers").len(), 1, "{:?}", memos("linkers"));
    let compilers = memos("compilers");
    assert!((1..=2).contains(&compilers.len()), "{compilers:?}");
}
