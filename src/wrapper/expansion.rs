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
//! No expansion is needed where the compile loaded no proc-macro and no crate but the
//! sysroot's, and its sources show every `env!` of a variable that names a root to be
//! the path of an include: `include!(concat!(env!("OUT_DIR"), "/gen.rs"))` (or
//! `include_str!`, `include_bytes!`), as most crates whose build script writes code have
//! it ([`env_names_only_includes`]). Without a proc-macro, a macro that reads a variable
//! is called by name somewhere in the crate's own sources (its dep-info lists every file
//! it read, included ones too) or in a macro of a crate it loaded; the sysroot's macros
//! call no `env!`. So a crate whose sources, read as tokens (comments and literals are
//! no calls), name `env` and `option_env` only inside that one form or as a call of a
//! literal name whose variable names no root, name the include macros only as calls of
//! that form or of a literal path, and `concat` only as a call (nothing renamed to them,
//! passed to a macro or defined) gives the roots nowhere else: the answer the aliased
//! expansion would give. Anything else, and the expansion runs.
//!
//! Main functions: [`roots_stay_out`], [`env_names_only_includes`].

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proc_macro2::{Delimiter, TokenTree};

use crate::key::{PathMap, Root, RustcInvocation};

/// True if expanding `inv` gives the same text with every root of `roots` behind an
/// alias in the values of `vars` (name, value as the compile saw it). `command` makes
/// the command that runs the compiler (the workspace wrapper in front of rustc, if any).
/// `macros`: the compile loaded a proc-macro (else one aliased expansion answers, see
/// the module's notes).
///
/// `whole`: the roots were also read by what the compile ran (a proc-macro's
/// `std::env::var("CARGO_MANIFEST_DIR")`), not only through `env!`: then the aliased
/// expansion sees every root at its alias as a program would, its arguments and working
/// directory told there too, and the aliasing library (`alias.c`) preloaded so that
/// `realpath` and `getcwd` answer under the aliases as well (the kernel would answer
/// with the real paths, and a macro making a number of a canonical path would go
/// unseen). `whole` is the compile's working directory.
pub(super) fn roots_stay_out(
    command: impl Fn() -> Command,
    inv: &RustcInvocation,
    pm: &PathMap,
    vars: &[(String, String)],
    roots: &[Root],
    macros: bool,
    whole: Option<&Path>,
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
    let library = match whole {
        Some(_) => match super::run_check::alias_library() {
            Ok(l) => Some(l),
            Err(_) => return false,
        },
        None => None,
    };
    let expand = |aliased: bool| -> Option<Vec<u8>> {
        let mut cmd = command();
        cmd.args(pm.remap_args());
        match (aliased, whole) {
            (true, Some(cwd)) => {
                cmd.args(args.iter().map(|a| aliased_value(a, pm, &aliases)));
                cmd.current_dir(aliased_value(&cwd.to_string_lossy(), pm, &aliases));
                let mut map = String::new();
                for (r, alias) in &aliases {
                    map.push_str(&format!("{}\t{}\n", r.real, alias.display()));
                }
                let mut preload = library.as_ref()?.display().to_string();
                if let Ok(p) = std::env::var("LD_PRELOAD")
                    && !p.is_empty()
                {
                    preload.push(':');
                    preload.push_str(&p);
                }
                cmd.env("LD_PRELOAD", preload).env("XCACHE_ALIAS_MAP", map);
            }
            _ => {
                cmd.args(&args);
            }
        }
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
    if !macros && whole.is_none() && aliases.iter().all(|(_, a)| printed_as_is(a)) {
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

/// True if the sources a compile read (its dep-info's files) call `env!` and
/// `option_env!` of the variables `root_vars` (those whose values name a root) only as
/// the path of an include, and of others only by a literal name (see the module's
/// notes): then, where the compile loaded no proc-macro and no crate but the sysroot's,
/// the roots go no further than a file path, as an expansion would show. A file that is
/// not UTF-8 is no Rust source (rustc reads only UTF-8): it was included as bytes. A file
/// that does not read as Rust tokens, cannot be read, or is larger than
/// [`MAX_SOURCE_LEN`], means no.
pub(super) fn env_names_only_includes(sources: &[PathBuf], root_vars: &[&str]) -> bool {
    let read = |p: &PathBuf| -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(p)?
            .take(MAX_SOURCE_LEN + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    sources.iter().all(|p| match read(p) {
        // A file too large to hold as tokens within the wrapper's memory (a large table
        // included as text): the expansion answers.
        Ok(bytes) if bytes.len() as u64 > MAX_SOURCE_LEN => false,
        Err(_) => false,
        Ok(bytes) => match String::from_utf8(bytes) {
            Err(_) => true,
            Ok(text) => text
                .parse::<proc_macro2::TokenStream>()
                .is_ok_and(|tokens| names_only_includes(tokens, root_vars, false)),
        },
    })
}

/// The largest file read as tokens (a dense megabyte of source held as tokens took 16 MB,
/// freed before the next file); a compile that read a larger one is expanded instead.
const MAX_SOURCE_LEN: u64 = 1 << 20;

/// The macros whose names are watched: the two that read a variable, the three that
/// take a path, and the one that builds the path.
const WATCHED: &[&str] = &[
    "env",
    "option_env",
    "include",
    "include_str",
    "include_bytes",
    "concat",
];

fn ident_name(t: Option<&TokenTree>) -> Option<String> {
    match t {
        Some(TokenTree::Ident(i)) => {
            let s = i.to_string();
            Some(s.strip_prefix("r#").map(str::to_string).unwrap_or(s))
        }
        _ => None,
    }
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn is_str_literal(t: Option<&TokenTree>) -> bool {
    match t {
        Some(TokenTree::Literal(l)) => {
            let s = l.to_string();
            s.starts_with('"') || s.starts_with("r\"") || s.starts_with("r#")
        }
        _ => false,
    }
}

/// The group after `name !`, if the tokens at `i` are a call.
fn call_group(tt: &[TokenTree], i: usize) -> Option<&proc_macro2::Group> {
    match (is_punct(tt.get(i + 1), '!'), tt.get(i + 2)) {
        (true, Some(TokenTree::Group(g))) if g.delimiter() != Delimiter::None => Some(g),
        _ => None,
    }
}

/// A macro call's arguments: its tokens, without one trailing comma.
fn arguments(stream: proc_macro2::TokenStream) -> Vec<TokenTree> {
    let mut tt: Vec<TokenTree> = stream.into_iter().collect();
    if is_punct(tt.last(), ',') {
        tt.pop();
    }
    tt
}

/// An include's arguments that are a literal path.
fn is_literal_path(args: &[TokenTree]) -> bool {
    matches!(args, [l] if is_str_literal(Some(l)))
}

/// An include's arguments: a literal path, or `concat!(env!("NAME"), "lit", …)`.
fn include_argument_ok(tt: &[TokenTree]) -> bool {
    if is_literal_path(tt) {
        return true;
    }
    if tt.len() != 3 || ident_name(tt.first()).as_deref() != Some("concat") {
        return false;
    }
    let Some(args) = call_group(tt, 0) else {
        return false;
    };
    let a = arguments(args.stream());
    // `env ! ( "NAME" )`, then `, "lit"` one or more times.
    if a.len() < 5 || ident_name(a.first()).as_deref() != Some("env") {
        return false;
    }
    let env_ok = call_group(&a, 0).is_some_and(|g| {
        let inner: Vec<TokenTree> = g.stream().into_iter().collect();
        inner.len() == 1 && is_str_literal(inner.first())
    });
    let mut rest = &a[3..];
    if !env_ok || rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match rest {
            [c, l, more @ ..] if is_punct(Some(c), ',') && is_str_literal(Some(l)) => rest = more,
            _ => return false,
        }
    }
    true
}

/// A plain string literal's text (no escapes, not raw): a variable's name as written.
fn plain_str(t: Option<&TokenTree>) -> Option<String> {
    let s = match t {
        Some(TokenTree::Literal(l)) => l.to_string(),
        _ => return None,
    };
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then(|| inner.to_string())
}

/// `env!("NAME")` or `env!("NAME", "message")` (and `option_env!("NAME")`) of a
/// variable that names no root.
fn reads_a_plain_variable(group: &proc_macro2::Group, root_vars: &[&str]) -> bool {
    let a = arguments(group.stream());
    let name = match a.as_slice() {
        [name] => name,
        [name, c, m] if is_punct(Some(c), ',') && is_str_literal(Some(m)) => name,
        _ => return false,
    };
    plain_str(Some(name)).is_some_and(|name| !root_vars.contains(&name.as_str()))
}

/// The watched names occur only where the module's notes allow them. `in_input`: the
/// tokens are (inside) what a macro call is given, which the macro may take apart: an
/// include of `env!` there is no include until the macro says so
/// (`m!(include!(concat!(env!("OUT_DIR"), "/x")))` can hand its `env!("OUT_DIR")` to
/// `.len()`), so there only an include of a literal path passes.
fn names_only_includes(
    stream: proc_macro2::TokenStream,
    root_vars: &[&str],
    in_input: bool,
) -> bool {
    let tt: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tt.len() {
        match &tt[i] {
            TokenTree::Group(g) => {
                // `name ! ( … )`: a call's input (`macro_rules! name { … }` is none: its
                // group follows the name, not the `!`).
                let call_input = i >= 2
                    && is_punct(tt.get(i - 1), '!')
                    && matches!(tt.get(i - 2), Some(TokenTree::Ident(_)));
                if !names_only_includes(g.stream(), root_vars, in_input || call_input) {
                    return false;
                }
            }
            TokenTree::Ident(_) => {
                let name = ident_name(tt.get(i)).unwrap_or_default();
                if WATCHED.contains(&name.as_str()) {
                    let Some(group) = call_group(&tt, i) else {
                        return false;
                    };
                    match name.as_str() {
                        "include" | "include_str" | "include_bytes" => {
                            let args = arguments(group.stream());
                            if !include_argument_ok(&args) || (in_input && !is_literal_path(&args))
                            {
                                return false;
                            }
                            // The call is read whole: its `env!` is the allowed one.
                            i += 3;
                            continue;
                        }
                        // A call: its arguments are read like any tokens (the group next).
                        "concat" => {}
                        _ => {
                            if !reads_a_plain_variable(group, root_vars) {
                                return false;
                            }
                            i += 3;
                            continue;
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    true
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

    fn reads(src: &str) -> bool {
        names_only_includes(src.parse().expect("test source lexes"), &["OUT_DIR"], false)
    }

    #[test]
    fn an_include_of_out_dir_is_the_only_use_allowed() {
        // serde_core's, inside a macro of its own; libsqlite3-sys's.
        assert!(reads(
            "macro_rules! crate_root { () => { mod private { \n\
             include!(concat!(env!(\"OUT_DIR\"), \"/private.rs\")); } }; }\n\
             crate_root!();"
        ));
        assert!(reads(
            "#[allow(x)] mod bindings { include!(concat!(env!(\"OUT_DIR\"), \"/bindgen.rs\")); }"
        ));
        assert!(reads(
            "const T: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/a\", \"/b.txt\",));"
        ));
        assert!(reads(
            "#![doc = include_str!(\"../README.md\")] const B: &[u8] = include_bytes!(r\"x.bin\");"
        ));
        // Inside a macro's own definition, emitted as it is (serde_core's `crate_root!`);
        // a literal path given to a macro call.
        assert!(reads(
            "macro_rules! root { () => { pub mod p { include!(concat!(env!(\"OUT_DIR\"), \"/p.rs\")); } }; } \
             root!(); fn f() { assert_eq!(include_str!(\"a.txt\"), \"a\"); }"
        ));
        // Variables that name no root, read by a literal name.
        assert!(reads(
            "include!(concat!(env!(\"OUT_DIR\"), \"/g.rs\")); \
             pub const N: &str = env!(\"GEN_WORD_COUNT\"); \
             pub const M: &str = env!(\"CARGO_PKG_NAME\", \"set by cargo\",); \
             pub const O: Option<&str> = option_env!(\"GIT_REV\");"
        ));
        // Comments and literals name no macro; `concat!` is any other call.
        assert!(reads(
            "// env!(\"OUT_DIR\").len()\n/* option_env!(\"X\") */ /// include the env\n\
             const S: &str = \"env!(OUT_DIR)\"; const C: &str = concat!(\"a\", stringify!(b));"
        ));
    }

    #[test]
    fn every_other_use_of_a_watched_name_is_refused() {
        for src in [
            // The value itself, or computed from.
            "const L: usize = env!(\"OUT_DIR\").len();",
            "const L: usize = env!(\"OUT_DIR\", \"message\").len();",
            "const L: usize = env!(\"OUT\\x5fDIR\").len();",
            "const L: usize = env!(r\"OUT_DIR\").len();",
            "const L: usize = env!(concat!(\"OUT\", \"_DIR\")).len();",
            "macro_rules! v { ($n:literal) => { env!($n) } } const L: usize = v!(\"OUT_DIR\").len();",
            "const L: Option<&str> = option_env!(\"OUT_DIR\");",
            "const P: &str = concat!(env!(\"OUT_DIR\"), \"/x\");",
            "const P: &str = core::env!(\"OUT_DIR\");",
            // A name passed to a macro that calls it, or a path it cuts.
            "macro_rules! call { ($m:ident) => { $m!(\"OUT_DIR\") } } const P: &str = call!(env);",
            "macro_rules! m { ($a:ident :: $b:ident :: $c:ident) => { $a::$b!(\"OUT_DIR\") } } \
             fn f() { let _ = m!(std::env::var); }",
            "fn f() -> String { std::env::var(\"X\").unwrap() }",
            // Renamed or defined: the include would not be the include.
            "use core::concat as include; const P: &str = include!(concat!(env!(\"OUT_DIR\"), \"/x\"));",
            "macro_rules! include { ($e:expr) => { $e } }",
            "macro_rules! concat { ($a:expr, $b:expr) => { $a } }",
            "use core::stringify as concat;",
            "use core::env as e; const P: &str = e!(\"OUT_DIR\");",
            // The one form given to a macro, which may take it apart.
            "macro_rules! steal { ($i:ident ! ($c:ident ! ($e:expr, $l:literal))) => { \
             const L: usize = $e.len(); } } \
             steal!(include!(concat!(env!(\"OUT_DIR\"), \"/x\")));",
            "macro_rules! m { () => { other!(include!(concat!(env!(\"OUT_DIR\"), \"/x\"))); } }",
            "fn f() { println!(\"{}\", include_str!(concat!(env!(\"OUT_DIR\"), \"/x\"))); }",
            // An include of anything but a literal path or the one form.
            "include!(concat!(env!(\"OUT_DIR\"), \"/x\").trim());",
            "include!(concat!(env!(\"OUT_DIR\", \"msg\"), \"/x\"));",
            "include!(concat!(option_env!(\"OUT_DIR\"), \"/x\"));",
            "include!(concat!(\"/x\", env!(\"OUT_DIR\")));",
            "include!(PATH);",
            "const V: Vec<u8> = [a, b].concat();",
            "let r#env = 1;",
        ] {
            assert!(!reads(src), "read as only includes: {src}");
        }
    }

    #[test]
    fn a_file_that_is_no_rust_source_is_data_or_a_refusal() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("lib.rs");
        std::fs::write(&ok, "include!(concat!(env!(\"OUT_DIR\"), \"/g.rs\"));").unwrap();
        let bytes = d.path().join("table.bin");
        std::fs::write(&bytes, [0xff, 0xfe, 0x00, b'e', b'n', b'v', b'!']).unwrap();
        let text = d.path().join("notes.txt");
        std::fs::write(&text, "an \"unclosed string").unwrap();
        let leak = d.path().join("len.rs");
        std::fs::write(&leak, "pub const LEN: usize = env!(\"OUT_DIR\").len();").unwrap();
        let roots = ["OUT_DIR"];
        assert!(env_names_only_includes(
            &[ok.clone(), bytes.clone()],
            &roots
        ));
        assert!(!env_names_only_includes(&[ok.clone(), text], &roots));
        assert!(!env_names_only_includes(
            &[ok.clone(), leak.clone()],
            &roots
        ));
        assert!(!env_names_only_includes(
            &[ok.clone(), d.path().join("gone.rs")],
            &roots
        ));
        // A file larger than the wrapper holds as tokens: the expansion answers.
        let big = d.path().join("big.rs");
        std::fs::write(&big, "// x\n".repeat((MAX_SOURCE_LEN as usize) / 5 + 1)).unwrap();
        assert!(!env_names_only_includes(&[ok.clone(), big], &roots));
        // `OUT_DIR` read by its literal name is fine only where its value names no root.
        assert!(env_names_only_includes(&[ok, leak], &[]));
    }

    #[test]
    fn emit_is_left_out_in_both_spellings() {
        let args: Vec<String> = ["--emit=link", "a.rs", "--emit", "metadata", "-C", "x=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(without_emit(&args), ["a.rs", "-C", "x=1"]);
    }
}
