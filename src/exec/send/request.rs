//! The action a compile is sent as: the `/bin/sh -c` script that finds the worker's
//! root and starts its rustc, the environment given (not what is [`withheld`]), the
//! outputs asked for and the platform properties.

use std::collections::BTreeMap;

use super::inputs::input_root;
use super::job::{Job, Origin};
use super::roots::Roots;
use crate::exec::{ExecRequest, InputRoot};

/// Variables a worker is not given: this program's own and the observer's, the
/// jobserver's (its descriptors are this machine's), the shell's, and anything that
/// looks like a credential. `PATH` is the worker's system's.
pub(super) fn withheld(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    name.starts_with("XCACHE_")
        || matches!(
            name,
            "LD_PRELOAD"
                | "LD_LIBRARY_PATH"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO_MAKEFLAGS"
                | "MAKEFLAGS"
                | "MFLAGS"
                | "PWD"
                | "OLDPWD"
                | "PATH"
                | "SSH_AUTH_SOCK"
        )
        || [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
            "_KEY",
        ]
        .iter()
        .any(|w| upper.contains(w))
}

/// The action: the script, its environment, the input root and the outputs.
/// `toolchain`: the toolchain shipped with it (its own tree), when it ships one; else
/// the action asks for a worker with this machine's compiler installed.
pub(super) fn request(
    cx: &dyn Origin,
    job: &Job<'_>,
    roots: &Roots,
    toolchain: Option<&InputRoot>,
) -> Result<ExecRequest, String> {
    let cwd = cx.cwd();
    roots.rel(cwd).ok_or_else(|| {
        format!(
            "the directory rustc runs in ({}) is under no root",
            cwd.display()
        )
    })?;
    // The dep-info and messages come back naming the worker's roots, replaced by these
    // as they are; a character the dep-info escapes (a space) would need escaping too.
    if let Some((r, _)) = roots.list.iter().find(|(r, _)| {
        r.real
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\\' | '$' | '#' | ':' | '"'))
    }) {
        return Err(format!(
            "the root {} holds a character the dep-info escapes",
            r.real
        ));
    }
    let mut env = BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
    // `cd -P .` rather than `$(pwd -P)`: no subshell, so the shell is one process,
    // the first image of the first one (see `shell_event`).
    let mut script = String::from("cd -P . || exit 125\nR=$PWD\n");
    for (name, value) in cx.env().all() {
        if withheld(name) || name.contains('=') || name.is_empty() {
            continue;
        }
        if roots.names_a_root(value) {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "the variable {name} names a root and is no shell name"
                ));
            }
            script.push_str(&format!("export {name}={}\n", roots.shell(value)));
        } else {
            env.insert(name.clone(), value.clone());
        }
    }
    script.push_str(&format!(
        "cd {} || exit 125\n",
        roots.shell(&cwd.display().to_string())
    ));
    script.push_str("exec \"$XCACHE_RUSTC\"");
    for a in cx.path_map().remap_args().iter().chain(job.args) {
        script.push(' ');
        script.push_str(&roots.shell(a));
    }
    script.push('\n');

    let mut outputs = Vec::new();
    for o in job.inv.outputs() {
        let p = cwd.join(&o.path);
        outputs.push(
            roots
                .rel(&p)
                .ok_or_else(|| format!("the output {} is under no root", p.display()))?,
        );
    }
    outputs.push(crate::exec::wire::OBSERVED.to_string());

    let platform = platform(job, toolchain.is_some());
    if let Some((_, args_file)) = &job.link {
        outputs.push(roots.rel(args_file).ok_or_else(|| {
            format!(
                "the link's command line {} is under no root",
                args_file.display()
            )
        })?);
    }
    Ok(ExecRequest {
        arguments: vec!["/bin/sh".into(), "-c".into(), script],
        env,
        working_directory: String::new(),
        inputs: input_root(cx, job, roots, toolchain)?,
        outputs,
        platform,
        cache_lookup: false,
    })
}

/// The platform properties a worker must offer to take the compile: the OS and ISA,
/// and `xcache-toolchain=shipped` when it ships its toolchain, else this machine's
/// compiler identity (and, for a link, its linker identity).
pub(super) fn platform(job: &Job<'_>, shipped: bool) -> BTreeMap<String, String> {
    let mut platform = BTreeMap::from([
        ("OSFamily".to_string(), std::env::consts::OS.to_string()),
        ("ISA".to_string(), std::env::consts::ARCH.replace('_', "-")),
    ]);
    if shipped {
        platform.insert(
            crate::exec::wire::TOOLCHAIN_PROPERTY.to_string(),
            crate::exec::wire::SHIPPED.to_string(),
        );
    } else {
        platform.insert(
            crate::exec::wire::COMPILER_PROPERTY.to_string(),
            job.compiler.key.to_hex(),
        );
    }
    if let Some((linker, _)) = &job.link {
        platform.insert(
            crate::exec::wire::LINKER_PROPERTY.to_string(),
            linker.clone(),
        );
    }
    platform
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_this_machines_plumbing_are_withheld() {
        for v in [
            "XCACHE_REMOTE_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "LD_PRELOAD",
            "CARGO_MAKEFLAGS",
        ] {
            assert!(withheld(v), "{v}");
        }
        for v in ["CARGO_PKG_NAME", "OUT_DIR", "RUSTC_BOOTSTRAP", "HOME"] {
            assert!(!withheld(v), "{v}");
        }
    }
}
