//! Why a unit missed: its key now against the nearest key the store's history recorded
//! for the same unit (`store::history`). Main function: [`explain_miss`].

use std::collections::BTreeSet;

use crate::key::{DiffKind, Difference, KeyParts, MissCause};
use crate::store::history::KeyRecord;

impl DiffKind {
    /// Every kind, in order.
    pub fn all() -> impl Iterator<Item = DiffKind> {
        <DiffKind as strum::IntoEnumIterator>::iter()
    }

    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::FirstSeen => "first-seen",
            DiffKind::NotInStore => "not-in-store",
            DiffKind::LockfileVersion => "lockfile-version",
            DiffKind::Compiler => "compiler",
            DiffKind::BuildScript => "build-script",
            DiffKind::Flag => "flag",
            DiffKind::Feature => "feature",
            DiffKind::EnvVar => "env-var",
            DiffKind::DepValue => "dep-value",
            DiffKind::Dependency => "dependency",
            DiffKind::DepOutput => "dep-output",
            DiffKind::SourcePath => "source-path",
            DiffKind::SourceFile => "source-file",
            DiffKind::ReadEnvVar => "read-env-var",
            DiffKind::Root => "root",
            DiffKind::Linker => "linker",
            DiffKind::Tool => "tool",
            DiffKind::Input => "input",
            DiffKind::AddedVar => "added-var",
        }
    }
}

/// How many differences a cause lists.
pub const MAX_SHOWN: usize = 12;

impl MissCause {
    /// One line: `flag -C opt-level=3 (was -C opt-level=0), dependency serde`.
    pub fn one_line(&self) -> String {
        let mut parts: Vec<String> = self.differences.iter().map(describe).collect();
        if self.total > self.differences.len() {
            parts.push(format!("{} more", self.total - self.differences.len()));
        }
        parts.join(", ")
    }
}

/// A recorded name or value as a person reads it: a path in the package's directory
/// relative to it, the target dir and `CARGO_HOME` by name (the record keeps tokens, so
/// it reads the same on every machine).
fn readable(text: &str) -> String {
    use crate::key::RootKind;
    text.replace(&format!("{}/", RootKind::Cwd.token()), "")
        .replace(RootKind::Cwd.token(), ".")
        .replace(RootKind::Target.token(), "<target-dir>")
        .replace(RootKind::CargoHome.token(), "$CARGO_HOME")
}

/// A difference in words.
pub fn describe(d: &Difference) -> String {
    let name = readable(d.name.as_deref().unwrap_or(""));
    let before = d.before.as_deref().map(readable);
    let now = d.now.as_deref().map(readable);
    match d.what {
        DiffKind::FirstSeen => "first build of this unit (no earlier key recorded)".into(),
        DiffKind::NotInStore => "same key as before, yet nothing recorded for it held here: \
                                 an input the history does not keep changed (a directory \
                                 listing, a path probed), or the entry left the store"
            .into(),
        DiffKind::BuildScript => "build-script executable changed".into(),
        DiffKind::AddedVar => {
            let keyed = |v: &Option<String>| {
                v.as_deref().map_or("(not added)".to_string(), |v| {
                    use crate::key::RootKind;
                    v.replace(RootKind::Cwd.token(), "<workspace>")
                        .replace(RootKind::Target.token(), "<target-dir>")
                        .replace(RootKind::CargoHome.token(), "$CARGO_HOME")
                })
            };
            format!(
                "{} {name} changed: `{}` -> `{}`",
                d.what.as_str(),
                keyed(&d.before),
                keyed(&d.now)
            )
        }
        DiffKind::EnvVar
        | DiffKind::ReadEnvVar
        | DiffKind::Dependency
        | DiffKind::DepValue
        | DiffKind::DepOutput
        | DiffKind::Tool => {
            let verb = match (&before, &now) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                _ => "changed",
            };
            format!("{} {name} {verb}", d.what.as_str())
        }
        _ => match (&before, &now) {
            (Some(b), Some(n)) if name.is_empty() => format!("{} {b} -> {n}", d.what.as_str()),
            (Some(_), Some(_)) => format!("{} {name} changed", d.what.as_str()),
            // An input added or removed is said by its name (its value is a placeholder).
            (None, Some(n)) => {
                let what = if name.is_empty() { n } else { &name };
                format!("{} {what} added", d.what.as_str())
            }
            (Some(b), None) => {
                let what = if name.is_empty() { b } else { &name };
                format!("{} {what} removed", d.what.as_str())
            }
            (None, None) => format!("{} {name}", d.what.as_str()),
        },
    }
}

/// Compares `now` with every earlier record of the same unit and explains the miss by
/// the nearest one (fewest differences; the newest among equals).
pub fn explain_miss(now: &KeyRecord, earlier: &[KeyRecord]) -> MissCause {
    let mut best: Option<(&KeyRecord, Vec<Difference>)> = None;
    for rec in earlier.iter().rev() {
        if rec.l1 == now.l1 && rec.entry == now.entry && rec.at_ms == now.at_ms {
            continue;
        }
        let diffs = differences(rec, now);
        if best.as_ref().is_none_or(|(_, b)| diffs.len() < b.len()) {
            best = Some((rec, diffs));
        }
    }
    let Some((rec, mut diffs)) = best else {
        return MissCause {
            nearest_l1: None,
            nearest_at_ms: None,
            differences: vec![Difference {
                what: DiffKind::FirstSeen,
                name: None,
                before: None,
                now: None,
            }],
            total: 1,
            hint: None,
        };
    };
    if diffs.is_empty() && rec.l1 != now.l1 {
        // Nothing the history keeps differs, yet the first-level keys do: a build-script
        // run's environment, its binary, or a dependency's run.
        diffs.push(diff(
            DiffKind::Input,
            Some("first-level key"),
            Some("-"),
            Some("-"),
        ));
    }
    if diffs.is_empty() {
        diffs.push(Difference {
            what: DiffKind::NotInStore,
            name: None,
            before: None,
            now: None,
        });
    }
    diffs.sort_by_key(|d| d.what);
    // A file both read and declared (`rerun-if-changed`) is one difference.
    diffs.dedup_by(|a, b| a.what == b.what && a.name.is_some() && a.name == b.name);
    let total = diffs.len();
    // Whether either record read the environment whole (`env-set` inputs), and whether
    // only through the `cc` crate's copy (`env-set user only=…`).
    let sets: Vec<&str> = [rec, now]
        .iter()
        .flat_map(|r| r.inputs.iter())
        .filter(|i| i.kind == "env-set")
        .map(|i| i.name.as_str())
        .collect();
    let whole_env = if sets.is_empty() {
        EnvRead::ByName
    } else if sets.iter().all(|n| n.contains(" only=")) {
        EnvRead::CcCopy
    } else {
        EnvRead::Whole
    };
    let hint = hint(&diffs, whole_env, &rec.bound_by);
    diffs.truncate(MAX_SHOWN);
    MissCause {
        nearest_l1: Some(rec.l1.clone()),
        nearest_at_ms: Some(rec.at_ms),
        differences: diffs,
        total,
        hint,
    }
}

/// How a unit's records read the environment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EnvRead {
    /// Variable by variable.
    ByName,
    /// Through the `cc` crate's copy, keyed on what cc consults.
    CcCopy,
    /// Whole, keyed on every variable.
    Whole,
}

/// What to do about a cause, where something can be done.
fn hint(
    diffs: &[Difference],
    whole_env: EnvRead,
    bound_by: &[crate::store::BoundBy],
) -> Option<String> {
    let has = |k: DiffKind| diffs.iter().any(|d| d.what == k);
    if has(DiffKind::NotInStore) {
        return Some(format!(
            "if `cargo xcache stats` shows the store at its size limit, raise {}",
            crate::config::vars::CACHE_SIZE
        ));
    }
    if whole_env == EnvRead::CcCopy && has(DiffKind::ReadEnvVar) {
        return Some(format!(
            "this unit's build script uses the cc crate, which copies the environment when it starts: the run is keyed on the variables cc consults (its tool and flag variables such as CC and CFLAGS in their target spellings, CC_*, CRATE_CC_NO_DEFAULTS, cargo's CARGO_CFG_* and the few CARGO_ and RUSTC_ names its sources spell; PATH by what its searches found), and on no other; name those that cannot change what it produces in {} (see 'The cc crate's copy of the environment' in the book's design/observation page)",
            crate::config::vars::ENV_IGNORE
        ));
    }
    if whole_env == EnvRead::Whole && (has(DiffKind::ReadEnvVar) || has(DiffKind::Root)) {
        return Some(format!(
            "this unit reads the environment whole (a build script or proc-macro that walks every variable, a shell, make, perl or python it runs): it is keyed on every variable, and bound to the checkout and target dir by the paths among them; name those that cannot change what it produces in {} (see 'The environment read whole' in the book's design/observation page)",
            crate::config::vars::ENV_IGNORE
        ));
    }
    if has(DiffKind::Root) {
        let named: Vec<String> = bound_by
            .iter()
            .filter(|b| b.c_file_name)
            .map(|b| readable(&b.file).escape_debug().to_string())
            .collect();
        if !named.is_empty() {
            return Some(format!(
                "a C compile of the run opened a file below a machine path by its absolute name, and the file uses a name that expands to the file's own name ({}): `__FILE__`, or a macro built on it such as `assert`. The compiled code can keep that name as data (an assertion's message, its length), as plain cargo builds it, so the record holds only where that directory has the same path: give the machines that share the store the same path for it (CARGO_HOME, the checkout). A build script that names its C files by relative paths leaves the run free of it (see 'A C file's name' in the book's design/observation page)",
                named.join("; ")
            ));
        }
    }
    if has(DiffKind::Root)
        && let Some(check) = bound_by.iter().find(|b| b.count == 0 && !b.c_file_name)
    {
        return Some(format!(
            "a build-script run bound to its checkout, target dir and CARGO_HOME ({}): a run is stored free of them only when run a second time at aliases of them it printed and wrote the same, so that it cannot have turned a path into data; a record holds only where those directories have the same paths (see 'Build-script runs at another place' in the book's design/build-scripts page)",
            check.file.escape_debug()
        ));
    }
    if has(DiffKind::Root) && !bound_by.is_empty() {
        // Names from a store: shown escaped, never as raw control characters.
        let named: Vec<String> = bound_by
            .iter()
            .map(|b| {
                format!(
                    "{} names {} {} time{}",
                    b.file.escape_debug(),
                    if b.root == crate::key::RootKind::Cwd.token() {
                        "the checkout".to_string()
                    } else {
                        readable(&b.root)
                    }
                    .escape_debug(),
                    b.count,
                    if b.count == 1 { "" } else { "s" }
                )
            })
            .collect();
        return Some(format!(
            "the entry is bound to a machine path by its outputs ({}): it holds only where that directory has the same path. A C compile's debug information is remapped; what still names the path is text the program keeps (`__FILE__` in assertions, a path compiled in), as plain cargo builds it (see 'Outputs that name a machine path' in the book's design/keys page)",
            named.join("; ")
        ));
    }
    if has(DiffKind::Root) {
        return Some(
            "the entry is bound to another checkout or target dir: its outputs, or a variable the compile read (OUT_DIR or CARGO_MANIFEST_DIR through env!, say), named it, so it holds only where that directory has the same path (see 'Outputs that name a machine path' in the book's design/keys page)"
                .into(),
        );
    }
    let env_named = |name: &str| {
        diffs
            .iter()
            .any(|d| d.what == DiffKind::EnvVar && d.name.as_deref() == Some(name))
    };
    if env_named("PATH") {
        return Some(
            "a build-script run's key covers PATH (where it finds the programs it runs); build with the same PATH to share runs"
                .into(),
        );
    }
    if has(DiffKind::Feature) {
        return Some(
            "cargo resolved other features for this build (`-p`, `--features` or the set of packages built change them); build the same selection to share entries"
                .into(),
        );
    }
    if has(DiffKind::Flag) {
        return Some(
            "compare RUSTFLAGS and the profile settings ([profile.*] in Cargo.toml) between the two builds"
                .into(),
        );
    }
    None
}

fn diff(what: DiffKind, name: Option<&str>, before: Option<&str>, now: Option<&str>) -> Difference {
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

/// An input's name as a difference shows it: with its kind when the difference's kind
/// does not say it (`lookup cc`: what `cc` resolved to through PATH).
fn input_name(kind: &str, name: &str, what: DiffKind) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::InputDigest;

    fn rec(at: u64, args: &[&str], externs: &[&str], src: &str) -> KeyRecord {
        KeyRecord {
            bound_by: Vec::new(),
            at_ms: at,
            version: "1.0.0".into(),
            l1: format!("l1-{at}"),
            entry: Some(format!("e-{at}")),
            parts: KeyParts {
                compiler: "c".repeat(64),
                args: args.iter().map(|s| s.to_string()).collect(),
                externs: externs.iter().map(|s| s.to_string()).collect(),
                env: vec!["CARGO_PKG_NAME=0123456789abcdef".into()],
                ..KeyParts::default()
            },
            inputs: vec![InputDigest {
                kind: "path".into(),
                name: "@@xcache:ws@@/src/lib.rs".into(),
                state: src.into(),
            }],
        }
    }

    #[test]
    fn a_walk_above_the_checkout_reads_as_words() {
        use crate::key::above::{Spec, name};
        let d = |n: String| {
            describe(&diff(
                DiffKind::SourceFile,
                Some(&input_name("above", &n, DiffKind::SourceFile)),
                Some("-"),
                None,
            ))
        };
        assert!(
            d(name("@@xcache:ws@@", Spec::Every, ".git"))
                .contains(".git in every directory above .")
        );
        assert!(
            d(name("@@xcache:ws@@", Spec::Level(2), ""))
                .contains("(the directory) in the directory 2 above .")
        );
    }

    #[test]
    fn a_first_build_says_so() {
        let now = rec(5, &[], &[], "a");
        let c = explain_miss(&now, &[]);
        assert_eq!(c.differences[0].what, DiffKind::FirstSeen);
    }

    #[test]
    fn the_nearest_key_names_the_feature_and_the_dependency() {
        let old_far = rec(1, &["-C=opt-level=3"], &["dep=x"], "b");
        let old_near = rec(2, &["-C=opt-level=0"], &["dep=x"], "a");
        let now = rec(
            3,
            &["-C=opt-level=0", "--cfg=feature=\"std\""],
            &["dep=y"],
            "a",
        );
        let c = explain_miss(&now, &[old_far, old_near]);
        assert_eq!(c.nearest_l1.as_deref(), Some("l1-2"));
        let kinds: Vec<DiffKind> = c.differences.iter().map(|d| d.what).collect();
        assert_eq!(kinds, vec![DiffKind::Feature, DiffKind::Dependency]);
        assert_eq!(c.differences[1].name.as_deref(), Some("dep"));
        assert_eq!(
            c.one_line(),
            "feature --cfg=feature=\"std\" added, dependency dep changed"
        );
    }

    #[test]
    fn a_changed_source_file_is_named() {
        let old = rec(1, &[], &[], "a");
        let mut now = rec(2, &[], &[], "b");
        now.l1 = old.l1.clone();
        let c = explain_miss(&now, &[old]);
        assert_eq!(c.differences.len(), 1);
        assert_eq!(c.differences[0].what, DiffKind::SourceFile);
        assert_eq!(
            c.differences[0].name.as_deref(),
            Some("@@xcache:ws@@/src/lib.rs")
        );
    }

    /// An input one build read and the other did not is said by its name, not by the
    /// placeholder that stands for its value.
    #[test]
    fn an_added_or_removed_input_is_named() {
        let added = Difference {
            what: DiffKind::SourceFile,
            name: Some("@@xcache:ws@@/src/gen.c".into()),
            before: None,
            now: Some("-".into()),
        };
        assert_eq!(describe(&added), "source-file src/gen.c added");
        let removed = Difference {
            before: Some("-".into()),
            now: None,
            ..added
        };
        assert_eq!(describe(&removed), "source-file src/gen.c removed");
    }

    #[test]
    fn the_same_key_again_means_the_entry_is_gone() {
        let old = rec(1, &[], &[], "a");
        let mut now = old.clone();
        now.at_ms = 2;
        let c = explain_miss(&now, &[old]);
        assert_eq!(c.differences[0].what, DiffKind::NotInStore);
    }

    #[test]
    fn a_version_bump_is_the_lockfile() {
        let old = rec(1, &[], &[], "a");
        let mut now = rec(2, &[], &[], "a");
        now.version = "1.0.1".into();
        let c = explain_miss(&now, &[old]);
        assert_eq!(c.differences[0].what, DiffKind::LockfileVersion);
        assert_eq!(c.one_line(), "lockfile-version 1.0.0 -> 1.0.1");
    }

    /// A build-script run's record: `rec`'s, with a run's key parts and no inputs.
    fn run(at: u64, script: &str, env: &[&str], tools: &[&str], dep_trees: &[&str]) -> KeyRecord {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        KeyRecord {
            bound_by: Vec::new(),
            parts: KeyParts {
                compiler: "c".repeat(64),
                script: Some(script.into()),
                c_runtime: Some("r".into()),
                env: list(env),
                tools: list(tools),
                dep_trees: list(dep_trees),
                ..KeyParts::default()
            },
            inputs: Vec::new(),
            ..rec(at, &[], &[], "")
        }
    }

    #[test]
    fn a_build_script_run_names_what_differed() {
        let old = run(
            1,
            "s1",
            &[
                "CC=aa",
                "CARGO_FEATURE_STD=bb",
                "DEP_Z_INCLUDE=cc",
                "PATH=dd",
            ],
            &["cc=11"],
            &["DEP_Z_INCLUDE=22"],
        );
        let now = run(
            2,
            "s2",
            &["CC=ab", "DEP_Z_INCLUDE=cd", "PATH=dd"],
            &["cc=12"],
            &["DEP_Z_INCLUDE=23"],
        );
        let c = explain_miss(&now, &[old]);
        let got: Vec<(DiffKind, Option<&str>)> = c
            .differences
            .iter()
            .map(|d| (d.what, d.name.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (DiffKind::BuildScript, None),
                (DiffKind::Feature, Some("CARGO_FEATURE_STD")),
                (DiffKind::EnvVar, Some("CC")),
                (DiffKind::DepValue, Some("DEP_Z_INCLUDE")),
                (DiffKind::DepOutput, Some("DEP_Z_INCLUDE")),
                (DiffKind::Tool, Some("cc")),
            ]
        );
        assert_eq!(
            c.one_line(),
            "build-script executable changed, feature CARGO_FEATURE_STD removed, env-var CC changed, dep-value DEP_Z_INCLUDE changed, dep-output DEP_Z_INCLUDE changed, tool cc changed"
        );
        // PATH is named with what to do about it.
        let path_now = run(3, "s1", &["PATH=ee"], &[], &[]);
        let path_old = run(4, "s1", &["PATH=dd"], &[], &[]);
        let c = explain_miss(&path_now, &[path_old]);
        assert_eq!(c.differences[0].name.as_deref(), Some("PATH"));
        assert!(c.hint.unwrap().contains("PATH"));
    }

    /// A variable the cache added to a run is named where it alone changed (a store
    /// written when the cache added others); where the user's variable of that name
    /// changed, that is what is said.
    #[test]
    fn what_the_cache_added_to_a_run_is_named_when_only_it_changed() {
        let mut old = run(1, "s1", &["CFLAGS=aa"], &[], &[]);
        old.parts.added_env = vec!["CARGO_TRIM_PATHS_SCOPE=01".into()];
        let mut now = run(2, "s1", &["CFLAGS=aa"], &[], &[]);
        now.parts.added_env = vec!["CFLAGS=02".into()];
        let c = explain_miss(&now, std::slice::from_ref(&old));
        let got: Vec<(DiffKind, Option<&str>, bool)> = c
            .differences
            .iter()
            .map(|d| (d.what, d.name.as_deref(), d.now.is_some()))
            .collect();
        assert_eq!(
            got,
            vec![
                (DiffKind::AddedVar, Some("CARGO_TRIM_PATHS_SCOPE"), false),
                (DiffKind::AddedVar, Some("CFLAGS"), true),
            ]
        );
        // The two values are shown as keyed, roots by alias.
        let mut maps = run(5, "s1", &[], &[], &[]);
        maps.parts.added_env =
            vec!["CFLAGS_x=-fdebug-prefix-map=@@xcache:cargo-home@@=/xcache/cargo-home".into()];
        let mut fewer = run(6, "s1", &[], &[], &[]);
        fewer.parts.added_env = vec!["CFLAGS_x=".into()];
        let line = explain_miss(&fewer, &[maps]).one_line();
        assert_eq!(
            line,
            "added-var CFLAGS_x changed: \
             `-fdebug-prefix-map=$CARGO_HOME=/xcache/cargo-home` -> ``"
        );
        let mut user = run(3, "s1", &["CFLAGS=ab"], &[], &[]);
        user.parts.added_env = vec!["CFLAGS=03".into()];
        let mut before = run(4, "s1", &["CFLAGS=aa"], &[], &[]);
        before.parts.added_env = vec!["CFLAGS=02".into()];
        let c = explain_miss(&user, &[before]);
        assert_eq!(c.differences.len(), 1);
        assert_eq!(c.differences[0].what, DiffKind::EnvVar);
    }

    #[test]
    fn records_without_key_parts_compare_only_their_inputs() {
        let mut old = run(1, "s1", &["CC=aa"], &[], &[]);
        old.parts = KeyParts::default();
        let now = run(2, "s2", &["CC=ab"], &[], &[]);
        let c = explain_miss(&now, &[old]);
        assert_eq!(c.differences[0].what, DiffKind::Input, "{c:?}");
    }
}
