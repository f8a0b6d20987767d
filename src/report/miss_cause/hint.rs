//! What to do about a miss's cause, where something can be done: one hint, chosen by
//! the kinds of difference and by how the unit's records read the environment.

use super::words::readable;
use crate::key::{DiffKind, Difference};

/// How a unit's records read the environment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum EnvRead {
    /// Variable by variable.
    ByName,
    /// Through the `cc` crate's copy, keyed on what cc consults.
    CcCopy,
    /// Whole, keyed on every variable.
    Whole,
}

/// What to do about a cause, where something can be done.
pub(super) fn hint(
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
