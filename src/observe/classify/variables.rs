//! The inputs a variable read makes: its normalized value, and the machine roots the
//! value names, unless the variable is one that names a place without binding to it.

use crate::key::{Input, InputKind, PathMap, Root};

/// Whether `name` is one of `unbound` (names, or prefixes ending in `*`).
pub fn is_unbound(unbound: &[&str], name: &str) -> bool {
    unbound.iter().any(|u| match u.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *u == name,
    })
}

/// The inputs a variable read (or declared) makes: [`env_inputs`], except that one of
/// `unbound` names a place and binds nothing (its normalized value only).
pub fn var_inputs(name: &str, value: Option<&str>, pm: &PathMap, unbound: &[&str]) -> Vec<Input> {
    if is_unbound(unbound, name) {
        vec![Input::env(
            name,
            value.map(|v| pm.normalize_text(v)).as_deref(),
        )]
    } else {
        env_inputs(name, value, pm)
    }
}

/// The inputs a variable read makes: its normalized value, and the roots that value
/// names (which bind the unit to their real paths).
pub fn env_inputs(name: &str, value: Option<&str>, pm: &PathMap) -> Vec<Input> {
    let mut out = vec![Input::env(
        name,
        value.map(|v| pm.normalize_text(v)).as_deref(),
    )];
    if let Some(v) = value {
        out.extend(bound_roots(v, pm));
    }
    out
}

/// The roots `text` names, as [`InputKind::Root`] inputs (each occurrence counted for
/// the most specific root, as normalization replaces it).
pub fn bound_roots(text: &str, pm: &PathMap) -> Vec<Input> {
    let normalized = pm.normalize_text(text);
    pm.roots()
        .iter()
        .filter(|r: &&Root| normalized.contains(r.kind.token()))
        .map(|r| Input::new(InputKind::Root, r.kind.token(), r.real.clone()))
        .collect()
}
