//! Settings fail closed, an unusable local store is one warning, keys are written and
//! used as the book says.

use std::path::Path;

use crate::common::{Report, Scratch, base_command, xcache_build, xcache_exe};

fn xcache(cwd: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = base_command(&xcache_exe(), cwd, store);
    cmd.arg("xcache").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn values_not_understood_stop_the_build_and_name_the_variable() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    for (var, value, accepted) in [
        ("XCACHE_READ_ONLY", "maybe", "1, true, yes, on"),
        ("XCACHE_DISABLE", "2", "1, true, yes, on"),
        ("XCACHE_SEED", "nope", "0, false, no, off"),
        ("XCACHE_BACKGROUND_STORE", "later", "0, false, no, off"),
        ("XCACHE_REMOTE_JOBS", "abc", "whole number"),
        ("XCACHE_CACHE_SIZE", "10X", "10G"),
        ("XCACHE_TRUSTED_KEYS", "not-a-key", "xcache-ed25519:"),
        ("XCACHE_SIGNING_KEY", "/nonexistent/key", "/nonexistent/key"),
        ("XCACHE_ENV_IGNORE", "RUNNER_*,HOST-NAME", "`HOST-NAME`"),
    ] {
        let b = xcache_build(&ws, &s.store(), &[], &[(var, value)]);
        let err = b.stderr();
        assert_eq!(b.output.status.code(), Some(2), "{var}={value}: {err}");
        assert!(
            err.contains(var) && err.contains(accepted),
            "{var}={value}: {err}"
        );
        assert!(
            !s.store().join("v2/entries").exists(),
            "{var}={value} wrote the store"
        );
    }
    // Any case of an accepted value is understood.
    xcache_build(&ws, &s.store(), &[], &[("XCACHE_READ_ONLY", "TRUE")]).assert_success();
    // A flag and its variable read values alike.
    let out = xcache(&ws, &s.store(), &["build", "--remote-jobs", "0"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn drop_in_wrapper_fails_closed_and_compiles() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    let mut cmd = base_command(Path::new("cargo"), &ws, &s.store());
    cmd.arg("build")
        .env("RUSTC_WRAPPER", xcache_exe())
        .env("XCACHE_READ_ONLY", "maybe");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("[invalid-setting]") && err.contains("XCACHE_READ_ONLY"),
        "{err}"
    );
    // Nothing read or written.
    assert!(!s.store().join("v2/entries").exists());
}

#[test]
fn config_file_errors_name_the_file_line_and_column() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    std::fs::write(
        ws.join("xcache.toml"),
        "remote = \"file:///x\"\nread_only = maybe\n",
    )
    .unwrap();
    let b = xcache_build(&ws, &s.store(), &[], &[]);
    let err = b.stderr();
    assert_eq!(b.output.status.code(), Some(2), "{err}");
    assert!(err.contains("xcache.toml: line 2, column 13"), "{err}");
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_the_public_key() {
    let s = Scratch::new();
    let key = s.path("k");
    let out = xcache(
        s.dir.path(),
        &s.store(),
        &["keygen", "--out", key.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let public = stdout.lines().last().unwrap();
    assert!(
        public.starts_with("xcache-ed25519:") && public.len() == 15 + 64,
        "{stdout}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&key).unwrap();
    let again = xcache(
        s.dir.path(),
        &s.store(),
        &["keygen", "--out", key.to_str().unwrap()],
        &[],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    // Signed by it: a reader that trusts it hits; one that trusts another key refuses
    // every unit and says how many.
    let ws = s.checkout("basic-workspace", "ws");
    let k = key.display().to_string();
    xcache_build(&ws, &s.store(), &[], &[("XCACHE_SIGNING_KEY", &k)]).assert_success();
    let other = s.path("other");
    let out = xcache(
        s.dir.path(),
        &s.store(),
        &["keygen", "--out", other.to_str().unwrap()],
        &[],
    );
    let other_public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(
        &ws2,
        &s.store(),
        &[],
        &[("XCACHE_TRUSTED_KEYS", &other_public)],
    );
    b.assert_success();
    let r = Report::read(&ws2.join("target"));
    assert_eq!(r.summary("hits"), 0, "{}", b.stderr());
    assert!(r.summary("untrusted") > 0);
    let ws3 = s.checkout("basic-workspace", "ws3");
    let b = xcache_build(&ws3, &s.store(), &[], &[("XCACHE_TRUSTED_KEYS", public)]);
    b.assert_success();
    let r = Report::read(&ws3.join("target"));
    // Every unit is used. (The reader before wrote unsigned entries and seed packs of
    // its own: those are refused and counted, and the signed entries of their units
    // used.)
    assert!(r.with_outcome("miss").is_empty(), "{}", b.stderr());
    assert_eq!(r.summary("hits"), r.summary("units"), "{}", b.stderr());
    assert!(r.summary("untrusted") > 0, "{}", b.stderr());
}

#[test]
fn gc_says_what_it_removes_and_frees() {
    let s = Scratch::new();
    let ws = s.checkout("basic-workspace", "ws");
    xcache_build(&ws, &s.store(), &[], &[]).assert_success();
    let entries = || {
        walk(&s.store().join("v2/entries"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "xce"))
            .count()
    };
    let n = entries();
    assert!(n > 0);
    // Used a day ago, no build running: all of them may go.
    for p in walk(&s.store().join("v2/entries")) {
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(86_400))
            .unwrap();
    }
    let out = xcache(
        &ws,
        &s.store(),
        &["gc", "--max-size", "1K", "--dry-run"],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("would remove {n} least recently used entries")),
        "{text}"
    );
    assert_eq!(entries(), n);
    let out = xcache(&ws, &s.store(), &["gc", "--max-size", "1K"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("removed {n} least recently used entries"))
            && text.contains("freed"),
        "{text}"
    );
    assert_eq!(entries(), 0);
    // The next build compiles and is right.
    let ws2 = s.checkout("basic-workspace", "ws2");
    let b = xcache_build(&ws2, &s.store(), &[], &[]);
    b.assert_success();
    assert!(b.run("app").contains("answer=42"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
