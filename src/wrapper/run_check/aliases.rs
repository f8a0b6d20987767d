//! The aliases of a path check: each machine root seen through a symbolic link of another
//! length ([`Aliases`]), and the aliasing library (`alias.c`) that tells the second run's
//! `getcwd`, `realpath` and `/proc/self/exe` under them.

use std::io;
use std::path::{Path, PathBuf};

use crate::interpose::ALIAS as LIBRARY;
use crate::key::{PathMap, replace_root};

/// The aliasing library, written once into the private directory.
pub(in crate::wrapper) fn alias_library() -> io::Result<PathBuf> {
    if LIBRARY.is_empty() {
        return Err(io::Error::other("no aliasing library on this platform"));
    }
    crate::interpose::private_library(&crate::private_dir::private_dir()?, "alias", LIBRARY)
}

/// The aliases of one check, removed when it is dropped.
pub(super) struct Aliases {
    pub(super) base: crate::private_dir::RemovedLater,
    /// `(real, alias, token)`, most specific real first (the map's order).
    pub(super) roots: Vec<(String, String, &'static str)>,
    /// The scratch directory standing for the target dir, holding `OUT_DIR`.
    pub(super) scratch_target: String,
}

/// `path` made a different length from `than` by appending `x`s.
fn other_length(mut path: String, than: &str) -> String {
    while path.len() == than.len() {
        path.push('x');
    }
    path
}

impl Aliases {
    pub(super) fn new(pm: &PathMap, target_root: &Path) -> io::Result<Aliases> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let base = crate::private_dir::private_dir()?
            .join("run-check")
            .join(format!("{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&base)?;
        let mut a = Aliases {
            base: crate::private_dir::RemovedLater::new(base.clone()),
            roots: Vec::new(),
            scratch_target: String::new(),
        };
        for (i, r) in pm.roots().iter().enumerate() {
            let alias = other_length(base.join(format!("root{i}")).display().to_string(), &r.real);
            std::os::unix::fs::symlink(&r.real, &alias)?;
            a.roots.push((r.real.clone(), alias, r.kind.token()));
        }
        a.scratch_target = other_length(
            base.join("target").display().to_string(),
            &target_root.display().to_string(),
        );
        std::fs::create_dir_all(&a.scratch_target)?;
        Ok(a)
    }

    /// Text of the first run told at the aliases.
    pub(super) fn to_alias(&self, pm: &PathMap, text: &str) -> String {
        let mut t = pm.normalize_text(text);
        for (_, alias, token) in &self.roots {
            t = t.replace(token, alias);
        }
        t
    }

    /// Text of the second run with its roots tokenized; real roots it learned some
    /// other way too.
    pub(super) fn tokenize(&self, pm: &PathMap, text: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .roots
            .iter()
            .map(|(_, alias, token)| (alias.as_str(), *token))
            .collect();
        pairs.push((
            self.scratch_target.as_str(),
            crate::key::RootKind::Target.token(),
        ));
        pairs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut t = text.to_string();
        for (prefix, token) in pairs {
            t = replace_root(&t, prefix, token);
        }
        pm.normalize_text(&t)
    }

    /// The `XCACHE_ALIAS_MAP` value: `real<TAB>alias` lines, most specific first.
    pub(super) fn map(&self) -> String {
        let mut out = String::new();
        for (real, alias, _) in &self.roots {
            out.push_str(real);
            out.push('\t');
            out.push_str(alias);
            out.push('\n');
        }
        out
    }
}
