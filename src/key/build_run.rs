//! What the key of a build-script *run* covers. Main functions: [`run_l1_key`],
//! [`run_env`], [`tree_digest`].
//!
//! Like a rustc unit, a run is keyed in two levels:
//! - the first level ([`run_l1_key`]) covers what is known before the script runs: the
//!   script executable's identity, the variables cargo sets for it (paths tokenized), the
//!   rustc it may call and the C toolchain it may use (tool identities; the toolchain's
//!   variables are keyed, as any variable, when the run reads them);
//! - the entry key (`entry_key`, as for rustc units) adds what the script declared on
//!   its previous run: the digest of every `rerun-if-changed` path and the value of
//!   every `rerun-if-env-changed` variable, or the whole package directory when it named
//!   no file.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::unit_key::redact_var;
use super::{Key, KeyHasher, KeyParts, PathMap, hash_file};

/// Variables that never reach the key: scheduling (`NUM_JOBS`, the jobserver), the
/// wrapper cargo passes on, this program's own settings, and terminal styling.
fn is_ignored(name: &str) -> bool {
    matches!(
        name,
        "NUM_JOBS" | "CARGO_MAKEFLAGS" | "MAKEFLAGS" | "MFLAGS" | "RUSTC_WRAPPER" | "RUSTC"
    ) || name.starts_with("XCACHE_")
        || name.starts_with("CARGO_TERM_")
}

/// True when a variable of the run's environment is part of its key.
pub fn is_run_key_var(name: &str) -> bool {
    if is_ignored(name) {
        return false;
    }
    // cargo's settings for itself (`CARGO_NET_OFFLINE`, `CARGO_HOME`, `CARGO_HTTP_*`, …)
    // pass through to the script unread by cargo's design: a script that reads one is
    // keyed on it by what the observer sees, like any variable it reads.
    super::unit_key::is_keyed_cargo_var(name)
        || name == "CARGO_ENCODED_RUSTFLAGS"
        || name.starts_with("DEP_")
        || matches!(
            name,
            "CARGO"
                | "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "RUSTDOC"
                | "RUSTC_LINKER"
                | "RUSTC_WORKSPACE_WRAPPER"
        )
    // The C toolchain's variables (`CC`, `CFLAGS`, `PKG_CONFIG_PATH`, …) are keyed as any
    // variable is, by what the observer saw the run read: by name, or with the whole
    // environment (`cc`'s copy of it keys what `cc` consults, `observe::cc_env`). A run
    // that reads none of them (most scripts compile no C) is not keyed on them: runners
    // whose `CFLAGS` differ share it. Every process a cached run starts is observed (a
    // static program makes the run uncacheable), so a read is never missed.
}

/// The keyed variables of a run's environment, values tokenized, sorted by name.
pub fn run_env(vars: &BTreeMap<String, String>, pm: &PathMap) -> Vec<(String, String)> {
    vars.iter()
        .filter(|(k, _)| is_run_key_var(k))
        .map(|(k, v)| (k.clone(), pm.normalize_text(v)))
        .collect()
}

/// The programs a C build may run: `cc`, `c++`, `ar`, the target-prefixed ones of a
/// cross build, and whatever `CC`/`CXX`/`AR` (in any spelling) name.
pub fn c_tool_names(vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = ["cc", "c++", "ar"].iter().map(|s| s.to_string()).collect();
    if let (Some(t), Some(h)) = (vars.get("TARGET"), vars.get("HOST"))
        && t != h
    {
        for tool in ["gcc", "g++", "ar"] {
            names.push(format!("{t}-{tool}"));
        }
    }
    for (k, v) in vars {
        let base = k
            .strip_prefix("HOST_")
            .or_else(|| k.strip_prefix("TARGET_"))
            .unwrap_or(k);
        let is_tool = ["CC", "CXX", "AR"]
            .iter()
            .any(|t| base == *t || base.starts_with(&format!("{t}_")));
        if is_tool && let Some(first) = v.split_whitespace().next() {
            names.push(first.to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The identity of a program as the script would find it: `absent`, or the digest of the
/// file it resolves to with what `--version` prints.
///
/// `memo_dir` (the private directory's `c-tools`) remembers what `--version` printed for
/// an ELF executable, under the name it was started by and its file's path and digest:
/// such a program's answer is built into it, so a build script's run does not start the
/// C tools again each time (three programs before every run, on cargo's way). A script
/// (`#!`) is asked every time: what it runs can change while it does not.
pub fn tool_identity(
    name: &str,
    cwd: &Path,
    path: Option<&OsStr>,
    memo_dir: Option<&Path>,
) -> String {
    let found = if name.contains('/') {
        Some(cwd.join(name)).filter(|p| p.is_file())
    } else {
        path.and_then(|p| {
            std::env::split_paths(p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    let Some(prog) = found else {
        return "absent".to_string();
    };
    let real = fs::canonicalize(&prog).unwrap_or(prog.clone());
    let Ok(digest) = hash_file(&real) else {
        return format!("unreadable {}", version_of(&prog).trim());
    };
    let memo = memo_dir.filter(|_| is_elf(&real)).map(|d| {
        let h = KeyHasher::new("c-tool-version")
            .str("started-as", &prog.to_string_lossy())
            .str("file", &real.to_string_lossy())
            .key("digest", &digest)
            .finish();
        d.join(h.to_hex())
    });
    let version = match memo.as_ref().and_then(|m| fs::read_to_string(m).ok()) {
        Some(v) => v,
        None => {
            let v = version_of(&prog);
            if let Some(m) = &memo {
                crate::private_dir::write_memo(m, v.as_bytes());
            }
            v
        }
    };
    format!("{} {}", digest.to_hex(), version.trim())
}

/// What `prog --version` prints (nothing when it fails).
fn version_of(prog: &Path) -> String {
    Command::new(prog)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Whether the file at `p` starts as an ELF object does.
fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// What the first-level key of a run is made of.
pub struct RunKeyInput<'a> {
    /// The identity of the real script executable (`key::artifact_identity`).
    pub script: &'a str,
    /// The rustc identity (`CompilerId::key`).
    pub compiler: &'a Key,
    /// The C linker driver's identity (`LinkerId::key`), which covers the C runtime the
    /// system headers come with; `None` when it could not be identified.
    pub c_runtime: Option<&'a Key>,
    /// [`run_env`].
    pub env: &'a [(String, String)],
    /// `(program, identity)` for each of [`c_tool_names`].
    pub tools: &'a [(String, String)],
    /// `(variable, digest)` for each `DEP_*` variable naming a path in the target dir:
    /// what a `links` dependency's run left there (headers, libraries).
    pub dep_trees: &'a [(String, String)],
    /// The flag variables (`CFLAGS`, `CXXFLAGS`) through which the run's C and C++
    /// compiles get `-fdebug-prefix-map` for the roots (`key::debug_map_env`): their
    /// objects then hold remapped paths.
    pub c_debug_map: &'a [&'a str],
    /// The variables the cache adds to the run's environment (`wrapper::script`'s
    /// `Added`) as they mean: which variables get them, the path maps by root alias in
    /// a fixed order (`key::debug_map_meaning`), never as text that holds or is ordered
    /// by a machine path, nor the user's own flags in those variables (keyed when the
    /// run reads them). What the run is given is part of what it is. (Runs stored
    /// while the cache also set cargo's trim-paths variables, which a recent `cc` turns
    /// into `-fmacro-prefix-map`, had none here, and are not taken for runs without
    /// them.)
    pub added_env: &'a [(String, String)],
}

/// The first-level key of a run. Bump `KEY_SCHEMA` (and re-read `tests/build_run.rs`)
/// when a field changes meaning.
pub fn run_l1_key(i: &RunKeyInput<'_>) -> Key {
    let mut h = KeyHasher::new("build-script-run");
    h.str("script", i.script).key("rustc", i.compiler).str(
        "c-runtime",
        &i.c_runtime.map_or("unidentified".to_string(), Key::to_hex),
    );
    // The values themselves (`run_key_parts`'s `pairs` keeps only their digests).
    let raw = |list: &[(String, String)]| -> Vec<String> {
        list.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    h.list("env", raw(i.env).iter().map(String::as_str));
    h.list("tools", raw(i.tools).iter().map(String::as_str));
    h.list("dep-trees", raw(i.dep_trees).iter().map(String::as_str));
    h.list("c-debug-map-v1", i.c_debug_map.iter().copied());
    // `-v3`: the maps by what they mean, without the user's flags (keyed when read);
    // `-v2` held the user's flags too, `added-env` the real paths tokenized, in the
    // order of their lengths.
    h.list("added-env-v3", raw(i.added_env).iter().map(String::as_str));
    h.finish()
}

/// What a run's first-level key was hashed from, as the store's key history keeps it
/// (`cargo xcache explain`): the same fields as [`run_l1_key`], values as digests.
pub fn run_key_parts(i: &RunKeyInput<'_>) -> KeyParts {
    let pairs = |list: &[(String, String)]| -> Vec<String> {
        list.iter()
            .map(|(k, v)| redact_var(&format!("{k}={v}")))
            .collect()
    };
    KeyParts {
        compiler: i.compiler.to_hex(),
        script: Some(i.script.to_string()),
        c_runtime: Some(i.c_runtime.map_or("unidentified".to_string(), Key::to_hex)),
        env: pairs(i.env),
        tools: pairs(i.tools),
        dep_trees: pairs(i.dep_trees),
        c_debug_map: Some(i.c_debug_map.join(",")),
        // As keyed: the maps by root alias, nothing of the machine or the user.
        added_env: i
            .added_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        ..KeyParts::default()
    }
}

/// Why a tree could not be described.
#[derive(Debug)]
pub enum TreeError {
    /// More files than `limit`.
    TooManyFiles,
    Io(io::Error),
}

impl From<io::Error> for TreeError {
    fn from(e: io::Error) -> TreeError {
        TreeError::Io(e)
    }
}

/// The digest of what is at `p` now: `absent`; `file:<digest>`; for a directory,
/// `dir:<digest>` over every entry below it, as cargo and a build script see them:
/// symbolic links followed (a link is described by what it leads to; a dangling one by
/// its target), directories listed even when empty, files by contents and executable
/// bit. `.git` and `skip` (the target dir) are left out. An added, removed, re-pointed
/// or edited entry changes it.
///
/// A text file that names a root of `pm` is described with the root tokenized
/// (`content_digest`): a `.pc` or `.cmake` file a `-sys` crate writes into its
/// `OUT_DIR` names the target dir, and is restored with the root put back, so the same
/// tree on another machine or in another target dir reads the same.
pub fn tree_digest(p: &Path, skip: &Path, limit: usize, pm: &PathMap) -> Result<String, TreeError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok("absent".to_string()),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() {
        return Ok(format!("file:{}", content_digest(p, pm)?));
    }
    let mut listed: Vec<String> = Vec::new();
    let mut seen_dirs = std::collections::HashSet::new();
    seen_dirs.insert((meta.dev(), meta.ino()));
    let mut stack: Vec<PathBuf> = vec![p.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let rel = path
                .strip_prefix(p)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if listed.len() >= limit {
                return Err(TreeError::TooManyFiles);
            }
            let m = match fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => {
                    let target = fs::read_link(&path).unwrap_or_default();
                    listed.push(format!("{rel}\0dangling:{}", target.to_string_lossy()));
                    continue;
                }
            };
            if m.is_dir() {
                if e.file_name() == ".git" || path.starts_with(skip) {
                    continue;
                }
                listed.push(format!("{rel}\0dir"));
                // A link back up the tree is listed, not followed again.
                if seen_dirs.insert((m.dev(), m.ino())) {
                    stack.push(path);
                }
            } else if m.is_file() {
                let exec = if m.permissions().mode() & 0o111 != 0 {
                    "x"
                } else {
                    "-"
                };
                listed.push(format!("{rel}\0{}\0{exec}", content_digest(&path, pm)?));
            } else {
                listed.push(format!("{rel}\0other"));
            }
        }
    }
    listed.sort();
    let mut h = KeyHasher::new("tree-v3");
    h.list("entries", listed.iter().map(String::as_str));
    Ok(format!("dir:{}", h.finish().to_hex()))
}

/// Text files up to this size are read whole to be tokenized; larger ones are hashed
/// as they are.
const MAX_TOKENIZED_TEXT: u64 = 4 << 20;

/// A file's contents: `n` and the digest of its text with the roots of `pm` tokenized
/// when it is UTF-8 text (at most [`MAX_TOKENIZED_TEXT`]) that names a root and holds no
/// token of its own; otherwise `r` and the digest of its bytes. The two kinds never
/// compare equal, so a file that spells a token cannot pass for one that names a root.
fn content_digest(p: &Path, pm: &PathMap) -> io::Result<String> {
    let small = fs::metadata(p)?.len() <= MAX_TOKENIZED_TEXT;
    if small {
        let bytes = fs::read(p)?;
        if let Ok(text) = std::str::from_utf8(&bytes)
            && !PathMap::has_token(text)
        {
            let normal = pm.normalize_text(text);
            if normal != text {
                return Ok(format!("n{}", blake3::hash(normal.as_bytes()).to_hex()));
            }
        }
        return Ok(format!("r{}", blake3::hash(&bytes).to_hex()));
    }
    Ok(format!("r{}", hash_file(p)?.to_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache adds to a run's environment is part of its key: a run given other
    /// variables (the trim-paths ones older versions added) is another run.
    #[test]
    fn what_the_cache_adds_to_a_run_is_in_its_key() {
        let compiler = Key([7; 32]);
        let env = vec![("TARGET".to_string(), "x86_64-unknown-linux-gnu".to_string())];
        let key = |added: &[(String, String)]| {
            run_l1_key(&RunKeyInput {
                script: "script",
                compiler: &compiler,
                c_runtime: None,
                env: &env,
                tools: &[],
                dep_trees: &[],
                c_debug_map: &["CFLAGS"],
                added_env: added,
            })
        };
        let ours = vec![(
            "CFLAGS_x86_64_unknown_linux_gnu".to_string(),
            "-fdebug-prefix-map=@@xcache:ws@@=/xcache/ws".to_string(),
        )];
        let mut older = ours.clone();
        older.push(("CARGO_TRIM_PATHS_SCOPE".to_string(), "object".to_string()));
        assert_eq!(key(&ours), key(&ours.clone()));
        assert_ne!(key(&ours), key(&older));
        assert_ne!(key(&ours), key(&[]));
    }

    #[test]
    fn an_elf_tools_version_is_asked_once_and_a_scripts_every_time() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let memo = d.path().join("memo");
        fs::create_dir(&memo).unwrap();
        let bin = d.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let path = bin.clone().into_os_string();
        let id = |name: &str| tool_identity(name, d.path(), Some(&path), Some(&memo));

        // An ELF program: asked once, then its answer is read back, under its digest.
        fs::copy("/bin/true", bin.join("tool")).unwrap();
        let first = id("tool");
        assert!(first.contains("coreutils"), "{first}");
        let memos: Vec<_> = fs::read_dir(&memo).unwrap().flatten().collect();
        assert_eq!(memos.len(), 1);
        fs::write(memos[0].path(), "remembered").unwrap();
        assert!(id("tool").ends_with(" remembered"));
        // Another file under the same name: another digest, asked again.
        let mut other = fs::read("/bin/true").unwrap();
        other.extend_from_slice(b"another build");
        fs::write(bin.join("tool"), &other).unwrap();
        let changed = id("tool");
        assert!(changed.contains("coreutils"), "{changed}");
        assert_ne!(changed.split(' ').next(), first.split(' ').next());
        assert_eq!(fs::read_dir(&memo).unwrap().count(), 2);

        // A script: what it runs may change while it does not; never remembered.
        let script = bin.join("wrapped");
        let side = d.path().join("side");
        fs::write(&side, "gcc 12").unwrap();
        fs::write(&script, format!("#!/bin/sh\ncat {}\n", side.display())).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(id("wrapped").ends_with(" gcc 12"));
        fs::write(&side, "gcc 13").unwrap();
        assert!(id("wrapped").ends_with(" gcc 13"));
        assert_eq!(fs::read_dir(&memo).unwrap().count(), 2);
        assert_eq!(id("missing"), "absent");
    }

    #[test]
    fn keyed_variables() {
        for k in [
            "CARGO_PKG_NAME",
            "CARGO_FEATURE_STD",
            "CARGO_CFG_TARGET_OS",
            "OUT_DIR",
            "TARGET",
            "DEP_Z_INCLUDE",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            assert!(is_run_key_var(k), "{k}");
        }
        for k in [
            "NUM_JOBS",
            "CARGO_MAKEFLAGS",
            "RUSTC_WRAPPER",
            "XCACHE_EVENTS",
            "PWD",
            "HOME",
            "CARGO_TERM_COLOR",
            // Keyed by what the run finds through it (`InputKind::Lookup`), or whole
            // when the run reads it otherwise (`observe::classify`).
            "PATH",
            // cargo's own settings: keyed only when the run reads them.
            "CARGO_NET_OFFLINE",
            "CARGO_HOME",
            "CARGO_HTTP_TIMEOUT",
            "CARGO_BUILD_JOBS",
            "CARGO_INCREMENTAL",
            // The C toolchain's: keyed when the run reads them (by name, or in `cc`'s
            // copy of the environment).
            "CC",
            "CFLAGS",
            "CFLAGS_x86_64_unknown_linux_gnu",
            "TARGET_CXXFLAGS",
            "PKG_CONFIG_PATH",
        ] {
            assert!(!is_run_key_var(k), "{k}");
        }
    }

    #[test]
    fn tree_digest_sees_added_and_edited_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("pkg");
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(root.join("src/a.c"), "int a;").unwrap();
        let skip = root.join("target");
        fs::create_dir_all(&skip).unwrap();
        let pm = PathMap::new(&root, Some(&skip), None);
        let first = tree_digest(&root, &skip, 100, &pm).unwrap();
        fs::write(skip.join("ignored"), "x").unwrap();
        assert_eq!(tree_digest(&root, &skip, 100, &pm).unwrap(), first);
        fs::write(root.join("src/b.c"), "int b;").unwrap();
        let added = tree_digest(&root, &skip, 100, &pm).unwrap();
        assert_ne!(added, first);
        fs::write(root.join("src/a.c"), "int a2;").unwrap();
        assert_ne!(tree_digest(&root, &skip, 100, &pm).unwrap(), added);
        assert_eq!(
            tree_digest(&root.join("nope"), &skip, 100, &pm).unwrap(),
            "absent"
        );
        assert!(matches!(
            tree_digest(&root, &skip, 1, &pm),
            Err(TreeError::TooManyFiles)
        ));
    }

    /// The same tree in two target dirs, each text file naming its own, reads the same;
    /// a file that names another directory, or spells the token itself, does not.
    #[test]
    fn tree_digest_tokenizes_roots_in_text() {
        let d = tempfile::tempdir().unwrap();
        let digest = |target: &Path, text: &str| {
            let out = target.join("out/lib/pkgconfig");
            fs::create_dir_all(&out).unwrap();
            fs::write(
                out.join("z.pc"),
                text.replace("{T}", &target.to_string_lossy()),
            )
            .unwrap();
            fs::write(out.join("libz.a"), b"\0\x01binary").unwrap();
            let pm = PathMap::new(d.path(), Some(target), None);
            tree_digest(&target.join("out"), Path::new("/nonexistent"), 100, &pm).unwrap()
        };
        let one = digest(&d.path().join("t1"), "prefix={T}/out\n");
        let two = digest(&d.path().join("deeper/t2"), "prefix={T}/out\n");
        assert_eq!(one, two);
        let other = digest(&d.path().join("t3"), "prefix=/usr/out\n");
        assert_ne!(one, other);
        let spelled = digest(&d.path().join("t4"), "prefix=@@xcache:target@@/out\n");
        assert_ne!(one, spelled);
    }

    #[test]
    fn c_tools_include_named_compilers() {
        let vars: BTreeMap<String, String> = [
            ("CC", "clang -m64"),
            ("TARGET", "a"),
            ("HOST", "b"),
            ("TARGET_AR", "llvm-ar"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let names = c_tool_names(&vars);
        for n in ["cc", "c++", "ar", "clang", "llvm-ar", "a-gcc"] {
            assert!(names.contains(&n.to_string()), "{n} in {names:?}");
        }
    }
}
