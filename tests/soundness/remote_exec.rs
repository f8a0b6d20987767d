//! A slice of the suite with remote execution on: every cache build sends its library
//! compiles to workers on other hosts (`common::hosts`: each worker in network, mount
//! and PID namespaces of its own, in a Debian trixie root with no Rust, reaching the
//! farm's BuildGrid over its link; the toolchain comes with each action through the
//! CAS), plain cargo stays the reference. The rows are the ones where a compile reads
//! what a worker has otherwise: data files through `include_str!`, `env!` of a variable
//! naming this machine's paths (`CARGO_MANIFEST_DIR` inside `CARGO_HOME`), `OUT_DIR`
//! and `env!` from a build script, a proc-macro reading files at expansion time, a
//! proc-macro's own source edited. Proc-macros, linked by `cc`, are never served there
//! (no worker has this machine's linker): each build waits the queue wait (3 s) once,
//! then compiles them here. One farm serves every row, one after the other.

use crate::common::hosts::Farm;
use crate::soundness::harness::Case;
use crate::soundness::harness::Shape::*;

#[test]
fn library_compiles_on_workers_give_plain_cargos_programs() {
    let mut farm = Farm::start();
    let hosts = [farm.host("w1", &[]), farm.host("w2", &[])];
    let uri = farm.exec_uri();
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
            "a proc-macro's source edited (compiled here, expanded on the workers)",
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
    let completed = || farm.completed_by("w1").len() + farm.completed_by("w2").len();
    for (what, case) in cases {
        let before = completed();
        case.executor(&uri).executor_queue_wait("3s").check();
        eprintln!(
            "{what}: {} compiles completed on the hosts",
            completed() - before
        );
        // The differential is not vacuous: BuildGrid's job table shows compiles that
        // the workers on the other hosts completed for this row.
        assert!(
            completed() > before,
            "{what}: no compile completed on a worker host: {:?}\nw1:\n{}\nw2:\n{}",
            farm.jobs(),
            hosts[0].log_text(),
            hosts[1].log_text()
        );
    }
}
