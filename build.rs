//! Builds the observer (`src/observe/preload.c`): the small C library the wrapper
//! preloads into compiles and build-script runs to learn what they read. The library's
//! bytes are embedded in the executable (`src/observe/mod.rs`).

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=src/observe/preload.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libxcache_observe.so");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        // Observation is Linux-only; elsewhere nothing is cached that needs it.
        std::fs::write(&so, b"").expect("writing a placeholder observer");
        return;
    }
    let compiler = cc::Build::new().pic(true).get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&so)
        .arg("src/observe/preload.c")
        .arg("-ldl")
        .status()
        .expect("running the C compiler for src/observe/preload.c");
    assert!(
        status.success(),
        "building src/observe/preload.c failed ({status}); a C compiler (cc) is needed to build cargo-xcache"
    );
}
