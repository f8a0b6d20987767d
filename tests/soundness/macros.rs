//! Proc-macros that read the machine at expansion time (`fixtures/soundness/macro-io`):
//! what they read is in no dep-info, so neither rustc nor a key built from dep-info sees
//! it. `declared` has a build script declaring the directories its macros read (the
//! `include_dir!` advice), `undeclared` has none.

use crate::harness::Shape::*;
use crate::harness::{ALL, Case};

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
