//! Progress while cargo runs: an indicatif bar on a terminal (cargo's own lines are
//! printed above it), plain lines otherwise. The bar replaces cargo's own (cargo draws
//! none when its stderr is read) and says at least as much: units done of the plan's
//! estimate, elapsed time, the units in flight by name (from the wrappers' start
//! lines), and counts in the report's vocabulary that include the units seeded before
//! cargo started, so the bar ends where the summary line begins. `-q` shows nothing of
//! ours but warnings and errors, `-v` prints each unit's outcome as it happens,
//! `--color` decides whether our lines are coloured ([`Verbosity`]).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::render::{render_unit_line, section};
use crate::wrapper::{StartEvent, UnitEvent};

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

    /// `xcache:` (and `warning:`) in bold colour when colour is on.
    pub fn paint(self, line: &str) -> String {
        if !self.colored() {
            return line.to_string();
        }
        if let Some(rest) = line.strip_prefix("xcache:") {
            return format!("\u{1b}[1;36mxcache:\u{1b}[0m{rest}");
        }
        if let Some(rest) = line.strip_prefix("warning:") {
            return format!("\u{1b}[1;33mwarning\u{1b}[0m\u{1b}[1m:\u{1b}[0m{rest}");
        }
        line.to_string()
    }

    /// Prints one of our lines to stderr, unless `-q`. Every line of ours outside the
    /// progress display goes through here (or [`Verbosity::warn`]).
    pub fn note(self, line: &str) {
        if !self.quiet {
            eprintln!("{}", self.paint(line));
        }
    }

    /// Prints a warning to stderr, `-q` or not: warnings are shown once each, always.
    pub fn warn(self, line: &str) {
        eprintln!("{}", self.paint(line));
    }
}

/// The progress display of one build.
pub struct Progress {
    bar: Option<ProgressBar>,
    verbosity: Verbosity,
    /// Events already printed with `-v`.
    shown: std::sync::atomic::AtomicUsize,
}

/// How many names of units in flight the bar shows before `+N`.
const NAMES_SHOWN: usize = 4;

impl Progress {
    /// A bar when stderr is a terminal and `-q` was not given, nothing otherwise (plain
    /// lines come from cargo and from the summary). `planned` is the plan's estimate
    /// of all units; `seeded` were placed before cargo started.
    pub fn new(planned: usize, seeded: usize, verbosity: Verbosity) -> Progress {
        let quiet = Progress {
            bar: None,
            verbosity,
            shown: 0.into(),
        };
        if verbosity.quiet || !std::io::stderr().is_terminal() {
            return quiet;
        }
        let bar = ProgressBar::with_draw_target(
            Some(planned.max(seeded) as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        let name = if verbosity.colored() {
            "\u{1b}[1;36mxcache\u{1b}[0m"
        } else {
            "xcache"
        };
        // Two lines: as cargo's bar, done of planned and the units in flight (cut to
        // the terminal's width); under it, the counts in the summary line's words.
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{name} [{{bar:25}}] {{pos}}/~{{len}} {{elapsed:>3}}: {{wide_msg}}\n       {{prefix}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(seeded as u64);
        bar.set_prefix(progress_counts(seeded, &[]));
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

    /// Updates the display from what the wrappers reported so far: the units done
    /// (`events`), those in flight, and how many units count as seeded now (those
    /// placed before cargo started, less any cargo rebuilt). With `-v`, prints each
    /// unit done since the last update.
    pub fn update(&self, events: &[UnitEvent], in_flight: &[StartEvent], seeded: usize) {
        use std::sync::atomic::Ordering;
        if self.verbosity.verbose {
            let from = self.shown.load(Ordering::Relaxed);
            for e in events.iter().skip(from) {
                self.note(&render_unit_line(&e.unit));
            }
            self.shown.store(events.len().max(from), Ordering::Relaxed);
        }
        let Some(b) = &self.bar else { return };
        let n = (seeded + events.len()) as u64;
        if n > b.length().unwrap_or(0) {
            b.set_length(n);
        }
        b.set_position(n);
        b.set_prefix(progress_counts(seeded, events));
        b.set_message(in_flight_names(in_flight));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The counts in the report's vocabulary, the summary line's words:
/// `3 seeded, 2 restored, 5 compiled, 0 ran, 0 uncacheable`.
pub fn progress_counts(seeded: usize, events: &[UnitEvent]) -> String {
    let count = |name: &str| events.iter().filter(|e| section(&e.unit) == name).count();
    let mut msg = format!(
        "{seeded} seeded, {} restored, {} compiled, {} ran, {} uncacheable",
        count("restored"),
        count("compiled"),
        count("ran"),
        count("uncacheable"),
    );
    let failed = count("failed");
    if failed > 0 {
        msg.push_str(&format!(", {failed} failed"));
    }
    msg
}

/// The units in flight by name, oldest first, as cargo's own bar names them:
/// `serde, syn(run), ring(build) +2`.
pub fn in_flight_names(in_flight: &[StartEvent]) -> String {
    let names: Vec<String> = in_flight
        .iter()
        .take(NAMES_SHOWN)
        .map(|s| s.started.label())
        .collect();
    let mut msg = names.join(", ");
    if in_flight.len() > NAMES_SHOWN {
        msg.push_str(&format!(" +{}", in_flight.len() - NAMES_SHOWN));
    }
    msg
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

    #[test]
    fn units_in_flight_are_named_as_cargo_names_them() {
        let started = |package: &str, kind: &str| StartEvent {
            format_version: 1,
            pid: 1,
            started: crate::wrapper::UnitName {
                package: package.into(),
                version: "1.0.0".into(),
                crate_name: package.into(),
                kind: kind.into(),
                target: None,
            },
            start_ms: 0,
        };
        assert_eq!(in_flight_names(&[]), "");
        let flying = [
            started("serde", "lib"),
            started("ring", "build-script-run"),
            started("ring", "build-script"),
            started("app", "test"),
            started("syn", "lib"),
            started("quote", "lib"),
        ];
        assert_eq!(
            in_flight_names(&flying),
            "serde, ring(run), ring(build), app(test) +2"
        );
        assert_eq!(
            progress_counts(4, &[]),
            "4 seeded, 0 restored, 0 compiled, 0 ran, 0 uncacheable"
        );
    }
}
