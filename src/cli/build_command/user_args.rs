//! What the user's command line asks before any build: cargo's help (`-h`, `--help`),
//! nextest's own command first, the `--message-format` the user chose.

use std::process::Command;

use crate::config::Env;
use crate::errors::CliError;
use crate::plan::CargoCommand;

/// The arguments that show cargo's help for `command`, when the user asked for help:
/// `-h`/`--help` among cargo's arguments, or after `--` where cargo takes nothing
/// there (`cargo xcache build -- --help`). `None`: no help was asked for.
pub(super) fn cargo_help_args(command: CargoCommand, cargo_args: &[String]) -> Option<Vec<String>> {
    let end = cargo_args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(cargo_args.len());
    let is_help = |a: &String| a == "-h" || a == "--help";
    let (before, after) = cargo_args.split_at(end);
    if before.iter().any(is_help) {
        return Some(before.to_vec());
    }
    if !command.takes_trailing_args() && after.iter().any(is_help) {
        let mut args = before.to_vec();
        args.push("--help".into());
        return Some(args);
    }
    None
}

/// Prints what cargo-xcache adds, then cargo's own help for the command; no plan, no
/// build, no report (the last report stays).
pub(super) fn show_cargo_help(command: CargoCommand, args: &[String]) -> Result<i32, CliError> {
    use std::io::Write;
    let name = command.name();
    println!(
        "cargo xcache {name}: `cargo {name}` through the cache. The options below are cargo's,\n\
         passed to it as given; cargo-xcache adds --remote URI, --read-only and --remote-jobs N\n\
         (`cargo xcache {name} --help` describes them).\n"
    );
    let _ = std::io::stdout().flush();
    let cargo = Env::capture().cargo();
    let status = Command::new(&cargo)
        .arg(name)
        .args(args)
        .status()
        .map_err(|source| CliError::SpawnCargo { cargo, source })?;
    Ok(status.code().unwrap_or(101))
}

/// nextest's own commands that build the tests through cargo.
const NEXTEST_COMMANDS: &[&str] = &["run", "r", "list", "archive"];

/// `cargo xcache nextest` takes nextest's command first.
pub(super) fn check_nextest_command(args: &[String]) -> Result<(), CliError> {
    let first = args.first().map(String::as_str).unwrap_or("");
    if NEXTEST_COMMANDS.contains(&first) {
        return Ok(());
    }
    Err(CliError::InvalidSetting {
        name: "cargo xcache nextest".into(),
        value: first.to_string(),
        message: "expected nextest's command first: `cargo xcache nextest run [args]` (or `list`, `archive`)".into(),
    })
}

/// The `--message-format` the user gave, if any.
pub(super) fn message_format(cargo_args: &[String]) -> Option<String> {
    let mut it = cargo_args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--message-format=") {
            return Some(v.to_string());
        }
        if a == "--message-format" {
            return it.next().cloned();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_format_is_found() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(message_format(&args(&["--release"])), None);
        assert_eq!(
            message_format(&args(&["--message-format=json"])).as_deref(),
            Some("json")
        );
        assert_eq!(
            message_format(&args(&["--message-format", "short"])).as_deref(),
            Some("short")
        );
    }
}
