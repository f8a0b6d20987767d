//! The lockfile as the recipe holds it ([`rewrite_lockfile`]): the masked members'
//! versions replaced, and only the entries a selection reaches, edited as text.

use std::collections::{HashMap, HashSet, VecDeque};

use super::manifest::MASKED_VERSION;

/// The lockfile with the masked packages' versions replaced (in their entries and in the
/// dependency lists naming them), and, when `keep` is given, only the entries reachable
/// from those local packages. Edited as text: `--locked` compares cargo's rendering
/// line by line.
pub(super) fn rewrite_lockfile(
    text: &str,
    masked: &HashSet<&str>,
    keep: Option<&HashSet<&str>>,
) -> String {
    struct Block<'a> {
        lines: Vec<&'a str>,
        is_package: bool,
        name: String,
        version: String,
        source: Option<String>,
    }
    let mut head: Vec<&str> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            blocks.push(Block {
                lines: vec![line],
                is_package: line == "[[package]]",
                name: String::new(),
                version: String::new(),
                source: None,
            });
            continue;
        }
        let Some(b) = blocks.last_mut() else {
            head.push(line);
            continue;
        };
        b.lines.push(line);
        if let Some(v) = line.strip_prefix("name = ") {
            b.name = v.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("version = ") {
            b.version = v.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("source = ") {
            b.source = Some(v.trim_matches('"').to_string());
        }
    }
    // The local entries whose versions are masked: name -> old version.
    let old: HashMap<String, String> = blocks
        .iter()
        .filter(|b| b.is_package && b.source.is_none() && masked.contains(b.name.as_str()))
        .map(|b| (b.name.clone(), b.version.clone()))
        .collect();
    // A dependency entry ` "name"`, ` "name version"`, ` "name version (source)"`.
    let dep_of = |line: &str| -> Option<(String, Option<String>, Option<String>)> {
        let inner = line
            .trim()
            .trim_end_matches(',')
            .strip_prefix('"')?
            .strip_suffix('"')?;
        let mut parts = inner.splitn(3, ' ');
        let name = parts.next()?.to_string();
        let version = parts.next().map(str::to_string);
        let source = parts
            .next()
            .map(|s| s.trim_start_matches('(').trim_end_matches(')').to_string());
        Some((name, version, source))
    };

    let keep_block: Vec<bool> = match keep {
        None => vec![true; blocks.len()],
        Some(keep) => {
            let mut kept = vec![false; blocks.len()];
            let mut queue: VecDeque<usize> = blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    b.is_package && b.source.is_none() && keep.contains(b.name.as_str())
                })
                .map(|(i, _)| i)
                .collect();
            while let Some(i) = queue.pop_front() {
                if kept[i] {
                    continue;
                }
                kept[i] = true;
                let mut in_deps = false;
                for line in &blocks[i].lines {
                    if line.starts_with("dependencies = [") {
                        in_deps = true;
                        continue;
                    }
                    if in_deps && line.starts_with(']') {
                        in_deps = false;
                    }
                    if !in_deps {
                        continue;
                    }
                    if let Some((name, version, source)) = dep_of(line) {
                        for (j, b) in blocks.iter().enumerate() {
                            let fits = b.is_package
                                && b.name == name
                                && version.as_ref().is_none_or(|v| *v == b.version)
                                && source.as_ref().is_none_or(|s| b.source.as_ref() == Some(s));
                            if fits && !kept[j] {
                                queue.push_back(j);
                            }
                        }
                    }
                }
            }
            // Sections that are not packages (`[metadata]`, `[[patch.unused]]`) stay.
            for (k, b) in kept.iter_mut().zip(&blocks) {
                *k |= !b.is_package;
            }
            kept
        }
    };

    let mut out = String::with_capacity(text.len());
    for line in &head {
        out.push_str(line);
        out.push('\n');
    }
    for (b, keep) in blocks.iter().zip(keep_block) {
        if !keep {
            continue;
        }
        let masked_entry = b.is_package && b.source.is_none() && old.contains_key(&b.name);
        let mut in_deps = false;
        for line in &b.lines {
            if masked_entry && line.starts_with("version = ") {
                out.push_str(&format!("version = \"{MASKED_VERSION}\"\n"));
                continue;
            }
            if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps
                && let Some((name, Some(version), None)) = dep_of(line)
                && old.get(&name) == Some(&version)
            {
                out.push_str(&format!(" \"{name} {MASKED_VERSION}\",\n"));
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    // Dropped blocks leave their neighbours' blank lines doubled or missing at the end;
    // cargo renders exactly one blank line between blocks and none at the end.
    let mut tidy = String::with_capacity(out.len());
    let mut blank = false;
    for line in out.lines() {
        if line.is_empty() {
            blank = true;
            continue;
        }
        if blank && line.starts_with('[') && !tidy.is_empty() {
            tidy.push('\n');
        }
        blank = false;
        tidy.push_str(line);
        tidy.push('\n');
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = \"app\"
version = \"0.3.1\"
dependencies = [
 \"core 0.3.1\",
 \"libc\",
]

[[package]]
name = \"core\"
version = \"0.3.1\"

[[package]]
name = \"core\"
version = \"9.0.0\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
checksum = \"00\"

[[package]]
name = \"libc\"
version = \"0.2.191\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
checksum = \"65\"

[[package]]
name = \"tools\"
version = \"1.0.0\"
dependencies = [
 \"core 9.0.0\",
]
";

    #[test]
    fn lockfile_masks_member_versions_and_keeps_the_rest() {
        let masked: HashSet<&str> = ["app", "core", "tools"].into();
        let out = rewrite_lockfile(LOCK, &masked, None);
        assert!(out.contains("name = \"app\"\nversion = \"0.0.0\""), "{out}");
        assert!(out.contains(" \"core 0.0.0\",\n"), "{out}");
        assert!(out.contains(" \"core 9.0.0\",\n"), "{out}");
        assert!(
            out.contains("name = \"core\"\nversion = \"9.0.0\"\nsource"),
            "{out}"
        );
        assert!(
            out.contains("name = \"tools\"\nversion = \"0.0.0\""),
            "{out}"
        );
        assert_eq!(out.lines().count(), LOCK.lines().count());
        assert!(!out.ends_with("\n\n"));
    }

    #[test]
    fn lockfile_keeps_what_the_selection_reaches() {
        let masked: HashSet<&str> = ["app", "core", "tools"].into();
        let keep: HashSet<&str> = ["app", "core"].into();
        let out = rewrite_lockfile(LOCK, &masked, Some(&keep));
        assert!(out.contains("name = \"libc\""), "{out}");
        assert!(!out.contains("name = \"tools\""), "{out}");
        assert!(!out.contains("9.0.0"), "{out}");
        assert!(!out.contains("\n\n\n") && !out.ends_with("\n\n"), "{out}");
    }
}
