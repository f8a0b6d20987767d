//! What a build-script run's path check (`run_check`) decides: whether the run is made
//! again at aliased roots, within what time and CPU, or paired with an earlier run, and
//! the roots its record stays bound to ([`Script::checked_roots`]).

use std::ffi::OsString;
use std::time::Duration;

use super::unit::Script;
use crate::key::{Input, Key, Root};
use crate::wrapper::lifecycle::{Cx, OutFile, Ran};
use crate::wrapper::run_check::{self, PathVerdict, Second};
use crate::wrapper::script_build::read_recipe;

/// The longest run that is made a second time whole for its path check (`run_check`):
/// a longer one (a C library's run compiles for seconds) is made again only when it
/// compiled (the second run takes those compiles from it), else bound to its roots.
const CHECK_LIMIT_MS: u64 = 1000;

/// How long the path check's second run may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

impl Script {
    /// A run is stored free of its roots only when its path check shows it used them
    /// as paths only (`run_check`: the second run starts from an empty `OUT_DIR`, and
    /// must write what the first run wrote), or a run of it at other places did
    /// (`run_check::paired`); else it is bound to them.
    pub(super) fn checked_roots(
        &mut self,
        cx: &mut Cx,
        l1: &Key,
        ran: &Ran,
        inputs: &[Input],
        files: &[OutFile],
    ) -> Option<(Vec<Root>, String)> {
        // A long run is made again only when it compiled, which the second run takes
        // from it: then given half the first's time (at least two seconds) of CPU.
        let long = cx.run_ms > CHECK_LIMIT_MS;
        let compiles = ran
            .trace
            .as_ref()
            .map(|t| run_check::compiles(t, &self.out_dir))
            .unwrap_or_default();
        let recipe = self.rooted.then(|| read_recipe(&self.real)).flatten();
        let verdict = if long && compiles.is_empty() {
            PathVerdict::Unchecked(format!(
                "the run took {} ms; runs over {CHECK_LIMIT_MS} ms are not made twice",
                cx.run_ms
            ))
        } else {
            let env: Vec<(OsString, OsString)> = std::env::vars_os()
                .chain(
                    self.added
                        .vars
                        .iter()
                        .map(|(k, v)| (OsString::from(k), OsString::from(v))),
                )
                .collect();
            let second = Second {
                program: &self.real,
                arg0: &self.ran,
                args: &self.args,
                cwd: &cx.cfg.cwd,
                env,
                out_dir: &self.out_dir,
                target_root: &self.target_root,
                timeout: CHECK_TIMEOUT,
                // Counted in CPU, not in time: the second run waits for a core at the
                // lowest priority while the build keeps them busy.
                cpu_budget: long
                    .then(|| Duration::from_millis((cx.run_ms / 2).max(2 * CHECK_LIMIT_MS))),
                compiles,
                rustc: sysroot_rustc(cx),
                rooted: self.rooted.then_some(recipe.as_ref()),
            };
            run_check::check(&second, &cx.pm, &ran.stdout, files)
        };
        // Too long to make twice: an earlier run of the same script on the same inputs
        // at roots of other lengths, stored bound, is the second run (see
        // `run_check::paired`).
        let verdict = match verdict {
            PathVerdict::Unchecked(why) => match cx.store.as_ref() {
                Some(store) => run_check::paired(store, l1, &cx.pm, inputs, &ran.stdout, files)
                    .unwrap_or(PathVerdict::Unchecked(why)),
                None => PathVerdict::Unchecked(why),
            },
            v => v,
        };
        let why = match &verdict {
            PathVerdict::PathsOnly => None,
            PathVerdict::PairedWith(roots) => {
                let left: Vec<Root> = cx
                    .pm
                    .roots()
                    .iter()
                    .filter(|r| !roots.contains(&r.kind))
                    .cloned()
                    .collect();
                return (!left.is_empty()).then(|| {
                    (
                        left,
                        "path check: paired with an earlier run at other places of the other roots only"
                            .to_string(),
                    )
                });
            }
            PathVerdict::Differs(what) => Some(format!(
                "path check: run again at aliases of its roots, it changed {what}"
            )),
            PathVerdict::Unchecked(why) => Some(format!("path check not made: {why}")),
        };
        why.map(|why| (cx.pm.roots().to_vec(), why))
    }
}

/// The run's compiler (`RUSTC`) and its `rustc -vV`, where it is the compiler's own
/// `bin/rustc` in its sysroot: a program whose version answers are built in (not a
/// wrapper or a proxy, which could answer with something made of where it is), so the
/// path check's second run may be given them without starting it.
fn sysroot_rustc(cx: &Cx) -> Option<(String, String)> {
    let (rustc, id) = cx.compiler.as_ref()?;
    let real = std::fs::canonicalize(rustc).ok()?;
    if real != std::fs::canonicalize(id.sysroot.join("bin").join("rustc")).ok()? {
        return None;
    }
    Some((rustc.to_str()?.to_string(), id.version.clone()))
}
