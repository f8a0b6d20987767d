//! The linker's identity: what a linked output depends on besides rustc and the files the
//! link line names. Main function: [`linker_id`]; main type: [`LinkerId`].
//!
//! On Linux rustc links through a C compiler driver (`cc` unless `-C linker=` says
//! otherwise), and the driver brings in files of its own that no command line names: the
//! `ld` it drives, the C runtime start files, libc, libgcc. The identity covers them:
//! - the driver's content digest and `--version`;
//! - each `ld` it may drive (`-print-prog-name=ld`, `ld.lld` and every `-fuse-ld=` the
//!   unit asks for): digest and `--version`, or its absence;
//! - the C runtime and libc files `-print-file-name` finds ([`RUNTIME_FILES`]);
//! - the driver's own programs a link runs or looks for (`collect2`, `lto-wrapper`, `nm`,
//!   `strip`: [`DRIVER_PROGRAMS`]);
//! - the driver's library search path (`-print-search-dirs`), which decides where `-l`
//!   libraries are found;
//! - rustc's own self-contained linker (`rust-lld` and the `gcc-ld` shims it reaches
//!   through `-B`), which rustc uses by default on some targets;
//! - the variables the driver reads (`LIBRARY_PATH`, `COMPILER_PATH`, …).
//!
//! Any probe that fails makes the unit uncacheable: never a guess. Probing costs a few
//! dozen short processes, so the identity is remembered in the store (`v1/linkers`),
//! keyed by the driver's path, size and modification time and the environment the probes
//! ran in, and re-checked against the size and modification time of every file it
//! hashed, like the compiler identity is.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::link_inputs::{LibSearch, LinkInput, arg_files, describe_inputs};
use super::{Key, KeyHasher, PathMap, RustcInvocation, hash_file};
use crate::reason::Uncacheable;

/// Files of the C runtime a link may bring in without naming them, looked up with
/// `<driver> -print-file-name=NAME`. Names the driver does not find are recorded as
/// absent.
pub const RUNTIME_FILES: &[&str] = &[
    "crt1.o",
    "Scrt1.o",
    "rcrt1.o",
    "crti.o",
    "crtn.o",
    "crtbegin.o",
    "crtend.o",
    "crtbeginS.o",
    "crtendS.o",
    "crtbeginT.o",
    "libc.so",
    "libc.so.6",
    "libc.a",
    "libc_nonshared.a",
    "libm.so",
    "libm.so.6",
    "libgcc.a",
    "libgcc_eh.a",
    "libgcc_s.so",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libpthread.a",
    "libdl.so.2",
    "libdl.a",
    "librt.so.1",
    "librt.a",
    "libutil.so.1",
    "libutil.a",
    // Named by the libc and libm linker scripts (`AS_NEEDED`): the link reads them.
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libmvec.so.1",
    // The driver's LTO plugin, which it hands the linker (`-plugin`).
    "liblto_plugin.so",
];

/// Programs of the driver's own that a link runs or looks for besides the `ld`s
/// (`-print-prog-name=NAME`, then PATH): gcc runs `collect2`, which looks for
/// `lto-wrapper`, `nm` and `strip`. Each is hashed, or recorded as absent.
pub const DRIVER_PROGRAMS: &[&str] = &["collect2", "lto-wrapper", "nm", "strip"];

/// Variables the C compiler driver and `ld` read that change what they link.
const DRIVER_VARS: &[&str] = &[
    "LIBRARY_PATH",
    "COMPILER_PATH",
    "GCC_EXEC_PREFIX",
    "LD_RUN_PATH",
];

/// What to identify.
pub struct LinkerRequest<'a> {
    /// The program rustc will run: `-C linker=` as given, else `cc`.
    pub program: &'a str,
    /// Where rustc runs (a relative `-C linker=` is relative to it).
    pub cwd: &'a Path,
    /// rustc's sysroot, for its self-contained linker and tool directories.
    pub sysroot: &'a Path,
    pub host: &'a str,
    pub target: &'a str,
    /// `-fuse-ld=` values among the unit's link arguments.
    pub fuse_ld: &'a [String],
    /// `PATH`, as rustc's linker will see it (before rustc prepends its own dirs).
    pub path_var: Option<&'a OsStr>,
    /// The environment.
    pub vars: &'a BTreeMap<String, String>,
}

/// The identity of a linker, and what link-line analysis needs from the probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkerId {
    pub key: Key,
    /// Flags rustc passes the driver for this target that change which files it picks
    /// (`-m64`); the probes ran with them, and a link line with others is not trusted.
    pub probe_flags: Vec<String>,
    /// The `ld` names probed (`ld`, `ld.lld`, `ld.<fuse>`).
    pub ld_names: Vec<String>,
    /// The driver's library search path, in order.
    pub search_dirs: Vec<PathBuf>,
}

/// The driver flags rustc passes for a target, as far as they change what the driver
/// picks (the word size selects the C runtime).
pub fn probe_flags(target: &str) -> Vec<String> {
    let arch = target.split('-').next().unwrap_or("");
    let flag = match arch {
        "x86_64" if target.ends_with("gnux32") => "-mx32",
        "x86_64" => "-m64",
        "i386" | "i586" | "i686" => "-m32",
        _ => return Vec::new(),
    };
    vec![flag.to_string()]
}

/// The memo's `format_version`. 2: the identity covers [`DRIVER_PROGRAMS`] and more
/// [`RUNTIME_FILES`] (a memo of 1 holds an identity computed without them).
const MEMO_FORMAT: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Memo {
    format_version: u32,
    id: LinkerId,
    /// Every file the identity hashed, with the size and modification time it had, and
    /// the directories the driver searches (a file added to or removed from one changes
    /// its modification time, and may change what a probe finds).
    files: Vec<Stamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    len: u64,
    mtime_ns: u128,
}

/// The stamp of a path, or the stamp of its absence.
fn stamp_or_absent(path: &Path) -> Stamp {
    stamp(path).unwrap_or(Stamp {
        path: path.to_path_buf(),
        len: u64::MAX,
        mtime_ns: 0,
    })
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    let mtime_ns = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(Stamp {
        path: path.to_path_buf(),
        len: m.len(),
        mtime_ns,
    })
}

/// The directories rustc puts in front of `PATH` when it runs the linker.
fn tool_dirs(sysroot: &Path, host: &str) -> Vec<PathBuf> {
    let bin = sysroot.join("lib").join("rustlib").join(host).join("bin");
    vec![bin.clone(), bin.join("self-contained")]
}

/// `PATH` as the linker sees it.
fn linker_path(req: &LinkerRequest<'_>) -> OsString {
    let mut dirs = tool_dirs(req.sysroot, req.host);
    if let Some(p) = req.path_var {
        dirs.extend(std::env::split_paths(p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// `path` with each directory after its first appearance left out.
fn without_repeats(path: &OsStr) -> OsString {
    let mut seen = std::collections::HashSet::new();
    let dirs: Vec<PathBuf> = std::env::split_paths(path)
        .filter(|d| seen.insert(d.clone()))
        .collect();
    std::env::join_paths(dirs).unwrap_or_else(|_| path.to_os_string())
}

/// Finds a program as `Command` would with `path`: a name with a slash is a path
/// (relative to `cwd`), a bare name is searched on `path`.
fn find_program(name: &str, cwd: &Path, path: &OsStr) -> Option<PathBuf> {
    if name.contains('/') {
        let p = cwd.join(name);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The PATH a remote link runs with: the worker's system's (`exec::send`
/// gives every action this PATH). A worker identifies its linker on it, and a client
/// asks a worker for a link only when its own linker identity is the same on it.
pub const ACTION_PATH: &str = "/usr/bin:/bin";

/// What a worker vouches for when it offers a linker identity: the identity, and the
/// files it hashed (the driver, the `ld`s it drives, the C runtime files it found,
/// rustc's own linker and shims), as absolute paths on the worker. The client takes a
/// link's reads of exactly these files as the agreed linker's
/// (`exec::observed::Agreed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkerOffer {
    pub id: LinkerId,
    /// The files the identity hashed.
    pub files: Vec<PathBuf>,
    /// The directories the driver searches (its library and program search paths) and
    /// those holding the files above: a link stats them to find its files, and the
    /// identity holds the search path.
    pub dirs: Vec<PathBuf>,
    /// The size and modification time of every file hashed and directory searched, as
    /// when identified.
    stamps: Vec<Stamp>,
}

impl LinkerOffer {
    /// Whether every file the identity hashed, and every directory the driver searches,
    /// is as it was when identified: a `cc` or libc upgraded under a running worker
    /// makes it vouch for nothing (its links then compile at the client).
    pub fn unchanged(&self) -> bool {
        self.stamps.iter().all(|s| stamp_or_absent(&s.path) == *s)
    }
}

/// Identifies the linker `req` describes afresh (no memo), with the files the identity
/// hashed: what a worker offers.
pub fn linker_offer(req: &LinkerRequest<'_>) -> Result<LinkerOffer, Uncacheable> {
    let path = linker_path(req);
    let driver = find_program(req.program, req.cwd, &path).ok_or(Uncacheable::UnknownLinker)?;
    let driver = fs::canonicalize(&driver).unwrap_or(driver);
    let (id, hashed, stamped) = probe(req, &driver, &path, &driver_env(req))?;
    let files: Vec<PathBuf> = hashed.into_iter().map(|s| s.path).collect();
    let mut dirs: Vec<PathBuf> = stamped
        .iter()
        .map(|s| s.path.clone())
        .filter(|p| !files.contains(p))
        .collect();
    // The driver's program search path (where it finds `collect2`, `lto-wrapper`).
    let text = Command::new(&driver)
        .args(probe_flags(req.target))
        .arg("-print-search-dirs")
        .env("PATH", &path)
        .env("LC_ALL", "C")
        .output()
        .map_err(|_| Uncacheable::UnknownLinker)?;
    let text = String::from_utf8_lossy(&text.stdout);
    if let Some(programs) = text.lines().find_map(|l| l.strip_prefix("programs: ")) {
        dirs.extend(
            programs
                .trim_start_matches('=')
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        );
    }
    // Where the driver makes its temporary files (libiberty's `choose_tmpdir` looks at
    // each until one is a writable directory): it only writes there, and what it reads
    // back it made itself, which the judge does not count as a read.
    // It looks at those its environment names first (`TMPDIR`, `TMP`, `TEMP`; a worker's
    // actions run with the worker's).
    dirs.extend(["/tmp", "/var/tmp", "/usr/tmp"].map(PathBuf::from));
    dirs.extend(
        ["TMPDIR", "TMP", "TEMP"]
            .iter()
            .filter_map(|v| req.vars.get(*v))
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from),
    );
    dirs.sort();
    dirs.dedup();
    Ok(LinkerOffer {
        id,
        files,
        dirs,
        stamps: stamped,
    })
}

/// `NAME=value` for each of [`DRIVER_VARS`] (empty when unset), as the identity holds
/// them.
fn driver_env(req: &LinkerRequest<'_>) -> Vec<String> {
    DRIVER_VARS
        .iter()
        .map(|v| format!("{v}={}", req.vars.get(*v).map(String::as_str).unwrap_or("")))
        .collect()
}

/// Computes (or reads back) the identity of the linker `req` describes. `memo_dir` is
/// where identities are remembered (inside the store).
pub fn linker_id(
    req: &LinkerRequest<'_>,
    memo_dir: Option<&Path>,
) -> Result<LinkerId, Uncacheable> {
    let path = linker_path(req);
    let driver = find_program(req.program, req.cwd, &path).ok_or(Uncacheable::UnknownLinker)?;
    let driver = fs::canonicalize(&driver).unwrap_or(driver);
    let driver_stamp = stamp(&driver).ok_or(Uncacheable::UnknownLinker)?;
    let env = driver_env(req);
    // The format is in the name: two versions of cargo-xcache on one machine (a CI's
    // pinned one and a newer one) each keep their own memo instead of each finding the
    // other's unreadable, probing the linker again and writing over it.
    let memo_key = KeyHasher::new("linker-memo")
        .str("format", &MEMO_FORMAT.to_string())
        .str("program", req.program)
        .str("driver", &driver.to_string_lossy())
        .str("len", &driver_stamp.len.to_string())
        .str("mtime", &driver_stamp.mtime_ns.to_string())
        // A relative `-C linker=dir/ld` depends on where rustc runs; a bare name does not
        // (registry packages each run in their own directory).
        .str(
            "cwd",
            &if req.program.contains('/') && !req.program.starts_with('/') {
                req.cwd.to_string_lossy().into_owned()
            } else {
                String::new()
            },
        )
        .str("sysroot", &req.sysroot.to_string_lossy())
        .str("host", req.host)
        .str("target", req.target)
        .list("fuse-ld", req.fuse_ld.iter().map(String::as_str))
        // Without the directories named again: a search finds the same program with or
        // without them, and rustup's proxies put theirs in front of a `PATH` that may
        // hold it already (the front-end, which asks early, and the wrappers see one
        // `PATH` each).
        .str("path", &without_repeats(&path).to_string_lossy())
        .list("env", env.iter().map(String::as_str))
        .finish();
    let memo_path = memo_dir.map(|d| d.join(memo_key.to_hex()));
    let remembered = || {
        let text = fs::read(memo_path.as_ref()?).ok()?;
        let memo = serde_json::from_slice::<Memo>(&text).ok()?;
        (memo.format_version == MEMO_FORMAT
            && memo.files.iter().all(|s| stamp_or_absent(&s.path) == *s))
        .then_some(memo.id)
    };
    // One probe at a time: whoever waited reads the memo the other wrote.
    let _lock = match crate::private_dir::memo_or_lock(memo_path.as_deref(), remembered) {
        Ok(id) => return Ok(id),
        Err(lock) => lock,
    };
    let (id, _, files) = probe(req, &driver, &path, &env)?;
    if let Some(p) = memo_path {
        let memo = Memo {
            format_version: MEMO_FORMAT,
            id: id.clone(),
            files,
        };
        if let Ok(bytes) = serde_json::to_vec(&memo) {
            let _ = crate::fsx::write_atomic(&p, &bytes);
        }
    }
    Ok(id)
}

/// Runs the probes and hashes what they name: the identity, the files it hashed, and
/// those with the directories whose changes may change a probe's answer (the memo's).
fn probe(
    req: &LinkerRequest<'_>,
    driver: &Path,
    path: &OsStr,
    env: &[String],
) -> Result<(LinkerId, Vec<Stamp>, Vec<Stamp>), Uncacheable> {
    let flags = probe_flags(req.target);
    let run = |program: &Path, args: &[&str]| -> Result<String, Uncacheable> {
        let out = Command::new(program)
            .args(args)
            .env("PATH", path)
            .env("LC_ALL", "C")
            .current_dir(req.cwd)
            .output()
            .map_err(|_| Uncacheable::UnknownLinker)?;
        if !out.status.success() {
            return Err(Uncacheable::UnknownLinker);
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(text)
    };
    let driver_args = |extra: &str| -> Vec<String> {
        let mut a = flags.clone();
        a.push(extra.to_string());
        a
    };
    let run_driver = |extra: &str| -> Result<String, Uncacheable> {
        let args = driver_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(driver, &args)
    };
    let mut files: Vec<Stamp> = Vec::new();
    let digest = |p: &Path, files: &mut Vec<Stamp>| -> Result<String, Uncacheable> {
        let s = stamp(p).ok_or(Uncacheable::UnknownLinker)?;
        let d = hash_file(p).map_err(|_| Uncacheable::UnknownLinker)?;
        files.push(s);
        Ok(d.to_hex())
    };

    let mut h = KeyHasher::new("linker");
    h.str("target", req.target);
    h.list("probe-flags", flags.iter().map(String::as_str));
    h.str("driver", &digest(driver, &mut files)?);
    h.str("driver-version", &run(driver, &["--version"])?);

    let mut ld_names = vec!["ld".to_string(), "ld.lld".to_string()];
    for f in req.fuse_ld {
        let name = format!("ld.{f}");
        if !f.contains('/') && !ld_names.contains(&name) {
            ld_names.push(name);
        }
    }
    let mut lds = Vec::new();
    for name in &ld_names {
        let given = run_driver(&format!("-print-prog-name={name}"))?;
        let given = given.trim();
        let found = find_program(given, req.cwd, path).map(|p| fs::canonicalize(&p).unwrap_or(p));
        match found {
            Some(p) => {
                let d = digest(&p, &mut files)?;
                let version = run(&p, &["--version"]).unwrap_or_else(|_| "no --version".into());
                lds.push(format!("{name}={d}\n{version}"));
            }
            None => lds.push(format!("{name}=absent")),
        }
    }
    // A `-fuse-ld=/path/to/ld` names the linker itself.
    for f in req.fuse_ld.iter().filter(|f| f.contains('/')) {
        let p = req.cwd.join(f);
        let d = digest(&p, &mut files)?;
        lds.push(format!("{f}={d}"));
    }
    h.list("ld", lds.iter().map(String::as_str));

    let mut programs = Vec::new();
    for name in DRIVER_PROGRAMS {
        let given = run_driver(&format!("-print-prog-name={name}"))?;
        let found =
            find_program(given.trim(), req.cwd, path).map(|p| fs::canonicalize(&p).unwrap_or(p));
        match found {
            Some(p) => programs.push(format!("{name}={}", digest(&p, &mut files)?)),
            None => programs.push(format!("{name}=absent")),
        }
    }
    h.list("programs", programs.iter().map(String::as_str));

    let dirs_text = run_driver("-print-search-dirs")?;
    let libraries = dirs_text
        .lines()
        .find_map(|l| l.strip_prefix("libraries: "))
        .ok_or(Uncacheable::UnknownLinker)?;
    let search_dirs: Vec<PathBuf> = libraries
        .trim_start_matches('=')
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    h.str("search-dirs", libraries);

    let mut runtime = Vec::new();
    for name in RUNTIME_FILES {
        let answer = run_driver(&format!("-print-file-name={name}"))?;
        let answer = answer.trim();
        // The driver echoes the bare name when it does not find the file.
        if answer == *name || !Path::new(answer).is_file() {
            runtime.push(format!("{name}=absent"));
        } else {
            runtime.push(format!("{name}={}", digest(Path::new(answer), &mut files)?));
        }
    }
    h.list("runtime", runtime.iter().map(String::as_str));

    let mut own = Vec::new();
    for dir in tool_dirs(req.sysroot, req.host) {
        let lld = dir.join("rust-lld");
        if lld.is_file() {
            own.push(format!("rust-lld={}", digest(&lld, &mut files)?));
        }
        if let Ok(entries) = fs::read_dir(dir.join("gcc-ld")) {
            let mut shims: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            shims.sort();
            for s in shims.iter().filter(|s| s.is_file()) {
                let name = s
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                own.push(format!("gcc-ld/{name}={}", digest(s, &mut files)?));
            }
        }
    }
    h.list("self-contained", own.iter().map(String::as_str));
    h.list("env", env.iter().map(String::as_str));

    let mut dirs: Vec<PathBuf> = search_dirs.clone();
    dirs.extend(
        files
            .iter()
            .filter_map(|s| s.path.parent().map(Path::to_path_buf)),
    );
    dirs.sort();
    dirs.dedup();
    let hashed = files.clone();
    files.extend(dirs.iter().map(|d| stamp_or_absent(d)));

    Ok((
        LinkerId {
            key: h.finish(),
            probe_flags: flags,
            ld_names,
            search_dirs,
        },
        hashed,
        files,
    ))
}

/// What linking adds to a unit's first-level key: the linker identity, each `-l`
/// library of the command line as the linker's search finds it (and where it looked in
/// vain), and the files `-C link-arg`s name. `sysroot_lib` is the target's library
/// directory in the sysroot, which the compiler identity covers.
pub fn link_key(
    linker: &LinkerId,
    inv: &RustcInvocation,
    cwd: &Path,
    sysroot_lib: &Path,
    pm: &PathMap,
) -> Result<Key, Uncacheable> {
    let explicit: Vec<PathBuf> = inv
        .search_paths
        .iter()
        .filter(|(kind, _)| kind == "native" || kind == "all")
        .map(|(_, dir)| cwd.join(dir))
        .collect();
    let search = LibSearch::new(&explicit, &linker.search_dirs, Some(sysroot_lib));
    let mut inputs = Vec::new();
    let mut libs = Vec::new();
    for lib in &inv.link_libs {
        let static_only = match lib.kind.as_str() {
            "static" => true,
            "dylib" => false,
            // `framework` (Apple), `raw-dylib` (Windows), `link-arg`: not for these targets.
            _ => return Err(Uncacheable::UnresolvedNativeLib),
        };
        let name = if lib.verbatim {
            format!(":{}", lib.name)
        } else {
            lib.name.clone()
        };
        search.find(&name, static_only, &mut inputs)?;
        libs.push(format!("{}={name}", lib.kind));
    }
    inputs.extend(search.absent_dirs());
    for arg in &inv.link_args {
        inputs.extend(arg_files(arg, cwd)?.into_iter().map(LinkInput::Present));
    }
    let described = describe_inputs(&inputs, pm)?;
    let described: Vec<String> = described
        .iter()
        .map(|i| format!("{}={}", i.name, i.state))
        .collect();
    Ok(KeyHasher::new("link")
        .key("linker", &linker.key)
        .list("libs", libs.iter().map(String::as_str))
        .list("inputs", described.iter().map(String::as_str))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_flags_follow_the_word_size() {
        assert_eq!(probe_flags("x86_64-unknown-linux-gnu"), ["-m64"]);
        assert_eq!(probe_flags("i686-unknown-linux-gnu"), ["-m32"]);
        assert!(probe_flags("aarch64-unknown-linux-gnu").is_empty());
    }

    fn host() -> String {
        let out = Command::new("rustc").arg("-vV").output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .unwrap()
    }

    #[test]
    fn identity_is_remembered_and_follows_the_driver() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        let driver = dir.path().join("my-cc");
        let write_driver = |comment: &str| {
            fs::write(&driver, format!("#!/bin/sh\n# {comment}\nexec cc \"$@\"\n")).unwrap();
            fs::set_permissions(&driver, fs::Permissions::from_mode(0o755)).unwrap();
        };
        write_driver("one");
        let host = host();
        let path = std::env::var_os("PATH");
        let vars = BTreeMap::new();
        let sysroot = dir.path().join("no-sysroot");
        let program = driver.to_string_lossy().into_owned();
        let mut req = LinkerRequest {
            program: &program,
            cwd: dir.path(),
            sysroot: &sysroot,
            host: &host,
            target: &host,
            fuse_ld: &[],
            path_var: path.as_deref(),
            vars: &vars,
        };
        let a = linker_id(&req, Some(&memo)).unwrap();
        assert!(!a.search_dirs.is_empty());
        assert_eq!(fs::read_dir(&memo).unwrap().count(), 1);
        assert_eq!(linker_id(&req, Some(&memo)).unwrap(), a);
        // What a worker offers: the same identity, the driver among the files it hashed.
        let offer = linker_offer(&req).unwrap();
        assert_eq!(offer.id, a);
        assert!(offer.files.contains(&driver), "{:?}", offer.files);
        assert!(offer.unchanged());
        // Another program at the same path is another linker, and the offer made before
        // vouches for nothing.
        write_driver("two, longer");
        assert!(!offer.unchanged());
        let b = linker_id(&req, Some(&memo)).unwrap();
        assert_ne!(a.key, b.key);
        // Programs that are not C compiler drivers are not guessed at.
        req.program = "true";
        assert_eq!(
            linker_id(&req, Some(&memo)),
            Err(Uncacheable::UnknownLinker)
        );
        req.program = "no-such-linker-anywhere";
        assert_eq!(linker_id(&req, None), Err(Uncacheable::UnknownLinker));
    }

    /// Two processes that find no memo probe once: the second waits for the first's
    /// memo. A `PATH` that names a directory again is the same `PATH` to the memo.
    #[test]
    fn a_linker_is_probed_once_by_callers_that_find_no_memo() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        fs::create_dir(&memo).unwrap();
        let probes = dir.path().join("probes");
        let driver = dir.path().join("counting-cc");
        fs::write(
            &driver,
            format!(
                "#!/bin/sh\n[ \"$1\" = --version ] && echo probe >> '{}'\nexec cc \"$@\"\n",
                probes.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&driver, fs::Permissions::from_mode(0o755)).unwrap();
        let host = host();
        let vars = BTreeMap::new();
        let sysroot = dir.path().join("no-sysroot");
        let program = driver.to_string_lossy().into_owned();
        let path = std::env::var_os("PATH").unwrap();
        let ask = |path: &OsStr| {
            linker_id(
                &LinkerRequest {
                    program: &program,
                    cwd: dir.path(),
                    sysroot: &sysroot,
                    host: &host,
                    target: &host,
                    fuse_ld: &[],
                    path_var: Some(path),
                    vars: &vars,
                },
                Some(&memo),
            )
            .unwrap()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| ask(&path));
            let b = s.spawn(|| ask(&path));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a, b);
        assert_eq!(fs::read_to_string(&probes).unwrap().lines().count(), 1);
        let first = std::env::split_paths(&path).next().unwrap();
        let mut repeated = vec![first.clone(), first];
        repeated.extend(std::env::split_paths(&path));
        assert_eq!(ask(&std::env::join_paths(repeated).unwrap()), a);
        assert_eq!(fs::read_to_string(&probes).unwrap().lines().count(), 1);
        let memos = fs::read_dir(&memo)
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
            .count();
        assert_eq!(memos, 1);
    }
}
