//! Checkouts on a file system mounted below `/dev` (`/dev/shm`, a memory file system
//! some CI systems build in). Paths below `/dev` were all taken for device files: what a
//! build script or a proc-macro read there was an input of nothing, so an edit of an
//! undeclared file was replayed stale. The same cases as their originals, every build
//! below `/dev/shm`.

use crate::soundness::harness::Case;
use crate::soundness::harness::Shape::*;

const DEV_SHM: &str = "/dev/shm";

#[test]
fn below_dev_shm_a_script_reading_an_undeclared_sibling_file_sees_its_edit() {
    Case::new("sibling", "app")
        .scratch_in(DEV_SHM)
        .mutate(|t| t.write("shared/undeclared.txt", "second undeclared\n"))
        .stale_in_same_target("the script declared another file only: cargo does not rerun it")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
        .check();
}

#[test]
fn below_dev_shm_a_proc_macro_reading_a_file_sees_its_edit() {
    Case::new("macro-io", "app")
        .scratch_in(DEV_SHM)
        .mutate(|t| t.write("declared/assets/greeting.txt", "second greeting\n"))
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}
