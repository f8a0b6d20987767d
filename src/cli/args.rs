//! Raw command-line structures (clap) and the scan of cargo's own arguments. Nothing
//! here is validated beyond syntax: `config` and `graph` resolve it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo-xcache",
    bin_name = "cargo xcache",
    version,
    about = "A path-independent compilation cache for cargo builds that start cold"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What the help of a command run through cargo says of cargo's own arguments.
const CARGO_ARGS_HELP: &str = "Every other argument is cargo's and is passed to it as given. \
To see cargo's options, put --help among them: `cargo xcache build --release --help`, or \
`cargo xcache build -- --help` (build, check, doc and install, where cargo takes nothing \
after `--`).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run `cargo build` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Build(BuildArgs),
    /// Run `cargo check` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Check(BuildArgs),
    /// Run `cargo test` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Test(BuildArgs),
    /// Run `cargo bench` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Bench(BuildArgs),
    /// Run `cargo run` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Run(BuildArgs),
    /// Run `cargo clippy` through the cache; every argument is passed to cargo.
    #[command(after_help = CARGO_ARGS_HELP)]
    Clippy(BuildArgs),
    /// Run `cargo doc` through the cache (the rustc units behind it).
    #[command(after_help = CARGO_ARGS_HELP)]
    Doc(BuildArgs),
    /// Run `cargo install --path DIR` through the cache.
    #[command(after_help = CARGO_ARGS_HELP)]
    Install(BuildArgs),
    /// Run `cargo nextest run` (or `list`, `archive`) through the cache.
    #[command(after_help = CARGO_ARGS_HELP)]
    Nextest(BuildArgs),
    /// Show the last build's report (text, JSON, Markdown, or an HTML timeline).
    Report(ReportArgs),
    /// Say why a package's units missed in the last build, from the store's key history.
    Explain(ExplainArgs),
    /// What the cache did across builds: hit rate, time saved, bytes per tier, store
    /// size, the most frequent miss causes.
    Stats(StatsArgs),
    /// Check the configuration and round-trip a probe through each store tier.
    Doctor(DoctorArgs),
    /// Write a recipe: what decides how the workspace's dependencies are built.
    Prepare(PrepareArgs),
    /// Build only the dependencies through the cache, from a recipe or the workspace;
    /// every other argument is passed to `cargo build`.
    Warm(WarmArgs),
    /// Write a new signing key to a file and print its public key (for
    /// XCACHE_SIGNING_KEY and XCACHE_TRUSTED_KEYS).
    Keygen(KeygenArgs),
    /// Build through the cache in a scratch target dir, compile a sample of the hits
    /// again without the cache and compare; exits 1 when one differs.
    Verify(VerifyArgs),
    /// Keep the local store under its size (least recently used entries go first) and
    /// remove temp files killed builds left; with --remote, remove old remote objects.
    Gc(GcArgs),
    /// Run actions for a REAPI server's Execution service (its Bots service hands them
    /// out): each in a fresh directory made from the CAS, observed; runs until stopped.
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The server: grpc://HOST:PORT?instance=NAME (grpcs:// for TLS; the token, if it
    /// asks for one, in XCACHE_REMOTE_TOKEN).
    #[arg(long, value_name = "URI")]
    pub server: String,
    /// Where actions run and the blob cache lives (default: a `worker` folder in the
    /// private directory). Workers of one machine may share it.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// This worker's name, as results and the server name it (default: host and PID).
    #[arg(long)]
    pub name: Option<String>,
    /// A platform property this worker offers (KEY=VALUE, repeatable), besides the
    /// OSFamily and ISA it offers of itself.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// The rustc this worker runs compiles with (default: the real rustc behind
    /// rustup's proxy, `$(rustc --print sysroot)/bin/rustc`). Its identity is offered as
    /// the platform property `xcache-compiler`: a compile is given only to a worker
    /// with the same toolchain.
    #[arg(long, value_name = "PATH")]
    pub rustc: Option<PathBuf>,
    /// How many toolchains that compiles shipped to keep in `--dir`'s `toolchains/`
    /// (default 3, about 520 MB each): after making a new one, the worker removes the
    /// least recently used beyond this many, except one an action runs with.
    #[arg(long, value_name = "N")]
    pub toolchains_keep: Option<String>,
    /// Stop after this many actions.
    #[arg(long, value_name = "N", hide = true)]
    pub max_actions: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check every hit (the default is a sample).
    #[arg(long, conflicts_with = "sample")]
    pub all: bool,
    /// The share of hits to check, in percent (default 25); the same units are picked
    /// from run to run.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sample: Option<u8>,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The file to write the private key to (created readable by its owner only; an
    /// existing file is never overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Evict down to this size (default: XCACHE_CACHE_SIZE, else 10G).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub max_size: Option<u64>,
    /// Collect the remote store instead (XCACHE_REMOTE, --remote-uri or xcache.toml):
    /// remove objects older than --older-than. Only stores that can list their objects.
    #[arg(long, requires = "older_than")]
    pub remote: bool,
    /// With --remote: objects last written longer ago than this go (7d, 12h, …).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub older_than: Option<std::time::Duration>,
    /// The remote store URI for --remote (overrides XCACHE_REMOTE and xcache.toml).
    #[arg(long, value_name = "URI")]
    pub remote_uri: Option<String>,
    /// Say what would be removed and what it would free; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn size_arg(v: &str) -> Result<u64, String> {
    crate::config::parse::parse_size(v).map_err(|a| format!("expected {a}"))
}

fn duration_arg(v: &str) -> Result<std::time::Duration, String> {
    crate::config::parse::parse_duration(v).map_err(|a| format!("expected {a}"))
}

fn count_arg(v: &str) -> Result<usize, String> {
    crate::config::parse::parse_count(v).map_err(|a| format!("expected {a}"))
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Where to write the recipe.
    #[arg(long, value_name = "PATH", default_value = "recipe.json")]
    pub recipe_path: PathBuf,
    /// Keep only what this binary needs: the member that owns it and its local dependencies.
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
    /// The workspace's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// The recipe to lay out in the current directory; without it, the current
    /// workspace's dependencies are built (in a temporary copy of its skeleton).
    #[arg(long, value_name = "PATH")]
    pub recipe_path: Option<PathBuf>,
    /// With --recipe-path: the directory the skeleton may be written into (default: the
    /// current one). Name the directory above it that holds the recipe's path
    /// dependencies outside the workspace (`../name`), if it has any.
    #[arg(long, value_name = "DIR")]
    pub skeleton_root: Option<PathBuf>,
    #[command(flatten)]
    pub build: BuildArgs,
}

impl WarmArgs {
    /// Takes `--recipe-path` out of the cargo arguments, wherever it stands (before `--`).
    pub fn take_recipe_path(&mut self) {
        take_args(&mut self.build.cargo_args, |a, args| {
            if a == "--recipe-path" {
                self.recipe_path = args.next().map(PathBuf::from);
            } else if let Some(v) = a.strip_prefix("--recipe-path=") {
                self.recipe_path = Some(PathBuf::from(v));
            } else if a == "--skeleton-root" {
                self.skeleton_root = args.next().map(PathBuf::from);
            } else if let Some(v) = a.strip_prefix("--skeleton-root=") {
                self.skeleton_root = Some(PathBuf::from(v));
            } else {
                return false;
            }
            true
        });
    }
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The remote store URI to check (overrides XCACHE_REMOTE and xcache.toml).
    #[arg(long, value_name = "URI")]
    pub remote: Option<String>,
    /// Check reading only; write nothing.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The remote store URI (overrides XCACHE_REMOTE and xcache.toml).
    #[arg(long, value_name = "URI")]
    pub remote: Option<String>,
    /// Read the remote store but never write it (for untrusted pull requests).
    #[arg(long)]
    pub read_only: bool,
    /// How many downloads from the remote run at once (default 64; uploads at most 4).
    #[arg(long, value_name = "N", value_parser = count_arg)]
    pub remote_jobs: Option<usize>,
    /// Arguments for `cargo build` (for example `--release -p foo`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
    /// `--remote-jobs` found among the cargo arguments, not parsed yet.
    #[arg(skip)]
    pub remote_jobs_raw: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The package, optionally with its version (`serde` or `serde@1.0.210`).
    #[arg(value_name = "PACKAGE[@VERSION]")]
    pub package: String,
    /// The workspace's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
    /// The target directory the build used, if not the default.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
    /// The remote store URI whose size to list (overrides XCACHE_REMOTE and xcache.toml).
    #[arg(long, value_name = "URI")]
    pub remote: Option<String>,
}

/// How `cargo xcache report` prints the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// The table.
    Text,
    /// report.json as it is.
    Json,
    /// The summary for a CI job summary (`GITHUB_STEP_SUMMARY`).
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print the report as JSON (the format of report.json); the same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the timeline as one self-contained HTML file (default:
    /// `<target-dir>/xcache/report.html`) and print its path.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub html: Option<Option<PathBuf>>,
    /// The workspace's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
    /// The target directory the build used, if not the default.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
}

impl BuildArgs {
    /// Takes our own flags out of the cargo arguments, wherever they stand (before a
    /// `--`): `cargo xcache build --release --remote URI` works as well as putting them
    /// first.
    pub fn take_own_flags(&mut self) {
        take_args(&mut self.cargo_args, |a, args| {
            if a == "--read-only" {
                self.read_only = true;
            } else if a == "--remote" {
                self.remote = args.next();
            } else if let Some(v) = a.strip_prefix("--remote=") {
                self.remote = Some(v.to_string());
            } else if a == "--remote-jobs" {
                self.remote_jobs_raw = args.next();
            } else if let Some(v) = a.strip_prefix("--remote-jobs=") {
                self.remote_jobs_raw = Some(v.to_string());
            } else {
                return false;
            }
            true
        });
    }

    /// The `--remote-jobs` value, wherever it stood.
    pub fn remote_jobs(&self) -> Result<Option<usize>, crate::errors::CliError> {
        match &self.remote_jobs_raw {
            None => Ok(self.remote_jobs),
            Some(v) => crate::config::parse::parse_count(v)
                .map(Some)
                .map_err(|accepted| crate::config::parse::invalid("--remote-jobs", v, accepted)),
        }
    }
}

/// Takes arguments out of `cargo_args`, wherever they stand before a `--` (what follows
/// it is the program's or the tool's): `take` is given each one, and the arguments after
/// it (to take its value from), and says whether it took it.
pub(super) fn take_args(
    cargo_args: &mut Vec<String>,
    mut take: impl FnMut(&str, &mut std::vec::IntoIter<String>) -> bool,
) {
    let mut rest = Vec::with_capacity(cargo_args.len());
    let mut args = std::mem::take(cargo_args).into_iter();
    while let Some(a) = args.next() {
        if a == "--" {
            rest.push(a);
            rest.extend(args.by_ref());
            break;
        }
        if !take(&a, &mut args) {
            rest.push(a);
        }
    }
    *cargo_args = rest;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_flags_are_taken_anywhere_before_double_dash() {
        let mut b = BuildArgs {
            remote: None,
            read_only: false,
            remote_jobs: None,
            remote_jobs_raw: None,
            cargo_args: [
                "--release",
                "--remote",
                "s3://b",
                "-p",
                "x",
                "--read-only",
                "--",
                "--remote",
            ]
            .map(String::from)
            .to_vec(),
        };
        b.take_own_flags();
        assert_eq!(b.remote.as_deref(), Some("s3://b"));
        assert!(b.read_only);
        assert_eq!(b.cargo_args, ["--release", "-p", "x", "--", "--remote"]);
    }

    #[test]
    fn recipe_path_is_taken_anywhere_before_double_dash() {
        let mut w = WarmArgs {
            recipe_path: None,
            skeleton_root: None,
            build: BuildArgs {
                remote: None,
                read_only: false,
                remote_jobs: None,
                remote_jobs_raw: None,
                cargo_args: [
                    "--release",
                    "--recipe-path",
                    "r.json",
                    "--",
                    "--recipe-path",
                ]
                .map(String::from)
                .to_vec(),
            },
        };
        w.take_recipe_path();
        assert_eq!(w.recipe_path, Some(PathBuf::from("r.json")));
        assert_eq!(w.build.cargo_args, ["--release", "--", "--recipe-path"]);
    }
}
