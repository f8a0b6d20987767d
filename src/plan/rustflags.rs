//! What cargo will give build scripts as `CARGO_ENCODED_RUSTFLAGS`, where that can be
//! told before cargo runs. Main function: [`encoded_rustflags`].
//!
//! cargo sets the variable for every build-script run (empty when there are no flags),
//! and scripts that probe the compiler (`autocfg`, `proc-macro2`, `anyhow`, …) read it.
//! A recorded run that read it can be seeded only if its value now is known: from
//! `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS` in the environment, or empty when nothing
//! else could set flags. Anything else that could (`--config`, `CARGO_BUILD_RUSTFLAGS`,
//! `CARGO_TARGET_<triple>_RUSTFLAGS`, a cargo configuration file with `build.rustflags`,
//! `host.rustflags`, `build.target`, flags for a `cfg(…)` or for the triple this build
//! compiles for, or one that cannot be read) leaves it unknown: such runs go to cargo,
//! and the wrapper judges them with the value cargo sets. Flags a file gives only other
//! triples (ripgrep's, for Windows and musl) do not reach this build.

use std::path::{Path, PathBuf};

use crate::config::Env;

/// The value cargo will set, if it can be told: `None` when the environment holds it
/// already or it cannot be known. `cwd` is where cargo runs (configuration files are
/// found from there up), `cargo_home` its home.
pub fn encoded_rustflags(
    env: &Env,
    cwd: &Path,
    cargo_home: Option<&Path>,
    cargo_args: &[String],
    host: Option<&str>,
) -> Option<String> {
    // Set but empty counts as set, as for cargo.
    if env.all().contains_key("CARGO_ENCODED_RUSTFLAGS") {
        return None;
    }
    if let Some(flags) = env.all().get("RUSTFLAGS") {
        return Some(flags.split_whitespace().collect::<Vec<_>>().join("\x1f"));
    }
    let set_elsewhere = env.all().keys().any(|k| {
        k == "CARGO_BUILD_RUSTFLAGS"
            || k == "CARGO_HOST_RUSTFLAGS"
            || (k.starts_with("CARGO_TARGET_") && k.ends_with("_RUSTFLAGS"))
    });
    // The triples this build compiles for: the host's, and the one `--target` or
    // `CARGO_BUILD_TARGET` names. Without the host's, no file's flags can be ruled out.
    let host = host?;
    let mut triples = vec![host.to_string()];
    triples.extend(env.all().get("CARGO_BUILD_TARGET").cloned());
    triples.extend(target_args(cargo_args));
    let args: Vec<&String> = cargo_args.iter().take_while(|a| *a != "--").collect();
    let configured = args.iter().enumerate().any(|(i, a)| {
        let unstable = match a.strip_prefix("-Z") {
            Some("") => args.get(i + 1).map(|s| s.as_str()),
            other => other,
        };
        a.as_str() == "--config"
            || a.starts_with("--config=")
            || unstable.is_some_and(|z| !NO_FLAGS_FEATURES.contains(&z))
    });
    if set_elsewhere || configured {
        return None;
    }
    // A file that may give this build flags, or that is there but cannot be read.
    let may_set = |p: &PathBuf| match std::fs::read_to_string(p) {
        Ok(text) => {
            let lower = text.to_ascii_lowercase();
            (lower.contains("rustflags") || lower.contains("include"))
                && gives_flags(&text, &triples)
        }
        Err(_) => p.exists(),
    };
    if config_files(cwd, cargo_home).iter().any(may_set) {
        return None;
    }
    Some(String::new())
}

/// The unstable features (`-Z <feature>`) known to leave every unit's flags as they
/// are: where cargo keeps units, how it locks them. Any other may (`-Zhost-config`,
/// `-Ztarget-applies-to-host`, …), and leaves the value unknown.
const NO_FLAGS_FEATURES: &[&str] = &["build-dir-new-layout", "fine-grain-locking"];

/// The triples `--target` names (`--target T`, `--target=T`; before `--`).
fn target_args(cargo_args: &[String]) -> Vec<String> {
    let args: Vec<&String> = cargo_args.iter().take_while(|a| *a != "--").collect();
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if let Some(t) = a.strip_prefix("--target=") {
            out.push(t.to_string());
        } else if *a == "--target"
            && let Some(t) = args.get(i + 1)
        {
            out.push(t.to_string());
        }
    }
    out
}

/// Whether a cargo configuration file (its text) may give a build compiling for
/// `triples` flags: `build.rustflags`, `host.rustflags`, `build.target` (which changes
/// the triple), flags for a `cfg(…)` expression or for one of `triples`, an `include` of
/// other files, an `[env]` variable named like the flags; or text that is not TOML.
/// Flags for other triples do not count.
fn gives_flags(text: &str, triples: &[String]) -> bool {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return true;
    };
    if doc.contains_key("include") {
        return true;
    }
    let table = |v: Option<&toml::Value>| v.and_then(toml::Value::as_table).cloned();
    if table(doc.get("env")).is_some_and(|e| {
        e.keys()
            .any(|k| k.to_ascii_uppercase().contains("RUSTFLAGS"))
    }) {
        return true;
    }
    let build = table(doc.get("build")).unwrap_or_default();
    if build.contains_key("rustflags") || build.contains_key("target") {
        return true;
    }
    if table(doc.get("host")).is_some_and(|h| h.contains_key("rustflags")) {
        return true;
    }
    table(doc.get("target")).is_some_and(|targets| {
        targets.iter().any(|(name, t)| {
            // A table keyed by something else than a triple (a `cfg(…)`, or a shape not
            // known here) counts if it names flags anywhere.
            let flags = t.as_table().is_none_or(|t| t.contains_key("rustflags"));
            flags && (name.starts_with("cfg(") || triples.iter().any(|x| x == name))
        })
    })
}

/// Every file cargo reads its configuration from, for a cargo run in `cwd`.
pub(super) fn config_files(cwd: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cwd.ancestors().map(|d| d.join(".cargo")).collect();
    dirs.extend(cargo_home.map(Path::to_path_buf));
    dirs.iter()
        .flat_map(|d| [d.join("config.toml"), d.join("config")])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_only_where_nothing_else_sets_flags() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let home = d.path().join("home");
        std::fs::create_dir_all(ws.join(".cargo")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let none = Env::from_pairs([]);
        let host = "x86_64-unknown-linux-gnu";
        let at =
            |env: &Env, a: &[&str]| encoded_rustflags(env, &ws, Some(&home), &args(a), Some(host));
        assert_eq!(at(&none, &[]), Some(String::new()));
        let rf = Env::from_pairs([("RUSTFLAGS", " -C  debuginfo=1 --cfg x ")]);
        assert_eq!(
            at(&rf, &[]).as_deref(),
            Some("-C\x1fdebuginfo=1\x1f--cfg\x1fx")
        );
        let enc = Env::from_pairs([("CARGO_ENCODED_RUSTFLAGS", "")]);
        assert_eq!(at(&enc, &[]), None, "already in the environment");
        let tgt = Env::from_pairs([("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-g")]);
        assert_eq!(at(&tgt, &[]), None);
        assert_eq!(at(&none, &["--config", "build.rustflags=['-g']"]), None);
        // Where cargo keeps units gives no unit flags; other unstable features may.
        assert_eq!(at(&none, &["-Zbuild-dir-new-layout"]), Some(String::new()));
        assert_eq!(
            at(&none, &["-Z", "build-dir-new-layout"]),
            Some(String::new())
        );
        assert_eq!(at(&none, &["-Zhost-config"]), None);
        assert_eq!(at(&none, &["-Z", "target-applies-to-host"]), None);
        // What follows `--` is the program's.
        assert_eq!(at(&none, &["--", "--config"]), Some(String::new()));
        std::fs::write(ws.join(".cargo/config.toml"), "[build]\njobs = 2\n").unwrap();
        assert_eq!(at(&none, &[]), Some(String::new()));
        // Flags for other triples only (ripgrep's file): this build's are still known.
        let others = "[target.x86_64-pc-windows-msvc]\nrustflags = ['-C', 'target-feature=+crt-static']\n\
                      [target.x86_64-unknown-linux-musl]\nrustflags = ['-g']\n";
        std::fs::write(ws.join(".cargo/config.toml"), others).unwrap();
        assert_eq!(at(&none, &[]), Some(String::new()));
        // … unless the build compiles for one of them, or the host is not known.
        assert_eq!(at(&none, &["--target", "x86_64-unknown-linux-musl"]), None);
        assert_eq!(at(&none, &["--target=x86_64-unknown-linux-musl"]), None);
        let musl = Env::from_pairs([("CARGO_BUILD_TARGET", "x86_64-unknown-linux-musl")]);
        assert_eq!(at(&musl, &[]), None);
        assert_eq!(
            encoded_rustflags(&none, &ws, Some(&home), &[], None),
            None,
            "without the host's triple"
        );
        // Flags for the host's triple, for a cfg, for the host, a target chosen by the
        // file, or a file that is not TOML: not known.
        for text in [
            "[target.x86_64-unknown-linux-gnu]\nrustflags = ['-g']\n",
            "[target.'cfg(unix)']\nrustflags = ['-g']\n",
            "[host]\nrustflags = ['-g']\n",
            "[build]\ntarget = 'x86_64-unknown-linux-musl'\n[target.x86_64-unknown-linux-musl]\nrustflags = []\n",
            "[target.x86_64-pc-windows-msvc\nrustflags = [",
            "include = ['more.toml']\n",
            "[env]\nCARGO_ENCODED_RUSTFLAGS = '-g'\n",
        ] {
            std::fs::write(ws.join(".cargo/config.toml"), text).unwrap();
            assert_eq!(at(&none, &[]), None, "{text}");
        }
        std::fs::write(ws.join(".cargo/config.toml"), "[build]\njobs = 2\n").unwrap();
        std::fs::write(home.join("config.toml"), "[build]\nrustflags = ['-g']\n").unwrap();
        assert_eq!(at(&none, &[]), None);
    }
}
