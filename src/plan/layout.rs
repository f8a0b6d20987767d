//! Which of cargo's build-directory layouts (`key::Layout`) this build's units will be
//! in, decided once per build before cargo starts. Main function: [`expected_layout`].
//!
//! Seeding plants each unit where cargo will look for it, so it must know the layout
//! before cargo has put anything anywhere. It is read from what cargo itself is told and
//! what it left: the switches that select the new layout (`-Zbuild-dir-new-layout`,
//! `-Zfine-grain-locking`, their `CARGO_UNSTABLE_*` variables, cargo's own opt-out
//! variable), then the build dir's own shape (the legacy `.fingerprint/` or the new
//! `build/<package>/<hash>/fingerprint/`). A fresh build dir with no switch is the legacy
//! layout, cargo's default until the new one becomes it; the front-end checks after the
//! build that cargo kept the units where the plan said, and says so where it did not.

use std::path::Path;

use crate::config::Env;
use crate::key::Layout;

/// The switches of cargo that select the new layout.
const NEW_LAYOUT_FLAGS: [&str; 2] = ["build-dir-new-layout", "fine-grain-locking"];

/// The layout the build's units will be in, or why planting cannot know it.
pub fn expected_layout(
    cargo_args: &[String],
    env: &Env,
    build_dir: &Path,
) -> Result<Layout, String> {
    let mut flags = Vec::new();
    let mut it = cargo_args.iter().take_while(|a| *a != "--");
    while let Some(a) = it.next() {
        if a == "-Z" {
            flags.extend(it.next().cloned());
        } else if let Some(f) = a.strip_prefix("-Z") {
            flags.push(f.to_string());
        }
    }
    let by_flag = flags.iter().any(|f| NEW_LAYOUT_FLAGS.contains(&f.as_str()));
    let by_env = NEW_LAYOUT_FLAGS.iter().any(|f| {
        let var = format!("CARGO_UNSTABLE_{}", f.to_uppercase().replace('-', "_"));
        env.get(&var).is_some_and(|v| v == "true")
    });
    if by_flag || by_env {
        return Ok(Layout::New);
    }
    if env
        .get("__CARGO_TEMPORARY_BUILD_DIR_NEW_LAYOUT_OPT_OUT")
        .is_some()
    {
        return Ok(Layout::Legacy);
    }
    let (legacy, new) = shapes(build_dir);
    match (legacy, new) {
        (_, false) => Ok(Layout::Legacy),
        (false, true) => Ok(Layout::New),
        (true, true) => Err(format!(
            "the build dir {} holds units in both of cargo's layouts, and no switch says \
             which this cargo uses (remove it, or pass -Zbuild-dir-new-layout for the new one)",
            build_dir.display()
        )),
    }
}

/// Whether the build dir's profile directories hold units in the legacy layout and in
/// the new one.
fn shapes(build_dir: &Path) -> (bool, bool) {
    let (mut legacy, mut new) = (false, false);
    let mut profiles = Vec::new();
    for e in read_dir(build_dir) {
        let p = build_dir.join(&e);
        profiles.push(p.clone());
        // `<triple>/<profile>`.
        profiles.extend(read_dir(&p).into_iter().map(|s| p.join(s)));
    }
    for p in profiles {
        legacy |= !read_dir(&p.join(".fingerprint")).is_empty();
        new |= read_dir(&p.join("build")).iter().any(|pkg| {
            read_dir(&p.join("build").join(pkg)).iter().any(|h| {
                p.join("build")
                    .join(pkg)
                    .join(h)
                    .join("fingerprint")
                    .is_dir()
            })
        });
    }
    (legacy, new)
}

fn read_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_layout_comes_from_cargos_switches_then_from_the_build_dir() {
        let d = tempfile::tempdir().unwrap();
        let none = env(&[]);
        assert_eq!(
            expected_layout(&args(&[]), &none, d.path()),
            Ok(Layout::Legacy)
        );
        for a in [
            &["-Zbuild-dir-new-layout"][..],
            &["-Z", "build-dir-new-layout"],
            &["--release", "-Zfine-grain-locking"],
        ] {
            assert_eq!(
                expected_layout(&args(a), &none, d.path()),
                Ok(Layout::New),
                "{a:?}"
            );
        }
        // After `--` the arguments are the program's.
        assert_eq!(
            expected_layout(&args(&["--", "-Zbuild-dir-new-layout"]), &none, d.path()),
            Ok(Layout::Legacy)
        );
        let var = env(&[("CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT", "true")]);
        assert_eq!(expected_layout(&args(&[]), &var, d.path()), Ok(Layout::New));

        // What cargo left: the new layout's shape, then both.
        std::fs::create_dir_all(
            d.path()
                .join("debug/build/foo/0123456789abcdef/fingerprint"),
        )
        .unwrap();
        assert_eq!(
            expected_layout(&args(&[]), &none, d.path()),
            Ok(Layout::New)
        );
        std::fs::create_dir_all(d.path().join("debug/.fingerprint/foo-0123456789abcdef")).unwrap();
        let both = expected_layout(&args(&[]), &none, d.path()).unwrap_err();
        assert!(both.contains("both of cargo's layouts"), "{both}");
        let opt_out = env(&[("__CARGO_TEMPORARY_BUILD_DIR_NEW_LAYOUT_OPT_OUT", "1")]);
        assert_eq!(
            expected_layout(&args(&[]), &opt_out, d.path()),
            Ok(Layout::Legacy)
        );
    }
}
