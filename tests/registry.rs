//! Registry crates hit across different `CARGO_HOME`s, checkouts and target dirs.
//! Uses crates.io (one small crate, pinned by the committed lockfile).

use crate::common::{Build, Report, Scratch, base_command, xcache_exe};

#[test]
fn registry_crate_hits_with_another_cargo_home_and_target_dir() {
    let s = Scratch::new();
    let mut outputs = Vec::new();
    for (n, home) in [(1, "home-a"), (2, "elsewhere/home-b")] {
        let ws = s.checkout("registry-dep", &format!("ws{n}"));
        let home = s.path(home);
        let target = s.path(&format!("targets/t{n}"));
        let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
        cmd.env("CARGO_HOME", &home)
            .env("CARGO_TARGET_DIR", &target)
            .args(["xcache", "build", "--locked", "--message-format=json"]);
        let b = Build::from_output(cmd.output().unwrap(), &ws);
        b.assert_success();
        outputs.push(b.run("registry-dep"));
        let r = Report::read(&target);
        let expected = if n == 1 { "miss" } else { "hit" };
        assert_eq!(
            r.outcomes().get("itoa:lib").map(String::as_str),
            Some(expected),
            "build {n}"
        );
        // cargo's fingerprint of a registry unit hashes its sources' absolute path: a
        // seed captured under the first CARGO_HOME is not planted under the second
        // (where cargo would reject it); the wrapper restores the unit instead.
        assert_eq!(r.summary("seed_rejected"), 0, "build {n}");
    }
    assert_eq!(outputs[0], "1234567\n");
    assert_eq!(outputs[0], outputs[1]);
}

/// `-p` may name a dependency, as cargo allows: the build goes through, then hits.
#[test]
fn a_dependency_named_with_dash_p_is_built_and_cached() {
    let s = Scratch::new();
    for n in 1..=2 {
        let ws = s.checkout("registry-dep", &format!("ws{n}"));
        let mut cmd = base_command(&xcache_exe(), &ws, &s.store());
        cmd.args([
            "xcache",
            "build",
            "--locked",
            "--message-format=json",
            "-p",
            "itoa",
        ]);
        let b = Build::from_output(cmd.output().unwrap(), &ws);
        b.assert_success();
        let expected = if n == 1 { "miss" } else { "hit" };
        assert_eq!(
            Report::read(&ws.join("target"))
                .outcomes()
                .get("itoa:lib")
                .map(String::as_str),
            Some(expected),
            "build {n}: {}",
            b.stderr()
        );
    }
}
