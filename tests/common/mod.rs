//! Shared helpers: copy a fixture to a temp dir, run `cargo xcache build` on it with a
//! controlled environment, and read cargo's JSON messages and our report.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn xcache_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cargo-xcache"))
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Copies `fixtures/<name>` into `dest` (created).
pub fn copy_fixture(name: &str, dest: &Path) {
    copy_dir(&fixtures_dir().join(name), dest);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// One scratch area: a store, and as many checkouts and target dirs as a test wants.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("xcache-test-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A scratch area on a disk (`/var/tmp`) whatever `TMPDIR` says (`.ci/run` puts the
    /// tests' scratch on a memory file system): for tests that keep gigabytes (images).
    pub fn on_disk() -> Scratch {
        Scratch::in_dir(Path::new("/var/tmp"))
    }

    /// A scratch area below `dir`.
    pub fn in_dir(dir: &Path) -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("xcache-test-")
                .tempdir_in(dir)
                .unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// A fresh copy of a fixture at `rel`, its files dated a minute back as a checkout
    /// made before the build is (see [`age`]).
    pub fn checkout(&self, fixture: &str, rel: &str) -> PathBuf {
        let p = self.path(rel);
        copy_fixture(fixture, &p);
        age(&p, 60);
        p
    }

    /// A fresh copy of `basic-workspace` at `rel` whose `generated` is bound to its
    /// target dir (see [`bind_generated`]).
    pub fn bound_checkout(&self, rel: &str) -> PathBuf {
        let p = self.checkout("basic-workspace", rel);
        bind_generated(&p);
        p
    }
}

/// What the tests know of `fixtures/basic-workspace`.
pub mod basic {
    /// Its units, every one of which the cache stores: libraries, the proc-macro, the
    /// build script's executable and the binary.
    pub const CACHEABLE: &[&str] = &[
        "app:bin",
        "build_script_build:build-script",
        "generated:lib",
        "macros:proc-macro",
        "mid:lib",
        "util:lib",
    ];

    /// What its `app` prints.
    pub const EXPECTED_OUTPUT: &str = "answer=42 widget=I am Widget words=alpha+beta+gamma count=3 \
        greeting=hello from a text file flavor=plain package=util volume=quiet rustflags=without-cfg\n";
}

/// Makes `basic-workspace`'s `generated` turn its `OUT_DIR` into data (its length, in
/// a private function nothing calls): the unit is then bound to its target dir, and from
/// another place it compiles again, to the same bytes (so what depends on it is
/// restored). For the tests whose subject is a bound unit; without this every unit of
/// the fixture holds wherever the checkout is.
pub fn bind_generated(ws: &Path) {
    let lib = ws.join("generated/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        format!(
            "{text}\n// Bound: a number made of a path.\n#[allow(dead_code)]\n\
             fn out_dir_len() -> usize {{ env!(\"OUT_DIR\").len() }}\n"
        ),
    )
    .unwrap();
}

/// A command with the environment every test starts from: no inherited cargo or
/// xcache settings, non-incremental, a given store.
pub fn base_command(program: &Path, cwd: &Path, store: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let drop = k.starts_with("CARGO_")
            || k.starts_with("XCACHE_")
            || k.starts_with("RUSTC")
            || k == "RUSTFLAGS"
            || k == "RUSTDOCFLAGS"
            // cargo sets it for this package's tests (it has a build script).
            || k == "OUT_DIR";
        // Keep where cargo and rustup live.
        if drop && k != "CARGO_HOME" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_INCREMENTAL", "0")
        .env("CARGO_TERM_COLOR", "never")
        .env("XCACHE_DIR", store);
    cmd
}

/// For tests of what a working remote serves (they assert no warning): on a test
/// machine whose 2 cores run other tests' builds and servers, a healthy server can
/// stall past the 2 s default. How a stalled remote is given up is
/// `tests/faults_remote.rs`'s, with the default.
#[allow(dead_code, reason = "not every test binary talks to a remote")]
pub const HEALTHY_REMOTE: (&str, &str) = ("XCACHE_REMOTE_TIMEOUT", "30s");

/// `cargo xcache build --message-format=json <args>` in `cwd`.
pub fn xcache_build(cwd: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Build {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.args(["xcache", "build", "--message-format=json"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Build::from_output(cmd.output().unwrap(), cwd)
}

/// Plain `cargo build` (no cache) in `cwd`.
pub fn cargo_build(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = base_command(Path::new("cargo"), cwd, Path::new("/nonexistent"));
    cmd.arg("build").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// What one build did.
pub struct Build {
    pub output: Output,
    pub messages: Vec<Value>,
    pub cwd: PathBuf,
}

impl Build {
    pub fn from_output(output: Output, cwd: &Path) -> Build {
        let messages = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Build {
            output,
            messages,
            cwd: cwd.to_path_buf(),
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn assert_success(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "build failed:\n{}\n{}",
            self.stderr(),
            String::from_utf8_lossy(&self.output.stdout)
        );
        self
    }

    /// Package name -> "fresh" for each compiler-artifact message (lib/proc-macro/bin).
    pub fn fresh(&self) -> BTreeMap<String, bool> {
        self.messages
            .iter()
            .filter(|m| m["reason"] == "compiler-artifact")
            .map(|m| {
                let name = m["target"]["name"].as_str().unwrap_or("").to_string();
                let kind = m["target"]["kind"][0].as_str().unwrap_or("").to_string();
                (
                    format!("{name}:{kind}"),
                    m["fresh"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// The path of the built executable `name`.
    pub fn executable(&self, name: &str) -> PathBuf {
        self.messages
            .iter()
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("no executable {name} in cargo's messages"))
    }

    /// Runs the built executable and returns its stdout.
    pub fn run(&self, name: &str) -> String {
        let out = Command::new(self.executable(name)).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    /// Compiler messages (diagnostics) cargo printed, as rendered text, in order.
    pub fn diagnostics(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| m["reason"] == "compiler-message")
            .map(|m| m["message"]["rendered"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// The report lists exactly one warning, `code`, and the build's stderr names it once.
pub fn assert_warned_once(b: &Build, r: &Report, code: &str) {
    assert_eq!(r.warning_codes(), [code], "{}", b.stderr());
    let tag = format!("[{code}]");
    assert_eq!(b.stderr().matches(&tag).count(), 1, "{}", b.stderr());
}

/// The report of the last build in a target dir.
pub struct Report(pub Value);

impl Report {
    pub fn read(target_dir: &Path) -> Report {
        let path = target_dir.join("xcache").join("report.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Report(serde_json::from_str(&text).unwrap())
    }

    pub fn summary(&self, field: &str) -> u64 {
        self.0["summary"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("summary.{field}"))
    }

    /// `crate_name:kind` -> outcome, for every unit rustc compiled (build-script runs,
    /// which share their crate name with the build script, are read with [`Report::runs`]).
    pub fn outcomes(&self) -> BTreeMap<String, String> {
        self.0["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["kind"] != "build-script-run")
            .map(|u| {
                (
                    format!(
                        "{}:{}",
                        u["crate_name"].as_str().unwrap(),
                        u["kind"].as_str().unwrap()
                    ),
                    u["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// `package` -> (outcome, reason) for every build-script run.
    pub fn runs(&self) -> BTreeMap<String, (String, Option<String>)> {
        self.0["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["kind"] == "build-script-run")
            .map(|u| {
                (
                    u["package"].as_str().unwrap().to_string(),
                    (
                        u["outcome"].as_str().unwrap().to_string(),
                        u["reason"].as_str().map(str::to_string),
                    ),
                )
            })
            .collect()
    }

    /// The crate names whose outcome is `outcome`, sorted.
    pub fn with_outcome(&self, outcome: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .outcomes()
            .into_iter()
            .filter(|(_, o)| o == outcome)
            .map(|(k, _)| k)
            .collect();
        v.sort();
        v
    }

    /// The unit record of `crate_name` (the first, if several units share the name).
    pub fn unit(&self, crate_name: &str) -> Value {
        self.0["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["crate_name"] == crate_name && u["kind"] != "build-script-run")
            .cloned()
            .unwrap_or_else(|| panic!("no unit {crate_name}"))
    }

    pub fn reason_of(&self, crate_name: &str) -> Option<String> {
        self.0["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["crate_name"] == crate_name && u["kind"] != "build-script-run")
            .and_then(|u| u["reason"].as_str().map(str::to_string))
    }

    pub fn warning_codes(&self) -> Vec<String> {
        self.0["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Runs `git <args>` in `dir` as a test user (fixed name, address and dates, no
/// signing, branch `main`), and asserts it succeeded.
#[allow(dead_code, reason = "not every test binary runs git")]
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `dir` a git repository with one empty commit whose message is `message`: the
/// same commit wherever it is made.
#[allow(dead_code, reason = "not every test binary makes repositories")]
pub fn git_repository_at(dir: &Path, message: &str) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
}

pub mod exec_servers;
pub mod hosts;
pub mod layouts;
pub mod servers;

/// How many files lie under `dir`, recursively (none when it is missing).
pub fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Another machine's `CARGO_HOME` at `home`, with the registry (index, downloaded and
/// unpacked crates) of `first`: cargo works offline there, from sources at other paths.
#[allow(dead_code, reason = "not every test binary moves CARGO_HOME")]
pub fn another_cargo_home(first: &Path, home: &Path) {
    std::fs::create_dir_all(home).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(first.join("registry"))
        .arg(home)
        .status()
        .unwrap();
    assert!(copied.success());
}

/// Dates every file and directory under `dir` (and `dir` itself) `secs` seconds back:
/// a checkout made before the build (seeding stamps what it plants 50 ms before it
/// checks the sources, so a source written within that margin is newer and cargo
/// rebuilds its unit; a directory a build script names in `rerun-if-changed` counts
/// with its own time, which copying the checkout just set), or a store no build used
/// since. Links are not followed: what one points to outside `dir` (a soundness case's
/// directory outside the checkout) keeps its time.
pub fn age(dir: &Path, secs: u64) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            age(&p, secs);
        } else if kind.is_file() {
            std::fs::File::open(&p).unwrap().set_modified(then).unwrap();
        }
    }
    // Last: dating its entries does not change a directory's time, but making them did.
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(then)
        .unwrap();
}
