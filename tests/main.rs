//! The integration tests, one binary (as cargo's own `tests/testsuite`): each module is
//! one concern, built and linked once. `cargo nextest run` runs each test in a process
//! of its own; `cargo nextest run -E 'test(/^remote::/)'` picks one module.

mod common;

mod book;
mod build_run;
mod bundles;
mod cache;
mod cli;
mod commands;
mod docker_flow;
mod docker_images;
mod exec_build;
mod exec_check;
mod farm_hosts;
mod faults_local;
mod faults_remote;
mod linked;
mod many_writers;
mod parsers;
mod recipe;
mod registry;
mod remote;
mod remote_exec;
mod report;
mod seed;
mod settings;
mod shown_paths;
mod soundness;
mod store_trust;
mod verify;
