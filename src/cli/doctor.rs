//! `cargo xcache doctor`: what the configuration resolves to, and a probe object written,
//! read back and deleted in each tier, said in plain words.

use super::args::DoctorArgs;
use super::workspace::{resolve_remote_in_workspace, settings_here};
use crate::config::{BuildConfig, Env, vars};
use crate::errors::CliError;
use crate::key::compiler_id;
use crate::store::{LocalStore, RemoteStore};

pub fn run(args: DoctorArgs) -> Result<i32, CliError> {
    let (env, cwd, mut cfg) = settings_here()?;
    // The workspace's xcache.toml counts when run inside a workspace.
    let metadata = resolve_remote_in_workspace(
        Some(cfg.cargo.clone()),
        &mut cfg,
        &env,
        &cwd,
        args.remote.as_deref(),
        args.read_only,
    )?;
    let mut failures = 0;

    println!("local store: {}", cfg.store_dir.display());
    let sd = &cfg.store_dir;
    println!(
        "  size limit: {}",
        sd.max_size
            .map_or("none".to_string(), crate::store::gc::human_bytes)
    );
    if let Ok(store) = LocalStore::open(sd)
        && let Ok(r) = crate::store::gc::collect(
            &store,
            // No size and a dry run: a survey that removes nothing.
            &crate::store::gc::GcOptions {
                max_size: None,
                dry_run: true,
            },
        )
    {
        println!(
            "  holds: {} in {} entries (cargo xcache stats says more)",
            crate::store::gc::human_bytes(r.bytes),
            r.entries
        );
    }
    match &sd.trust.signer {
        Some(s) => println!("  signs what it writes with {}", s.public_key()),
        None => println!("  signs nothing (set {} to sign)", vars::SIGNING_KEY),
    }
    match &sd.trust.trusted {
        Some(t) => println!(
            "  uses only what these keys signed: {}",
            t.keys()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => println!(
            "  uses entries whoever wrote them (set {} to verify)",
            vars::TRUSTED_KEYS
        ),
    }
    match probe_local(&cfg) {
        Ok(()) => println!("  ok: wrote, read back and deleted a probe"),
        Err(e) => {
            failures += 1;
            println!("  FAILED: {e}");
            println!("  fix: set {} to a directory you can write to", vars::DIR);
        }
    }

    let rustc = env.get("RUSTC").unwrap_or("rustc");
    match compiler_id(
        std::path::Path::new(rustc),
        None,
        env.get("RUSTUP_TOOLCHAIN"),
        env.path_var().map(|p| p.as_os_str()),
    ) {
        Ok(c) => println!("compiler: {}", c.version.lines().next().unwrap_or("")),
        Err(e) => {
            failures += 1;
            println!("compiler: FAILED: {e}");
        }
    }

    let build_dir = metadata.as_ref().map(|m| {
        m.build_directory
            .clone()
            .unwrap_or_else(|| m.target_directory.clone())
            .into_std_path_buf()
    });
    println!("{}", planting(&cfg, &env, &cwd, build_dir.as_deref()));

    match &cfg.remote {
        None => println!(
            "remote store: none (set {} or `remote` in xcache.toml)",
            vars::REMOTE
        ),
        Some(spec) => {
            println!(
                "remote store: {spec}{}",
                if cfg.read_only { " (read-only)" } else { "" }
            );
            match probe_remote(spec, cfg.read_only) {
                Ok(what) => println!("  ok: {what}"),
                Err(e) => {
                    failures += 1;
                    println!("  FAILED [{}]: {e}", e.code());
                    println!("  fix: {}", remote_fix(e.code()));
                }
            }
        }
    }
    Ok(if failures == 0 { 0 } else { 1 })
}

/// Whether a build here plants, and in which of cargo's layouts (as a build's plan
/// decides it), or why not.
fn planting(
    cfg: &BuildConfig,
    env: &Env,
    cwd: &std::path::Path,
    build_dir: Option<&std::path::Path>,
) -> String {
    if !cfg.seed {
        return format!(
            "planting: off: {}=0 (units are still restored by the wrapper)",
            vars::SEED
        );
    }
    let Some(build_dir) = build_dir else {
        return "planting: not known here: run doctor inside a workspace".to_string();
    };
    let version = crate::key::cargo_version(
        &cfg.cargo,
        crate::private_dir::compilers_dir().as_deref(),
        env.path_var().map(|p| p.as_os_str()),
    )
    .unwrap_or_default();
    let home = crate::config::cargo_home(env);
    let probe = crate::plan::LayoutProbe {
        cargo: &cfg.cargo,
        cargo_version: &version,
        cwd,
        cargo_home: home.as_deref(),
        env,
        cargo_args: &[],
    };
    match crate::plan::expected_layout(&[], env, build_dir, || probe.layout()) {
        Ok(layout) => format!(
            "planting: on: {version} keeps units in its {} layout, in {}",
            layout.as_str(),
            build_dir.display()
        ),
        Err(why) => format!("planting: off: {why}"),
    }
}

fn probe_local(cfg: &BuildConfig) -> Result<(), String> {
    let store = LocalStore::open(&cfg.store_dir).map_err(|e| e.to_string())?;
    let probe = store.temp_path();
    crate::fsx::write_atomic(&probe, b"xcache doctor probe").map_err(|e| e.to_string())?;
    let back = std::fs::read(&probe).map_err(|e| e.to_string())?;
    std::fs::remove_file(&probe).map_err(|e| e.to_string())?;
    if back != b"xcache doctor probe" {
        return Err("the probe read back differently".into());
    }
    Ok(())
}

fn probe_remote(
    spec: &crate::config::RemoteSpec,
    read_only: bool,
) -> Result<&'static str, crate::errors::CacheError> {
    let remote = RemoteStore::open(spec)?;
    remote.check()?;
    if read_only {
        return Ok("reachable and readable (read-only: nothing written)");
    }
    // A store that keeps each name once keeps the probe too: its name is new each time.
    let once = spec.writes == crate::config::Writes::Once;
    let path = format!(
        "{}/doctor/probe-{}-{}",
        crate::store::LAYOUT,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let body = b"xcache doctor probe".to_vec();
    remote.put_bytes(&path, body.clone())?;
    let back = remote.get_bytes(&path)?;
    if !once {
        remote.delete(&path)?;
    }
    if back.as_deref() != Some(&body[..]) {
        return Err(crate::errors::CacheError::Remote {
            code: "remote-unavailable",
            uri: spec.display().to_string(),
            message: "the probe object read back differently".into(),
        });
    }
    Ok(if once {
        "wrote and read back a probe object (kept: the store keeps each name once)"
    } else {
        "wrote, read back and deleted a probe object"
    })
}

fn remote_fix(code: &str) -> &'static str {
    match code {
        // The message above names this remote's own credentials.
        "remote-denied" => "check the credentials the message names",
        "remote-database-invalid" => "use a database number the Redis server has",
        "remote-timed-out" => {
            "check that the server is not overloaded or paused, and is reachable from here"
        }
        "remote-bucket-missing" => "create the bucket or container, or fix its name in the URI",
        "remote-wrong-region" => "set region= in the URI or AWS_REGION to the bucket's region",
        "remote-config-invalid" => {
            "fix the URI; see `Remote stores` in the book for each service's form"
        }
        _ => "check that the server runs and is reachable from here (host, port, endpoint=)",
    }
}
