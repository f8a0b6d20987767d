//! One action run by the worker: its input root made from the CAS in a fresh
//! directory, its command run there (observed), its outputs put in the CAS, and the
//! `ActionResult` that names them. Main function: [`run`].
//!
//! Everything an action names comes from the server, which is hostile input: every
//! name in its input tree and every output path must be a plain relative path inside
//! the action's directory (checked by [`plain`](crate::exec::wire::plain)), a blob is used only once it hashes to
//! its digest, and nothing but regular files and directories is made (a symlink in an
//! input tree fails the action: it could lead outside).
//!
//! The files: the run (`run`), the lease and the CAS messages it names (`lease`), the
//! input root made (`inputs`), the action's paths (`paths`), the record stated for the
//! client (`record`), why an action failed (`failed`) and the shipped toolchains the
//! machine keeps (`toolchains`).

mod failed;
mod inputs;
mod lease;
mod paths;
mod record;
mod run;
#[cfg(test)]
mod tests;
mod toolchains;

pub use failed::Failed;
pub use inputs::Caches;
pub use lease::action_of;
pub use record::Toolchain;
pub use run::{Ran, run};
pub use toolchains::{DEFAULT_KEEP, Toolchains};
