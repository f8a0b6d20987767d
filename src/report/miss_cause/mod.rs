//! Why a unit missed: its key now against the nearest key the store's history recorded
//! for the same unit (`store::history`). Main function: [`explain_miss`].
//!
//! [`explain_miss`] (`explain`) picks the nearest record, asks `differences` what
//! differs from it and `hint` what to do about it; `words` says a cause as a person
//! reads it ([`describe`]).

mod differences;
mod explain;
mod hint;
mod words;

pub use differences::differences;
pub use explain::explain_miss;
pub use words::describe;

#[cfg(test)]
mod tests;
