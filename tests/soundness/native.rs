//! Native code: static libraries named in the source or found on the system, headers a
//! `links` crate exports, and files the linker reads.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::soundness::harness::Shape::*;
use crate::soundness::harness::{ALL, Case, static_lib, write_file};

const THREE: &[crate::soundness::harness::Shape] = &[SameTarget, FreshTarget, FreshTargetNoSeed];

/// `fixtures/soundness/c-link`: `cnative` links `libfoo.a` (built into OUT_DIR) through
/// `#[link]` in its source; `sysprobe` links `libext.a` from FOO_LIB_DIR, outside every
/// tree.
fn c_link() -> Case {
    Case::new("c-link", "app")
        .outside(|dir| {
            static_lib(
                &dir.join("lib"),
                "ext",
                "int ext_value(void) { return 1; }\n",
            )
        })
        .env("FOO_LIB_DIR", "{outside}/lib")
}

#[test]
fn static_lib_named_in_source_is_relinked_after_its_c_edit() {
    c_link()
        .mutate(|t| t.write("cnative/csrc/foo.c", "int foo_value(void) { return 20; }\n"))
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

#[test]
fn system_library_replaced_outside_the_tree_is_not_planted_stale() {
    c_link()
        .mutate(|t| t.static_lib_outside("lib", "ext", "int ext_value(void) { return 2; }\n"))
        .stale_in_same_target("nothing declares the library file: cargo neither reruns nor relinks")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, Remote])
        .check();
}

/// `fixtures/soundness/sys-include`: `foo-sys` (links = "foo") exports its own header
/// directory, a generated header directory in OUT_DIR and a version; `bar` compiles C
/// against them.
fn sys_include() -> Case {
    Case::new("sys-include", "app")
}

#[test]
fn header_exported_by_a_links_crate_sees_its_edit() {
    sys_include()
        .mutate(|t| t.write("foo-sys/include/foo.h", "#define FOO_VALUE 2\n"))
        .shapes(THREE)
        .check();
}

#[test]
fn dep_links_value_change_is_seen() {
    sys_include()
        .mutate(|t| t.write("foo-sys/version.txt", "2.0-second\n"))
        .shapes(THREE)
        .check();
}

#[test]
fn header_generated_in_a_links_crates_out_dir_sees_its_change() {
    sys_include()
        .mutate(|t| t.write("foo-sys/gen.txt", "7\n"))
        .shapes(THREE)
        .check();
}

/// `fixtures/soundness/sys-outside`: `ext-sys` exports EXT_INCLUDE_DIR, a header
/// directory outside every tree; `user` compiles C against it.
#[test]
fn header_outside_the_tree_exported_by_a_links_crate_sees_its_edit_in_a_fresh_target() {
    Case::new("sys-outside", "app")
        .env("EXT_INCLUDE_DIR", "{outside}/include")
        .mutate(|t| t.write_outside("include/ext.h", "#define EXT_VALUE 2\n"))
        .stale_in_same_target("the header is declared by nobody: cargo reruns no script")
        .shapes(THREE)
        .check();
}

/// A linker wrapper (as `CARGO_TARGET_<triple>_LINKER`) that defines
/// `soundness_linker_value` with `--defsym`.
fn linker(dir: &Path, value: u32) {
    let path = dir.join("linker");
    write_file(
        &path,
        &format!("#!/bin/sh\nexec cc \"$@\" -Wl,--defsym=soundness_linker_value={value}\n"),
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `fixtures/soundness/link-script`: the binary's exported symbols come from
/// `syms.map`, named by `-Wl,--version-script=`, and it prints a value its linker
/// defines.
fn link_script() -> Case {
    Case::new("link-script", "exports")
        .outside(|dir| linker(dir, 1))
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "{outside}/linker",
        )
}

#[test]
fn version_script_edit_for_a_binary_is_seen() {
    link_script()
        .mutate(|t| t.write("syms.map", "{ local: *; };\n"))
        .shapes(THREE)
        .check();
}

/// The linker program edited in place, at the same path (a toolchain upgraded under a
/// fixed path, a wrapper script changed).
#[test]
fn linker_wrapper_edited_in_place_is_seen_in_a_fresh_target() {
    link_script()
        .mutate(|t| linker(&t.outside, 2))
        .stale_in_same_target("cargo does not look at the linker's contents")
        .shapes(THREE)
        .check();
}

/// `fixtures/soundness/c-paths`: `cwhere`'s build script compiles C with debug
/// information from its absolute path, with `CC` and the first set spelling of `CFLAGS`
/// (as the `cc` crate does); the program prints the C's `__FILE__` and a value `-DVALUE`
/// may set.
fn c_paths() -> Case {
    Case::new("c-paths", "app")
}

/// The debug information is remapped, `__FILE__` is not: the moved checkout's program
/// prints its own path, as plain cargo's does.
#[test]
fn c_file_macro_follows_the_moved_checkout() {
    c_paths()
        .mutate(|t| t.edit("cwhere/csrc/where.c", "VALUE 1", "VALUE 2"))
        .shapes(&[SameTarget, FreshTarget, MovedCheckout, Remote])
        .check();
}

/// `fixtures/soundness/cc-file`: `cwhere` again, its C compiled by the `cc` crate in a
/// version that turns cargo's trim-paths variables into prefix maps (`__FILE__`'s too).
fn cc_file() -> Case {
    Case::new("cc-file", "app")
}

/// The cache gives such a `cc` no trim-paths variables of its own: the program prints the
/// `__FILE__` plain cargo's prints, in the checkout and in a moved one.
#[test]
fn c_file_macro_of_a_recent_cc_is_plain_cargos() {
    cc_file()
        .mutate(|t| t.edit("cwhere/csrc/where.c", "VALUE 1", "VALUE 2"))
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}

/// The user's `CFLAGS` reach the compiler beside the remapping, and their change is seen.
#[test]
fn user_cflags_are_kept_and_their_change_is_seen() {
    c_paths()
        .env_before("CFLAGS", "-DVALUE=3")
        .env_after("CFLAGS", "-DVALUE=4")
        .shapes(&[SameTarget, FreshTarget, FreshTargetNoSeed, MovedCheckout])
        .check();
}

/// A spelling the `cc` crate prefers to `CFLAGS` (`HOST_CFLAGS` for a host build) is kept.
#[test]
fn user_host_cflags_are_kept_and_their_change_is_seen() {
    c_paths()
        .env("CFLAGS", "-DVALUE=8")
        .env_before("HOST_CFLAGS", "-DVALUE=5")
        .env_after("HOST_CFLAGS", "-DVALUE=6")
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}

/// A compiler that refuses `-fdebug-prefix-map` (as `CC`) gets none: the build succeeds
/// and gives what plain cargo gives.
#[test]
fn a_compiler_refusing_the_prefix_map_still_builds() {
    c_paths()
        .outside(|dir| {
            let path = dir.join("picky-cc");
            write_file(
                &path,
                "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -fdebug-prefix-map*) \
                 echo \"picky-cc: unknown option $a\" >&2; exit 1;; esac; done\nexec cc \"$@\"\n",
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        })
        .env("CC", "{outside}/picky-cc")
        .mutate(|t| t.edit("cwhere/csrc/where.c", "VALUE 1", "VALUE 9"))
        .shapes(&[SameTarget, FreshTarget, MovedCheckout])
        .check();
}

/// `fixtures/soundness/cc-vendored`: `vend-sys` compiles its vendored C with the real
/// `cc` crate (1.2.7, which ignores cargo's trim-paths variables) and exports its
/// header directory; `user`'s script compiles C against it; the program prints both
/// values and the length of the vendored C's `__FILE__`.
fn cc_vendored() -> Case {
    Case::new("cc-vendored", "app")
}

/// The vendored C source, which the script does not declare, edited: plain cargo in a
/// fresh target dir runs the script again, and so must the cache.
#[test]
fn vendored_c_source_of_a_sys_crate_edited_reruns_its_script() {
    cc_vendored()
        .mutate(|t| t.edit("vend-sys/vendor/src/vend.c", "VEND_ADD 1", "VEND_ADD 5"))
        .stale_in_same_target("the script declares the headers, not the sources")
        .shapes(&[
            SameTarget,
            FreshTarget,
            FreshTargetNoSeed,
            MovedCheckout,
            Remote,
        ])
        .check();
}

/// The header in the directory `DEP_VEND_INCLUDE` names, edited: both scripts that
/// compile against it run again.
#[test]
fn header_in_a_dep_include_directory_edited_reruns_every_script_using_it() {
    cc_vendored()
        .mutate(|t| {
            t.edit(
                "vend-sys/vendor/include/vend.h",
                "VEND_BASE 1",
                "VEND_BASE 3",
            )
        })
        .shapes(ALL)
        .check();
}

/// A moved checkout: the vendored C's `__FILE__` follows the move as under plain cargo
/// (that run is bound to the checkout by the string), while `user`'s run, whose objects
/// name the checkout and the include directory only in their debug information, is
/// remapped and replayed.
#[test]
fn a_moved_checkout_keeps_c_debug_paths_remapped_and_file_macros_real() {
    cc_vendored()
        .mutate(|t| t.edit("app/src/main.rs", "\"vend={}", "\"moved vend={}"))
        .expect_run_hit("user")
        .shapes(&[FreshTarget, FreshTargetNoSeed, MovedCheckout, Remote])
        .check();
}

/// `fixtures/soundness/cc-copy`: `copied`'s script compiles C with the `cc` crate
/// (1.11.1, which copies the environment when it starts and looks its variables up in
/// the copy, never through `getenv`); `named`'s names a variable of its own for cc's
/// flags (`try_flags_from_environment`) and tells cc not to declare what it reads. The
/// program prints both C values.
fn cc_copy() -> Case {
    Case::new("cc-copy", "app")
}

/// A flag variable cc takes from its copy, changed.
#[test]
fn a_flag_variable_cc_takes_from_its_copy_changed_is_seen() {
    cc_copy()
        .env_before("HOST_CFLAGS", "-DCOPIED_VALUE=2")
        .env_after("HOST_CFLAGS", "-DCOPIED_VALUE=3")
        .shapes(ALL)
        .check();
}

/// Another spelling of the flag variables, set after the first build.
#[test]
fn a_flag_variable_cc_takes_from_its_copy_added_is_seen() {
    cc_copy()
        .env_after("CFLAGS", "-DCOPIED_VALUE=4")
        .shapes(ALL)
        .check();
}

/// A variable the build script names to cc, which cc looks up in its copy: no list of
/// cc's own variables holds it, so the run is keyed on every variable. The script tells
/// cc not to declare it, so plain cargo does not rerun it in the same target dir.
#[test]
fn a_variable_the_script_names_for_cc_to_read_from_its_copy_is_seen() {
    cc_copy()
        .env_before("NAMED_CC_FLAGS", "-DNAMED_VALUE=5")
        .env_after("NAMED_CC_FLAGS", "-DNAMED_VALUE=6")
        .stale_in_same_target("the script tells cc not to declare what it reads")
        .shapes(ALL)
        .check();
}

/// `fixtures/soundness/c-long`: a build script too long to be made twice directly, which
/// compiles C. Its path check's second run takes the first run's object for a compile
/// started the same way (`wrapper::run_check`); `what` says what the C returns.
fn c_long(what: &str) -> Case {
    Case::new("c-long", "clong").env("CLONG_WHAT", what)
}

/// Nothing changes: in a moved checkout the run is replayed (its check took the
/// object), and the program is cargo's.
#[test]
fn a_long_c_compiling_run_is_replayed_in_a_moved_checkout() {
    c_long("plain")
        .unobservable("nothing changes")
        .expect_run_hit("clong")
        .shapes(&[MovedCheckout])
        .check();
}

/// The package directory's length reaches the C as `-DVALUE=`: the second run starts
/// its compile otherwise, compiles, and the outputs differ.
#[test]
fn a_path_length_passed_to_a_c_compile_follows_the_moved_checkout() {
    c_long("define").shapes(&[MovedCheckout]).check();
}

/// The same through a header the script writes into OUT_DIR: the compile read a file
/// the run made, so the object is not taken.
#[test]
fn a_path_length_in_a_generated_header_follows_the_moved_checkout() {
    c_long("header").shapes(&[MovedCheckout]).check();
}

/// A header the script writes into OUT_DIR with the same bytes wherever it is: the
/// second run's compile reads the same, the object is taken and the run replayed in a
/// moved checkout. With two flags in `RUSTFLAGS` (cargo separates them by 0x1f in
/// `CARGO_ENCODED_RUSTFLAGS`, which the compile's environment holds).
#[test]
fn a_long_c_compiling_run_reading_a_header_it_wrote_is_replayed_in_a_moved_checkout() {
    c_long("header-fixed")
        .env("RUSTFLAGS", "-C debuginfo=1")
        .unobservable("nothing changes")
        .expect_run_hit("clong")
        .shapes(&[MovedCheckout])
        .check();
}

/// The same through a C file the script writes into the temporary directory, compiled
/// under the same name in both runs.
#[test]
fn a_path_length_in_a_generated_temporary_source_follows_the_moved_checkout() {
    c_long("temp").shapes(&[MovedCheckout]).check();
}
