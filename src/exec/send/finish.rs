//! After the run: the worker's record judged, the variables the compile read checked,
//! the outputs fetched into place, the messages and the record read as this machine's
//! ([`finish`]).

use std::path::Path;

use super::job::{Hedge, Job, Origin, RemoteRun};
use super::outcome::{Fallback, Fell, RemoteExec, said};
use super::request::withheld;
use super::roots::Roots;
use super::toolchain::Shipped;
use super::translate::{local_trace, path_lookup_differs, shell_event};
use crate::exec::Executor;
use crate::exec::observed::{self, Confinement};
use crate::key::{DepInfo, Root, replace_root};
use crate::observe::Op;

/// The output `rel` of `run`, read whole (a dep-info file, the link line) and checked
/// against its digest.
async fn text_output(
    ex: &Executor,
    run: &crate::exec::Executed,
    rel: &str,
) -> Result<Vec<u8>, Fell> {
    let digest = run
        .outputs
        .get(rel)
        .ok_or((Fallback::Outputs, format!("the worker made no {rel}")))?;
    let text = ex
        .read(digest)
        .await
        .map_err(|e| (Fallback::Outputs, said(&e)))?
        .ok_or((Fallback::Outputs, format!("the blob of {rel} is missing")))?;
    if crate::reapi::digest_of(&text).hash != digest.hash {
        return Err((
            Fallback::Outputs,
            format!("{rel} does not match its digest"),
        ));
    }
    Ok(text)
}

/// After the run: the record judged, the variables checked, the outputs fetched into
/// place, the messages and the record read as this machine's.
pub(super) async fn finish(
    cx: &mut dyn Origin,
    job: &Job<'_>,
    roots: &Roots,
    ex: &Executor,
    run: crate::exec::Executed,
    shipped: Option<&Shipped>,
    hedge: Option<&mut dyn Hedge>,
) -> Result<RemoteRun, Fell> {
    let record = run.outputs.get(crate::exec::wire::OBSERVED).ok_or((
        Fallback::Unobserved,
        "the worker sent no record of what the compile read".into(),
    ))?;
    let bytes = ex
        .read(record)
        .await
        .map_err(|e| (Fallback::Outputs, said(&e)))?
        .ok_or((Fallback::Outputs, "the record's blob is missing".into()))?;
    let obs = observed::parse(&bytes).map_err(|m| (Fallback::Unobserved, m))?;
    // The linker's files are agreed only for an action that asked for the worker's
    // linker identity: the server gave it to a worker whose `cc`, `ld`s, C runtime
    // files, search path and driver variables hash as this machine's.
    //
    // A shipped toolchain is agreed file by file: the worker's copy holds what was
    // shipped and nothing else, so a path of it the run looked for and did not find is
    // judged as this machine's sysroot has it (absent here too, or the run saw less
    // than a compile here would).
    let (agreed_paths, toolchain_root) = match (shipped, &obs.sysroot) {
        (Some(s), Some(worker_sysroot)) => {
            let mut a = observed::Agreed::of(&obs, false);
            a.trees.clear();
            s.agreed(worker_sysroot, &mut a);
            (a, vec![worker_sysroot.clone()])
        }
        (Some(_), None) => {
            return Err((
                Fallback::Unobserved,
                "the worker's record names no toolchain for a compile that shipped one".into(),
            ));
        }
        (None, _) => {
            let a = observed::Agreed::of(&obs, job.link.is_some());
            let trees = a.trees.clone();
            (a, trees)
        }
    };
    // The code of the toolchain: what it reads of the environment is rustc's own.
    let agreed: Vec<&str> = toolchain_root.iter().map(String::as_str).collect();
    let local_sysroot = job.compiler.sysroot.to_string_lossy().into_owned();
    let absent_here = |p: &Path| {
        let here = match (&obs.sysroot, shipped) {
            (Some(w), Some(_)) => match p.strip_prefix(w) {
                Ok(rest) => Path::new(&local_sysroot).join(rest),
                Err(_) => p.to_path_buf(),
            },
            _ => p.to_path_buf(),
        };
        std::fs::symlink_metadata(here).is_err()
    };
    match observed::confinement_where(&obs, &agreed_paths, &absent_here) {
        Confinement::Confined { .. } => {}
        Confinement::Outside { path } => {
            return Err((
                Fallback::ReadOutside,
                format!("the compile read {path}, outside what it was given"),
            ));
        }
        Confinement::Unobserved(why) => return Err((Fallback::Unobserved, why)),
    }
    if run.exit_code != 0 {
        return Err((
            Fallback::CompileFailed,
            format!("rustc exited with {} on {}", run.exit_code, run.worker),
        ));
    }
    let worker_root = obs.input_root.clone();
    let own = |caller: Option<&str>| {
        caller.is_some_and(|c| agreed.iter().any(|a| Path::new(c).starts_with(a)))
    };
    // A variable read by code that is not the compiler's (a proc-macro's) reaches the
    // program as the worker had it.
    for e in obs
        .trace
        .events
        .iter()
        .filter(|e| !shell_event(&obs.trace, e))
    {
        let here = cx.env().get(&e.path);
        match e.op {
            // For a walk of the environment, `path` is the object that walked it (rustc's
            // own, to start the linker, is the toolchain's).
            Op::EnvAll if !own(Some(&e.path)) => {
                return Err((
                    Fallback::Environment,
                    format!(
                        "a proc-macro read the whole environment ({} {})",
                        e.path,
                        e.caller.as_deref().unwrap_or("?")
                    ),
                ));
            }
            // PATH is the action's (`/usr/bin:/bin`): what the toolchain's code and the
            // agreed linker's programs found through it is checked against this
            // machine's PATH (`path_lookup_differs`); any other code that read it (a
            // proc-macro) saw a value this machine does not have.
            Op::PathVar
                if !own(e.caller.as_deref())
                    && !e
                        .caller
                        .as_deref()
                        .and_then(observed::normal)
                        .is_some_and(|c| agreed_paths.files.contains(&c)) =>
            {
                return Err((
                    Fallback::Environment,
                    format!(
                        "{} read PATH, which a worker has otherwise",
                        e.caller.as_deref().unwrap_or("a proc-macro")
                    ),
                ));
            }
            Op::Env if !own(e.caller.as_deref()) => {
                // Withheld and set here, or set by the worker itself (its rustc's path);
                // `PATH` is no key's business here either (`observed`'s `ignored_env`).
                let given_otherwise = withheld(&e.path)
                    && e.path != "PATH"
                    && (here.is_some() || e.path == crate::exec::wire::RUSTC_VAR);
                let differs = given_otherwise || here.is_some_and(|v| roots.names_a_root(v));
                if differs {
                    return Err((
                        Fallback::Environment,
                        format!("a proc-macro read {}, which a worker has otherwise", e.path),
                    ));
                }
            }
            _ => {}
        }
    }

    // The worker's result stands: the compile here of the same unit, if one runs, ends
    // before anything of the worker's is put in its place.
    if let Some(h) = hedge {
        h.stop();
    }
    // The outputs, each through a temporary file renamed once it hashed to its digest;
    // the dep-info read as this machine's before it is put in place.
    let cwd = cx.cwd().to_path_buf();
    let mut bytes_down = run.bytes_down + bytes.len() as u64;
    let mut depinfo = None;
    for o in job.inv.outputs() {
        let dest = cwd.join(&o.path);
        let rel = roots.rel(&dest).unwrap_or_default();
        let digest = run
            .outputs
            .get(&rel)
            .ok_or((Fallback::Outputs, format!("the worker made no {rel}")))?;
        if o.role == "dep-info" {
            let text = text_output(ex, &run, &rel).await?;
            bytes_down += text.len() as u64;
            let local = roots.to_local(&String::from_utf8_lossy(&text), &worker_root);
            depinfo = Some((dest, local));
            continue;
        }
        bytes_down += ex
            .fetch(digest, &dest)
            .await
            .map_err(|e| (Fallback::Outputs, said(&e)))?;
    }
    // `env!`/`option_env!` reads (the dep-info names them): a variable withheld here
    // must not have been read; one whose value names a root only where the expansion
    // shows it goes no further than file paths (which the remapping covers).
    let mut roots_stay = None;
    if let Some((dest, text)) = &depinfo {
        let info = DepInfo::parse(text, &cwd);
        let mut vars = Vec::new();
        for e in &info.env {
            let here = cx.env().get(&e.name);
            // The value the compile saw (the worker's roots read as this machine's) must
            // be this machine's: not a withheld one, not one the worker set itself.
            if e.value.as_deref() != here {
                return Err((
                    Fallback::Environment,
                    format!("the compile read {}, which a worker has otherwise", e.name),
                ));
            }
            if let Some(v) = here.filter(|v| roots.names_a_root(v)) {
                vars.push((e.name.clone(), v.to_string()));
            }
        }
        if !vars.is_empty() {
            let named: Vec<Root> = roots
                .list
                .iter()
                .filter(|(r, _)| vars.iter().any(|(_, v)| v.contains(r.real.as_str())))
                .map(|(r, _)| r.clone())
                .collect();
            let stay = cx.roots_stay_out(job, &vars, &named);
            if !stay {
                return Err((
                    Fallback::Environment,
                    format!(
                        "env!({}) names this machine's paths and reaches the program",
                        vars[0].0
                    ),
                ));
            }
            roots_stay = Some(named.iter().map(|r| r.kind.token().to_string()).collect());
        }
        crate::fsx::write_atomic(dest, text.as_bytes())
            .map_err(|e| (Fallback::Outputs, format!("{}: {e}", dest.display())))?;
    }

    // The linker's command line, read as this machine's (its roots and sysroot): the
    // unit's link inputs are found from it here, as after a local link.
    if let Some((_, args_file)) = &job.link {
        let rel = roots.rel(args_file).unwrap_or_default();
        let text = text_output(ex, &run, &rel).await?;
        bytes_down += text.len() as u64;
        let mut local = roots.to_local(&String::from_utf8_lossy(&text), &worker_root);
        if let Some(s) = &obs.sysroot {
            local = replace_root(&local, s, &job.compiler.sysroot.to_string_lossy());
        }
        crate::fsx::write_atomic(args_file, local.as_bytes())
            .map_err(|e| (Fallback::Outputs, format!("{}: {e}", args_file.display())))?;
        // What the link found through PATH, this machine's PATH finds as the action's
        // did: the key holds what each name resolves to here.
        if let Some(name) = path_lookup_differs(&obs.trace, cx.env().get("PATH")) {
            return Err((
                Fallback::Linker,
                format!(
                    "this machine's PATH finds {name} elsewhere than {}",
                    crate::key::ACTION_PATH
                ),
            ));
        }
    }
    let trace = local_trace(obs, roots, &job.compiler.sysroot, cx.env().get("PATH"));
    let stdout = roots
        .to_local(&String::from_utf8_lossy(&run.stdout), &worker_root)
        .into_bytes();
    let stderr = roots
        .to_local(&String::from_utf8_lossy(&run.stderr), &worker_root)
        .into_bytes();
    Ok(RemoteRun {
        stdout,
        stderr,
        trace,
        record: RemoteExec {
            worker: Some(run.worker),
            bytes_up: run.bytes_up,
            bytes_down,
            ..RemoteExec::default()
        },
        roots_stay_out: roots_stay,
    })
}
