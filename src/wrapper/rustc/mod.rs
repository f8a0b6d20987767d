//! One rustc invocation through the cache: the rustc adapter of the lifecycle
//! (`super::lifecycle`). Main entry: [`run_wrapper`].

mod adapter;
mod inputs;
mod place;
mod run;
mod unit;

pub use adapter::run_wrapper;

#[cfg(test)]
mod tests;
