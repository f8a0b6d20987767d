//! The local store as configured ([`StoreDir`]): where it is, how large it may grow, and
//! what a build does about signatures there. Resolved once from the environment; the
//! store opens from it (`LocalStore::open`), so every process that reads or writes the
//! store applies the same policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::env::{Env, vars};
use super::parse::{SIZE_FORMS, invalid, parse_size};
use crate::errors::CliError;
use crate::sign::{Signer, Trust, TrustedKeys};

/// The size a store is kept under when `XCACHE_CACHE_SIZE` says nothing: 10 GiB (see
/// the book's "Store layout and entry format", Size).
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;

/// The local store directory and its policy.
#[derive(Clone, Debug)]
pub struct StoreDir {
    path: PathBuf,
    /// Sign what is written, accept only what a trusted key signed.
    pub trust: Trust,
    /// The size the store is kept under; `None`: no limit (`XCACHE_CACHE_SIZE=unlimited`).
    pub max_size: Option<u64>,
    /// A setting this process depends on could not be understood: the store is not
    /// used at all (the wrapper compiles without the cache and says why).
    pub problem: Option<String>,
}

impl AsRef<Path> for StoreDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl StoreDir {
    /// A store at `path` with the default policy: no signatures, the default size.
    pub fn new(path: impl Into<PathBuf>) -> StoreDir {
        StoreDir {
            path: path.into(),
            trust: Trust::default(),
            max_size: Some(DEFAULT_CACHE_SIZE),
            problem: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn display(&self) -> std::path::Display<'_> {
        self.path.display()
    }

    /// The store at `path` with the policy the environment sets: `XCACHE_CACHE_SIZE`,
    /// `XCACHE_SIGNING_KEY`, `XCACHE_TRUSTED_KEYS`. Every value must be understood.
    pub fn resolve(env: &Env, path: PathBuf) -> Result<StoreDir, CliError> {
        let max_size = match env.get(vars::CACHE_SIZE) {
            None => Some(DEFAULT_CACHE_SIZE),
            Some(v) if v.trim().eq_ignore_ascii_case("unlimited") => None,
            Some(v) => Some(parse_size(v).map_err(|_| {
                invalid(
                    vars::CACHE_SIZE,
                    v,
                    &format!("{SIZE_FORMS}, or `unlimited`"),
                )
            })?),
        };
        let signer = match env.get(vars::SIGNING_KEY) {
            None => None,
            Some(p) => Some(Arc::new(Signer::read(Path::new(p)).map_err(|e| {
                CliError::InvalidSetting {
                    name: vars::SIGNING_KEY.into(),
                    value: p.to_string(),
                    message: e.to_string(),
                }
            })?)),
        };
        let trusted = match env.get(vars::TRUSTED_KEYS) {
            None => None,
            Some(list) => TrustedKeys::parse(list).map_err(|e| CliError::InvalidSetting {
                name: vars::TRUSTED_KEYS.into(),
                value: list.chars().take(200).collect(),
                message: e.to_string(),
            })?,
        };
        Ok(StoreDir {
            path,
            trust: Trust { signer, trusted },
            max_size,
            problem: None,
        })
    }

    /// A store that must not be used, and why.
    pub fn unusable(path: PathBuf, problem: String) -> StoreDir {
        StoreDir {
            problem: Some(problem),
            ..StoreDir::new(path)
        }
    }
}
