//! What cargo will give build scripts as `CARGO_ENCODED_RUSTFLAGS`, where that can be
//! told before cargo runs. Main function: [`encoded_rustflags`].
//!
//! cargo sets the variable for every build-script run (empty when there are no flags),
//! and scripts that probe the compiler (`autocfg`, `proc-macro2`, `anyhow`, …) read it.
//! A recorded run that read it can be seeded only if its value now is known: from
//! `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS` in the environment, or empty when nothing
//! else could set flags. Anything else that could (a cargo configuration file that
//! mentions `rustflags`, `--config`, `CARGO_BUILD_RUSTFLAGS`,
//! `CARGO_TARGET_<triple>_RUSTFLAGS`) leaves it unknown: such runs go to cargo, and the
//! wrapper judges them with the value cargo sets.

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
            || (k.starts_with("CARGO_TARGET_") && k.ends_with("_RUSTFLAGS"))
    });
    let configured = cargo_args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--config" || a.starts_with("--config=") || a.starts_with("-Z"));
    if set_elsewhere || configured {
        return None;
    }
    // A file that mentions rustflags, or that is there but cannot be read, may set them.
    let may_set = |p: &PathBuf| match std::fs::read_to_string(p) {
        Ok(text) => text.contains("rustflags"),
        Err(_) => p.exists(),
    };
    if config_files(cwd, cargo_home).iter().any(may_set) {
        return None;
    }
    Some(String::new())
}

/// Every file cargo reads its configuration from, for a cargo run in `cwd`.
fn config_files(cwd: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
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
        let at = |env: &Env, a: &[&str]| encoded_rustflags(env, &ws, Some(&home), &args(a));
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
        // What follows `--` is the program's.
        assert_eq!(at(&none, &["--", "--config"]), Some(String::new()));
        std::fs::write(ws.join(".cargo/config.toml"), "[build]\njobs = 2\n").unwrap();
        assert_eq!(at(&none, &[]), Some(String::new()));
        std::fs::write(home.join("config.toml"), "[build]\nrustflags = ['-g']\n").unwrap();
        assert_eq!(at(&none, &[]), None);
    }
}
