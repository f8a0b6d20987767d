//! The worker's record read as this machine's ([`local_trace`]): its roots, its
//! toolchain and the PATH its processes searched; the script's own events left out.

use std::path::Path;

use super::roots::Roots;
use crate::exec::observed;
use crate::observe::{Op, Trace};

/// Whether `e` is the script's own doing, before it became rustc: the shell reads its
/// environment whole and looks at its directories. Its start and its exec of rustc
/// stay (a local compile's record starts the same way, behind rustup's proxy).
pub(super) fn shell_event(trace: &Trace, e: &crate::observe::Event) -> bool {
    e.pid == trace.root && e.image == 0 && !matches!(e.op, Op::Start | Op::Exec)
}

/// A name the run looked for in the action's PATH (a lookup, or a probe in one of its
/// directories) that this machine's PATH resolves to another program than the action's
/// PATH does here (by contents), if any.
pub(super) fn path_lookup_differs(trace: &Trace, local_path: Option<&str>) -> Option<String> {
    let action_dirs: Vec<&str> = crate::key::ACTION_PATH.split(':').collect();
    let mut names = std::collections::BTreeSet::new();
    for e in &trace.events {
        match e.op {
            Op::Lookup => {
                names.insert(e.path.clone());
            }
            Op::Stat | Op::Exec | Op::Spawn | Op::Read => {
                let p = Path::new(&e.path);
                if let (Some(dir), Some(name)) = (p.parent(), p.file_name())
                    && action_dirs.iter().any(|d| Path::new(d) == dir)
                {
                    names.insert(name.to_string_lossy().into_owned());
                }
            }
            _ => {}
        }
    }
    let found = |name: &str, path: &str| -> Option<String> {
        path.split(':').find_map(|d| {
            let p = Path::new(d).join(name);
            p.is_file()
                .then(|| crate::exec::digest_file(&p).ok().map(|d| d.hash))
                .flatten()
        })
    };
    names
        .into_iter()
        .find(|n| found(n, local_path.unwrap_or("")) != found(n, crate::key::ACTION_PATH))
}

/// A PATH value the worker's processes saw, as this machine's: rustc's tool
/// directories in front (the worker's sysroot's, read as the local one's) and the
/// action's PATH behind them, read as this machine's PATH, which finds the same
/// programs for every name the run looked for (`path_lookup_differs`). Any other value
/// stays as it was (the judge then keys PATH whole).
fn local_path_var(value: &str, map: &dyn Fn(&str) -> String, local: Option<&str>) -> String {
    let Some(local) = local else {
        return value.to_string();
    };
    let front = if value == crate::key::ACTION_PATH {
        Some("")
    } else {
        value
            .strip_suffix(crate::key::ACTION_PATH)
            .and_then(|f| f.strip_suffix(':'))
    };
    match front {
        Some("") => local.to_string(),
        Some(front) => {
            let dirs: Vec<String> = front.split(':').map(map).collect();
            format!("{}:{local}", dirs.join(":"))
        }
        None => value.to_string(),
    }
}

/// The worker's record with its paths read as this machine's: its roots as the local
/// ones, its toolchain as the local toolchain (the same, by the compiler identity the
/// action asked for), and the PATH its processes searched as this machine's
/// (`local_path_var`).
pub(super) fn local_trace(
    obs: observed::Observed,
    roots: &Roots,
    sysroot: &Path,
    local_path: Option<&str>,
) -> Trace {
    let worker_root = obs.input_root;
    let mut prefixes: Vec<(String, String)> = roots
        .list
        .iter()
        .map(|(r, dir)| (format!("{worker_root}/{dir}"), r.real.clone()))
        .collect();
    if let Some(s) = obs.sysroot {
        prefixes.push((s, sysroot.to_string_lossy().into_owned()));
    }
    let map = |p: &str| -> String {
        for (from, to) in &prefixes {
            if let Some(rest) = p.strip_prefix(from.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{to}{rest}");
            }
        }
        p.to_string()
    };
    let mut trace = obs.trace;
    let shell: Vec<bool> = trace
        .events
        .iter()
        .map(|e| shell_event(&trace, e))
        .collect();
    let mut i = 0;
    trace.events.retain(|_| {
        i += 1;
        !shell[i - 1]
    });
    for e in &mut trace.events {
        match e.op {
            Op::PathVar => e.path = local_path_var(&e.path, &map, local_path),
            Op::Lookup => {
                if let Some(c) = &mut e.caller {
                    *c = local_path_var(c, &map, local_path);
                }
                continue;
            }
            _ => {}
        }
        if e.path.starts_with('/') && e.op != Op::PathVar {
            e.path = map(&e.path);
        }
        if let Some(c) = &mut e.caller
            && c.starts_with('/')
        {
            *c = map(c);
        }
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_a_worker_searched_reads_as_this_machines() {
        let map = |p: &str| p.replace("/w/sysroot", "/home/u/sysroot");
        let here = "/home/u/.cargo/bin:/usr/bin:/bin";
        let local = Some(here);
        // rustc's tool directories in front of the action's PATH.
        assert_eq!(
            local_path_var(
                "/w/sysroot/lib/rustlib/x/bin:/w/sysroot/lib/rustlib/x/bin/self-contained:/usr/bin:/bin",
                &map,
                local
            ),
            "/home/u/sysroot/lib/rustlib/x/bin:/home/u/sysroot/lib/rustlib/x/bin/self-contained:\
             /home/u/.cargo/bin:/usr/bin:/bin"
        );
        assert_eq!(local_path_var(crate::key::ACTION_PATH, &map, local), here);
        // A PATH the run made of its own stays as it was (the judge keys it whole).
        assert_eq!(
            local_path_var("/opt/bin:/usr/bin", &map, local),
            "/opt/bin:/usr/bin"
        );
        assert_eq!(local_path_var("/usr/bin:/bin", &map, None), "/usr/bin:/bin");
    }
}
