//! cargo's output in a build: [`HeldStderr`], its stderr held back while cargo runs
//! before the plan, and [`CargoStdout`], its JSON messages read as they come for the
//! units it found fresh.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};

use crate::cli::fresh::FreshUnits;

/// cargo's stderr when cargo starts before the plan: held back until the plan is made,
/// then shown as it comes (or dropped, when the plan fails and says why itself).
pub(super) struct HeldStderr {
    state: std::sync::Arc<std::sync::Mutex<Held>>,
    reader: std::thread::JoinHandle<()>,
}

enum Held {
    Holding(Vec<String>),
    Passing,
    Dropping,
}

impl HeldStderr {
    /// Reads `child`'s stderr; with `our_locks` (cargo started while the front-end held
    /// its build dir's locks), cargo's saying that it waits for them is dropped, up to its
    /// first line that is not about a lock.
    pub(super) fn read(child: &mut std::process::Child, our_locks: bool) -> Option<HeldStderr> {
        let err = child.stderr.take()?;
        let state = std::sync::Arc::new(std::sync::Mutex::new(Held::Holding(Vec::new())));
        let shared = std::sync::Arc::clone(&state);
        let reader = std::thread::spawn(move || {
            use std::io::Write;
            let mut waiting = our_locks;
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if waiting {
                    if crate::plan::is_lock_wait(&line) {
                        continue;
                    }
                    // (A wait for the package cache's lock comes before, on a busy
                    // machine, and is shown.)
                    waiting = line
                        .trim_start()
                        .starts_with("Blocking waiting for file lock");
                }
                let Ok(mut state) = shared.lock() else {
                    return;
                };
                match &mut *state {
                    Held::Holding(lines) => lines.push(line),
                    Held::Passing => {
                        let _ = writeln!(std::io::stderr().lock(), "{line}");
                    }
                    Held::Dropping => {}
                }
            }
        });
        Some(HeldStderr { state, reader })
    }

    /// Shows what was held, then every line as it comes.
    pub(super) fn release(&self) {
        use std::io::Write;
        if let Ok(mut state) = self.state.lock() {
            if let Held::Holding(lines) = &*state {
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
            *state = Held::Passing;
        }
    }

    pub(super) fn drop_all(self) {
        if let Ok(mut state) = self.state.lock() {
            *state = Held::Dropping;
        }
    }

    /// Waits for the end of cargo's stderr (after cargo exited).
    pub(super) fn join(self) {
        self.release();
        let _ = self.reader.join();
    }
}

/// Reads cargo's JSON messages (on its stdout when piped) as they come, noting the units
/// it found fresh and passing the lines on when the user asked for the JSON.
fn read_cargo_stdout(
    child: &mut std::process::Child,
    fresh: &std::sync::Arc<std::sync::Mutex<FreshUnits>>,
    pass_through: bool,
) -> Option<std::thread::JoinHandle<()>> {
    let out = child.stdout.take()?;
    let fresh = std::sync::Arc::clone(fresh);
    Some(std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if pass_through {
                use std::io::Write;
                let _ = writeln!(stdout, "{line}");
            }
            if let Ok(mut f) = fresh.lock() {
                f.read_message(&line);
            }
        }
    }))
}

/// cargo's stdout, where the build reads its JSON messages: the units it found fresh,
/// and the reader of the messages of the cargo that runs (one cargo a build).
pub(super) struct CargoStdout {
    fresh: Arc<Mutex<FreshUnits>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Whether the lines are passed on (the user asked for the JSON).
    pass_through: bool,
}

impl CargoStdout {
    pub(super) fn new(pass_through: bool) -> CargoStdout {
        CargoStdout {
            fresh: Arc::new(Mutex::new(FreshUnits::default())),
            reader: None,
            pass_through,
        }
    }

    /// Reads `child`'s stdout, when it is piped ([`read_cargo_stdout`]).
    pub(super) fn read(&mut self, child: &mut std::process::Child) {
        self.reader = read_cargo_stdout(child, &self.fresh, self.pass_through);
    }

    /// Whether a cargo's stdout is being read.
    pub(super) fn is_read(&self) -> bool {
        self.reader.is_some()
    }

    /// Waits for the end of cargo's messages (after cargo exited).
    pub(super) fn join(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// The units cargo found fresh, once its messages are read.
    pub(super) fn into_fresh(self) -> FreshUnits {
        Arc::try_unwrap(self.fresh)
            .ok()
            .and_then(|f| f.into_inner().ok())
            .unwrap_or_default()
    }
}
