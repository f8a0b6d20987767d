//! Which cargo command runs, and what it compiles. Main types: [`CargoCommand`] and
//! [`Compiles`].

/// The cargo commands `cargo xcache` runs through the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CargoCommand {
    Build,
    Check,
    Test,
    Bench,
    Run,
    Clippy,
    Doc,
    /// `cargo install --path`.
    Install,
    /// `cargo nextest <run|list|archive>`: nextest asks cargo to build the tests.
    Nextest,
}

impl CargoCommand {
    /// cargo's name for the command (`nextest` is a cargo subcommand of its own).
    pub fn name(self) -> &'static str {
        match self {
            CargoCommand::Build => "build",
            CargoCommand::Check => "check",
            CargoCommand::Test => "test",
            CargoCommand::Bench => "bench",
            CargoCommand::Run => "run",
            CargoCommand::Clippy => "clippy",
            CargoCommand::Doc => "doc",
            CargoCommand::Install => "install",
            CargoCommand::Nextest => "nextest",
        }
    }

    /// The command runs a program of the user's (a binary, test or bench harness):
    /// its stdin, stdout and stderr are left to it, untouched.
    pub fn runs_program(self) -> bool {
        matches!(
            self,
            CargoCommand::Test | CargoCommand::Bench | CargoCommand::Run | CargoCommand::Nextest
        )
    }

    /// What `cargo clippy` passes to clippy-driver in `CLIPPY_ARGS`, as cargo-clippy
    /// computes it from `cargo_args` (the arguments after the command's name):
    /// `--no-deps`, then what follows `--`; `None` for another command.
    pub fn clippy_args(self, cargo_args: &[String]) -> Option<Vec<&str>> {
        if self != CargoCommand::Clippy {
            return None;
        }
        let end = cargo_args
            .iter()
            .position(|a| a == "--")
            .unwrap_or(cargo_args.len());
        let before = &cargo_args[..end];
        let mut args: Vec<&str> = before
            .iter()
            .filter(|a| *a == "--no-deps")
            .map(String::as_str)
            .collect();
        args.extend(cargo_args.iter().skip(end + 1).map(String::as_str));
        // `--fix` lints the selected packages only.
        if before.iter().any(|a| a == "--fix") && !args.contains(&"--no-deps") {
            args.push("--no-deps");
        }
        Some(args)
    }

    /// The variables the command's own tool sets for cargo's units before it runs
    /// cargo: `cargo clippy`'s `CLIPPY_ARGS`, each argument followed by a separator.
    pub fn tool_env(self, cargo_args: &[String]) -> Vec<(String, String)> {
        const SEPARATOR: &str = "__CLIPPY_HACKERY__";
        match self.clippy_args(cargo_args) {
            Some(args) => {
                let value: String = args.iter().map(|a| format!("{a}{SEPARATOR}")).collect();
                vec![("CLIPPY_ARGS".to_string(), value)]
            }
            None => Vec::new(),
        }
    }

    /// cargo's JSON messages can be asked for on stdout (the command prints nothing
    /// else there).
    pub fn json_messages(self) -> bool {
        !self.runs_program()
    }

    /// What follows `--` goes to a program (the test harness, the binary, clippy,
    /// nextest); for the other commands cargo takes nothing there.
    pub fn takes_trailing_args(self) -> bool {
        self.runs_program() || self == CargoCommand::Clippy
    }
}

/// How a target of the selected workspace members is compiled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetModes {
    /// Compiled as itself (a library, an executable).
    pub build: bool,
    /// Compiled as a test harness (`rustc --test`), as `cargo test` and `cargo bench` do.
    pub harness: bool,
}

impl TargetModes {
    const NONE: TargetModes = TargetModes {
        build: false,
        harness: false,
    };
    const BUILD: TargetModes = TargetModes {
        build: true,
        harness: false,
    };
    const HARNESS: TargetModes = TargetModes {
        build: false,
        harness: true,
    };
    const BOTH: TargetModes = TargetModes {
        build: true,
        harness: true,
    };

    fn any(self) -> bool {
        self.build || self.harness
    }
}

/// What a command compiles for the selected members, read from the command and the
/// target-selection flags (`--lib`, `--tests`, `--all-targets`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compiles {
    pub lib: TargetModes,
    pub bins: TargetModes,
    pub tests: TargetModes,
    pub benches: TargetModes,
    pub examples: TargetModes,
    /// Units built for the target only write metadata (`cargo check`, `clippy`, `doc`);
    /// build scripts, proc-macros and their dependencies are still built in full.
    pub metadata_only: bool,
    /// rustdoc documents the selected members (`cargo doc`).
    pub docs: bool,
    /// rustdoc compiles and runs the selected libraries' doctests (`cargo test`).
    pub doctests: bool,
    /// The profile the command builds with when none is named: `bench`, `install` and
    /// `--release` build in `release`.
    pub release: bool,
}

impl Compiles {
    /// Dev-dependencies are compiled: a test, bench or example target is.
    pub fn dev(&self) -> bool {
        self.tests.any()
            || self.benches.any()
            || self.examples.any()
            || self.lib.harness
            || self.bins.harness
    }

    /// What `command` with `cargo_args` compiles.
    pub fn of(command: CargoCommand, cargo_args: &[String]) -> Compiles {
        use CargoCommand as C;
        let flags = TargetFlags::read(cargo_args);
        let harness_command = matches!(command, C::Test | C::Bench | C::Nextest);
        // A target named on its own is compiled as the command compiles that kind.
        let unit = if harness_command {
            TargetModes::HARNESS
        } else {
            TargetModes::BUILD
        };
        let mut c = Compiles {
            lib: TargetModes::NONE,
            bins: TargetModes::NONE,
            tests: TargetModes::NONE,
            benches: TargetModes::NONE,
            examples: TargetModes::NONE,
            metadata_only: matches!(command, C::Check | C::Clippy | C::Doc),
            docs: command == C::Doc,
            doctests: false,
            release: flags.release
                || matches!(command, C::Bench)
                || (command == C::Install && !flags.debug),
        };
        if flags.any_target() {
            let all = flags.all_targets;
            if all || flags.lib {
                c.lib = if harness_command {
                    TargetModes::BOTH
                } else {
                    TargetModes::BUILD
                };
            }
            if all || flags.bins {
                c.bins = unit;
            }
            // Tests and benches are always test harnesses; examples always executables.
            // `--tests` selects every target with `test = true`: by default the library
            // and the binaries too, compiled as unit tests (`cargo check --tests` checks
            // them with `--test`).
            if all || flags.tests {
                c.tests = TargetModes::HARNESS;
                c.lib.harness = true;
                c.bins.harness = true;
            }
            if all || flags.benches {
                c.benches = TargetModes::HARNESS;
            }
            if all || flags.examples {
                c.examples = TargetModes::BUILD;
            }
            c.doctests = command == C::Test && flags.doc;
            return c;
        }
        match command {
            C::Build | C::Check | C::Clippy | C::Run | C::Install => {
                c.lib = TargetModes::BUILD;
                c.bins = TargetModes::BUILD;
            }
            C::Doc => c.lib = TargetModes::BUILD,
            C::Test | C::Nextest => {
                // Integration tests link the library and may run the binaries.
                c.lib = TargetModes::BOTH;
                c.bins = TargetModes::BOTH;
                c.tests = TargetModes::HARNESS;
                c.examples = TargetModes::BUILD;
                c.doctests = command == C::Test;
            }
            C::Bench => {
                c.lib = TargetModes::BOTH;
                c.bins = TargetModes::BOTH;
                c.benches = TargetModes::HARNESS;
            }
        }
        c
    }
}

/// The target-selection flags among cargo's arguments.
#[derive(Debug, Default)]
struct TargetFlags {
    lib: bool,
    bins: bool,
    tests: bool,
    benches: bool,
    examples: bool,
    doc: bool,
    all_targets: bool,
    release: bool,
    debug: bool,
}

impl TargetFlags {
    fn read(args: &[String]) -> TargetFlags {
        let mut f = TargetFlags::default();
        for a in args {
            let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
            match flag {
                "--" => break,
                "--lib" => f.lib = true,
                "--bins" | "--bin" => f.bins = true,
                "--tests" | "--test" => f.tests = true,
                "--benches" | "--bench" => f.benches = true,
                "--examples" | "--example" => f.examples = true,
                "--doc" => f.doc = true,
                "--all-targets" => f.all_targets = true,
                "-r" | "--release" => f.release = true,
                "--debug" => f.debug = true,
                _ => {}
            }
        }
        f
    }

    fn any_target(&self) -> bool {
        self.lib
            || self.bins
            || self.tests
            || self.benches
            || self.examples
            || self.doc
            || self.all_targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(command: CargoCommand, args: &[&str]) -> Compiles {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Compiles::of(command, &args)
    }

    #[test]
    fn commands_compile_what_cargo_does() {
        let build = of(CargoCommand::Build, &[]);
        assert_eq!(build.lib, TargetModes::BUILD);
        assert!(!build.dev() && !build.metadata_only && !build.release);
        let check = of(CargoCommand::Check, &[]);
        assert!(check.metadata_only && !check.dev());
        let test = of(CargoCommand::Test, &[]);
        assert!(test.dev() && test.doctests && test.lib.harness && test.tests.harness);
        assert!(!test.benches.any());
        let nextest = of(CargoCommand::Nextest, &["run"]);
        assert!(nextest.dev() && !nextest.doctests);
        let bench = of(CargoCommand::Bench, &[]);
        assert!(bench.release && bench.benches.harness && !bench.tests.any());
        assert!(of(CargoCommand::Install, &["--path", "."]).release);
        assert!(!of(CargoCommand::Install, &["--debug"]).release);
        let doc = of(CargoCommand::Doc, &[]);
        assert!(doc.docs && doc.metadata_only);
    }

    /// As cargo-clippy sets it (what clippy-driver then finds in its dep-info).
    #[test]
    fn clippy_args_are_what_cargo_clippy_passes() {
        let env = |command: CargoCommand, args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            command.tool_env(&args)
        };
        let clippy_args = |v: &str| vec![("CLIPPY_ARGS".to_string(), v.to_string())];
        assert_eq!(env(CargoCommand::Check, &["--", "-W", "x"]), vec![]);
        assert_eq!(env(CargoCommand::Clippy, &["--workspace"]), clippy_args(""));
        assert_eq!(
            env(
                CargoCommand::Clippy,
                &["--no-deps", "-p", "a", "--", "-W", "clippy::pedantic"]
            ),
            clippy_args(
                "--no-deps__CLIPPY_HACKERY__-W__CLIPPY_HACKERY__clippy::pedantic__CLIPPY_HACKERY__"
            )
        );
        assert_eq!(
            env(CargoCommand::Clippy, &["--fix", "--", "-D", "warnings"]),
            clippy_args(
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__--no-deps__CLIPPY_HACKERY__"
            )
        );
    }

    #[test]
    fn target_flags_narrow_or_widen() {
        let all = of(CargoCommand::Check, &["--all-targets"]);
        assert!(all.metadata_only && all.dev() && all.tests.harness && all.benches.harness);
        let lib = of(CargoCommand::Test, &["--lib"]);
        assert!(lib.lib.harness && !lib.tests.any() && !lib.doctests);
        // The library and binaries as unit tests, not built as themselves.
        let tests = of(CargoCommand::Build, &["--tests", "--", "--lib"]);
        assert!(tests.tests.harness && tests.lib == TargetModes::HARNESS);
        assert_eq!(tests.bins, TargetModes::HARNESS);
        let all = of(CargoCommand::Clippy, &["--all-targets"]);
        assert!(all.lib == TargetModes::BOTH && all.bins == TargetModes::BOTH);
    }
}
