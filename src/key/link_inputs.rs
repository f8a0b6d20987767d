//! What a link read. Main functions: [`parse_link_line`] and [`link_inputs`]; main type:
//! [`LibSearch`].
//!
//! A linked output holds the code of every rlib the link pulls in — not only the direct
//! `--extern`s: rustc finds the transitive ones through `-L dependency=`, and an rlib in
//! between need not change when one below it does (a `-sys` crate's bundled C library
//! is not part of its crate hash, so the crates above it compile to the same bytes). It
//! also holds the native libraries the link line names and those the driver's search
//! path resolves. rustc prints the exact linker command line (`--print link-args`); the
//! wrapper reads it after the link and keys the entry on every file it names, and on
//! every place the linker looked for a library and found nothing (a library appearing
//! there later would change the link). Files of the compiler's own sysroot library
//! directory are covered by the compiler identity, rustc's temporary files by the unit's
//! other inputs.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Input, InputKind, LinkerId, PathMap, artifact_identity};
use crate::reason::Uncacheable;

/// A linker command line as rustc prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLine {
    pub program: String,
    pub args: Vec<String>,
}

/// A file the link read, or a place it looked that held nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkInput {
    Present(PathBuf),
    Absent(PathBuf),
}

impl LinkInput {
    pub fn path(&self) -> &Path {
        match self {
            LinkInput::Present(p) | LinkInput::Absent(p) => p,
        }
    }
}

/// What a link input is now: `absent`, `dir`, or the artifact identity of the file
/// (`content:<digest>`, or `key:<entry key>` for a proc-macro or dylib).
pub fn link_input_identity(p: &Path) -> io::Result<String> {
    match fs::metadata(p) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok("absent".to_string())
        }
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => Ok("dir".to_string()),
        Ok(_) => artifact_identity(p),
    }
}

/// Each input as an [`InputKind::Identity`] input: path normalized, identity now.
pub fn describe_inputs(inputs: &[LinkInput], pm: &PathMap) -> Result<Vec<Input>, Uncacheable> {
    let mut out = Vec::with_capacity(inputs.len());
    for i in inputs {
        let identity = link_input_identity(i.path()).map_err(|_| Uncacheable::UnreadableInput)?;
        out.push(Input::new(
            InputKind::Identity,
            pm.normalize_path(i.path()),
            identity,
        ));
    }
    out.sort();
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// Parses `Command`'s debug form, `NAME="value" … "program" "arg" …`, as rustc prints
/// it. `None` for anything else (the unit is then not cached).
pub fn parse_link_line(text: &str) -> Option<LinkLine> {
    let mut words: Vec<String> = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        // `NAME=` before an environment value, nothing before a word.
        let mut prefix = String::new();
        while let Some(&c) = chars.peek() {
            if c == '"' {
                break;
            }
            if c.is_whitespace() {
                return None;
            }
            prefix.push(c);
            chars.next();
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut word = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => word.push('\n'),
                    't' => word.push('\t'),
                    'r' => word.push('\r'),
                    '0' => word.push('\0'),
                    '\\' => word.push('\\'),
                    '"' => word.push('"'),
                    '\'' => word.push('\''),
                    'u' => {
                        if chars.next()? != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            match chars.next()? {
                                '}' => break,
                                c => hex.push(c),
                            }
                        }
                        word.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    // `\x..`: bytes that are not UTF-8, which no path here can name.
                    _ => return None,
                },
                c => word.push(c),
            }
        }
        if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            return None;
        }
        match prefix.as_str() {
            "" => words.push(word),
            // Environment values come before the program.
            p if p.ends_with('=') && words.is_empty() => {}
            _ => return None,
        }
    }
    let mut it = words.into_iter();
    Some(LinkLine {
        program: it.next()?,
        args: it.collect(),
    })
}

/// A directory of rustc's own temporary files (`rustcXXXXXX`), gone after the link.
fn in_rustc_temp(p: &Path) -> bool {
    p.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.len() == 11 && s.starts_with("rustc") && s[5..].chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// The linker's library search: explicit `-L` directories, then the driver's own.
pub struct LibSearch {
    /// Existing directories in search order, with whether the compiler identity covers
    /// their contents (the sysroot's library directory).
    dirs: Vec<(PathBuf, bool)>,
    /// Directories on the search path that do not exist.
    absent_dirs: Vec<PathBuf>,
}

impl LibSearch {
    /// `explicit` in order, then `defaults`. `covered` is the directory the compiler
    /// identity covers. A directory that exists twice (under two spellings) is
    /// searched once.
    pub fn new(explicit: &[PathBuf], defaults: &[PathBuf], covered: Option<&Path>) -> LibSearch {
        let covered = covered.and_then(|c| fs::canonicalize(c).ok());
        let mut seen = HashSet::new();
        let mut dirs = Vec::new();
        let mut absent_dirs = Vec::new();
        for d in explicit.iter().chain(defaults) {
            match fs::canonicalize(d) {
                Ok(real) if real.is_dir() => {
                    if seen.insert(real.clone()) {
                        dirs.push((d.clone(), Some(&real) == covered.as_ref()));
                    }
                }
                _ if in_rustc_temp(d) => {}
                _ => {
                    if !absent_dirs.contains(d) {
                        absent_dirs.push(d.clone());
                    }
                }
            }
        }
        LibSearch { dirs, absent_dirs }
    }

    /// The directories on the search path that do not exist, as inputs.
    pub fn absent_dirs(&self) -> impl Iterator<Item = LinkInput> + '_ {
        self.absent_dirs.iter().cloned().map(LinkInput::Absent)
    }

    /// Finds library `name` as the linker does (`:file` names a file exactly;
    /// `static_only` after `-Bstatic`), recording every candidate it tried in `out`.
    pub fn find(
        &self,
        name: &str,
        static_only: bool,
        out: &mut Vec<LinkInput>,
    ) -> Result<(), Uncacheable> {
        self.find_depth(name, static_only, out, 0)
    }

    fn find_depth(
        &self,
        name: &str,
        static_only: bool,
        out: &mut Vec<LinkInput>,
        depth: usize,
    ) -> Result<(), Uncacheable> {
        let candidates: Vec<String> = match name.strip_prefix(':') {
            Some(file) => vec![file.to_string()],
            None if static_only => vec![format!("lib{name}.a")],
            None => vec![format!("lib{name}.so"), format!("lib{name}.a")],
        };
        for (dir, covered) in &self.dirs {
            for c in &candidates {
                let p = dir.join(c);
                if p.is_file() {
                    if !covered {
                        out.push(LinkInput::Present(p.clone()));
                        self.follow_script(&p, out, depth)?;
                    }
                    return Ok(());
                }
                if !covered {
                    out.push(LinkInput::Absent(p));
                }
            }
        }
        Err(Uncacheable::UnresolvedNativeLib)
    }

    /// A library that is a GNU ld script (`libc.so` on glibc) names further files: each
    /// becomes an input too.
    fn follow_script(
        &self,
        file: &Path,
        out: &mut Vec<LinkInput>,
        depth: usize,
    ) -> Result<(), Uncacheable> {
        let text = match linker_script(file) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(()),
            Err(_) => return Err(Uncacheable::UnreadableInput),
        };
        if depth >= 4 {
            return Err(Uncacheable::UnresolvedLinkInput);
        }
        for token in script_inputs(&text) {
            if let Some(lib) = token.strip_prefix("-l") {
                self.find_depth(lib, false, out, depth + 1)?;
            } else if token.starts_with('/') {
                let p = PathBuf::from(&token);
                if !p.is_file() {
                    return Err(Uncacheable::UnresolvedLinkInput);
                }
                out.push(LinkInput::Present(p.clone()));
                self.follow_script(&p, out, depth + 1)?;
            } else {
                // A bare name: next to the script, else on the search path.
                let beside = file.parent().unwrap_or(Path::new("/")).join(&token);
                if beside.is_file() {
                    out.push(LinkInput::Present(beside.clone()));
                    self.follow_script(&beside, out, depth + 1)?;
                } else {
                    out.push(LinkInput::Absent(beside));
                    self.find_depth(&format!(":{token}"), false, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// The files an ld script's `INPUT(…)` and `GROUP(…)` commands name (with `AS_NEEDED`
/// lists inside them), comments removed.
fn script_inputs(text: &str) -> Vec<String> {
    let mut clean = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        clean.push_str(&rest[..i]);
        clean.push(' ');
        rest = match rest[i + 2..].find("*/") {
            Some(j) => &rest[i + 2 + j + 2..],
            None => "",
        };
    }
    clean.push_str(rest);
    let spaced = clean
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace(',', " ");
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut last_command = String::new();
    let mut in_input = false;
    for tok in spaced.split_whitespace() {
        match tok {
            "(" => {
                if depth == 0 {
                    in_input = last_command == "INPUT" || last_command == "GROUP";
                }
                depth += 1;
            }
            ")" => depth = depth.saturating_sub(1),
            "AS_NEEDED" => {}
            t if depth == 0 => last_command = t.to_string(),
            t if in_input => out.push(t.to_string()),
            _ => {}
        }
    }
    out
}

/// Options whose value is a file the linker reads.
const FILE_OPTIONS: &[&str] = &[
    "-T",
    "--script",
    "--version-script",
    "--dynamic-list",
    "--just-symbols",
    "--retain-symbols-file",
];

/// The existing files a link argument names (`/path/x.o`, `-Wl,--version-script=x`,
/// `-Tscript`), relative paths taken from `cwd`. An argument naming a file a linker
/// option reads that does not exist is an error.
pub fn arg_files(arg: &str, cwd: &Path) -> Result<Vec<PathBuf>, Uncacheable> {
    let pieces: Vec<&str> = match arg.strip_prefix("-Wl,") {
        Some(rest) => rest.split(',').collect(),
        None => vec![arg],
    };
    let mut out = Vec::new();
    let mut next_is_file = false;
    for piece in pieces {
        let (value, must_exist) = if next_is_file {
            next_is_file = false;
            (Some(piece), true)
        } else if FILE_OPTIONS.contains(&piece) {
            next_is_file = true;
            (None, false)
        } else if let Some((opt, v)) = piece.split_once('=') {
            (Some(v), FILE_OPTIONS.contains(&opt))
        } else if let Some(v) = piece.strip_prefix("-T") {
            (Some(v), true)
        } else if !piece.starts_with('-') {
            (Some(piece), false)
        } else {
            (None, false)
        };
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let p = cwd.join(v);
        if p.is_file() {
            out.push(p);
        } else if must_exist && !in_rustc_temp(&p) {
            return Err(Uncacheable::UnresolvedLinkInput);
        }
    }
    Ok(out)
}

/// What the link of one unit is checked against.
pub struct LinkContext<'a> {
    /// Where rustc ran.
    pub cwd: &'a Path,
    pub out_dir: &'a Path,
    /// The unit's output stem: its object files are `<stem>.*.o` in `out_dir`.
    pub stem: &'a str,
    /// The linked output.
    pub output: &'a Path,
    pub sysroot: &'a Path,
    pub target: &'a str,
    pub linker: &'a LinkerId,
    /// Where the unit's crates come from (`-L dependency=`, the `--extern`s'
    /// directories): the originals of the rlib copies rustc links from its temporary
    /// directory.
    pub crate_dirs: &'a [PathBuf],
}

/// Every file the link line names or leads the linker to, and every place it looked in
/// vain, in order without repeats. An argument the analysis cannot account for makes
/// the unit uncacheable.
pub fn link_inputs(line: &LinkLine, cx: &LinkContext<'_>) -> Result<Vec<LinkInput>, Uncacheable> {
    let target_lib = cx
        .sysroot
        .join("lib")
        .join("rustlib")
        .join(cx.target)
        .join("lib");
    let mut inputs = Vec::new();
    let mut search = Vec::new();
    let mut libs: Vec<(String, bool)> = Vec::new();
    let mut m_flags = Vec::new();
    let mut static_mode = false;
    let mut args = line.args.iter();
    while let Some(arg) = args.next() {
        let a = arg.as_str();
        if a == "-o" {
            args.next();
        } else if a == "-L" || a == "-l" || a == "-B" || a == "-Xlinker" {
            let Some(v) = args.next() else {
                return Err(Uncacheable::UnresolvedLinkInput);
            };
            match a {
                "-L" => search.push(cx.cwd.join(v)),
                "-l" => libs.push((v.clone(), static_mode)),
                "-B" => check_program_dir(v, cx)?,
                _ => linker_piece(v, cx, &mut static_mode, &mut search, &mut libs, &mut inputs)?,
            }
        } else if let Some(v) = a.strip_prefix("-L") {
            search.push(cx.cwd.join(v));
        } else if let Some(v) = a.strip_prefix("-l") {
            libs.push((v.to_string(), static_mode));
        } else if let Some(v) = a.strip_prefix("-B") {
            check_program_dir(v, cx)?;
        } else if let Some(v) = a.strip_prefix("-fuse-ld=") {
            let name = if v.contains('/') {
                v.to_string()
            } else {
                format!("ld.{v}")
            };
            if !cx.linker.ld_names.contains(&name) {
                return Err(Uncacheable::UnknownLinker);
            }
        } else if let Some(rest) = a.strip_prefix("-Wl,") {
            for piece in rest.split(',') {
                linker_piece(
                    piece,
                    cx,
                    &mut static_mode,
                    &mut search,
                    &mut libs,
                    &mut inputs,
                )?;
            }
        } else if a == "-static" || a == "-static-pie" {
            // Passed on to `ld`: every later `-l` is looked up as an archive.
            static_mode = true;
        } else if a.starts_with("-m") {
            m_flags.push(a.to_string());
        } else if a.starts_with('@') {
            return Err(Uncacheable::UnresolvedLinkInput);
        } else if a.starts_with('-') {
            for p in arg_files(a, cx.cwd)? {
                inputs.push(LinkInput::Present(p));
            }
        } else {
            object(a, cx, &target_lib, &mut inputs)?;
        }
    }
    if m_flags != cx.linker.probe_flags {
        return Err(Uncacheable::UnknownLinker);
    }
    let search = LibSearch::new(&search, &cx.linker.search_dirs, Some(&target_lib));
    for (name, static_only) in &libs {
        search.find(name, *static_only, &mut inputs)?;
    }
    inputs.extend(search.absent_dirs());
    let mut seen = HashSet::new();
    inputs.retain(|i| seen.insert(i.clone()));
    Ok(inputs)
}

/// `-B dir` tells the driver where to find its programs (rustc points it at its own
/// `gcc-ld` shims). The linker identity covers the sysroot's; any other directory could
/// hold anything.
fn check_program_dir(dir: &str, cx: &LinkContext<'_>) -> Result<(), Uncacheable> {
    if cx.cwd.join(dir).starts_with(cx.sysroot) {
        Ok(())
    } else {
        Err(Uncacheable::UnresolvedLinkInput)
    }
}

/// One argument passed through to `ld` (`-Wl,a,b` pieces, `-Xlinker a`).
fn linker_piece(
    piece: &str,
    cx: &LinkContext<'_>,
    static_mode: &mut bool,
    search: &mut Vec<PathBuf>,
    libs: &mut Vec<(String, bool)>,
    inputs: &mut Vec<LinkInput>,
) -> Result<(), Uncacheable> {
    match piece {
        "-Bstatic" | "-static" | "-dn" | "-non_shared" => *static_mode = true,
        "-Bdynamic" | "-dy" | "-call_shared" => *static_mode = false,
        p if p.starts_with("-L") && p.len() > 2 => search.push(cx.cwd.join(&p[2..])),
        p if p.starts_with("-l") && p.len() > 2 => libs.push((p[2..].to_string(), *static_mode)),
        p => {
            for f in arg_files(p, cx.cwd)? {
                inputs.push(LinkInput::Present(f));
            }
        }
    }
    Ok(())
}

/// A file named on the link line: an object, an rlib, an archive or a shared library.
fn object(
    arg: &str,
    cx: &LinkContext<'_>,
    target_lib: &Path,
    inputs: &mut Vec<LinkInput>,
) -> Result<(), Uncacheable> {
    let p = cx.cwd.join(arg);
    if p == cx.output {
        return Ok(());
    }
    // This unit's own object files: products of the compile the key already covers.
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if p.parent() == Some(cx.out_dir)
        && name.starts_with(&format!("{}.", cx.stem))
        && name.ends_with(".o")
    {
        return Ok(());
    }
    // The standard library: the compiler identity covers it.
    if p.parent() == Some(target_lib) {
        return Ok(());
    }
    if p.is_file() {
        inputs.push(LinkInput::Present(p));
        return Ok(());
    }
    if !in_rustc_temp(&p) {
        return Err(Uncacheable::UnresolvedLinkInput);
    }
    // With LTO, rustc links a temporary copy of an upstream rlib that holds only its
    // native objects (a C library bundled by a `-sys` crate): the original, same name,
    // is the input. The crates between it and this unit need not change when it does.
    if name.ends_with(".rlib") {
        let original = cx
            .crate_dirs
            .iter()
            .map(|d| cx.cwd.join(d).join(name.as_ref()))
            .find(|o| o.is_file())
            .ok_or(Uncacheable::UnresolvedLinkInput)?;
        inputs.push(LinkInput::Present(original));
    }
    Ok(())
}

/// The text of `file` if it is a linker script: not an object or archive (told by its
/// first bytes, so the megabytes of `libgcc.a` that every link names are not read), and
/// UTF-8.
fn linker_script(file: &Path) -> io::Result<Option<String>> {
    use std::io::Read;
    let mut f = fs::File::open(file)?;
    let mut head = [0u8; 7];
    let got = crate::fsx::read_full(&mut f, &mut head)?;
    let head = &head[..got];
    if head.starts_with(b"\x7fELF") || head.starts_with(b"!<arch>") {
        return Ok(None);
    }
    let mut bytes = head.to_vec();
    f.read_to_end(&mut bytes)?;
    Ok(String::from_utf8(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_link_lines() {
        let text = r#"LC_ALL="C" PATH="/a:/b" VSLANG="1033" "cc" "-m64" "/t/x.o" "-Wl,-Bstatic" "a \"q\" b\\c" "-o" "/t/out""#;
        let line = parse_link_line(text).unwrap();
        assert_eq!(line.program, "cc");
        assert_eq!(
            line.args,
            [
                "-m64",
                "/t/x.o",
                "-Wl,-Bstatic",
                "a \"q\" b\\c",
                "-o",
                "/t/out"
            ]
        );
        assert_eq!(parse_link_line(r#""cc" "\u{e9}""#).unwrap().args, ["é"]);
        assert!(parse_link_line(r#""cc" "\xff""#).is_none());
        assert!(parse_link_line(r#"cd "/x" && "cc""#).is_none());
        assert!(parse_link_line("").is_none());
    }

    #[test]
    fn ld_scripts_name_their_inputs() {
        let glibc = "/* GNU ld script\n   Use the shared library */\nOUTPUT_FORMAT(elf64-x86-64)\n\
            GROUP ( /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc_nonshared.a  \
            AS_NEEDED ( /lib64/ld-linux-x86-64.so.2 ) )\n";
        assert_eq!(
            script_inputs(glibc),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libc_nonshared.a",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert_eq!(
            script_inputs("GROUP ( libgcc_s.so.1 -lgcc )"),
            ["libgcc_s.so.1", "-lgcc"]
        );
    }

    /// Objects and archives are told by their first bytes; a script is read whole.
    #[test]
    fn only_a_linker_script_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            fs::write(&p, bytes).unwrap();
            p
        };
        let archive = write("libgcc.a", b"!<arch>\nrest of an archive\xff");
        let elf = write("libc.so.6", b"\x7fELF\x02\x01\x01\xff\xfe");
        let script = write("libc.so", b"GROUP ( /lib/libc.so.6 )\n");
        let tiny = write("tiny", b"ab");
        let binary = write("odd", b"\xff\xfe\xfd not text");
        assert_eq!(linker_script(&archive).unwrap(), None);
        assert_eq!(linker_script(&elf).unwrap(), None);
        assert_eq!(
            linker_script(&script).unwrap().as_deref(),
            Some("GROUP ( /lib/libc.so.6 )\n")
        );
        assert_eq!(linker_script(&tiny).unwrap().as_deref(), Some("ab"));
        assert_eq!(linker_script(&binary).unwrap(), None);
        assert!(linker_script(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn rustc_temp_dirs_are_recognized() {
        assert!(in_rustc_temp(Path::new("/t/deps/rustcLfDJYe/symbols.o")));
        assert!(!in_rustc_temp(Path::new("/t/deps/rustc/symbols.o")));
        assert!(!in_rustc_temp(Path::new("/t/deps/rustc-x86_64/a.o")));
    }

    #[test]
    fn library_search_records_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("libfoo.a"), b"!<arch>\n").unwrap();
        let missing = dir.path().join("missing");
        let s = LibSearch::new(
            &[a.clone(), missing.clone(), a.clone()],
            std::slice::from_ref(&b),
            None,
        );
        let mut out = Vec::new();
        s.find("foo", false, &mut out).unwrap();
        assert_eq!(
            out,
            [
                LinkInput::Absent(a.join("libfoo.so")),
                LinkInput::Absent(a.join("libfoo.a")),
                LinkInput::Absent(b.join("libfoo.so")),
                LinkInput::Present(b.join("libfoo.a")),
            ]
        );
        assert_eq!(
            s.absent_dirs().collect::<Vec<_>>(),
            [LinkInput::Absent(missing)]
        );
        assert_eq!(
            s.find("bar", true, &mut Vec::new()),
            Err(Uncacheable::UnresolvedNativeLib)
        );
    }

    #[test]
    fn link_args_name_files() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("syms.map");
        fs::write(&map, "{};").unwrap();
        let arg = format!("-Wl,--version-script={},-O1", map.display());
        assert_eq!(
            arg_files(&arg, dir.path()).unwrap(),
            std::slice::from_ref(&map)
        );
        assert_eq!(
            arg_files("-Wl,--version-script,syms.map", dir.path()).unwrap(),
            [map]
        );
        assert_eq!(
            arg_files("-Wl,--version-script=/nonexistent/x.map", dir.path()),
            Err(Uncacheable::UnresolvedLinkInput)
        );
        assert!(
            arg_files("-Wl,-rpath=/nonexistent/lib", dir.path())
                .unwrap()
                .is_empty()
        );
    }
}
