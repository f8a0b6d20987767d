//! Progress while cargo runs: an indicatif bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::wrapper::{Outcome, UnitEvent};

/// The progress display of one build.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when stderr is a terminal, nothing otherwise (plain lines come from cargo
    /// and from the summary).
    pub fn new(expected_units: usize) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(expected_units as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} xcache [{bar:30}] {pos}/{len} units {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    /// No bar: the command runs the user's program, whose output stays its own.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// True when a bar is shown (cargo's output is then routed through it).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Updates counts from the events seen so far.
    pub fn update(&self, events: &[UnitEvent]) {
        let Some(b) = &self.bar else { return };
        let count = |o| events.iter().filter(|e| e.unit.outcome == o).count();
        let n = events.len() as u64;
        if n > b.length().unwrap_or(0) {
            b.set_length(n);
        }
        b.set_position(n);
        b.set_message(format!(
            "{} hit, {} miss, {} uncacheable",
            count(Outcome::Hit),
            count(Outcome::Miss),
            count(Outcome::Uncacheable)
        ));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
