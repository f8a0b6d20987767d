//! Bytes at rest: the local store, the entry format, and level-one manifests.
//!
//! Layout (versioned; bump `LAYOUT` and the tests in `tests/store.rs` together):
//! ```text
//! <dir>/v1/entries/<2 hex>/<entry key>.xce     compressed entries (see `entry`)
//! <dir>/v1/manifests/<2 hex>/<l1 key>.json     which inputs lead to which entry
//! <dir>/v1/compilers/<memo key>                remembered compiler identities
//! <dir>/v1/linkers/<memo key>                  remembered linker identities
//! <dir>/v1/tmp/                                temp files, renamed into place
//! ```

mod entry;
mod local;
mod manifest;
mod remote;

pub use entry::{
    EntryFile, EntryMeta, EntryReader, EntrySource, PutOutcome, ReadError, restore_temp_path,
    write_entry,
};
pub use local::{LAYOUT, LocalStore};
pub use manifest::{Manifest, Variant, VariantEnv};
pub use remote::RemoteStore;

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
