//! What a cache key covers.
//!
//! A unit's key is computed in two levels, like ccache's direct mode:
//! - [`UnitKeys::l1`] covers everything known before rustc runs: the compiler, the
//!   normalized arguments, the environment cargo sets, and every `--extern`.
//! - the entry key ([`entry_key`]) adds what rustc reported reading in its dep-info: the
//!   contents of every source file and the value of every `env!`/`option_env!` variable.
//!
//! Units that link add the linker's identity ([`linker_id`]) and the `-l` libraries
//! of their command line to the first level, and every file the link line named
//! ([`link_inputs`], described as inputs by [`describe_inputs`]) to the entry key
//! ([`entry_key`]).
//!
//! Build-script runs are keyed in the same two levels ([`run_l1_key`], then
//! [`entry_key`] over what the script declared it read).
//!
//! Paths are normalized through a [`PathMap`] so that a moved checkout, another target
//! dir or another `CARGO_HOME` produce the same key; the same map drives
//! `--remap-path-prefix` so the artifacts themselves are path-independent.

mod artifact;
mod build_run;
mod c_debug_map;
mod clippy;
mod compiler;
mod depinfo;
mod file_digest;
mod hasher;
mod host_cpu;
mod input;
mod layout;
mod link_inputs;
mod linker;
mod miss;
mod path_map;
mod predict;
mod rustc_args;
mod state_now;
mod unit_key;

pub use artifact::{
    artifact_identity, content_identity, identity_digest, is_rooted_identity, key_identity,
    recorded_identity, rooted_identity, rooted_key, sidecar_content, sidecar_identity,
    sidecar_path, write_artifact_identity, write_rooted_identity,
};
pub use build_run::{
    RunKeyInput, TreeError, c_tool_names, is_run_key_var, run_env, run_key_parts, run_l1_key,
    tool_identity, tree_digest,
};
pub use c_debug_map::{
    compiler_commands, compiler_takes_debug_map, debug_map_env, debug_map_flags, debug_map_meaning,
};
pub use clippy::{behind_clippy, clippy_identity, is_clippy_driver, toolchain_clippy_driver};
pub use compiler::{CompilerId, cargo_version, compiler_id};
pub(crate) use depinfo::unescape_backslashes;
pub use depinfo::{DepInfo, EnvDep};
pub use file_digest::{digest_open, hash_file};
pub use hasher::{Key, KeyHasher};
pub use host_cpu::host_cpu;
pub use input::{Input, InputKind, above, entry_key, normalize_inputs, state, without_roots};
pub use layout::{Layout, Place};
pub use link_inputs::{
    LibSearch, LinkContext, LinkInput, LinkLine, arg_files, describe_inputs, link_input_identity,
    link_inputs, parse_link_line,
};
pub use linker::{
    ACTION_PATH, LinkerId, LinkerOffer, LinkerRequest, RUNTIME_FILES, link_key, linker_id,
    linker_offer, probe_flags,
};
pub use miss::{DiffKind, Difference, MissCause};
pub use path_map::{PathMap, Root, RootKind, run_root};
pub(crate) use path_map::{path_char, replace_root};
pub use predict::{PredictedUnit, UnitIdentity, prediction_key, record_key, seed_key, unit_kind};
pub use rustc_args::{
    CrateKind, Emit, Extern, LinkLib, Output, RustcInvocation, StaticLib, parse_rustc_args,
};
pub use state_now::{
    MAX_TREE_FILES, above_state, canonical_state, empty_listing_state, link_state, listing_state,
    lookup_state, path_state, tree_state,
};
pub use unit_key::{
    KeyEnv, KeyParts, UnitKeys, is_cargo_set_var, is_keyed_cargo_var, is_rustc_key_var, l1_key,
};

/// The version of the key schema. Bump it whenever anything that feeds a key changes
/// meaning; every key in every store changes with it. Tests that pin key behaviour
/// (`tests/keys.rs`) must be re-read on a bump.
pub const KEY_SCHEMA: &str = "xcache-key-v2";
