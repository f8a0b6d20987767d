//! The environment snapshot and the resolved configs.

use std::path::{Path, PathBuf};

use super::file::read_config_files;
use super::remote::RemoteSpec;

use super::env::{Env, cargo_home, store_dir, vars};
use super::store::StoreDir;
use crate::errors::CliError;

/// What one wrapper invocation needs to know.
#[derive(Clone, Debug)]
pub struct WrapperConfig {
    /// The local store and its policy. A setting that is not understood leaves it
    /// unusable (`StoreDir::problem`): the wrapper then compiles without the cache.
    pub store_dir: Option<StoreDir>,
    pub events: Option<PathBuf>,
    pub disabled: bool,
    /// `XCACHE_DROP_INCREMENTAL`.
    pub drop_incremental: bool,
    /// `XCACHE_REAL_PATHS`: artifacts keep this machine's paths, and every unit is bound
    /// to its roots.
    pub real_paths: bool,
    pub cwd: PathBuf,
    pub cargo_home: Option<PathBuf>,
    pub rustup_toolchain: Option<String>,
    /// The remote tier, if one is configured and its URI parses.
    pub remote: Option<RemoteSpec>,
    /// Why the configured remote cannot be used (reported as a warning).
    pub remote_error: Option<String>,
    /// `XCACHE_EXECUTOR`, when set and valid: where library compiles that miss go.
    pub executor: Option<ExecutorSpec>,
    /// Why `XCACHE_EXECUTOR` cannot be used (reported as a warning; compiles stay local).
    pub executor_error: Option<String>,
    pub read_only: bool,
    pub remote_state: Option<PathBuf>,
    pub defer_upload: bool,
    pub prefetch_absent: Option<PathBuf>,
    /// `XCACHE_PENDING`: a front-end waits for entries stored after cargo went on.
    pub pending: Option<PathBuf>,
    /// The unit belongs to a package `cargo xcache warm` laid out as placeholders.
    pub placeholder: bool,
    /// Build-script runs go through the cache (`XCACHE_BUILD_RUNS`, on unless `0`).
    pub build_runs: bool,
    /// `XCACHE_VERIFY` (set by `cargo xcache verify`): the percentage of hits compiled
    /// again without the cache and compared.
    pub verify: Option<usize>,
    pub env: Env,
}

impl WrapperConfig {
    /// The wrapper reads `XCACHE_REMOTE`/`XCACHE_READ_ONLY`, else the user's config
    /// file. (`cargo xcache build` resolves the workspace's `xcache.toml` too and passes
    /// the result down in those variables.)
    ///
    /// Fail closed: a switch, size or key that is not understood makes the store
    /// unusable for this invocation and turns the remote off; the unit compiles without
    /// the cache, with an `invalid-setting` warning that names the variable.
    pub fn resolve(env: Env, cwd: PathBuf) -> WrapperConfig {
        let files = read_config_files(None, &env);
        let (file_remote, file_read_only) = match &files {
            Ok(files) => (
                files.iter().find_map(|(_, f)| f.remote.clone()),
                files.iter().find_map(|(_, f)| f.read_only),
            ),
            Err(_) => (None, None),
        };
        let uri = env.get(vars::REMOTE).map(str::to_string).or(file_remote);
        let (remote, remote_error) = match (uri, files) {
            (_, Err(e)) => (None, Some(e.to_string())),
            (None, Ok(_)) => (None, None),
            (Some(uri), Ok(_)) => match RemoteSpec::parse(&uri, &env.remote_defaults()) {
                Ok(spec) => (Some(spec), None),
                Err(message) => (None, Some(format!("invalid {}: {message}", vars::REMOTE))),
            },
        };
        let mut problems: Vec<CliError> = Vec::new();
        let mut switch = |name: &str| match env.switch(name) {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let read_only = switch(vars::READ_ONLY);
        let defer_upload = switch(vars::DEFER_UPLOAD);
        let disabled = switch(vars::DISABLE);
        let drop_incremental = switch(vars::DROP_INCREMENTAL);
        let build_runs = switch(vars::BUILD_RUNS);
        let real_paths = switch(vars::REAL_PATHS);
        let verify = match env.count(vars::VERIFY) {
            Ok(v) => v.map(|p| p.min(100)),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let store_dir = store_dir(&env).map(|path| {
            match (problems.first(), StoreDir::resolve(&env, path.clone())) {
                (None, Ok(s)) => s,
                (Some(e), _) => StoreDir::unusable(path, e.to_string()),
                (None, Err(e)) => StoreDir::unusable(path, e.to_string()),
            }
        });
        let unusable = store_dir.as_ref().is_some_and(|s| s.problem.is_some());
        let (executor, executor_error) = match ExecutorSpec::from_env(&env) {
            Ok(e) => (e, None),
            Err(e) => (None, Some(e.to_string())),
        };
        WrapperConfig {
            executor: executor.filter(|_| !unusable),
            executor_error,
            // Fail closed: with a setting not understood, nothing is read or written.
            remote: remote.filter(|_| !unusable),
            remote_error,
            read_only: unusable || read_only == Some(true) || file_read_only.unwrap_or(false),
            remote_state: env.get(vars::REMOTE_STATE).map(PathBuf::from),
            defer_upload: defer_upload == Some(true),
            prefetch_absent: env.get(vars::PREFETCH_ABSENT).map(PathBuf::from),
            pending: env.get(vars::PENDING).map(PathBuf::from),
            store_dir,
            events: env.get(vars::EVENTS).map(PathBuf::from),
            disabled: disabled == Some(true),
            drop_incremental: drop_incremental == Some(true),
            real_paths: real_paths == Some(true),
            build_runs: build_runs != Some(false),
            verify,
            cargo_home: cargo_home(&env),
            rustup_toolchain: env.get("RUSTUP_TOOLCHAIN").map(str::to_string),
            placeholder: is_placeholder(&env),
            cwd,
            env,
        }
    }
}

/// Whether cargo's `CARGO_MANIFEST_DIR` for this unit is one `XCACHE_PLACEHOLDERS` names.
fn is_placeholder(env: &Env) -> bool {
    let (Some(list), Some(dir)) = (env.get(vars::PLACEHOLDERS), env.get("CARGO_MANIFEST_DIR"))
    else {
        return false;
    };
    let dir = Path::new(dir);
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    list.lines()
        .map(Path::new)
        .any(|p| p == dir || p == canonical)
}

/// Where remote compiles go: `XCACHE_EXECUTOR`, and how long each may take.
#[derive(Clone, Debug)]
pub struct ExecutorSpec {
    pub server: RemoteSpec,
    /// One compile's limit, the queue included (`XCACHE_EXECUTOR_TIMEOUT`).
    pub deadline: std::time::Duration,
    /// How long a compile may wait for a worker to take it while no compile of its
    /// platform has been taken in this build (`XCACHE_EXECUTOR_QUEUE_WAIT`).
    pub queue_wait: std::time::Duration,
    /// How many of the compiles that could go to the workers run here at once
    /// (`XCACHE_EXECUTOR_LOCAL`: a count, or `auto` for this machine's cores; 0, all
    /// sent, when unset).
    pub local: usize,
    /// How a compile gets its compiler on the worker (`XCACHE_EXECUTOR_TOOLCHAIN`).
    pub toolchain: ToolchainRoute,
    /// The share of remote results also compiled here and compared, in thousandths
    /// (`XCACHE_EXECUTOR_CHECK`; 0, none, when unset).
    pub check_per_mille: u16,
    /// A compile sent while no worker is known to serve its platform in this build is
    /// compiled here too, at once, and the first result stands (`XCACHE_EXECUTOR_HEDGE`,
    /// on unless `off`).
    pub hedge: bool,
}

/// How a compile sent to the executor gets its compiler (`XCACHE_EXECUTOR_TOOLCHAIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolchainRoute {
    /// This machine's toolchain goes with the action, through the CAS (once per
    /// toolchain and server): any worker of ours can run it.
    Ship,
    /// The action asks for a worker with the same toolchain installed
    /// (`xcache-compiler`, the compiler identity).
    Installed,
}

/// A share, `0` to `1` (`0.05`) or a percentage (`5%`), in thousandths.
pub fn parse_share(s: &str) -> Result<u16, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| {
        "expected a share: a number from 0 to 1 (`0.1`) or a percentage (`10%`)".to_string()
    })?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) || v.is_nan() {
        return Err("a share is from 0 to 1 (`0.1`), or from 0% to 100%".into());
    }
    Ok((v * 1000.0).round() as u16)
}

/// How long a remote compile may take unless `XCACHE_EXECUTOR_TIMEOUT` says otherwise:
/// a compile that waits in a busy farm's queue longer than this is done locally.
pub const DEFAULT_EXECUTOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a compile waits for a worker to take it, while no worker has taken one of
/// its platform in this build, unless `XCACHE_EXECUTOR_QUEUE_WAIT` says otherwise: a
/// farm with no worker for a platform costs this once per build.
pub const DEFAULT_EXECUTOR_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl ExecutorSpec {
    /// `XCACHE_EXECUTOR` (and `XCACHE_EXECUTOR_TIMEOUT`, `_QUEUE_WAIT`, `_LOCAL`, `_TOOLCHAIN`,
    /// `_CHECK`, `_HEDGE`), checked: `None` when unset; an
    /// error that names the variable when it is not a `grpc://`/`grpcs://` URI.
    pub fn from_env(env: &Env) -> Result<Option<ExecutorSpec>, CliError> {
        let Some(uri) = env.get(vars::EXECUTOR).filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let invalid = |message: String| CliError::InvalidSetting {
            name: vars::EXECUTOR.into(),
            // The value may hold credentials: show only its scheme.
            value: uri.split(':').next().unwrap_or("").to_string() + ":…",
            message,
        };
        let server = RemoteSpec::parse(uri, &env.remote_defaults()).map_err(invalid)?;
        if !matches!(server.kind, super::RemoteKind::Reapi { .. }) {
            return Err(invalid(
                "remote execution needs a REAPI Execution service; write \
                 grpc://HOST:PORT?instance=NAME (grpcs:// for TLS)"
                    .into(),
            ));
        }
        let duration = |name: &str, default| match env.get(name) {
            None => Ok(default),
            Some(t) => super::parse_timeout(t).map_err(|message| CliError::InvalidSetting {
                name: name.into(),
                value: t.to_string(),
                message,
            }),
        };
        let deadline = duration(vars::EXECUTOR_TIMEOUT, DEFAULT_EXECUTOR_TIMEOUT)?;
        let queue_wait = duration(vars::EXECUTOR_QUEUE_WAIT, DEFAULT_EXECUTOR_QUEUE_WAIT)?;
        let local = match env.get(vars::EXECUTOR_LOCAL) {
            None => 0,
            Some("auto") => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(v) => v.parse::<usize>().map_err(|_| CliError::InvalidSetting {
                name: vars::EXECUTOR_LOCAL.into(),
                value: v.to_string(),
                message: "expected how many compiles may run here at once (0 or more), or \
                          `auto` for this machine's cores"
                    .into(),
            })?,
        };
        let toolchain = match env.get(vars::EXECUTOR_TOOLCHAIN).map(str::trim) {
            None | Some("ship") => ToolchainRoute::Ship,
            Some("installed") => ToolchainRoute::Installed,
            Some(v) => {
                return Err(CliError::InvalidSetting {
                    name: vars::EXECUTOR_TOOLCHAIN.into(),
                    value: v.to_string(),
                    message: "expected `ship` (send this machine's toolchain with each \
                              compile) or `installed` (ask for a worker that has it)"
                        .into(),
                });
            }
        };
        let check_per_mille = match env.get(vars::EXECUTOR_CHECK) {
            None => 0,
            Some(v) => parse_share(v).map_err(|message| CliError::InvalidSetting {
                name: vars::EXECUTOR_CHECK.into(),
                value: v.to_string(),
                message,
            })?,
        };
        let hedge = match env.get(vars::EXECUTOR_HEDGE).map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => {
                return Err(CliError::InvalidSetting {
                    name: vars::EXECUTOR_HEDGE.into(),
                    value: v.to_string(),
                    message: "expected `on` (a compile no worker is known to take is compiled \
                              here too, the first result standing) or `off` (it waits for a \
                              worker, up to XCACHE_EXECUTOR_QUEUE_WAIT)"
                        .into(),
                });
            }
        };
        Ok(Some(ExecutorSpec {
            server,
            deadline,
            queue_wait,
            local,
            toolchain,
            check_per_mille,
            hedge,
        }))
    }
}

/// What `cargo xcache build` needs to know.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    /// The cargo to run: `CARGO` (set when cargo runs a subcommand), else `cargo`.
    pub cargo: PathBuf,
    /// The local store and its policy (size, signatures).
    pub store_dir: StoreDir,
    /// A `RUSTC_WRAPPER` the user had set, which this build replaces.
    pub replaced_wrapper: Option<String>,
    pub disabled: bool,
    pub cargo_target_dir: Option<PathBuf>,
    pub cwd: PathBuf,
    /// The remote tier (flag > `XCACHE_REMOTE` > workspace `xcache.toml` > user file).
    pub remote: Option<RemoteSpec>,
    /// The URI as given (it may hold credentials: only ever passed to the wrappers).
    pub remote_uri: Option<String>,
    pub read_only: bool,
    /// Seed the target dir before cargo starts (`XCACHE_SEED`, on by default).
    pub seed: bool,
    /// `XCACHE_BACKGROUND_STORE` (on unless `0`): wrappers let cargo go on before they
    /// store.
    pub background_store: bool,
    /// `XCACHE_REMOTE_JOBS` (a `--remote-jobs` flag wins over it).
    pub remote_jobs: Option<usize>,
    /// `cargo -V` of `cargo`, filled in once a store is open (seed records are keyed
    /// on it).
    pub cargo_version: String,
    /// `GITHUB_STEP_SUMMARY`: where the build appends its Markdown summary.
    pub step_summary: Option<PathBuf>,
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
        // Switches the wrappers read are checked here too, so that a bad value stops
        // the build before anything runs instead of turning each wrapper's cache off.
        for name in [
            vars::DROP_INCREMENTAL,
            vars::DEFER_UPLOAD,
            vars::BUILD_RUNS,
            vars::REAL_PATHS,
        ] {
            env.switch(name)?;
        }
        ExecutorSpec::from_env(env)?;
        if let Some(value) = env.get(vars::ENV_IGNORE) {
            super::env::EnvIgnore::parse(value).map_err(|message| CliError::InvalidSetting {
                name: vars::ENV_IGNORE.into(),
                value: value.to_string(),
                message,
            })?;
        }
        Ok(BuildConfig {
            cargo: env.cargo(),
            store_dir: StoreDir::resolve(env, store_dir)?,
            replaced_wrapper,
            disabled: env.switch(vars::DISABLE)?.unwrap_or(false),
            cargo_target_dir: env.get("CARGO_TARGET_DIR").map(|d| cwd.join(d)),
            cwd,
            remote: None,
            remote_uri: None,
            read_only: false,
            seed: env.switch(vars::SEED)?.unwrap_or(true),
            background_store: env.switch(vars::BACKGROUND_STORE)?.unwrap_or(true),
            remote_jobs: env.count(vars::REMOTE_JOBS)?,
            cargo_version: String::new(),
            step_summary: env
                .get(vars::GITHUB_STEP_SUMMARY)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        })
    }

    /// Resolves the remote tier once the workspace root is known.
    pub fn resolve_remote(
        &mut self,
        env: &Env,
        flag_remote: Option<&str>,
        flag_read_only: bool,
        workspace_root: &Path,
    ) -> Result<(), CliError> {
        let files = read_config_files(Some(workspace_root), env)?;
        let (name, uri) = if let Some(f) = flag_remote {
            ("--remote".to_string(), Some(f.to_string()))
        } else if let Some(e) = env.get(vars::REMOTE) {
            (vars::REMOTE.to_string(), Some(e.to_string()))
        } else {
            match files.iter().find(|(_, f)| f.remote.is_some()) {
                Some((path, f)) => (format!("`remote` in {}", path.display()), f.remote.clone()),
                None => (String::new(), None),
            }
        };
        self.remote_uri = uri.clone();
        self.remote = match uri {
            None => None,
            Some(uri) => Some(RemoteSpec::parse(&uri, &env.remote_defaults()).map_err(
                |message| {
                    CliError::InvalidSetting {
                        name,
                        // The value may hold credentials: show only its scheme.
                        value: uri.split(':').next().unwrap_or("").to_string() + ":…",
                        message,
                    }
                },
            )?),
        };
        self.read_only = flag_read_only
            || env.switch(vars::READ_ONLY)?.unwrap_or(false)
            || files.iter().find_map(|(_, f)| f.read_only).unwrap_or(false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_a_fraction_or_a_percentage() {
        assert_eq!(parse_share("0"), Ok(0));
        assert_eq!(parse_share("1"), Ok(1000));
        assert_eq!(parse_share("0.05"), Ok(50));
        assert_eq!(parse_share("10%"), Ok(100));
        assert_eq!(parse_share(" 100% "), Ok(1000));
        for bad in ["", "x", "1.5", "-0.1", "101%", "NaN", "ten%"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_precedence_is_flag_env_workspace_user() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(xdg.join("xcache")).unwrap();
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(
            xdg.join("xcache/config.toml"),
            "remote = \"redis://user:1/0\"\nread_only = true\n",
        )
        .unwrap();
        let xdg_s = xdg.to_str().unwrap();
        let resolve = |pairs: Vec<(&str, &str)>, flag: Option<&str>| {
            let env = Env::from_pairs(pairs);
            let mut cfg = BuildConfig::resolve(&env, ws.clone()).unwrap();
            cfg.resolve_remote(&env, flag, false, &ws).unwrap();
            (cfg.remote.map(|r| r.display().to_string()), cfg.read_only)
        };
        let base = vec![("HOME", "/h"), ("XDG_CONFIG_HOME", xdg_s)];
        assert_eq!(
            resolve(base.clone(), None),
            (Some("redis://user:1/0".into()), true)
        );
        std::fs::write(
            ws.join("xcache.toml"),
            "remote = \"redis://workspace:2/0\"\n",
        )
        .unwrap();
        assert_eq!(
            resolve(base.clone(), None).0.as_deref(),
            Some("redis://workspace:2/0")
        );
        let mut with_env = base.clone();
        with_env.push(("XCACHE_REMOTE", "redis://env:3/0"));
        assert_eq!(
            resolve(with_env.clone(), None).0.as_deref(),
            Some("redis://env:3/0")
        );
        assert_eq!(
            resolve(with_env, Some("redis://flag:4/0")).0.as_deref(),
            Some("redis://flag:4/0")
        );

        std::fs::write(ws.join("xcache.toml"), "remote = \"ftp://nope\"\n").unwrap();
        let env = Env::from_pairs(base);
        let mut cfg = BuildConfig::resolve(&env, ws.clone()).unwrap();
        let err = cfg
            .resolve_remote(&env, None, false, &ws)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("xcache.toml") && err.contains("unknown scheme"),
            "{err}"
        );
    }

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
