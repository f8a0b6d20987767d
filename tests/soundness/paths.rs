//! Machine paths: outputs that depend on where the checkout, the target dir or
//! `CARGO_HOME` is, and sources that live outside the workspace.

use std::path::Path;

use crate::soundness::harness::Case;
use crate::soundness::harness::Shape::*;

/// `fixtures/soundness/paths`: `lens` computes lengths of paths at compile time (so no
/// path lands in the artifact for a scan to find), one binary each.
fn lens(program: &'static str) -> Case {
    Case::new("paths", program)
}

#[test]
fn manifest_dir_length_follows_the_moved_checkout() {
    lens("manifest-len").shapes(&[MovedCheckout]).check();
}

/// The build script learns a machine path when it runs and passes on its length: no
/// path in what it printed for a scan to find. The path check's second run sees every
/// root through an alias of another length, however the script learns it.
fn run_path_len(what: &str) -> Case {
    lens("run-path-len").env("LENS_RUN_PATH", what)
}

/// `CARGO_MANIFEST_DIR`, read when the script runs.
#[test]
fn manifest_dir_length_passed_on_by_a_build_script_follows_the_moved_checkout() {
    run_path_len("manifest").shapes(&[MovedCheckout]).check();
}

/// `OUT_DIR`, in another target dir.
#[test]
fn out_dir_length_passed_on_by_a_build_script_follows_the_target_dir() {
    run_path_len("out")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[FreshTarget, MovedCheckout])
        .check();
}

/// The same, from a script that also declares `OUT_DIR` and `CARGO_MANIFEST_DIR` as
/// variables for cargo to watch (`rerun-if-env-changed`, as ring's does).
#[test]
fn out_dir_length_passed_on_by_a_build_script_that_declares_it_follows_the_target_dir() {
    run_path_len("out")
        .env("LENS_DECLARE_ROOTS", "1")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[FreshTarget, MovedCheckout])
        .check();
}

#[test]
fn manifest_dir_length_passed_on_by_a_build_script_that_declares_it_follows_the_moved_checkout() {
    run_path_len("manifest")
        .env("LENS_DECLARE_ROOTS", "1")
        .shapes(&[MovedCheckout])
        .check();
}

/// The working directory (`getcwd`, which the kernel answers with the real path).
#[test]
fn working_directory_length_passed_on_by_a_build_script_follows_the_moved_checkout() {
    run_path_len("cwd").shapes(&[MovedCheckout]).check();
}

/// The package's directory made real (`realpath`).
#[test]
fn canonical_path_length_passed_on_by_a_build_script_follows_the_moved_checkout() {
    run_path_len("canonical").shapes(&[MovedCheckout]).check();
}

/// `.cargo/config.toml`'s `[env]` with `relative = true` is an absolute path under the
/// checkout.
#[test]
fn config_env_relative_path_follows_the_moved_checkout() {
    lens("config-rel-len").shapes(&[MovedCheckout]).check();
}

/// A variable read with `option_env!` whose value names the checkout.
#[test]
fn env_value_naming_the_checkout_follows_the_moved_checkout() {
    lens("env-path-len")
        .env("SOUNDNESS_PATH_VALUE", "{ws}/data")
        .shapes(&[MovedCheckout])
        .check();
}

/// The same checkout built into another target dir (a longer path): `OUT_DIR` moves.
#[test]
fn target_dir_moved_gives_the_same_program() {
    lens("out-dir-len")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[SameTarget, FreshTarget])
        .check();
}

/// The file found through `OUT_DIR` turns it into a number: the include alone would not
/// bind the unit (the expansion check), what it includes must.
#[test]
fn out_dir_length_in_an_included_file_follows_the_target_dir() {
    lens("out-dir-included-len")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}

/// `OUT_DIR` used through a macro, for a length and for an include.
#[test]
fn out_dir_length_behind_a_macro_follows_the_target_dir() {
    lens("out-dir-macro-len")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}

/// `outlen`, a library with no dependency and no proc-macro that names `OUT_DIR` only
/// as the path of what it includes: whether the included code makes a number of
/// `OUT_DIR` is read from the sources, without an expansion (the expansion check's
/// reading of them). Each way the included code does must bind the library. (The
/// library's metadata keeps the path's text too, which the output scan finds: these
/// cases hold the two together; the reading's own rules are the unit tests of
/// `wrapper::expansion`.)
fn outlen(form: &str) -> Case {
    Case::new("paths", "outlen")
        .env("OUTLEN_FORM", form)
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
}

#[test]
fn out_dir_length_in_what_a_library_includes_follows_the_target_dir() {
    outlen("included").check();
}

#[test]
fn out_dir_length_behind_a_macro_in_what_a_library_includes_follows_the_target_dir() {
    outlen("macro").check();
}

#[test]
fn out_dir_length_through_a_renamed_env_macro_follows_the_target_dir() {
    outlen("renamed").check();
}

#[test]
fn out_dir_length_from_an_include_a_macro_takes_apart_follows_the_target_dir() {
    outlen("taken-apart").check();
}

/// `fixtures/soundness/home-dep`: `app` depends on `homedep`, a path dependency inside
/// CARGO_HOME (where registry sources live, which a cache may take for immutable), and
/// includes a file by an absolute path outside the workspace.
fn home_dep() -> Case {
    Case::new("home-dep", "app")
}

#[test]
fn path_dependency_inside_cargo_home_sees_its_edit() {
    home_dep()
        .env("CARGO_HOME", "{outside}/home")
        .mutate(|t| {
            t.write_outside(
                "home/homedep/src/lib.rs",
                "pub const VALUE: &str = \"second home value\";\n\
                 pub const DIR_LEN: usize = env!(\"CARGO_MANIFEST_DIR\").len();\n",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, MovedCheckout])
        .check();
}

#[test]
fn absolute_include_outside_the_workspace_sees_its_edit() {
    home_dep()
        .env("CARGO_HOME", "{outside}/home")
        .mutate(|t| t.write_outside("abs/data.txt", "second absolute\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// `fixtures/soundness/vendored`: `app` depends on the crates.io crate `homecrate`,
/// served from a directory source inside CARGO_HOME (`$CARGO_HOME/config.toml` names
/// it), so its package id, and with it every cargo hash, is the same wherever
/// CARGO_HOME is; `homecrate` computes the length of its manifest dir.
fn vendored() -> Case {
    Case::new("vendored", "app")
}

/// A second CARGO_HOME at a longer path holding the same vendored crate.
fn another_home(dir: &Path) {
    let to = dir.join("another/much/longer/cargo-home");
    copy_dir(&dir.join("home"), &to);
    let config = std::fs::read_to_string(dir.join("home/config.toml")).unwrap();
    let home = dir.join("home");
    std::fs::write(
        to.join("config.toml"),
        config.replace(home.to_str().unwrap(), to.to_str().unwrap()),
    )
    .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn cargo_home_moved_is_seen() {
    vendored()
        .outside(another_home)
        .env_before("CARGO_HOME", "{outside}/home")
        .env_after("CARGO_HOME", "{outside}/another/much/longer/cargo-home")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// A registry source edited in place (debugging a dependency in `~/.cargo/registry`):
/// cargo never looks at registry sources' times, a fresh target dir compiles the edit.
#[test]
fn registry_source_edited_in_place_is_seen_in_a_fresh_target() {
    vendored()
        .env("CARGO_HOME", "{outside}/home")
        .mutate(|t| {
            t.write_outside(
                "home/vendor/homecrate/src/lib.rs",
                "pub const VALUE: &str = \"second vendored value\";\n\
                 pub const DIR_LEN: usize = env!(\"CARGO_MANIFEST_DIR\").len();\n",
            )
        })
        .stale_in_same_target("cargo takes registry sources for immutable")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}
