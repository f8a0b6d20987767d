//! What differs between two key records of a unit ([`differences`]): the lockfile
//! version, the named fields of the first-level key, and the inputs read.

use std::collections::BTreeSet;

use crate::key::{DiffKind, Difference, KeyParts};
use crate::store::history::KeyRecord;

/// Everything that differs between an earlier key and the key now.
pub fn differences(before: &KeyRecord, now: &KeyRecord) -> Vec<Difference> {
    let mut out = Vec::new();
    if before.version != now.version {
        out.push(diff(
            DiffKind::LockfileVersion,
            None,
            Some(&before.version),
            Some(&now.version),
        ));
    }
    // Records made before a kind of unit kept its key's parts have none to compare.
    let known = |p: &KeyParts| !p.compiler.is_empty();
    if known(&before.parts) && known(&now.parts) {
        parts_differences(&mut out, &before.parts, &now.parts);
    }
    // The inputs read are compared only when both keys know them.
    if !before.inputs.is_empty() && !now.inputs.is_empty() {
        for i in &before.inputs {
            let same = now
                .inputs
                .iter()
                .find(|j| j.kind == i.kind && j.name == i.name);
            let what = match i.kind.as_str() {
                "path" | "tree" | "above" => DiffKind::SourceFile,
                "env" | "env-set" => DiffKind::ReadEnvVar,
                "root" => DiffKind::Root,
                "linker" => DiffKind::Linker,
                // Dependencies are compared through `--extern` above.
                "identity" => continue,
                _ => DiffKind::Input,
            };
            match same {
                Some(j) if j.state == i.state => {}
                // Which variables there were, for a unit that reads the environment
                // whole (the history keeps no names; a variable added or removed shows
                // as its own difference too).
                Some(_) if i.kind == "env-set" => out.push(diff(
                    what,
                    Some(&format!("(which variables there are: {})", i.name)),
                    Some("-"),
                    Some("-"),
                )),
                Some(_) => out.push(diff(
                    what,
                    Some(&input_name(&i.kind, &i.name, what)),
                    Some("-"),
                    Some("-"),
                )),
                None => out.push(diff(
                    what,
                    Some(&input_name(&i.kind, &i.name, what)),
                    Some("-"),
                    None,
                )),
            }
        }
        for j in &now.inputs {
            if j.kind == "identity" {
                continue;
            }
            if !before
                .inputs
                .iter()
                .any(|i| i.kind == j.kind && i.name == j.name)
            {
                let what = match j.kind.as_str() {
                    "path" | "tree" | "above" => DiffKind::SourceFile,
                    "env" | "env-set" => DiffKind::ReadEnvVar,
                    "root" => DiffKind::Root,
                    "linker" => DiffKind::Linker,
                    _ => DiffKind::Input,
                };
                out.push(diff(
                    what,
                    Some(&input_name(&j.kind, &j.name, what)),
                    None,
                    Some("-"),
                ));
            }
        }
    }
    out
}

/// What differs between the named fields two first-level keys were hashed from.
fn parts_differences(out: &mut Vec<Difference>, b: &KeyParts, n: &KeyParts) {
    if b.compiler != n.compiler {
        out.push(diff(
            DiffKind::Compiler,
            None,
            Some(&b.compiler[..b.compiler.len().min(16)]),
            Some(&n.compiler[..n.compiler.len().min(16)]),
        ));
    }
    if b.cwd != n.cwd || b.input != n.input {
        out.push(diff(
            DiffKind::SourcePath,
            None,
            Some(&b.input),
            Some(&n.input),
        ));
    }
    for a in b.args.iter().filter(|a| !n.args.contains(a)) {
        let what = if is_feature(a) {
            DiffKind::Feature
        } else {
            DiffKind::Flag
        };
        out.push(diff(what, None, Some(a), None));
    }
    for a in n.args.iter().filter(|a| !b.args.contains(a)) {
        let what = if is_feature(a) {
            DiffKind::Feature
        } else {
            DiffKind::Flag
        };
        out.push(diff(what, None, None, Some(a)));
    }
    let mut env = Vec::new();
    by_name(&mut env, DiffKind::EnvVar, &b.env, &n.env);
    // A run sees features and its `links` dependencies' values as variables.
    for d in &mut env {
        let name = d.name.as_deref().unwrap_or("");
        if name.starts_with("CARGO_FEATURE_") {
            // Said as a feature is: by what was added or removed, here its variable.
            let name = name.to_string();
            d.what = DiffKind::Feature;
            d.before = d.before.as_ref().map(|_| name.clone());
            d.now = d.now.as_ref().map(|_| name);
        } else if name.starts_with("DEP_") {
            d.what = DiffKind::DepValue;
        }
    }
    out.extend(env);
    by_name(out, DiffKind::Dependency, &b.externs, &n.externs);
    by_name(out, DiffKind::Linker, &b.static_libs, &n.static_libs);
    if b.link != n.link {
        out.push(diff(DiffKind::Linker, Some("link"), Some("-"), Some("-")));
    }
    if b.script != n.script {
        out.push(diff(DiffKind::BuildScript, None, Some("-"), Some("-")));
    }
    if b.c_runtime != n.c_runtime {
        out.push(diff(
            DiffKind::Linker,
            Some("c-runtime"),
            Some("-"),
            Some("-"),
        ));
    }
    by_name(out, DiffKind::Tool, &b.tools, &n.tools);
    if b.c_debug_map != n.c_debug_map {
        let said = |v: &Option<String>| match v.as_deref() {
            None | Some("") => "none".to_string(),
            Some(v) => v.to_string(),
        };
        out.push(diff(
            DiffKind::Tool,
            Some("C debug-info path maps"),
            Some(&said(&b.c_debug_map)),
            Some(&said(&n.c_debug_map)),
        ));
    }
    // What the cache added to a run: said only where the user's own variable of that
    // name did not change already (ours is theirs with the path maps after it).
    let mut added = Vec::new();
    let (ba, na) = (pairs(&b.added_env), pairs(&n.added_env));
    for name in ba
        .iter()
        .chain(&na)
        .map(|(k, _)| *k)
        .collect::<BTreeSet<_>>()
    {
        let value = |list: &[(&str, &str)]| {
            list.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let (before, now) = (value(&ba), value(&na));
        if before != now {
            added.push(Difference {
                what: DiffKind::AddedVar,
                name: Some(name.to_string()),
                before,
                now,
            });
        }
    }
    added.retain(|a| {
        !out.iter()
            .any(|d| d.what == DiffKind::EnvVar && d.name == a.name)
    });
    out.extend(added);
    by_name(out, DiffKind::DepOutput, &b.dep_trees, &n.dep_trees);
}

/// An input's name as a difference shows it: with its kind when the difference's kind
/// does not say it (`lookup cc`: what `cc` resolved to through PATH).
pub(super) fn input_name(kind: &str, name: &str, what: DiffKind) -> String {
    use crate::key::above::{self, Spec};
    if kind == "above"
        && let Some((anchor, spec, rel)) = above::parse(name)
    {
        let rel = if rel.is_empty() {
            "(the directory)"
        } else {
            rel
        };
        return match spec {
            Spec::Every => format!("{rel} in every directory above {anchor}"),
            Spec::Level(n) => format!("{rel} in the directory {n} above {anchor}"),
            Spec::Depth => format!("how many directories are above {anchor}"),
        };
    }
    if what == DiffKind::Input {
        format!("{kind} {name}")
    } else {
        name.to_string()
    }
}

pub(super) fn diff(
    what: DiffKind,
    name: Option<&str>,
    before: Option<&str>,
    now: Option<&str>,
) -> Difference {
    Difference {
        what,
        name: name.map(str::to_string),
        before: before.map(str::to_string),
        now: now.map(str::to_string),
    }
}

/// Splits `name=value` lists into pairs.
fn pairs(list: &[String]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|s| s.split_once('=').unwrap_or((s.as_str(), "")))
        .collect()
}

/// Differences of two `name=value` lists, by name.
fn by_name(out: &mut Vec<Difference>, what: DiffKind, before: &[String], now: &[String]) {
    let (b, n) = (pairs(before), pairs(now));
    for (name, v) in &b {
        match n.iter().find(|(m, _)| m == name) {
            Some((_, w)) if w == v => {}
            Some(_) => out.push(diff(what, Some(name), Some("-"), Some("-"))),
            None => out.push(diff(what, Some(name), Some("-"), None)),
        }
    }
    for (name, _) in &n {
        if !b.iter().any(|(m, _)| m == name) {
            out.push(diff(what, Some(name), None, Some("-")));
        }
    }
}

/// Whether an argument selects a feature.
fn is_feature(arg: &str) -> bool {
    arg.contains("feature=")
}
