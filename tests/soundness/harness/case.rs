//! A case as the tests declare it: [`Case`], built with chained calls and checked
//! with [`Case::check`], and the [`Shape`]s it is built in.

use std::path::Path;

use super::tree::Tree;

/// How the cache meets the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Cache build of a checkout (fills the store), mutate, cache build again in the same
    /// checkout and target dir. Reference: plain cargo through the same sequence in its
    /// own checkout, stale where plain cargo is stale.
    SameTarget,
    /// A fresh checkout, mutated, built with an empty target dir and the store the first
    /// checkout filled; seeding on. Reference: plain cargo on that checkout.
    FreshTarget,
    /// As [`Shape::FreshTarget`] with `XCACHE_SEED=0`, on its own copy of the filled store.
    FreshTargetNoSeed,
    /// As [`Shape::FreshTarget`], the checkout at a path of another length.
    MovedCheckout,
    /// The first build also writes a `file://` remote; the mutated checkout builds with
    /// an empty local store and that remote.
    Remote,
}

use Shape::*;

/// Every shape.
pub const ALL: &[Shape] = &[
    SameTarget,
    FreshTarget,
    FreshTargetNoSeed,
    MovedCheckout,
    Remote,
];

/// The cargo command a case compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `cargo build`, then the program is run: its stdout and exit status, and the
    /// executable's bytes, are compared.
    Build,
    /// `cargo clippy`: clippy's diagnostics (each warning and error with its place) and
    /// cargo's exit code are compared; there is no program.
    Clippy,
}

impl Command {
    pub(super) fn name(self) -> &'static str {
        match self {
            Command::Build => "build",
            Command::Clippy => "clippy",
        }
    }
}

/// The arguments and environment of a build. Values may hold `{ws}` (the checkout being
/// built), `{outside}` (the case's directory outside every checkout) and `{path}` (the
/// inherited `PATH`).
#[derive(Clone, Default)]
pub(super) struct Conf {
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

type Mutation = Box<dyn Fn(&Tree)>;
type Prepare = Box<dyn Fn(&Path)>;

/// A fixture, one mutation, the shapes to compare.
pub struct Case {
    pub(super) command: Command,
    pub(super) fixture: &'static str,
    pub(super) program: &'static str,
    pub(super) shapes: Vec<Shape>,
    pub(super) mutation: Mutation,
    pub(super) before: Conf,
    pub(super) after: Conf,
    pub(super) not_reproducible: Option<&'static str>,
    pub(super) stale_in_same_target: Option<&'static str>,
    pub(super) unobservable: Option<&'static str>,
    pub(super) outside: Option<Prepare>,
    pub(super) store_inside: Option<&'static str>,
    pub(super) git: bool,
    pub(super) run_hits: Vec<&'static str>,
    pub(super) fresh_store_after_same_target: bool,
    /// `XCACHE_EXECUTOR` for every cache build (`remote_exec.rs`).
    pub(super) executor: Option<String>,
    /// `XCACHE_EXECUTOR_QUEUE_WAIT` with the executor (`None`: 5 minutes).
    pub(super) executor_queue_wait: Option<&'static str>,
    /// The cargo layout every build uses (`layouts.rs`), by name; its cache builds must
    /// not say that planting is off.
    pub(super) layout: Option<&'static str>,
    /// The directory the case's checkouts, target dirs and stores are made in (`None`:
    /// the temporary directory).
    pub(super) scratch_in: Option<&'static str>,
}

impl Case {
    /// `fixture` is a directory under `fixtures/soundness/`; `program` the binary target
    /// whose behaviour is compared.
    pub fn new(fixture: &'static str, program: &'static str) -> Case {
        Case {
            command: Command::Build,
            fixture,
            program,
            shapes: vec![SameTarget, FreshTarget],
            mutation: Box::new(|_| {}),
            before: Conf::default(),
            after: Conf::default(),
            not_reproducible: None,
            stale_in_same_target: None,
            unobservable: None,
            outside: None,
            store_inside: None,
            git: false,
            run_hits: Vec::new(),
            fresh_store_after_same_target: false,
            executor: None,
            executor_queue_wait: None,
            layout: None,
            scratch_in: None,
        }
    }

    /// Every checkout, target dir and store below `dir` (`dev_shm.rs`: a file system
    /// mounted below `/dev`).
    pub fn scratch_in(mut self, dir: &'static str) -> Case {
        self.scratch_in = Some(dir);
        self
    }

    /// Every build, the cache's and plain cargo's, in one of cargo's layouts
    /// (`common::layouts`), a build dir apart beside each checkout (`{ws}.build`), set
    /// aside with its target dir.
    pub fn layout(mut self, layout: &crate::common::layouts::CargoLayout) -> Case {
        // First: a case's own variables follow, and win.
        let base = layout.env(Path::new("{ws}.build"));
        for conf in [&mut self.before, &mut self.after] {
            let own = std::mem::take(&mut conf.env);
            conf.env = base.iter().cloned().chain(own).collect();
        }
        self.layout = Some(layout.name);
        self
    }

    /// Every cache build sends its library compiles to the Execution service `uri`
    /// (`XCACHE_EXECUTOR`); plain cargo stays the reference.
    pub fn executor(mut self, uri: &str) -> Case {
        self.executor = Some(uri.to_string());
        self
    }

    /// How long a compile waits for a worker that serves its platform before it runs
    /// here (`XCACHE_EXECUTOR_QUEUE_WAIT`): short for a farm where some never are (a
    /// proc-macro on workers without this machine's linker), once per build.
    pub fn executor_queue_wait(mut self, wait: &'static str) -> Case {
        self.executor_queue_wait = Some(wait);
        self
    }

    /// `cargo clippy` on `fixture`, compared by clippy's diagnostics and cargo's exit
    /// code.
    pub fn clippy(fixture: &'static str) -> Case {
        Case {
            command: Command::Clippy,
            ..Case::new(fixture, "")
        }
    }

    /// The shapes to build (default: [`Shape::SameTarget`] and [`Shape::FreshTarget`]).
    pub fn shapes(mut self, shapes: &[Shape]) -> Case {
        self.shapes = shapes.to_vec();
        self
    }

    /// The change to the tree (files in the checkout and outside it).
    pub fn mutate(mut self, f: impl Fn(&Tree) + 'static) -> Case {
        self.mutation = Box::new(f);
        self
    }

    /// An environment variable for every build.
    pub fn env(mut self, k: &str, v: &str) -> Case {
        self.before.env.push((k.into(), v.into()));
        self.after.env.push((k.into(), v.into()));
        self
    }

    /// An environment variable for the builds before the mutation only.
    pub fn env_before(mut self, k: &str, v: &str) -> Case {
        self.before.env.push((k.into(), v.into()));
        self
    }

    /// An environment variable for the builds after the mutation only.
    pub fn env_after(mut self, k: &str, v: &str) -> Case {
        self.after.env.push((k.into(), v.into()));
        self
    }

    /// Cargo arguments for every build.
    pub fn args(mut self, args: &[&str]) -> Case {
        self.before.args.extend(args.iter().map(|a| a.to_string()));
        self.after.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Cargo arguments for the builds before the mutation only.
    pub fn args_before(mut self, args: &[&str]) -> Case {
        self.before.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Cargo arguments for the builds after the mutation only.
    pub fn args_after(mut self, args: &[&str]) -> Case {
        self.after.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The executable is not compared byte for byte, for the reason given (a case that
    /// uses this says why in a comment too).
    #[allow(
        dead_code,
        reason = "every case's executable is reproducible today; the option stays for those that will not be"
    )]
    pub fn not_reproducible(mut self, why: &'static str) -> Case {
        self.not_reproducible = Some(why);
        self
    }

    /// Plain cargo does not see the change in the target dir it built before (the
    /// reason given); the cache must give that same stale program there. Checked: the
    /// harness fails if plain cargo turns out not to be stale.
    pub fn stale_in_same_target(mut self, why: &'static str) -> Case {
        self.stale_in_same_target = Some(why);
        self
    }

    /// The change does not show in the program's output (only in its bytes).
    pub fn unobservable(mut self, why: &'static str) -> Case {
        self.unobservable = Some(why);
        self
    }

    /// Prepares the outside directory (after the fixture's `outside/` is copied there)
    /// before the first build.
    pub fn outside(mut self, f: impl Fn(&Path) + 'static) -> Case {
        self.outside = Some(Box::new(f));
        self
    }

    /// The store lives at `rel` inside each checkout instead of beside it.
    pub fn store_inside(mut self, rel: &'static str) -> Case {
        self.store_inside = Some(rel);
        self
    }

    /// Every checkout is a git repository with the fixture committed.
    pub fn git(mut self) -> Case {
        self.git = true;
        self
    }

    /// In the fresh-target shapes the report must list `package`'s build-script run as
    /// a hit.
    pub fn expect_run_hit(mut self, package: &'static str) -> Case {
        self.run_hits.push(package);
        self
    }

    /// The fresh-target shapes use the store as the same-target rebuild left it (by
    /// default they get a copy taken before it).
    pub fn fresh_store_after_same_target(mut self) -> Case {
        self.fresh_store_after_same_target = true;
        self
    }

    /// Builds every shape and panics with every difference found.
    pub fn check(self) {
        super::session::Session::new(self).check();
    }
}
