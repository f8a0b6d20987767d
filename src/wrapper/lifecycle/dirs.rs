//! The directories a unit works in: the target directory its output directory belongs
//! to ([`target_root`]), and where a run may write scratch files ([`scratch_dirs`]).

use std::path::{Path, PathBuf};

use crate::config::Env;

/// The target (build) directory an output directory belongs to: the nearest ancestor
/// holding cargo's `CACHEDIR.TAG`, else what cargo's layout says: two levels up from
/// `<target>/<profile>/deps`, three from `<target>/<profile>/build/<unit>`.
///
/// With `--target`, cargo tags `<target>/<triple>` as well as `<target>`: the outer
/// one is the root, so that a unit's paths are relative to the directory the front-end
/// plans (and plants) in.
pub(in crate::wrapper) fn target_root(out_dir: &Path) -> PathBuf {
    let tagged = |d: &Path| d.join("CACHEDIR.TAG").is_file();
    // The new layout's `<root>/<triple>/<profile>/build/<pkg>/<hash>/out` is six
    // levels below the root.
    for dir in out_dir.ancestors().take(7) {
        if tagged(dir) {
            return match dir.parent() {
                Some(up) if tagged(up) => up.to_path_buf(),
                _ => dir.to_path_buf(),
            };
        }
    }
    let name_up = |n: usize| out_dir.ancestors().nth(n).and_then(Path::file_name);
    let up = if name_up(1).is_some_and(|n| n == "build") {
        3
    } else if name_up(0).is_some_and(|n| n == "out") && name_up(3).is_some_and(|n| n == "build") {
        5
    } else {
        2
    };
    out_dir.ancestors().nth(up).unwrap_or(out_dir).to_path_buf()
}

/// The directories a run may write scratch files in: the temporary directories.
pub(in crate::wrapper) fn scratch_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["TMPDIR", "TMP", "TEMP"]
        .iter()
        .filter_map(|v| env.get(v).map(PathBuf::from))
        .collect();
    dirs.extend(["/tmp", "/var/tmp", "/dev/shm"].iter().map(PathBuf::from));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_root_follows_cargo_layout_without_a_tag() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("no-tag-here/target");
        assert_eq!(target_root(&t.join("debug/deps")), t);
        assert_eq!(target_root(&t.join("debug/build/foo-0123")), t);
        assert_eq!(target_root(&t.join("debug/build/foo/0123/out")), t);
        std::fs::create_dir_all(t.join("x86_64-unknown-linux-gnu/debug/deps")).unwrap();
        let tag = "Signature: 8a477f597d28d172789f06886806bc55";
        std::fs::write(t.join("CACHEDIR.TAG"), tag).unwrap();
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/deps")),
            t
        );
        // Cargo tags the triple's directory too.
        std::fs::write(t.join("x86_64-unknown-linux-gnu/CACHEDIR.TAG"), tag).unwrap();
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/deps")),
            t
        );
        assert_eq!(
            target_root(&t.join("x86_64-unknown-linux-gnu/debug/build/foo-0123")),
            t
        );
    }
}
