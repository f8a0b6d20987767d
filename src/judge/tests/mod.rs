//! Each verdict the judge gives, from a record and a state of the world: real files in
//! a temporary directory, variables and the rest given as closures. Recorded states
//! are made with the crate's own observers (`path_state`, `listing_state`, …), as a
//! recording makes them.
//!
//! One file per family of verdicts; the machine they are judged on is `fixture`.

mod above;
mod artifacts;
mod env;
mod fixture;
mod host;
mod links;
mod lookup;
mod modes;
mod paths;
