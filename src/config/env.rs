//! The environment snapshot ([`Env`], taken once) and the names of the variables this
//! program reads ([`vars`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::parse::{BOOL_FORMS, COUNT_FORMS, invalid, parse_bool, parse_count};
use super::remote::{RemoteDefaults, Secret};
use crate::errors::CliError;

/// Environment variables whose values are credentials: never printed (see
/// [`super::RemoteSpec::scrub`]).
pub const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
];
/// Environment variables this program reads (the book's reference lists them).
pub mod vars {
    /// The local store directory.
    pub const DIR: &str = "XCACHE_DIR";
    /// Set by `cargo xcache build` for its wrappers: where to append unit events.
    pub const EVENTS: &str = "XCACHE_EVENTS";
    /// `1` turns the cache off: the wrapper only compiles (and still reports).
    pub const DISABLE: &str = "XCACHE_DISABLE";
    /// `1`: compile units cargo asks to build with `-C incremental` without it, so they
    /// can be stored under the unit hashes cargo uses in incremental builds (see the
    /// book's `incremental` section).
    pub const DROP_INCREMENTAL: &str = "XCACHE_DROP_INCREMENTAL";
    /// The remote store URI.
    pub const REMOTE: &str = "XCACHE_REMOTE";
    /// A REAPI Execution service (`grpc://HOST:PORT?instance=NAME`): library compiles
    /// that miss the cache are sent to its workers (remote execution).
    pub const EXECUTOR: &str = "XCACHE_EXECUTOR";
    /// How long one remote compile may take, the server's queue included, before it is
    /// given up and the unit compiled locally (`10m` by default, at most `10m`).
    pub const EXECUTOR_TIMEOUT: &str = "XCACHE_EXECUTOR_TIMEOUT";
    /// How many of the compiles that could go to the workers run here at once (a count,
    /// or `auto` for this machine's cores; 0 by default: every one is sent).
    pub const EXECUTOR_LOCAL: &str = "XCACHE_EXECUTOR_LOCAL";
    /// How long a compile may wait in the executor's queue for a worker, while no
    /// compile of its platform has been taken in this build.
    pub const EXECUTOR_QUEUE_WAIT: &str = "XCACHE_EXECUTOR_QUEUE_WAIT";
    /// How a compile sent to the executor gets its compiler: `ship` (the default) sends
    /// this machine's toolchain through the CAS with it, `installed` asks for a worker
    /// that has the same toolchain installed (`xcache-compiler`).
    pub const EXECUTOR_TOOLCHAIN: &str = "XCACHE_EXECUTOR_TOOLCHAIN";
    /// The share of remote results (`0` to `1`, or a percentage: `10%`) that are also
    /// compiled here and compared; a difference warns and gives the executor up for the
    /// rest of the build.
    pub const EXECUTOR_CHECK: &str = "XCACHE_EXECUTOR_CHECK";
    /// Whether a compile sent while no worker is known to serve its platform is also
    /// compiled here at once, the first result standing: `on` (the default) or `off`.
    pub const EXECUTOR_HEDGE: &str = "XCACHE_EXECUTOR_HEDGE";
    /// `1`: read the remote, never write it.
    pub const READ_ONLY: &str = "XCACHE_READ_ONLY";
    /// Set by `cargo xcache build` for its wrappers: `1` means the front-end uploads
    /// new entries in the background, so wrappers do not.
    pub const DEFER_UPLOAD: &str = "XCACHE_DEFER_UPLOAD";
    /// Set by `cargo xcache build` for its wrappers: a file listing the prediction keys
    /// the remote index does not know, whose units need not be looked up one by one.
    pub const PREFETCH_ABSENT: &str = "XCACHE_PREFETCH_ABSENT";
    /// Set by `cargo xcache build` for its wrappers: the file that records whether the
    /// remote answered (so a remote that is down is given up once per build).
    pub const REMOTE_STATE: &str = "XCACHE_REMOTE_STATE";
    /// Set by `cargo xcache build` for its wrappers: the directory of the files that
    /// wrappers storing after cargo was let go hold locked (`wrapper::wait_all`).
    pub const PENDING: &str = "XCACHE_PENDING";
    /// `0`: wrappers store their entries before cargo goes on (`1`, the default, lets
    /// cargo go on first).
    pub const BACKGROUND_STORE: &str = "XCACHE_BACKGROUND_STORE";
    /// `0` turns target-dir seeding off (units are still restored by the wrapper).
    pub const SEED: &str = "XCACHE_SEED";
    /// Set by `cargo xcache warm` for its wrappers: the directories (one a line) of the
    /// packages whose sources are placeholders; their units are never stored.
    pub const PLACEHOLDERS: &str = "XCACHE_PLACEHOLDERS";
    /// `0` turns the caching of build-script runs off (build-script executables are
    /// still cached; they are just not given the shim that replays runs).
    pub const BUILD_RUNS: &str = "XCACHE_BUILD_RUNS";
    /// Set by `cargo xcache verify` for its wrappers: the percentage of hits to compile
    /// again without the cache and compare (1 to 100).
    pub const VERIFY: &str = "XCACHE_VERIFY";
    /// How many transfers to and from the remote run at once.
    pub const REMOTE_JOBS: &str = "XCACHE_REMOTE_JOBS";
    /// How long one remote request may stall before the remote is given up for the
    /// build (`2s` by default; uploads get five times as long).
    pub const REMOTE_TIMEOUT: &str = "XCACHE_REMOTE_TIMEOUT";
    /// A token for a `grpc://` (REAPI) server that asks for one: sent with every
    /// request as `authorization: Bearer TOKEN` (or in the header `auth_header=`
    /// names), never printed.
    pub const REMOTE_TOKEN: &str = "XCACHE_REMOTE_TOKEN";
    /// The size the local store is kept under (`10G`, `unlimited`).
    pub const CACHE_SIZE: &str = "XCACHE_CACHE_SIZE";
    /// The path of a private key (`cargo xcache keygen`): what a build writes is signed.
    pub const SIGNING_KEY: &str = "XCACHE_SIGNING_KEY";
    /// Public keys, comma-separated: only what one of them signed is used.
    pub const TRUSTED_KEYS: &str = "XCACHE_TRUSTED_KEYS";
    /// Variables (names, or prefixes ending in `*`) units that read the environment
    /// whole are not keyed on (`observe::whole_env`).
    pub const ENV_IGNORE: &str = "XCACHE_ENV_IGNORE";
    /// `1`: paths in artifacts stay the machine's own (no remapping); a unit then hits
    /// only where its checkout, target dir and `CARGO_HOME` have the same paths.
    pub const REAL_PATHS: &str = "XCACHE_REAL_PATHS";
    /// GitHub Actions' job summary file: the build's Markdown summary is appended to it.
    pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
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

    /// This environment with `vars` set (what a tool sets before it runs cargo).
    pub fn with(&self, vars: &[(String, String)]) -> Env {
        let mut env = self.clone();
        for (k, v) in vars {
            env.vars.insert(k.clone(), v.clone());
        }
        env
    }

    pub fn path_var(&self) -> Option<&OsString> {
        self.path.as_ref()
    }

    /// The cargo to run: `CARGO` (set when cargo runs a subcommand), else `cargo`.
    pub fn cargo(&self) -> PathBuf {
        self.get("CARGO")
            .map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
    }

    /// Values a remote URI may leave out.
    pub fn remote_defaults(&self) -> RemoteDefaults {
        RemoteDefaults {
            aws_endpoint: self
                .get("AWS_ENDPOINT_URL_S3")
                .or(self.get("AWS_ENDPOINT_URL"))
                .map(str::to_string),
            aws_region: self
                .get("AWS_REGION")
                .or(self.get("AWS_DEFAULT_REGION"))
                .map(str::to_string),
            azure_account: self.get("AZURE_STORAGE_ACCOUNT").map(str::to_string),
            azure_key: self
                .get("AZURE_STORAGE_KEY")
                .or(self.get("AZURE_STORAGE_ACCOUNT_KEY"))
                .map(|k| Secret(k.to_string())),
            timeout: self.get(vars::REMOTE_TIMEOUT).map(str::to_string),
            token: self.get(vars::REMOTE_TOKEN).map(|t| Secret(t.to_string())),
            secrets: SECRET_VARS
                .iter()
                .chain(&[vars::REMOTE_TOKEN])
                .filter_map(|v| self.get(v))
                .filter(|v| v.len() >= 3)
                .map(|v| Secret(v.to_string()))
                .collect(),
        }
    }

    /// A switch: `None` when unset (or empty), an error naming the variable when its
    /// value is not one [`parse_bool`] understands.
    pub fn switch(&self, name: &str) -> Result<Option<bool>, CliError> {
        self.get(name)
            .map(|v| parse_bool(v).map_err(|_| invalid(name, v, BOOL_FORMS)))
            .transpose()
    }

    /// A count of at least 1, or an error naming the variable.
    pub fn count(&self, name: &str) -> Result<Option<usize>, CliError> {
        self.get(name)
            .map(|v| parse_count(v).map_err(|_| invalid(name, v, COUNT_FORMS)))
            .transpose()
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

/// Patterns from `XCACHE_ENV_IGNORE`: a name, or a prefix ending in `*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvIgnore(Vec<String>);

impl EnvIgnore {
    /// Parses a comma-separated list; an entry that is not a variable name (letters,
    /// digits, `_`), optionally ending in `*`, is an error saying which.
    pub fn parse(value: &str) -> Result<EnvIgnore, String> {
        let mut out = Vec::new();
        for raw in value.split(',') {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let body = p.strip_suffix('*').unwrap_or(p);
            if body.is_empty() || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`{p}` is not a variable name or a prefix ending in `*` \
                     (letters, digits and `_`, comma-separated: `RUNNER_*,HOSTNAME`)"
                ));
            }
            out.push(p.to_string());
        }
        out.sort();
        out.dedup();
        Ok(EnvIgnore(out))
    }

    /// The list the environment `env` gives (empty when unset or not understood: the
    /// front-end refuses a value it does not understand before any unit runs).
    pub fn from_env(env: &BTreeMap<String, String>) -> EnvIgnore {
        env.get(vars::ENV_IGNORE)
            .and_then(|v| EnvIgnore::parse(v).ok())
            .unwrap_or_default()
    }

    /// The patterns, sorted, without repeats.
    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether a pattern names `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        })
    }
}
