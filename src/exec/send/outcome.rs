//! How a remote attempt went: the record a unit's event carries ([`RemoteExec`]), and
//! why a compile that could have run remotely ran here ([`Fallback`]).

use serde::{Deserialize, Serialize};

use crate::errors::CacheError;

/// Why a compile that could have run remotely ran here. Each has a stable code (the
/// event's `remote_exec.fallback`, the report's `remote_fallbacks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The executor could not be reached or gave no answer in time; the build sends
    /// it nothing more.
    Unavailable,
    /// The server answered with an error (a blob gone, a worker lost, no worker with
    /// this compiler before the deadline).
    Failed,
    /// No worker took it within the queue wait (`XCACHE_EXECUTOR_QUEUE_WAIT`) while
    /// none had taken a compile of its platform in this build, or one such was found
    /// earlier in the build: compiles of that platform run here.
    Unserved,
    /// The input root could not be made (a file under no root, too many files).
    InputRoot,
    /// The worker saw the compile read outside what it was given.
    ReadOutside,
    /// No usable record of what the compile read.
    Unobserved,
    /// The compile failed remotely: it runs here, so the messages are this machine's.
    CompileFailed,
    /// An output missing, or not matching its digest.
    Outputs,
    /// A variable the compile read cannot be given to a worker as it is here (it names
    /// this machine's paths and reaches the program, or it is withheld).
    Environment,
    /// Not sent: a local slot was free (`XCACHE_EXECUTOR_LOCAL`), so it compiled here.
    LocalSlot,
    /// A link (a proc-macro's) that no worker's linker identity can vouch for: a
    /// `-C linker=`, link arguments, a linker flavour or self-contained mode chosen, or
    /// this machine's `cc` on its PATH not the one on the PATH an action runs with.
    Linker,
    /// The worker's result was checked (`XCACHE_EXECUTOR_CHECK`) and differed from this
    /// machine's compile, or the executor was given up earlier in the build for that:
    /// the compile here stands, and later compiles run here.
    Mismatch,
    /// Not sent: its toolchain is not on the server yet, and another compile of this
    /// machine is sending it (`XCACHE_EXECUTOR_TOOLCHAIN=ship`).
    ToolchainSending,
    /// Compiled here as well while its action waited for a worker
    /// (`XCACHE_EXECUTOR_HEDGE`), and the compile here ended first: the action was
    /// cancelled.
    HereFirst,
}

impl Fallback {
    pub fn code(self) -> &'static str {
        match self {
            Fallback::Unavailable => "executor-unavailable",
            Fallback::Failed => "executor-failed",
            Fallback::Unserved => "executor-unserved",
            Fallback::InputRoot => "input-root",
            Fallback::ReadOutside => "read-outside",
            Fallback::Unobserved => "unobserved",
            Fallback::CompileFailed => "compile-failed",
            Fallback::Outputs => "outputs",
            Fallback::Environment => "environment",
            Fallback::LocalSlot => "local-slot",
            Fallback::Linker => "linker",
            Fallback::Mismatch => "executor-mismatch",
            Fallback::ToolchainSending => "toolchain-sending",
            Fallback::HereFirst => "here-first",
        }
    }
}

/// A fallback and what happened, in words.
pub type Fell = (Fallback, String);

/// How a compile that could run remotely (`XCACHE_EXECUTOR`) went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteExec {
    /// The worker that compiled it, as it names itself; none when it was compiled here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Why it was compiled here after all: a code (`executor-unavailable`,
    /// `read-outside`, …; the book's remote-execution page lists them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// What happened, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Input blobs the server lacked, sent.
    #[serde(default)]
    pub bytes_up: u64,
    /// Outputs, messages and the worker's record, received.
    #[serde(default)]
    pub bytes_down: u64,
    /// The remote attempt, from the first request to the last output in place.
    #[serde(default)]
    pub action_ms: u64,
    /// The worker's outputs were compared with a compile here (`XCACHE_EXECUTOR_CHECK`):
    /// equal without a `fallback`, different with `executor-mismatch`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checked: bool,
    /// It was compiled here as well while its action waited for a worker
    /// (`XCACHE_EXECUTOR_HEDGE`): the compile here stood with `here-first` (or another
    /// fallback), and was stopped when the worker's result stood.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hedged: bool,
}

/// What the server's error says (the URI is the warning's, once).
pub(super) fn said(e: &CacheError) -> String {
    match e {
        CacheError::Remote { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
