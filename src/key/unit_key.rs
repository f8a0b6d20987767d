//! The two levels of a unit's key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CompilerId, Key, KeyHasher, PathMap, RustcInvocation, hash_file};
use crate::key::artifact::artifact_identity;
use crate::reason::Uncacheable;

/// Everything outside the command line that a key reads.
pub struct KeyEnv<'a> {
    pub path_map: &'a PathMap,
    pub compiler: &'a CompilerId,
    /// The environment rustc was started with.
    pub vars: &'a BTreeMap<String, String>,
    /// The directory rustc runs in.
    pub cwd: &'a Path,
    /// For units that link: what the link adds ([`super::link_key`]).
    pub link: Option<&'a Key>,
}

/// The first-level key of a unit, and how it was derived (for `cargo xcache explain`).
#[derive(Clone, Debug)]
pub struct UnitKeys {
    pub l1: Key,
    pub parts: KeyParts,
}

/// The named fields a first-level key was hashed from, as the report and the store's
/// key history keep them: what `cargo xcache explain` compares to say why a unit
/// missed. Environment values are kept as digests only (`NAME=<16 hex>`), so no
/// variable's value reaches the store's history or the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    /// The compiler's identity (hex).
    pub compiler: String,
    /// The directory rustc ran in and the crate root, normalized.
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub input: String,
    /// The normalized arguments (`--cfg feature="x"` among them).
    pub args: Vec<String>,
    /// `name=<identity>` of every `--extern`.
    pub externs: Vec<String>,
    /// `name=<digest>` of every bundled static library.
    #[serde(default)]
    pub static_libs: Vec<String>,
    /// `NAME=<16 hex of the value's digest>` of every keyed variable.
    pub env: Vec<String>,
    /// The link's identity (hex), for units that link.
    #[serde(default)]
    pub link: Option<String>,
    /// Build-script runs: the script executable's identity (`artifact_identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Build-script runs: the C linker driver's identity (hex), `unidentified` when
    /// it could not be identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_runtime: Option<String>,
    /// Build-script runs: `program=<16 hex>` of each C tool the run may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Build-script runs: `DEP_*=<16 hex>` of what each `links` dependency's run left
    /// in the target dir (the tree a `DEP_*` variable names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dep_trees: Vec<String>,
    /// Build-script runs: the flag variables through which their C and C++ compiles
    /// got `-fdebug-prefix-map` (`CFLAGS,CXXFLAGS`; empty for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_debug_map: Option<String>,
    /// Build-script runs: `NAME=<16 hex>` of each variable the cache added to the run's
    /// environment (values with the roots tokenized).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_env: Vec<String>,
}

/// `NAME=<16 hex>` for `NAME=value`: enough to see that a value changed, nothing of it.
pub(crate) fn redact_var(var: &str) -> String {
    match var.split_once('=') {
        Some((name, value)) => format!("{name}={}", &Key::digest(value.as_bytes()).to_hex()[..16]),
        None => var.to_string(),
    }
}

/// Variables cargo sets for rustc that describe the package being built. Cargo's own
/// configuration (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_PROFILE_*`, …) is not here:
/// what of it reaches rustc arrives as arguments, which are keyed on their own.
pub fn is_keyed_cargo_var(name: &str) -> bool {
    const NOT_FOR_RUSTC: &[&str] = &[
        "CARGO_MAKEFLAGS",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_",
        "CARGO_TERM_",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_PROFILE_",
        "CARGO_INCREMENTAL",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_LOG",
        "CARGO_UNSTABLE_",
        "CARGO_ALIAS_",
        "CARGO_CACHE_",
        "CARGO_FUTURE_INCOMPAT_",
        "CARGO_INSTALL_",
        "CARGO_SOURCE_",
        "CARGO_RESOLVER_",
        "CARGO_DOC_",
        "CARGO_NEW_",
        "CARGO_CARGO_NEW_",
    ];
    if !name.starts_with("CARGO_") {
        return false;
    }
    if name == "CARGO_TARGET_TMPDIR" {
        return true;
    }
    // `CARGO_TARGET_<triple>_LINKER` and friends are configuration.
    if name.starts_with("CARGO_TARGET_") {
        return false;
    }
    !NOT_FOR_RUSTC.iter().any(|p| name.starts_with(p))
}

/// True for the variables cargo sets for one unit (a compile or a build-script run),
/// whose values follow from what cargo's own fingerprint of the unit covers: the
/// package's metadata, its features and profile, the target, the dependencies' runs.
pub fn is_cargo_set_var(name: &str) -> bool {
    is_keyed_cargo_var(name)
        || name.starts_with("DEP_")
        || matches!(
            name,
            "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "RUSTC"
                | "RUSTDOC"
                | "RUSTC_LINKER"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO"
        )
}

/// True for the variables whose values a compile's first-level key holds: those cargo
/// sets for rustc and those rustc itself reads.
pub fn is_rustc_key_var(name: &str) -> bool {
    is_keyed_cargo_var(name) || RUSTC_VARS.contains(&name)
}

/// Variables read by rustc itself that change its output.
const RUSTC_VARS: &[&str] = &[
    "OUT_DIR",
    "RUSTC_BOOTSTRAP",
    "RUSTC_FORCE_RUSTC_VERSION",
    "MACOSX_DEPLOYMENT_TARGET",
    "IPHONEOS_DEPLOYMENT_TARGET",
    "TVOS_DEPLOYMENT_TARGET",
    "WATCHOS_DEPLOYMENT_TARGET",
    "XROS_DEPLOYMENT_TARGET",
];

/// The first-level key: everything known before rustc runs.
pub fn l1_key(inv: &RustcInvocation, env: &KeyEnv<'_>) -> Result<UnitKeys, Uncacheable> {
    let pm = env.path_map;
    let mut h = KeyHasher::new("unit-l1");
    h.key("compiler", &env.compiler.key);
    let cwd = pm.normalize_path(env.cwd);
    h.str("cwd", &cwd);
    let input = inv.input.as_deref().unwrap_or("");
    let input = pm.normalize_path(&env.cwd.join(input));
    h.str("input", &input);
    let args = inv.key_args(|p| pm.normalize_path(&env.cwd.join(p)));
    h.list("args", args.iter().map(String::as_str));

    let mut externs = Vec::with_capacity(inv.externs.len());
    for ext in &inv.externs {
        let id = match &ext.path {
            None => String::new(),
            Some(p) => {
                let ext_kind = p
                    .extension()
                    .map(|e| e.to_string_lossy())
                    .unwrap_or_default();
                let id = artifact_identity(&env.cwd.join(p))
                    .map_err(|_| Uncacheable::UnreadableInput)?;
                format!("{ext_kind}:{id}")
            }
        };
        externs.push(format!("{}={id}", ext.name));
    }
    externs.sort();
    h.list("externs", externs.iter().map(String::as_str));

    // Static libraries rustc bundles into an rlib. (For units that link, every `-l` is
    // part of `env.link`, found as the linker finds it.)
    let mut static_libs = Vec::new();
    let bundled = if inv.links() {
        &[][..]
    } else {
        &inv.static_libs[..]
    };
    for lib in bundled {
        let file_name = if lib.verbatim {
            lib.name.clone()
        } else {
            format!("lib{}.a", lib.name)
        };
        let found = inv
            .search_paths
            .iter()
            .filter(|(kind, _)| kind == "native" || kind == "all")
            .map(|(_, dir)| env.cwd.join(dir).join(&file_name))
            .find(|p| p.is_file())
            .ok_or(Uncacheable::UnresolvedNativeLib)?;
        let digest = hash_file(&found).map_err(|_| Uncacheable::UnreadableInput)?;
        static_libs.push(format!("{}={digest}", lib.name));
    }
    h.list("static-libs", static_libs.iter().map(String::as_str));

    let vars: Vec<String> = env
        .vars
        .iter()
        .filter(|(k, _)| is_rustc_key_var(k))
        .map(|(k, v)| format!("{k}={}", pm.normalize_text(v)))
        .collect();
    h.list("env", vars.iter().map(String::as_str));
    // Only units that link have this field, so library keys are what they were.
    if let Some(link) = env.link {
        h.key("link", link);
    }
    let parts = KeyParts {
        compiler: env.compiler.key.to_hex(),
        cwd,
        input,
        args,
        externs,
        static_libs,
        env: vars.iter().map(|v| redact_var(v)).collect(),
        link: env.link.map(Key::to_hex),
        ..KeyParts::default()
    };
    Ok(UnitKeys {
        l1: h.finish(),
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_config_vars_are_not_keyed() {
        assert!(is_keyed_cargo_var("CARGO_PKG_VERSION"));
        assert!(is_keyed_cargo_var("CARGO_MANIFEST_DIR"));
        assert!(is_keyed_cargo_var("CARGO_TARGET_TMPDIR"));
        assert!(!is_keyed_cargo_var("CARGO_MAKEFLAGS"));
        assert!(!is_keyed_cargo_var("CARGO_TARGET_DIR"));
        assert!(!is_keyed_cargo_var("CARGO_HOME"));
        assert!(!is_keyed_cargo_var(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER"
        ));
        assert!(!is_keyed_cargo_var("PATH"));
    }
}
