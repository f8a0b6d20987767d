//! clippy's lint configuration, on `fixtures/soundness/clippy` (`dep` has a
//! `needless_return`, a function of four arguments and public functions clippy's
//! pedantic group would mark `#[must_use]`): one change each to what decides clippy's
//! diagnostics. The cache's `cargo xcache clippy` must print the warnings and errors
//! plain `cargo clippy` prints, and exit with its code.

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case};

fn clippy() -> Case {
    Case::clippy("clippy")
}

#[test]
fn clippy_toml_value_edit_is_seen() {
    clippy()
        .mutate(|t| {
            t.edit(
                "clippy.toml",
                "too-many-arguments-threshold = 7",
                "too-many-arguments-threshold = 3",
            )
        })
        .shapes(ALL)
        .check();
}

/// A `clippy.toml` nearer the member than the one clippy read: cargo's dep-info names
/// only the file read, so plain cargo keeps its last result in its own target dir.
#[test]
fn clippy_toml_added_nearer_the_member_is_seen() {
    clippy()
        .mutate(|t| t.write("dep/clippy.toml", "too-many-arguments-threshold = 3\n"))
        .stale_in_same_target(
            "cargo's dep-info names the clippy.toml read, not the ones probed for",
        )
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, MovedCheckout])
        .check();
}

#[test]
fn lints_table_in_the_manifest_is_seen() {
    clippy()
        .mutate(|t| {
            t.edit(
                "dep/Cargo.toml",
                "edition = \"2021\"\n",
                "edition = \"2021\"\n\n[lints.clippy]\nneedless_return = \"allow\"\n",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

#[test]
fn allow_flag_after_the_separator_is_seen() {
    clippy()
        .args_after(&["--", "-A", "clippy::needless_return"])
        .shapes(ALL)
        .check();
}

#[test]
fn warn_flag_after_the_separator_is_seen() {
    clippy()
        .args_after(&["--", "-W", "clippy::pedantic"])
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// `-D warnings` turns the warning into an error: cargo's exit code must follow.
#[test]
fn deny_warnings_fails_like_clippy() {
    clippy()
        .args_after(&["--", "-D", "warnings"])
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn clippy_conf_dir_is_seen() {
    clippy()
        .outside(|dir| {
            crate::soundness::harness::write_file(
                &dir.join("conf/clippy.toml"),
                "too-many-arguments-threshold = 3\n",
            )
        })
        .env_after("CLIPPY_CONF_DIR", "{outside}/conf")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

/// One member edited: the other's clippy result comes from the cache (seeded or
/// restored) and its warnings must be printed as clippy printed them.
#[test]
fn member_edit_keeps_the_other_members_warnings() {
    clippy()
        .mutate(|t| {
            t.edit(
                "app/src/main.rs",
                "fn main() {",
                "fn twice(x: i64) -> i64 {\n    return x * 2;\n}\n\nfn main() {\n    let _ = twice(1);",
            )
        })
        .shapes(ALL)
        .check();
}

/// With `--no-deps` clippy lints only the packages cargo names primary
/// (`CARGO_PRIMARY_PACKAGE`, which cargo's fingerprint does not cover): `dep` checked as
/// `app`'s dependency has no warning, `dep` selected has one. Plain cargo keeps the
/// first result in its own target dir; a fresh one must show the warning.
#[test]
fn no_deps_lints_the_package_selected_now() {
    clippy()
        .args_before(&["--no-deps", "-p", "app"])
        .args_after(&["--no-deps", "-p", "dep"])
        .stale_in_same_target("cargo's fingerprint does not cover CARGO_PRIMARY_PACKAGE")
        .shapes(ALL)
        .check();
}
