//! What paths a program shows (`file!()`, panic locations, debug info) when built through
//! the cache. Members and path dependencies inside the workspace show what plain cargo
//! shows (paths relative to the workspace root); a package outside the workspace shows
//! `/xcache/pkg/<name>-<version>/…`, one path per package, where plain cargo shows the
//! machine's absolute path; `XCACHE_REAL_PATHS=1` shows the machine's paths, at the cost
//! of hits in another checkout. (Registry and git crates keep
//! `/xcache/cargo-home/registry/src/<index>/<crate>-<version>/…` and
//! `/xcache/cargo-home/git/checkouts/<repo>/<rev>/…`, as before.)

use std::path::Path;

use crate::common::{Build, Report, Scratch, cargo_build, xcache_build};

/// `fixtures/shown-paths`: `ws/` depends on `outside/loca` and `outside/locb`.
fn shown(b: &Build) -> Vec<String> {
    b.run("app").lines().map(str::to_string).collect()
}

fn plain(ws: &Path) -> Vec<String> {
    let out = cargo_build(ws, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::process::Command::new(ws.join("target/debug/app"))
        .output()
        .unwrap();
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_package_shows_a_path_of_its_own() {
    let s = Scratch::new();
    let root = s.checkout("shown-paths", "a");
    let ws = root.join("ws");
    let cached = xcache_build(&ws, &s.store(), &[], &[]);
    cached.assert_success();
    let through = shown(&cached);
    assert_eq!(
        through,
        [
            "app: app/src/main.rs",
            "inner: inner/src/lib.rs",
            "loca: /xcache/pkg/loca-0.1.0/src/lib.rs",
            "locb: /xcache/pkg/locb-0.1.0/src/lib.rs",
        ]
    );
    // Plain cargo: the same for the members, the real paths outside.
    let reference = s.checkout("shown-paths", "plain");
    let p = plain(&reference.join("ws"));
    assert_eq!(p[..2], through[..2]);
    let outside = reference.join("outside").canonicalize().unwrap();
    assert_eq!(p[2], format!("loca: {}/loca/src/lib.rs", outside.display()));

    // A moved checkout shows the same. (Cargo's own unit hash of a package outside the
    // workspace names its absolute path, so those compile again; the member inside hits.)
    let moved = s.checkout("shown-paths", "b/much/deeper");
    let b = xcache_build(&moved.join("ws"), &s.store(), &[], &[]);
    b.assert_success();
    let r = Report::read(&moved.join("ws/target"));
    assert_eq!(r.outcomes()["inner:lib"], "hit", "{:?}", r.outcomes());
    assert_eq!(shown(&b), through);
}

#[test]
fn real_paths_show_the_machine_s_paths_and_hit_only_there() {
    let s = Scratch::new();
    let real = ("XCACHE_REAL_PATHS", "1");
    let root = s.checkout("shown-paths", "a");
    let b = xcache_build(&root.join("ws"), &s.store(), &[], &[real]);
    b.assert_success();
    assert!(b.stderr().contains("XCACHE_REAL_PATHS=1"), "{}", b.stderr());
    let outside = root.join("outside").canonicalize().unwrap();
    let through = shown(&b);
    assert_eq!(through[0], "app: app/src/main.rs");
    assert_eq!(
        through[2],
        format!("loca: {}/loca/src/lib.rs", outside.display())
    );
    // What a debugger reads: the executable names the real directory, not /xcache.
    let exe = std::fs::read(root.join("ws/target/debug/app")).unwrap();
    let has = |needle: &[u8]| exe.windows(needle.len()).any(|w| w == needle);
    assert!(has(outside.to_string_lossy().as_bytes()));
    assert!(!has(b"/xcache/pkg/"));
    // Another checkout compiles what names its paths.
    let moved = s.checkout("shown-paths", "b/deeper");
    let b = xcache_build(&moved.join("ws"), &s.store(), &[], &[real]);
    b.assert_success();
    let r = Report::read(&moved.join("ws/target"));
    assert!(!r.with_outcome("miss").is_empty(), "{:?}", r.outcomes());
    let outside = moved.join("outside").canonicalize().unwrap();
    assert_eq!(
        shown(&b)[2],
        format!("loca: {}/loca/src/lib.rs", outside.display())
    );
}

/// A git dependency (a `file://` repository): its sources live in `CARGO_HOME`'s git
/// checkouts, which the cache shows under `/xcache/cargo-home`, the rest of the path as
/// plain cargo shows it.
#[test]
fn a_git_dependency_shows_its_checkout_under_cargo_home() {
    let s = Scratch::new();
    let repo = s.path("gitloc");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"gitloc\"\nversion = \"0.2.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("src/lib.rs"),
        "pub fn here() -> &'static str {\n    file!()\n}\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "gitloc"]);
    let with_git = |root: &Path| {
        let ws = root.join("ws");
        let manifest = ws.join("app/Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let dep = format!("gitloc = {{ git = \"file://{}\" }}\n", repo.display());
        std::fs::write(&manifest, format!("{text}{dep}")).unwrap();
        let main = ws.join("app/src/main.rs");
        let text = std::fs::read_to_string(&main).unwrap();
        let text = text.replacen(
            "fn main() {\n",
            "fn main() {\n    println!(\"gitloc: {}\", gitloc::here());\n",
            1,
        );
        std::fs::write(&main, text).unwrap();
        ws
    };
    let ws = with_git(&s.checkout("shown-paths", "a"));
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    b.assert_success();
    let through = shown(&b)[0].clone();
    let reference = with_git(&s.checkout("shown-paths", "plain"));
    let p = plain(&reference)[0].clone();
    let cargo_home = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap()).join(".cargo"));
    let cargo_home = cargo_home.canonicalize().unwrap();
    assert!(
        p.starts_with(&format!("gitloc: {}/git/checkouts/", cargo_home.display())),
        "{p}"
    );
    assert!(p.ends_with("/src/lib.rs"), "{p}");
    assert_eq!(
        through,
        p.replace(&cargo_home.display().to_string(), "/xcache/cargo-home")
    );
}
