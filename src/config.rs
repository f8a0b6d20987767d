//! Settings, resolved once from flags, environment and defaults. This is the only
//! module that reads the process environment; everything else receives a config.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::errors::CliError;

/// Environment variables this program reads (the book's reference lists them).
pub mod vars {
    /// The local store directory.
    pub const DIR: &str = "XCACHE_DIR";
    /// Set by `cargo xcache build` for its wrappers: where to append unit events.
    pub const EVENTS: &str = "XCACHE_EVENTS";
    /// `1` turns the cache off: the wrapper only compiles (and still reports).
    pub const DISABLE: &str = "XCACHE_DISABLE";
}

/// A snapshot of the process environment, taken once.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    path: Option<OsString>,
}

impl Env {
    /// Reads the process environment. Variables whose names or values are not UTF-8
    /// are left out (no key or setting here uses such a variable).
    pub fn capture() -> Env {
        let mut vars = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                vars.insert(k, v);
            }
        }
        Env {
            vars,
            path: std::env::var_os("PATH"),
        }
    }

    /// For tests: an environment made of the given pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn path_var(&self) -> Option<&OsString> {
        self.path.as_ref()
    }

    fn is_true(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "yes" | "on"))
    }
}

/// The store directory: `XCACHE_DIR`, else `$XDG_CACHE_HOME/xcache`, else
/// `~/.cache/xcache`.
pub fn store_dir(env: &Env) -> Option<PathBuf> {
    if let Some(d) = env.get(vars::DIR) {
        return Some(PathBuf::from(d));
    }
    if let Some(x) = env.get("XDG_CACHE_HOME") {
        return Some(Path::new(x).join("xcache"));
    }
    env.get("HOME")
        .map(|h| Path::new(h).join(".cache").join("xcache"))
}

/// `CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home(env: &Env) -> Option<PathBuf> {
    env.get("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".cargo")))
}

/// What one wrapper invocation needs to know.
#[derive(Clone, Debug)]
pub struct WrapperConfig {
    pub store_dir: Option<PathBuf>,
    pub events: Option<PathBuf>,
    pub disabled: bool,
    pub cwd: PathBuf,
    pub cargo_home: Option<PathBuf>,
    pub rustup_toolchain: Option<String>,
    pub env: Env,
}

impl WrapperConfig {
    pub fn resolve(env: Env, cwd: PathBuf) -> WrapperConfig {
        WrapperConfig {
            store_dir: store_dir(&env),
            events: env.get(vars::EVENTS).map(PathBuf::from),
            disabled: env.is_true(vars::DISABLE),
            cargo_home: cargo_home(&env),
            rustup_toolchain: env.get("RUSTUP_TOOLCHAIN").map(str::to_string),
            cwd,
            env,
        }
    }
}

/// What `cargo xcache build` needs to know.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    /// The cargo to run: `CARGO` (set when cargo runs a subcommand), else `cargo`.
    pub cargo: PathBuf,
    pub store_dir: PathBuf,
    /// A `RUSTC_WRAPPER` the user had set, which this build replaces.
    pub replaced_wrapper: Option<String>,
    pub disabled: bool,
    pub cargo_target_dir: Option<PathBuf>,
    pub cwd: PathBuf,
}

impl BuildConfig {
    pub fn resolve(env: &Env, cwd: PathBuf) -> Result<BuildConfig, CliError> {
        let store_dir = store_dir(env).ok_or_else(|| CliError::InvalidSetting {
            name: vars::DIR.into(),
            value: String::new(),
            message: "no cache directory: neither XCACHE_DIR, XDG_CACHE_HOME nor HOME is set; \
                      set XCACHE_DIR to a writable directory"
                .into(),
        })?;
        let store_dir = if store_dir.is_absolute() {
            store_dir
        } else {
            cwd.join(store_dir)
        };
        let replaced_wrapper = env
            .get("RUSTC_WRAPPER")
            .filter(|w| !w.contains("cargo-xcache"))
            .map(str::to_string);
        Ok(BuildConfig {
            cargo: env
                .get("CARGO")
                .map(PathBuf::from)
                .unwrap_or_else(|| "cargo".into()),
            store_dir,
            replaced_wrapper,
            disabled: env.is_true(vars::DISABLE),
            cargo_target_dir: env.get("CARGO_TARGET_DIR").map(|d| cwd.join(d)),
            cwd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_dir_precedence() {
        let e = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(store_dir(&e), Some(PathBuf::from("/h/.cache/xcache")));
        let e = Env::from_pairs([("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(store_dir(&e), Some(PathBuf::from("/x/xcache")));
        let e = Env::from_pairs([
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "/x"),
            ("XCACHE_DIR", "/d"),
        ]);
        assert_eq!(store_dir(&e), Some(PathBuf::from("/d")));
    }
}
