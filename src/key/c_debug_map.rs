//! Path remapping for the C and C++ a build script compiles. Main functions:
//! [`debug_map_env`], [`compiler_takes_debug_map`].
//!
//! rustc gets `--remap-path-prefix` for every machine root, so Rust outputs name no
//! machine path. A build script that compiles C with the `cc` crate (or `cmake`, which
//! asks `cc` for its flags) would put the run's `OUT_DIR`, the package's directory in
//! `CARGO_HOME` and the include directories into the objects' debug information: the
//! run's outputs then name the target dir and `CARGO_HOME`, and it is bound to both
//! (another checkout, target dir or machine runs it again). Recent `cc` versions turn
//! cargo's `trim-paths` variables into prefix maps; older ones (many lockfiles pin
//! them), `cmake` builds and hand-written compiler calls do not.
//!
//! So the run gets `-fdebug-prefix-map=<root>=<remapped>` for each root through what
//! every version of `cc` reads: `CFLAGS` and `CXXFLAGS` in whichever spellings are set
//! (`CFLAGS_<target>`, `TARGET_CFLAGS`, …), the user's flags first and kept, or the
//! target's spelling, which only `cc` reads, when none is. Only debug information is remapped: what a C
//! program prints of `__FILE__` stays what plain cargo gives, and a run whose outputs
//! still name a root (through `__FILE__`, say) stays bound to it. The flags are added
//! only when the compilers the run would use accept them (asked once per compiler
//! identity); the key says whether they were.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::PathMap;

/// The flag variables of C and C++ builds, without their target spellings.
const FLAG_VARS: [&str; 2] = ["CFLAGS", "CXXFLAGS"];

/// The `-fdebug-prefix-map` flags for `pm`'s roots, the least specific first: GCC and
/// Clang let the last matching map win, so a root inside another (the target dir in the
/// workspace) is remapped as itself. A root that cannot travel safely is left out (its
/// paths stay, and bind the run): see `carries_safely`.
pub fn debug_map_flags(pm: &PathMap) -> Vec<String> {
    pm.roots()
        .iter()
        .rev()
        .filter(|r| carries_safely(&r.real))
        .map(|r| format!("-fdebug-prefix-map={}={}", r.real, r.remap))
        .collect()
}

/// What the maps of [`debug_map_flags`] mean, as keys take them: each root that is
/// mapped by its token, with what it is mapped to, in the order of the tokens. The
/// flags themselves name the real roots, ordered by how specific they are (their
/// lengths), and the same maps on a machine whose checkout, target dir or `CARGO_HOME`
/// is longer or shorter would key another run; the objects they give are the same
/// wherever the roots are and however they nest (each path takes its most specific
/// root's remap either way).
pub fn debug_map_meaning(pm: &PathMap) -> Vec<String> {
    let mut maps: Vec<String> = pm
        .roots()
        .iter()
        .filter(|r| carries_safely(&r.real))
        .map(|r| format!("-fdebug-prefix-map={}={}", r.kind.token(), r.remap))
        .collect();
    maps.sort();
    maps
}

/// Whether a root can be written into a flag variable unchanged on every road it takes:
/// `cc` splits the variable on whitespace, the flag's own syntax splits at `=`, a
/// `configure` script expands `$CFLAGS` unquoted (splitting words and matching `*?[`
/// against files), and `make` expands `$` in what it imports from the environment. A
/// path with any character outside letters, digits and `/._-+,@:~%` is left out rather
/// than risk a build that fails, or compiles another file, because of the cache.
fn carries_safely(path: &str) -> bool {
    !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_alphanumeric() || "/._-+,@:~%".contains(c))
}

/// The spellings of a flag variable `cc` reads for `target`, in its order of preference.
fn spellings(base: &str, target: &str, host: &str) -> Vec<String> {
    let kind = if target == host { "HOST" } else { "TARGET" };
    vec![
        format!("{base}_{target}"),
        format!("{base}_{}", target.replace('-', "_")),
        format!("{kind}_{base}"),
        base.to_string(),
    ]
}

/// The variables to set for the run: each flag variable of `bases` (`CFLAGS`,
/// `CXXFLAGS`) that is set, in any spelling, with `flags` after the user's. When no
/// spelling is set, the target's (`CFLAGS_x86_64_unknown_linux_gnu`), which `cc` reads
/// first and nothing else does: a plain `CFLAGS` would also reach `configure` scripts
/// and makefiles a build script runs, which then drop their own defaults (autoconf's
/// `-g -O2`).
pub fn debug_map_env(
    vars: &BTreeMap<String, String>,
    flags: &[String],
    bases: &[&str],
) -> Vec<(String, String)> {
    if flags.is_empty() {
        return Vec::new();
    }
    let target = vars.get("TARGET").map_or("", String::as_str);
    let host = vars.get("HOST").map_or(target, String::as_str);
    let ours = flags.join(" ");
    let mut out = Vec::new();
    for base in FLAG_VARS.into_iter().filter(|b| bases.contains(b)) {
        let names = spellings(base, target, host);
        let set: Vec<&String> = names.iter().filter(|n| vars.contains_key(*n)).collect();
        if set.is_empty() {
            out.push((names[1].clone(), ours.clone()));
        }
        for n in set {
            let theirs = vars[n].trim_end();
            let value = if theirs.is_empty() {
                ours.clone()
            } else {
                format!("{theirs} {ours}")
            };
            out.push((n.clone(), value));
        }
    }
    out
}

/// The C and C++ compiler commands the `cc` crate would run, each with the flag
/// variable it reads: the first set spelling of `CC`/`CXX` (wrappers such as
/// `ccache cc` included), else `cc` and `c++`.
pub fn compiler_commands(vars: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let target = vars.get("TARGET").map_or("", String::as_str);
    let host = vars.get("HOST").map_or(target, String::as_str);
    [("CC", "cc", "CFLAGS"), ("CXX", "c++", "CXXFLAGS")]
        .into_iter()
        .map(|(base, default, flags)| {
            let command = spellings(base, target, host)
                .iter()
                .find_map(|n| vars.get(n).filter(|v| !v.trim().is_empty()))
                .map_or_else(|| default.to_string(), |v| v.trim().to_string());
            (flags, command)
        })
        .collect()
}

/// Whether `command` (a compiler, maybe behind a wrapper) accepts `-fdebug-prefix-map`:
/// it preprocesses an empty file with the flag. `identity` names the compiler
/// (`key::tool_identity` of its first word); the answer is remembered under it in
/// `memo_dir` (the private directory), so each compiler is asked once.
pub fn compiler_takes_debug_map(
    command: &str,
    identity: &str,
    cwd: &Path,
    memo_dir: Option<&Path>,
) -> bool {
    if identity == "absent" {
        return false;
    }
    let memo = memo_dir.map(|d| {
        let h = blake3::hash(format!("{identity}\0{command}").as_bytes());
        d.join(format!("debug-map-{}", &h.to_hex()[..32]))
    });
    if let Some(answer) = memo.as_ref().and_then(|m| fs::read_to_string(m).ok()) {
        return answer == "yes";
    }
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let takes = Command::new(program)
        .args(words)
        .args([
            "-fdebug-prefix-map=/xcache-probe=/xcache",
            "-E",
            "-x",
            "c",
            "/dev/null",
        ])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if let Some(m) = memo {
        let _ = crate::fsx::write_atomic(&m, if takes { b"yes" } else { b"no" });
    }
    takes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The maps mean the same wherever the roots are: a checkout, target dir and
    /// `CARGO_HOME` longer, shorter or as long as one another, nested or apart, give one
    /// text for the key, while the flags themselves follow the roots' specificity.
    #[test]
    fn what_the_maps_mean_holds_no_machine_path_and_no_order_of_lengths() {
        let layouts = [
            ("/w", "/w/target", "/home/u/.cargo"),
            ("/home/someone/long/checkout", "/t", "/c"),
            ("/c1", "/t1/much/longer/target", "/h1"),
            ("/aa", "/bb", "/cc"),
            ("/a/b", "/a/b/c/target", "/a/b/c/target/home"),
        ];
        let mut meanings = Vec::new();
        for (ws, target, home) in layouts {
            let pm = PathMap::new(
                Path::new(ws),
                Some(Path::new(target)),
                Some(Path::new(home)),
            );
            let meaning = debug_map_meaning(&pm);
            assert!(
                meaning
                    .iter()
                    .all(|m| m.starts_with("-fdebug-prefix-map=@@xcache:")),
                "{meaning:?}"
            );
            // The real flags put the most specific root last (GCC's last match wins).
            let flags = debug_map_flags(&pm);
            assert!(flags.last().unwrap().contains(pm.roots()[0].real.as_str()));
            meanings.push(meaning);
        }
        assert!(meanings.windows(2).all(|w| w[0] == w[1]), "{meanings:?}");
        assert_eq!(meanings[0].len(), 3);
        // A root that cannot travel (a space) is not mapped, and the key says so.
        let pm = PathMap::new(
            Path::new("/w s"),
            Some(Path::new("/t")),
            Some(Path::new("/h")),
        );
        assert_eq!(debug_map_meaning(&pm).len(), 2);
    }

    #[test]
    fn flags_go_after_the_users_in_every_spelling_they_set() {
        let flags = vec!["-fdebug-prefix-map=/a=/xcache/ws".to_string()];
        let none = vars(&[("TARGET", "x86_64-unknown-linux-gnu")]);
        assert_eq!(
            debug_map_env(&none, &flags, &FLAG_VARS),
            [
                (
                    "CFLAGS_x86_64_unknown_linux_gnu".to_string(),
                    flags[0].clone()
                ),
                (
                    "CXXFLAGS_x86_64_unknown_linux_gnu".to_string(),
                    flags[0].clone()
                ),
            ]
        );
        assert_eq!(
            debug_map_env(&none, &flags, &["CFLAGS"]),
            [(
                "CFLAGS_x86_64_unknown_linux_gnu".to_string(),
                flags[0].clone()
            )]
        );
        let theirs = vars(&[
            ("TARGET", "x86_64-unknown-linux-gnu"),
            ("HOST", "x86_64-unknown-linux-gnu"),
            ("CFLAGS_x86_64_unknown_linux_gnu", "-O1 -DX=1"),
            ("CFLAGS", "-Wall"),
            ("HOST_CXXFLAGS", "-std=c++17 "),
        ]);
        let got = debug_map_env(&theirs, &flags, &FLAG_VARS);
        let f = &flags[0];
        assert_eq!(
            got,
            [
                (
                    "CFLAGS_x86_64_unknown_linux_gnu".to_string(),
                    format!("-O1 -DX=1 {f}")
                ),
                ("CFLAGS".to_string(), format!("-Wall {f}")),
                ("HOST_CXXFLAGS".to_string(), format!("-std=c++17 {f}")),
            ]
        );
        assert!(debug_map_env(&theirs, &[], &FLAG_VARS).is_empty());
    }

    #[test]
    fn the_innermost_root_is_mapped_last() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let pm = PathMap::new(&ws, Some(&ws.join("target")), Some(&d.path().join("home")));
        let flags = debug_map_flags(&pm);
        let w = ws.display();
        assert_eq!(flags.len(), 3, "{flags:?}");
        let ws_at = flags
            .iter()
            .position(|f| *f == format!("-fdebug-prefix-map={w}=/xcache/ws"))
            .unwrap();
        let target_at = flags
            .iter()
            .position(|f| *f == format!("-fdebug-prefix-map={w}/target=/xcache/target"))
            .unwrap();
        assert!(ws_at < target_at, "{flags:?}");
        let spaced = PathMap::new(Path::new("/a b/ws"), None, None);
        assert!(debug_map_flags(&spaced).is_empty());
    }

    /// Paths a shell, `make` or the flag syntax would change are left out; ordinary
    /// ones, non-ASCII letters included, are carried.
    #[test]
    fn roots_a_shell_or_make_would_change_are_left_out() {
        for hostile in [
            "/w/a=b", "/w/$HOME", "/w/$(rm)", "/w/`x`", "/w/a*", "/w/a?", "/w/[ab]", "/w/a;b",
            "/w/a'b", "/w/a\"b", "/w/a\\b", "/w/a\tb", "/w/a\nb", "/w/a|b", "/w/a&b", "/w/#x", "",
        ] {
            assert!(!carries_safely(hostile), "{hostile:?}");
        }
        for fine in [
            "/home/runner/work/app",
            "/w/a-b_c.d+e,f@g:h~i%j",
            "/w/Übung",
        ] {
            assert!(carries_safely(fine), "{fine:?}");
        }
    }

    #[test]
    fn compilers_named_in_any_spelling() {
        let v = vars(&[
            ("TARGET", "aarch64-unknown-linux-gnu"),
            ("HOST", "x86_64-unknown-linux-gnu"),
            ("TARGET_CC", "ccache aarch64-linux-gnu-gcc"),
            ("CC", "gcc"),
        ]);
        assert_eq!(
            compiler_commands(&v),
            [
                ("CFLAGS", "ccache aarch64-linux-gnu-gcc".to_string()),
                ("CXXFLAGS", "c++".to_string())
            ]
        );
    }

    #[test]
    fn a_compiler_that_refuses_the_flag_gets_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(!compiler_takes_debug_map(
            "false",
            "id-false",
            d.path(),
            Some(d.path())
        ));
        // Remembered under the identity: asked again, the memo answers.
        assert!(!compiler_takes_debug_map(
            "false",
            "id-false",
            d.path(),
            Some(d.path())
        ));
        // gcc, which every machine here has for `-sys` crates.
        assert!(compiler_takes_debug_map("cc", "id-cc", d.path(), None));
    }
}
