//! Observing what a compile or a build-script run reads. Main types: [`Observer`],
//! [`Trace`], and [`classify`]'s [`Scope`].
//!
//! A small C library (`preload.c`, built by `build.rs`, embedded here and written to the
//! private directory, never to a store) is preloaded
//! (`LD_PRELOAD`) into the process the wrapper starts and every process it starts in
//! turn. It records each file opened, each path asked about (also those that did not
//! exist), each directory listed, each environment variable read and each program run,
//! and notes any child that escapes observation (a statically linked program, an
//! environment without the library). [`classify`] turns that record into the unit's
//! inputs (`key::Input`), leaving out what the key covers otherwise.
//!
//! The environment read whole (a walk of the `environ` array, `/proc/self/environ`) is
//! seen through a guard on the array (`preload.c`) and keyed by [`whole_env_inputs`]:
//! on every variable, or, for the `cc` crate's copy of it, on those its code consults
//! (`cc_env`).
//!
//! What is not seen: code that makes system calls without the C library (Go programs,
//! raw `syscall`), detected when such a program is started (static binary).

mod above;
mod cc_env;
pub(crate) mod classify;
mod file_macros;
mod trace;
mod walkers;
mod whole_env;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use classify::{Classified, Scope, before_run, bound_roots, classify, env_inputs, var_inputs};
pub use trace::{Event, Op, Trace};
pub use whole_env::{Reach, env_set_now, is_cargo_part, whole_env_inputs};

use crate::interpose::{OBSERVER as LIBRARY, private_library};

/// The variable naming the file the library appends to.
pub const LOG_VAR: &str = "XCACHE_OBSERVE_LOG";

/// True when this build of cargo-xcache can observe (Linux).
pub fn available() -> bool {
    !LIBRARY.is_empty()
}

/// The library written into `dir` (under a name made of its digest, so two versions of
/// cargo-xcache never overwrite each other's), and checked byte for byte against what
/// this binary carries before every use: it is loaded into every compile and
/// build-script run. `dir` is the private directory (`crate::private_dir`), which only
/// this user writes; the check keeps a damaged copy from running.
pub fn library_in(dir: &Path) -> io::Result<PathBuf> {
    if !available() {
        return Err(io::Error::other(
            "observation is not available on this platform",
        ));
    }
    private_library(dir, "observe", LIBRARY)
}

/// One observed run: where its record goes, and the environment that loads the library.
pub struct Observer {
    library: PathBuf,
    log: PathBuf,
}

impl Observer {
    /// An observer loading the library kept in the private directory, its record written
    /// to a new file there (neither in a store: `crate::private_dir`).
    pub fn new() -> io::Result<Observer> {
        let lib_dir = crate::private_dir::private_dir()?;
        let tmp = lib_dir.join("records");
        let library = library_in(&lib_dir)?;
        std::fs::create_dir_all(&tmp)?;
        let log = tempfile::Builder::new()
            .prefix("observe-")
            .tempfile_in(&tmp)?
            .into_temp_path()
            .keep()
            .map_err(|e| e.error)?;
        Ok(Observer { library, log })
    }

    /// Makes `cmd` run observed. `preload` is the `LD_PRELOAD` the process would have had
    /// (kept, after ours).
    pub fn apply(&self, cmd: &mut Command, preload: Option<&str>) {
        let mut value = self.library.to_string_lossy().into_owned();
        if let Some(p) = preload.filter(|p| !p.is_empty()) {
            value.push(':');
            value.push_str(p);
        }
        cmd.env("LD_PRELOAD", value).env(LOG_VAR, &self.log);
    }

    /// Reads the record of a run whose first process was `root`, and removes it.
    pub fn finish(self, root: u32) -> io::Result<Trace> {
        let text = std::fs::read(&self.log);
        crate::private_dir::remove_later(&self.log);
        Ok(Trace::parse(&String::from_utf8_lossy(&text?), root))
    }

    /// The record as it is written (for a worker that sends it to the client, which
    /// parses it with [`Trace::parse`]), and removes it.
    pub fn read_log(self) -> io::Result<String> {
        let text = std::fs::read(&self.log);
        crate::private_dir::remove_later(&self.log);
        Ok(String::from_utf8_lossy(&text?).into_owned())
    }

    /// Removes the record without reading it.
    pub fn discard(self) {
        crate::private_dir::remove_later(&self.log);
    }
}

/// Variables a process's results never depend on, whoever reads them: scheduling, the
/// terminal, temporary directories, this program's own settings, and the toolchain
/// proxy's and C compiler driver's internal hand-offs. Listed with why in the book
/// (design/observation.md).
pub const IGNORED_VARS: &[&str] = &[
    // This program (cargo runs it as the wrapper) and the observer.
    "RUSTC_WRAPPER",
    "LD_PRELOAD",
    LOG_VAR,
    // Scheduling: how many jobs, the jobserver.
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "NUM_JOBS",
    // The terminal.
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "GCC_COLORS",
    "GCC_URLS",
    "TERM_URLS",
    // Temporary directories: where scratch files go, not what they hold.
    "TMPDIR",
    "TMP",
    "TEMP",
    // The rustup proxy: which toolchain runs is the compiler identity's business.
    "RUST_RECURSION_COUNT",
    // What the C compiler driver passes to its own subprocesses.
    "COLLECT_GCC",
    "COLLECT_GCC_OPTIONS",
    "COLLECT_LTO_WRAPPER",
    "GCC_EXTRA_DIAGNOSTIC_OUTPUT",
];

/// True for variables no key takes, whoever reads them.
pub fn is_ignored_var(name: &str) -> bool {
    IGNORED_VARS.contains(&name)
        || name.starts_with("XCACHE_")
        || name.starts_with("CARGO_TERM_")
        || name.starts_with("RUSTUP_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `cmd` observed, to a successful end, and returns what it did.
    fn run_observed(mut cmd: Command) -> Trace {
        let observer = Observer::new().unwrap();
        observer.apply(&mut cmd, None);
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        observer.finish(pid).unwrap()
    }

    /// A C program that lets the C library read the environment for itself (`setlocale`,
    /// which the library wraps) and then walks `environ`: the walk is recorded. With one
    /// thread the wrapped call runs with `environ` at the readable copy; a copy left in
    /// place after the call would let the walk go unseen.
    #[test]
    fn a_walk_after_a_wrapped_c_library_call_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("walk.c");
        std::fs::write(
            &src,
            "#include <locale.h>\n#include <string.h>\nextern char **environ;\n\
             int main(void) {\n  setlocale(LC_ALL, \"\");\n  int n = 0;\n  \
             for (char **e = environ; *e; e++) if (!strncmp(*e, \"WALKME\", 6)) n++;\n  \
             return n == 1 ? 0 : 3;\n}\n",
        )
        .unwrap();
        let exe = dir.path().join("walk");
        let built = Command::new("cc")
            .arg("-O0")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("a C compiler (cc)");
        assert!(built.success());
        let mut cmd = Command::new(&exe);
        cmd.env("WALKME", "1");
        let trace = run_observed(cmd);
        let walks = trace.events.iter().filter(|e| e.op == Op::EnvAll).count();
        assert!(
            walks > 0,
            "the walk after setlocale went unseen: {:?}",
            trace.events
        );
        // setlocale's own reads are recorded by name.
        assert!(
            trace
                .events
                .iter()
                .any(|e| e.op == Op::Env && e.path == "LC_ALL"),
            "{:?}",
            trace.events
        );
    }

    /// A read of a variable, and a walk of the environment, are recorded with the object
    /// whose code made them: a shared library's by the library's path (as a proc-macro's
    /// are told from the compiler's), the program's by the program's path, however it
    /// was started; a walk with its chain of calls in that object.
    #[test]
    fn reads_are_told_apart_by_the_object_that_made_them() {
        let dir = tempfile::tempdir().unwrap();
        let cc = |args: &[&std::ffi::OsStr]| {
            let out = Command::new("cc")
                .args(args)
                .output()
                .expect("a C compiler (cc)");
            assert!(out.status.success(), "{out:?}");
        };
        let lib_src = dir.path().join("lib.c");
        std::fs::write(
            &lib_src,
            "#include <stdlib.h>\n#include <string.h>\nextern char **environ;\n\
             int lib_reads(void) {\n  int n = getenv(\"LIB_VAR\") != 0;\n  \
             for (char **e = environ; *e; e++) if (!strncmp(*e, \"WALKME\", 6)) n++;\n  \
             return n;\n}\n",
        )
        .unwrap();
        let lib = dir.path().join("libreads.so");
        cc(&[
            "-O0".as_ref(),
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            lib.as_os_str(),
            lib_src.as_os_str(),
        ]);
        let main_src = dir.path().join("main.c");
        std::fs::write(
            &main_src,
            "#include <stdlib.h>\nint lib_reads(void);\n\
             int main(void) {\n  int n = getenv(\"MAIN_VAR\") != 0;\n  \
             return lib_reads() + n == 3 ? 0 : 3;\n}\n",
        )
        .unwrap();
        let exe = dir.path().join("main");
        let rpath = format!("-Wl,-rpath,{}", dir.path().display());
        cc(&[
            "-O0".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
            main_src.as_os_str(),
            lib.as_os_str(),
            rpath.as_ref(),
        ]);
        // Started by a relative name from its own directory: the program is still named
        // by its path.
        let mut cmd = Command::new("./main");
        cmd.current_dir(dir.path())
            .env("WALKME", "1")
            .env("LIB_VAR", "1")
            .env("MAIN_VAR", "1");
        let trace = run_observed(cmd);
        let exe = exe.canonicalize().unwrap();
        let lib = lib.canonicalize().unwrap();
        let read_by = |var: &str| {
            trace
                .events
                .iter()
                .find(|e| e.op == Op::Env && e.path == var)
                .and_then(|e| e.caller.clone())
        };
        assert_eq!(
            read_by("LIB_VAR").as_deref(),
            lib.to_str(),
            "{:?}",
            trace.events
        );
        assert_eq!(
            read_by("MAIN_VAR").as_deref(),
            exe.to_str(),
            "{:?}",
            trace.events
        );
        let walk = trace
            .events
            .iter()
            .find(|e| e.op == Op::EnvAll && e.path == lib.to_str().unwrap())
            .unwrap_or_else(|| panic!("no walk by {}: {:?}", lib.display(), trace.events));
        let what = walk.caller.as_deref().unwrap_or("");
        assert!(
            what.starts_with("lib_reads @ +0x"),
            "the walk's function and chain: {what:?}"
        );
    }
}
