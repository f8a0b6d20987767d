//! What `-C target-cpu=native` means on this host: the CPU LLVM picks and the target
//! features it enables. A unit built for `native` is keyed on that description, so a
//! store shared between machines never serves code built for another CPU.

use std::path::Path;
use std::process::Command;

use super::{Key, KeyHasher};

/// The host CPU as rustc resolves `native` (`rustc --print target-cpus`'s "currently"
/// name and `--print cfg -C target-cpu=native`'s target features), remembered in
/// `memo_dir` per compiler and per CPU (its `/proc/cpuinfo` model and flags).
pub fn host_cpu(rustc: &Path, compiler: &Key, memo_dir: Option<&Path>) -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut fields: Vec<&str> = cpuinfo
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| {
            [
                "vendor_id",
                "cpu family",
                "model",
                "model name",
                "stepping",
                "flags",
            ]
            .iter()
            .any(|f| l.split(':').next().is_some_and(|k| k.trim() == *f))
        })
        .collect();
    fields.sort();
    let memo_key = KeyHasher::new("host-cpu-memo")
        .key("compiler", compiler)
        .list("cpuinfo", fields.iter().copied())
        .finish();
    let memo = memo_dir.map(|d| d.join(format!("cpu-{}", memo_key.to_hex())));
    if let Some(text) = memo.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        return Some(text);
    }
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new(rustc).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let cpus = run(&["--print", "target-cpus"])?;
    let name = cpus
        .lines()
        .find(|l| l.trim_start().starts_with("native"))
        .and_then(|l| l.split("currently ").nth(1))
        .map(|s| s.trim_end_matches(['.', ')', ' ']).to_string())
        .unwrap_or_default();
    let cfg = run(&["--print", "cfg", "-C", "target-cpu=native"])?;
    let mut features: Vec<&str> = cfg
        .lines()
        .filter_map(|l| l.strip_prefix("target_feature="))
        .collect();
    features.sort();
    let value = format!("{name};{}", features.join(",").replace('"', ""));
    if let Some(p) = memo {
        let _ = crate::fsx::write_atomic(&p, value.as_bytes());
    }
    Some(value)
}
