//! A slice of the suite in each of cargo's other layouts (`common::layouts`): a build
//! dir apart from the target dir, the new layout, and both. The same cases as their
//! legacy-layout originals (a source edit, a build script's undeclared variable, C
//! against a header in `OUT_DIR`, `OUT_DIR`'s length), with every build (plain cargo's
//! too) in the layout, and no cache build saying planting is off. Without a nightly
//! toolchain the new layouts are not tried (and the test prints why).

use crate::common::layouts::CargoLayout;
use crate::soundness::harness::Case;
use crate::soundness::harness::Shape::*;

/// The cases, each made for one layout.
fn in_each(layout: &str, case: impl Fn(&CargoLayout) -> Case) {
    if let Some(l) = CargoLayout::all().into_iter().find(|l| l.name == layout) {
        case(&l).layout(&l).check();
    }
}

fn source_edit(_: &CargoLayout) -> Case {
    Case::new("ordinary", "app")
        .mutate(|t| t.edit("dep/src/lib.rs", "\"first source\"", "\"second source\""))
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
}

fn script_undeclared_env(_: &CargoLayout) -> Case {
    Case::new("build-env", "app")
        .env_after("GEN_UNDECLARED", "changed")
        .stale_in_same_target("the script never declared GEN_UNDECLARED: cargo does not rerun it")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed])
}

fn c_header_in_out_dir(_: &CargoLayout) -> Case {
    Case::new("sys-include", "app")
        .mutate(|t| t.write("foo-sys/gen.txt", "7\n"))
        .shapes(&[SameTarget, FreshTarget])
}

/// `OUT_DIR` lies in the build dir: where that is apart, it is the build dir that moves.
fn out_dir_length(layout: &CargoLayout) -> Case {
    let case = Case::new("paths", "run-path-len")
        .env("LENS_RUN_PATH", "out")
        .args_after(&["--target-dir", "{ws}-much-longer-target-dir"])
        .shapes(&[FreshTarget, MovedCheckout]);
    if layout.build_dir_apart {
        case.env_after("CARGO_BUILD_BUILD_DIR", "{ws}-much-longer-build-dir")
    } else {
        case
    }
}

macro_rules! slice {
    ($($layout:literal => $module:ident),*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn path_dependency_source_edit_is_seen() {
                in_each($layout, source_edit);
            }

            #[test]
            fn build_script_reading_an_undeclared_env_var_sees_its_change_in_a_fresh_target() {
                in_each($layout, script_undeclared_env);
            }

            #[test]
            fn header_generated_in_a_links_crates_out_dir_sees_its_change() {
                in_each($layout, c_header_in_out_dir);
            }

            #[test]
            fn out_dir_length_passed_on_by_a_build_script_follows_the_target_dir() {
                in_each($layout, out_dir_length);
            }
        }
    )*};
}

slice!("build-dir" => build_dir_apart, "new" => new_layout, "new-build-dir" => new_layout_build_dir_apart);
