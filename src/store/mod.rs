//! Bytes at rest: the local store, the entry format, and level-one manifests.
//!
//! Layout (versioned; bump `LAYOUT` and the tests in `tests/store.rs` together):
//! ```text
//! <dir>/v2/entries/<2 hex>/<entry key>.xce     compressed entries (see `entry`)
//! <dir>/v2/manifests/<2 hex>/<l1 key>.json     which inputs lead to which entry
//! <dir>/v2/compilers/<memo key>                remembered compiler identities
//! <dir>/v2/linkers/<memo key>                  remembered linker identities
//! <dir>/v2/objects/<2 hex>/<digest>           `.rlib` files whole, for hard links (see `objects`)
//! <dir>/v2/seeds/<2 hex>/<prediction key>.json  seed records (see `seed::record`)
//! <dir>/v2/history/                            key history and build lines (see `history`)
//! <dir>/v2/tmp/                                temp files, renamed into place
//! <dir>/v2/lock, gc.lock, gc.stamp, gc.counted leases of running builds, collections
//! <dir>/v2/leases/<pid>-<nanos>.lease         each running build's own lease (see `gc`)
//! <dir>/v2/locks/<kind>-<shard>.lock          record locks
//! ```

mod chain;
pub use chain::chain_record;
mod entry;
pub mod gc;
pub mod history;
mod local;
mod manifest;
pub mod objects;
mod reapi;
mod remote;
mod swap;

pub use entry::{
    ByReference, EntryFile, EntryMeta, EntryReader, EntrySource, ObjectRef, OpenError, PutOutcome,
    ReadAs, ReadError, digest_and_find, restore_temp_path, write_entry,
};
pub use local::{LAYOUT, Lease, LocalStore};
pub use manifest::{BoundBy, Manifest, Variant};
pub use remote::{Listed, RemoteStore, verify_entry};
