//! Error types. Library code returns these, carrying the path, key or URI involved;
//! only the CLI turns them into a message and an exit code.
//!
//! Every class has a stable kebab-case code (`code()`), documented in the book under
//! "Reference > Errors and warnings".

use std::io;
use std::path::{Path, PathBuf};

/// The warning code of an entry no trusted key signed (`CacheError::Untrusted`).
pub const UNTRUSTED_ENTRY: &str = "untrusted-entry";

/// A problem of the cache itself. The wrapper never fails a build because of one: it
/// warns once and compiles.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cache entry {path} is corrupt ({reason}); it was deleted and the unit compiled")]
    Corrupt { path: PathBuf, reason: String },
    #[error("failed to learn the identity of the compiler {rustc}: {message}")]
    Compiler { rustc: PathBuf, message: String },
    /// A remote store problem; `code` names the class (`remote-unavailable`, …) and
    /// `uri` carries no credentials.
    #[error("remote store {uri}: {message}")]
    Remote {
        code: &'static str,
        uri: String,
        message: String,
    },
    #[error("remote store configuration: {0}")]
    RemoteConfig(String),
    /// The Execution service of `XCACHE_EXECUTOR` cannot be reached (or its setting is
    /// not understood): compiles run here for the rest of the build.
    #[error("remote execution {uri}: {message}")]
    Executor { uri: String, message: String },
    /// No worker of the Execution service took a compile within the queue wait
    /// (`XCACHE_EXECUTOR_QUEUE_WAIT`) while none had taken one of its platform in this
    /// build: compiles of that platform run here for the rest of the build.
    #[error("remote execution {uri}: {message}")]
    ExecutorUnserved { uri: String, message: String },
    /// A worker's result, compiled here as well (`XCACHE_EXECUTOR_CHECK`), differed
    /// from this machine's compile: the compile here stands, and compiles run here for
    /// the rest of the build.
    #[error("remote execution {uri}: {message}")]
    ExecutorMismatch { uri: String, message: String },
    #[error("refused cache entry {path}: {reason}")]
    Untrusted { path: PathBuf, reason: String },
    #[error("{0}")]
    Setting(String),
    /// Seeding cannot tell where cargo will keep this build's units (`plan::expected_layout`)
    /// or found it kept them elsewhere: nothing is planted; restores go on.
    #[error("planting off: {0}")]
    PlantingOff(String),
}

impl CacheError {
    /// The stable code of this class.
    pub fn code(&self) -> &'static str {
        match self {
            CacheError::Read { .. } => "store-read-failed",
            CacheError::Write { .. } => "store-write-failed",
            CacheError::Corrupt { .. } => "corrupt-entry",
            CacheError::Compiler { .. } => "compiler-probe-failed",
            CacheError::Remote { code, .. } => code,
            CacheError::RemoteConfig(_) => "remote-config-invalid",
            CacheError::Executor { .. } => "executor-unavailable",
            CacheError::ExecutorUnserved { .. } => "executor-unserved",
            CacheError::ExecutorMismatch { .. } => "executor-mismatch",
            CacheError::Untrusted { .. } => "untrusted-entry",
            CacheError::Setting(_) => "invalid-setting",
            CacheError::PlantingOff(_) => "planting-off",
        }
    }
}

/// An error of a `cargo xcache` command, shown to the user with a hint.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("failed to read the cargo workspace{}: {message}", manifest.as_ref().map(|m| format!(" at {}", m.display())).unwrap_or_default())]
    Metadata {
        manifest: Option<PathBuf>,
        message: String,
    },
    #[error("found no cargo project in {} or any directory above it", dir.display())]
    NoWorkspace { dir: PathBuf },
    #[error("failed to run `{cargo}`: {source}")]
    SpawnCargo {
        cargo: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no build report at {path}")]
    NoReport { path: PathBuf },
    #[error("failed to find package `{package}` in the last build's report")]
    NotInReport { package: String, known: Vec<String> },
    #[error("failed to read the build report {path}: {message}")]
    BadReport { path: PathBuf, message: String },
    #[error("failed to use {path} as the cache directory: {source}")]
    StoreDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}: {source}")]
    WriteReport {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid value {value:?} for {name}: {message}")]
    InvalidSetting {
        name: String,
        value: String,
        message: String,
    },
    #[error("failed to find this program's own path: {0}")]
    CurrentExe(#[source] io::Error),
    #[error("invalid configuration file {path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("failed to read the recipe {path}: {source}")]
    RecipeRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid recipe {path}: {message}")]
    RecipeInvalid { path: PathBuf, message: String },
    #[error("failed to write the recipe {path}: {source}")]
    RecipeWrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read {path} for the recipe: {message}")]
    PrepareRead { path: PathBuf, message: String },
    #[error("no workspace member has a binary named {name:?}")]
    UnknownBin { name: String },
    #[error("{path} exists with other contents than the recipe's skeleton")]
    SkeletonConflict { path: PathBuf },
    #[error("failed to write the skeleton at {path}: {source}")]
    SkeletonWrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the recipe's file {name:?} lies outside {bound}")]
    SkeletonOutside { name: String, bound: PathBuf },
    #[error("{0}")]
    Key(#[source] crate::sign::SignError),
    #[error("failed to collect the store {path}: {source}")]
    Gc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    GcRemote(String),
    #[error("failed to run the worker for {server}: {message}")]
    Worker { server: String, message: String },
}

impl CliError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Metadata { .. } => Some(
                "run `cargo metadata` in the same directory to see cargo's own error, or pass --manifest-path".into(),
            ),
            CliError::NoWorkspace { .. } => Some(
                "run the command in the directory of a cargo project (one with a Cargo.toml, or below it), or pass --manifest-path PATH/Cargo.toml".into(),
            ),
            CliError::SpawnCargo { .. } => {
                Some("make sure cargo is installed and on PATH, or set CARGO to its path".into())
            }
            CliError::NoReport { .. } => Some(
                "run `cargo xcache build` first; pass --target-dir if the build used one".into(),
            ),
            CliError::BadReport { .. } => {
                Some("run `cargo xcache build` again to write a fresh report".into())
            }
            CliError::NotInReport { known, .. } => Some(format!(
                "name a package the last build compiled (`name` or `name@version`): {}",
                known.join(", ")
            )),
            CliError::StoreDir { .. } => {
                Some("set XCACHE_DIR to a directory you can write to".into())
            }
            CliError::InvalidSetting { .. } => None,
            CliError::ConfigFile { .. } => Some(
                "the file may set `remote = \"<uri>\"` and `read_only = true|false`; see the book's configuration reference".into(),
            ),
            CliError::RecipeRead { .. } => Some(
                "run `cargo xcache prepare --recipe-path <file>` first, or pass the path the planner wrote with --recipe-path".into(),
            ),
            CliError::RecipeInvalid { .. } => Some(
                "write the recipe again with `cargo xcache prepare` of this cargo-xcache version".into(),
            ),
            CliError::PrepareRead { .. } => Some(
                "check that the file is valid TOML and readable; `cargo metadata` shows cargo's own view".into(),
            ),
            CliError::UnknownBin { .. } => {
                Some("`cargo metadata --no-deps` lists the workspace's binary targets".into())
            }
            CliError::SkeletonConflict { .. } => Some(
                "run `cargo xcache warm --recipe-path` in a directory that holds only the recipe, before copying the sources in".into(),
            ),
            CliError::SkeletonOutside { .. } => Some(
                "a recipe with path dependencies outside the workspace (`../name`) needs --skeleton-root DIR, the directory (the current one or above it) that may hold them; a recipe you did not write yourself may be trying to write elsewhere".into(),
            ),
            CliError::Key(crate::sign::SignError::KeyExists { .. }) => Some(
                "choose another --out path, or remove the old key first if you mean to replace it (readers must then trust the new public key)".into(),
            ),
            CliError::Key(_) => Some(
                "write a key with `cargo xcache keygen --out FILE` and point XCACHE_SIGNING_KEY at FILE".into(),
            ),
            CliError::Gc { .. } => Some(
                "check that XCACHE_DIR is a directory you can write to".into(),
            ),
            CliError::GcRemote(_) => Some(
                "`gc --remote` works with stores that can list their objects (s3, gcs, azblob, webdav, file); redis, memcached and ghac expire objects by themselves".into(),
            ),
            CliError::Worker { .. } => Some(
                "check --server (grpc://HOST:PORT?instance=NAME) and that the worker's --dir is writable".into(),
            ),
            CliError::WriteReport { .. }
            | CliError::CurrentExe(_)
            | CliError::RecipeWrite { .. }
            | CliError::SkeletonWrite { .. } => None,
        }
    }

    /// The stable code of this class.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Metadata { .. } => "workspace-unreadable",
            CliError::NoWorkspace { .. } => "no-workspace",
            CliError::SpawnCargo { .. } => "cargo-not-found",
            CliError::NoReport { .. } => "no-report",
            CliError::BadReport { .. } => "bad-report",
            CliError::NotInReport { .. } => "not-in-report",
            CliError::StoreDir { .. } => "store-dir-unusable",
            CliError::WriteReport { .. } => "report-write-failed",
            CliError::InvalidSetting { .. } => "invalid-setting",
            CliError::CurrentExe(_) => "current-exe-unknown",
            CliError::ConfigFile { .. } => "config-file-invalid",
            CliError::RecipeRead { .. } => "recipe-unreadable",
            CliError::RecipeInvalid { .. } => "recipe-invalid",
            CliError::RecipeWrite { .. } => "recipe-write-failed",
            CliError::PrepareRead { .. } => "recipe-input-invalid",
            CliError::UnknownBin { .. } => "unknown-bin",
            CliError::SkeletonConflict { .. } => "skeleton-conflict",
            CliError::SkeletonWrite { .. } => "skeleton-write-failed",
            CliError::SkeletonOutside { .. } => "skeleton-outside",
            CliError::Key(_) => "signing-key-invalid",
            CliError::Gc { .. } => "gc-failed",
            CliError::GcRemote(_) => "gc-remote-unsupported",
            CliError::Worker { .. } => "worker-failed",
        }
    }
}

/// The command error for a failed `cargo metadata` run in `cwd`: "no project here" when
/// cargo found no `Cargo.toml`, else cargo's message (`manifest`: `--manifest-path`).
pub fn metadata_error(e: &cargo_metadata::Error, manifest: Option<&Path>, cwd: &Path) -> CliError {
    let message = match e {
        cargo_metadata::Error::CargoMetadata { stderr }
            if manifest.is_none() && stderr.contains("could not find `Cargo.toml`") =>
        {
            return CliError::NoWorkspace {
                dir: cwd.to_path_buf(),
            };
        }
        // cargo's own message already says `error:`; ours says it once.
        cargo_metadata::Error::CargoMetadata { stderr } => cargo_message(stderr),
        _ => first_line_chain(e),
    };
    CliError::Metadata {
        manifest: manifest.map(Path::to_path_buf),
        message,
    }
}

/// What `cargo metadata` printed when it failed, on one line, without cargo's own
/// `error:` prefixes (the message is printed after ours).
fn cargo_message(stderr: &str) -> String {
    let text = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error:").map_or(l, str::trim_start))
        .collect::<Vec<_>>()
        .join(" ");
    format!("`cargo metadata` failed: {text}")
}

/// cargo_metadata's error with its sources, on one line.
fn first_line_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_the_untrusted_code() {
        let e = CacheError::Untrusted {
            path: PathBuf::from("x"),
            reason: String::new(),
        };
        assert_eq!(e.code(), UNTRUSTED_ENTRY);
    }
}
