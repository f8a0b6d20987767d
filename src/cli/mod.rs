//! The command line: `cargo xcache <command>`, and the rustc-wrapper mode chosen by how
//! the executable is invoked, and the build-run mode a build script's shim starts.
//! Entry point: [`main_impl`].

mod args;
mod build_command;
mod doctor;
mod explain;
mod fresh;
mod gc;
mod history_session;
mod keygen;
mod prepare;
mod remote_gc;
mod remote_session;
mod report_cmd;
mod seed_session;
mod stats;
mod store_session;
mod verify;
mod warm;
mod worker;
mod workspace;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

pub use crate::plan::graph::selection_from_cargo_args;
pub use args::{Cli, Command};

use crate::config::Env;
use crate::errors::CliError;
use crate::plan::CargoCommand;

/// Names that make the first argument a command of ours rather than a compiler.
const COMMANDS: &[&str] = &[
    "build", "check", "test", "bench", "run", "clippy", "doc", "install", "nextest", "report",
    "doctor", "prepare", "warm", "keygen", "gc", "verify", "help", "explain", "stats",
];

/// Runs the program and returns its exit code.
pub fn main_impl() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(first) = args.get(1) {
        if first == crate::wrapper::BUILD_RUN_COMMAND {
            return run_build_script(&args[2..]);
        }
        let s = first.to_string_lossy();
        let ours = s == "xcache" || s.starts_with('-') || COMMANDS.contains(&s.as_ref());
        if !ours {
            return run_as_wrapper(PathBuf::from(first), &args[2..]);
        }
    }
    // `cargo xcache build` runs us as `cargo-xcache xcache build`.
    let mut argv = args;
    if argv.get(1).is_some_and(|a| a == "xcache") {
        argv.remove(1);
    }
    let cli = Cli::parse_from(&argv);
    let raw_args = |mut b: args::BuildArgs| {
        // Every argument after the command's name, as given: clap drops a leading
        // `--` (`cargo xcache clippy -- -D warnings`), which cargo must see.
        b.cargo_args = argv
            .iter()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        b
    };
    let result = match cli.command {
        Command::Build(b) => build_command::run(CargoCommand::Build, raw_args(b)),
        Command::Check(b) => build_command::run(CargoCommand::Check, raw_args(b)),
        Command::Test(b) => build_command::run(CargoCommand::Test, raw_args(b)),
        Command::Bench(b) => build_command::run(CargoCommand::Bench, raw_args(b)),
        Command::Run(b) => build_command::run(CargoCommand::Run, raw_args(b)),
        Command::Clippy(b) => build_command::run(CargoCommand::Clippy, raw_args(b)),
        Command::Doc(b) => build_command::run(CargoCommand::Doc, raw_args(b)),
        Command::Install(b) => build_command::run(CargoCommand::Install, raw_args(b)),
        Command::Nextest(b) => build_command::run(CargoCommand::Nextest, raw_args(b)),
        Command::Report(r) => report_cmd::run(r),
        Command::Explain(e) => explain::run(e),
        Command::Stats(s) => stats::run(s),
        Command::Doctor(d) => doctor::run(d),
        Command::Prepare(p) => prepare::run(p),
        Command::Warm(w) => warm::run(w),
        Command::Keygen(k) => keygen::run(k),
        Command::Gc(g) => gc::run(g),
        Command::Verify(v) => verify::run(v),
        Command::Worker(w) => worker::run(w),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            2
        }
    }
}

fn run_as_wrapper(rustc: PathBuf, rest: &[OsString]) -> i32 {
    let utf8: Option<Vec<String>> = rest.iter().map(|a| a.clone().into_string().ok()).collect();
    let Some(args) = utf8 else {
        // Not UTF-8: nothing to cache, pass it on untouched.
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(&rustc).args(rest).exec();
        eprintln!("error: xcache: failed to run {}: {err}", rustc.display());
        return 1;
    };
    let cwd = workspace::working_dir();
    crate::wrapper::run_wrapper(rustc, args, Env::capture(), cwd)
}

/// The build-run mode: cargo ran a build script's shim, which passes the path cargo
/// ran and the script's arguments.
fn run_build_script(rest: &[OsString]) -> i32 {
    let Some(ran) = rest.first() else {
        eprintln!("error: xcache: the build-run mode needs the path of the script cargo ran");
        return 2;
    };
    let cwd = workspace::working_dir();
    crate::wrapper::run_build_script(PathBuf::from(ran), rest[1..].to_vec(), Env::capture(), cwd)
}

fn report_error(e: &CliError) {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("  hint: {h}");
    }
}
