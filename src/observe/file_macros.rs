//! The C preprocessor's file names turned into data. Main function: [`roots_in_file_names`].
//!
//! `__FILE__` expands to the name the compiler opened the file by: a file named by its
//! absolute path (`cc::Build::file(manifest_dir.join(…))`, a header found through an
//! absolute `-I`) gets a name holding a machine root. Kept as text, that name is in the
//! output, where the scan of a run's outputs finds it and binds the run to the root. But
//! the compiler can turn it into data no scan finds: `sizeof(__FILE__)`,
//! `strlen(__FILE__)` (folded by GCC even at `-O0`), `__FILE__[n]`, a hash computed at
//! compile time. Before C objects' debug information was remapped, that information
//! named the same roots and bound the run anyway; now this module binds it.
//!
//! A run is bound to a root when a compiler process of it (`cc1`, `cc1plus`, `clang`)
//! opened a file below that root **by an absolute name** and that file holds a name
//! that expands to the file's name: `__FILE__`, `__BASE_FILE__`, `__builtin_FILE`,
//! `source_location`, or a macro whose definition, in any file the compilers read
//! (system headers included: glibc's `assert`), holds one of those, transitively. A file
//! opened by a relative name expands to a relative name, which names no root: vendored C
//! built from relative paths (libgit2, zlib, zstd) stays unbound.
//!
//! A superset, on purpose: any use of such a name binds, folded or not, and a file
//! counts whatever it does with it. What is not seen: a compiler that is none of those
//! programs, and a `#line` directive naming a root (a generated file's).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use super::{Op, Scope, Trace};
use crate::key::{Input, InputKind};

/// The names that expand to the name of the file they are used in.
const FILE_NAMES: [&str; 4] = [
    "__FILE__",
    "__BASE_FILE__",
    "__builtin_FILE",
    "source_location",
];

/// A root a run's compilers may have turned into data through a file's name: the input
/// that binds the run to it, and why (for `explain`).
pub struct FileBound {
    pub input: Input,
    /// The file (its path with the root as a token) and the name in it that expands to
    /// the file's name: ``@@xcache:ws@@/csrc/where.c uses `assert` ``.
    pub why: String,
}

/// The roots a run's compilers may have turned into data through a file's name (see the
/// module's documentation).
pub fn roots_in_file_names(trace: &Trace, scope: &Scope<'_>) -> Vec<FileBound> {
    let compilers: BTreeSet<(u32, u32)> = trace
        .events
        .iter()
        .filter(|e| e.op == Op::Start && is_preprocessor(&e.path))
        .map(|e| (e.pid, e.image))
        .collect();
    if compilers.is_empty() {
        return Vec::new();
    }
    // Every file a compiler read, and those it opened by an absolute name.
    let mut read: BTreeSet<PathBuf> = BTreeSet::new();
    let mut absolute: BTreeSet<PathBuf> = BTreeSet::new();
    for e in &trace.events {
        if e.op != Op::Read || e.err != 0 || !compilers.contains(&(e.pid, e.image)) {
            continue;
        }
        let path = PathBuf::from(&e.path);
        if !e.relative {
            absolute.insert(path.clone());
        }
        read.insert(path);
    }
    // Only files below a root can name one.
    let candidates: Vec<(PathBuf, &crate::key::Root)> = absolute
        .into_iter()
        .filter(|p| !scope.is_covered(p))
        .filter_map(|p| root_of(&p, scope).map(|r| (p, r)))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut defines: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &read {
        if let Ok(bytes) = std::fs::read(p) {
            for (name, body) in defines_of(&bytes) {
                defines.entry(name).or_default().extend(body);
            }
        }
    }
    let names = expanding_names(&defines);
    let wanted: HashSet<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let mut bound: BTreeMap<&str, FileBound> = BTreeMap::new();
    for (path, root) in candidates {
        if bound.contains_key(root.kind.token()) {
            continue;
        }
        // Read again rather than kept from the pass above: a compile's sources can be
        // large (SQLite's amalgamation is 9 MB), and only the candidates are needed.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Some(name) = first_use(&bytes, &wanted) {
            bound.insert(
                root.kind.token(),
                FileBound {
                    input: Input::new(InputKind::Root, root.kind.token(), root.real.clone()),
                    why: format!(
                        "{} uses `{}`",
                        scope.pm.normalize_path(&path),
                        String::from_utf8_lossy(name)
                    ),
                },
            );
        }
    }
    bound.into_values().collect()
}

/// Whether a program (by its executable's path) preprocesses C or C++ itself: GCC's
/// `cc1`, `cc1plus`, `cc1obj`, or Clang, which compiles in the driver's process.
fn is_preprocessor(exe: &str) -> bool {
    let name = Path::new(exe)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name.starts_with("cc1") {
        return true;
    }
    let base = match name.rsplit_once('-') {
        Some((b, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') => b,
        _ => name,
    };
    base == "clang" || base == "clang++" || base.ends_with("-clang") || base.ends_with("-clang++")
}

/// The most specific root `p` lies below.
fn root_of<'a>(p: &Path, scope: &'a Scope<'_>) -> Option<&'a crate::key::Root> {
    scope
        .pm
        .roots()
        .iter()
        .filter(|r| p.starts_with(&r.real))
        .max_by_key(|r| r.real.len())
}

/// [`FILE_NAMES`] and every macro whose definition uses one of them, transitively.
fn expanding_names(defines: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = FILE_NAMES.iter().map(|s| s.to_string()).collect();
    loop {
        let more: Vec<String> = defines
            .iter()
            .filter(|(name, body)| !names.contains(*name) && body.iter().any(|i| names.contains(i)))
            .map(|(name, _)| name.clone())
            .collect();
        if more.is_empty() {
            return names;
        }
        names.extend(more);
    }
}

/// A source's macro definitions: each name with the identifiers of its body,
/// continuation lines joined. Only a line that starts a directive is looked at (a 9 MB
/// amalgamation has a quarter of a million lines and some thousands of directives):
/// each `#` found is taken if only blanks precede it on its line and the line before
/// does not continue into it (a continued line, directive or not, holds no directive).
fn defines_of(bytes: &[u8]) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for hash in memchr::memchr_iter(b'#', bytes) {
        let start = memchr::memrchr(b'\n', &bytes[..hash]).map_or(0, |i| i + 1);
        if !bytes[start..hash].iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if start > 0 && continued(&bytes[..start - 1]).is_some() {
            continue;
        }
        let mut logical = Vec::new();
        for line in bytes[start..].split(|b| *b == b'\n') {
            match continued(line) {
                Some(head) => logical.extend_from_slice(head),
                None => {
                    logical.extend_from_slice(strip_cr(line));
                    break;
                }
            }
        }
        if let Some(rest) = directive(&logical, b"define") {
            let mut words = idents(rest).into_iter();
            if let Some(name) = words.next() {
                out.push((name, words.collect()));
            }
        }
    }
    out
}

/// A line without its trailing carriage returns.
fn strip_cr(mut line: &[u8]) -> &[u8] {
    while let Some((b'\r', rest)) = line.split_last() {
        line = rest;
    }
    line
}

/// The line before its final backslash, when it continues into the next one.
fn continued(line: &[u8]) -> Option<&[u8]> {
    strip_cr(line).strip_suffix(b"\\")
}

/// The first identifier of `wanted` that `b` holds (string literals and comments
/// included: a superset). An identifier of a length or first letter no wanted name has
/// is not looked up (a 9 MB amalgamation holds about a million identifiers).
fn first_use<'b>(b: &'b [u8], wanted: &HashSet<&[u8]>) -> Option<&'b [u8]> {
    let mut lens = [false; 256];
    let mut firsts = [false; 256];
    for w in wanted {
        lens[w.len().min(255)] = true;
        if let Some(&c) = w.first() {
            firsts[usize::from(c)] = true;
        }
    }
    let mut found = None;
    each_ident(b, |id| {
        if lens[id.len().min(255)] && firsts[usize::from(id[0])] && wanted.contains(id) {
            found = Some(id);
        }
        found.is_some()
    });
    found
}

/// The text after `# name` when `line` is that preprocessing directive.
fn directive<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let t = trim_start(line);
    let t = trim_start(t.strip_prefix(b"#")?);
    let rest = t.strip_prefix(name)?;
    rest.first()
        .is_some_and(|b| b.is_ascii_whitespace())
        .then_some(rest)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// The identifiers in `b`, in order (string literals and comments included: a superset).
fn idents(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    each_ident(b, |id| {
        out.push(String::from_utf8_lossy(id).into_owned());
        false
    });
    out
}

/// Calls `f` with each identifier of `b`, in order, until it returns true.
fn each_ident<'b>(b: &'b [u8], mut f: impl FnMut(&'b [u8]) -> bool) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if f(&b[start..i]) {
                return;
            }
        } else if c.is_ascii_digit() {
            // A number's letters (`0x1f`, `10ul`) are no identifier.
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line-by-line reading `defines_of` replaced, kept as its reference.
    fn defines_of_by_lines(bytes: &[u8]) -> Vec<(String, BTreeSet<String>)> {
        let mut out = Vec::new();
        let mut lines = bytes.split(|b| *b == b'\n');
        while let Some(first) = lines.next() {
            let mut logical = (trim_start(first).first() == Some(&b'#')).then(Vec::new);
            let mut line = first;
            loop {
                let mut body = line;
                while let Some((b'\r', rest)) = body.split_last() {
                    body = rest;
                }
                let continued = body.strip_suffix(b"\\");
                if let Some(l) = &mut logical {
                    l.extend_from_slice(continued.unwrap_or(body));
                }
                match continued.and_then(|_| lines.next()) {
                    Some(next) => line = next,
                    None => break,
                }
            }
            if let Some(rest) = logical.as_deref().and_then(|l| directive(l, b"define")) {
                let mut words = idents(rest).into_iter();
                if let Some(name) = words.next() {
                    out.push((name, words.collect()));
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// Texts of directives, continuations, carriage returns, blanks and `#` anywhere:
        /// the same definitions as the line-by-line reading.
        #[test]
        fn definitions_are_found_as_line_by_line(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "#define A __FILE__", "# define B(x) A x", "#  define", "#include <x.h>",
                    "#", " ", "\t", "\\", "\r", "\n", "\\\n", "\\\r\n", "x = 1;", "#define C \\",
                    "D", "\"#define E\"", "/* # define F */", "__FILE__",
                ]),
                0..40,
            )
        ) {
            let text: String = parts.concat();
            proptest::prop_assert_eq!(defines_of(text.as_bytes()), defines_of_by_lines(text.as_bytes()));
        }
    }

    fn defines(text: &str) -> BTreeMap<String, BTreeSet<String>> {
        defines_of(text.as_bytes()).into_iter().collect()
    }

    #[test]
    fn macros_using_the_file_name_are_found_through_other_macros() {
        let d = defines(
            "#define HERE __FILE__\n\
             # define LEN(x) (sizeof(HERE) + \\\n   (x))\n\
             #define OTHER 3\n\
             #  define assert(e) ((e) ? (void)0 : __assert_fail(#e, __FILE__, __LINE__))\n",
        );
        let names = expanding_names(&d);
        for n in ["HERE", "LEN", "assert", "__FILE__"] {
            assert!(names.contains(n), "{n}: {names:?}");
        }
        assert!(!names.contains("OTHER"));
    }

    #[test]
    fn a_continued_line_that_is_no_directive_defines_nothing() {
        let d = defines(
            "int x = 1; \\\n#define NOT __FILE__\n\
             char *s = \"a\\\r\n#define ALSO_NOT __FILE__\";\n\
             #define YES __FILE__ \\\n + 1\n",
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["YES"]);
        assert!(d["YES"].contains("__FILE__"));
    }

    #[test]
    fn a_use_is_found_among_the_identifiers() {
        let wanted: HashSet<&[u8]> = [b"HERE".as_slice()].into_iter().collect();
        assert_eq!(first_use(b"x = sizeof(HERE);", &wanted), Some(&b"HERE"[..]));
        assert!(first_use(b"x = sizeof(THERE) + HERE_1 + 1HERE;", &wanted).is_none());
    }

    #[test]
    fn identifiers_skip_numbers() {
        assert_eq!(idents(b"x1 = 0x1f + y_2;"), ["x1", "y_2"]);
    }

    #[test]
    fn preprocessors_by_name() {
        for p in [
            "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
            "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus",
            "/usr/bin/clang-16",
            "/usr/bin/clang",
            "/opt/x/bin/aarch64-linux-gnu-clang++",
        ] {
            assert!(is_preprocessor(p), "{p}");
        }
        for p in ["/usr/bin/gcc", "/usr/bin/ld", "/usr/bin/as", "/usr/bin/ar"] {
            assert!(!is_preprocessor(p), "{p}");
        }
    }
}
