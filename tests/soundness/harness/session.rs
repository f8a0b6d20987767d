//! Checking one case ([`Session`]): the builds of every shape, in an order that shares
//! the work, and the comparisons.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::case::{Case, Command as CargoCommand, Conf, Shape, Shape::*};
use super::outcome::{Outcome, Program, Signature, diagnostics, error_codes, owned};
use super::tree::{Tree, age, copy_tree, fixture_dir, snapshot};
use crate::common::{Build, Report, Scratch, base_command, xcache_exe};

/// Where the checkouts of a case live. `FRESH` and `FIRST` have the same length, so a
/// program that prints a path length sees no move between them; `MOVED` is longer.
const FIRST: &str = "a/ws";
const PLAIN_SAME: &str = "p/ws";
const FRESH: &str = "b/ws";
const MOVED: &str = "a/much/longer/path/ws";

/// How one build is made.
enum Flavor<'a> {
    Plain,
    Cache {
        store: &'a Path,
        seed: bool,
        remote: Option<&'a str>,
    },
    Disabled,
}

/// One case being checked: its scratch area and the problems found so far.
pub(super) struct Session {
    case: Case,
    s: Scratch,
    outside: PathBuf,
    remote_uri: Option<String>,
    problems: Vec<String>,
    /// The program before the mutation (from the build that filled the store).
    before: Option<Outcome>,
    /// The first plain-cargo reference after the mutation in a fresh target dir.
    fresh_plain: Option<Signature>,
    /// Plain cargo's program after the mutation in the target dir it built before.
    same_plain: Option<Signature>,
}

impl Session {
    pub(super) fn new(case: Case) -> Session {
        let s = match case.scratch_in {
            Some(dir) => Scratch::in_dir(std::path::Path::new(dir)),
            None => Scratch::new(),
        };
        let outside = s.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let fixture_outside = fixture_dir(case.fixture).join("outside");
        if fixture_outside.is_dir() {
            copy_tree(&fixture_outside, &outside, &outside, &[]);
        }
        if let Some(f) = &case.outside {
            f(&outside);
        }
        let remote_uri = case.shapes.contains(&Remote).then(|| {
            let dir = s.path("remote");
            std::fs::create_dir_all(&dir).unwrap();
            format!("file://{}", dir.display())
        });
        Session {
            case,
            s,
            outside,
            remote_uri,
            problems: Vec::new(),
            before: None,
            fresh_plain: None,
            same_plain: None,
        }
    }

    fn has(&self, shape: Shape) -> bool {
        self.case.shapes.contains(&shape)
    }

    /// The case builds a program (whose bytes an `XCACHE_DISABLE=1` build is the
    /// reference for).
    fn has_program(&self) -> bool {
        self.case.command == CargoCommand::Build
    }

    pub(super) fn check(mut self) {
        let c = &self.case;
        eprintln!(
            "case: fixture {} program {} shapes {:?}",
            c.fixture, c.program, c.shapes
        );
        // Before the mutation: the build that fills the store (and the remote), and plain
        // cargo's first build for the same-target reference.
        let ws1 = self.checkout(FIRST);
        let store1 = self.store_path(&ws1, "store");
        let before = self.build(
            &ws1,
            Flavor::Cache {
                store: &store1,
                seed: true,
                remote: self.remote_uri.clone().as_deref(),
            },
            &self.case.before.clone(),
            "cache build filling the store (before the mutation)",
            false,
        );
        if !before.ok {
            // Plain cargo on another copy tells a broken fixture from a broken cache.
            let ws = self.checkout("plain-before/ws");
            let plain = self.build(
                &ws,
                Flavor::Plain,
                &self.case.before.clone(),
                "plain cargo (before the mutation)",
                false,
            );
            assert!(
                !plain.ok,
                "the cache fails to build the fixture before any mutation, plain cargo builds it:\n  {}\n  {}",
                plain.describe(),
                before.describe()
            );
            panic!("the fixture does not build:\n{}", plain.describe());
        }
        self.before = Some(before);
        let copy_store = |name: &str| snapshot(&store1, &self.s.path(name));
        let copies_now = !self.case.fresh_store_after_same_target;
        let fresh_store = (copies_now && self.has(FreshTarget)).then(|| copy_store("store-fresh"));
        let noseed_store =
            (copies_now && self.has(FreshTargetNoSeed)).then(|| copy_store("store-noseed"));
        let moved_store =
            (copies_now && self.has(MovedCheckout)).then(|| copy_store("store-moved"));

        let plain_same = self.has(SameTarget).then(|| {
            let ws = self.checkout(PLAIN_SAME);
            let b = self.build(
                &ws,
                Flavor::Plain,
                &self.case.before.clone(),
                "plain cargo, first build",
                false,
            );
            assert!(
                b.ok,
                "plain cargo must build the fixture:\n{}",
                b.describe()
            );
            ws
        });

        // The mutation, applied to the checkouts that exist.
        if let Some(ws) = &plain_same {
            self.mutate(ws);
        }
        if self.has(SameTarget) {
            self.mutate(&ws1);
        }

        if let Some(ws) = &plain_same {
            self.same_target(ws, &ws1, &store1);
        }

        let (fresh_store, noseed_store, moved_store) = if copies_now {
            (fresh_store, noseed_store, moved_store)
        } else {
            let copy = |name: &str| snapshot(&store1, &self.s.path(name));
            (
                self.has(FreshTarget).then(|| store1.clone()),
                self.has(FreshTargetNoSeed).then(|| copy("store-noseed")),
                self.has(MovedCheckout).then(|| copy("store-moved")),
            )
        };
        let mut fresh_shapes: Vec<(Shape, Option<PathBuf>)> = Vec::new();
        if let Some(st) = fresh_store {
            fresh_shapes.push((FreshTarget, Some(st)));
        }
        if let Some(st) = noseed_store {
            fresh_shapes.push((FreshTargetNoSeed, Some(st)));
        }
        if self.has(Remote) {
            fresh_shapes.push((Remote, None));
        }
        if !fresh_shapes.is_empty() {
            self.fresh_checkout(FRESH, &fresh_shapes);
        }
        if let Some(st) = moved_store {
            self.fresh_checkout(MOVED, &[(MovedCheckout, Some(st))]);
        }

        self.check_observable();
        if !self.problems.is_empty() {
            panic!(
                "the cache built another program than plain cargo ({} problem{}):\n\n{}",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                self.problems.join("\n\n")
            );
        }
    }

    /// A case whose mutation plain cargo does not see at all proves nothing.
    fn check_observable(&mut self) {
        if self.case.unobservable.is_some() {
            return;
        }
        let before = owned(self.before.as_ref().unwrap());
        let after = self
            .fresh_plain
            .as_ref()
            .or(self.same_plain.as_ref())
            .unwrap();
        if &before == after {
            self.problems.push(format!(
                "[harness] the mutation does not change plain cargo's program ({before:?}): \
                 the case proves nothing (mark it .unobservable(why) if only bytes change)"
            ));
        }
    }

    /// The same-target shape: plain cargo's second build in its checkout, the cache's
    /// in the checkout that filled the store, and for the bytes an `XCACHE_DISABLE=1`
    /// build of that checkout into an empty target dir at the same path.
    fn same_target(&mut self, plain_ws: &Path, ws1: &Path, store1: &Path) {
        let after = self.case.after.clone();
        let plain = self.build(
            plain_ws,
            Flavor::Plain,
            &after,
            "plain cargo, same target dir",
            false,
        );
        let cache = self.build(
            ws1,
            Flavor::Cache {
                store: store1,
                seed: true,
                remote: None,
            },
            &after,
            "cache, same target dir",
            true,
        );
        self.same_plain = Some(owned(&plain));
        let reference = match (self.case.not_reproducible, self.case.stale_in_same_target) {
            (None, None) if cache.ok && self.has_program() => Some(self.build(
                ws1,
                Flavor::Disabled,
                &after,
                "XCACHE_DISABLE=1, same checkout, empty target dir",
                true,
            )),
            _ => None,
        };
        self.compare(SameTarget, &plain, &cache, reference.as_ref());
    }

    /// A fresh mutated checkout at `rel`: plain cargo and (for the bytes)
    /// `XCACHE_DISABLE=1` first, then each shape's cache build, each into an empty target
    /// dir at the same path.
    fn fresh_checkout(&mut self, rel: &str, shapes: &[(Shape, Option<PathBuf>)]) {
        let ws = self.checkout(rel);
        self.mutate(&ws);
        age(&ws);
        let after = self.case.after.clone();
        let plain = self.build(
            &ws,
            Flavor::Plain,
            &after,
            "plain cargo, fresh target dir",
            true,
        );
        if self.fresh_plain.is_none() {
            self.fresh_plain = Some(owned(&plain));
            self.check_staleness_claim();
        }
        let reference = (self.case.not_reproducible.is_none() && plain.ok && self.has_program())
            .then(|| {
                self.build(
                    &ws,
                    Flavor::Disabled,
                    &after,
                    "XCACHE_DISABLE=1, fresh target dir",
                    true,
                )
            });
        for (shape, store) in shapes {
            let empty = self.s.path(&format!("store-empty-{shape:?}"));
            let snapshot = store.clone().unwrap_or(empty);
            let store = match self.case.store_inside {
                Some(_) => {
                    let inside = self.store_path(&ws, "unused");
                    if inside.exists() {
                        std::fs::remove_dir_all(&inside).unwrap();
                    }
                    if snapshot.exists() {
                        copy_tree(&snapshot, &inside, &inside, &[]);
                    }
                    inside
                }
                None => snapshot,
            };
            let remote = self.remote_uri.clone();
            let flavor = Flavor::Cache {
                store: &store,
                seed: *shape != FreshTargetNoSeed,
                remote: if *shape == Remote {
                    remote.as_deref()
                } else {
                    None
                },
            };
            let label = format!("cache, {shape:?}");
            let cache = self.build(&ws, flavor, &after, &label, true);
            self.compare(*shape, &plain, &cache, reference.as_ref());
            self.check_run_hits(*shape, &cache);
        }
    }

    /// A case that says plain cargo is stale in its own target dir must be right.
    fn check_staleness_claim(&mut self) {
        let (Some(same), Some(fresh)) = (&self.same_plain, &self.fresh_plain) else {
            return;
        };
        let stale = same != fresh;
        match (self.case.stale_in_same_target, stale) {
            (Some(why), false) => self.problems.push(format!(
                "[harness] the case says plain cargo is stale in the same target dir ({why}), \
                 but it built the fresh program: {same:?}"
            )),
            (None, true) => self.problems.push(format!(
                "[harness] plain cargo is stale in the same target dir ({same:?} instead of \
                 {fresh:?}); the case must say why with .stale_in_same_target(..)"
            )),
            _ => {}
        }
    }

    fn check_run_hits(&mut self, shape: Shape, cache: &Outcome) {
        for pkg in &self.case.run_hits {
            let outcome = cache
                .report
                .as_ref()
                .and_then(|r| r.runs().get(*pkg).map(|o| o.0.clone()));
            if outcome.as_deref() != Some("hit") {
                self.problems.push(format!(
                    "[{shape:?}] the build-script run of {pkg} should be a cache hit, was {outcome:?}\n  {}",
                    cache.describe()
                ));
            }
        }
    }

    fn compare(
        &mut self,
        shape: Shape,
        plain: &Outcome,
        cache: &Outcome,
        reference: Option<&Outcome>,
    ) {
        if plain.signature() != cache.signature() {
            let what = if plain.ok != cache.ok {
                "build success differs"
            } else if plain.codes != cache.codes {
                "rustc error codes differ"
            } else {
                "program differs"
            };
            self.problems.push(format!(
                "[{shape:?}] {what}\n  {}\n  {}",
                plain.describe(),
                cache.describe()
            ));
            return;
        }
        let Some(reference) = reference else { return };
        if cache.ok && !reference.ok {
            self.problems.push(format!(
                "[{shape:?}] the XCACHE_DISABLE=1 build (the reference for the bytes) failed \
                 where plain cargo built\n  {}",
                reference.describe()
            ));
            return;
        }
        if let (Some(a), Some(b)) = (&reference.exe, &cache.exe)
            && a != b
        {
            let at = a
                .iter()
                .zip(b.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            self.problems.push(format!(
                "[{shape:?}] executable differs from an XCACHE_DISABLE=1 build of the same tree \
                 at the same path ({} vs {} bytes, first difference at byte {at})\n  {}\n  {}",
                a.len(),
                b.len(),
                reference.describe(),
                cache.describe()
            ));
        }
    }

    fn mutate(&self, ws: &Path) {
        (self.case.mutation)(&Tree {
            ws: ws.to_path_buf(),
            outside: self.outside.clone(),
        });
    }

    /// A fresh copy of the fixture at `rel` (a git repository if the case asks).
    fn checkout(&self, rel: &str) -> PathBuf {
        let ws = self.s.path(rel);
        copy_tree(
            &fixture_dir(self.case.fixture),
            &ws,
            &self.outside,
            &["target", "outside"],
        );
        if self.case.git {
            for args in [
                &["init", "-q"][..],
                &["add", "-A"],
                &["commit", "-q", "-m", "fixture"],
            ] {
                crate::common::git(&ws, args);
            }
        }
        ws
    }

    /// The store of checkout `ws`: inside it if the case says so, else `default` in the
    /// scratch area.
    fn store_path(&self, ws: &Path, default: &str) -> PathBuf {
        match self.case.store_inside {
            Some(rel) => ws.join(rel),
            None => self.s.path(default),
        }
    }

    fn expand(&self, v: &str, ws: &Path) -> String {
        v.replace("{ws}", ws.to_str().unwrap())
            .replace("{outside}", self.outside.to_str().unwrap())
            .replace("{path}", &std::env::var("PATH").unwrap_or_default())
    }

    /// One build of `ws`; the program is run and the executable read at once. With
    /// `set_aside` the target dir is renamed afterwards, so the next build of `ws` starts
    /// with an empty one at the same path.
    fn build(
        &self,
        ws: &Path,
        flavor: Flavor<'_>,
        conf: &Conf,
        label: &str,
        set_aside: bool,
    ) -> Outcome {
        let args: Vec<String> = conf.args.iter().map(|a| self.expand(a, ws)).collect();
        let env: Vec<(String, String)> = conf
            .env
            .iter()
            .map(|(k, v)| (k.clone(), self.expand(v, ws)))
            .collect();
        let disabled_store = self.s.path("store-disabled");
        let command = self.case.command.name();
        let mut cmd = match &flavor {
            Flavor::Plain => {
                let mut c = base_command(Path::new("cargo"), ws, Path::new("/nonexistent"));
                c.arg(command);
                c
            }
            Flavor::Cache { store, .. } => {
                let mut c = base_command(&xcache_exe(), ws, store);
                c.args(["xcache", command]);
                c
            }
            Flavor::Disabled => {
                let mut c = base_command(&xcache_exe(), ws, &disabled_store);
                c.args(["xcache", command]).env("XCACHE_DISABLE", "1");
                c
            }
        };
        // Before the case's arguments: they may end with `-- <clippy's flags>`.
        cmd.arg("--message-format=json-render-diagnostics")
            .args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        if let Flavor::Cache { seed, remote, .. } = &flavor {
            if !seed {
                cmd.env("XCACHE_SEED", "0");
            }
            if let Some(uri) = remote {
                cmd.env("XCACHE_REMOTE", uri);
            }
            // `XCACHE_SOUNDNESS_EXECUTOR`: the whole suite against a farm someone started
            // (book: Design -> Remote execution says how it was run).
            let executor = self
                .case
                .executor
                .clone()
                .or_else(|| std::env::var("XCACHE_SOUNDNESS_EXECUTOR").ok());
            if let Some(uri) = &executor {
                // Generous: a remote compile waits in the queue of 2 busy cores.
                cmd.env("XCACHE_EXECUTOR", uri)
                    .env("XCACHE_EXECUTOR_TIMEOUT", "5m")
                    // The rows judge what a worker's result is taken for: every compile
                    // sent is the worker's (the compile here meanwhile is a local
                    // compile, which the other sessions judge), unless
                    // XCACHE_SOUNDNESS_EXECUTOR_HEDGE=on races the two against a farm
                    // started by hand (the executor session's own farm checks where
                    // compiles ran).
                    .env(
                        "XCACHE_EXECUTOR_HEDGE",
                        std::env::var("XCACHE_SOUNDNESS_EXECUTOR_HEDGE")
                            .ok()
                            .filter(|_| self.case.executor.is_none())
                            .unwrap_or_else(|| "off".into()),
                    )
                    // By default, a worker busy with a compile on that machine is not
                    // "no worker".
                    .env(
                        "XCACHE_EXECUTOR_QUEUE_WAIT",
                        self.case
                            .executor_queue_wait
                            .map(str::to_string)
                            .or_else(|| std::env::var("XCACHE_SOUNDNESS_EXECUTOR_QUEUE_WAIT").ok())
                            .unwrap_or_else(|| "5m".into()),
                    );
            }
        }
        let b = Build::from_output(cmd.output().unwrap(), ws);
        let ok = b.output.status.success();
        let stderr = b.stderr();
        let target = target_dir(ws, &args, &env);
        let (program, exe) = if self.case.command == CargoCommand::Clippy {
            // clippy's "program" is its diagnostics, with cargo's exit code.
            let status = format!("exit {}", b.output.status.code().unwrap_or(-1));
            let program = Program {
                stdout: diagnostics(&stderr),
                status,
                stderr: String::new(),
            };
            (Some(program), None)
        } else if ok {
            let path = b.executable(self.case.program);
            let out = Command::new(&path)
                .current_dir(ws)
                .env_clear()
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
            let status = match (out.status.code(), out.status.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "unknown".to_string(),
            };
            (
                Some(Program {
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    status,
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }),
                Some(std::fs::read(&path).unwrap()),
            )
        } else {
            (None, None)
        };
        let report = matches!(flavor, Flavor::Cache { .. })
            .then(|| target.join("xcache/report.json"))
            .filter(|p| p.exists())
            .map(|_| Report::read(&target));
        if let (Some(layout), Some(r)) = (self.case.layout, &report) {
            assert!(
                !r.warning_codes().iter().any(|c| c == "planting-off"),
                "{layout}: {label}: planting was off:\n{stderr}"
            );
        }
        // A build dir apart from the target dir goes aside with it.
        let build_dir = env
            .iter()
            .rev()
            .find(|(k, _)| k == "CARGO_BUILD_BUILD_DIR")
            .map(|(_, v)| ws.join(v));
        for dir in std::iter::once(target.clone()).chain(build_dir) {
            if !set_aside || !dir.exists() {
                continue;
            }
            let mut n = 0;
            let aside = loop {
                let p = dir.with_file_name(format!(
                    "{}.aside-{n}",
                    dir.file_name().unwrap().to_string_lossy()
                ));
                if !p.exists() {
                    break p;
                }
                n += 1;
            };
            std::fs::rename(&dir, &aside).unwrap();
        }
        let where_ = ws.strip_prefix(self.s.dir.path()).unwrap_or(ws);
        let outcome = Outcome {
            label: format!("{label} ({})", where_.display()),
            ok,
            codes: error_codes(&stderr),
            stderr,
            program,
            exe,
            report,
        };
        if std::env::var_os("SOUNDNESS_VERBOSE").is_some() {
            eprintln!("  {}", outcome.describe());
        }
        outcome
    }
}

/// The target dir a build used: `--target-dir`, else `CARGO_TARGET_DIR`, else `ws/target`.
fn target_dir(ws: &Path, args: &[String], env: &[(String, String)]) -> PathBuf {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--target-dir" {
            return ws.join(it.next().unwrap());
        }
        if let Some(v) = a.strip_prefix("--target-dir=") {
            return ws.join(v);
        }
    }
    env.iter()
        .find(|(k, _)| k == "CARGO_TARGET_DIR")
        .map(|(_, v)| ws.join(v))
        .unwrap_or_else(|| ws.join("target"))
}
