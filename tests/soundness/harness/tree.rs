//! The files of a case: fixture checkouts, the directory outside them, and the
//! helpers mutations use ([`Tree`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::fixtures_dir;

/// What a mutation may touch: the checkout, and the case's directory outside it (shared
/// by every checkout of the case, as a machine's `/usr/lib` is). A mutation runs once per
/// checkout, so what it does outside must be idempotent (the helpers here are).
pub struct Tree {
    pub ws: PathBuf,
    pub outside: PathBuf,
}

impl Tree {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.ws.join(rel)
    }

    /// Writes `text` to `rel` in the checkout, creating parent directories.
    pub fn write(&self, rel: &str, text: &str) {
        write_file(&self.ws.join(rel), text);
    }

    /// Replaces `from` (which must occur) with `to` in `rel`.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.ws.join(rel);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            text.contains(from),
            "{} does not contain {from:?}",
            p.display()
        );
        std::fs::write(&p, text.replace(from, to)).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        let p = self.ws.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).unwrap(),
            Ok(_) => std::fs::remove_file(&p).unwrap(),
            Err(e) => panic!("{}: {e}", p.display()),
        }
    }

    /// Makes `rel` a symbolic link to `target` (relative to the link's directory),
    /// replacing what was there.
    pub fn symlink(&self, rel: &str, target: &str) {
        let p = self.ws.join(rel);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, &p).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.ws.join(rel)).unwrap();
    }

    pub fn make_executable(&self, rel: &str) {
        let p = self.ws.join(rel);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Writes `text` to `rel` in the outside directory (idempotent).
    pub fn write_outside(&self, rel: &str, text: &str) {
        write_file(&self.outside.join(rel), text);
    }

    /// (Re)builds `lib<name>.a` in `rel_dir` of the outside directory from `c_source`.
    pub fn static_lib_outside(&self, rel_dir: &str, name: &str, c_source: &str) {
        static_lib(&self.outside.join(rel_dir), name, c_source);
    }
}

pub fn write_file(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Compiles `c_source` into `dir/lib<name>.a` with `cc` and `ar` (relative paths, no
/// debug info: the archive names no machine path).
pub fn static_lib(dir: &Path, name: &str, c_source: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.c")), c_source).unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("cc").args([
        "-c",
        "-O1",
        "-fPIC",
        &format!("{name}.c"),
        "-o",
        &format!("{name}.o"),
    ]));
    let _ = std::fs::remove_file(dir.join(format!("lib{name}.a")));
    run(Command::new("ar").args(["crsD", &format!("lib{name}.a"), &format!("{name}.o")]));
}

/// Compiles a program printing `word` into `path` with `cc`: a tool that, unlike a
/// shell script, reads no variable it does not ask for.
pub fn word_program(path: &Path, word: &str) {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let source = dir.join("word-program.c");
    std::fs::write(
        &source,
        format!("#include <stdio.h>\nint main(void) {{ puts({word:?}); return 0; }}\n"),
    )
    .unwrap();
    let out = Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(source).unwrap();
}

pub fn fixture_dir(name: &str) -> PathBuf {
    fixtures_dir().join("soundness").join(name)
}

/// Copies `from` into `to`, keeping symbolic links as links, skipping the top-level
/// entries named in `skip`, and replacing `@OUTSIDE@` in text files with `outside`.
pub(super) fn copy_tree(from: &Path, to: &Path, outside: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let ft = entry.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst, outside, &[]);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            if let Ok(text) = std::fs::read_to_string(&src)
                && text.contains("@OUTSIDE@")
            {
                std::fs::write(&dst, text.replace("@OUTSIDE@", outside.to_str().unwrap())).unwrap();
            }
        }
    }
}

/// A copy of a store, so that what one shape's build stores is not seen by another.
pub(super) fn snapshot(store: &Path, to: &Path) -> PathBuf {
    copy_tree(store, to, to, &[]);
    to.to_path_buf()
}

/// Dates every file and directory of a checkout a minute back, as a checkout made
/// before the build would be (`common::age`): then only the cache's own checks, not
/// file times, can tell an edited input.
pub(super) fn age(dir: &Path) {
    crate::common::age(dir, 60);
}
