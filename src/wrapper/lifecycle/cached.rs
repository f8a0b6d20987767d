//! What a kind of cached unit plugs into the lifecycle ([`Cached`]), and what its runs
//! give back: the real run ([`Ran`], its output passed through by [`tee`]), the files to
//! store ([`OutFile`]), an uncached run again for `cargo xcache verify` ([`Rerun`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::context::Cx;
use crate::key::{Input, Key, Root};
use crate::observe::Observer;
use crate::reason::Uncacheable;
use crate::store::{BoundBy, EntryMeta, PutOutcome};
use crate::wrapper::restore::Restored;
use crate::wrapper::{UnitEvent, UnitRecord};

/// What one run of the real thing did.
pub(in crate::wrapper) struct Ran {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The observer's record, when the run was observed.
    pub trace: Option<crate::observe::Trace>,
}

/// One file to store.
pub(in crate::wrapper) struct OutFile {
    pub role: String,
    /// Where it is restored, relative to the unit's restore directory.
    pub name: String,
    pub executable: bool,
    /// May be held in the local store by reference, as the object of its digest
    /// (`store::objects`: a library's `.rlib` by hard link, everything else copied, so
    /// a program a user strips or patches where it is leaves the store as it was): a
    /// compiler's output, and a build-script run's large files that are no programs
    /// (`store::objects::OBJECT_MIN_LEN`; its small files stay in the entry).
    pub shared: bool,
    pub source: OutSource,
}

pub(in crate::wrapper) enum OutSource {
    /// The file's bytes, scanned for machine roots while stored.
    File(PathBuf),
    /// Text with the roots replaced by tokens (a template if it holds one).
    Text(String),
}

/// What differs between kinds of cached units. The lifecycle calls these in a fixed
/// order (see [`run_cached`]).
pub(in crate::wrapper) trait Cached {
    /// The report's record of the unit (outcome and timings are filled in later).
    fn record(&self, cx: &Cx) -> UnitRecord;
    /// A reason the unit is not cached, known before anything runs.
    fn refusal(&self, cx: &Cx) -> Option<Uncacheable>;
    /// The first-level key.
    fn l1(&mut self, cx: &mut Cx) -> Result<Key, Uncacheable>;
    /// A reason not to store a run after a lookup missed (an incremental compile).
    fn reason_after_miss(&self) -> Option<Uncacheable> {
        None
    }
    /// Where the entry's files are restored.
    fn restore_dir(&self, cx: &Cx) -> Option<PathBuf>;
    /// Whether a stored entry can be replayed here (its messages name only known roots).
    fn replayable(&self, _cx: &Cx, _meta: &EntryMeta) -> bool {
        true
    }
    /// After a restore, before the replay: what dependents or cargo need (identities,
    /// shims).
    fn restored(&mut self, cx: &mut Cx, key: &Key, restored: &Restored);
    /// Prints the stored messages.
    fn replay(&self, cx: &Cx, meta: &EntryMeta);
    /// Runs the real thing (observed when `observer` is given).
    fn run(&mut self, cx: &mut Cx, observer: Option<Observer>) -> io::Result<Ran>;
    /// What a successful run read, or why it cannot be cached.
    fn inputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<Input>, Uncacheable>;
    /// The files to store, or why they cannot be.
    fn outputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<OutFile>, Uncacheable>;
    /// Whether the stored messages carry ANSI colour.
    fn ansi(&self) -> bool {
        false
    }
    /// After a successful run, stored (`Some`) or not.
    fn finished(&mut self, cx: &mut Cx, stored: Option<(&Key, &PutOutcome)>);
    /// Whether [`Cached::outputs`] needs [`Cached::inputs`] first (a build-script run's
    /// outputs are the files the observer saw it write). When not, what the unit read
    /// is judged after cargo went on.
    fn outputs_follow_inputs(&self) -> bool;
    /// For a unit whose outputs follow its inputs: every file its outputs can be (a
    /// build-script run's `OUT_DIR`, walked), so that cargo may go on before what the
    /// unit read is judged; `None` when they cannot be named (the judging then stays
    /// in the foreground).
    fn possible_outputs(&self, _cx: &Cx) -> Option<Vec<PathBuf>> {
        None
    }
    /// Whether cargo may go on before the entry is stored and [`Cached::finished`] has
    /// run (`background`): true only when nothing cargo or a later unit reads is
    /// written by them.
    fn may_store_in_background(&self, cx: &Cx) -> bool;
    /// Just before cargo is let go with the unit's entry still to be stored: puts in
    /// place what cargo or a later unit needs from [`Cached::finished`] before then
    /// (a build script's shim), pointing `files` at where their bytes are afterwards.
    fn before_release(&mut self, _cx: &mut Cx, _files: &mut [OutFile]) {}
    /// The roots [`Cached::inputs`] bound the unit to because of what it read rather
    /// than what it wrote (a C file's name made data: `observe::file_macros`), and why:
    /// for `explain`.
    fn bound_by_reads(&mut self) -> Vec<BoundBy> {
        Vec::new()
    }
    /// The reason code of a failed run.
    fn failure_code(&self) -> &'static str;
    /// Fills what only this kind knows (prediction keys, where cargo keeps it).
    fn complete_event(&self, cx: &Cx, ev: &mut UnitEvent);
    /// Runs the real thing again without the cache, observed, writing its outputs into
    /// `scratch` instead of the restore directory and printing nothing (for
    /// `cargo xcache verify`).
    fn rerun(&mut self, cx: &mut Cx, scratch: &Path) -> Result<Rerun, String>;

    /// The roots a record must be bound to beyond what its inputs say, with why,
    /// decided after the unit ran and before it is stored (a build-script run whose path
    /// check did not show its roots used as paths only: `run_check`).
    fn roots_to_bind(
        &mut self,
        _cx: &mut Cx,
        _l1: &Key,
        _ran: &Ran,
        _inputs: &[Input],
        _files: &[OutFile],
    ) -> Option<(Vec<Root>, String)> {
        None
    }
}

/// What an uncached run for `cargo xcache verify` produced.
pub(in crate::wrapper) struct Rerun {
    /// Its outputs: a name below the restore directory, and where the rerun wrote it.
    pub files: Vec<(String, PathBuf)>,
    /// What it printed on stdout.
    pub stdout: Vec<u8>,
    /// What it read.
    pub inputs: Vec<Input>,
}

/// Copies `from` to `to` as it comes, and returns a copy.
pub(in crate::wrapper) fn tee(mut from: impl io::Read, mut to: impl Write) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = to.write_all(&buf[..n]);
                let _ = to.flush();
                kept.extend_from_slice(&buf[..n]);
            }
        }
    }
    kept
}
