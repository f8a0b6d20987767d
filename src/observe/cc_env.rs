//! The `cc` crate's copy of the environment: which variables its code can consult.
//! Main functions: [`CcSnapshot::consults`], [`CcSnapshot::of_reader`].
//!
//! From 1.6.0 the `cc` crate copies the whole environment once
//! (`cc::build_env::EnvSnapshot::capture`, through `std::env::vars_os`) and afterwards
//! looks variables up in that copy, never through `getenv`. The observer sees the walk,
//! not the lookups, so such a run would be keyed on every variable, and a second machine
//! (another `HOME`, `USER`, runner name) would run every C build script again.
//!
//! The copy goes to three places, read in each version's sources (see the book's
//! observation page for the audit):
//! - cc's own lookups, by name: cargo's variables for build scripts (`TARGET`, `HOST`,
//!   `OPT_LEVEL`, `DEBUG`, `OUT_DIR`, `CARGO_CFG_*`, `CARGO_ENCODED_RUSTFLAGS`, the
//!   `RUSTC_*` and other `CARGO_*` names its sources spell), its tool and flag variables
//!   in their four spellings (`CC_<target>`, `CC_<target_with_underscores>`,
//!   `HOST_CC`/`TARGET_CC`, `CC`; likewise `CXX`, `AR`, `RANLIB`, `NVCC`, `CFLAGS`,
//!   `CXXFLAGS`, `ARFLAGS`, `RANLIBFLAGS`, `CXXSTDLIB`, `CXXSTDLIB_STATIC`), its own
//!   switches (`CC_*`, `CRATE_CC_NO_DEFAULTS`, `CROSS_COMPILE`), `PATH`, and the SDK
//!   variables of Apple, WASI and pauthtest targets (`SDKROOT`, `*_DEPLOYMENT_TARGET`,
//!   `WASI_SDK_PATH`, `WASI_SYSROOT`, `WASM_MUSL_SYSROOT`, `PAUTHTEST_*`);
//! - the programs it starts, whose environment it sets to the copy: each is observed,
//!   and what it reads is keyed as it reads it;
//! - a hash and an equality test that only decide when a cached probe can be reused.
//!
//! So a walk by that function is keyed on the variables [`CcSnapshot::consults`] names
//! (those set, and which of them are set), not on every variable. Only where the
//! audit holds:
//! - the walking executable embeds the sources of crates.io's `cc` (its panic
//!   locations name `registry/src/<index>/cc-<version>/src/build_env.rs`), and every
//!   version it names is one audited ([`AUDITED`]); a vendored, forked or newer `cc` is
//!   taken to read every variable;
//! - it does not hold `cc::Build::try_flags_from_environment`, which looks up a
//!   variable the build script names;
//! - the target is not an MSVC one (there cc asks the `find-msvc-tools` crate, which
//!   consults the Visual Studio variables through the same copy).

use std::collections::BTreeSet;

/// What a set of names records when it was made under this model (`only=cc1`).
pub const MODEL: &str = "cc1";

/// The versions whose lookups were read: each one's sources, every use of the copy.
pub const AUDITED: &[&str] = &[
    "1.6.0", "1.7.0", "1.8.0", "1.9.0", "1.10.0", "1.11.0", "1.11.1", "1.11.2", "1.11.3",
];

/// The function whose walk of the environment is the copy.
pub const CAPTURE: &str = "cc::build_env::EnvSnapshot>::capture";

/// The function that makes cc consult a variable its caller names.
pub const NAMED_BY_CALLER: &str = "cc::Build>::try_flags_from_environment";

/// The variables cc's tool and flag lookups consult, each in four spellings
/// (`<base>_<target>`, `<base>_<target_u>`, `HOST_<base>` or `TARGET_<base>`, `<base>`).
const TOOL_BASES: &[&str] = &[
    "CC",
    "CXX",
    "AR",
    "RANLIB",
    "NVCC",
    "CFLAGS",
    "CXXFLAGS",
    "ARFLAGS",
    "RANLIBFLAGS",
    "CXXSTDLIB",
    "CXXSTDLIB_STATIC",
];

/// Variables cc consults by their exact name.
const SINGLES: &[&str] = &[
    "TARGET",
    "HOST",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
    "OUT_DIR",
    "NUM_JOBS",
    "PATH",
    "CRATE_CC_NO_DEFAULTS",
    "CROSS_COMPILE",
    "SDKROOT",
    "WASI_SDK_PATH",
    "WASI_SYSROOT",
    "WASM_MUSL_SYSROOT",
];

/// Cargo's and rustc's variables cc's sources name (every `"CARGO…"` and `"RUSTC…"`
/// string in them; none is built from parts).
const CARGO_NAMES: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "CARGO_MANIFEST_DIR",
    "CARGO_PKG_NAME",
    "CARGO_TRIM_PATHS_REMAP",
    "CARGO_TRIM_PATHS_SCOPE",
    "RUSTC",
    "RUSTC_BOOTSTRAP",
    "RUSTC_LINKER",
    "RUSTC_WRAPPER",
];

/// Prefixes of the names cc consults (the target's cfg values, its own switches, the
/// pauthtest target's).
const PREFIXES: &[&str] = &["CARGO_CFG_", "CC_", "PAUTHTEST_"];

/// The model of the copy cc 1.6.0 to 1.11.3 takes.
pub struct CcSnapshot;

impl CcSnapshot {
    /// Whether cc's code may consult the variable `name` (a superset: every spelling of
    /// every base, whatever the target).
    pub fn consults(name: &str) -> bool {
        if SINGLES.contains(&name)
            || CARGO_NAMES.contains(&name)
            || PREFIXES.iter().any(|p| name.starts_with(p))
            || name.ends_with("_DEPLOYMENT_TARGET")
        {
            return true;
        }
        TOOL_BASES.iter().any(|b| {
            name == *b
                || name
                    .strip_prefix(b)
                    .is_some_and(|rest| rest.starts_with('_'))
                || name
                    .strip_prefix("HOST_")
                    .or_else(|| name.strip_prefix("TARGET_"))
                    .is_some_and(|rest| rest == *b)
        })
    }

    /// Whether the run's target is one the model covers (not MSVC), from the variables
    /// cargo gives a build script.
    pub fn covers_target(env: &std::collections::BTreeMap<String, String>) -> bool {
        let msvc = |v: Option<&String>| v.is_some_and(|v| v.contains("msvc"));
        !msvc(env.get("TARGET")) && env.get("CARGO_CFG_TARGET_ENV").is_none_or(|e| e != "msvc")
    }

    /// Whether an executable holds only audited cc code: the cc versions its embedded
    /// source paths name (at least one, every one audited), and no function that
    /// consults a variable its caller names (`has_named_by_caller`: its symbol table
    /// holds [`NAMED_BY_CALLER`]).
    /// The executable is streamed from `r` in pieces (each read with the tail of the
    /// one before, longer than any path looked for), never whole in memory. `false`
    /// when it cannot be read.
    pub fn of_reader(mut r: impl std::io::Read, has_named_by_caller: bool) -> bool {
        const PIECE: usize = 1 << 20;
        const OVERLAP: usize = 64 << 10;
        let mut versions = BTreeSet::new();
        let mut buf: Vec<u8> = Vec::with_capacity(PIECE + OVERLAP);
        let mut chunk = vec![0u8; PIECE];
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            // What is kept of the last piece was searched already: only paths that end
            // in the new bytes are read (back into the kept ones).
            let seen = buf.len();
            buf.extend_from_slice(&chunk[..n]);
            versions.extend(embedded_versions_from(&buf, seen));
            let keep = buf.len().min(OVERLAP);
            buf.drain(..buf.len() - keep);
        }
        !versions.is_empty()
            && versions.iter().all(|v| AUDITED.contains(&v.as_str()))
            && !has_named_by_caller
    }
}

/// The versions of crates.io's `cc` whose `build_env.rs` an executable names
/// (`…/registry/src/<index>/cc-<version>/src/build_env.rs`).
/// Only paths whose end lies past `from` (the bytes before it are context: a path is
/// read back into them).
fn embedded_versions_from(data: &[u8], from: usize) -> BTreeSet<String> {
    const TAIL: &[u8] = b"/src/build_env.rs";
    let mut out = BTreeSet::new();
    let mut at = from.saturating_sub(TAIL.len() - 1);
    while let Some(i) = memchr::memmem::find(&data[at..], TAIL) {
        let end = at + i;
        at = end + TAIL.len();
        // Back to the path's start: printable bytes.
        let start = data[..end]
            .iter()
            .rposition(|&b| !(0x21..0x7f).contains(&b))
            .map_or(0, |p| p + 1);
        let Ok(path) = std::str::from_utf8(&data[start..end]) else {
            continue;
        };
        // `<…>/registry/src/<index>/cc-<version>`
        let mut parts = path.rsplit('/');
        let dir = parts.next().unwrap_or_default();
        let from_registry = matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(_), Some("src"), Some("registry"))
        );
        match (dir.strip_prefix("cc-"), from_registry) {
            (Some(version), true) => {
                out.insert(version.to_string());
            }
            // cc from elsewhere (vendored, a fork): a version not known.
            (_, false) if dir == "cc" || dir.starts_with("cc-") => {
                out.insert(String::from("?"));
            }
            // Some other crate's `build_env.rs`.
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consults_cc_families_and_nothing_else() {
        for name in [
            "CC",
            "CC_x86_64-unknown-linux-gnu",
            "CC_x86_64_unknown_linux_gnu",
            "HOST_CC",
            "TARGET_CFLAGS",
            "CFLAGS_x86_64-unknown-linux-gnu",
            "CXXSTDLIB_STATIC",
            "CC_FORCE_DISABLE",
            "CC_MASM_ASM",
            "CRATE_CC_NO_DEFAULTS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_CFG_TARGET_FEATURE",
            "CARGO_TRIM_PATHS_SCOPE",
            "RUSTC_WRAPPER",
            "PATH",
            "MACOSX_DEPLOYMENT_TARGET",
            "PAUTHTEST_SYSROOT",
            "TARGET",
            "HOST",
            "OUT_DIR",
        ] {
            assert!(CcSnapshot::consults(name), "{name}");
        }
        for name in [
            "HOME",
            "USER",
            "LOGNAME",
            "XDG_CACHE_HOME",
            "HOSTNAME",
            "RUNNER_NAME",
            "GITHUB_RUN_ID",
            "CCACHE_DIR",
            "ARCH",
            "HOST_CCX",
            "PATHEXT",
            "SHLVL",
            "CARGO_NET_OFFLINE",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTC_LOG",
        ] {
            assert!(!CcSnapshot::consults(name), "{name}");
        }
    }

    #[test]
    fn only_audited_crates_io_versions_count() {
        let bin = |paths: &[&str]| -> Vec<u8> {
            let mut v = b"\x00\x01junk".to_vec();
            for p in paths {
                v.extend_from_slice(p.as_bytes());
                v.push(0);
            }
            v
        };
        let reg = "/xcache/cargo-home/registry/src/index.crates.io-1949cf8c6b5b557f";
        let ok = bin(&[&format!("{reg}/cc-1.11.3/src/build_env.rs")]);
        assert!(CcSnapshot::of_reader(&ok[..], false));
        assert!(!CcSnapshot::of_reader(&ok[..], true));
        let newer = bin(&[&format!("{reg}/cc-1.12.0/src/build_env.rs")]);
        assert!(!CcSnapshot::of_reader(&newer[..], false));
        let two = bin(&[
            &format!("{reg}/cc-1.11.3/src/build_env.rs"),
            &format!("{reg}/cc-1.99.0/src/build_env.rs"),
        ]);
        assert!(!CcSnapshot::of_reader(&two[..], false));
        let vendored = bin(&["/ws/vendor/cc/src/build_env.rs"]);
        assert!(!CcSnapshot::of_reader(&vendored[..], false));
        assert!(!CcSnapshot::of_reader(&b"nothing here"[..], false));
    }

    /// A path across the border of two pieces is read once, whole; one in what a piece
    /// keeps of the last is not read again cut short (which would name an unknown cc).
    #[test]
    fn paths_across_the_pieces_of_a_stream_are_read_whole_once() {
        let reg = "/xcache/cargo-home/registry/src/index.crates.io-1949cf8c6b5b557f";
        let path = format!("{reg}/cc-1.11.3/src/build_env.rs");
        for at in [
            (1 << 20) - 30,
            (1 << 20) - path.len(),
            (1 << 20) + 5,
            (2 << 20) - (64 << 10) - 10,
            (2 << 20) - (64 << 10) + 3,
            // The kept tail of the second piece starts inside the path: only its end
            // would be seen again.
            (2 << 20) - (64 << 10) - (path.len() - 30),
        ] {
            let mut data = vec![0u8; 3 << 20];
            data[at..at + path.len()].copy_from_slice(path.as_bytes());
            assert!(CcSnapshot::of_reader(&data[..], false), "at {at}");
            let versions = embedded_versions_from(&data, 0);
            assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["1.11.3"]);
        }
    }
}
