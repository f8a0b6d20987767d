//! The one client of a Remote Execution API server (`grpc://`, `grpcs://`), which the
//! store's backend (`store::reapi`: named objects on the action cache and the CAS), the
//! remote-execution client (`exec`) and the worker (`worker`) all use. Main type:
//! [`Reapi`]: one HTTP/2 connection per instance that every request of every thread
//! shares, the server's limits asked once, busy or refusing servers asked again within
//! the timeout, and every failure named in REAPI's terms with what to check.

mod cas;
mod client;

pub(crate) use cas::ReadError;
pub use cas::Source;
pub(crate) use cas::digest_of;
pub use client::Reapi;
