//! The differential soundness suite: the spec the cache must meet. Each test is one
//! fixture (under `fixtures/soundness/`), exactly one mutation, and the build shapes
//! that apply ([`harness::Shape`]); for each shape the same change is built through the
//! cache and with plain cargo, and the two must give the same program — the same build
//! success or rustc error codes, the same stdout and exit status, and where the compile
//! is reproducible the same executable bytes as an `XCACHE_DISABLE=1` build of the same
//! tree at the same path. A `cargo clippy` case (`clippy.rs`) has no program: clippy's
//! diagnostics and cargo's exit code are compared instead.
//!
//! A test here fails when the cache would hand a user another program than cargo would.
//! Many are known holes, kept failing on purpose until the core closes them.

mod harness;

mod build_scripts;
mod clippy;
mod dev_shm;
mod environment;
mod layouts;
mod macros;
mod native;
mod ordinary;
mod paths;
mod remote_exec;
