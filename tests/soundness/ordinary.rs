//! The ordinary classes every cache must get right, on `fixtures/soundness/ordinary`
//! (`app` printing everything its path dependency `dep` compiled in): one source, data,
//! manifest, configuration, flag or profile change each.

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case};

fn ordinary() -> Case {
    Case::new("ordinary", "app")
}

#[test]
fn path_dependency_source_edit_is_seen() {
    ordinary()
        .mutate(|t| t.edit("dep/src/lib.rs", "\"first source\"", "\"second source\""))
        .shapes(ALL)
        .check();
}

#[test]
fn include_str_data_edit_is_seen() {
    ordinary()
        .mutate(|t| t.write("dep/src/data/text.txt", "second text\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn include_bytes_data_edit_is_seen() {
    ordinary()
        .mutate(|t| std::fs::write(t.path("dep/src/data/bytes.bin"), [9, 9, 9, 9]).unwrap())
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn file_included_through_a_symlinked_file_sees_the_target_edit() {
    ordinary()
        .mutate(|t| t.write("shared/real.txt", "second shared file\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn file_included_through_a_symlinked_directory_sees_the_edit() {
    ordinary()
        .mutate(|t| t.write("shared/dir/inner.txt", "second inner file\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn path_attribute_module_edit_is_seen() {
    ordinary()
        .mutate(|t| t.edit("dep/src/paths/target.rs", "first pathed", "second pathed"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn module_file_replaced_by_its_directory_form_is_seen() {
    ordinary()
        .mutate(|t| {
            t.remove("dep/src/module.rs");
            t.write(
                "dep/src/module/mod.rs",
                "pub const WORD: &str = \"directory form\";\n",
            );
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// rustc refuses a module found both as `nested.rs` and `nested/mod.rs`; a cache that
/// keys on the files the last compile read would restore the old rlib instead.
#[test]
fn module_file_beside_its_mod_rs_fails_like_rustc() {
    ordinary()
        .mutate(|t| {
            t.write(
                "dep/src/nested.rs",
                "pub const WORD: &str = \"file beside\";\n",
            )
        })
        .stale_in_same_target("the new file is in no dep-info: cargo keeps the old build")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// A module whose file is gone: rustc fails (E0583); nothing may restore the old rlib.
#[test]
fn module_file_deleted_fails_like_rustc() {
    ordinary()
        .mutate(|t| t.remove("dep/src/paths/target.rs"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// The module's file is a symbolic link, pointed at another file of the same age: plain
/// cargo judges by the target's modification time.
#[test]
fn source_file_symlink_repointed_is_seen() {
    ordinary()
        .mutate(|t| t.symlink("dep/src/linked.rs", "variants/b.rs"))
        .stale_in_same_target("cargo reads the link target's time, older than the last build")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn option_env_from_unset_to_set_is_seen() {
    ordinary()
        .env_after("SOUNDNESS_OPTIONAL", "spicy")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// `option_env!` tells an empty variable from an unset one; so must a key.
#[test]
fn option_env_from_unset_to_empty_is_seen() {
    ordinary()
        .env_after("SOUNDNESS_OPTIONAL", "")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn package_description_read_with_env_is_seen() {
    ordinary()
        .mutate(|t| t.edit("dep/Cargo.toml", "first description", "second description"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn cargo_config_env_value_read_with_env_is_seen() {
    ordinary()
        .mutate(|t| t.edit(".cargo/config.toml", "from config", "edited in config"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn rustflags_cfg_change_is_seen() {
    ordinary()
        .env_after("RUSTFLAGS", "--cfg soundness_flag")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// The same flag from `.cargo/config.toml`'s `[build] rustflags` instead of the
/// environment.
#[test]
fn config_rustflags_cfg_change_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                ".cargo/config.toml",
                "[env]",
                "[build]\nrustflags = [\"--cfg\", \"soundness_flag\"]\n\n[env]",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn feature_enabled_on_the_command_line_is_seen() {
    ordinary()
        .args_after(&["--features", "dep/loud"])
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn release_profile_builds_the_release_program() {
    ordinary()
        .args_after(&["--release"])
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn manifest_opt_level_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "Cargo.toml",
                "[workspace]",
                "[profile.dev]\nopt-level = 1\n\n[workspace]",
            )
        })
        .unobservable("opt-level changes the code, not what it prints: the bytes tell")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn manifest_strip_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "Cargo.toml",
                "[workspace]",
                "[profile.dev]\nstrip = true\n\n[workspace]",
            )
        })
        .unobservable("stripping changes the executable, not what it prints: the bytes tell")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn manifest_panic_abort_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "Cargo.toml",
                "[workspace]",
                "[profile.dev]\npanic = \"abort\"\n\n[workspace]",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn manifest_debug_assertions_off_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "Cargo.toml",
                "[workspace]",
                "[profile.dev]\ndebug-assertions = false\n\n[workspace]",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn manifest_overflow_checks_off_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "Cargo.toml",
                "[workspace]",
                "[profile.dev]\noverflow-checks = false\n\n[workspace]",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn edition_change_is_seen() {
    ordinary()
        .mutate(|t| t.edit("dep/Cargo.toml", "edition = \"2021\"", "edition = \"2024\""))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// A lint raised to `deny` turns the replayed warning into an error: the build fails.
#[test]
fn lint_raised_to_deny_fails_like_plain_cargo() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "dep/Cargo.toml",
                "[lints.rust]\n",
                "[lints.rust]\ndead_code = \"deny\"\n",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn path_dependency_version_bump_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "dep/Cargo.toml",
                "version = \"0.1.0\"",
                "version = \"0.2.0\"",
            );
            t.edit(
                "Cargo.lock",
                "name = \"dep\"\nversion = \"0.1.0\"",
                "name = \"dep\"\nversion = \"0.2.0\"",
            );
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn renamed_package_is_seen() {
    ordinary()
        .mutate(|t| {
            t.edit(
                "dep/Cargo.toml",
                "[package]\nname = \"dep\"",
                "[package]\nname = \"dep-renamed\"",
            );
            t.edit(
                "app/Cargo.toml",
                "dep = { path = \"../dep\" }",
                "dep = { path = \"../dep\", package = \"dep-renamed\" }",
            );
            t.edit("Cargo.lock", "\"dep\"", "\"dep-renamed\"");
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// A package that gains a build script (here one that sets a cfg) is another unit.
#[test]
fn build_script_added_is_seen() {
    ordinary()
        .mutate(|t| {
            t.write(
                "dep/build.rs",
                "fn main() {\n    println!(\"cargo::rustc-cfg=soundness_flag\");\n}\n",
            )
        })
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// `-C target-cpu=native` cannot be varied on one machine; this checks the program
/// stays right with it. Note for the store-tampering test: an entry compiled for
/// another CPU must never be restored here — a key that hashes the literal argument
/// `native` instead of the CPU it resolves to would restore one; the tampering test can
/// rewrite an entry's recorded CPU (or copy a store from a machine with another one) to
/// prove the key resolves `native`.
#[test]
fn target_cpu_native_builds_the_same_program() {
    ordinary()
        .env("RUSTFLAGS", "-Ctarget-cpu=native")
        .mutate(|t| t.write("dep/src/data/text.txt", "second text\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

/// A `RUSTC_WORKSPACE_WRAPPER` (a trivial one) must not break `cargo xcache build`.
#[test]
fn rustc_workspace_wrapper_gives_the_same_program() {
    ordinary()
        .outside(|dir| {
            crate::soundness::harness::write_file(
                &dir.join("ws-wrapper"),
                "#!/bin/sh\nexec \"$@\"\n",
            );
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("ws-wrapper"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        })
        .env("RUSTC_WORKSPACE_WRAPPER", "{outside}/ws-wrapper")
        .mutate(|t| t.write("dep/src/data/text.txt", "second text\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}
