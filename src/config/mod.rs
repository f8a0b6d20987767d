//! Settings, resolved once from flags, environment and files. This is the only module
//! that reads the process environment; everything else receives a config. Main types:
//! [`BuildConfig`] (the front-end) and [`WrapperConfig`] (one rustc invocation).

mod env;
mod file;
pub mod parse;
mod remote;
mod settings;
mod store;

pub use env::{Env, EnvIgnore, cargo_home, store_dir, vars};
pub use file::{ConfigFile, parse_config, read_config_files};
pub use remote::{
    DEFAULT_TIMEOUT, RemoteDefaults, RemoteKind, RemoteSpec, Secret, UPLOAD_TIMEOUT_FACTOR,
    Uploads, Writes, parse_timeout,
};
pub use settings::{
    BuildConfig, DEFAULT_EXECUTOR_TIMEOUT, ExecutorSpec, ToolchainRoute, WrapperConfig, parse_share,
};
pub use store::{DEFAULT_CACHE_SIZE, StoreDir};
