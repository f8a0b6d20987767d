//! `cargo xcache prepare` and `cargo xcache warm`: the recipe is stable under source
//! edits and follows what builds the dependencies; a build after `warm` compiles no
//! dependency, in the same directory, in another one, or after the target dir is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::layouts::{CargoLayout, pairs};
use crate::common::{Build, Report, Scratch, base_command, copy_fixture, xcache_build, xcache_exe};

/// The packages whose sources a recipe replaces by placeholders.
const LOCAL_PACKAGES: &[&str] = &["chef-app", "chef-core", "chef-outside", "chef-tools"];

/// Their crates' names, as file names in the target dir spell them.
const LOCAL_CRATES: &[&str] = &[
    "chef_app",
    "chef-app",
    "chef_core",
    "chef_outside",
    "chef_tools",
    "other",
    "extra",
];

/// `chef` and the path dependency outside it, side by side under `rel`, dated a minute
/// back as a checkout made before the build (`common::age`); returns the workspace.
fn checkout(s: &Scratch, rel: &str) -> PathBuf {
    let ws = s.path(&format!("{rel}/chef"));
    copy_fixture("chef", &ws);
    copy_fixture("chef-outside", &s.path(&format!("{rel}/chef-outside")));
    crate::common::age(&s.path(rel), 60);
    ws
}

fn xcache(cwd: &Path, store: &Path, args: &[&str]) -> Output {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.arg("xcache").args(args);
    cmd.output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn prepare(s: &Scratch, ws: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["prepare", "--recipe-path", "recipe.json"];
    args.extend_from_slice(extra);
    ok(xcache(ws, &s.store(), &args));
    std::fs::read(ws.join("recipe.json")).unwrap()
}

/// `cargo xcache warm --message-format=json <args>` in `cwd`.
fn warm(cwd: &Path, store: &Path, args: &[&str]) -> Build {
    warm_with(cwd, store, args, &[])
}

/// [`warm`] with variables `env` set.
fn warm_with(cwd: &Path, store: &Path, args: &[&str], env: &[(String, String)]) -> Build {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.args(["xcache", "warm", "--message-format=json"])
        .args(args)
        .envs(pairs(env));
    Build::from_output(cmd.output().unwrap(), cwd)
}

/// Copies the real sources over a skeleton: `chef` into `dest/chef`, the outside
/// dependency next to it.
fn copy_sources(dest: &Path) {
    copy_fixture("chef", &dest.join("chef"));
    copy_fixture("chef-outside", &dest.join("chef-outside"));
}

fn is_local(msg: &serde_json::Value) -> bool {
    msg["package_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("path+file://"))
}

/// Every dependency artifact of the build is fresh, and there are some (itoa, libc and
/// libc's build script); the workspace's own were built.
fn assert_dependencies_fresh(b: &Build) {
    let artifacts: Vec<&serde_json::Value> = b
        .messages
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact")
        .collect();
    let deps: Vec<(String, bool)> = artifacts
        .iter()
        .filter(|m| !is_local(m))
        .map(|m| {
            (
                format!(
                    "{}:{}",
                    m["target"]["name"].as_str().unwrap(),
                    m["target"]["kind"][0].as_str().unwrap()
                ),
                m["fresh"] == true,
            )
        })
        .collect();
    let names: BTreeSet<&str> = deps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["itoa:lib", "libc:lib", "build-script-build:custom-build"]),
        "{}",
        b.stderr()
    );
    assert!(
        deps.iter().all(|(_, fresh)| *fresh),
        "a dependency was rebuilt: {deps:?}\n{}",
        b.stderr()
    );
}

/// Files of the target dir whose names mention a local package.
fn local_files_in(target: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![target.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if LOCAL_CRATES
                .iter()
                .chain(&["chef-core", "chef-outside", "chef-tools"])
                .any(|c| name.contains(c))
            {
                found.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn recipe_is_the_same_after_source_edits_and_version_bumps() {
    let s = Scratch::new();
    let ws = checkout(&s, "a");
    let before = prepare(&s, &ws, &[]);
    let text = String::from_utf8(before.clone()).unwrap();
    assert!(
        !text.contains("pub fn describe"),
        "source text in the recipe"
    );
    assert!(!text.contains("0.3.1") && !text.contains("1.4.0"), "{text}");
    // The whole recipe, reviewed: no path of this machine, targets explicit.
    insta::assert_snapshot!("chef_recipe", text);

    let edit = |rel: &str, from: &str, to: &str| {
        let p = ws.join(rel);
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(from), "{rel}: {from}");
        std::fs::write(&p, t.replace(from, to)).unwrap();
    };
    edit("app/src/main.rs", "describe(42)", "describe(43)");
    edit("core/src/lib.rs", "\"{} {}\"", "\"{}: {}\"");
    std::fs::write(ws.join("core/src/extra.rs"), "pub fn unused() {}\n").unwrap();
    assert_eq!(prepare(&s, &ws, &[]), before);

    // A release of the workspace: its versions and the requirements between members.
    edit("Cargo.toml", "version = \"0.3.1\"", "version = \"0.4.0\"");
    edit(
        "app/Cargo.toml",
        "version = \"0.3.1\"",
        "version = \"0.4.0\"",
    );
    edit(
        "tools/Cargo.toml",
        "version = \"1.4.0\"",
        "version = \"1.5.0\"",
    );
    assert_eq!(prepare(&s, &ws, &[]), before);
    let lock = std::fs::read_to_string(ws.join("Cargo.lock")).unwrap();
    assert!(lock.contains("0.4.0"), "cargo did not update the lockfile");
}

#[test]
fn recipe_changes_with_what_builds_the_dependencies() {
    let s = Scratch::new();
    let base = prepare(&s, &checkout(&s, "base"), &[]);
    type Change = (&'static str, fn(&Path));
    let changes: &[Change] = &[
        ("feature of a dependency", |ws| {
            let p = ws.join("app/Cargo.toml");
            let t = std::fs::read_to_string(&p).unwrap().replace(
                "libc = \"0.2\"",
                "libc = { version = \"0.2\", features = [\"extra_traits\"] }",
            );
            std::fs::write(p, t).unwrap();
        }),
        ("profile", |ws| {
            let p = ws.join("Cargo.toml");
            let t = std::fs::read_to_string(&p)
                .unwrap()
                .replace("debug = 1", "debug = 2");
            std::fs::write(p, t).unwrap();
        }),
        ("dependency added", |ws| {
            let p = ws.join("app/Cargo.toml");
            let t = std::fs::read_to_string(&p).unwrap().replace(
                "libc = \"0.2\"",
                "libc = \"0.2\"\nitoa = { workspace = true }",
            );
            std::fs::write(p, t).unwrap();
        }),
        ("dependency bumped", |ws| {
            let out = std::process::Command::new("cargo")
                .args(["update", "--offline", "-p", "libc", "--precise", "0.2.186"])
                .current_dir(ws)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }),
        ("cargo configuration", |ws| {
            std::fs::create_dir_all(ws.join(".cargo")).unwrap();
            std::fs::write(
                ws.join(".cargo/config.toml"),
                "[build]\nrustflags = [\"--cfg\", \"chef\"]\n",
            )
            .unwrap();
        }),
    ];
    for (i, (what, change)) in changes.iter().enumerate() {
        let ws = checkout(&s, &format!("c{i}"));
        change(&ws);
        assert_ne!(
            prepare(&s, &ws, &[]),
            base,
            "{what} left the recipe unchanged"
        );
    }
}

#[test]
fn build_after_warm_rebuilds_no_dependency() {
    let s = Scratch::new();
    let planner = checkout(&s, "planner");
    let recipe = prepare(&s, &planner, &[]);

    // The builder: an empty directory holding only the recipe.
    let builder = s.path("builder");
    std::fs::create_dir_all(builder.join("chef")).unwrap();
    std::fs::write(builder.join("chef/recipe.json"), &recipe).unwrap();
    // Without --skeleton-root, the recipe's `../chef-outside` is refused before
    // anything is written.
    let out = xcache(
        &builder.join("chef"),
        &s.store(),
        &["warm", "--recipe-path", "recipe.json", "--locked"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"../chef-outside/Cargo.toml\" lies outside")
            && err.contains("--skeleton-root"),
        "{err}"
    );
    assert!(!builder.join("chef-outside").exists() && !builder.join("chef/Cargo.toml").exists());
    let w = warm(
        &builder.join("chef"),
        &s.store(),
        &[
            "--recipe-path",
            "recipe.json",
            "--skeleton-root",
            "..",
            "--locked",
        ],
    );
    w.assert_success();
    let target = builder.join("chef/target");
    assert_eq!(local_files_in(&target), Vec::<String>::new());
    // Units of local packages are placeholders, never stored; every dependency unit is.
    let r = Report::read(&target);
    let mut stored = BTreeSet::new();
    let mut placeholders = BTreeSet::new();
    for u in r.0["units"].as_array().unwrap() {
        let package = u["package"].as_str().unwrap();
        let unit = format!("{package}:{}", u["kind"].as_str().unwrap());
        if LOCAL_PACKAGES.contains(&package) {
            assert_eq!(u["outcome"], "uncacheable", "{u}");
            assert_eq!(u["reason"], "placeholder", "{u}");
            placeholders.insert(unit);
        } else {
            assert_eq!(u["outcome"], "miss", "{u}");
            stored.insert(unit);
        }
    }
    for unit in [
        "itoa:lib",
        "libc:lib",
        "libc:build-script",
        "libc:build-script-run",
    ] {
        assert!(stored.contains(unit), "{unit} not stored: {stored:?}");
    }
    for unit in [
        "chef-core:lib",
        "chef-core:build-script",
        "chef-outside:lib",
    ] {
        assert!(placeholders.contains(unit), "{unit}: {placeholders:?}");
    }

    // What warm alone left in the store, once for each builder below that must not
    // profit from the other builds' captures.
    let store_elsewhere = s.path("store-elsewhere");
    copy_tree(&s.store(), &store_elsewhere);
    let store_ephemeral = s.path("store-ephemeral");
    copy_tree(&s.store(), &store_ephemeral);

    // Another absolute directory, a new target dir.
    let elsewhere = checkout(&s, "deep/elsewhere");
    let b = xcache_build(&elsewhere, &store_elsewhere, &["--locked"], &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
    assert_eq!(b.run("chef-app"), "core 0.3.1 outside 42\n");

    // Same directory, same target dir: the real sources copied over the skeleton.
    copy_sources(&builder);
    let b = xcache_build(&builder.join("chef"), &s.store(), &["--locked"], &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
    // The member's own build script ran for real, with the real version.
    assert_eq!(b.run("chef-app"), "core 0.3.1 outside 42\n");

    // The ephemeral builder: same directory, target dir emptied, the cache as warm left it.
    std::fs::remove_dir_all(&target).unwrap();
    let b = xcache_build(&builder.join("chef"), &store_ephemeral, &["--locked"], &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

#[test]
fn warm_without_recipe_fills_the_cache_for_the_workspace() {
    let s = Scratch::new();
    let ws = checkout(&s, "main");
    let main_rs = std::fs::read_to_string(ws.join("app/src/main.rs")).unwrap();
    let w = warm(&ws, &s.store(), &["--release", "--locked"]);
    w.assert_success();
    // The workspace itself is untouched: no placeholder, no target dir.
    assert_eq!(
        std::fs::read_to_string(ws.join("app/src/main.rs")).unwrap(),
        main_rs
    );
    assert!(!ws.join("target").exists());
    let ids: Vec<&str> = w
        .messages
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact" && !is_local(m))
        .filter_map(|m| m["target"]["name"].as_str())
        .collect();
    assert!(ids.contains(&"libc"), "{ids:?}\n{}", w.stderr());

    let b = xcache_build(&ws, &s.store(), &["--release", "--locked"], &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);

    // A target dir named on the command line is the workspace's, relative to where warm
    // ran; it holds the dependencies and nothing of the placeholders.
    let ws2 = checkout(&s, "other");
    let w = warm(&ws2, &s.store(), &["--target-dir", "t2", "--locked"]);
    w.assert_success();
    assert!(ws2.join("t2/debug/.fingerprint").is_dir(), "{}", w.stderr());
    assert_eq!(local_files_in(&ws2.join("t2")), Vec::<String>::new());
    let b = xcache_build(&ws2, &s.store(), &["--target-dir", "t2", "--locked"], &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
}

#[test]
fn bin_selection_keeps_the_owner_and_its_local_dependencies() {
    let s = Scratch::new();
    let planner = checkout(&s, "planner");
    let bytes = prepare(&s, &planner, &["--bin", "other"]);
    let recipe: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let packages: Vec<&str> = recipe["local_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(packages, ["chef-app", "chef-core", "chef-outside"]);
    let file = |path: &str| -> String {
        recipe["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .and_then(|f| f["contents"].as_str())
            .unwrap_or_else(|| panic!("no {path} in the recipe"))
            .to_string()
    };
    assert!(!file("Cargo.lock").contains("chef-tools"));
    let app = file("app/Cargo.toml");
    assert!(
        app.contains("name = \"other\"") && !app.contains("name = \"extra\""),
        "{app}"
    );
    assert_eq!(recipe["bin"]["package"], "chef-app");

    // `--locked` holds: the pruned lockfile is the one cargo would write.
    let builder = s.path("builder");
    std::fs::create_dir_all(builder.join("chef")).unwrap();
    std::fs::write(builder.join("chef/recipe.json"), &bytes).unwrap();
    warm(
        &builder.join("chef"),
        &s.store(),
        &[
            "--recipe-path",
            "recipe.json",
            "--skeleton-root",
            "..",
            "--locked",
        ],
    )
    .assert_success();
    assert!(!builder.join("chef/tools").exists());
    assert_eq!(
        local_files_in(&builder.join("chef/target")),
        Vec::<String>::new()
    );

    copy_sources(&builder);
    let args = ["-p", "chef-app", "--bin", "other", "--locked"];
    let b = xcache_build(&builder.join("chef"), &s.store(), &args, &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
    assert_eq!(b.run("other"), "other true\n");
}

#[test]
fn required_features_bin_is_warmed_with_its_features() {
    let s = Scratch::new();
    let planner = checkout(&s, "planner");
    let bytes = prepare(&s, &planner, &[]);
    assert!(String::from_utf8_lossy(&bytes).contains("required-features"));
    let builder = s.path("builder");
    std::fs::create_dir_all(builder.join("chef")).unwrap();
    std::fs::write(builder.join("chef/recipe.json"), &bytes).unwrap();
    let args = ["--features", "chef-app/extra", "--locked"];
    let w = warm(
        &builder.join("chef"),
        &s.store(),
        &[
            &["--recipe-path", "recipe.json", "--skeleton-root", ".."][..],
            &args[..],
        ]
        .concat(),
    );
    w.assert_success();
    assert!(
        w.messages
            .iter()
            .any(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "extra"),
        "the placeholder of the required-features bin was not built"
    );
    assert_eq!(
        local_files_in(&builder.join("chef/target")),
        Vec::<String>::new()
    );

    copy_sources(&builder);
    let b = xcache_build(&builder.join("chef"), &s.store(), &args, &[]);
    b.assert_success();
    assert_dependencies_fresh(&b);
    assert_eq!(b.run("extra"), "extra outside 7\n");
}

#[test]
fn bad_recipes_are_clear_errors() {
    let s = Scratch::new();
    let dir = s.path("builder");
    std::fs::create_dir_all(&dir).unwrap();
    let fails = |args: &[&str], needles: &[&str]| {
        let out = xcache(&dir, &s.store(), args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in:\n{err}");
        }
    };
    fails(
        &["warm", "--recipe-path", "missing.json"],
        &["missing.json", "cargo xcache prepare"],
    );
    std::fs::write(
        dir.join("garbled.json"),
        "{\"format_version\": 1, \"files\": [",
    )
    .unwrap();
    fails(
        &["warm", "--recipe-path", "garbled.json"],
        &["invalid recipe", "garbled.json", "not JSON"],
    );
    std::fs::write(dir.join("future.json"), "{\"format_version\": 99}").unwrap();
    fails(
        &["warm", "--recipe-path", "future.json"],
        &["invalid recipe", "future.json", "format_version 99"],
    );
    std::fs::write(
        dir.join("absolute.json"),
        "{\"format_version\": 1, \"files\": [{\"path\": \"/etc/x\", \"contents\": \"\"}], \
         \"placeholders\": [], \"local_packages\": [], \"bin\": null}",
    )
    .unwrap();
    fails(
        &["warm", "--recipe-path", "absolute.json"],
        &["absolute.json", "not relative"],
    );
    assert!(!Path::new("/etc/x").exists());
    // Climbing above the directory the skeleton may be written in, even with
    // --skeleton-root, or through a symbolic link planted on the way.
    let recipe = |path: &str| {
        format!(
            "{{\"format_version\": 1, \"files\": [{{\"path\": \"{path}\", \"contents\": \"x\"}}], \
             \"placeholders\": [], \"local_packages\": [], \"bin\": null}}"
        )
    };
    std::fs::write(dir.join("climb.json"), recipe("../../escaped")).unwrap();
    fails(
        &[
            "warm",
            "--recipe-path",
            "climb.json",
            "--skeleton-root",
            "..",
        ],
        &["\"../../escaped\" lies outside", "skeleton-root"],
    );
    assert!(!s.path("../escaped").exists() && !s.path("escaped").exists());
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("link")).unwrap();
    std::fs::write(dir.join("link.json"), recipe("link/Cargo.toml")).unwrap();
    fails(
        &["warm", "--recipe-path", "link.json"],
        &["\"link/Cargo.toml\" lies outside"],
    );
    assert!(!elsewhere.join("Cargo.toml").exists());

    // A directory that already holds sources is never overwritten.
    let ws = checkout(&s, "ws");
    prepare(&s, &ws, &[]);
    let main_rs = std::fs::read_to_string(ws.join("app/src/main.rs")).unwrap();
    let out = xcache(
        &ws,
        &s.store(),
        &[
            "warm",
            "--recipe-path",
            "recipe.json",
            "--skeleton-root",
            "..",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("other contents than the recipe"), "{err}");
    assert_eq!(
        std::fs::read_to_string(ws.join("app/src/main.rs")).unwrap(),
        main_rs
    );

    // `--bin` that no member has.
    let out = xcache(&ws, &s.store(), &["prepare", "--bin", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\""));
}

#[test]
fn proc_macro_members_and_generated_code_survive_the_skeleton() {
    let s = Scratch::new();
    let ws = s.path("planner/ws");
    copy_fixture("basic-workspace", &ws);
    let bytes = prepare(&s, &ws, &[]);
    let recipe: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let macros = recipe["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "macros/Cargo.toml")
        .and_then(|f| f["contents"].as_str())
        .unwrap()
        .to_string();
    assert!(macros.contains("proc-macro = true"), "{macros}");
    assert!(!macros.contains("crate-type"), "{macros}");
    let root = recipe["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "Cargo.toml")
        .and_then(|f| f["contents"].as_str())
        .unwrap()
        .to_string();
    assert!(root.contains("default-members = [\"app\"]"), "{root}");

    let builder = s.path("builder/ws");
    std::fs::create_dir_all(&builder).unwrap();
    std::fs::write(builder.join("recipe.json"), &bytes).unwrap();
    warm(
        &builder,
        &s.store(),
        &["--recipe-path", "recipe.json", "--locked"],
    )
    .assert_success();
    assert_eq!(
        local_files_in_any(
            &builder.join("target"),
            &["app", "generated", "macros", "mid", "util"]
        ),
        Vec::<String>::new()
    );
    copy_fixture("basic-workspace", &builder);
    let b = xcache_build(&builder, &s.store(), &["--locked"], &[]);
    b.assert_success();
    assert!(b.run("app").starts_with("answer=42 widget=I am Widget"));
}

/// Files of the target dir named after one of `crates` (`<crate>-<hash>…`, `lib<crate>…`,
/// or the crate itself).
fn local_files_in_any(target: &Path, crates: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![target.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let stem = name.split('.').next().unwrap_or("");
            let base = stem.rsplit_once('-').map_or(stem, |(b, _)| b);
            let base = base.strip_prefix("lib").unwrap_or(base);
            if crates.contains(&base) && e.file_type().unwrap().is_file() {
                found.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                if crates.iter().any(|c| name.starts_with(&format!("{c}-"))) {
                    found.push(e.path().display().to_string());
                }
                stack.push(e.path());
            }
        }
    }
    found
}

/// The chef flow in one of cargo's layouts (the legacy one is the tests' above): warm
/// from the recipe in a builder, leaving nothing of the placeholders in its target and
/// build dirs; then the real sources in the same builder, and another directory with a
/// new target dir and build dir, the store as warm left it: every dependency fresh, the
/// program right.
fn chef_flow_in(layout: &str) {
    let Some(layout) = CargoLayout::all().into_iter().find(|l| l.name == layout) else {
        return;
    };
    let s = Scratch::new();
    let planner = checkout(&s, "planner");
    let recipe = prepare(&s, &planner, &[]);
    let builder = s.path("builder");
    std::fs::create_dir_all(builder.join("chef")).unwrap();
    std::fs::write(builder.join("chef/recipe.json"), &recipe).unwrap();
    let builder_env = layout.env(&s.path("build-dir-builder"));
    let run = |cwd: &Path, store: &Path, args: &[&str], env: &[(String, String)]| {
        let mut cmd = base_command(&xcache_exe(), cwd, store);
        cmd.arg("xcache").args(args).envs(pairs(env));
        Build::from_output(cmd.output().unwrap(), cwd)
    };
    let w = warm_with(
        &builder.join("chef"),
        &s.store(),
        &[
            "--recipe-path",
            "recipe.json",
            "--skeleton-root",
            "..",
            "--locked",
        ],
        &builder_env,
    );
    w.assert_success();
    let target = builder.join("chef/target");
    let mut left = local_files_in(&target);
    if layout.build_dir_apart {
        left.extend(local_files_in(&s.path("build-dir-builder")));
    }
    assert_eq!(left, Vec::<String>::new(), "{}", layout.name);
    layout.assert_records_apart(&target);
    let store_elsewhere = s.path("store-elsewhere");
    copy_tree(&s.store(), &store_elsewhere);

    copy_sources(&builder);
    let build = ["build", "--message-format=json", "--locked"];
    let b = run(&builder.join("chef"), &s.store(), &build, &builder_env);
    b.assert_success();
    assert_dependencies_fresh(&b);
    assert_eq!(
        b.run("chef-app"),
        "core 0.3.1 outside 42\n",
        "{}",
        layout.name
    );

    let elsewhere = checkout(&s, "deep/elsewhere");
    let env = layout.env(&s.path("build-dir-elsewhere"));
    let b = run(&elsewhere, &store_elsewhere, &build, &env);
    b.assert_success();
    assert_dependencies_fresh(&b);
    let r = Report::read(&elsewhere.join("target"));
    assert!(r.summary("seeded") >= 3, "{}: {}", layout.name, b.stderr());
    assert_eq!(
        b.run("chef-app"),
        "core 0.3.1 outside 42\n",
        "{}",
        layout.name
    );
}

#[test]
fn the_chef_flow_with_a_build_dir_apart() {
    chef_flow_in("build-dir");
}

#[test]
fn the_chef_flow_in_the_new_layout() {
    chef_flow_in("new");
}

#[test]
fn the_chef_flow_in_the_new_layout_with_a_build_dir_apart() {
    chef_flow_in("new-build-dir");
}
