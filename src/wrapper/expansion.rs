//! Whether the roots a compile's variables name reach its program: the expansion check.
//!
//! `include!(concat!(env!("OUT_DIR"), "/gen.rs"))` reads `OUT_DIR`, whose value names the
//! target dir; so does `const L: usize = env!("OUT_DIR").len();`. Only the second puts
//! the path, or something computed from it, into the program, and no scan of the output
//! can tell the two apart (a length holds no path bytes). What `env!` and
//! `option_env!` give is a literal in the crate after macro expansion, and nothing after
//! expansion reads them again; so the crate is expanded twice (`-Zunpretty=expanded`,
//! allowed on a stable compiler by `RUSTC_BOOTSTRAP=1`, as `cargo expand` does): once
//! with the variables as the compile saw them, once with each root they name replaced by
//! an alias of another length and other bytes (a symbolic link to it, so every file
//! reads the same), remapped to the same path. The same text both times: the root went
//! no further than file paths, which the remapping covers, and the unit need not be
//! bound to it. Any difference, any failure, a compile that read `RUSTC_BOOTSTRAP`
//! itself: the unit stays bound.
//!
//! One expansion is enough where the compile loaded no proc-macro. Then a value `env!`
//! gives leaves the expanded text only through the `include` macros (`include!`,
//! `include_str!`, `include_bytes!`), which take it as a path (and the alias is a link
//! to the same place); anything else keeps it as a literal, printed as it is, however
//! it is used afterwards (`.len()` is evaluated after expansion). So the aliased
//! expansion alone answers: no alias anywhere in its text, and the roots stay out. A
//! proc-macro can take a literal in and give something computed from it out (its
//! length: `proc_macro::TokenStream::expand_expr`); where one was loaded, both
//! expansions run and are compared. (A proc-macro's own read of a variable, by name or
//! by walking the environment, is the observer's: the caller never asks about such a
//! root.) An alias whose path would be printed escaped (a temporary directory with
//! quotes or other bytes in its name) also means both.
//!
//! Main function: [`roots_stay_out`].

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::key::{PathMap, Root, RustcInvocation};

/// True if expanding `inv` gives the same text with every root of `roots` behind an
/// alias in the values of `vars` (name, value as the compile saw it). `command` makes
/// the command that runs the compiler (the workspace wrapper in front of rustc, if any).
/// `macros`: the compile loaded a proc-macro (else one aliased expansion answers, see
/// the module's notes).
pub(super) fn roots_stay_out(
    command: impl Fn() -> Command,
    inv: &RustcInvocation,
    pm: &PathMap,
    vars: &[(String, String)],
    roots: &[Root],
    macros: bool,
) -> bool {
    if roots.is_empty() || vars.is_empty() {
        return false;
    }
    // In the private directory, removed after cargo under the front-end
    // (`private_dir::remove_later`).
    let Some(tmp) = crate::private_dir::private_subdir("expand")
        .ok()
        .and_then(|d| {
            tempfile::Builder::new()
                .prefix("xcache-expand-")
                .tempdir_in(d)
                .ok()
        })
        .map(|t| crate::private_dir::RemovedLater::new(t.keep()))
    else {
        return false;
    };
    let mut aliases: Vec<(&Root, PathBuf)> = Vec::with_capacity(roots.len());
    for (i, r) in roots.iter().enumerate() {
        let mut alias = tmp.path().join(format!("root-{i}"));
        if alias.as_os_str().len() == r.real.len() {
            alias = tmp.path().join(format!("root-{i}-longer"));
        }
        if std::os::unix::fs::symlink(&r.real, &alias).is_err() {
            return false;
        }
        aliases.push((r, alias));
    }
    let scratch = tmp.path().join("out");
    if std::fs::create_dir(&scratch).is_err() {
        return false;
    }
    let mut probe = inv.with_out_dir(&scratch);
    probe.drop_incremental();
    let args = without_emit(&probe.args);
    let expand = |aliased: bool| -> Option<Vec<u8>> {
        let mut cmd = command();
        cmd.args(pm.remap_args()).args(&args);
        if aliased {
            // After every other remapping: rustc applies the last that matches.
            for (r, alias) in &aliases {
                cmd.arg(format!(
                    "--remap-path-prefix={}={}",
                    alias.display(),
                    pm.remapped(Path::new(&r.real))
                ));
            }
            for (name, value) in vars {
                cmd.env(name, aliased_value(value, pm, &aliases));
            }
        }
        cmd.arg("-Zunpretty=expanded")
            .env("RUSTC_BOOTSTRAP", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let out = cmd.output().ok()?;
        (out.status.success() && !out.stdout.is_empty()).then_some(out.stdout)
    };
    if !macros && aliases.iter().all(|(_, a)| printed_as_is(a)) {
        return expand(true).is_some_and(|text| {
            aliases
                .iter()
                .all(|(_, a)| memchr::memmem::find(&text, a.as_os_str().as_bytes()).is_none())
        });
    }
    match (expand(false), expand(true)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether `path` is printed in a string literal byte for byte: only letters, digits
/// and `/._-` (the expansion escapes quotes, backslashes and anything not ASCII).
fn printed_as_is(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(b))
}

/// `value` with each aliased root replaced by its alias (the other roots as they are).
fn aliased_value(value: &str, pm: &PathMap, aliases: &[(&Root, PathBuf)]) -> String {
    let mut out = pm.normalize_text(value);
    for (r, alias) in aliases {
        out = out.replace(r.kind.token(), &alias.to_string_lossy());
    }
    pm.expand_text(&out)
}

/// `args` without `--emit` (an expansion writes nothing but its text).
fn without_emit(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--emit" {
            it.next();
        } else if !a.starts_with("--emit=") {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_is_left_out_in_both_spellings() {
        let args: Vec<String> = ["--emit=link", "a.rs", "--emit", "metadata", "-C", "x=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(without_emit(&args), ["a.rs", "-C", "x=1"]);
    }
}
