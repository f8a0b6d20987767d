//! The shim that puts build-script runs through the cache.
//!
//! cargo runs a build script's executable itself, not through `RUSTC_WRAPPER`. So when
//! the wrapper has compiled or restored a build-script executable
//! (`build/<pkg>-<hash>/build_script_build-<hash>`), it renames it to
//! `<same>.xcache-real` and puts in its place a small shell script that runs this
//! program's build-run mode ([`BUILD_RUN_COMMAND`]) with the path cargo ran. cargo then
//! hard-links the shim as `build-script-build` and runs it like any build script.
//!
//! The real executable's identity is kept in its sidecar (`key::write_artifact_identity`),
//! so a run's key does not hash it again, and seeding (`crate::seed`) finds the real
//! executable by its suffix.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::script_build::{Recipe, remove_recipe, write_recipe};
use crate::key::{content_identity, hash_file, write_artifact_identity, write_rooted_identity};

/// The hidden first argument that selects the build-run mode.
pub const BUILD_RUN_COMMAND: &str = "__xcache-build-run";

/// The suffix of the real executable next to its shim.
pub const REAL_SUFFIX: &str = ".xcache-real";

/// Whether a file of an entry is a build script's real executable (behind its shim).
pub fn is_real_executable(f: &crate::store::EntryFile) -> bool {
    f.executable && f.name.ends_with(REAL_SUFFIX)
}

/// The shim's text for this program at `exe`. When `exe` is gone (cargo-xcache was
/// uninstalled or moved and a plain `cargo build` reruns the script), the shim runs the
/// real executable directly: a missing cache never fails a build.
pub fn shim_text(exe: &Path) -> String {
    let quoted = exe.to_string_lossy().replace('\'', r"'\''");
    format!(
        "#!/bin/sh\n\
         [ -x '{quoted}' ] || for f in \"${{0%/*}}\"/*{REAL_SUFFIX}; do exec \"$f\" \"$@\"; done\n\
         exec '{quoted}' {BUILD_RUN_COMMAND} \"$0\" \"$@\"\n"
    )
}

/// True when `text` is a shim (of any executable path).
pub fn is_shim_text(text: &str) -> bool {
    let tail = format!("' {BUILD_RUN_COMMAND} \"$0\" \"$@\"");
    let lines: Vec<&str> = text.lines().collect();
    text.starts_with("#!/bin/sh\n")
        && lines.len() == 3
        && lines[1].starts_with("[ -x '")
        && lines[2].starts_with("exec '")
        && lines[2].ends_with(&tail)
}

/// The real executable of the shim cargo ran as `ran` (`build-script-build`, a hard
/// link to the shim): the one `*.xcache-real` file in its directory.
pub fn real_executable(ran: &Path) -> Option<PathBuf> {
    let dir = ran.parent()?;
    let mut found = fs::read_dir(dir).ok()?.filter_map(|e| {
        let p = e.ok()?.path();
        p.to_str()?.ends_with(REAL_SUFFIX).then_some(p)
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Replaces the build-script executable `bin` with a shim running `exe`; returns where
/// the executable went (`<bin>.xcache-real`). `digest` is the executable's content
/// digest when already known. `rooted`: the executable holds a root, and is known by
/// this key of its compile, with this recipe (`super::script_build`); else by its
/// content. On failure the executable is put back as it was.
pub fn install_shim(
    bin: &Path,
    exe: &Path,
    digest: Option<crate::key::Key>,
    rooted: Option<(crate::key::Key, Recipe)>,
) -> io::Result<PathBuf> {
    let mut real = bin.as_os_str().to_owned();
    real.push(REAL_SUFFIX);
    let real = PathBuf::from(real);
    let digest = match digest {
        Some(d) => d,
        None => hash_file(bin)?,
    };
    fs::rename(bin, &real)?;
    let result = (|| {
        match &rooted {
            Some((key, recipe)) => {
                write_recipe(&real, recipe)?;
                write_rooted_identity(&real, key, &digest)?;
            }
            None => {
                remove_recipe(&real);
                write_artifact_identity(&real, &content_identity(&digest))?;
            }
        }
        write_shim(bin, exe)
    })();
    match result {
        Ok(()) => Ok(real),
        Err(e) => {
            let _ = fs::rename(&real, bin);
            Err(e)
        }
    }
}

/// Writes a shim running `exe` at `path` (atomically, executable).
pub fn write_shim(path: &Path, exe: &Path) -> io::Result<()> {
    let tmp = crate::store::restore_temp_path(path);
    fs::write(&tmp, shim_text(exe))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_round_trip() {
        let t = shim_text(Path::new("/opt/it's/cargo-xcache"));
        assert!(is_shim_text(&t), "{t}");
        assert!(t.contains(r"'/opt/it'\''s/cargo-xcache'"));
        assert!(!is_shim_text("#!/bin/sh\necho hi\n"));
    }

    #[test]
    fn shim_runs_the_real_executable_when_the_program_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("build_script_build-0123");
        fs::write(&bin, "#!/bin/sh\necho real \"$@\"\n").unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        install_shim(&bin, &d.path().join("no-such-cargo-xcache"), None, None).unwrap();
        let link = d.path().join("build-script-build");
        fs::hard_link(&bin, &link).unwrap();
        let out = std::process::Command::new(&link).arg("x").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "real x\n");
    }

    #[test]
    fn install_keeps_the_real_executable() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("build_script_build-0123");
        fs::write(&bin, b"\x7fELF real").unwrap();
        install_shim(&bin, Path::new("/x/cargo-xcache"), None, None).unwrap();
        let real = real_executable(&d.path().join("build-script-build")).unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"\x7fELF real");
        assert!(is_shim_text(&fs::read_to_string(&bin).unwrap()));
        let mode = fs::metadata(&bin).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
    }
}
