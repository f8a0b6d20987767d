//! What the worker states about a run for the client: the observed record, with the
//! toolchain it compiled with ([`Toolchain`]) and the paths its linker identity covers.

use std::path::{Path, PathBuf};

use crate::exec::wire::OBSERVED_FORMAT;

/// The toolchain a worker compiles with.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The real rustc (not rustup's proxy).
    pub rustc: PathBuf,
    /// `rustc --print sysroot`: stated in the observation record, so the client can
    /// take reads under it as the agreed toolchain's.
    pub sysroot: PathBuf,
    /// The compiler identity, hex: the value of [`crate::exec::wire::COMPILER_PROPERTY`].
    pub identity: String,
    /// The linker the worker's rustc links with (`cc` on [`crate::key::ACTION_PATH`]),
    /// when it could be identified: offered as [`crate::exec::wire::LINKER_PROPERTY`], and the paths it
    /// covers stated in the observation record.
    pub linker: Option<crate::key::LinkerOffer>,
}

/// The observed record as [`OBSERVED`](crate::exec::wire::OBSERVED) carries it: the observer's log, the first
/// process, and where the input root and working directory were, so the client can
/// tell a read inside the input root from one outside it.
pub(super) fn observed_record(
    observer: Option<crate::observe::Observer>,
    pid: u32,
    root: &Path,
    wd: &Path,
    toolchain: Option<&Toolchain>,
) -> Option<Vec<u8>> {
    let observer = observer?;
    let log = observer.read_log().ok()?;
    let record = serde_json::json!({
        "format_version": OBSERVED_FORMAT,
        "root_pid": pid,
        "input_root": root.to_string_lossy(),
        "working_directory": wd.to_string_lossy(),
        "sysroot": toolchain.map(|t| t.sysroot.to_string_lossy()),
        // A linker changed since the worker identified it vouches for nothing.
        "linker": toolchain
            .and_then(|t| t.linker.as_ref())
            .filter(|l| l.unchanged())
            .map(|l| linker_record(l, &log, pid)),
        "log": log,
    });
    serde_json::to_vec(&record).ok()
}

/// The paths of this run that reached the files and directories the worker's linker
/// identity covers, each by any name (`/lib/x86_64-linux-gnu/libc.so.6` reaches the
/// `libc.so.6` the identity hashed under `/usr/lib`): the worker resolves its own names,
/// the client takes exactly these as the agreed linker's (`exec::observed::Agreed`).
fn linker_record(linker: &crate::key::LinkerOffer, log: &str, pid: u32) -> serde_json::Value {
    use std::collections::BTreeSet;
    let canonical = |p: &PathBuf| std::fs::canonicalize(p).ok();
    let files: BTreeSet<PathBuf> = linker.files.iter().filter_map(canonical).collect();
    let dirs: BTreeSet<PathBuf> = linker.dirs.iter().filter_map(canonical).collect();
    let (mut f, mut d) = (BTreeSet::new(), BTreeSet::new());
    let trace = crate::observe::Trace::parse(log, pid);
    let mut seen = BTreeSet::new();
    // Each path the run met, and the directory it is in (a file the driver made in
    // `/tmp` is judged by its directory).
    let met = trace
        .events
        .iter()
        .filter(|e| e.path.starts_with('/'))
        .flat_map(|e| {
            let p = Path::new(&e.path);
            [Some(p), p.parent()].into_iter().flatten()
        });
    for p in met {
        if !seen.insert(p) {
            continue;
        }
        let Ok(c) = std::fs::canonicalize(p) else {
            continue;
        };
        let name = p.to_string_lossy().into_owned();
        if files.contains(&c) {
            f.insert(name);
        } else if dirs.contains(&c) {
            d.insert(name);
        }
    }
    serde_json::json!({ "files": f, "dirs": d })
}
