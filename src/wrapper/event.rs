//! What the wrapper tells the front-end: JSON lines appended to the file named by
//! `XCACHE_EVENTS` — a [`StartEvent`] line when a wrapper takes a unit on, a
//! [`UnitEvent`] line when it is done with it. Each line is written with one `write`
//! call on a file opened for appending, so concurrent wrappers do not interleave. Data
//! flows one way: wrappers write, the front-end reads ([`read_stream`]).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exec::send::RemoteExec;

/// What happened to a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Hit,
    Miss,
    Uncacheable,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Uncacheable => "uncacheable",
            Outcome::Error => "error",
        }
    }
}

/// A cache problem met while handling a unit (the unit was compiled regardless).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

impl From<&crate::errors::CacheError> for Warning {
    /// The warning a cache problem gives: its stable code and its message.
    fn from(e: &crate::errors::CacheError) -> Warning {
        Warning {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// One rustc invocation, as `report.json` lists it (see `report` for which fields are
/// stable).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitRecord {
    pub package: String,
    pub version: String,
    pub crate_name: String,
    pub kind: String,
    /// `--target`, when given.
    pub target: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// For an uncacheable unit: what made it so, when one thing did (the file written
    /// outside its place, the input that changed during the build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For a hit: how long the original compile took. For a miss: this compile.
    pub compile_ms: Option<u64>,
    pub restore_ms: Option<u64>,
    /// The entry key; for uncacheable units that others depend on, the identity they use.
    pub key: Option<String>,
    /// For a hit: which tier served it (`local` or `remote`).
    #[serde(default)]
    pub tier: Option<String>,
    /// For a hit of a unit compiled with `-C incremental`: the restored outputs are
    /// those of a non-incremental build.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_incremental_restore: bool,
    /// True when the unit was put in the target dir before cargo started and cargo
    /// found it fresh, so no rustc (and no wrapper) ran for it.
    #[serde(default)]
    pub seeded: bool,
    /// For a miss: the nearest earlier key of the same unit and what differed (filled
    /// in by the front-end from the store's key history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miss_cause: Option<crate::key::MissCause>,
    /// When the unit started and ended, in ms after the build started (units the
    /// wrapper handled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// On the build's critical path (the longest chain of dependent units).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// The wrapper's cache work on this unit by part, in milliseconds: `key` (the
    /// first-level key), `lookup` (a lookup that missed), `restore`, `observe` (setting
    /// the observer up), `inputs` (what the compile or run read, from its record),
    /// `expansion` (the expansion check), `outputs`, `store` (hashing, compressing and
    /// writing the entry), `finish` (seed records, the link's identities), `other`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overhead: BTreeMap<String, u64>,
    /// CPU time (user and system, in milliseconds) of the wrapper's own processes for
    /// this unit: before and after the compile, and after cargo was let go (the
    /// background part included; [`CpuTimes`]): what the cache cost the machine beside
    /// the compile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// CPU time of the other programs the wrapper ran for this unit (the soundness
    /// checks' second compiles and runs, expansions, compiler probes), in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_cpu_ms: Option<u64>,
    /// With `XCACHE_EXECUTOR`: a compile that could be sent to a worker — which one ran
    /// it, or why it was compiled here after all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_exec: Option<RemoteExec>,
}

impl UnitRecord {
    /// A unit as it is known before anything happened to it: a miss with nothing
    /// measured yet; callers fill in what they know.
    pub fn new(
        package: String,
        version: String,
        crate_name: String,
        kind: String,
        outcome: Outcome,
    ) -> UnitRecord {
        UnitRecord {
            package,
            version,
            crate_name,
            kind,
            target: None,
            outcome,
            detail: None,
            reason: None,
            compile_ms: None,
            restore_ms: None,
            key: None,
            tier: None,
            non_incremental_restore: false,
            seeded: false,
            miss_cause: None,
            start_ms: None,
            end_ms: None,
            critical: false,
            overhead: BTreeMap::new(),
            cpu_ms: None,
            checks_cpu_ms: None,
            remote_exec: None,
        }
    }
}

/// Where cargo keeps a unit in the target dir: what seeding needs to
/// capture the unit after the build and put it back before a later one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitPlace {
    /// The target (build) directory.
    pub target_root: PathBuf,
    /// rustc's `--out-dir`, relative to the target root (`debug/deps`).
    pub out_dir: String,
    /// `<package>-<hash>`: the unit's directory under `.fingerprint`.
    pub unit_dir: String,
    /// The build-script run whose `OUT_DIR` the unit read (`<package>-<hash>`).
    pub run_dir: Option<String>,
    /// The directory rustc ran in.
    pub cwd: PathBuf,
    /// The package's directory.
    pub manifest_dir: PathBuf,
    /// Each `--extern` file in the target dir, tokenized, with its identity now
    /// (`key::artifact_identity`): what the unit was compiled against.
    #[serde(default)]
    pub deps: Vec<(String, String)>,
    /// For a unit that links: the linker it used, so a seed is checked against the
    /// linker found when it is planted.
    #[serde(default)]
    pub linker: Option<LinkerUsed>,
    /// cargo asked for `-C incremental` (the unit was still compiled without it).
    #[serde(default)]
    pub incremental: bool,
    /// The unit is a build script's compile (its directory travels whole in its pack).
    #[serde(default)]
    pub script_compile: bool,
    /// The source file cargo gave rustc, as given (absolute for a package outside the
    /// workspace): what cargo's fingerprint hashes as the unit's path
    /// (`seed::fingerprint`).
    #[serde(default)]
    pub source: Option<String>,
}

/// Which linker a unit used, and its identity then (`key::linker_id`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkerUsed {
    pub program: String,
    pub fuse_ld: Vec<String>,
    pub target: String,
    pub sysroot: PathBuf,
    /// The identity's key, hex.
    pub key: String,
}

/// One rustc invocation as the wrapper saw it: the report's record plus what the
/// front-end sums up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitEvent {
    pub format_version: u32,
    pub unit: UnitRecord,
    /// Time spent on cache work (keys, lookup, storing), not counting rustc.
    pub overhead_ms: u64,
    /// Bytes written to or read from the store (uncompressed).
    pub bytes: u64,
    /// Bytes a hit put in place by hard link from the store's loose objects (not in
    /// `bytes`).
    #[serde(default)]
    pub bytes_linked: u64,
    /// Bytes of the loose objects a stored entry refers to (made objects by copy or by
    /// link, not in `bytes`): with `bytes`, at most what the unit added to the store.
    #[serde(default)]
    pub object_bytes: u64,
    /// Where prediction finds this unit next time (see `key::prediction_key`).
    #[serde(default)]
    pub upk: Option<String>,
    /// Where seed records of this unit live (see `key::seed_key`).
    #[serde(default)]
    pub spk: Option<String>,
    /// The first-level key, for units whose entry the front-end may upload.
    #[serde(default)]
    pub l1: Option<String>,
    /// True when the entry was stored locally and the front-end should upload it.
    #[serde(default)]
    pub upload: bool,
    /// Bytes downloaded from / uploaded to the remote tier (compressed entries).
    #[serde(default)]
    pub bytes_down: u64,
    #[serde(default)]
    pub bytes_up: u64,
    /// Where the unit lives in the target dir, when known.
    #[serde(default)]
    pub place: Option<UnitPlace>,
    /// For a hit that `cargo xcache verify` checked: what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verified>,
    pub warnings: Vec<Warning>,
    /// What the first-level key was hashed from (rustc units): the front-end keeps it
    /// in the store's key history and compares it to explain a miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_parts: Option<crate::key::KeyParts>,
    /// When the wrapper started and ended, in milliseconds since the Unix epoch (for
    /// the timeline and the critical path).
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default)]
    pub end_ms: u64,
    /// The wrapper's process id: the same as its [`StartEvent`] line's (0 from a
    /// wrapper older than start lines).
    #[serde(default)]
    pub pid: u32,
    /// The cache work done after cargo was let go (stored in the background), in
    /// milliseconds; not part of `overhead_ms`.
    #[serde(default)]
    pub background_ms: u64,
    /// The wrapper's own peak resident memory, in KiB ([`peak_rss_kb`]), 0 when unknown.
    #[serde(default)]
    pub peak_rss_kb: u64,
    /// CPU time of the compile or build-script run itself, with what it started. (The
    /// wrapper's own and its checks' are the unit's: `UnitRecord::cpu_ms`,
    /// `UnitRecord::checks_cpu_ms`.)
    #[serde(default)]
    pub compile_cpu_ms: u64,
}

/// CPU time, user and system, in milliseconds: a process's own (all its threads) and
/// that of the children it has waited for (`getrusage`). A child made by `fork` starts
/// from zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub own_ms: u64,
    pub children_ms: u64,
}

impl CpuTimes {
    /// This process's so far (zero where the system does not say).
    pub fn now() -> CpuTimes {
        CpuTimes {
            own_ms: rusage_ms(libc::RUSAGE_SELF),
            children_ms: rusage_ms(libc::RUSAGE_CHILDREN),
        }
    }

    pub fn plus(self, other: CpuTimes) -> CpuTimes {
        CpuTimes {
            own_ms: self.own_ms + other.own_ms,
            children_ms: self.children_ms + other.children_ms,
        }
    }
}

#[allow(unsafe_code)]
fn rusage_ms(who: libc::c_int) -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes one `rusage` through the pointer, which points to
    // zeroed memory of that type; on failure it writes nothing and the zeroes stay.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let us = |t: libc::timeval| (t.tv_sec.max(0) as u64) * 1_000_000 + t.tv_usec.max(0) as u64;
    (us(usage.ru_utime) + us(usage.ru_stime)) / 1000
}

/// This process's peak resident memory so far, in KiB (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A unit a wrapper has taken on: written before anything else happens to it, so the
/// front-end can show what is in flight. The unit's [`UnitEvent`] (same `pid`) follows
/// in the same file. A reader of events only skips these lines: they have no `unit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartEvent {
    pub format_version: u32,
    /// The wrapper's process id.
    pub pid: u32,
    pub started: UnitName,
    /// Milliseconds since the Unix epoch.
    pub start_ms: u64,
}

/// Which unit started: the fields that name it in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitName {
    pub package: String,
    pub version: String,
    pub crate_name: String,
    pub kind: String,
    #[serde(default)]
    pub target: Option<String>,
}

impl UnitName {
    /// The unit's name as a progress line shows it: the package, and what is built of
    /// it when that is not its library or binary (`serde(build)`, `serde(run)`).
    pub fn label(&self) -> String {
        match self.kind.as_str() {
            "build-script" => format!("{}(build)", self.package),
            "build-script-run" => format!("{}(run)", self.package),
            "test" => format!("{}(test)", self.package),
            _ => self.package.clone(),
        }
    }
}

impl From<&UnitRecord> for UnitName {
    fn from(u: &UnitRecord) -> UnitName {
        UnitName {
            package: u.package.clone(),
            version: u.version.clone(),
            crate_name: u.crate_name.clone(),
            kind: u.kind.clone(),
            target: u.target.clone(),
        }
    }
}

/// What `cargo xcache verify` found when it compiled (or ran) a restored unit again
/// without the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub verdict: HitVerdict,
    /// The outputs that differ from the restored ones.
    #[serde(default)]
    pub files: Vec<String>,
    /// What the uncached run read that the recorded variant does not hold: the inputs
    /// the key missed.
    #[serde(default)]
    pub missed: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// What a check of one hit concluded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HitVerdict {
    /// The uncached outputs are the restored ones, byte for byte (paths of the two
    /// output directories read as one).
    Same,
    /// They differ: the cache gave another result than the compiler.
    Differs,
    /// They differ, and so do two uncached runs from each other: the unit is not
    /// reproducible by nature (`files` names what differs).
    NotReproducible,
    /// The unit could not be compiled again (`note` says why).
    #[default]
    NotChecked,
}

impl HitVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            HitVerdict::Same => "same",
            HitVerdict::Differs => "differs",
            HitVerdict::NotReproducible => "not-reproducible",
            HitVerdict::NotChecked => "not-checked",
        }
    }
}

/// Where a wrapper in drop-in mode (no `cargo xcache` front-end) appends its events:
/// one file per cargo process (the wrapper's parent) in the target dir's `xcache/`.
pub fn dropin_events_path(target_root: &Path) -> PathBuf {
    let cargo = std::os::unix::process::parent_id();
    target_root
        .join("xcache")
        .join(format!("{DROPIN_PREFIX}{cargo}.jsonl"))
}

/// The file name prefix of drop-in event files.
pub const DROPIN_PREFIX: &str = "dropin-";

/// Appends one line ([`UnitEvent`] or [`StartEvent`]).
pub fn append_event(path: &Path, event: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(&line)
}

/// Reads every complete event line; a torn or foreign line is skipped.
pub fn read_events(path: &Path) -> io::Result<Vec<UnitEvent>> {
    read_stream(path).map(|s| s.events)
}

/// Reads the events file as it grows: each call returns the events of the lines
/// completed since the last one (a line not ended yet is read once it is). The events
/// read so far are, in order, the first of what [`read_events`] reads later (the file
/// is only appended to); the front-end checks that they are.
#[derive(Debug)]
pub struct EventTail {
    path: PathBuf,
    /// Bytes consumed: the end of the last complete line read.
    offset: u64,
}

impl EventTail {
    pub fn new(path: &Path) -> EventTail {
        EventTail {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// The events of the lines completed since the last call.
    pub fn read_new(&mut self) -> io::Result<Vec<UnitEvent>> {
        use std::io::{Read, Seek};
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        f.seek(io::SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        self.offset += end as u64 + 1;
        Ok(bytes[..end]
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<UnitEvent>(line).ok())
            .collect())
    }
}

/// What the events file says so far.
#[derive(Clone, Debug, Default)]
pub struct EventStream {
    /// The units done, in the order their wrappers finished.
    pub events: Vec<UnitEvent>,
    /// The units started and not done yet, oldest first.
    pub in_flight: Vec<StartEvent>,
}

/// Reads the events file: the units done, and those in flight (a start line whose
/// wrapper has written no event after it). A torn or foreign line is skipped.
pub fn read_stream(path: &Path) -> io::Result<EventStream> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(EventStream::default()),
        Err(e) => return Err(e),
    };
    let mut out = EventStream::default();
    for line in BufReader::new(f).lines() {
        let line = line?;
        if let Ok(ev) = serde_json::from_str::<UnitEvent>(&line) {
            if let Some(i) = out.in_flight.iter().position(|s| s.pid == ev.pid) {
                out.in_flight.remove(i);
            }
            out.events.push(ev);
        } else if let Ok(started) = serde_json::from_str::<StartEvent>(&line) {
            // A process id seen again belongs to a new wrapper.
            out.in_flight.retain(|s| s.pid != started.pid);
            out.in_flight.push(started);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pid: u32) -> String {
        format!(
            "{}\n",
            serde_json::json!({
                "format_version": 1,
                "unit": {
                    "package": "p", "version": "0.1.0", "crate_name": "p", "kind": "lib",
                    "target": null, "outcome": "miss", "reason": null, "compile_ms": 1,
                    "restore_ms": null, "key": null,
                },
                "overhead_ms": 0, "bytes": 0, "warnings": [], "pid": pid,
            })
        )
    }

    /// Each read returns the events of the lines completed since the last one: a line
    /// not ended yet waits for its end, a start line or a foreign one is skipped, and
    /// the events read this way are those `read_events` reads at the end.
    #[test]
    fn the_tail_reads_each_completed_line_once() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut tail = EventTail::new(&path);
        assert!(tail.read_new().unwrap().is_empty(), "no file yet");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let pids = |evs: Vec<UnitEvent>| evs.iter().map(|e| e.pid).collect::<Vec<_>>();
        f.write_all(line(1).as_bytes()).unwrap();
        let second = line(2);
        let (head, rest) = second.split_at(40);
        f.write_all(head.as_bytes()).unwrap();
        assert_eq!(pids(tail.read_new().unwrap()), vec![1]);
        assert!(tail.read_new().unwrap().is_empty(), "half a line");
        f.write_all(rest.as_bytes()).unwrap();
        f.write_all(b"{\"pid\":7,\"started\":true}\nnot json\n")
            .unwrap();
        f.write_all(line(3).as_bytes()).unwrap();
        assert_eq!(pids(tail.read_new().unwrap()), vec![2, 3]);
        assert!(tail.read_new().unwrap().is_empty());
        assert_eq!(pids(read_events(&path).unwrap()), vec![1, 2, 3]);
    }
}
