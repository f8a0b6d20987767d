//! Parsing one rustc command line into what the cache needs to know.
//!
//! The parser is deliberately strict: a flag it does not know makes the unit
//! uncacheable (`unknown-flag`), never silently ignored.
//!
//! [`parse_rustc_args`] (`parse`) makes a [`RustcInvocation`] (`invocation`); what it
//! writes is in `outputs`, and what is read from its command line again (link options,
//! `target-cpu=native`, a changed `--out-dir`, `-C incremental` taken out) in
//! `command_line`.

mod command_line;
mod invocation;
mod outputs;
mod parse;

pub use invocation::{CrateKind, Emit, Extern, LinkLib, Output, RustcInvocation, StaticLib};
pub use parse::parse_rustc_args;

#[cfg(test)]
mod tests;
