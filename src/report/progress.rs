//! Progress while cargo runs: an indicatif bar on a terminal (cargo's own lines are
//! printed above it), plain lines otherwise. Counts use the report's vocabulary and
//! include the units seeded before cargo started, so the bar ends where the summary
//! line begins. `-q` shows nothing of ours but warnings and errors, `-v` prints each
//! unit's outcome as it happens, `--color` decides whether our lines are coloured.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::render::{render_unit_line, section};
use crate::wrapper::UnitEvent;

/// How much of ours a build prints, from cargo's `-q`, `-v` and `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verbosity {
    pub quiet: bool,
    pub verbose: bool,
    /// `Some(true)`: always colour, `Some(false)`: never, `None`: when stderr is a
    /// terminal.
    pub color: Option<bool>,
}

impl Verbosity {
    /// Reads `-q`/`--quiet`, `-v`/`-vv`/`--verbose` and `--color WHEN` from cargo's
    /// arguments (before a `--`); `term_color` is `CARGO_TERM_COLOR`, which the flag
    /// overrides. A `--color` value cargo does not know is left to cargo to refuse.
    pub fn from_cargo_args(args: &[String], term_color: Option<&str>) -> Verbosity {
        let mut v = Verbosity::default();
        let mut color = term_color.map(str::to_string);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--" => break,
                "-q" | "--quiet" => v.quiet = true,
                "--verbose" => v.verbose = true,
                "--color" => color = it.next().cloned(),
                _ if a.starts_with("--color=") => color = Some(a["--color=".len()..].to_string()),
                _ if a.len() > 1 && a.starts_with('-') && !a.starts_with("--") => {
                    // Short flags may be grouped: `-vv`, `-qv` (but `-pqv` is `-p qv`).
                    let flags = &a[1..];
                    if flags.bytes().all(|b| b == b'q' || b == b'v') {
                        v.quiet |= flags.contains('q');
                        v.verbose |= flags.contains('v');
                    }
                }
                _ => {}
            }
        }
        v.color = match color.as_deref() {
            Some("always") => Some(true),
            Some("never") => Some(false),
            _ => None,
        };
        v
    }

    /// Whether our lines are coloured.
    pub fn colored(self) -> bool {
        self.color
            .unwrap_or_else(|| std::io::stderr().is_terminal())
    }

    /// `xcache:` in bold when colour is on.
    pub fn paint(self, line: &str) -> String {
        match line.strip_prefix("xcache:") {
            Some(rest) if self.colored() => format!("\u{1b}[1;36mxcache:\u{1b}[0m{rest}"),
            _ => line.to_string(),
        }
    }
}

/// The progress display of one build.
pub struct Progress {
    bar: Option<ProgressBar>,
    verbosity: Verbosity,
    seeded: usize,
    /// Events already printed with `-v`.
    shown: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// A bar when stderr is a terminal and `-q` was not given, nothing otherwise (plain
    /// lines come from cargo and from the summary). `planned` is the plan's estimate
    /// of all units; `seeded` were placed before cargo started.
    pub fn new(planned: usize, seeded: usize, verbosity: Verbosity) -> Progress {
        let quiet = Progress {
            bar: None,
            verbosity,
            seeded,
            shown: 0.into(),
        };
        if verbosity.quiet || !std::io::stderr().is_terminal() {
            return quiet;
        }
        let bar = ProgressBar::with_draw_target(
            Some(planned.max(seeded) as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} xcache [{bar:25}] {pos}/~{len} units {elapsed:>4} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(seeded as u64);
        bar.set_message(format!("{seeded} seeded"));
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress {
            bar: Some(bar),
            ..quiet
        }
    }

    /// No bar: the command runs the user's program, whose output stays its own.
    pub fn hidden(verbosity: Verbosity) -> Progress {
        Progress {
            bar: None,
            verbosity,
            seeded: 0,
            shown: 0.into(),
        }
    }

    /// True when a bar is shown (cargo's output is then routed through it).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Prints a line above the bar (cargo's lines, passed through as they are).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Prints one of our lines, unless `-q`.
    pub fn note(&self, line: &str) {
        if !self.verbosity.quiet {
            self.println(&self.verbosity.paint(line));
        }
    }

    /// Whether `update` has anything to do (a bar, or `-v` lines).
    pub fn wants_events(&self) -> bool {
        self.bar.is_some() || (self.verbosity.verbose && !self.verbosity.quiet)
    }

    /// Updates counts from the events seen so far; with `-v`, prints each new unit.
    pub fn update(&self, events: &[UnitEvent]) {
        use std::sync::atomic::Ordering;
        if self.verbosity.verbose {
            let from = self.shown.load(Ordering::Relaxed);
            for e in events.iter().skip(from) {
                self.note(&render_unit_line(&e.unit));
            }
            self.shown.store(events.len().max(from), Ordering::Relaxed);
        }
        let Some(b) = &self.bar else { return };
        let count = |name: &str| events.iter().filter(|e| section(&e.unit) == name).count();
        let n = (self.seeded + events.len()) as u64;
        if n > b.length().unwrap_or(0) {
            b.set_length(n);
        }
        b.set_position(n);
        let mut msg = format!(
            "{} seeded, {} restored, {} compiled, {} ran, {} uncacheable",
            self.seeded,
            count("restored"),
            count("compiled"),
            count("ran"),
            count("uncacheable"),
        );
        if let Some(last) = events.last() {
            msg.push_str(&format!(" · {} {}", last.unit.package, last.unit.kind));
        }
        b.set_message(msg);
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cargo_verbosity_flags_are_read() {
        let v = Verbosity::from_cargo_args(&args(&["--release", "-q"]), None);
        assert!(v.quiet && !v.verbose);
        let v = Verbosity::from_cargo_args(&args(&["-vv", "--color", "never"]), Some("always"));
        assert!(v.verbose && v.color == Some(false));
        let v = Verbosity::from_cargo_args(&args(&["--color=always"]), None);
        assert_eq!(v.color, Some(true));
        assert_eq!(v.paint("xcache: x"), "\u{1b}[1;36mxcache:\u{1b}[0m x");
        let v = Verbosity::from_cargo_args(&args(&["--", "-q"]), Some("never"));
        assert!(!v.quiet);
        assert_eq!(v.paint("xcache: x"), "xcache: x");
        // `-p` takes a value; a package named like a flag group is not a flag.
        let v = Verbosity::from_cargo_args(&args(&["-p", "quiv", "-pqv"]), None);
        assert!(!v.quiet && !v.verbose);
    }
}
