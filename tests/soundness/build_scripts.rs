//! Build-script runs: what a script reads, declares, leaves in `OUT_DIR`, and what the
//! cache may treat as the same run.

use std::path::Path;

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case, word_program, write_file};

const FRESH_ONLY: &[crate::soundness::harness::Shape] = &[FreshTarget, FreshTargetNoSeed];
const THREE: &[crate::soundness::harness::Shape] = &[SameTarget, FreshTarget, FreshTargetNoSeed];

/// `fixtures/soundness/build-env`: `codegen`'s script reads a declared file, declared and
/// undeclared variables, a build-dependency, and lists its `OUT_DIR`.
fn build_env() -> Case {
    Case::new("build-env", "app")
}

#[test]
fn build_script_reading_an_undeclared_env_var_sees_its_change_in_a_fresh_target() {
    build_env()
        .env_after("GEN_UNDECLARED", "changed")
        .stale_in_same_target("the script never declared GEN_UNDECLARED: cargo does not rerun it")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

/// Flags from `.cargo/config.toml`: cargo gives every script `CARGO_ENCODED_RUSTFLAGS`,
/// which the script reads; a run seeded or replayed from before the flags must not be
/// used. (Before cargo runs, that value is known only where nothing but the environment
/// could set flags.)
#[test]
fn config_rustflags_reach_a_script_that_reads_them() {
    build_env()
        .mutate(|t| {
            t.write(
                ".cargo/config.toml",
                "[build]\nrustflags = [\"-C\", \"debug-assertions=on\"]\n",
            )
        })
        .shapes(ALL)
        .check();
}

/// The same flags from `RUSTFLAGS`, whose value is known before cargo runs.
#[test]
fn rustflags_from_the_environment_reach_a_script_that_reads_them() {
    build_env()
        .env_after("RUSTFLAGS", "-C debug-assertions=on")
        .shapes(ALL)
        .check();
}

/// The earlier run (GEN_EXTRA=1) left `b.txt` in `OUT_DIR`; the rerun without it writes
/// only `a.txt` and lists both, under cargo as through the cache. What the same-target
/// rerun stored must not serve a fresh target dir, where plain cargo lists `a.txt` alone.
#[test]
fn stale_files_left_in_out_dir_do_not_reach_a_fresh_target() {
    build_env()
        .env_before("GEN_EXTRA", "1")
        .stale_in_same_target("cargo keeps OUT_DIR between runs: the earlier b.txt is listed")
        .fresh_store_after_same_target()
        .shapes(THREE)
        .check();
}

#[test]
fn build_dependency_source_edit_is_seen() {
    build_env()
        .mutate(|t| {
            t.edit(
                "helper/src/lib.rs",
                "format!(\"<{word}>\")",
                "format!(\"[{word}]\")",
            )
        })
        .shapes(THREE)
        .check();
}

#[test]
fn rustc_env_from_a_build_script_input_is_seen() {
    build_env()
        .mutate(|t| t.write("codegen/word.txt", "second\n"))
        .shapes(THREE)
        .check();
}

#[test]
fn rustc_cfg_from_a_declared_env_var_is_seen() {
    build_env().env_after("GEN_CFG", "1").shapes(THREE).check();
}

/// A declared variable set to the empty string is not the variable unset.
#[test]
fn declared_env_var_set_to_empty_is_not_unset() {
    build_env()
        .env_after("GEN_DECLARED", "")
        .shapes(THREE)
        .check();
}

/// `fixtures/soundness/sibling`: `sib`'s script reads `../shared` (one file declared,
/// one not) and runs `soundness-tool` when PATH has one.
fn sibling() -> Case {
    Case::new("sibling", "app")
}

#[test]
fn build_script_reading_an_undeclared_sibling_file_sees_its_edit_in_a_fresh_target() {
    sibling()
        .mutate(|t| t.write("shared/undeclared.txt", "second undeclared\n"))
        .stale_in_same_target("the script declared another file only: cargo does not rerun it")
        .shapes(THREE)
        .check();
}

#[test]
fn build_script_reading_a_declared_sibling_file_sees_its_edit() {
    sibling()
        .mutate(|t| t.write("shared/declared.txt", "second declared\n"))
        .shapes(THREE)
        .check();
}

fn tool(dir: &Path, word: &str) {
    let path = dir.join("bin/soundness-tool");
    write_file(&path, &format!("#!/bin/sh\necho {word}\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A program the script runs, replaced in place at the same path (a `protoc` upgraded
/// by the system): plain cargo in a fresh target dir runs the new one.
#[test]
fn tool_on_path_replaced_in_place_is_seen_in_a_fresh_target() {
    sibling()
        .outside(|dir| tool(dir, "first-tool"))
        .env("PATH", "{outside}/bin:{path}")
        .mutate(|t| tool(&t.outside, "second-tool"))
        .stale_in_same_target("the script declared nothing about the tool")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

/// Two `soundness-tool` programs outside (compiled: a shell script would read the whole
/// environment): `bin/` says `first-tool`, `second/bin/` `second-tool`; `empty/` holds
/// nothing.
fn two_tools(dir: &Path) {
    word_program(&dir.join("bin/soundness-tool"), "first-tool");
    word_program(&dir.join("second/bin/soundness-tool"), "second-tool");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
}

/// Another program of the same name earlier on PATH (another machine's `cc`): plain
/// cargo in a fresh target dir runs it. The run is keyed by what PATH resolved to.
fn another_tool_earlier_on_path() -> Case {
    sibling()
        .outside(two_tools)
        .env_before("PATH", "{outside}/bin:{path}")
        .env_after("PATH", "{outside}/second/bin:{outside}/bin:{path}")
        .stale_in_same_target("cargo does not rerun a script when PATH changes")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
}

#[test]
fn another_tool_earlier_on_path_is_seen_in_a_fresh_target() {
    another_tool_earlier_on_path().check();
}

/// The same, the tool found by a shell the script starts (a shell reads the whole
/// environment: PATH is keyed whole).
#[test]
fn another_tool_earlier_on_path_found_by_a_shell_is_seen_in_a_fresh_target() {
    another_tool_earlier_on_path().env("SIB_SHELL", "1").check();
}

/// The same, the tool found by a child of the run with the C library's `execvp`
/// (`env soundness-tool`): the child's search is the run's lookup.
#[test]
fn another_tool_earlier_on_path_found_by_a_childs_execvp_is_seen_in_a_fresh_target() {
    another_tool_earlier_on_path().env("SIB_ENV", "1").check();
}

/// An unrelated directory on PATH keeps the run when a child finds the tool with
/// `execvp` too.
#[test]
fn an_unrelated_directory_on_path_keeps_a_run_whose_child_uses_execvp() {
    an_unrelated_directory_on_path().env("SIB_ENV", "1").check();
}

/// A PATH with another directory that holds none of the programs the run looked up
/// (another machine's `$CARGO_HOME/bin` in front): the run is replayed.
#[test]
fn an_unrelated_directory_on_path_keeps_the_run() {
    an_unrelated_directory_on_path().check();
}

fn an_unrelated_directory_on_path() -> Case {
    sibling()
        .outside(two_tools)
        .env_before("PATH", "{outside}/bin:{path}")
        .env_after("PATH", "{outside}/empty:{outside}/bin:{path}")
        .unobservable("the directory added holds no program the run looks up")
        .expect_run_hit("sib")
        .shapes(&[FreshTarget, FreshTargetNoSeed, Remote])
}

/// `fixtures/soundness/declared-dir`: `lister`'s script declares the directory `data`
/// (one file of which is a symbolic link out of the package) and the file
/// `optional.txt`, absent at first, and describes them. A declared file that does not
/// exist makes cargo rerun the script on every build, so in the same target dir plain
/// cargo always sees the tree as it is, and the cache must replay only a run made from
/// the same tree.
fn declared_dir() -> Case {
    Case::new("declared-dir", "app")
}

#[test]
fn build_script_input_dir_with_a_symlink_sees_the_target_edit() {
    declared_dir()
        .mutate(|t| t.write("elsewhere/real.txt", "second real\n"))
        .shapes(THREE)
        .check();
}

#[test]
fn declared_directory_file_renamed_is_seen() {
    declared_dir()
        .mutate(|t| {
            t.remove("lister/data/two.txt");
            t.write("lister/data/zwei.txt", "two\n");
        })
        .shapes(THREE)
        .check();
}

#[test]
fn declared_directory_gaining_an_empty_subdirectory_is_seen() {
    declared_dir()
        .mutate(|t| t.mkdir("lister/data/empty"))
        .shapes(THREE)
        .check();
}

#[test]
fn file_made_executable_in_a_declared_directory_is_seen() {
    declared_dir()
        .mutate(|t| t.make_executable("lister/data/one.txt"))
        .shapes(THREE)
        .check();
}

#[test]
fn declared_missing_file_created_is_seen() {
    declared_dir()
        .mutate(|t| t.write("lister/optional.txt", "now present\n"))
        .shapes(THREE)
        .check();
}

/// `fixtures/soundness/ignored`: a root package whose build script declares nothing, so
/// any file of the package reruns it — for cargo, any file git does not ignore.
fn ignored() -> Case {
    Case::new("ignored", "ignored")
}

/// An ignored file (an editor's `tags`) is not an input: the run is still a hit.
#[test]
fn gitignored_file_added_keeps_the_build_script_run_a_hit() {
    ignored()
        .git()
        .mutate(|t| t.write("tags", "main\tsrc/main.rs\t1\n"))
        .unobservable("an ignored file changes nothing")
        .expect_run_hit("ignored")
        .shapes(FRESH_ONLY)
        .check();
}

/// A stale in-tree `target/` (git-ignored) while the build uses a target dir elsewhere.
#[test]
fn stale_in_tree_target_dir_keeps_the_build_script_run_a_hit() {
    ignored()
        .git()
        .args(&["--target-dir", "{ws}-out"])
        .mutate(|t| t.write("target/debug/stale-artifact", "left by an old build\n"))
        .unobservable("an ignored directory changes nothing")
        .expect_run_hit("ignored")
        .shapes(FRESH_ONLY)
        .check();
}

/// The store inside the package whose build script declares nothing: the build writes
/// files of that package as it goes.
#[test]
fn store_inside_the_package_gives_the_same_program() {
    ignored()
        .store_inside(".xcache-store")
        .mutate(|t| t.write("data.txt", "second data\n"))
        .shapes(THREE)
        .check();
}

/// `fixtures/soundness/git-rev`: a build script that runs `git rev-parse HEAD` and
/// passes on the commit git finds walking up from the package (none in the fixture).
fn git_rev() -> Case {
    Case::new("git-rev", "git-rev")
}

/// A repository appears in the directory above the checkout: git, walking up, finds
/// its commit, which the program prints. The first build's walk found nothing above
/// *its* checkout; what it asked of the directories above is asked again above this
/// one, not above the first.
#[test]
fn repository_above_the_checkout_is_seen() {
    git_rev()
        .mutate(|t| crate::common::git_repository_at(t.ws.parent().unwrap(), "above"))
        .shapes(&[FreshTarget, FreshTargetNoSeed, MovedCheckout])
        .check();
}
