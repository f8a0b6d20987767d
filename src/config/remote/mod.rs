//! The remote store URI (`XCACHE_REMOTE`, `remote = "…"`, `--remote`), parsed into a
//! service description. Credentials may sit in the URI (`redis://:secret@host`); they are
//! kept apart and never appear in [`RemoteSpec::display`], a log, a report or an error.
//!
//! The files: the types a URI parses into (`spec`), the parsing (`uri`, and `cluster`
//! for Redis Cluster), the credentials it may hold (`credentials`), the timeout.

mod cluster;
mod credentials;
mod spec;
#[cfg(test)]
mod tests;
mod timeout;
mod uri;

pub use spec::{RemoteDefaults, RemoteKind, RemoteSpec, Secret, Uploads, Writes};
pub use timeout::{DEFAULT_TIMEOUT, UPLOAD_TIMEOUT_FACTOR, parse_timeout};
