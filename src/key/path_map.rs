//! Machine paths in and out of keys, stored text, and artifacts.
//!
//! Three roots carry machine-specific absolute paths into a rustc invocation: the
//! directory rustc runs in (the workspace root for members, the package root otherwise),
//! the target (build) directory, and `CARGO_HOME`. Each root has two stand-ins:
//! - a *token* (`@@xcache:ws@@`) that replaces it in keys and in stored text (dep-info,
//!   rustc's JSON messages), and is expanded back to the current path on restore;
//! - a *remap target* (`/xcache/ws`) passed to rustc as `--remap-path-prefix`, so the
//!   artifact carries the same bytes wherever it was built.
//!
//! The same map drives both, so two invocations with equal normalized keys embed equal
//! remapped paths. A path under none of the roots stays absolute in the key: it only
//! hits where that exact path exists.

use std::path::{Path, PathBuf};

/// Which machine path a root stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// The directory rustc runs in.
    Cwd,
    /// The target (build) directory.
    Target,
    /// `CARGO_HOME`: registry and git sources.
    CargoHome,
}

impl RootKind {
    /// The stand-in used in keys and stored text.
    pub fn token(self) -> &'static str {
        match self {
            RootKind::Cwd => "@@xcache:ws@@",
            RootKind::Target => "@@xcache:target@@",
            RootKind::CargoHome => "@@xcache:cargo-home@@",
        }
    }

    /// The kind whose token is `s`.
    pub fn from_token(s: &str) -> Option<RootKind> {
        [RootKind::Cwd, RootKind::Target, RootKind::CargoHome]
            .into_iter()
            .find(|k| k.token() == s)
    }

    /// The path rustc writes into artifacts and messages instead of the real one.
    pub fn remap_target(self) -> &'static str {
        match self {
            RootKind::Cwd => "/xcache/ws",
            RootKind::Target => "/xcache/target",
            RootKind::CargoHome => "/xcache/cargo-home",
        }
    }
}

/// One machine root.
#[derive(Clone, Debug)]
pub struct Root {
    pub kind: RootKind,
    /// Absolute, without a trailing slash.
    pub real: String,
    /// The path rustc writes instead (`--remap-path-prefix`): the kind's
    /// [`RootKind::remap_target`], or a package's own ([`PathMap::name_package`]).
    pub remap: String,
}

/// The roots of one rustc invocation, most specific first.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    roots: Vec<Root>,
}

impl PathMap {
    /// Builds the map. A root that is not absolute, is `/`, or repeats a longer
    /// one's kind is dropped. A cwd inside `CARGO_HOME` (registry packages) is left to
    /// the `CARGO_HOME` root, so a registry crate's key does not depend on which
    /// directory cargo chose to run rustc in beyond what `CARGO_HOME` already says.
    pub fn new(cwd: &Path, target: Option<&Path>, cargo_home: Option<&Path>) -> PathMap {
        let mut roots = Vec::new();
        let mut push = |kind, p: &Path| {
            let s = p.to_string_lossy().trim_end_matches('/').to_string();
            if s.starts_with('/') && s.len() > 1 {
                roots.push(Root {
                    kind,
                    real: s,
                    remap: kind.remap_target().to_string(),
                });
            }
        };
        if let Some(t) = target {
            push(RootKind::Target, t);
        }
        if let Some(h) = cargo_home {
            push(RootKind::CargoHome, h);
        }
        let home_real = cargo_home.map(|h| h.to_string_lossy().trim_end_matches('/').to_string());
        let cwd_s = cwd.to_string_lossy();
        let inside_home = home_real.as_deref().is_some_and(|h| is_under(&cwd_s, h));
        if !inside_home {
            push(RootKind::Cwd, cwd);
        }
        // Most specific (longest) first: normalization takes the first match.
        roots.sort_by_key(|r| std::cmp::Reverse(r.real.len()));
        PathMap { roots }
    }

    /// The roots, most specific first.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// The real path of this invocation's root of `kind`, if it has one.
    pub fn real_of(&self, kind: RootKind) -> Option<&str> {
        self.roots
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.real.as_str())
    }

    /// Names the directory rustc runs in for a package that is not a member of the
    /// workspace (cargo runs rustc in such a package's own directory and names its
    /// sources by absolute path): its paths are remapped to `/xcache/pkg/<name>-<version>`
    /// instead of the workspace's `/xcache/ws`, so that two such packages never share a
    /// path, and a person (or a debugger's `set substitute-path`) can tell which package
    /// a path is in. Name and version are in every key, so equal keys still embed equal
    /// paths.
    pub fn name_package(&mut self, name: &str, version: &str) {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        };
        if !plain(name) || !plain(version) {
            return;
        }
        for r in &mut self.roots {
            if r.kind == RootKind::Cwd {
                r.remap = format!("/xcache/pkg/{name}-{version}");
            }
        }
    }

    /// Keeps every root's real path in artifacts (`XCACHE_REAL_PATHS`): the remapping
    /// maps each root to itself.
    pub fn keep_real_paths(&mut self) {
        for r in &mut self.roots {
            r.remap = r.real.clone();
        }
    }

    /// `--remap-path-prefix` arguments. rustc applies the last matching one, so the
    /// least specific root goes first.
    pub fn remap_args(&self) -> Vec<String> {
        self.roots
            .iter()
            .rev()
            .map(|r| format!("--remap-path-prefix={}={}", r.real, r.remap))
            .collect()
    }

    /// The path rustc writes for `p` under [`PathMap::remap_args`].
    pub fn remapped(&self, p: &Path) -> String {
        let s = p.to_string_lossy();
        for r in &self.roots {
            if is_under(&s, &r.real) {
                return format!("{}{}", r.remap, &s[r.real.len()..]);
            }
        }
        s.into_owned()
    }

    /// An absolute path with its root replaced by the root's token.
    pub fn normalize_path(&self, p: &Path) -> String {
        let s = p.to_string_lossy();
        for r in &self.roots {
            if is_under(&s, &r.real) {
                return format!("{}{}", r.kind.token(), &s[r.real.len()..]);
            }
        }
        s.into_owned()
    }

    /// The inverse of [`PathMap::normalize_path`] for the current machine.
    pub fn expand_path(&self, s: &str) -> PathBuf {
        PathBuf::from(self.expand_text(s))
    }

    /// Replaces every occurrence of a root in free text (dep-info, JSON messages) by its
    /// token. dep-info escapes spaces as `\ `; both spellings are replaced.
    pub fn normalize_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for r in &self.roots {
            out = replace_root(&out, &r.real, r.kind.token());
            if r.real.contains(' ') {
                let escaped = r.real.replace(' ', "\\ ");
                out = replace_root(&out, &escaped, r.kind.token());
            }
        }
        out
    }

    /// Replaces every token by the current root. A token whose root this invocation
    /// does not have is left alone (the caller treats such text as unusable).
    pub fn expand_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for r in &self.roots {
            out = out.replace(r.kind.token(), &r.real);
        }
        out
    }

    /// Expands text bound for a dep-info file, escaped as rustc escapes each line: a
    /// space in a root as `\ ` in the make rules, and not at all in the `# env-dep:`
    /// lines, whose values rustc escapes only for `\\` and line breaks (cargo refuses
    /// a `\ ` there, and the build with it).
    pub fn expand_depinfo(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let mut line = line.to_string();
            let env_dep = line.starts_with("# env-dep:");
            for r in &self.roots {
                let real = if env_dep {
                    r.real.replace('\\', "\\\\")
                } else {
                    r.real.replace(' ', "\\ ")
                };
                line = line.replace(r.kind.token(), &real);
            }
            out.push_str(&line);
        }
        out
    }

    /// True if `text` still holds a token after expansion.
    pub fn has_token(text: &str) -> bool {
        text.contains("@@xcache:")
    }
}

/// `path` equals `root` or lies below it.
/// The directory whose paths a build-script run's key names relative to its root: the
/// workspace its package belongs to, where cargo runs rustc for the package. cargo runs
/// a build script in its package's directory, but what a run reads often lies in a
/// sibling member (a header directory a `links` member exports through `DEP_*`): with
/// the package's directory as the root, such a path stayed absolute and bound the run
/// to the checkout. The nearest directory, from the package's up, whose `Cargo.toml`
/// has a `[workspace]` table; the package's own directory when there is none or it lies
/// in `CARGO_HOME` (whose root names it anyway). A wider root than cargo's own choice
/// (an unrelated workspace above a path dependency) only tokenizes more, and an output
/// naming the package still names the root and binds the run.
pub fn run_root(package_dir: &Path, cargo_home: Option<&Path>) -> PathBuf {
    if cargo_home.is_some_and(|h| package_dir.starts_with(h)) {
        return package_dir.to_path_buf();
    }
    let has_workspace = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("workspace"))
    };
    package_dir
        .ancestors()
        .take_while(|d| d.parent().is_some())
        .find(|d| has_workspace(d))
        .unwrap_or(package_dir)
        .to_path_buf()
}

fn is_under(path: &str, root: &str) -> bool {
    path == root || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// Whether `c` may continue a path component's name (a root followed by one is not a
/// whole prefix: `/a/b` inside `/a/bc`).
pub(crate) fn path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Replaces `root` where it stands as a whole path prefix: the next character must end
/// the path component (so `/a/b` does not match inside `/a/bc`).
pub(crate) fn replace_root(text: &str, root: &str, token: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(root) {
        let after = &rest[i + root.len()..];
        let boundary = after.chars().next().is_none_or(|c| !path_char(c));
        out.push_str(&rest[..i]);
        if boundary {
            out.push_str(token);
        } else {
            out.push_str(root);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PathMap {
        PathMap::new(
            Path::new("/home/u/ws"),
            Some(Path::new("/home/u/ws/target")),
            Some(Path::new("/home/u/.cargo")),
        )
    }

    #[test]
    fn most_specific_root_wins() {
        let m = map();
        assert_eq!(
            m.normalize_path(Path::new("/home/u/ws/target/debug/x")),
            "@@xcache:target@@/debug/x"
        );
        assert_eq!(
            m.normalize_path(Path::new("/home/u/ws/src/a.rs")),
            "@@xcache:ws@@/src/a.rs"
        );
        assert_eq!(
            m.normalize_path(Path::new("/home/u/wsx/a.rs")),
            "/home/u/wsx/a.rs"
        );
        assert_eq!(m.normalize_path(Path::new("/etc/x")), "/etc/x");
    }

    #[test]
    fn remap_args_put_specific_last() {
        let args = map().remap_args();
        assert_eq!(args.len(), 3);
        assert!(args[2].starts_with("--remap-path-prefix=/home/u/ws/target="));
    }

    #[test]
    fn text_round_trip_respects_boundaries() {
        let m = map();
        let t = r#"{"artifact":"/home/u/ws/target/debug/deps/liba.rmeta"} /home/u/wsx"#;
        let n = m.normalize_text(t);
        assert_eq!(
            n,
            r#"{"artifact":"@@xcache:target@@/debug/deps/liba.rmeta"} /home/u/wsx"#
        );
        let other = PathMap::new(Path::new("/b"), Some(Path::new("/b/t")), None);
        assert_eq!(
            other.expand_text(&n),
            r#"{"artifact":"/b/t/debug/deps/liba.rmeta"} /home/u/wsx"#
        );
    }

    #[test]
    fn cwd_inside_cargo_home_is_not_a_root() {
        let m = PathMap::new(
            Path::new("/home/u/.cargo/registry/src/x/itoa-1.0.0"),
            None,
            Some(Path::new("/home/u/.cargo")),
        );
        assert_eq!(m.roots().len(), 1);
        assert_eq!(
            m.normalize_path(Path::new(
                "/home/u/.cargo/registry/src/x/itoa-1.0.0/src/lib.rs"
            )),
            "@@xcache:cargo-home@@/registry/src/x/itoa-1.0.0/src/lib.rs"
        );
    }

    /// A root with a space is escaped in the make rules and left as it is in the
    /// `# env-dep:` lines, as rustc writes them (cargo refuses `\ ` there).
    #[test]
    fn dep_info_is_expanded_with_rustcs_escaping_for_each_line() {
        let pm = PathMap::new(
            Path::new("/w s/ws"),
            Some(Path::new("/w s/ws/target")),
            Some(Path::new("/h")),
        );
        let stored = "@@xcache:target@@/debug/deps/a.d: src/lib.rs @@xcache:target@@/debug/build/a/out/g.rs\n\n\
                      @@xcache:target@@/debug/build/a/out/g.rs:\n\n\
                      # env-dep:OUT_DIR=@@xcache:target@@/debug/build/a/out\n";
        assert_eq!(
            pm.expand_depinfo(stored),
            "/w\\ s/ws/target/debug/deps/a.d: src/lib.rs /w\\ s/ws/target/debug/build/a/out/g.rs\n\n\
             /w\\ s/ws/target/debug/build/a/out/g.rs:\n\n\
             # env-dep:OUT_DIR=/w s/ws/target/debug/build/a/out\n"
        );
    }
}
