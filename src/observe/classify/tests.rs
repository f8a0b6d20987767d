//! Tests of [`classify`] over whole records: what becomes an input, what is left out
//! and why, and PATH searches keyed by what they found.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use super::{Scope, classify};
use crate::key::{InputKind, PathMap};
use crate::observe::Trace;

#[test]
fn reads_probes_and_exceptions() {
    let d = tempfile::tempdir().unwrap();
    let ws = d.path().join("ws");
    let target = ws.join("target");
    let sysroot = d.path().join("sysroot");
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::create_dir_all(target.join("debug/deps")).unwrap();
    std::fs::write(ws.join("data/x.txt"), "hello").unwrap();
    let pm = PathMap::new(&ws, Some(&target), None);
    let env: BTreeMap<String, String> = [
        ("MAC_FLAVOR".to_string(), "sweet".to_string()),
        (
            "CARGO_MANIFEST_DIR".to_string(),
            ws.to_string_lossy().into_owned(),
        ),
    ]
    .into();
    let w = ws.display();
    let t = target.display();
    let s = sysroot.display();
    let text = format!(
        "7 I 6 {s}/bin/rustc\n\
         7 o 0 {s}/lib/libstd.rlib\n\
         7 o 0 {w}/data/x.txt\n\
         7 s 2 {w}/src/foo.rs\n\
         7 s 2 {t}/debug/deps/app-1\n\
         7 o 0 {t}/debug/deps/libmac-1.so\n\
         7 m 0 {t}/debug/deps/rustcAbc\n\
         7 w 0 {t}/debug/deps/rustcAbc/symbols.o\n\
         7 o 0 {t}/debug/deps/rustcAbc/symbols.o\n\
         7 w 0 {t}/debug/deps/app-1.d\n\
         7 o 0 /proc/self/statm\n\
         7 o 0 /proc/cpuinfo\n\
         7 e 1 RUSTC_LOG\t{s}/lib/librustc_driver.so\n\
         7 e 0 MAC_FLAVOR\t{t}/debug/deps/libmac-1.so\n\
         7 e 0 CARGO_MANIFEST_DIR\t{t}/debug/deps/libmac-1.so\n\
         7 e 0 CARGO_MAKEFLAGS\t{s}/lib/librustc_driver.so\n\
         8 X 0 /bin/static: statically linked program\n"
    );
    let trace = Trace::parse(&text, 7);
    let scope = Scope {
        pm: &pm,
        env: &env,
        covered: vec![sysroot.clone()],
        artifact_dirs: vec![target.join("debug/deps")],
        own: vec![(target.join("debug/deps"), "app-1".into())],
        out_dir: None,
        before: HashMap::new(),
        scratch: vec![],
        // rustc makes its temporary directories beside its outputs.
        writable: vec![target.join("debug/deps")],
        ignored_env: &[],
        unbound_env: &[],
        started: SystemTime::now(),
        keyed_env: |_| false,
    };
    let c = classify(&trace, &scope);
    let got: Vec<String> = c
        .inputs
        .iter()
        .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
        .collect();
    let digest = crate::key::hash_file(&ws.join("data/x.txt")).unwrap();
    assert_eq!(
        got,
        [
            format!("path @@xcache:ws@@/data/x.txt file:{digest}"),
            "path @@xcache:ws@@/src/foo.rs absent".to_string(),
            "env CARGO_MANIFEST_DIR =@@xcache:ws@@".to_string(),
            "env MAC_FLAVOR =sweet".to_string(),
            format!("root @@xcache:ws@@ {w}"),
        ]
    );
    assert!(c.host_cpu);
    assert_eq!(c.unobserved, ["/bin/static: statically linked program"]);
    assert!(c.wrote_outside.is_empty(), "{:?}", c.wrote_outside);
}

/// A program found through PATH is keyed by what was found, not by PATH; the places
/// looked in vain are not inputs of their own. A changed PATH keys PATH whole.
#[test]
fn searches_through_path_are_keyed_by_what_they_find() {
    let d = tempfile::tempdir().unwrap();
    let ws = d.path().join("ws");
    let bin = d.path().join("bin");
    let other = d.path().join("other");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let tool = bin.join("tool");
    std::fs::write(&tool, "#!/bin/sh\necho one\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pm = PathMap::new(&ws, None, None);
    let path = format!("{}:{}", other.display(), bin.display());
    let env: BTreeMap<String, String> = [("PATH".to_string(), path.clone())].into();
    let scope = |env| Scope {
        pm: &pm,
        env,
        covered: vec![],
        artifact_dirs: vec![],
        own: vec![],
        out_dir: None,
        before: HashMap::new(),
        scratch: vec![],
        writable: vec![],
        ignored_env: &[],
        unbound_env: &["PATH"],
        started: SystemTime::now(),
        keyed_env: |_| false,
    };
    let (o, t) = (other.display(), tool.display());
    let text = format!(
        "7 I 6 /bin/script\n\
         7 s 2 {o}/tool\n\
         7 L 0 tool\t{path}\n\
         7 p 0 {t}\n\
         7 s 2 {o}/nothing\n\
         7 s 2 {b}/nothing\n\
         7 L 2 nothing\t{path}\n",
        b = bin.display()
    );
    let c = classify(&Trace::parse(&text, 7), &scope(&env));
    let got: Vec<String> = c
        .inputs
        .iter()
        .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
        .collect();
    let digest = crate::key::hash_file(&tool).unwrap();
    assert_eq!(
        got,
        [
            format!("path {t} file:{digest}"),
            "lookup nothing absent".to_string(),
            format!("lookup tool file:{digest}"),
        ]
    );
    // The same search through a PATH the run changed: PATH is keyed whole.
    let changed = text.replace(&format!("\t{path}"), &format!("\t/x:{path}"));
    let c = classify(&Trace::parse(&changed, 7), &scope(&env));
    assert!(
        c.inputs
            .iter()
            .any(|i| i.kind == InputKind::Env && i.name == "PATH"),
        "{:?}",
        c.inputs
    );
    assert!(!c.inputs.iter().any(|i| i.kind == InputKind::Lookup));

    // rustc starts its linker with its own tool directory in front of the run's PATH:
    // what is found through the run's PATH is keyed so; what is found in the covered
    // directory is the compiler's business.
    let sys = d.path().join("sysroot/bin");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::copy(&tool, sys.join("own")).unwrap();
    let derived = format!("{}:{path}", sys.display());
    let text = format!(
        "7 I 6 /bin/rustc\n\
         7 L 0 tool\t{derived}\n\
         7 L 0 own\t{derived}\n"
    );
    let mut covered = scope(&env);
    covered.covered = vec![d.path().join("sysroot")];
    let c = classify(&Trace::parse(&text, 7), &covered);
    let got: Vec<String> = c
        .inputs
        .iter()
        .map(|i| format!("{} {} {}", i.kind.as_str(), i.name, i.state))
        .collect();
    assert_eq!(got, [format!("lookup tool file:{digest}")]);
}
