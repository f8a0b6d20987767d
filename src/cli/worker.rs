//! `cargo xcache worker --server grpc://HOST:PORT?instance=NAME`: serves a REAPI
//! server's Execution service (see `crate::worker`) until stopped.

use super::args::WorkerArgs;
use crate::config::{Env, RemoteSpec};
use crate::errors::CliError;
use crate::worker::{Caches, DEFAULT_KEEP, Toolchain, Toolchains, WorkerSpec, serve};

pub fn run(args: WorkerArgs) -> Result<i32, CliError> {
    let env = Env::capture();
    let invalid = |value: &str, message: String| CliError::InvalidSetting {
        name: "--server".into(),
        value: value.to_string(),
        message,
    };
    let server = RemoteSpec::parse(&args.server, &env.remote_defaults())
        .map_err(|m| invalid(&args.server, m))?;
    if !matches!(server.kind, crate::config::RemoteKind::Reapi { .. }) {
        return Err(invalid(
            server.display(),
            "a worker serves a REAPI server; write grpc://HOST:PORT?instance=NAME".into(),
        ));
    }
    let keep = match &args.toolchains_keep {
        None => DEFAULT_KEEP,
        Some(v) => crate::config::parse::parse_count(v)
            .map_err(|accepted| crate::config::parse::invalid("--toolchains-keep", v, accepted))?,
    };
    let dir = match args.dir {
        Some(d) => d,
        None => crate::private_dir::private_subdir("worker").map_err(|e| CliError::Worker {
            server: server.display().to_string(),
            message: format!("no private directory for its actions ({e})"),
        })?,
    };
    // Every worker runs the toolchains compiles ship with them; one with a rustc of its
    // own also offers that (the installed route).
    let mut properties = vec![
        ("OSFamily".to_string(), std::env::consts::OS.to_string()),
        ("ISA".to_string(), std::env::consts::ARCH.replace('_', "-")),
        (
            crate::exec::wire::TOOLCHAIN_PROPERTY.to_string(),
            crate::exec::wire::SHIPPED.to_string(),
        ),
    ];
    for p in &args.properties {
        let Some((k, v)) = p.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(CliError::InvalidSetting {
                name: "--property".into(),
                value: p.clone(),
                message: "write KEY=VALUE".into(),
            });
        };
        properties.push((k.to_string(), v.to_string()));
    }
    let toolchain = toolchain(args.rustc.as_deref(), &env, &server)?;
    if let Some(t) = &toolchain {
        properties.push((
            crate::exec::wire::COMPILER_PROPERTY.to_string(),
            t.identity.clone(),
        ));
        if let Some(l) = &t.linker {
            properties.push((
                crate::exec::wire::LINKER_PROPERTY.to_string(),
                l.id.key.to_hex(),
            ));
        }
    }
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let spec = WorkerSpec {
        server: server.clone(),
        work_dir: dir.join("actions"),
        caches: Caches {
            blobs: dir.join("blobs"),
            toolchains: Toolchains::new(dir.join("toolchains"), keep),
        },
        name,
        properties,
        toolchain,
        max_actions: args.max_actions,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Worker {
            server: server.display().to_string(),
            message: format!("no async runtime ({e})"),
        })?;
    rt.block_on(serve(spec)).map_err(|e| CliError::Worker {
        server: server.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(0)
}

/// The toolchain the worker has installed: `--rustc`, else the real rustc behind
/// rustup's proxy. Without `--rustc`, a machine with no rustc still serves compiles
/// that ship their toolchain (and actions that ask for no compiler); a `--rustc` that
/// does not run is an error.
fn toolchain(
    flag: Option<&std::path::Path>,
    env: &Env,
    server: &RemoteSpec,
) -> Result<Option<Toolchain>, CliError> {
    let path = env.path_var().map(|p| p.as_os_str());
    let rustc = match flag {
        Some(r) => r.to_path_buf(),
        None => {
            let out = std::process::Command::new("rustc")
                .args(["--print", "sysroot"])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    std::path::Path::new(String::from_utf8_lossy(&o.stdout).trim())
                        .join("bin")
                        .join("rustc")
                }
                _ => {
                    eprintln!(
                        "cargo-xcache worker: no rustc installed (`rustc --print sysroot` \
                         failed); serving compiles that ship their toolchain (pass --rustc \
                         PATH for the installed route too)"
                    );
                    return Ok(None);
                }
            }
        }
    };
    match crate::key::compiler_id(&rustc, None, None, path) {
        Ok(id) => Ok(Some(Toolchain {
            linker: linker(&id, env),
            rustc,
            sysroot: id.sysroot,
            identity: id.key.to_hex(),
        })),
        Err(e) if flag.is_some() => Err(CliError::InvalidSetting {
            name: "--rustc".into(),
            value: rustc.display().to_string(),
            message: format!("{e}; pass the path of a rustc that runs"),
        }),
        Err(e) => {
            eprintln!(
                "cargo-xcache worker ({}): {e}; serving compiles that ship their toolchain \
                 (pass --rustc PATH for the installed route too)",
                server.display()
            );
            Ok(None)
        }
    }
}

/// The linker this worker's rustc links with for its host: `cc` on the PATH actions run
/// with ([`crate::key::ACTION_PATH`]), identified as a client identifies its own, with
/// the driver's variables (`LIBRARY_PATH`, …) as this worker has them. A client whose
/// identity differs (another `cc`, another libc, another `LIBRARY_PATH`) asks for
/// another value, so the server never gives this worker its links. `None`: no `cc`
/// that could be identified; the worker serves no links.
fn linker(compiler: &crate::key::CompilerId, env: &Env) -> Option<crate::key::LinkerOffer> {
    let host = compiler.host()?;
    let path = std::ffi::OsString::from(crate::key::ACTION_PATH);
    let offer = crate::key::linker_offer(&crate::key::LinkerRequest {
        program: "cc",
        cwd: std::path::Path::new("/"),
        sysroot: &compiler.sysroot,
        host,
        target: host,
        fuse_ld: &[],
        path_var: Some(&path),
        vars: env.all(),
    });
    match offer {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!(
                "cargo-xcache worker: no linker identity for cc on {} ({}); serving no links",
                crate::key::ACTION_PATH,
                e.code()
            );
            None
        }
    }
}
