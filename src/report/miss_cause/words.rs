//! A miss's cause in words: each kind of difference's stable code, a difference said
//! as a person reads it ([`describe`]), a cause on one line.

use crate::key::{DiffKind, Difference, MissCause};

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
pub(super) fn readable(text: &str) -> String {
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
