//! The Dockerfiles of `examples/docker/`, unchanged, built into images by a real image
//! builder: podman (Buildah inside) with `--isolation=chroot` (this machine's cgroups
//! refuse an OCI runtime) and `--network=host`. No image can be pulled here, so
//! `rust:<version>-bookworm` and `debian:bookworm-slim` are made first: Debian bookworm
//! by `mmdebstrap` from this machine's own apt sources, with the host's Rust toolchain
//! and CA bundle copied into the first. Everything the builder keeps (images, layers,
//! cache mounts) lives in a scratch directory this test owns and removes.
//!
//! What is asserted is read from the builder's own output (which steps it took from its
//! layer cache), from the images' files (the recipe, cargo-xcache's report in the `warm`
//! step's layer, the program) and from every layer's files. No container is started:
//! files are copied out of images (`podman create` + `podman cp`) and the program runs
//! on this machine, which is Debian bookworm like the runtime image.
//!
//! One test, in order: the `tools` stage compiles cargo-xcache inside the image (minutes
//! on two cores); it is built once and every later build, of any of the three
//! Dockerfiles, takes it from the layer cache (the same instructions on the same
//! `xcache` context, a clean copy of this checkout).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common::servers::{self, S3_ACCESS, S3_BUCKET};
use crate::common::{Scratch, base_command, copy_fixture, xcache_exe};
use serde_json::Value;

/// The builder, with all its state (`--root`, `--runroot`, and `TMPDIR`, where Buildah
/// keeps `RUN --mount=type=cache` directories) under `dir`.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new(dir: PathBuf) -> Podman {
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Podman { dir }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--storage-driver=overlay")
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null());
        c
    }

    /// `podman <args>`, which must succeed; its stdout.
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {:?} failed:\n{}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies `path` out of `image` to `dest` (a container is created, never started).
    fn copy_out(&self, image: &str, path: &str, dest: &Path) {
        let id = self.run(&["create", image, "true"]).trim().to_string();
        let from = format!("{id}:{path}");
        let copied = self.cmd().arg("cp").arg(&from).arg(dest).output().unwrap();
        self.run(&["rm", &id]);
        assert!(
            copied.status.success(),
            "podman cp {from}: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
    }

    /// Every image in the storage, intermediate ones included.
    fn images(&self) -> Vec<String> {
        self.run(&["images", "--all", "--quiet", "--no-trunc"])
            .lines()
            // `--no-trunc` names them `sha256:<id>`; `--> <id>` and `{{.Id}}` without it.
            .map(|l| l.trim_start_matches("sha256:").to_string())
            .collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Unmounts and removes every layer; the scratch directory goes with the test.
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
    }
}

/// One step of a build as the builder reported it.
#[derive(Debug)]
struct Step {
    /// `RUN cargo xcache warm …`, as the builder printed it.
    instruction: String,
    /// The builder said `Using cache`: the step did not run.
    cached: bool,
    /// The image the step left (its short id).
    image: String,
    /// What the step printed (a `RUN`'s output).
    output: String,
    /// The stage's number (`[2/4]` is 2; 0 in a build of one stage).
    stage: usize,
    /// The stage's last step (`STEP 6/6`).
    last: bool,
    /// The stage this step takes files from (`COPY --from=planner`,
    /// `RUN --mount=…,from=planner`): it waits until that stage has ended.
    waits_for: Option<String>,
}

impl Step {
    fn is_open(&self) -> bool {
        self.image.is_empty() && !self.instruction.starts_with("FROM ")
    }
}

/// The stage a `COPY`, `ADD` or `RUN` takes files from, as written (a name or a number).
fn waits_for(instruction: &str) -> Option<String> {
    instruction
        .split_whitespace()
        .skip(1)
        .take_while(|t| t.starts_with("--"))
        .find_map(|t| {
            t.strip_prefix("--from=").map(str::to_string).or_else(|| {
                t.strip_prefix("--mount=")?
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("from="))
                    .map(str::to_string)
            })
        })
}

/// Buildah runs one stage at a time (`--jobs 1`), but a stage whose step takes files
/// from a stage not yet built prints that step's line, gives way until the other
/// stage has ended, and then goes on. The lines that name no step (`--> Using cache`,
/// `--> <image>`, a `RUN`'s output) belong to the one stage running: the one whose
/// open step (a step ends with its `--> <image>` line; a `FROM` prints none) waits for
/// no stage that has not ended. Several stages may wait, each for another (the
/// runtime stage for the builder, the builder for the planner), so the last step
/// printed is not always the one a line belongs to.
fn open_step(steps: &mut [Step]) -> Option<&mut Step> {
    // Stage names (`FROM … AS planner`), and which stages have ended.
    let named = |name: &str| -> Option<usize> {
        steps
            .iter()
            .find(|s| {
                s.instruction.starts_with("FROM ")
                    && s.instruction
                        .rsplit_once(' ')
                        .is_some_and(|(head, n)| n == name && head.to_lowercase().ends_with(" as"))
            })
            .map(|s| s.stage)
            // `--from=1`: stages counted from 0, printed from 1.
            .or_else(|| name.parse::<usize>().ok().map(|i| i + 1))
    };
    let ended = |stage: usize| {
        steps
            .iter()
            .any(|s| s.stage == stage && s.last && !s.is_open())
    };
    let running = steps.iter().rposition(|s| {
        s.is_open()
            && s.waits_for
                .as_deref()
                .and_then(named)
                .is_none_or(|stage| stage == s.stage || ended(stage))
    });
    let open = running.or_else(|| steps.iter().rposition(Step::is_open));
    match open {
        Some(i) => Some(&mut steps[i]),
        None => steps.last_mut(),
    }
}

/// One `podman build`: its steps, its whole log, and its wall time.
struct Built {
    steps: Vec<Step>,
    log: String,
    secs: f64,
}

impl Built {
    fn parse(log: String, secs: f64) -> Built {
        let mut steps: Vec<Step> = Vec::new();
        for line in log.lines() {
            // `[2/4] STEP 3/5: RUN …` in a multi-stage build, `STEP 3/5: RUN …` otherwise.
            let (stage, bare) = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
                Some((n, rest)) => (
                    n.split_once('/')
                        .and_then(|(i, _)| i.parse().ok())
                        .unwrap_or(0),
                    rest,
                ),
                None => (0, line),
            };
            if let Some(rest) = bare.strip_prefix("STEP ")
                && let Some((count, instruction)) = rest.split_once(": ")
            {
                steps.push(Step {
                    instruction: instruction.to_string(),
                    cached: false,
                    image: String::new(),
                    output: String::new(),
                    stage,
                    last: count.split_once('/').is_some_and(|(k, n)| k == n),
                    waits_for: waits_for(instruction),
                });
            } else if let Some(step) = open_step(&mut steps) {
                if line.starts_with("--> Using cache ") {
                    step.cached = true;
                } else if let Some(id) = line.strip_prefix("--> ") {
                    step.image = id.trim().to_string();
                } else {
                    step.output.push_str(line);
                    step.output.push('\n');
                }
            }
        }
        Built { steps, log, secs }
    }

    /// The one step whose instruction holds `what`.
    fn step(&self, what: &str) -> &Step {
        let found: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| s.instruction.contains(what))
            .collect();
        assert_eq!(found.len(), 1, "steps with {what:?}:\n{}", self.log);
        found[0]
    }

    fn assert_cached(&self, what: &str) {
        assert!(
            self.step(what).cached,
            "{what}: the builder ran it again\n{}",
            self.log
        );
    }

    fn assert_ran(&self, what: &str) {
        assert!(
            !self.step(what).cached,
            "{what}: the builder took it from its cache\n{}",
            self.log
        );
    }
}

/// Builds the examples' Dockerfiles for the `chef` fixture.
struct Builder<'a> {
    podman: &'a Podman,
    rust_version: String,
    /// The `xcache` build context: a clean copy of this checkout.
    xcache: PathBuf,
    /// The build context: `chef/` and `chef-outside/`.
    context: PathBuf,
    logs: PathBuf,
    count: usize,
}

impl Builder<'_> {
    fn dockerfile(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/docker")
            .join(name)
    }

    fn build(&mut self, file: &str, extra: &[String], tag: &str) -> Built {
        self.build_from(&Self::dockerfile(file), extra, tag)
    }

    fn build_from(&mut self, file: &Path, extra: &[String], tag: &str) -> Built {
        self.count += 1;
        let log_path = self.logs.join(format!("{}-{tag}.log", self.count));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = self.podman.cmd();
        cmd.args([
            "build",
            "--isolation=chroot",
            "--network=host",
            "--pull=never",
        ])
        .arg("--build-context")
        .arg(format!("xcache={}", self.xcache.display()))
        .arg("--build-arg")
        .arg(format!("RUST_VERSION={}", self.rust_version))
        .args([
            // The cargo-xcache these tests run, built on this machine's Debian release
            // (the images' too): the `tools` stage installs it instead of compiling it
            // in the image (the Dockerfiles' `XCACHE_BINARY`; see `xcache_context`).
            "--build-arg",
            &format!("XCACHE_BINARY={PREBUILT}"),
            "--build-arg",
            "WORKSPACE=chef",
            "--build-arg",
            "BIN=chef-app",
        ])
        .args(extra)
        .arg("--tag")
        .arg(tag)
        .arg("--file")
        .arg(file)
        .arg(&self.context)
        // One file for both: the builder's step lines and the steps' output in order.
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let started = Instant::now();
        let status = cmd.status().unwrap();
        let secs = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(
            status.success(),
            "podman build -f {} failed ({status}):\n{text}",
            file.display()
        );
        Built::parse(text, secs)
    }

    /// The planner's recipe, from the planner stage (every step cached by then).
    fn recipe(&mut self, file: &str) -> Vec<u8> {
        let planner = self.build(file, &["--target".into(), "planner".into()], "planner");
        planner.assert_cached("cargo xcache prepare");
        let dest = self.logs.join(format!("recipe-{}.json", self.count));
        self.podman.copy_out("planner", "/recipe.json", &dest);
        std::fs::read(dest).unwrap()
    }

    /// cargo-xcache's report of the `warm` step, read from that step's layer.
    fn warm_report(&self, built: &Built) -> Value {
        let image = &built.step("cargo xcache warm").image;
        let dest = self.logs.join(format!("warm-report-{}.json", self.count));
        self.podman
            .copy_out(image, "/src/chef/target/xcache/report.json", &dest);
        serde_json::from_slice(&std::fs::read(dest).unwrap()).unwrap()
    }

    /// What the runtime image's program prints (copied out, run here).
    fn program_output(&self, tag: &str) -> String {
        let dest = self.logs.join(format!("app-{}", self.count));
        self.podman.copy_out(tag, "/usr/local/bin/app", &dest);
        run_program(&dest)
    }
}

fn run_program(exe: &Path) -> String {
    let out = Command::new(exe).output().unwrap();
    assert!(out.status.success(), "{}: {out:?}", exe.display());
    String::from_utf8(out.stdout).unwrap()
}

/// The units of a report as `package kind outcome`, and its summary.
fn units(report: &Value) -> BTreeSet<String> {
    report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {} {}",
                u["package"].as_str().unwrap(),
                u["kind"].as_str().unwrap(),
                u["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

/// The workspace's packages and its path dependency: placeholders in `warm`.
const LOCAL: &[&str] = &["chef-app", "chef-core", "chef-outside", "chef-tools"];

/// Asserts every unit of `warm`'s report: a local package's is a placeholder (never
/// stored), a dependency's is `compiled` (or `ran`) when its package is in `compiled`
/// and restored (or seeded) otherwise.
fn assert_warm(report: &Value, compiled: &[&str]) {
    let all = units(report);
    let mut deps = 0;
    for u in report["units"].as_array().unwrap() {
        let package = u["package"].as_str().unwrap();
        let outcome = u["outcome"].as_str().unwrap();
        let expected = if LOCAL.contains(&package) {
            assert_eq!(u["reason"], "placeholder", "{u}");
            "uncacheable"
        } else {
            deps += 1;
            if compiled.contains(&package) {
                "miss"
            } else {
                "hit"
            }
        };
        assert_eq!(outcome, expected, "{package}: {all:#?}");
    }
    assert!(
        deps >= 4,
        "itoa and libc (lib, build script, run): {all:#?}"
    );
}

/// Where the `xcache` build context holds the cargo-xcache the tests run.
const PREBUILT: &str = "prebuilt/cargo-xcache";

/// The `xcache` build context: the files of this checkout git knows or would add, so
/// no `target/` and the same bytes on every run (the `tools` layer is reused), and at
/// [`PREBUILT`] the cargo-xcache these tests run, its debug information stripped.
/// Compiling cargo-xcache in the image took 550 to 1300 s of the test's 770 to 1600 s
/// on a busy 2-core machine; the image and this machine are the same Debian release,
/// so the `tools` stage installs this one (`cargo install` in the image is what the
/// Dockerfiles do without `XCACHE_BINARY`, and `tests/docker_flow.rs` reads that line).
fn xcache_context(dest: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "git ls-files: {out:?}");
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let (from, to) = (root.join(rel), dest.join(rel));
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue; // deleted, not yet committed
        };
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let prebuilt = dest.join(PREBUILT);
    std::fs::create_dir_all(prebuilt.parent().unwrap()).unwrap();
    let out = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(xcache_exe())
        .arg(&prebuilt)
        .output()
        .unwrap();
    assert!(out.status.success(), "objcopy: {out:?}");
    dest.to_path_buf()
}

/// The Debian apt sources this machine uses (mmdebstrap reads them from the file).
fn apt_sources() -> PathBuf {
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    if deb822.is_file() {
        deb822.to_path_buf()
    } else {
        PathBuf::from("/etc/apt/sources.list")
    }
}

/// `1.95` from `rustc 1.95.0 (…)`, and the toolchain's sysroot.
fn host_toolchain() -> (String, PathBuf) {
    let rustc = |arg: &str| {
        let out = Command::new("rustc").arg(arg).output().unwrap();
        assert!(out.status.success(), "rustc {arg}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let version = rustc("--version");
    let full = version.split_whitespace().nth(1).unwrap();
    let minor: Vec<&str> = full.split('.').take(2).collect();
    (minor.join("."), PathBuf::from(rustc("--print=sysroot")))
}

/// Makes `rust:<version>-bookworm` (bookworm with gcc, this machine's toolchain under
/// `/usr/local/rust` and its CA bundle, which cargo needs to reach crates.io from here)
/// and `debian:bookworm-slim` (bookworm, minimal). Returns the Rust version.
fn make_base_images(podman: &Podman, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let (version, sysroot) = host_toolchain();
    let sources = apt_sources();
    let hook = format!(
        "set -e; r=\"$1\"; mkdir -p \"$r/usr/local/rust\" \"$r/usr/local/cargo/bin\"; \
         cp -a '{s}/bin' '{s}/lib' \"$r/usr/local/rust/\"; \
         for b in cargo rustc rustdoc; do ln -s /usr/local/rust/bin/$b \"$r/usr/local/cargo/bin/$b\"; done; \
         cp /etc/ssl/certs/ca-certificates.crt \"$r/etc/ssl/certs/ca-certificates.crt\"",
        s = sysroot.display()
    );
    let mmdebstrap = |out: &str, extra: &[String]| {
        let log = std::fs::File::create(dir.join(format!("{out}.log"))).unwrap();
        Command::new("mmdebstrap")
            // Its staging directory on the same disk as the images (not a memory file
            // system `TMPDIR` may name).
            .env("TMPDIR", dir)
            .args(["--variant=minbase", "--quiet"])
            .args(extra)
            .arg("bookworm")
            .arg(dir.join(out))
            .arg(&sources)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    // Both at once: mostly downloads.
    let mut rust = mmdebstrap(
        "rust.tar",
        &[
            "--include=ca-certificates,gcc,g++,libc6-dev,make,pkg-config".to_string(),
            format!("--customize-hook={hook}"),
        ],
    );
    let mut slim = mmdebstrap("slim.tar", &[]);
    for (name, child) in [("rust", &mut rust), ("slim", &mut slim)] {
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "mmdebstrap {name}.tar: {status}\n{}",
            std::fs::read_to_string(dir.join(format!("{name}.tar.log"))).unwrap_or_default()
        );
    }
    podman.run(&[
        OsStr::new("import"),
        dir.join("slim.tar").as_os_str(),
        OsStr::new("docker.io/library/debian:bookworm-slim"),
    ]);
    let path =
        "PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    podman.run(&[
        OsStr::new("import"),
        OsStr::new("--change"),
        OsStr::new(&format!("ENV {path}")),
        OsStr::new("--change"),
        OsStr::new("ENV CARGO_HOME=/usr/local/cargo"),
        dir.join("rust.tar").as_os_str(),
        OsStr::new(&format!("docker.io/library/rust:{version}-bookworm")),
    ]);
    for t in ["rust.tar", "slim.tar"] {
        std::fs::remove_file(dir.join(t)).unwrap();
    }
    version
}

/// What plain `cargo build --release` of the context's `chef` prints when run.
fn plain_cargo_output(s: &Scratch, context: &Path, n: usize) -> String {
    let copy = s.path(&format!("plain-{n}"));
    copy_fixture_tree(context, &copy);
    let ws = copy.join("chef");
    let mut cmd = base_command(Path::new("cargo"), &ws, Path::new("/nonexistent"));
    let out = cmd
        .args(["build", "--release", "--locked", "--bin", "chef-app"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plain cargo build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_program(&ws.join("target/release/chef-app"))
}

fn copy_fixture_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                copy_fixture_tree(&e.path(), &dst);
            }
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Files under `dirs` holding `needle` (GNU grep: every byte, no symbolic link followed).
fn files_holding(needle: &str, dirs: &[PathBuf]) -> String {
    let out = Command::new("grep")
        .args(["--recursive", "--files-with-matches", "--fixed-strings"])
        .args(["--binary-files=text", "--devices=skip", "-e", needle])
        .args(dirs)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "grep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A value found nowhere before this test made it.
fn fresh_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("dockersecret{:016x}", h.finish())
}

#[test]
fn the_example_dockerfiles_built_by_podman() {
    servers::require(
        "podman",
        "apt-get install podman (Debian's; builds with --isolation=chroot)",
    );
    servers::require("mmdebstrap", "apt-get install mmdebstrap");
    let started = Instant::now();
    // Images and layers: gigabytes, on a disk.
    let s = Scratch::on_disk();
    let podman = Podman::new(s.path("podman"));
    let mut times = String::new();
    let mut time = |what: &str, secs: f64| {
        let _ = writeln!(times, "{what}: {secs:.0} s");
    };

    let t = Instant::now();
    let rust_version = make_base_images(&podman, &s.path("images"));
    time(
        "base images (mmdebstrap, import)",
        t.elapsed().as_secs_f64(),
    );
    let context = s.path("context");
    copy_fixture("chef", &context.join("chef"));
    copy_fixture("chef-outside", &context.join("chef-outside"));
    std::fs::write(context.join(".dockerignore"), "**/target\n").unwrap();
    let logs = s.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut b = Builder {
        podman: &podman,
        rust_version,
        xcache: xcache_context(&s.path("xcache-src")),
        context: context.clone(),
        logs,
        count: 0,
    };

    // cargo-xcache itself, installed in the image once.
    let tools = b.build("Dockerfile", &["--target".into(), "tools".into()], "tools");
    tools.assert_ran("cargo install --locked --path /xcache-src");
    // The binary installed runs in the image.
    let version = tools
        .step("cargo install --locked --path /xcache-src")
        .output
        .clone();
    assert!(
        version.contains(&format!("cargo-xcache {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    time("tools stage (cargo-xcache installed)", tools.secs);

    // (4) The first build: the runtime image's program prints what plain cargo's does.
    let first = b.build("Dockerfile", &[], "app");
    first.assert_cached("cargo install --locked --path /xcache-src");
    first.assert_ran("cargo xcache warm");
    time("Dockerfile, first build", first.secs);
    assert_warm(&b.warm_report(&first), &["itoa", "libc"]);
    let plain = plain_cargo_output(&s, &context, 1);
    assert_eq!(plain, "core 0.3.1 outside 42\n");
    assert_eq!(b.program_output("app"), plain);
    let recipe = b.recipe("Dockerfile");

    // (1) A source edit: the recipe's bytes are the same, so the builder takes the
    // recipe's COPY and `warm` from its cache; only the final build runs.
    let main_rs = context.join("chef/app/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, text.replace("42", "43")).unwrap();
    let edited = b.build("Dockerfile", &[], "app");
    edited.assert_ran("cargo xcache prepare");
    edited.assert_cached("COPY --from=planner /recipe.json /recipe.json");
    edited.assert_cached("cargo xcache warm");
    edited.assert_ran("cargo xcache build");
    time("Dockerfile, rebuild after a source edit", edited.secs);
    assert_eq!(b.recipe("Dockerfile"), recipe, "the recipe changed");
    let plain = plain_cargo_output(&s, &context, 2);
    assert_eq!(plain, "core 0.3.1 outside 43\n");
    assert_eq!(b.program_output("app"), plain);

    // (2) With the store in a cache mount: a dependency bump reruns `warm`, which
    // compiles the bumped crate only and restores every other dependency.
    let cm = b.build("Dockerfile.cache-mount", &[], "app-cm");
    cm.assert_ran("cargo xcache warm");
    time("Dockerfile.cache-mount, first build", cm.secs);
    assert_warm(&b.warm_report(&cm), &["itoa", "libc"]);
    let bump = base_command(
        Path::new("cargo"),
        &context.join("chef"),
        Path::new("/nonexistent"),
    )
    .args(["update", "--package", "itoa", "--precise", "1.0.17"])
    .output()
    .unwrap();
    assert!(bump.status.success(), "cargo update: {bump:?}");
    let bumped = b.build("Dockerfile.cache-mount", &[], "app-cm");
    bumped.assert_ran("COPY --from=planner /recipe.json /recipe.json");
    bumped.assert_ran("cargo xcache warm");
    time(
        "Dockerfile.cache-mount, rebuild after a dependency bump",
        bumped.secs,
    );
    let report = b.warm_report(&bumped);
    assert_warm(&report, &["itoa"]);
    assert!(
        units(&report).contains("itoa lib miss"),
        "{:#?}",
        units(&report)
    );
    let plain = plain_cargo_output(&s, &context, 3);
    assert_eq!(b.program_output("app-cm"), plain);
    // The same bump without the cache mount: `warm` compiles every dependency.
    let no_mount = b.build("Dockerfile", &[], "app");
    no_mount.assert_ran("cargo xcache warm");
    time("Dockerfile, rebuild after a dependency bump", no_mount.secs);
    assert_warm(&b.warm_report(&no_mount), &["itoa", "libc"]);

    // (3) A remote store on the host, the credentials in a build secret.
    let secret = fresh_secret();
    let server = servers::seaweedfs_with_secret(&secret);
    let credentials = s.path("secret/credentials");
    std::fs::create_dir_all(credentials.parent().unwrap()).unwrap();
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = {S3_ACCESS}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let remote_args: Vec<String> = vec![
        "--secret".into(),
        format!("id=aws,src={}", credentials.display()),
        "--build-arg".into(),
        format!(
            "XCACHE_REMOTE=s3://{S3_BUCKET}/docker?endpoint=http://127.0.0.1:{}",
            server.port
        ),
        "--build-arg".into(),
        "AWS_REGION=us-east-1".into(),
    ];
    let r1 = b.build("Dockerfile.remote-secret", &remote_args, "app-remote");
    r1.assert_ran("cargo xcache warm");
    time("Dockerfile.remote-secret, first build", r1.secs);
    assert_warm(&b.warm_report(&r1), &["itoa", "libc"]);
    // An empty builder cache: every image but the base images and the `tools` stage's
    // (cargo-xcache itself, not the build's cache) is removed.
    forget_builder_cache(&podman, &tools, &b.rust_version);
    let r2 = b.build("Dockerfile.remote-secret", &remote_args, "app-remote");
    r2.assert_cached("cargo install --locked --path /xcache-src");
    r2.assert_ran("cargo xcache prepare");
    r2.assert_ran("cargo xcache warm");
    r2.assert_ran("cargo xcache build");
    time(
        "Dockerfile.remote-secret, a builder with an empty cache",
        r2.secs,
    );
    let report = b.warm_report(&r2);
    // On a failure, what both `warm` steps printed (the remote's warnings among it).
    eprintln!(
        "first build's warm step:\n{}\nsecond build's warm step:\n{}\nsecond build's log:\n{}",
        r1.step("cargo xcache warm").output,
        r2.step("cargo xcache warm").output,
        r2.log
    );
    assert_warm(&report, &[]);
    assert!(
        report["summary"]["remote_hits"].as_u64().unwrap_or(0) > 0,
        "{}",
        report["summary"]
    );
    assert_eq!(b.program_output("app-remote"), plain);
    drop(server);

    // Without cargo-xcache, for the times the Docker guide quotes: the same stages with
    // plain `cargo build`, so every change of the context compiles everything again.
    let plain_file = s.path("Dockerfile.plain");
    std::fs::write(&plain_file, PLAIN_DOCKERFILE).unwrap();
    let p1 = b.build_from(&plain_file, &[], "app-plain");
    time("without cargo-xcache, first build", p1.secs);
    assert_eq!(b.program_output("app-plain"), plain);
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, text.replace("43", "44")).unwrap();
    let p2 = b.build_from(&plain_file, &[], "app-plain");
    p2.assert_ran("cargo build --release --locked");
    time("without cargo-xcache, rebuild after a source edit", p2.secs);
    assert_eq!(b.program_output("app-plain"), "core 0.3.1 outside 44\n");

    // The secret is in no layer's files and no image's history or configuration.
    let layers: Vec<PathBuf> = std::fs::read_dir(podman.dir.join("root/overlay"))
        .unwrap()
        .map(|e| e.unwrap().path().join("diff"))
        .filter(|d| d.is_dir())
        .collect();
    assert!(layers.len() > 10, "{layers:?}");
    assert_eq!(
        files_holding(&secret, &layers),
        "",
        "the secret is in a layer"
    );
    // Nor anywhere else the builder keeps things: image metadata, cache mounts, run state.
    assert_eq!(
        files_holding(&secret, std::slice::from_ref(&podman.dir)),
        "",
        "the secret is in the builder's state"
    );
    for image in podman.images() {
        let history = podman.run(&["history", "--no-trunc", &image]);
        let inspect = podman.run(&["inspect", &image]);
        assert!(
            !history.contains(&secret) && !inspect.contains(&secret),
            "the secret is in {image}'s history or configuration"
        );
    }

    time("the whole test", started.elapsed().as_secs_f64());
    eprintln!("{times}");
}

/// `examples/docker/Dockerfile` without cargo-xcache: the baseline of the guide's times.
const PLAIN_DOCKERFILE: &str = r#"ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
ARG WORKSPACE=.
WORKDIR /src
COPY . .
WORKDIR /src/${WORKSPACE}
RUN cargo build --release --locked

FROM debian:bookworm-slim AS runtime
ARG WORKSPACE=.
ARG BIN=app
COPY --from=builder /src/${WORKSPACE}/target/release/${BIN} /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
"#;

/// Removes every image but the base images and the `tools` stage's (with its parents):
/// the builder's cache is empty from the planner on.
fn forget_builder_cache(podman: &Podman, tools: &Built, rust_version: &str) {
    let bases = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("docker.io/library/rust:{rust_version}-bookworm"),
        "docker.io/library/debian:bookworm-slim",
    ]);
    let keep: Vec<&str> = tools
        .steps
        .iter()
        .map(|s| s.image.as_str())
        .chain(bases.lines())
        .filter(|k| !k.is_empty())
        .collect();
    let mut args = vec!["rmi".to_string(), "--force".to_string()];
    args.extend(
        podman
            .images()
            .into_iter()
            .filter(|i| !keep.iter().any(|k| i.starts_with(k))),
    );
    podman.run(&args);
}

/// The log's lines go to the step they belong to when stages take turns: here the
/// builder stage's `COPY --from=planner` waits while the planner stage runs `prepare`,
/// and its `Using cache` comes after the planner's last step (a log of this machine's
/// podman 4.3).
#[test]
fn a_log_of_stages_taking_turns_is_read_step_by_step() {
    let log = "\
[3/4] STEP 5/11: WORKDIR /src/${WORKSPACE}
--> Using cache e38d20239c01
--> e38d20239c0
[3/4] STEP 6/11: COPY --from=planner /recipe.json /recipe.json
[2/4] STEP 1/6: FROM 75941bbc273a AS planner
[2/4] STEP 2/6: ARG WORKSPACE=.
--> Using cache 4ba4532dd4d
--> 4ba4532dd4d
[2/4] STEP 6/6: RUN cargo xcache prepare --recipe-path /recipe.json
xcache: wrote /recipe.json (4 local packages, 6 files, 9 placeholders)
--> 62c69e16abe
--> Using cache 1c0562999db
--> 1c0562999db
[3/4] STEP 7/11: RUN cargo xcache warm --recipe-path /recipe.json
--> Using cache 8efcd74e911
--> 8efcd74e911
";
    let b = Built::parse(log.to_string(), 0.0);
    b.assert_ran("cargo xcache prepare");
    assert!(
        b.step("cargo xcache prepare")
            .output
            .contains("wrote /recipe.json")
    );
    assert_eq!(b.step("cargo xcache prepare").image, "62c69e16abe");
    b.assert_cached("COPY --from=planner");
    assert_eq!(b.step("COPY --from=planner").image, "1c0562999db");
    b.assert_cached("cargo xcache warm");
}

/// Three stages taking turns (CI, stop 43): the builder's `COPY --from=planner` and the
/// runtime's `COPY --from=builder` both wait while the planner runs; the `Using cache`
/// after the planner's last step is the builder's (the runtime still waits for it), and
/// the runtime's `COPY` ends after the builder's last step.
#[test]
fn a_log_of_three_stages_waiting_on_each_other_is_read_step_by_step() {
    let log = "\
[3/4] STEP 1/11: FROM b55c7fe61929e5c9d307c443d08c93efc5a5bba0e107e24cd26668fcf015cf27 AS builder
[3/4] STEP 2/11: ARG WORKSPACE=.
--> Using cache 544c7c7ee6f2c3317c871d810a059f6860279ddc010bb84c558c79112e35a925
--> 544c7c7ee6f
[3/4] STEP 6/11: COPY --from=planner /recipe.json /recipe.json
[4/4] STEP 1/5: FROM debian:bookworm-slim AS runtime
[4/4] STEP 2/5: ARG WORKSPACE=.
--> Using cache 997d70771ad9277519bc3975bce6a8185685bbbd516d88d5fa87becd0048597d
--> 997d70771ad
[4/4] STEP 4/5: COPY --from=builder /src/${WORKSPACE}/target/release/${BIN} /usr/local/bin/app
[2/4] STEP 1/6: FROM b55c7fe61929e5c9d307c443d08c93efc5a5bba0e107e24cd26668fcf015cf27 AS planner
[2/4] STEP 2/6: ARG WORKSPACE=.
--> Using cache 544c7c7ee6f2c3317c871d810a059f6860279ddc010bb84c558c79112e35a925
--> 544c7c7ee6f
[2/4] STEP 4/6: COPY . .
--> a342543febb
[2/4] STEP 6/6: RUN cargo xcache prepare --recipe-path /recipe.json
xcache: wrote /recipe.json (4 local packages, 6 files, 9 placeholders)
--> df98f92384d
--> Using cache c3ae3613b3f30fdf59f3eb82d32220f8fe1b74b723f830ec80c621c7a0dfb02f
--> c3ae3613b3f
[3/4] STEP 7/11: RUN cargo xcache warm --recipe-path /recipe.json --skeleton-root /src --release --locked
--> Using cache 86dc17d7ecdb27602b66b57efdae2e9dfd6a1ec9139673aa5dc05d4fec7fd102
--> 86dc17d7ecd
[3/4] STEP 9/11: COPY . .
--> 94c99def9b8
[3/4] STEP 11/11: RUN cargo xcache build --release --locked
xcache: 7 units: 0 seeded, 0 restored, 6 compiled, 1 ran, 0 uncacheable in 0.38s (0.02s before cargo)
--> ab97af5b3b6
--> 111f966d6d9
[4/4] STEP 5/5: ENTRYPOINT [\"/usr/local/bin/app\"]
[4/4] COMMIT app
--> 939c8ac5e5f
";
    let b = Built::parse(log.to_string(), 0.0);
    b.assert_ran("cargo xcache prepare");
    assert_eq!(b.step("cargo xcache prepare").image, "df98f92384d");
    b.assert_cached("COPY --from=planner");
    assert_eq!(b.step("COPY --from=planner").image, "c3ae3613b3f");
    b.assert_cached("cargo xcache warm");
    b.assert_ran("cargo xcache build");
    assert!(b.step("cargo xcache build").output.contains("6 compiled"));
    assert_eq!(b.step("cargo xcache build").image, "ab97af5b3b6");
    b.assert_ran("COPY --from=builder");
    assert_eq!(b.step("COPY --from=builder").image, "111f966d6d9");
    assert_eq!(b.step("ENTRYPOINT").image, "939c8ac5e5f");
}

/// The stage a step takes files from, as a Dockerfile writes it.
#[test]
fn a_step_waits_for_the_stage_it_takes_files_from() {
    assert_eq!(
        waits_for("COPY --from=planner /recipe.json /recipe.json").as_deref(),
        Some("planner")
    );
    assert_eq!(
        waits_for("COPY --chown=1:1 --from=0 /a /b").as_deref(),
        Some("0")
    );
    assert_eq!(
        waits_for("RUN --mount=type=bind,from=xcache,target=/x,rw cargo install").as_deref(),
        Some("xcache")
    );
    assert_eq!(waits_for("RUN cargo build --from=nothing"), None);
    assert_eq!(waits_for("COPY . ."), None);
}
