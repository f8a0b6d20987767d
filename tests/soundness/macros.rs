//! Proc-macros that read the machine at expansion time (`fixtures/soundness/macro-io`):
//! what they read is in no dep-info, so neither rustc nor a key built from dep-info sees
//! it. `declared` has a build script declaring the directories its macros read (the
//! `include_dir!` advice), `undeclared` has none.

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case};

fn macro_io() -> Case {
    Case::new("macro-io", "app")
}

#[test]
fn proc_macro_reading_a_file_sees_its_edit() {
    macro_io()
        .mutate(|t| t.write("declared/assets/greeting.txt", "second greeting\n"))
        .shapes(ALL)
        .check();
}

#[test]
fn proc_macro_reading_a_file_without_build_script_sees_its_edit_in_a_fresh_target() {
    macro_io()
        .mutate(|t| t.write("undeclared/notes/note.txt", "second note\n"))
        .stale_in_same_target("nothing declares the file: cargo keeps the old expansion")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn proc_macro_listing_a_directory_sees_an_added_file() {
    macro_io()
        .mutate(|t| t.write("declared/assets/added.txt", "added\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn proc_macro_reading_an_env_var_sees_its_change_in_a_fresh_target() {
    macro_io()
        .env_after("SOUNDNESS_MACRO_ENV", "changed")
        .stale_in_same_target("std::env::var in a proc-macro is tracked by nobody")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

#[test]
fn proc_macro_probing_a_file_sees_it_created() {
    macro_io()
        .mutate(|t| t.write("declared/probe/flag.txt", "now here\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn proc_macro_probing_a_file_sees_it_deleted() {
    macro_io()
        .mutate(|t| t.remove("declared/probe/present.txt"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn proc_macro_source_edit_reaches_its_dependents() {
    macro_io()
        .mutate(|t| t.edit("probe/src/lib.rs", "names.join(\"+\")", "names.join(\",\")"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

/// `fixtures/soundness/macro-paths`: proc-macros that read the consuming package's
/// directory with `std::env::var("CARGO_MANIFEST_DIR")` (as `proc-macro-crate` and
/// `git_version!` do), as a path or made into a number. Such a read names the checkout,
/// and the unit is bound to it unless an expansion with every root at an alias (realpath
/// and the working directory told there too) gives the same text.
fn macro_paths(program: &'static str) -> Case {
    Case::new("macro-paths", program)
}

/// As a path only: the expansions agree, the record is free of the checkout, and a moved
/// checkout whose file says something else sees it (the file is keyed where it is read,
/// through the alias or not).
#[test]
fn proc_macro_reading_a_file_through_the_manifest_dir_sees_its_edit_in_a_moved_checkout() {
    macro_paths("reads")
        .mutate(|t| t.write("reads/data.txt", "another text\n"))
        .shapes(&[MovedCheckout])
        .check();
}

#[test]
fn proc_macro_making_a_number_of_the_manifest_dir_follows_the_moved_checkout() {
    macro_paths("lengths").shapes(&[MovedCheckout]).check();
}

/// The directory made real first: only an expansion that answers `realpath` at the
/// alias sees the number change.
#[test]
fn proc_macro_making_a_number_of_the_canonical_manifest_dir_follows_the_moved_checkout() {
    macro_paths("canonical").shapes(&[MovedCheckout]).check();
}
