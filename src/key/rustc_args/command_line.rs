//! What is read from a rustc command line again, or changed in it: the options that
//! choose the link beyond `cc`, `-C target-cpu=native`, the same invocation with another
//! `--out-dir`, and `-C incremental` taken out.

use std::path::Path;

use super::invocation::RustcInvocation;
use super::parse::parse_rustc_args;

impl RustcInvocation {
    /// The first option that chooses how the unit links beyond what a linker identity
    /// of `cc` covers: `-C linker=`, `-C link-arg(s)=` (a `-fuse-ld=` among them),
    /// `-C linker-flavor=`, `-C linker-features=`, `-C link-self-contained=`, and any
    /// `-Z` option about linking. `None`: the link is rustc's default through `cc`.
    pub fn link_option_beyond_cc(&self) -> Option<String> {
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let (flag, value) = if a == "-C" || a == "--codegen" || a == "-Z" {
                (a.as_str(), args.next().map(String::as_str))
            } else if let Some(v) = a.strip_prefix("--codegen=") {
                ("-C", Some(v))
            } else if let Some(v) = a.strip_prefix("-C") {
                ("-C", Some(v))
            } else if let Some(v) = a.strip_prefix("-Z") {
                ("-Z", Some(v))
            } else {
                continue;
            };
            let Some(value) = value else { continue };
            let opt = value.split_once('=').map_or(value, |(o, _)| o);
            let beyond = match flag {
                "-Z" => opt.contains("link"),
                _ => matches!(
                    opt,
                    "linker"
                        | "link-arg"
                        | "link-args"
                        | "linker-flavor"
                        | "linker-features"
                        | "link-self-contained"
                ),
            };
            if beyond {
                return Some(format!("{flag} {value}"));
            }
        }
        None
    }

    /// True when a `-C target-cpu=native` asks for the host's CPU (the last
    /// `target-cpu` wins, as in rustc).
    pub fn targets_native_cpu(&self) -> bool {
        let mut native = false;
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let value = if a == "-C" || a == "--codegen" {
                args.next().map(String::as_str)
            } else {
                a.strip_prefix("-C")
                    .or_else(|| a.strip_prefix("--codegen="))
            };
            if let Some(cpu) = value.and_then(|v| v.strip_prefix("target-cpu=")) {
                native = cpu == "native";
            }
        }
        native
    }

    /// The same invocation writing its outputs into `dir` (`--out-dir` replaced).
    pub fn with_out_dir(&self, dir: &Path) -> RustcInvocation {
        let dir = dir.to_string_lossy().into_owned();
        let mut args = Vec::with_capacity(self.args.len());
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == "--out-dir" {
                it.next();
                args.push(a.clone());
                args.push(dir.clone());
            } else if a.starts_with("--out-dir=") {
                args.push(format!("--out-dir={dir}"));
            } else {
                args.push(a.clone());
            }
        }
        parse_rustc_args(&args)
    }

    /// Takes `-C incremental` out of the command line: rustc then compiles as it would
    /// without it (the key never held it).
    pub fn drop_incremental(&mut self) {
        let mut kept = Vec::with_capacity(self.args.len());
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            let value = if a == "-C" || a == "--codegen" {
                match args.next() {
                    Some(v) if v.starts_with("incremental=") => continue,
                    Some(v) => {
                        kept.push(a.clone());
                        v
                    }
                    None => a,
                }
            } else {
                a
            };
            let joined = ["-Cincremental=", "--codegen=incremental="]
                .iter()
                .any(|p| value.starts_with(p));
            if !joined {
                kept.push(value.clone());
            }
        }
        self.args = kept;
        self.incremental = false;
    }
}
