//! A slice of the suite with remote execution on: every cache build sends its library
//! compiles to workers of a real farm on 127.0.0.1 (`XCACHE_EXECUTOR`: PostgreSQL,
//! BuildGrid, two `cargo xcache worker`s), plain cargo stays the reference. The rows
//! are the ones where a compile reads what a worker has otherwise: data files through
//! `include_str!`, `env!` of a variable naming this machine's paths
//! (`CARGO_MANIFEST_DIR` inside `CARGO_HOME`), `OUT_DIR` and `env!` from a build script,
//! a proc-macro reading files at expansion time, a proc-macro's own source edited (its
//! compile, a link, goes to a worker too). One farm serves every row, one after the
//! other.

use crate::common::exec_servers::{Worker, buildgrid_exec, exec_uri, postgres};
use crate::soundness::harness::Case;
use crate::soundness::harness::Shape::*;

#[test]
fn library_compiles_on_workers_give_plain_cargos_programs() {
    let pg = postgres();
    let bgd = buildgrid_exec(&pg);
    let wdir = tempfile::tempdir().unwrap();
    let _w1 = Worker::start(&bgd, "w1", wdir.path(), &[]);
    let _w2 = Worker::start(&bgd, "w2", wdir.path(), &[]);
    let uri = exec_uri(&bgd);
    let blobs = wdir.path().join("blobs");
    let cases: Vec<(&str, Case)> = vec![
        (
            "include_str! data edited",
            Case::new("ordinary", "app")
                .mutate(|t| t.write("dep/src/data/text.txt", "second text\n"))
                .shapes(&[SameTarget, FreshTarget]),
        ),
        (
            "env!(CARGO_MANIFEST_DIR) of a package inside CARGO_HOME",
            Case::new("home-dep", "app")
                .env("CARGO_HOME", "{outside}/home")
                .mutate(|t| {
                    t.write_outside(
                        "home/homedep/src/lib.rs",
                        "pub const VALUE: &str = \"second home value\";\n\
                         pub const DIR_LEN: usize = env!(\"CARGO_MANIFEST_DIR\").len();\n",
                    )
                })
                .shapes(&[SameTarget, MovedCheckout]),
        ),
        (
            "OUT_DIR include and a build script's env! input edited",
            Case::new("build-env", "app")
                .mutate(|t| t.write("codegen/word.txt", "second\n"))
                .shapes(&[SameTarget, FreshTarget]),
        ),
        (
            "a proc-macro's source edited (linked on a worker)",
            Case::new("macro-io", "app")
                .mutate(|t| {
                    t.edit(
                        "probe/src/lib.rs",
                        "string(text.trim())",
                        "string(&text.trim().to_uppercase())",
                    )
                })
                .shapes(&[SameTarget, FreshTarget]),
        ),
        (
            "a proc-macro reading a file",
            Case::new("macro-io", "app")
                .mutate(|t| t.write("declared/assets/greeting.txt", "second greeting\n"))
                .shapes(&[SameTarget, FreshTarget]),
        ),
    ];
    for (what, case) in cases {
        let before = crate::common::count_files(&blobs);
        case.executor(&uri).check();
        // The workers were sent something to compile (the differential is not
        // vacuous): their blob cache grew.
        assert!(
            crate::common::count_files(&blobs) > before,
            "{what}: no compile reached a worker"
        );
    }
}
