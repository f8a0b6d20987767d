//! Tests of parsing rustc command lines and of what a parsed one says.

use std::path::Path;

use super::{CrateKind, RustcInvocation, parse_rustc_args};
use crate::reason::Uncacheable;

fn parse(s: &str) -> RustcInvocation {
    let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    parse_rustc_args(&args)
}

const LIB: &str = "--crate-name dep --edition=2024 dep/src/lib.rs --error-format=json \
    --json=diagnostic-rendered-ansi,artifacts,future-incompat --crate-type lib \
    --emit=dep-info,metadata,link -C embed-bitcode=no -C debuginfo=2 \
    -C metadata=05bd352a9f70e55a -C extra-filename=-9517d73897b5767e \
    --out-dir /t/debug/deps -L dependency=/t/debug/deps --extern itoa=/t/debug/deps/libitoa-1.rmeta";

#[test]
fn parses_a_cargo_lib_invocation() {
    let inv = parse(LIB);
    assert_eq!(inv.uncacheable, None);
    assert!(!inv.is_query);
    assert_eq!(inv.kind(), CrateKind::Lib);
    assert_eq!(inv.stem(), "dep-9517d73897b5767e");
    assert_eq!(inv.externs.len(), 1);
    let outs: Vec<_> = inv.lib_outputs().into_iter().map(|(r, _)| r).collect();
    assert_eq!(outs, ["rlib", "rmeta", "dep-info"]);
    let key = inv.key_args(|p| p.display().to_string());
    assert!(key.contains(&"--json=artifacts,future-incompat".to_string()));
    assert!(!key.iter().any(|a| a.contains("/t/debug")), "{key:?}");
}

#[test]
fn classifies_units() {
    let inc = parse(&format!("{LIB} -C incremental=/t/inc"));
    assert!(inc.incremental);
    assert_eq!(inc.uncacheable, None);
    assert!(
        !inc.key_args(|p| p.display().to_string())
            .iter()
            .any(|a| a.contains("incremental"))
    );
    let linked = |s: &str| s.replace("--emit=dep-info,metadata,link", "--emit=dep-info,link");
    let pm = parse(&linked(
        &LIB.replace("--crate-type lib", "--crate-type proc-macro"),
    ));
    assert_eq!(pm.uncacheable, None);
    assert!(pm.links());
    let bs = parse(&linked(
        &LIB.replace("--crate-type lib", "--crate-type bin")
            .replace("--crate-name dep", "--crate-name build_script_build"),
    ));
    assert_eq!(bs.kind(), CrateKind::BuildScript);
    assert_eq!(bs.uncacheable, None);
    let unknown = parse(&format!("{LIB} --frobnicate"));
    assert_eq!(unknown.uncacheable, Some(Uncacheable::UnknownFlag));
    let test = parse(&linked(&format!("{LIB} --test")));
    assert_eq!(test.kind(), CrateKind::Test);
    assert_eq!(test.uncacheable, None);
    let asm = parse(&LIB.replace("--emit=dep-info,metadata,link", "--emit=asm"));
    assert_eq!(asm.uncacheable, Some(Uncacheable::UnsupportedEmit));
    let split = parse(&linked(&format!("{LIB} --test -C split-debuginfo=packed")));
    assert_eq!(
        split.uncacheable,
        Some(Uncacheable::UnsupportedCodegenOption)
    );
    let cdylib = parse(&LIB.replace("--crate-type lib", "--crate-type cdylib"));
    assert_eq!(cdylib.uncacheable, Some(Uncacheable::Cdylib));
}

#[test]
fn incremental_can_be_dropped() {
    let mut inv = parse(&format!(
        "{LIB} -C incremental=/t/inc -Cincremental=/t/i2 -C opt-level=1"
    ));
    assert!(inv.incremental);
    let before = inv.key_args(|p| p.display().to_string());
    inv.drop_incremental();
    assert!(!inv.incremental);
    assert!(
        !inv.args.iter().any(|a| a.contains("incremental")),
        "{:?}",
        inv.args
    );
    assert!(
        inv.args
            .ends_with(&["-C".to_string(), "opt-level=1".to_string()])
    );
    let reparsed = parse_rustc_args(&inv.args);
    assert_eq!(reparsed.key_args(|p| p.display().to_string()), before);
}

#[test]
fn linked_outputs_are_named_as_on_linux() {
    let bin = parse(
        &LIB.replace("--crate-type lib", "--crate-type bin")
            .replace("--emit=dep-info,metadata,link", "--emit=dep-info,link"),
    );
    let outs = bin.outputs();
    assert_eq!(
        outs[0].path,
        Path::new("/t/debug/deps/dep-9517d73897b5767e")
    );
    assert!(outs[0].executable);
    assert_eq!(outs[1].role, "dep-info");
    let pm = parse(
        &LIB.replace("--crate-type lib", "--crate-type proc-macro")
            .replace("--emit=dep-info,metadata,link", "--emit=dep-info,link"),
    );
    assert_eq!(
        pm.outputs()[0].path,
        Path::new("/t/debug/deps/libdep-9517d73897b5767e.so")
    );
    // `cargo check` of a binary writes metadata only: no linker involved.
    let check = parse(
        &LIB.replace("--crate-type lib", "--crate-type bin")
            .replace("--emit=dep-info,metadata,link", "--emit=dep-info,metadata"),
    );
    assert!(!check.links());
    assert_eq!(check.uncacheable, None);
    assert_eq!(check.outputs()[0].role, "rmeta");
}

#[test]
fn a_non_ascii_short_flag_is_an_unknown_flag() {
    let inv = parse(&format!("{LIB} -é"));
    assert_eq!(inv.uncacheable, Some(Uncacheable::UnknownFlag));
}

#[test]
fn probes_are_queries() {
    assert!(parse("-vV").is_query);
    assert!(parse("- --crate-name ___ --print=file-names --crate-type lib").is_query);
}

#[test]
fn static_libs_are_recorded() {
    let inv = parse(&format!(
        "{LIB} -l static=foo -l dylib=bar -l static:-bundle=baz"
    ));
    assert_eq!(inv.static_libs.len(), 1);
    assert_eq!(inv.static_libs[0].name, "foo");
    let kinds: Vec<&str> = inv.link_libs.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["static", "dylib", "static"]);
    let plain = parse(&format!("{LIB} -l z -C link-arg=-Wl,-O1"));
    assert_eq!(plain.link_libs[0].kind, "dylib");
    assert_eq!(plain.link_libs[0].name, "z");
    assert_eq!(plain.link_args, ["-Wl,-O1"]);
}

#[test]
fn link_options_beyond_cc_are_named() {
    assert_eq!(parse(LIB).link_option_beyond_cc(), None);
    // Options that do not choose the link.
    assert_eq!(
        parse(&format!(
            "{LIB} -C opt-level=3 -C link-dead-code -Z unstable-options"
        ))
        .link_option_beyond_cc(),
        None
    );
    for (extra, named) in [
        ("-C linker=clang", "-C linker=clang"),
        ("-Clink-arg=-fuse-ld=mold", "-C link-arg=-fuse-ld=mold"),
        ("-C link-args=-Wl,-O1", "-C link-args=-Wl,-O1"),
        (
            "-Clink-self-contained=+linker",
            "-C link-self-contained=+linker",
        ),
        (
            "--codegen=linker-flavor=gnu-lld-cc",
            "-C linker-flavor=gnu-lld-cc",
        ),
        ("-Z linker-features=-lld", "-Z linker-features=-lld"),
        ("-Zpre-link-arg=x.o", "-Z pre-link-arg=x.o"),
    ] {
        assert_eq!(
            parse(&format!("{LIB} {extra}")).link_option_beyond_cc(),
            Some(named.to_string()),
            "{extra}"
        );
    }
}
