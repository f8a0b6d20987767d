//! What the remote-execution client and our worker agree on: the output that carries
//! what a command read, its format, the platform properties that name a worker's
//! compiler and linker, the variable that gives an action its rustc, and which relative
//! paths an action may name. The worker imports these; nothing here knows the worker.

/// The output path through which our worker returns what the command read: the
/// client asks for it among its outputs, the worker writes it (over anything the
/// command left there). A worker that is not ours leaves it out, which the client
/// takes as "not observed": a local compile.
pub const OBSERVED: &str = "xcache-observed.json";

/// The `format_version` of [`OBSERVED`]. 2: the record states the files and
/// directories the worker's linker identity covers (`linker`). A client of format 1
/// reads a record of 2 as unusable (a local compile), and a worker of 1 sends records
/// this client refuses: both sides of a farm move together, never to a wrong build.
pub const OBSERVED_FORMAT: u32 = 2;

/// The platform property that names the compiler a worker has: its identity
/// (`crate::key::compiler_id`), the same on the client and the worker when both have
/// the same toolchain. A compile asks for it; a worker offers it (`--rustc`).
pub const COMPILER_PROPERTY: &str = "xcache-compiler";

/// The platform property that names the linker a worker has: its linker identity
/// (`crate::key::linker_id` for `cc` on [`crate::key::ACTION_PATH`], as the keys use
/// it). A proc-macro compile, which links, asks for it; a worker offers it when its
/// `cc` could be identified.
pub const LINKER_PROPERTY: &str = "xcache-linker";

/// The platform property an action that carries its own toolchain asks for, with the
/// value [`SHIPPED`]: the input root holds the client's toolchain (its `rustc`, driver
/// libraries and the target's standard library) under [`TOOLCHAIN_DIR`], and the
/// worker runs the compile with that, whatever it has installed. Every worker of ours
/// offers it.
pub const TOOLCHAIN_PROPERTY: &str = "xcache-toolchain";

/// The value of [`TOOLCHAIN_PROPERTY`].
pub const SHIPPED: &str = "shipped";

/// The directory at the top of an input root that holds a shipped toolchain (a sysroot:
/// `bin/rustc`, `lib/…`). The worker makes it once per digest in its own cache, read
/// only, and runs `bin/rustc` from there; the action's own directory does not hold it.
pub const TOOLCHAIN_DIR: &str = "toolchain";

/// The variable through which the worker gives an action the path of its rustc (set
/// by the worker over anything the action names).
pub const RUSTC_VAR: &str = "XCACHE_RUSTC";

/// Whether `rel` is a plain relative path (`/`-separated plain names), as an input
/// root or an output list may hold. Where it is joined to a directory, that is done
/// through [`crate::fsx::confined`], which also refuses a symbolic link on the way.
pub fn plain(rel: &str) -> bool {
    !rel.is_empty() && rel.split('/').all(crate::fsx::is_plain_name)
}
