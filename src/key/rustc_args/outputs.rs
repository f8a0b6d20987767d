//! The files a rustc invocation writes: their stem, whether it links, the outputs of a
//! library or a linked unit, its dep-info file and its profile's directory.

use std::path::{Path, PathBuf};

use super::invocation::{CrateKind, Output, RustcInvocation};

impl RustcInvocation {
    /// `crate_name` + `extra_filename`: the stem cargo gives every output.
    pub fn stem(&self) -> String {
        format!(
            "{}{}",
            self.crate_name.as_deref().unwrap_or("unknown"),
            self.extra_filename
        )
    }

    /// True if this invocation runs the linker: a proc-macro, dylib, executable, build
    /// script or test harness with `--emit=link`. (`cargo check` of a binary only
    /// writes metadata, like a library.)
    pub fn links(&self) -> bool {
        self.emit.link
            && matches!(
                self.kind(),
                CrateKind::ProcMacro
                    | CrateKind::Dylib
                    | CrateKind::Cdylib
                    | CrateKind::Bin
                    | CrateKind::BuildScript
                    | CrateKind::Test
            )
    }

    /// The files a cacheable invocation writes (Linux naming for linked outputs).
    pub fn outputs(&self) -> Vec<Output> {
        if !self.links() {
            return self
                .lib_outputs()
                .into_iter()
                .map(|(role, path)| Output {
                    role,
                    path,
                    executable: false,
                })
                .collect();
        }
        let Some(dir) = &self.out_dir else {
            return Vec::new();
        };
        let stem = self.stem();
        let mut out = vec![match self.kind() {
            CrateKind::ProcMacro | CrateKind::Dylib | CrateKind::Cdylib => Output {
                role: "dylib",
                path: dir.join(format!("lib{stem}.so")),
                executable: true,
            },
            _ => Output {
                role: "executable",
                path: dir.join(&stem),
                executable: true,
            },
        }];
        if self.emit.dep_info {
            out.push(Output {
                role: "dep-info",
                path: dir.join(format!("{stem}.d")),
                executable: false,
            });
        }
        out
    }

    /// The files a library (rlib) invocation writes, as (role, path).
    pub fn lib_outputs(&self) -> Vec<(&'static str, PathBuf)> {
        let Some(dir) = &self.out_dir else {
            return Vec::new();
        };
        let stem = self.stem();
        let mut out = Vec::new();
        if self.emit.link {
            out.push(("rlib", dir.join(format!("lib{stem}.rlib"))));
        }
        if self.emit.metadata {
            out.push(("rmeta", dir.join(format!("lib{stem}.rmeta"))));
        }
        if self.emit.dep_info {
            out.push(("dep-info", dir.join(format!("{stem}.d"))));
        }
        out
    }

    /// The profile's directory (`debug`, `release`): the parent of `--out-dir`'s `deps`
    /// (or `examples`, where cargo compiles examples), or of `build` for a build script
    /// (`debug/build/<pkg>-<hash>`) and for every unit of cargo's new layout
    /// (`debug/build/<pkg>/<hash>/out`, see `key::Layout`).
    pub fn profile_dir(&self) -> Option<String> {
        let dir = self.out_dir.as_ref()?;
        let name_up = |n: usize| dir.ancestors().nth(n).and_then(Path::file_name);
        let parent = if dir.file_name()? == "deps" || dir.file_name()? == "examples" {
            dir.parent()?
        } else if name_up(1) == Some("build".as_ref()) {
            dir.parent()?.parent()?
        } else if name_up(0) == Some("out".as_ref()) && name_up(3) == Some("build".as_ref()) {
            dir.ancestors().nth(4)?
        } else {
            dir
        };
        Some(parent.file_name()?.to_string_lossy().into_owned())
    }

    /// The dep-info file rustc writes, if asked for.
    pub fn depinfo_path(&self) -> Option<PathBuf> {
        if !self.emit.dep_info {
            return None;
        }
        Some(self.out_dir.as_ref()?.join(format!("{}.d", self.stem())))
    }
}
