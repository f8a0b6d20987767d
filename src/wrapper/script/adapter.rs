//! The build-script adapter of the lifecycle: [`run_build_script`], the shim's entry,
//! and what the lifecycle asks of a run ([`Cached`] for [`Script`]): its key, replay,
//! outputs (the files it wrote in `OUT_DIR`) and an uncached rerun.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::added::Added;
use super::planted::clear_rejected_plant;
use super::unit::{MAX_FILES, Observed, Script, tree_reason};
use crate::config::{Env, WrapperConfig};
use crate::key::{
    Input, Key, LinkerRequest, PathMap, Root, RunKeyInput, artifact_identity, compiler_id,
    is_rooted_identity, linker_id, run_env, run_key_parts, run_l1_key, run_root, tree_digest,
};
use crate::observe::{Observer, before_run};
use crate::reason::{BUILD_SCRIPT_FAILED, Uncacheable};
use crate::store::{BoundBy, EntryMeta, LocalStore, PutOutcome};
use crate::wrapper::lifecycle::{
    Cached, Cx, OutFile, OutSource, Ran, Rerun, run_cached, target_root, warn_once_per_build,
};
use crate::wrapper::restore::Restored;
use crate::wrapper::shim::real_executable;
use crate::wrapper::{Outcome, UnitEvent, UnitPlace, UnitRecord, Warning};

/// Text outputs up to this size are stored with their paths tokenized; larger files are
/// stored as bytes (and are scanned for machine paths like any binary output).
const MAX_TEXT: u64 = 8 * 1024 * 1024;

/// The file at `path` if it is text (UTF-8). Its first block is read first: a C
/// library's objects and archives (megabytes) are told by it, not read whole.
fn read_text(path: &Path) -> Option<String> {
    let mut f = fs::File::open(path).ok()?;
    let mut head = vec![0u8; 4096];
    let n = crate::fsx::read_full(&mut f, &mut head).ok()?;
    head.truncate(n);
    // Not text: a byte sequence that is no character (one cut at the block's end may
    // still be).
    if std::str::from_utf8(&head).is_err_and(|e| e.error_len().is_some()) {
        return None;
    }
    io::Read::read_to_end(&mut f, &mut head).ok()?;
    String::from_utf8(head).ok()
}

/// Runs the build script cargo started as `ran` (the shim's path) through the cache and
/// returns its exit code.
pub fn run_build_script(ran: PathBuf, args: Vec<OsString>, env: Env, cwd: PathBuf) -> i32 {
    let Some(real) = real_executable(&ran) else {
        eprintln!(
            "error: xcache: failed to find the build-script executable next to {} (a `*{}` file)\n  hint: remove that directory and build again",
            ran.display(),
            crate::wrapper::REAL_SUFFIX
        );
        return 1;
    };
    let cfg = WrapperConfig::resolve(env, cwd);
    let Some(out_dir) = cfg.env.get("OUT_DIR").map(PathBuf::from) else {
        return exec_real(&real, &ran, &args, &[]);
    };
    let target_root = target_root(out_dir.parent().unwrap_or(&out_dir));
    // Paths are named from the package's workspace, as they are for its compiles.
    let root_dir = run_root(&cfg.cwd, cfg.cargo_home.as_deref());
    let pm = PathMap::new(&root_dir, Some(&target_root), cfg.cargo_home.as_deref());
    // What the run gets whether it is cached or not, so that its outputs are the same
    // either way (`XCACHE_DISABLE=1` included).
    let added = Added::new(&cfg, &pm);
    let Some(store_dir) = cfg.store_dir.clone() else {
        return exec_real(&real, &ran, &args, &added.vars);
    };
    if cfg.disabled || !cfg.build_runs {
        return exec_real(&real, &ran, &args, &added.vars);
    }
    if let Err(e) = LocalStore::open(&store_dir) {
        warn_once_per_build(&[Warning::from(&e)]);
        return exec_real(&real, &ran, &args, &added.vars);
    }
    // A run planted before cargo started that cargo runs anyway starts from the empty
    // `OUT_DIR` a fresh target dir gives it.
    clear_rejected_plant(&out_dir);
    let mut script = Script {
        real,
        ran,
        args,
        out_dir,
        target_root,
        root_dir,
        before: HashMap::new(),
        written: Vec::new(),
        file_bound: Vec::new(),
        key_parts: None,
        added,
        rooted: false,
    };
    let mut cx = Cx::new(cfg, pm).with_file_clock();
    run_cached(&mut script, &mut cx)
}

/// Runs the real executable in this process's place (same arguments, working directory
/// and environment, with `added`).
fn exec_real(real: &Path, ran: &Path, args: &[OsString], added: &[(String, String)]) -> i32 {
    let err = Command::new(real)
        .arg0(ran)
        .args(args)
        .envs(added.iter().cloned())
        .exec();
    eprintln!("error: xcache: failed to run {}: {err}", real.display());
    1
}

impl Cached for Script {
    fn record(&self, cx: &Cx) -> UnitRecord {
        let env = &cx.cfg.env;
        let crate_name = self
            .real
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .unwrap_or("build_script_build")
            .to_string();
        UnitRecord::new(
            env.get("CARGO_PKG_NAME").unwrap_or("").to_string(),
            env.get("CARGO_PKG_VERSION").unwrap_or("").to_string(),
            crate_name,
            "build-script-run".to_string(),
            Outcome::Miss,
        )
    }

    fn refusal(&self, _cx: &Cx) -> Option<Uncacheable> {
        None
    }

    /// The first-level key: the script, the variables cargo set, the toolchains.
    fn l1(&mut self, cx: &mut Cx) -> Result<Key, Uncacheable> {
        let store = cx.store.clone().ok_or(Uncacheable::Disabled)?;
        let vars = cx.cfg.env.all();
        let path_var = cx.cfg.env.path_var().map(|p| p.as_os_str());
        let script =
            artifact_identity(&self.real).map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        self.rooted = is_rooted_identity(&script);
        let rustc = cx
            .cfg
            .env
            .get("RUSTC")
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?
            .to_string();
        let compiler = compiler_id(
            Path::new(&rustc),
            store.compilers_dir().as_deref(),
            cx.cfg.rustup_toolchain.as_deref(),
            path_var,
        )
        .map_err(|_| Uncacheable::BuildScriptUnknownToolchain)?;
        let host = compiler
            .host()
            .ok_or(Uncacheable::BuildScriptUnknownToolchain)?
            .to_string();
        let target = cx.cfg.env.get("TARGET").unwrap_or(&host).to_string();
        let c_runtime = linker_id(
            &LinkerRequest {
                program: "cc",
                cwd: &cx.cfg.cwd,
                sysroot: &compiler.sysroot,
                host: &host,
                target: &target,
                fuse_ld: &[],
                path_var,
                vars,
            },
            store.linkers_dir().as_deref(),
        )
        .ok()
        .map(|l| l.key);
        let env = run_env(vars, &cx.pm);
        let mut dep_trees = Vec::new();
        for (k, v) in vars {
            let p = Path::new(v);
            if k.starts_with("DEP_") && p.is_absolute() && p.starts_with(&self.target_root) {
                let d = tree_digest(p, &self.out_dir, MAX_FILES, &cx.pm).map_err(tree_reason)?;
                dep_trees.push((k.clone(), d));
            }
        }
        let input = RunKeyInput {
            script: &script,
            compiler: &compiler.key,
            c_runtime: c_runtime.as_ref(),
            env: &env,
            tools: &self.added.tools,
            dep_trees: &dep_trees,
            c_debug_map: &self.added.takes,
            added_env: &self.added.keyed,
        };
        let key = run_l1_key(&input);
        self.key_parts = Some(run_key_parts(&input));
        cx.compiler = Some((PathBuf::from(rustc), compiler));
        Ok(key)
    }

    fn restore_dir(&self, _cx: &Cx) -> Option<PathBuf> {
        Some(self.out_dir.clone())
    }

    fn replayable(&self, cx: &Cx, meta: &EntryMeta) -> bool {
        // cargo reads the directives: every path in them must exist here.
        !PathMap::has_token(&cx.pm.expand_text(&meta.stdout))
    }

    fn restored(&mut self, _cx: &mut Cx, _key: &Key, _restored: &Restored) {}

    fn replay(&self, cx: &Cx, meta: &EntryMeta) {
        let out = cx.pm.expand_text(&meta.stdout);
        let err = cx.pm.expand_text(&meta.stderr);
        let _ = io::stdout().write_all(out.as_bytes());
        let _ = io::stderr().write_all(err.as_bytes());
    }

    /// Runs the real script with the same arguments, environment and working directory,
    /// passing its output through and keeping a copy. C objects compiled by the `cc`
    /// crate get the cache's path remapping (cargo's `trim-paths` variables, which `cc`
    /// turns into `-f*-prefix-map` flags when the compiler supports them).
    fn run(&mut self, cx: &mut Cx, observer: Option<Observer>) -> io::Result<Ran> {
        if observer.is_some() {
            self.before = before_run(&self.out_dir);
        }
        let out_dir = self.out_dir.clone();
        self.spawn(cx, &out_dir, observer, true)
    }

    fn inputs(&mut self, cx: &mut Cx, ran: &Ran) -> Result<Vec<Input>, Uncacheable> {
        let out_dir = self.out_dir.clone();
        let before = std::mem::take(&mut self.before);
        let observed = self.inputs_of(cx, ran, &out_dir, before)?;
        // The run's outputs are what it wrote: remember which, for `outputs`.
        self.written = observed.written;
        self.file_bound = observed.file_bound;
        Ok(observed.inputs)
    }

    fn bound_by_reads(&mut self) -> Vec<BoundBy> {
        std::mem::take(&mut self.file_bound)
            .into_iter()
            .map(|(root, why)| BoundBy {
                root,
                file: why,
                count: 0,
                c_file_name: true,
            })
            .collect()
    }

    /// The files the run wrote in `OUT_DIR` (what was there before and was not written
    /// again is not the run's output, and is not stored).
    fn outputs(&mut self, cx: &mut Cx, _ran: &Ran) -> Result<Vec<OutFile>, Uncacheable> {
        let mut paths = std::mem::take(&mut self.written);
        if paths.len() > MAX_FILES {
            return Err(Uncacheable::BuildScriptTooManyFiles);
        }
        paths.sort();
        paths.dedup();
        let mut files = Vec::new();
        for path in paths {
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return Err(Uncacheable::MissingOutput),
            };
            if meta.is_dir() {
                // A directory the run made stays only if a file of it is stored.
                let empty = fs::read_dir(&path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true);
                if empty {
                    return Err(Uncacheable::BuildScriptUnsupportedOutput);
                }
                continue;
            }
            if !meta.is_file() {
                return Err(Uncacheable::BuildScriptUnsupportedOutput);
            }
            let rel = path
                .strip_prefix(&self.out_dir)
                .ok()
                .and_then(Path::to_str)
                .ok_or(Uncacheable::BuildScriptUnsupportedOutput)?
                .to_string();
            // Our own temp files from an interrupted restore are not outputs.
            if rel.contains(".xcache-tmp-") {
                continue;
            }
            let text = if meta.len() <= MAX_TEXT {
                read_text(&path).map(|t| cx.pm.normalize_text(&t))
            } else {
                None
            };
            files.push(OutFile {
                role: "out".to_string(),
                name: rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                // A large file that is no program (a C library) is held by reference, as
                // its seed pack holds it: copied into the store and out of it (never
                // linked: a build script's `OUT_DIR` is the crate's to read, and anyone's
                // to edit), not compressed. Small files stay in the entry.
                shared: text.is_none()
                    && meta.permissions().mode() & 0o111 == 0
                    && meta.len() >= crate::store::objects::OBJECT_MIN_LEN,
                source: match text {
                    Some(t) => OutSource::Text(t),
                    None => OutSource::File(path.clone()),
                },
            });
        }
        Ok(files)
    }

    fn finished(&mut self, _cx: &mut Cx, _stored: Option<(&Key, &PutOutcome)>) {}

    fn outputs_follow_inputs(&self) -> bool {
        true
    }

    /// Every file under `OUT_DIR` now (the run's outputs are among them: what it wrote
    /// there). A few files and most of a C library's run's judging (its compiler read
    /// hundreds of headers, each hashed) then leave cargo's critical path.
    fn possible_outputs(&self, _cx: &Cx) -> Option<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.out_dir.clone()];
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).ok()? {
                let e = e.ok()?;
                let t = e.file_type().ok()?;
                if t.is_dir() {
                    dirs.push(e.path());
                } else {
                    out.push(e.path());
                }
                if out.len() + dirs.len() > MAX_FILES {
                    return None;
                }
            }
        }
        Some(out)
    }

    /// cargo reads the run's output (printed already) and `OUT_DIR`, which the store
    /// only reads.
    fn may_store_in_background(&self, _cx: &Cx) -> bool {
        true
    }

    fn failure_code(&self) -> &'static str {
        BUILD_SCRIPT_FAILED
    }

    fn rerun(&mut self, cx: &mut Cx, scratch: &Path) -> Result<Rerun, String> {
        std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
        let observer = cx.observer().map_err(|u| u.to_string())?;
        let ran = self
            .spawn(cx, scratch, Some(observer), false)
            .map_err(|e| e.to_string())?;
        if ran.code != 0 {
            return Err(format!("the uncached run failed ({})", ran.code));
        }
        let Observed {
            mut inputs,
            written,
            ..
        } = self
            .inputs_of(cx, &ran, scratch, HashMap::new())
            .map_err(|u| u.to_string())?;
        // What names the scratch directory names `OUT_DIR` in the recorded run.
        let text = scratch.display().to_string();
        let real = self.out_dir.display().to_string();
        for i in &mut inputs {
            i.name = i.name.replace(&text, &real);
            i.state = i.state.replace(&text, &real);
        }
        let files = written
            .into_iter()
            .filter(|p| p.is_file())
            .filter_map(|p| {
                let rel = p.strip_prefix(scratch).ok()?.to_str()?.to_string();
                Some((rel, p))
            })
            .collect();
        Ok(Rerun {
            files,
            stdout: ran.stdout,
            inputs,
        })
    }

    /// The roots the path check leaves the run bound to ([`Script::checked_roots`]).
    fn roots_to_bind(
        &mut self,
        cx: &mut Cx,
        l1: &Key,
        ran: &Ran,
        inputs: &[Input],
        files: &[OutFile],
    ) -> Option<(Vec<Root>, String)> {
        self.checked_roots(cx, l1, ran, inputs, files)
    }

    /// Where cargo keeps the run: seeding pairs it with the units that read its
    /// `OUT_DIR` (`UnitPlace::run_dir`).
    fn complete_event(&self, cx: &Cx, ev: &mut UnitEvent) {
        ev.key_parts = self.key_parts.clone();
        let (Some(name), Ok(rel)) = (
            crate::key::Place::run_of_out_dir(&self.out_dir, &self.target_root),
            self.out_dir.strip_prefix(&self.target_root),
        ) else {
            return;
        };
        ev.place = Some(UnitPlace {
            target_root: self.target_root.clone(),
            out_dir: rel.to_string_lossy().into_owned(),
            unit_dir: name.clone(),
            run_dir: Some(name),
            cwd: self.root_dir.clone(),
            manifest_dir: cx.cfg.cwd.clone(),
            deps: Vec::new(),
            linker: None,
            incremental: false,
            script_compile: false,
            source: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file is text exactly when it is UTF-8 whole, whatever its first block holds: a
    /// character cut at the block's end, a bad byte after it.
    #[test]
    fn a_file_is_text_when_it_is_utf8_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("ascii", b"cargo:rustc-cfg=x\n".to_vec()),
            ("object", b"\x7fELF\x02\x01\x01\0\0\0\xff\xfe".to_vec()),
            ("cut", {
                let mut v = vec![b'a'; 4095];
                v.extend("é and more".as_bytes());
                v
            }),
            ("bad-late", {
                let mut v = vec![b'a'; 5000];
                v.push(0xff);
                v
            }),
            ("bad-at-end-of-block", {
                let mut v = vec![b'a'; 4095];
                v.push(0xc3);
                v.push(b'a');
                v
            }),
        ];
        for (name, bytes) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(read_text(&p), String::from_utf8(bytes).ok(), "{name}");
        }
    }
}
