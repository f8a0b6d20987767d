//! The critical path of a build: the longest chain of dependent units, by a cost per
//! unit. Used to estimate the wall time the cache saved (the chain with the units'
//! original compile times, less the chain as this build ran it) and to mark the chain
//! in the timeline.
//!
//! Dependencies are read from what the units were keyed on: a unit depends on the
//! libraries its `--extern`s name, a package's units on its build script's run, a run
//! on its build script. Seeded units carry no key parts, so no edges leave them: the
//! estimate is a lower bound when seeding placed a chain's middle.

use crate::key::KeyParts;
use crate::wrapper::UnitRecord;

/// For each unit, the indices of the units it depends on.
pub fn unit_deps(units: &[UnitRecord], parts: &[Option<&KeyParts>]) -> Vec<Vec<usize>> {
    let find =
        |pred: &dyn Fn(&UnitRecord) -> bool| -> Option<usize> { units.iter().position(pred) };
    units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut deps = Vec::new();
            if let Some(Some(p)) = parts.get(i) {
                for ext in &p.externs {
                    let name = ext.split_once('=').map_or(ext.as_str(), |(n, _)| n);
                    if let Some(j) = find(&|d: &UnitRecord| {
                        d.crate_name == name && matches!(d.kind.as_str(), "lib" | "proc-macro")
                    }) {
                        deps.push(j);
                    }
                }
            }
            let same_pkg = |kind: &'static str| {
                move |d: &UnitRecord| {
                    d.package == u.package && d.version == u.version && d.kind == kind
                }
            };
            match u.kind.as_str() {
                "build-script" => {}
                "build-script-run" => deps.extend(find(&same_pkg("build-script"))),
                _ => deps.extend(find(&same_pkg("build-script-run"))),
            }
            deps.retain(|&j| j != i);
            deps
        })
        .collect()
}

/// The longest chain by `cost`: its length and its units, first to last.
pub fn longest(
    units: &[UnitRecord],
    deps: &[Vec<usize>],
    cost: impl Fn(&UnitRecord) -> u64,
) -> (u64, Vec<usize>) {
    // Iterative depth-first search with memo; a cycle (never expected) is cut where it
    // closes.
    let n = units.len();
    let mut best: Vec<Option<(u64, Option<usize>)>> = vec![None; n];
    let mut on_stack = vec![false; n];
    for root in 0..n {
        let mut stack = vec![(root, 0usize)];
        while let Some(top) = stack.last_mut() {
            let i = top.0;
            if best[i].is_some() {
                stack.pop();
                continue;
            }
            on_stack[i] = true;
            if let Some(&d) = deps[i].get(top.1) {
                top.1 += 1;
                if d < n && best[d].is_none() && !on_stack[d] {
                    stack.push((d, 0));
                }
                continue;
            }
            let via = deps[i]
                .iter()
                .filter_map(|&d| best[d].map(|(c, _)| (c, d)))
                .max();
            let own = cost(&units[i]);
            best[i] = Some(match via {
                Some((c, d)) => (c + own, Some(d)),
                None => (own, None),
            });
            on_stack[i] = false;
            stack.pop();
        }
    }
    let Some((end, (total, _))) = best
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|b| (i, b)))
        .max_by_key(|(_, (c, _))| *c)
    else {
        return (0, Vec::new());
    };
    let mut path = vec![end];
    let mut at = end;
    while let Some((_, Some(prev))) = best[at] {
        path.push(prev);
        at = prev;
    }
    path.reverse();
    (total, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrapper::Outcome;

    fn unit(name: &str, kind: &str, ms: u64) -> UnitRecord {
        UnitRecord {
            compile_ms: Some(ms),
            ..UnitRecord::new(
                name.into(),
                "0.1.0".into(),
                name.into(),
                kind.into(),
                Outcome::Miss,
            )
        }
    }

    #[test]
    fn the_longest_chain_is_found_through_externs_and_build_scripts() {
        let units = vec![
            unit("a", "lib", 100),
            unit("b", "lib", 10),
            unit("c", "build-script", 5),
            unit("c", "build-script-run", 50),
            unit("c", "lib", 20),
            unit("app", "bin", 30),
        ];
        let app = KeyParts {
            externs: vec!["b=x".into(), "c=y".into()],
            ..KeyParts::default()
        };
        let c = KeyParts {
            externs: vec!["a=z".into()],
            ..KeyParts::default()
        };
        let parts = vec![None, None, None, None, Some(&c), Some(&app)];
        let deps = unit_deps(&units, &parts);
        assert_eq!(deps[4], vec![0, 3]);
        assert_eq!(deps[3], vec![2]);
        let (ms, path) = longest(&units, &deps, |u| u.compile_ms.unwrap_or(0));
        assert_eq!(ms, 150);
        assert_eq!(path, vec![0, 4, 5]);
    }
}
