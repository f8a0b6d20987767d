//! The Dockerfiles of `examples/docker/`, run as directories and processes: no Docker
//! engine runs here, so each stage's instructions are read from the Dockerfile itself
//! and carried out on a directory standing for the stage's file system (`ARG`, `ENV`,
//! `WORKDIR`, `COPY`, `RUN`; `RUN --mount` options are dropped, a cache mount is the
//! store directory a test keeps or copies between builders). The test and the
//! Dockerfiles cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Output;

use crate::common::layouts::CargoLayout;
use crate::common::{Build, Report, Scratch, base_command, copy_fixture, xcache_exe};

/// One instruction of a Dockerfile.
#[derive(Debug)]
struct Instruction {
    op: String,
    args: String,
}

/// The stages of a Dockerfile by name, and the `ARG`s before the first `FROM`.
fn parse(dockerfile: &str) -> BTreeMap<String, Vec<Instruction>> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(t);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: BTreeMap<String, Vec<Instruction>> = BTreeMap::new();
    let mut stage = String::from("<global>");
    for l in logical {
        let (op, args) = l.split_once(' ').unwrap_or((&l, ""));
        if op == "FROM" {
            stage = args
                .split_once(" AS ")
                .map(|(_, name)| name.trim().to_string())
                .expect("every stage is named");
            stages.entry(stage.clone()).or_default();
            continue;
        }
        stages.entry(stage.clone()).or_default().push(Instruction {
            op: op.to_string(),
            args: args.trim().to_string(),
        });
    }
    stages
}

/// A stage's file system: `/x` in the image is `root/x`.
struct StageFs<'a> {
    root: PathBuf,
    context: &'a Path,
    /// The other stages' roots, for `COPY --from`.
    stages: &'a BTreeMap<String, PathBuf>,
    build_args: &'a BTreeMap<&'a str, String>,
    /// The builder's own environment (cargo's layout: `CargoLayout::env`), under the
    /// Dockerfile's `ENV`s.
    outer_env: Vec<(String, String)>,
}

impl StageFs<'_> {
    fn map(&self, image_path: &str) -> PathBuf {
        let mut p = self.root.clone();
        for c in Path::new(image_path).components() {
            match c {
                Component::Normal(n) => p.push(n),
                Component::ParentDir => {
                    p.pop();
                }
                _ => {}
            }
        }
        p
    }

    /// Runs a stage; returns each `RUN`'s command line and output, in order.
    fn run(&self, name: &str, instructions: &[Instruction]) -> Vec<(String, Output)> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let mut env: Vec<(String, String)> = Vec::new();
        let mut workdir = String::from("/");
        let mut runs = Vec::new();
        let subst = |s: &str, vars: &BTreeMap<String, String>| -> String {
            let mut out = s.to_string();
            for (k, v) in vars {
                out = out.replace(&format!("${{{k}}}"), v);
            }
            out
        };
        for ins in instructions {
            let args = subst(&ins.args, &vars);
            match ins.op.as_str() {
                "ARG" => {
                    let (k, default) = args.split_once('=').unwrap_or((&args, ""));
                    let v = self
                        .build_args
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| default.to_string());
                    vars.insert(k.to_string(), v);
                }
                "ENV" => {
                    let (k, v) = args.split_once('=').expect("ENV K=V");
                    let v = if v.starts_with('/') {
                        self.map(v).display().to_string()
                    } else {
                        v.to_string()
                    };
                    vars.insert(k.to_string(), v.clone());
                    env.push((k.to_string(), v));
                }
                "WORKDIR" => {
                    workdir = if args.starts_with('/') {
                        args.clone()
                    } else {
                        format!("{workdir}/{args}")
                    };
                    std::fs::create_dir_all(self.map(&workdir)).unwrap();
                }
                "COPY" => {
                    let words: Vec<&str> = args.split_whitespace().collect();
                    let (from, src, dst) = match words.as_slice() {
                        [f, s, d] => (f.strip_prefix("--from="), *s, *d),
                        [s, d] => (None, *s, *d),
                        other => panic!("{name}: COPY {other:?}"),
                    };
                    let src = match from {
                        Some(stage) => {
                            let fs = StageFs {
                                root: self.stages[stage].clone(),
                                outer_env: Vec::new(),
                                ..*self
                            };
                            fs.map(src)
                        }
                        None => self.context.join(src),
                    };
                    let dst = if dst.starts_with('/') {
                        self.map(dst)
                    } else {
                        self.map(&format!("{workdir}/{dst}"))
                    };
                    if src.is_dir() {
                        copy_dir(&src, &dst);
                    } else {
                        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                        std::fs::copy(&src, &dst).unwrap();
                    }
                }
                "RUN" => {
                    // BuildKit mounts: a cache mount is the directory itself here, a
                    // secret is absent (nothing in these tests needs one).
                    let words: Vec<String> = args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--mount="))
                        .map(|w| {
                            if w.starts_with('/') {
                                self.map(w).display().to_string()
                            } else {
                                w.to_string()
                            }
                        })
                        .collect();
                    let mut line = words.join(" ");
                    // cargo's own report of what it found fresh.
                    if line.starts_with("cargo xcache build") {
                        line.push_str(" --message-format=json");
                    }
                    let cwd = self.map(&workdir);
                    let mut cmd = base_command(Path::new("sh"), &cwd, Path::new("/nonexistent"));
                    cmd.arg("-c").arg(&line);
                    for (k, v) in &self.outer_env {
                        cmd.env(k, v);
                    }
                    let exe_dir = xcache_exe().parent().unwrap().to_path_buf();
                    let path = match self.outer_env.iter().find(|(k, _)| k == "PATH") {
                        Some((_, p)) => p.into(),
                        None => std::env::var_os("PATH").unwrap_or_default(),
                    };
                    let mut dirs = vec![exe_dir];
                    dirs.extend(std::env::split_paths(&path));
                    cmd.env("PATH", std::env::join_paths(dirs).unwrap());
                    for (k, v) in &env {
                        cmd.env(k, v);
                    }
                    let out = cmd.output().unwrap();
                    assert!(
                        out.status.success(),
                        "{name}: RUN {line} failed:\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    runs.push((line, out));
                }
                "ENTRYPOINT" | "CMD" => {}
                other => panic!("{name}: the test does not know {other}"),
            }
        }
        runs
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn dockerfile(name: &str) -> BTreeMap<String, Vec<Instruction>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/docker")
        .join(name);
    parse(&std::fs::read_to_string(&p).unwrap())
}

/// The build context: the workspace `chef` and its path dependency next to it.
fn context(s: &Scratch) -> PathBuf {
    let c = s.path("context");
    copy_fixture("chef", &c.join("chef"));
    copy_fixture("chef-outside", &c.join("chef-outside"));
    c
}

struct Flow<'a> {
    stages: BTreeMap<String, Vec<Instruction>>,
    context: PathBuf,
    roots: BTreeMap<String, PathBuf>,
    build_args: BTreeMap<&'a str, String>,
    /// The layout cargo keeps units in; a build dir apart is `/build-dir` in each stage.
    layout: Option<CargoLayout>,
}

impl Flow<'_> {
    fn run(&mut self, stage: &str, root: PathBuf) -> Vec<(String, Output)> {
        std::fs::create_dir_all(&root).unwrap();
        let fs = StageFs {
            root: root.clone(),
            context: &self.context,
            stages: &self.roots,
            build_args: &self.build_args,
            outer_env: self
                .layout
                .as_ref()
                .map(|l| l.env(&root.join("build-dir")))
                .unwrap_or_default(),
        };
        let runs = fs.run(stage, &self.stages[stage]);
        self.roots.insert(stage.to_string(), root);
        runs
    }
}

/// The builder's RUN lines: warm from the recipe, then build.
fn assert_builder_runs(runs: &[(String, Output)]) -> (String, Build) {
    let lines: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("cargo xcache warm --recipe-path "),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("cargo xcache build "), "{lines:?}");
    let warm_err = String::from_utf8_lossy(&runs[0].1.stderr).into_owned();
    let build = Build::from_output(runs[1].1.clone(), Path::new("/"));
    (warm_err, build)
}

/// Every artifact of a dependency is fresh; the workspace's crates were compiled.
fn assert_dependencies_fresh(b: &Build) {
    let mut deps = BTreeSet::new();
    let mut local = BTreeSet::new();
    for m in b
        .messages
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact")
    {
        let name = m["target"]["name"].as_str().unwrap().to_string();
        if m["package_id"]
            .as_str()
            .unwrap()
            .starts_with("path+file://")
        {
            local.insert(name);
        } else {
            assert_eq!(m["fresh"], true, "{name} was rebuilt\n{}", b.stderr());
            deps.insert(name);
        }
    }
    assert_eq!(
        deps,
        BTreeSet::from(["build-script-build".into(), "itoa".into(), "libc".into()])
    );
    assert!(local.contains("chef-app"), "{local:?}");
}

fn build_args(extra: &[(&'static str, String)]) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::from([("WORKSPACE", "chef".to_string())]);
    m.extend(extra.iter().cloned());
    m
}

#[test]
fn dockerfile_planner_and_builder() {
    let s = Scratch::new();
    let mut flow = Flow {
        stages: dockerfile("Dockerfile"),
        context: context(&s),
        roots: BTreeMap::new(),
        layout: None,
        build_args: build_args(&[("BIN", "chef-app".to_string())]),
    };
    flow.run("planner", s.path("planner"));
    let recipe = std::fs::read(s.path("planner/recipe.json")).unwrap();
    let runs = flow.run("builder", s.path("builder"));
    let (_, build) = assert_builder_runs(&runs);
    assert_dependencies_fresh(&build);
    // The runtime stage copies the binary the builder built.
    flow.run("runtime", s.path("runtime"));
    let app = s.path("runtime/usr/local/bin/app");
    let out = std::process::Command::new(app).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "core 0.3.1 outside 42\n"
    );
    // cargo-xcache is installed from this repository.
    let tools: Vec<&str> = flow.stages["tools"]
        .iter()
        .map(|i| i.args.as_str())
        .collect();
    assert!(
        tools
            .iter()
            .any(|a| a.contains("cargo install --locked --path /xcache-src")),
        "{tools:?}"
    );

    // A source edit: the planner runs again, the recipe's bytes are the same, so the
    // builder's `COPY --from=planner` and `warm` layers stay cached.
    let main_rs = flow.context.join("chef/app/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, text.replace("42", "43")).unwrap();
    flow.run("planner", s.path("planner2"));
    assert_eq!(
        std::fs::read(s.path("planner2/recipe.json")).unwrap(),
        recipe
    );
}

#[test]
fn dockerfile_with_cache_mount_on_a_fresh_builder() {
    let s = Scratch::new();
    let mut flow = Flow {
        stages: dockerfile("Dockerfile.cache-mount"),
        context: context(&s),
        roots: BTreeMap::new(),
        layout: None,
        build_args: build_args(&[]),
    };
    flow.run("planner", s.path("planner"));
    let (_, build) = assert_builder_runs(&flow.run("builder", s.path("builder1")));
    assert_dependencies_fresh(&build);

    // Another builder: no layer, no target dir, only the cache mount of the first.
    copy_dir(&s.path("builder1/xcache"), &s.path("builder2/xcache"));
    let (warm, build) = assert_builder_runs(&flow.run("builder", s.path("builder2")));
    assert!(
        warm.contains(" 0 compiled, 0 ran,"),
        "warm compiled a dependency:\n{warm}"
    );
    assert_dependencies_fresh(&build);
}

#[test]
fn dockerfile_with_remote_store_on_a_fresh_builder() {
    let s = Scratch::new();
    let remote = s.path("remote");
    std::fs::create_dir_all(&remote).unwrap();
    let uri = format!("file://{}", remote.display());
    let mut flow = Flow {
        stages: dockerfile("Dockerfile.remote-secret"),
        context: context(&s),
        roots: BTreeMap::new(),
        layout: None,
        build_args: build_args(&[("XCACHE_REMOTE", uri)]),
    };
    flow.run("planner", s.path("planner"));
    let (_, build) = assert_builder_runs(&flow.run("builder", s.path("builder1")));
    assert_dependencies_fresh(&build);

    // Another builder with nothing local at all: the remote has it.
    assert!(!s.path("builder2").exists());
    let (warm, build) = assert_builder_runs(&flow.run("builder", s.path("builder2")));
    assert!(
        warm.contains(" 0 compiled, 0 ran,"),
        "warm compiled a dependency:\n{warm}"
    );
    assert_dependencies_fresh(&build);
}

/// The planner and builder of `Dockerfile` in each of cargo's other layouts (a build dir
/// apart; the new layout on nightly, alone and with a build dir apart): the final build
/// finds every dependency fresh, planting was on, and cargo kept its records in the
/// build dir when it is apart.
#[test]
fn dockerfile_planner_and_builder_in_every_layout() {
    for layout in CargoLayout::others() {
        let s = Scratch::new();
        let name = layout.name;
        let mut flow = Flow {
            stages: dockerfile("Dockerfile"),
            context: context(&s),
            roots: BTreeMap::new(),
            layout: Some(layout.clone()),
            build_args: build_args(&[("BIN", "chef-app".to_string())]),
        };
        flow.run("planner", s.path("planner"));
        let runs = flow.run("builder", s.path("builder"));
        let (warm_err, build) = assert_builder_runs(&runs);
        eprintln!("{name}: warm said:\n{warm_err}");
        assert_dependencies_fresh(&build);
        let target = s.path("builder/src/chef/target");
        let report = Report::read(&target);
        assert!(
            !report.warning_codes().iter().any(|c| c == "planting-off"),
            "{name}: {:?}",
            report.warning_codes()
        );
        layout.assert_records_apart_in(&target, "release");
        if layout.build_dir_apart {
            assert!(s.path("builder/build-dir").is_dir(), "{name}");
        }
    }
}
