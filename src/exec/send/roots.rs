//! The key's roots as the input root holds them (`ws/`, `target/`, `cargo-home/`):
//! a path's place inside it, arguments as shell words naming the worker's copy
//! ([`Roots::shell`]), and text the worker wrote read as this machine's.

use std::path::Path;

use crate::key::{PathMap, Root, RootKind, path_char, replace_root};

/// The key's roots, most specific first, with the directory each has in the input
/// root.
pub(super) struct Roots {
    pub(super) list: Vec<(Root, &'static str)>,
}

impl Roots {
    pub(super) fn new(pm: &PathMap) -> Roots {
        Roots {
            list: pm
                .roots()
                .iter()
                .map(|r| {
                    let dir = match r.kind {
                        RootKind::Cwd => "ws",
                        RootKind::Target => "target",
                        RootKind::CargoHome => "cargo-home",
                    };
                    (r.clone(), dir)
                })
                .collect(),
        }
    }

    /// `p`'s path inside the input root, when it is under a root.
    pub(super) fn rel(&self, p: &Path) -> Option<String> {
        let s = p.to_str()?;
        self.list.iter().find_map(|(r, dir)| {
            let rest = s.strip_prefix(r.real.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{dir}{rest}"))
        })
    }

    /// `s` as shell words: every root it names becomes the worker's (`"$R/ws"`), the
    /// rest is quoted as it is.
    pub(super) fn shell(&self, s: &str) -> String {
        let mut out = String::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, out: &mut String| {
            if !lit.is_empty() {
                out.push('\'');
                out.push_str(&lit.replace('\'', "'\\''"));
                out.push('\'');
                lit.clear();
            }
        };
        let mut i = 0;
        while i < s.len() {
            let hit = self.list.iter().find(|(r, _)| {
                s[i..].starts_with(r.real.as_str())
                    && boundary_before(s, i)
                    && boundary_after(&s[i + r.real.len()..])
            });
            match hit {
                Some((r, dir)) => {
                    flush(&mut lit, &mut out);
                    out.push_str(&format!("\"$R/{dir}\""));
                    i += r.real.len();
                }
                None => {
                    let c = s[i..].chars().next().unwrap_or(' ');
                    lit.push(c);
                    i += c.len_utf8();
                }
            }
        }
        flush(&mut lit, &mut out);
        if out.is_empty() {
            out.push_str("''");
        }
        out
    }

    /// Whether `s` names a root.
    pub(super) fn names_a_root(&self, s: &str) -> bool {
        self.list.iter().any(|(r, _)| {
            s.match_indices(r.real.as_str())
                .any(|(i, _)| boundary_before(s, i) && boundary_after(&s[i + r.real.len()..]))
        })
    }

    /// Text the worker wrote, with its roots (below `worker_root`) read as this
    /// machine's.
    pub(super) fn to_local(&self, text: &str, worker_root: &str) -> String {
        let mut out = text.to_string();
        for (r, dir) in &self.list {
            out = replace_root(&out, &format!("{worker_root}/{dir}"), &r.real);
        }
        out
    }
}

fn boundary_before(s: &str, i: usize) -> bool {
    s[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !path_char(c) && c != '/')
}

fn boundary_after(rest: &str) -> bool {
    rest.chars().next().is_none_or(|c| !path_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots::new(&PathMap::new(
            Path::new("/home/u/ws"),
            Some(Path::new("/home/u/ws/target")),
            Some(Path::new("/home/u/.cargo")),
        ))
    }

    #[test]
    fn arguments_name_the_workers_roots_and_quote_the_rest() {
        let r = roots();
        assert_eq!(r.shell("src/lib.rs"), "'src/lib.rs'");
        assert_eq!(
            r.shell("dependency=/home/u/ws/target/debug/deps"),
            "'dependency='\"$R/target\"'/debug/deps'"
        );
        assert_eq!(
            r.shell("--remap-path-prefix=/home/u/ws=/xcache/ws"),
            "'--remap-path-prefix='\"$R/ws\"'=/xcache/ws'"
        );
        assert_eq!(r.shell("it's"), "'it'\\''s'");
        assert_eq!(r.shell(""), "''");
        // Not a root: a longer name, or a root's path inside another path.
        assert_eq!(r.shell("/home/u/wsx"), "'/home/u/wsx'");
        assert_eq!(r.shell("/x/home/u/ws"), "'/x/home/u/ws'");
        assert!(!r.names_a_root("/home/u/wsx/a"));
        assert!(r.names_a_root("a:/home/u/.cargo/registry"));
        assert_eq!(
            r.rel(Path::new("/home/u/ws/target/debug/libx.rlib"))
                .unwrap(),
            "target/debug/libx.rlib"
        );
        assert_eq!(r.rel(Path::new("/home/u/ws")).unwrap(), "ws");
        assert_eq!(r.rel(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn text_from_the_worker_names_this_machines_roots() {
        let r = roots();
        let text = "/w/a-1/root/target/debug/deps/x.d: src/lib.rs /w/a-1/root/target/debug/build/o/out/g.rs\n\
                    # env-dep:OUT_DIR=/w/a-1/root/target/debug/build/o/out\n/w/a-1/root/wsx";
        assert_eq!(
            r.to_local(text, "/w/a-1/root"),
            "/home/u/ws/target/debug/deps/x.d: src/lib.rs /home/u/ws/target/debug/build/o/out/g.rs\n\
             # env-dep:OUT_DIR=/home/u/ws/target/debug/build/o/out\n/w/a-1/root/wsx"
        );
    }
}
