//! Builds the observer (`src/interpose/preload.c`, which includes its parts from
//! `src/interpose/preload/`): the small C library the wrapper preloads into compiles
//! and build-script runs to learn what they read; and the
//! aliasing library (`src/interpose/alias.c`) of a build script's path check. The
//! libraries' bytes are embedded in the executable (`src/interpose/mod.rs`).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (source, name) in [
        ("src/interpose/preload.c", "libxcache_observe.so"),
        ("src/interpose/alias.c", "libxcache_alias.so"),
    ] {
        println!("cargo::rerun-if-changed={source}");
        // The observer's parts, which preload.c includes (cargo scans a directory whole).
        let parts = source.trim_end_matches(".c");
        if std::path::Path::new(parts).is_dir() {
            println!("cargo::rerun-if-changed={parts}");
        }
        let so = out.join(name);
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
            // Observation is Linux-only; elsewhere nothing is cached that needs it.
            std::fs::write(&so, b"").expect("writing a placeholder library");
            continue;
        }
        let compiler = cc::Build::new().pic(true).get_compiler();
        let status = compiler
            .to_command()
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&so)
            .arg(source)
            .arg("-ldl")
            .status()
            .unwrap_or_else(|e| panic!("running the C compiler for {source}: {e}"));
        assert!(
            status.success(),
            "building {source} failed ({status}); a C compiler (cc) is needed to build cargo-xcache"
        );
    }
}
