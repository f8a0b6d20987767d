//! Reading the dep-info (`.d`) file rustc writes: the files a crate read and the
//! environment variables it looked at.

use std::path::{Path, PathBuf};

/// One `# env-dep:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDep {
    pub name: String,
    /// `None` when the variable was unset.
    pub value: Option<String>,
}

/// The parsed dep-info of one unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DepInfo {
    /// Every file rustc read, absolute (relative ones resolved against `cwd`).
    pub files: Vec<PathBuf>,
    pub env: Vec<EnvDep>,
}

impl DepInfo {
    /// Parses dep-info text. Targets of rules with dependencies are outputs, not inputs.
    pub fn parse(text: &str, cwd: &Path) -> DepInfo {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut targets: Vec<PathBuf> = Vec::new();
        let mut env = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# env-dep:") {
                let (name, value) = match rest.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(unescape_env(v))),
                    None => (rest.to_string(), None),
                };
                env.push(EnvDep { name, value });
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((target, deps)) = split_rule(line) else {
                continue;
            };
            let deps = split_words(&deps);
            // `file:` with nothing after it is a phony rule for an input, not an output.
            if !deps.is_empty() {
                targets.push(cwd.join(unescape_path(&target)));
            }
            for dep in deps {
                files.push(cwd.join(unescape_path(&dep)));
            }
        }
        files.retain(|f| !targets.contains(f));
        files.sort();
        files.dedup();
        env.sort_by(|a, b| a.name.cmp(&b.name));
        env.dedup();
        DepInfo { files, env }
    }
}

/// Splits `target: deps` at the first colon that is not escaped.
fn split_rule(line: &str) -> Option<(String, String)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b':' if bytes.get(i + 1).is_none_or(|c| *c == b' ') => {
                return Some((line[..i].to_string(), line[i + 1..].to_string()));
            }
            _ => i += 1,
        }
    }
    None
}

/// Splits on unescaped spaces.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                cur.push('\\');
                cur.push(' ');
                chars.next();
            }
            ' ' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn unescape_path(s: &str) -> String {
    s.replace("\\ ", " ")
}

/// rustc escapes `\` and newlines in env-dep values.
fn unescape_env(s: &str) -> String {
    unescape_backslashes(s, &[('n', '\n'), ('r', '\r')])
}

/// `s` with its backslash escapes undone: `\` and one of `letters` is the character
/// that letter stands for, `\` and any other character that character, a `\` at the
/// end itself. rustc's env-dep values (`\n`, `\r`) and the observer's record (`\n`,
/// `\t`, `observe::Trace`) escape different characters: each passes its own letters.
pub(crate) fn unescape_backslashes(s: &str, letters: &[(char, char)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) => out.push(letters.iter().find(|(l, _)| *l == e).map_or(e, |&(_, c)| c)),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_files_and_env() {
        let text = "/t/deps/a-1.d: src/lib.rs src/my\\ mod.rs /t/build/out/gen.rs\n\n\
                    /t/deps/liba-1.rlib: src/lib.rs src/my\\ mod.rs /t/build/out/gen.rs\n\n\
                    src/lib.rs:\nsrc/my\\ mod.rs:\n/t/build/out/gen.rs:\n\n\
                    # env-dep:OUT_DIR=/t/build/out\n# env-dep:MAYBE\n";
        let d = DepInfo::parse(text, Path::new("/ws"));
        assert_eq!(
            d.files,
            vec![
                PathBuf::from("/t/build/out/gen.rs"),
                PathBuf::from("/ws/src/lib.rs"),
                PathBuf::from("/ws/src/my mod.rs"),
            ]
        );
        assert_eq!(d.env.len(), 2);
        assert_eq!(
            d.env[0],
            EnvDep {
                name: "MAYBE".into(),
                value: None
            }
        );
        assert_eq!(d.env[1].value.as_deref(), Some("/t/build/out"));
    }
}
