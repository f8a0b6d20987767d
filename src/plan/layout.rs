//! Which of cargo's build-directory layouts (`key::Layout`) this build's units will be
//! in, decided once per build before cargo starts. Main function: [`expected_layout`].
//!
//! Seeding plants each unit where cargo will look for it, so it must know the layout
//! before cargo has put anything anywhere. It is learned from cargo itself, never from
//! its version: the switches that select the new layout (`-Zbuild-dir-new-layout`,
//! `-Zfine-grain-locking`, their `CARGO_UNSTABLE_*` variables, cargo's own opt-out
//! variable) say it at once; otherwise the same cargo, with the same environment,
//! configuration files and switches, checks an empty library in a directory of its own
//! and says (in its JSON messages) where it put it ([`Probe`]). The answer is remembered
//! in the private directory by everything that could change it, so a machine asks once
//! per cargo and configuration. When cargo cannot be asked, the build dir's own shape
//! (the legacy `.fingerprint/` or the new `build/<package>/<hash>/fingerprint/`) says
//! it; when nothing does, or cargo names a place this program does not know (a future
//! layout), planting is off, and the report says why. After the build the front-end
//! checks that cargo kept the units where the plan said.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Env;
use crate::key::{KeyHasher, Layout, Place};

/// The switches of cargo that select the new layout.
const NEW_LAYOUT_FLAGS: [&str; 2] = ["build-dir-new-layout", "fine-grain-locking"];

/// The layout the build's units will be in, or why planting cannot know it: by a
/// switch, else as `probe` learns it from cargo, else by the build dir's shape.
pub fn expected_layout(
    cargo_args: &[String],
    env: &Env,
    build_dir: &Path,
    probe: impl FnOnce() -> Result<Layout, String>,
) -> Result<Layout, String> {
    if let Some(layout) = by_switch(cargo_args, env) {
        return Ok(layout);
    }
    let asked = match probe() {
        Ok(layout) => return Ok(layout),
        Err(why) => why,
    };
    match shapes(build_dir) {
        (true, false) => Ok(Layout::Legacy),
        (false, true) => Ok(Layout::New),
        (true, true) => Err(format!(
            "{asked}; and the build dir {} holds units in both of cargo's layouts",
            build_dir.display()
        )),
        (false, false) => Err(asked),
    }
}

/// The layout a switch of the build selects, if one does: a new-layout switch or its
/// variable, or cargo's opt-out of the new layout.
pub fn by_switch(cargo_args: &[String], env: &Env) -> Option<Layout> {
    let mut flags = Vec::new();
    let mut it = cargo_args.iter().take_while(|a| *a != "--");
    while let Some(a) = it.next() {
        if a == "-Z" {
            flags.extend(it.next().cloned());
        } else if let Some(f) = a.strip_prefix("-Z") {
            flags.push(f.to_string());
        }
    }
    let by_flag = flags.iter().any(|f| NEW_LAYOUT_FLAGS.contains(&f.as_str()));
    let by_env = NEW_LAYOUT_FLAGS.iter().any(|f| {
        let var = format!("CARGO_UNSTABLE_{}", f.to_uppercase().replace('-', "_"));
        env.get(&var).is_some_and(|v| v == "true")
    });
    if by_flag || by_env {
        return Some(Layout::New);
    }
    env.get("__CARGO_TEMPORARY_BUILD_DIR_NEW_LAYOUT_OPT_OUT")
        .map(|_| Layout::Legacy)
}

/// How long cargo may take to say where it keeps a unit (it takes a fifth of a second;
/// one waiting on a lock must not hold the build up).
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the empty library cargo checks to say where it keeps units.
const PROBE_PACKAGE: &str = "xcache-layout-probe";

/// Asking the build's cargo where it keeps a unit: everything that could choose the
/// layout is the build's own (the cargo program and its version, the variables cargo
/// reads, the configuration files it finds from `cwd`, the `-Z` and `--config`
/// arguments); the unit, its target dir and build dir are the probe's.
pub struct Probe<'a> {
    pub cargo: &'a Path,
    pub cargo_version: &'a str,
    pub cwd: &'a Path,
    pub cargo_home: Option<&'a Path>,
    pub env: &'a Env,
    pub cargo_args: &'a [String],
}

impl Probe<'_> {
    /// The layout, from the memo of an earlier probe with the same inputs, else from
    /// cargo (and remembered).
    pub fn layout(&self) -> Result<Layout, String> {
        let memo = crate::private_dir::private_subdir("layouts")
            .ok()
            .map(|d| d.join(self.memo_key()));
        let read = || {
            let text = std::fs::read_to_string(memo.as_ref()?).ok()?;
            [Layout::Legacy, Layout::New]
                .into_iter()
                .find(|l| l.as_str() == text)
        };
        let _lock = match crate::private_dir::memo_or_lock(memo.as_deref(), read) {
            Ok(layout) => return Ok(layout),
            Err(lock) => lock,
        };
        let layout = self.ask()?;
        if let Some(m) = &memo {
            crate::private_dir::write_memo(m, layout.as_str().as_bytes());
        }
        Ok(layout)
    }

    /// The probe's switches: the build's `-Z` and `--config` arguments.
    /// Those that make the check of an empty library build more than it (`-Zbuild-std`
    /// builds the standard library: minutes) are left out; they do not say where units go.
    fn switches(&self) -> Vec<String> {
        let args: Vec<&String> = self.cargo_args.iter().take_while(|a| *a != "--").collect();
        let heavy = |z: &str| z.starts_with("build-std");
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if *a == "-Z" || *a == "--config" {
                let value = args.get(i + 1).map(|v| v.to_string());
                if *a == "-Z" && value.as_deref().is_some_and(heavy) {
                    continue;
                }
                out.push(a.to_string());
                out.extend(value);
            } else if a
                .strip_prefix("-Z")
                .is_some_and(|z| !z.is_empty() && !heavy(z))
                || a.starts_with("--config=")
            {
                out.push(a.to_string());
            }
        }
        out
    }

    /// Names everything that could change the answer.
    fn memo_key(&self) -> String {
        self.memo_key_with(true)
    }

    /// [`Probe::memo_key`], with the configuration files' paths (`with_paths`) or only
    /// their contents (for an answer that does not depend on where the checkout is: a
    /// moved checkout asks again otherwise).
    pub(super) fn memo_key_with(&self, with_paths: bool) -> String {
        let mut h = KeyHasher::new(if with_paths {
            "layout-probe-v1"
        } else {
            "probe-by-contents-v1"
        });
        h.str("cargo", &self.cargo.to_string_lossy())
            .str("version", self.cargo_version);
        let vars: Vec<String> = self
            .env
            .all()
            .iter()
            .filter(|(k, _)| {
                k.starts_with("CARGO_UNSTABLE_")
                    || k.starts_with("__CARGO")
                    || k.as_str() == "RUSTC_BOOTSTRAP"
                    || k.as_str() == "RUSTUP_TOOLCHAIN"
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        h.list("vars", vars.iter().map(String::as_str));
        h.list("switches", self.switches().iter().map(String::as_str));
        for f in super::rustflags::config_files(self.cwd, self.cargo_home) {
            if let Ok(text) = std::fs::read(&f) {
                if with_paths {
                    h.str("file", &f.to_string_lossy());
                }
                h.bytes("text", &text);
            }
        }
        h.finish().to_hex()
    }

    /// Writes the probe's empty library into `root`; returns its manifest.
    pub(super) fn write_empty_library(&self, root: &Path) -> Result<PathBuf, String> {
        let manifest = root.join("Cargo.toml");
        std::fs::write(
            &manifest,
            format!(
                "[package]\nname = \"{PROBE_PACKAGE}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                 [lib]\npath = \"lib.rs\"\n[workspace]\n"
            ),
        )
        .and_then(|()| std::fs::write(root.join("lib.rs"), ""))
        .map_err(|e| e.to_string())?;
        Ok(manifest)
    }

    /// The build's cargo, with the build's switches, checking the library of
    /// `manifest` into `target_dir` and `build_dir`, offline and without a wrapper
    /// (`quiet`: without cargo's status lines).
    pub(super) fn check_command(
        &self,
        manifest: &Path,
        target_dir: &Path,
        build_dir: &Path,
        quiet: bool,
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.cargo);
        cmd.arg("check").args(self.switches());
        if quiet {
            cmd.arg("--quiet");
        } else {
            // Whatever the configuration says.
            cmd.env("CARGO_TERM_QUIET", "false");
        }
        cmd.args(["--offline", "--message-format=json", "--manifest-path"])
            .arg(manifest)
            // Where the build runs: cargo finds the same configuration files.
            .current_dir(self.cwd)
            .env("CARGO_TARGET_DIR", target_dir)
            .env("CARGO_BUILD_TARGET_DIR", target_dir)
            .env("CARGO_BUILD_BUILD_DIR", build_dir)
            .env("CARGO_INCREMENTAL", "0")
            .env("RUSTC_WRAPPER", "")
            .env("RUSTC_WORKSPACE_WRAPPER", "")
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Has cargo check an empty library and reads where it put it.
    fn ask(&self) -> Result<Layout, String> {
        let fail = |why: String| format!("cargo could not be asked where it keeps units: {why}");
        let dir = tempfile::Builder::new()
            .prefix("xcache-layout-probe-")
            .tempdir()
            .map_err(|e| fail(e.to_string()))?;
        let root = dir.path();
        let manifest = self.write_empty_library(root).map_err(fail)?;
        let build_dir = root.join("build");
        let target_dir = root.join("target");
        let mut cmd = self.check_command(&manifest, &target_dir, &build_dir, true);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child =
            spawn_in_group(&mut cmd).map_err(|e| fail(format!("{}: {e}", self.cargo.display())))?;
        let mut pipes = (child.stdout.take(), child.stderr.take());
        let readers = (
            std::thread::spawn(move || read_all(pipes.0.take())),
            std::thread::spawn(move || read_all(pipes.1.take())),
        );
        let status = wait_bounded(&mut child).map_err(fail)?;
        let stdout = readers.0.join().unwrap_or_default();
        let stderr = readers.1.join().unwrap_or_default();
        if !status.success() {
            let said = String::from_utf8_lossy(&stderr);
            let said = said.lines().find(|l| l.starts_with("error")).unwrap_or("");
            return Err(fail(format!(
                "checking an empty library failed ({status}) {said}"
            )));
        }
        layout_of_messages(&stdout, &build_dir, self.cargo_version)
    }
}

/// Starts a probe's `cmd` in a process group of its own: a cargo behind a script (or a
/// proxy that does not exec) is ended with it ([`end_group`]).
pub(super) fn spawn_in_group(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0).spawn()
}

/// Ends a probe's process group and reaps it.
pub(super) fn end_group(child: &mut std::process::Child) {
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
}

/// How a probe's cargo ended, waited for at most [`PROBE_TIMEOUT`]; past it its process
/// group is ended.
pub(super) fn wait_bounded(
    child: &mut std::process::Child,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                end_group(child);
                return Err(format!(
                    "it did not answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut v);
    }
    v
}

/// The layout of the probe's unit, as cargo's JSON messages name its files under
/// `build_dir`: the legacy `<profile>/deps/`, the new `<profile>/build/<pkg>/<hash>/out/`,
/// anything else a layout this program does not know.
fn layout_of_messages(
    stdout: &[u8],
    build_dir: &Path,
    cargo_version: &str,
) -> Result<Layout, String> {
    let file: Option<PathBuf> = String::from_utf8_lossy(stdout).lines().find_map(|l| {
        let msg: serde_json::Value = serde_json::from_str(l).ok()?;
        if msg["reason"] != "compiler-artifact"
            || msg["target"]["name"] != PROBE_PACKAGE.replace('-', "_")
        {
            return None;
        }
        msg["filenames"][0].as_str().map(PathBuf::from)
    });
    let Some(file) = file else {
        return Err(format!(
            "{cargo_version} did not name the files of the unit it was asked to check; \
             planting waits for a cargo-xcache that knows this cargo"
        ));
    };
    let place = file
        .parent()
        .and_then(|d| d.strip_prefix(build_dir).ok())
        .and_then(Path::to_str)
        .and_then(Place::of_out_dir);
    match place {
        // `debug`, or `<triple>/debug` where the configuration names a target.
        Some(p) if p.profile == "debug" || p.profile.ends_with("/debug") => Ok(p.layout),
        _ => Err(format!(
            "{cargo_version} keeps units in a layout this cargo-xcache does not know \
             ({}); the wrapper still restores every unit it compiles",
            file.display()
        )),
    }
}

/// Whether the build dir's profile directories hold units in the legacy layout and in
/// the new one.
fn shapes(build_dir: &Path) -> (bool, bool) {
    let (mut legacy, mut new) = (false, false);
    let mut profiles = Vec::new();
    for e in read_dir(build_dir) {
        let p = build_dir.join(&e);
        profiles.push(p.clone());
        // `<triple>/<profile>`.
        profiles.extend(read_dir(&p).into_iter().map(|s| p.join(s)));
    }
    for p in profiles {
        legacy |= !read_dir(&p.join(".fingerprint")).is_empty();
        new |= read_dir(&p.join("build")).iter().any(|pkg| {
            read_dir(&p.join("build").join(pkg)).iter().any(|h| {
                p.join("build")
                    .join(pkg)
                    .join(h)
                    .join("fingerprint")
                    .is_dir()
            })
        });
    }
    (legacy, new)
}

fn read_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn unasked() -> Result<Layout, String> {
        Err("not asked".into())
    }

    #[test]
    fn the_layout_comes_from_cargos_switches_then_from_cargo_then_from_the_build_dir() {
        let d = tempfile::tempdir().unwrap();
        let none = env(&[]);
        for a in [
            &["-Zbuild-dir-new-layout"][..],
            &["-Z", "build-dir-new-layout"],
            &["--release", "-Zfine-grain-locking"],
        ] {
            assert_eq!(
                expected_layout(&args(a), &none, d.path(), || panic!("asked")),
                Ok(Layout::New),
                "{a:?}"
            );
        }
        let var = env(&[("CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT", "true")]);
        assert_eq!(
            expected_layout(&args(&[]), &var, d.path(), || panic!("asked")),
            Ok(Layout::New)
        );
        let opt_out = env(&[("__CARGO_TEMPORARY_BUILD_DIR_NEW_LAYOUT_OPT_OUT", "1")]);
        assert_eq!(
            expected_layout(&args(&[]), &opt_out, d.path(), || panic!("asked")),
            Ok(Layout::Legacy)
        );
        // After `--` the arguments are the program's: cargo is asked.
        assert_eq!(
            expected_layout(
                &args(&["--", "-Zbuild-dir-new-layout"]),
                &none,
                d.path(),
                || { Ok(Layout::Legacy) }
            ),
            Ok(Layout::Legacy)
        );
        // cargo's answer wins over what the build dir holds.
        std::fs::create_dir_all(d.path().join("debug/.fingerprint/foo-0123456789abcdef")).unwrap();
        assert_eq!(
            expected_layout(&args(&[]), &none, d.path(), || Ok(Layout::New)),
            Ok(Layout::New)
        );
        // Unasked: what cargo left says it; nothing, or both, leave planting off.
        assert_eq!(
            expected_layout(&args(&[]), &none, d.path(), unasked),
            Ok(Layout::Legacy)
        );
        std::fs::create_dir_all(
            d.path()
                .join("debug/build/foo/0123456789abcdef/fingerprint"),
        )
        .unwrap();
        let both = expected_layout(&args(&[]), &none, d.path(), unasked).unwrap_err();
        assert!(
            both.contains("not asked") && both.contains("both of cargo's layouts"),
            "{both}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            expected_layout(&args(&[]), &none, empty.path(), unasked),
            Err("not asked".to_string())
        );
    }

    #[test]
    fn cargos_messages_name_the_layout_or_planting_is_off() {
        let b = Path::new("/p/build");
        let msg = |file: &str| {
            format!(
                "{{\"reason\":\"compiler-artifact\",\"target\":{{\"name\":\"xcache_layout_probe\"}},\"filenames\":[\"{file}\"]}}\n"
            )
        };
        let at = |file: &str| layout_of_messages(msg(file).as_bytes(), b, "cargo 9.9.9");
        assert_eq!(
            at("/p/build/debug/deps/libxcache_layout_probe-0123.rmeta"),
            Ok(Layout::Legacy)
        );
        assert_eq!(
            at(
                "/p/build/debug/build/xcache-layout-probe/0123/out/libxcache_layout_probe-0123.rmeta"
            ),
            Ok(Layout::New)
        );
        assert_eq!(
            at("/p/build/x86_64-unknown-linux-gnu/debug/deps/libxcache_layout_probe-0123.rmeta"),
            Ok(Layout::Legacy)
        );
        for unknown in [
            "/p/build/debug/units/xcache-layout-probe/0123/libx.rmeta",
            "/elsewhere/debug/deps/libxcache_layout_probe-0123.rmeta",
        ] {
            let why = at(unknown).unwrap_err();
            assert!(
                why.contains("cargo 9.9.9") && why.contains("does not know"),
                "{why}"
            );
        }
        let silent = layout_of_messages(b"", b, "cargo 9.9.9").unwrap_err();
        assert!(silent.contains("did not name"), "{silent}");
    }

    /// The cargo these tests run with is asked; what it says is its default layout, the
    /// legacy one for the stable cargo of this crate's toolchain. Switches and
    /// configuration go into the memo's name.
    #[test]
    fn cargo_itself_says_where_it_keeps_units() {
        let ws = tempfile::tempdir().unwrap();
        let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
        let none = env(&[]);
        let no_args: Vec<String> = Vec::new();
        let probe = Probe {
            cargo: &cargo,
            cargo_version: "test",
            cwd: ws.path(),
            cargo_home: None,
            env: &none,
            cargo_args: &no_args,
        };
        assert_eq!(probe.ask(), Ok(Layout::Legacy));
        let key = probe.memo_key();
        let switched = args(&[
            "-Zfine-grain-locking",
            "-Zbuild-std=core",
            "-Z",
            "build-std",
            "--config",
            "x=1",
            "--",
            "-Zy",
        ]);
        let with = Probe {
            cargo_args: &switched,
            ..probe
        };
        assert_eq!(
            with.switches(),
            args(&["-Zfine-grain-locking", "--config", "x=1"])
        );
        assert_ne!(with.memo_key(), key);
        std::fs::create_dir_all(ws.path().join(".cargo")).unwrap();
        std::fs::write(
            ws.path().join(".cargo/config.toml"),
            "[unstable]\nbuild-dir-new-layout = true\n",
        )
        .unwrap();
        let probe = Probe {
            cargo_args: &no_args,
            ..with
        };
        assert_ne!(probe.memo_key(), key);
        let missing = Probe {
            cargo: Path::new("/nonexistent/cargo"),
            ..probe
        };
        assert!(missing.ask().unwrap_err().contains("/nonexistent/cargo"));
    }
}
