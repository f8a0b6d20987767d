//! The path check of a build-script run: did the run use its machine roots only as
//! paths? Main function: [`check`].
//!
//! A run finds things through its roots — `OUT_DIR`, `CARGO_MANIFEST_DIR`, its working
//! directory, the `DEP_*` directories — and what it prints or writes naming them is
//! tokenized, so its record replays wherever the roots are. A script can also turn a
//! root into data no scan finds (its length, a digest of it); such a record, replayed
//! at another root, hands cargo the first place's number. So, after a run, the script
//! runs a second time, unobserved and in the background, with every root seen through
//! an alias of another length (a symbolic link to it): the variables name the aliases,
//! its working directory is the alias of its own, and the aliasing library
//! (`alias.c`) tells `getcwd`, `realpath` and links read (`/proc/self/exe`) under them
//! too; `OUT_DIR` is a scratch directory of another length. What it printed and wrote
//! is compared with the first run's, each with its roots tokenized: the same, and the
//! roots were paths only; otherwise the caller binds the record to its roots
//! (`InputKind::Root`), which then holds only where they are the same.

mod aliases;
mod compare;
mod compiles;
mod memo;
mod second_run;

pub(super) use aliases::alias_library;
pub(super) use compare::{PathVerdict, paired};
pub(super) use compiles::compiles;
pub(super) use second_run::{Second, check};

#[cfg(test)]
mod tests;
