//! The layouts cargo keeps units in, for tests that run one scenario in each: its legacy
//! one (the build dir is the target dir), a build dir apart (`CARGO_BUILD_BUILD_DIR`),
//! and the new layout (on the nightly toolchain), alone and with a build dir apart.

use std::path::{Path, PathBuf};

/// One way cargo keeps a build's units.
#[derive(Clone, Debug)]
pub struct CargoLayout {
    pub name: &'static str,
    /// The nightly toolchain's directory of programs, put first on `PATH` (its cargo,
    /// rustc, rustdoc and clippy; rustup's proxies would follow `RUSTUP_TOOLCHAIN`), its
    /// cargo named by `CARGO` too.
    nightly_bin: Option<PathBuf>,
    /// The build dir is set apart from the target dir.
    pub build_dir_apart: bool,
}

impl CargoLayout {
    /// Every layout this machine can run: the new ones only with a nightly toolchain
    /// (their absence is printed, with why).
    pub fn all() -> Vec<CargoLayout> {
        let mut all = vec![
            CargoLayout {
                name: "legacy",
                nightly_bin: None,
                build_dir_apart: false,
            },
            CargoLayout {
                name: "build-dir",
                nightly_bin: None,
                build_dir_apart: true,
            },
        ];
        match nightly_bin() {
            Some(bin) => {
                for (name, apart) in [("new", false), ("new-build-dir", true)] {
                    all.push(CargoLayout {
                        name,
                        nightly_bin: Some(bin.clone()),
                        build_dir_apart: apart,
                    });
                }
            }
            None => println!(
                "cargo's new layout is not tried: no nightly toolchain is installed \
                 (rustup toolchain install nightly)"
            ),
        }
        all
    }

    /// Every layout but the legacy one (which the other tests cover).
    pub fn others() -> Vec<CargoLayout> {
        CargoLayout::all()
            .into_iter()
            .filter(|l| l.name != "legacy")
            .collect()
    }

    /// The new layout.
    pub fn is_new(&self) -> bool {
        self.nightly_bin.is_some()
    }

    /// The variables that select this layout for a build whose build dir (when apart)
    /// is `build_dir`: the new layout by cargo's `CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT`, so
    /// that every command (`nextest` too) takes it.
    pub fn env(&self, build_dir: &Path) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(bin) = &self.nightly_bin {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin.clone()];
            dirs.extend(std::env::split_paths(&path));
            let path = std::env::join_paths(dirs).unwrap();
            env.push(("PATH".into(), path.to_string_lossy().into_owned()));
            // The cargo a subcommand runs (the test's own is the stable one).
            env.push(("CARGO".into(), bin.join("cargo").display().to_string()));
            env.push(("CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT".into(), "true".into()));
        }
        if self.build_dir_apart {
            env.push((
                "CARGO_BUILD_BUILD_DIR".into(),
                build_dir.display().to_string(),
            ));
        }
        env
    }

    /// Asserts that nothing of cargo's records of units went to `target_dir` when the
    /// build dir is apart.
    pub fn assert_records_apart(&self, target_dir: &Path) {
        self.assert_records_apart_in(target_dir, "debug");
    }

    /// [`Self::assert_records_apart`] for the profile directory `profile` (`release`).
    pub fn assert_records_apart_in(&self, target_dir: &Path, profile: &str) {
        if !self.build_dir_apart {
            return;
        }
        for records in [".fingerprint", "build", "deps"] {
            let p = target_dir.join(profile).join(records);
            assert!(!p.exists(), "{}: {}", self.name, p.display());
        }
    }
}

/// The nightly toolchain's `bin` directory, if one is installed.
pub fn nightly_bin() -> Option<PathBuf> {
    let out = std::process::Command::new("rustup")
        .args(["which", "cargo", "--toolchain", "nightly"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let cargo = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(cargo.parent()?.to_path_buf())
}

/// As `(&str, &str)` pairs, the form the helpers take.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
