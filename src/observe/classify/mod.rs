//! From an observed run to the unit's inputs. Main function: [`classify`].
//!
//! Everything the run's processes read is an input — a file's contents, a path probed
//! in vain, a directory's listing, a link's target, a variable's value, a program's
//! executable — except what the key covers otherwise, each exception with its reason:
//! - the compiler's sysroot and the toolchain proxy's home (the compiler identity), and
//!   what the proxy read before it started the real compiler (its choice of toolchain);
//! - `.rlib`, `.rmeta` and `.so` files in the unit's dependency directories (each is
//!   named by its identity in the first-level key or the link's inputs);
//! - the unit's own outputs, and whatever the run itself created or wrote first;
//! - `/proc`, `/sys` and `/dev`, except the CPU description, which becomes a
//!   [`InputKind::HostCpu`] input;
//! - variables that never change a result ([`super::is_ignored_var`]), those the
//!   compiler reads for itself (asked by code in its sysroot; those that change its
//!   output are in the first-level key), and the unit kind's own list.
//!
//! A variable whose value holds a machine root (`CARGO_MANIFEST_DIR`) can be turned
//! into data (`env!("CARGO_MANIFEST_DIR").len()`) that no path remapping reaches: the
//! unit is bound to that root ([`InputKind::Root`]).
//!
//! [`Scope`] says what the run was (`scope`); [`classify`] folds its record into a
//! [`Classified`] (`classified`), asking `path_searches` what PATH searches found,
//! `kernel_files` which paths are the kernel's, and `variables` what a variable read makes.
//!
//! [`InputKind::HostCpu`]: crate::key::InputKind::HostCpu
//! [`InputKind::Root`]: crate::key::InputKind::Root

mod classified;
mod kernel_files;
mod path_searches;
mod path_text;
mod scope;
mod variables;

pub use classified::{Classified, classify};
pub(crate) use kernel_files::special;
pub use scope::{Scope, before_run};
pub use variables::{bound_roots, env_inputs, is_unbound, var_inputs};

#[cfg(test)]
mod tests;
