//! A build script's executable that holds its machine's roots as text, and how it was
//! compiled. Main functions: [`holds_root`], [`write_recipe`], [`read_recipe`].
//!
//! A script that takes `env!("CARGO_MANIFEST_DIR")` (libsqlite3-sys's, to find its C
//! sources) is compiled with that path in its bytes: under another `CARGO_HOME` or
//! checkout its executable differs, rightly compiled again. Its runs, keyed by the
//! executable's content, would then miss there too, and its C be compiled again. So
//! such an executable is known by its compile's key with the roots tokenized
//! (`key::rooted_identity`), the same wherever the roots are; and what its runs may
//! replay elsewhere is proven by the path check with the script compiled at the aliases
//! of the roots (`run_check`), from the recipe kept beside it here.
//!
//! The recipe is the wrapper's own, written where the compile ran or was restored. It
//! never travels: seeding leaves it out of packs and refuses to plant one (it names the
//! arguments a compiler is run with).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::PathMap;

/// The suffix of a recipe beside a script's real executable.
pub const RECIPE_SUFFIX: &str = ".xcache-recipe";

/// How a build script's executable was compiled, its roots tokenized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub format_version: u32,
    /// rustc's arguments as cargo gave them (not the ones the cache adds).
    pub args: Vec<String>,
    /// The compile's working directory.
    pub cwd: String,
    /// The names of every variable the compile had: the second compile gets the run's
    /// values of these (cargo gives both the same environment, its own variables aside),
    /// and no other.
    pub names: Vec<String>,
    /// The variables cargo sets for the compile (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`,
    /// …: `key::is_keyed_cargo_var`) with their values.
    pub cargo_vars: Vec<(String, String)>,
}

impl Recipe {
    /// The recipe of a compile with `args` in `cwd` and environment `vars`.
    pub fn new<'a>(
        args: &[String],
        cwd: &Path,
        vars: impl Iterator<Item = (&'a String, &'a String)>,
        pm: &PathMap,
    ) -> Recipe {
        let mut names = Vec::new();
        let mut cargo_vars = Vec::new();
        for (k, v) in vars {
            names.push(k.clone());
            // cargo's own for the compile only: its settings (`CARGO_REGISTRY_TOKEN`, …)
            // pass through to rustc too, and stay out of the recipe.
            if crate::key::is_keyed_cargo_var(k) {
                cargo_vars.push((k.clone(), pm.normalize_text(v)));
            }
        }
        Recipe {
            format_version: 1,
            args: args.iter().map(|a| pm.normalize_text(a)).collect(),
            cwd: pm.normalize_path(cwd),
            names,
            cargo_vars,
        }
    }
}

/// Where the recipe of the real executable `real` is kept.
pub fn recipe_path(real: &Path) -> PathBuf {
    let mut s = real.as_os_str().to_owned();
    s.push(RECIPE_SUFFIX);
    PathBuf::from(s)
}

/// Keeps `recipe` beside `real`.
pub fn write_recipe(real: &Path, recipe: &Recipe) -> io::Result<()> {
    let text = serde_json::to_vec(recipe).map_err(io::Error::other)?;
    crate::fsx::write_atomic(&recipe_path(real), &text)
}

/// The recipe beside `real`, if there is one of this format.
pub fn read_recipe(real: &Path) -> Option<Recipe> {
    let meta = fs::symlink_metadata(recipe_path(real)).ok()?;
    if !meta.is_file() {
        return None;
    }
    let r: Recipe = serde_json::from_slice(&fs::read(recipe_path(real)).ok()?).ok()?;
    (r.format_version == 1).then_some(r)
}

/// Removes a recipe beside `real` (an executable that holds no root needs none).
pub fn remove_recipe(real: &Path) {
    let _ = fs::remove_file(recipe_path(real));
}

/// True when the file at `path` holds one of `pm`'s roots as text. Read in pieces.
pub fn holds_root(path: &Path, pm: &PathMap) -> io::Result<bool> {
    let needles: Vec<&[u8]> = pm
        .roots()
        .iter()
        .map(|r| r.real.as_bytes())
        .filter(|n| n.len() > 1)
        .collect();
    let Some(longest) = needles.iter().map(|n| n.len()).max() else {
        return Ok(false);
    };
    let finders: Vec<memchr::memmem::Finder<'_>> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; (1 << 20) + longest];
    let mut kept = 0usize;
    loop {
        let n = file.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let end = kept + n;
        if finders.iter().any(|f| f.find(&buf[..end]).is_some()) {
            return Ok(true);
        }
        // Keep the tail a root could start in.
        let tail = (longest - 1).min(end);
        buf.copy_within(end - tail..end, 0);
        kept = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_across_pieces_is_found() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("home");
        fs::create_dir(&root).unwrap();
        let pm = PathMap::new(d.path(), None, Some(&root));
        let real = pm
            .roots()
            .iter()
            .find(|r| r.kind == crate::key::RootKind::CargoHome)
            .unwrap()
            .real
            .clone();
        let f = d.path().join("bin");
        // The root straddles the first piece's end.
        let mut bytes = vec![7u8; (1 << 20) - 3];
        bytes.extend_from_slice(real.as_bytes());
        bytes.extend_from_slice(b"/registry\0");
        fs::write(&f, &bytes).unwrap();
        assert!(holds_root(&f, &pm).unwrap());
        fs::write(&f, vec![7u8; 3 << 20]).unwrap();
        assert!(!holds_root(&f, &pm).unwrap());
    }

    #[test]
    fn a_recipe_holds_tokens_not_roots() {
        let d = tempfile::tempdir().unwrap();
        let pm = PathMap::new(d.path(), None, None);
        let ws = d.path().display().to_string();
        let vars = [
            ("CARGO_MANIFEST_DIR".to_string(), ws.clone()),
            ("SECRET_TOKEN".to_string(), "hunter2".to_string()),
            ("CARGO_REGISTRY_TOKEN".to_string(), "hunter3".to_string()),
        ];
        let r = Recipe::new(
            &[format!("{ws}/build.rs")],
            d.path(),
            vars.iter().map(|(k, v)| (k, v)),
            &pm,
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains(&ws), "{text}");
        assert!(
            !text.contains("hunter2"),
            "a value that is not cargo's is not kept: {text}"
        );
        assert!(text.contains("SECRET_TOKEN"));
        let real = d.path().join("build_script_build-1.xcache-real");
        write_recipe(&real, &r).unwrap();
        assert_eq!(read_recipe(&real), Some(r));
    }
}
