//! The engine of the differential soundness suite. A [`Case`] is a fixture, exactly one
//! mutation and the [`Shape`]s to build it in; [`Case::check`] builds every shape through
//! the cache and with plain cargo, and fails with every difference it found: build
//! success, rustc error codes, the program's stdout and exit status, and (where the
//! compile is reproducible) the bytes of the executable against an `XCACHE_DISABLE=1`
//! build of the same tree at the same path. A [`Case::clippy`] runs `cargo clippy`
//! instead and compares clippy's diagnostics (each warning and error with its place,
//! sorted) and cargo's exit code.
//!
//! Within a case the work is shared: one cold cache build fills the store (and the
//! remote), copies of that store serve the shapes that must not see each other's
//! entries, and the fresh-target shapes build one after another in the same mutated
//! checkout, each into an empty target dir, against one plain-cargo and one
//! `XCACHE_DISABLE=1` reference built there first.
//!
//! `SOUNDNESS_VERBOSE=1` prints every build's outcome and report summary as it goes
//! (`cargo nextest run --test soundness --no-capture NAME`).

mod case;
mod outcome;
mod session;
mod tree;

pub use case::{ALL, Case, Shape};
pub use tree::{static_lib, word_program, write_file};
