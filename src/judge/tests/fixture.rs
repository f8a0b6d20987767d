//! The world the judge's tests judge in: a [`Machine`] (a checkout, its target dir
//! and a `CARGO_HOME`, real files in a temporary directory) and the helpers that ask
//! the judge about records made there.

use std::path::PathBuf;

use crate::judge::*;

/// A checkout, its target dir inside it and a `CARGO_HOME` beside it, in a temporary
/// directory of its own (by its real path: the canonical state is judged by it).
pub(super) struct Machine {
    _tmp: tempfile::TempDir,
    pub(super) base: PathBuf,
    pub(super) ws: PathBuf,
    pub(super) target: PathBuf,
    pub(super) home: PathBuf,
}

impl Machine {
    pub(super) fn new() -> Machine {
        Machine::at("ws")
    }

    /// A machine whose checkout is at `rel` below its temporary directory.
    pub(super) fn at(rel: &str) -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let ws = base.join(rel);
        let target = ws.join("target");
        let home = base.join("cargo-home");
        for d in [&ws.join("src"), &target, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        Machine {
            _tmp: tmp,
            base,
            ws,
            target,
            home,
        }
    }

    pub(super) fn pm(&self) -> PathMap {
        PathMap::new(&self.ws, Some(&self.target), Some(&self.home))
    }

    /// Writes `text` at `rel` below the checkout and returns its path.
    pub(super) fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.ws.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A place where nothing but this machine's roots are known: every variable unset,
    /// no names, no host CPU, no linker.
    pub(super) fn here(&self, mode: Mode) -> Here<'static> {
        Here {
            pm: self.pm(),
            env: Box::new(|_| EnvNow::Unset),
            env_names: Box::new(|| None),
            host_cpu: Box::new(|| None),
            linker: Box::new(|_| None),
            mode,
        }
    }

    pub(super) fn judge(&self, mode: Mode) -> Judge<'static> {
        Judge::new(self.here(mode))
    }
}

/// A path below the checkout, as recorded.
pub(super) fn ws(rel: &str) -> String {
    format!("{}/{rel}", RootKind::Cwd.token())
}

/// A path below the target dir, as recorded.
pub(super) fn tgt(rel: &str) -> String {
    format!("{}/{rel}", RootKind::Target.token())
}

pub(super) fn input(kind: InputKind, name: impl Into<String>, state: impl Into<String>) -> Input {
    Input::new(kind, name, state)
}

/// The inputs put aside, or the mismatch.
pub(super) fn verdict(j: &Judge, inputs: &[Input]) -> Result<Vec<Input>, Mismatch> {
    j.check(inputs)
        .map(|aside| aside.into_iter().cloned().collect())
}

/// What was found instead of `input`, which must not hold.
pub(super) fn found(j: &Judge, input: &Input) -> String {
    let m = verdict(j, std::slice::from_ref(input)).expect_err("holds");
    assert_eq!(m.input, *input);
    m.now
}

pub(super) fn holds(j: &Judge, inputs: &[Input]) -> bool {
    match verdict(j, inputs) {
        Ok(aside) => {
            assert!(aside.is_empty(), "put aside: {aside:?}");
            true
        }
        Err(_) => false,
    }
}

pub(super) fn with_env(here: Here<'static>, vars: &[(&str, EnvNow)]) -> Here<'static> {
    let vars: Vec<(String, EnvNow)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Here {
        env: Box::new(move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map_or(EnvNow::Unset, |(_, v)| v.clone())
        }),
        ..here
    }
}
