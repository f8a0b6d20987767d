//! The environment read whole: a build script or a proc-macro that goes through every
//! variable (`std::env::vars()`, `/proc/self/environ`, a shell's own table) instead of
//! asking for one by name. No `getenv` names what it used, so the run must be taken to
//! depend on every variable it could see.

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case};

const FRESH: &[crate::soundness::harness::Shape] =
    &[FreshTarget, FreshTargetNoSeed, MovedCheckout, Remote];

/// `fixtures/soundness/env-whole`: `scan`'s script collects `ENVW_VAR_*` through
/// `std::env::vars()`, `ENVW_PROC_*` from `/proc/self/environ` and `ENVW_SHELL` through
/// `sh`; the proc-macro `pm` collects `ENVW_PM_*`, its consumer `usepm` declares
/// `ENVW_PM_VALUE`.
fn env_whole() -> Case {
    Case::new("env-whole", "app")
}

const UNDECLARED: &str = "the script declares nothing: cargo does not rerun it";

#[test]
fn script_iterating_the_environment_sees_a_changed_value() {
    env_whole()
        .env_before("ENVW_VAR_A", "one")
        .env_after("ENVW_VAR_A", "two")
        .stale_in_same_target(UNDECLARED)
        .shapes(ALL)
        .check();
}

#[test]
fn script_iterating_the_environment_sees_a_new_variable() {
    env_whole()
        .env_after("ENVW_VAR_NEW", "here")
        .shapes(FRESH)
        .check();
}

#[test]
fn script_iterating_the_environment_sees_a_variable_gone() {
    env_whole()
        .env_before("ENVW_VAR_GONE", "here")
        .shapes(FRESH)
        .check();
}

#[test]
fn script_reading_proc_self_environ_sees_a_changed_value() {
    env_whole()
        .env_before("ENVW_PROC_B", "one")
        .env_after("ENVW_PROC_B", "two")
        .shapes(FRESH)
        .check();
}

#[test]
fn shell_run_by_a_script_sees_a_changed_value() {
    env_whole()
        .env_before("ENVW_SHELL", "one")
        .env_after("ENVW_SHELL", "two")
        .shapes(FRESH)
        .check();
}

/// Cargo recompiles `usepm` (its script declares the variable); the expansion must not be
/// restored from before.
#[test]
fn proc_macro_iterating_the_environment_sees_a_changed_value() {
    env_whole()
        .env_before("ENVW_PM_VALUE", "one")
        .env_after("ENVW_PM_VALUE", "two")
        .shapes(ALL)
        .check();
}
