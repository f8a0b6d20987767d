//! What a worker observed an action read, and whether it stayed inside what the
//! action was given. Main function: [`confinement`].
//!
//! A remote result may stand for a local compile only when everything the command
//! read came with the action: its input root, or a tree the worker and the client
//! agree is the same (the toolchain, named by the compiler identity). A read anywhere
//! else — the worker's home, its `/usr/include`, its CPU's description — makes the
//! result the worker's own: the caller compiles locally and stores nothing from it.
//! So does a record that is missing, torn, from another format, or that shows a
//! process that ran unobserved.

use std::collections::BTreeSet;
use std::path::Path;

use crate::observe::{Op, Trace};

/// The record [`crate::exec::wire::OBSERVED`] carries, parsed.
pub struct Observed {
    pub trace: Trace,
    /// Where the input root was on the worker.
    pub input_root: String,
    /// The sysroot of the toolchain the worker ran compiles with, when it has one
    /// (`--rustc`): the worker vouches for its own toolchain, never for paths.
    pub sysroot: Option<String>,
    /// The paths of the run that reached what the worker's linker identity covers, when
    /// it has one (see [`LinkerPaths`]).
    pub linker: Option<LinkerPaths>,
}

/// What the worker says its linker identity covers among the paths this run met: the
/// files the identity hashed (the driver, the `ld`s, the C runtime files, by whatever
/// name the run reached them) and the directories the driver searches or keeps them
/// in. Agreed only for an action that asked for that identity
/// ([`crate::exec::wire::LINKER_PROPERTY`]).
#[derive(Debug, Default)]
pub struct LinkerPaths {
    pub files: BTreeSet<String>,
    pub dirs: BTreeSet<String>,
}

/// What a run may read outside its input root, because the worker and the client have
/// the same there.
#[derive(Debug, Default)]
pub struct Agreed {
    /// Trees read whole: the toolchain's sysroot (the compiler identity).
    pub trees: Vec<String>,
    /// With a linker identity agreed: the files it hashed, read by any operation (their
    /// contents are the identity's).
    pub files: BTreeSet<String>,
    /// With a linker identity agreed: directories the link may look at but not list
    /// (a `stat` says the directory is there, which the identity's search path says;
    /// what is found in it is judged file by file).
    pub dirs: BTreeSet<String>,
}

impl Agreed {
    /// The sysroot the worker states, and, when `linker` (the action asked for the
    /// worker's linker identity), what that identity covers.
    pub fn of(obs: &Observed, linker: bool) -> Agreed {
        let mut a = Agreed {
            trees: obs.sysroot.iter().cloned().collect(),
            ..Agreed::default()
        };
        if linker && let Some(l) = &obs.linker {
            a.files = l.files.iter().filter_map(|p| normal(p)).collect();
            a.dirs = l.dirs.iter().filter_map(|p| normal(p)).collect();
        }
        a
    }
}

/// `p` resolved by name, as a string.
pub fn normal(p: &str) -> Option<String> {
    lexical(Path::new(p)).map(|p| p.to_string_lossy().into_owned())
}

/// Whether an observed run stayed inside what it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Confinement {
    /// Every read was inside the input root (these paths, relative to it) or under
    /// an agreed tree.
    Confined { reads: BTreeSet<String> },
    /// A read outside: the first one seen.
    Outside { path: String },
    /// The run cannot be vouched for (why).
    Unobserved(String),
}

/// Parses the record; `Err` says why it is unusable.
pub fn parse(bytes: &[u8]) -> Result<Observed, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the record is not JSON ({e})"))?;
    if v["format_version"].as_u64() != Some(u64::from(crate::exec::wire::OBSERVED_FORMAT)) {
        return Err(format!(
            "the record's format_version is {}, not {}",
            v["format_version"],
            crate::exec::wire::OBSERVED_FORMAT
        ));
    }
    let root_pid = v["root_pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or("the record names no first process")?;
    let input_root = v["input_root"]
        .as_str()
        .filter(|r| r.starts_with('/') && r.len() > 1)
        .ok_or("the record names no absolute input root")?
        .to_string();
    let log = v["log"].as_str().ok_or("the record holds no log")?;
    let sysroot = match &v["sysroot"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.starts_with('/') && s.len() > 1 => Some(s.clone()),
        _ => return Err("the record's sysroot is not an absolute path".into()),
    };
    let linker = match &v["linker"] {
        serde_json::Value::Null => None,
        l => {
            let set = |k: &str| -> Result<BTreeSet<String>, String> {
                l[k].as_array()
                    .ok_or(format!("the record's linker names no {k}"))?
                    .iter()
                    .map(|p| {
                        p.as_str()
                            .filter(|p| p.starts_with('/'))
                            .map(str::to_string)
                            .ok_or(format!("the record's linker {k} are not absolute paths"))
                    })
                    .collect()
            };
            Some(LinkerPaths {
                files: set("files")?,
                dirs: set("dirs")?,
            })
        }
    };
    Ok(Observed {
        trace: Trace::parse(log, root_pid),
        input_root,
        sysroot,
        linker,
    })
}

/// Judges where `obs` read. `agreed` are absolute worker-side prefixes whose contents
/// the client knows to be the same as its own (the toolchain's sysroot).
pub fn confinement(obs: &Observed, agreed: &[&str]) -> Confinement {
    let agreed = Agreed {
        trees: agreed.iter().map(|a| a.to_string()).collect(),
        ..Agreed::default()
    };
    confinement_where(obs, &agreed, &|_| false)
}

/// As [`confinement`], except that a path outside which the run looked for and did
/// not find (rustc probes `/rustc/<commit>/library/…`, where the standard library's
/// sources would be) is no read when `absent_here` says this machine has nothing there
/// either: the run was then given what it would have found here. (The caller's own
/// judge of the run records the path as absent, so the key covers it.) A file the run
/// made itself directly in an agreed directory (its first event a successful write:
/// the C driver's `/tmp/cc*` files), or a path below a directory it made there, carries
/// nothing from the worker.
pub fn confinement_where(
    obs: &Observed,
    agreed: &Agreed,
    absent_here: &dyn Fn(&Path) -> bool,
) -> Confinement {
    if let Some(why) = obs.trace.escapes().first() {
        return Confinement::Unobserved(format!("a process ran unobserved ({why})"));
    }
    if obs.trace.torn > 0 {
        return Confinement::Unobserved(format!("{} lines of the record are torn", obs.trace.torn));
    }
    let root = Path::new(&obs.input_root);
    let mut reads = BTreeSet::new();
    let mut met: BTreeSet<std::path::PathBuf> = BTreeSet::new();
    let mut made: Vec<std::path::PathBuf> = Vec::new();
    for e in &obs.trace.events {
        // Only directly in an agreed directory (the temporary directories a link may
        // use): the observer does not tell a new file from an existing one opened for
        // writing, and elsewhere the worker's old contents could be read back.
        if matches!(e.op, Op::Write | Op::Mkdir)
            && e.err == 0
            && let Some(p) = lexical(Path::new(&e.path))
            && !met.contains(&p)
            && !made.iter().any(|d| p.starts_with(d))
            && p.parent()
                .is_some_and(|d| agreed.dirs.contains(d.to_string_lossy().as_ref()))
        {
            made.push(p);
            continue;
        }
        let touches_path = matches!(
            e.op,
            Op::Read | Op::Stat | Op::List | Op::Readlink | Op::Realpath | Op::Exec | Op::Spawn
        );
        if !touches_path {
            continue;
        }
        let Some(normal) = lexical(Path::new(&e.path)) else {
            return Confinement::Outside {
                path: e.path.clone(),
            };
        };
        let p = normal.as_path();
        if made.iter().any(|d| p.starts_with(d)) {
            continue;
        }
        met.insert(normal.clone());
        if let Ok(rel) = p.strip_prefix(root) {
            if !rel.as_os_str().is_empty() {
                reads.insert(rel.to_string_lossy().into_owned());
            }
            continue;
        }
        if agreed.trees.iter().any(|a| p.starts_with(a)) {
            continue;
        }
        let name = p.to_string_lossy();
        if agreed.files.contains(name.as_ref()) {
            continue;
        }
        // Looked at and found, not listed: it is there (the identity's search path).
        // One missing on the worker is judged as any absent path (absent here too).
        if agreed.dirs.contains(name.as_ref())
            && e.err == 0
            && matches!(e.op, Op::Stat | Op::Readlink | Op::Realpath)
        {
            continue;
        }
        // Kernel and device files say nothing about the result, except the CPU's
        // description (what `-C target-cpu=native` reads): that is the worker's own.
        if crate::observe::classify::special(p) == Some(false) {
            continue;
        }
        // ENOENT, ENOTDIR: nothing there on the worker.
        let not_found = matches!(e.op, Op::Read | Op::Stat | Op::Readlink | Op::Realpath)
            && matches!(e.err, 2 | 20);
        if not_found && absent_here(p) {
            continue;
        }
        return Confinement::Outside {
            path: p.to_string_lossy().into_owned(),
        };
    }
    Confinement::Confined { reads }
}

/// `p` with `.` and `..` resolved by name (`rustc/bin/../lib` is `rustc/lib`); `None`
/// when it is not absolute. By name is right where no directory on the way is a
/// symbolic link: the worker makes none in an input root, refuses to report an
/// observation when the run left one there, and an agreed tree is the toolchain's
/// own layout.
fn lexical(p: &Path) -> Option<std::path::PathBuf> {
    use std::path::Component;
    if !p.is_absolute() {
        return None;
    }
    let mut out = std::path::PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(log: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "format_version": crate::exec::wire::OBSERVED_FORMAT,
            "root_pid": 10,
            "input_root": "/w/action-1/root",
            "working_directory": "/w/action-1/root",
            "log": log,
        }))
        .unwrap()
    }

    #[test]
    fn a_record_of_another_format_or_without_a_root_is_unusable() {
        let mut v: serde_json::Value = serde_json::from_slice(&record("")).unwrap();
        v["format_version"] = 99.into();
        assert!(parse(&serde_json::to_vec(&v).unwrap()).is_err());
        v["format_version"] = crate::exec::wire::OBSERVED_FORMAT.into();
        v["input_root"] = "relative".into();
        assert!(parse(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(parse(b"forged").is_err());
    }

    #[test]
    fn a_run_that_did_not_load_the_observer_is_not_vouched_for() {
        let obs = parse(&record("")).unwrap();
        assert!(matches!(confinement(&obs, &[]), Confinement::Unobserved(_)));
    }

    #[test]
    fn reads_inside_the_root_or_an_agreed_tree_are_confined_any_other_is_not() {
        let log = "10 I 0 /usr/bin/rustc\n\
                   10 o 0 /w/action-1/root/src/lib.rs\n\
                   10 s 2 /w/action-1/root/src/missing.rs\n\
                   10 o 0 /toolchain/lib/libstd.rlib\n\
                   10 o 0 /proc/self/status\n";
        let obs = parse(&record(log)).unwrap();
        let Confinement::Confined { reads } = confinement(&obs, &["/toolchain"]) else {
            panic!("{:?}", confinement(&obs, &["/toolchain"]));
        };
        assert_eq!(
            reads.into_iter().collect::<Vec<_>>(),
            ["src/lib.rs", "src/missing.rs"]
        );
        // A probe of a path that is absent on the worker is no read where it is
        // absent here too; where it is present here, it is outside.
        let probe = parse(&record("10 I 0 /usr/bin/rustc\n10 s 2 /rustc/abc/lib.rs\n")).unwrap();
        assert!(matches!(
            confinement_where(&probe, &Agreed::default(), &|_| true),
            Confinement::Confined { .. }
        ));
        assert!(matches!(
            confinement_where(&probe, &Agreed::default(), &|_| false),
            Confinement::Outside { .. }
        ));
        // Without the toolchain agreed, its read is outside.
        assert_eq!(
            confinement(&obs, &[]),
            Confinement::Outside {
                path: "/toolchain/lib/libstd.rlib".into()
            }
        );
        // The worker's home, a path climbing out of the root, the CPU's description.
        for outside in [
            "/home/worker/.cargo/config.toml",
            "/w/action-1/root/../../secret",
            "/toolchain/../etc/passwd",
            "/proc/cpuinfo",
        ] {
            let obs = parse(&record(&format!(
                "10 I 0 /usr/bin/rustc\n10 o 0 {outside}\n"
            )))
            .unwrap();
            assert_eq!(
                confinement(&obs, &["/toolchain"]),
                Confinement::Outside {
                    path: lexical(Path::new(outside))
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                },
                "{outside}"
            );
        }
    }

    fn linker_record(log: &str) -> Observed {
        let mut v: serde_json::Value = serde_json::from_slice(&record(log)).unwrap();
        v["linker"] = serde_json::json!({
            "files": [
                "/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/crti.o",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/bin/cc",
            ],
            "dirs": ["/usr/lib/gcc/x86_64-linux-gnu/12/", "/lib/x86_64-linux-gnu", "/tmp"],
        });
        parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn a_link_may_read_what_the_agreed_linker_identity_covers_and_nothing_else() {
        let start = "10 I 0 /usr/bin/rustc\n";
        // The runtime files the identity hashed (by the names the run used, `..` and
        // all), the driver, a stat of a search directory: confined.
        let log = format!(
            "{start}10 x 0 /usr/bin/cc\n\
             10 o 0 /usr/lib/x86_64-linux-gnu/crti.o\n\
             10 o 0 /lib/x86_64-linux-gnu/libc.so.6\n\
             10 s 0 /usr/lib/gcc/x86_64-linux-gnu/12\n"
        );
        let obs = linker_record(&log);
        let agreed = Agreed::of(&obs, true);
        assert!(
            matches!(
                confinement_where(&obs, &agreed, &|_| false),
                Confinement::Confined { .. }
            ),
            "{:?}",
            confinement_where(&obs, &agreed, &|_| false)
        );
        // The same record for an action that did not ask for the linker: outside.
        assert_eq!(
            confinement_where(&obs, &Agreed::of(&obs, false), &|_| false),
            Confinement::Outside {
                path: "/usr/bin/cc".into()
            }
        );
        // Another file under /usr/lib, a search directory listed (its names are not
        // the identity's) or missing there, a file below a search directory the
        // identity did not hash: outside.
        for (line, path) in [
            (
                "10 o 0 /usr/lib/x86_64-linux-gnu/libz.so.1",
                "/usr/lib/x86_64-linux-gnu/libz.so.1",
            ),
            ("10 d 0 /lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
            // A search directory missing on the worker, present here.
            ("10 s 2 /lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
            (
                "10 o 0 /usr/lib/gcc/x86_64-linux-gnu/12/collect2",
                "/usr/lib/gcc/x86_64-linux-gnu/12/collect2",
            ),
        ] {
            let obs = linker_record(&format!("{start}{line}\n"));
            assert_eq!(
                confinement_where(&obs, &Agreed::of(&obs, true), &|_| false),
                Confinement::Outside { path: path.into() },
                "{line}"
            );
        }
        // A file the run made itself (the driver's temporary files) is no read.
        let obs = linker_record(&format!(
            "{start}10 w 0 /tmp/cc1.res\n10 o 0 /tmp/cc1.res\n"
        ));
        assert!(matches!(
            confinement_where(&obs, &Agreed::of(&obs, true), &|_| false),
            Confinement::Confined { .. }
        ));
        // Not for an action that did not ask for the linker, nor outside the agreed
        // directories (an existing file opened for writing looks the same).
        assert!(matches!(
            confinement_where(&obs, &Agreed::of(&obs, false), &|_| false),
            Confinement::Outside { .. }
        ));
        let obs = linker_record(&format!(
            "{start}10 w 0 /home/w/.cache/x\n10 o 0 /home/w/.cache/x\n"
        ));
        assert!(matches!(
            confinement_where(&obs, &Agreed::of(&obs, true), &|_| false),
            Confinement::Outside { .. }
        ));
        // One that was there before the run wrote it is.
        let obs = linker_record(&format!(
            "{start}10 o 0 /tmp/cc1.res\n10 w 0 /tmp/cc1.res\n"
        ));
        assert!(matches!(
            confinement_where(&obs, &Agreed::of(&obs, true), &|_| false),
            Confinement::Outside { .. }
        ));
    }
}
