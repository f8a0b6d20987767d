//! Paths probed above a machine root, named from the root. Main function: [`relate`].
//!
//! A program that walks up from where it runs (git looking for `.git`, a tool for its
//! config file) reads the directories above the checkout. Recorded by their absolute
//! paths, those reads would be checked in the first checkout's parents wherever the
//! unit is built again: a checkout moved under a repository (`.git` above it) would
//! replay a run that found none, and a checkout whose first place is gone would miss.
//! So a walk is named from the root it started in (`key::above`):
//!
//! - a walk is a path below the root's directory (`rel`: `.git`, `.git/HEAD`, or the
//!   directory itself) probed in the root and in its parent;
//! - when it reached `/` with the same state in every directory above the root, it is
//!   one input, "`rel` in every directory above the root" ([`Spec::Every`]), which holds
//!   in any checkout whose directories above it all give that state, however deep;
//! - otherwise (the walk found something and stopped, or met different states) each
//!   directory's probe is also named by its distance from the root ([`Spec::Level`]),
//!   and so is everything else read in the directories up to the farthest one the walk
//!   reached (what it found there: `.git/HEAD`, refs, config), besides the absolute
//!   names: both must hold. A walk that reached `/` this way also records how many
//!   directories are above the root ([`Spec::Depth`]), since a deeper checkout has
//!   directories no record speaks of.
//!
//! What is read above a root but not as a walk (a file under `$HOME`, `/usr/include`)
//! keeps its absolute name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::key::above::{self, Spec};
use crate::key::{Input, InputKind, PathMap};

/// Names the walks above `pm`'s roots among `inputs` from the roots (see the module).
pub fn relate(inputs: &mut Vec<Input>, pm: &PathMap) {
    let paths: Vec<(usize, PathBuf)> = inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| i.kind == InputKind::Path && !i.name.contains('\t'))
        .filter_map(|(n, i)| {
            let p = pm.expand_path(&i.name);
            (p.is_absolute() && !PathMap::has_token(&p.to_string_lossy())).then_some((n, p))
        })
        .collect();
    if paths.is_empty() {
        return;
    }
    let mut dropped = vec![false; inputs.len()];
    let mut added: Vec<Input> = Vec::new();
    for root in pm.roots() {
        if root.real.contains('\t') {
            continue;
        }
        let anchor = Path::new(&root.real);
        let token = root.kind.token();
        let dirs: Vec<&Path> = above::dirs(anchor).collect();
        let depth = dirs.len();
        // By path below a directory: the distance of that directory (0: the root) and
        // the input. Each path counts in the nearest directory that holds it.
        let mut by_rel: BTreeMap<String, BTreeMap<usize, usize>> = BTreeMap::new();
        for (n, p) in &paths {
            let place = if let Ok(rel) = p.strip_prefix(anchor) {
                Some((0, rel))
            } else {
                dirs.iter()
                    .position(|d| p.starts_with(d))
                    .and_then(|i| p.strip_prefix(dirs[i]).ok().map(|rel| (i + 1, rel)))
            };
            let Some((level, rel)) = place else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                continue;
            };
            by_rel.entry(rel.to_string()).or_default().insert(level, *n);
        }
        let state = |n: usize| inputs[n].state.as_str();
        // The farthest directory a walk that did not summarize reached.
        let mut reach = 0;
        for (rel, levels) in &by_rel {
            if !(levels.contains_key(&0) && levels.contains_key(&1)) {
                continue;
            }
            let walked: Vec<usize> = (1..=depth).map_while(|l| levels.get(&l).copied()).collect();
            let same = walked.iter().all(|&n| state(n) == state(walked[0]));
            if walked.len() == depth && same {
                for &n in &walked {
                    dropped[n] = true;
                }
                added.push(Input::new(
                    InputKind::Above,
                    above::name(token, Spec::Every, rel),
                    state(walked[0]),
                ));
            } else {
                reach = reach.max(walked.len());
            }
        }
        if reach == 0 {
            continue;
        }
        for (rel, levels) in &by_rel {
            for (&level, &n) in levels.range(1..=reach) {
                added.push(Input::new(
                    InputKind::Above,
                    above::name(token, Spec::Level(level), rel),
                    state(n),
                ));
            }
        }
        if reach == depth {
            added.push(Input::new(
                InputKind::Above,
                above::name(token, Spec::Depth, ""),
                above::depth_state(depth),
            ));
        }
    }
    let mut n = 0;
    inputs.retain(|_| {
        n += 1;
        !dropped[n - 1]
    });
    inputs.extend(added);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::key::above_state;
    use crate::key::state as st;

    fn pm(ws: &Path) -> PathMap {
        PathMap::new(ws, Some(&ws.join("target")), None)
    }

    fn path(name: &str, state: &str) -> Input {
        Input::new(InputKind::Path, name, state)
    }

    /// git's walk from the checkout up to `/`, finding nothing: one input per probed
    /// name, whatever the depth, and the absolute probes gone.
    #[test]
    fn a_walk_that_found_nothing_is_one_input_per_name() {
        let ws = Path::new("/w/a/b/ws");
        let mut inputs = vec![
            path("@@xcache:ws@@", st::DIR),
            path("@@xcache:ws@@/.git", st::ABSENT),
            path("/root/.gitconfig", "file:x"),
        ];
        for d in ["/w/a/b", "/w/a", "/w", "/"] {
            inputs.push(path(d, st::DIR));
            inputs.push(path(
                &format!("{}/.git", d.trim_end_matches('/')),
                st::ABSENT,
            ));
        }
        relate(&mut inputs, &pm(ws));
        let mut names: Vec<(String, String)> = inputs
            .iter()
            .map(|i| (i.name.replace('\t', " "), i.state.clone()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("/root/.gitconfig", "file:x"),
                ("@@xcache:ws@@", "dir"),
                ("@@xcache:ws@@ * ", "dir"),
                ("@@xcache:ws@@ * .git", "absent"),
                ("@@xcache:ws@@/.git", "absent"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    /// A walk that found a repository two directories up: each directory by its
    /// distance, and what was read in the repository too, besides the absolute names.
    #[test]
    fn a_walk_that_found_something_is_named_by_distance_as_well() {
        let ws = Path::new("/w/repo/sub/ws");
        let mut inputs = vec![
            path("@@xcache:ws@@/.git", st::ABSENT),
            path("/w/repo/sub/.git", st::ABSENT),
            path("/w/repo/.git", st::DIR),
            path("/w/repo/.git/HEAD", "file:h"),
            path("/usr/include/stdio.h", "file:s"),
        ];
        relate(&mut inputs, &pm(ws));
        let names: BTreeSet<(String, String)> = inputs
            .iter()
            .map(|i| (i.name.replace('\t', " "), i.state.clone()))
            .collect();
        for want in [
            ("/w/repo/.git", "dir"),
            ("/w/repo/.git/HEAD", "file:h"),
            ("@@xcache:ws@@ 1 .git", "absent"),
            ("@@xcache:ws@@ 2 .git", "dir"),
            ("@@xcache:ws@@ 2 .git/HEAD", "file:h"),
            ("/usr/include/stdio.h", "file:s"),
        ] {
            assert!(
                names.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} in {names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|(n, _)| n.contains("depth") || n.contains("stdio") && n.starts_with("@@"))
        );
    }

    /// The judge's side: every directory above, one by distance, the depth.
    #[test]
    fn the_judge_reads_the_directories_above_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("x/ws");
        std::fs::create_dir_all(&ws).unwrap();
        let depth = ws.ancestors().count() - 1;
        assert_eq!(above_state(&ws, Spec::Every, "", false), st::DIR);
        assert_eq!(
            above_state(&ws, Spec::Every, "no-such-name", false),
            st::ABSENT
        );
        std::fs::create_dir(dir.path().join("x/.git")).unwrap();
        assert!(above_state(&ws, Spec::Every, ".git", false).starts_with("differs:"));
        assert_eq!(above_state(&ws, Spec::Level(1), ".git", false), st::DIR);
        assert_eq!(
            above_state(&ws, Spec::Level(depth + 1), ".git", false),
            "beyond-top"
        );
        assert_eq!(
            above_state(&ws, Spec::Depth, "", false),
            above::depth_state(depth)
        );
    }
}
