//! Roots, the host CPU and the linker: each by what it means here.

use std::sync::{Arc, Mutex};

use super::fixture::*;
use crate::judge::*;

#[test]
fn a_root_holds_at_the_same_path_only() {
    let (a, b) = (Machine::new(), Machine::new());
    let real = a.target.to_string_lossy().into_owned();
    let i = input(InputKind::Root, RootKind::Target.token(), real);
    for mode in [Mode::Exact, Mode::Plant, Mode::Predict] {
        assert!(holds(&a.judge(mode), std::slice::from_ref(&i)), "{mode:?}");
        // A root is never put aside nor taken to hold, wherever it points.
        assert_eq!(found(&b.judge(mode), &i), b.target.to_string_lossy());
    }
}

#[test]
fn a_root_this_machine_lacks_or_does_not_know_is_unknown() {
    let m = Machine::new();
    let j = Judge::new(Here {
        pm: PathMap::new(&m.ws, None, None),
        ..m.here(Mode::Exact)
    });
    let target = input(InputKind::Root, RootKind::Target.token(), "/t");
    assert_eq!(found(&j, &target), UNKNOWN);
    let odd = input(InputKind::Root, "@@xcache:elsewhere@@", "/t");
    assert_eq!(found(&m.judge(Mode::Exact), &odd), UNKNOWN);
}

#[test]
fn the_host_cpu_holds_when_it_means_the_same() {
    let m = Machine::new();
    let i = input(InputKind::HostCpu, "native", "znver3");
    let cpu = |c: Option<&'static str>| {
        Judge::new(Here {
            host_cpu: Box::new(move || c.map(str::to_string)),
            ..m.here(Mode::Exact)
        })
    };
    assert!(holds(&cpu(Some("znver3")), std::slice::from_ref(&i)));
    assert_eq!(found(&cpu(Some("skylake")), &i), "skylake");
    assert_eq!(found(&cpu(None), &i), UNKNOWN);
}

#[test]
fn a_linker_is_judged_by_the_identity_of_its_request_now() {
    let m = Machine::new();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let j = Judge::new(Here {
        linker: Box::new(move |req| {
            seen.lock().unwrap().push(req.to_string());
            match req {
                "{\"cc\":\"cc\"}" => Some("id-1".into()),
                "{\"cc\":\"clang\"}" => Some("id-2".into()),
                _ => None,
            }
        }),
        ..m.here(Mode::Exact)
    });
    assert!(holds(
        &j,
        &[input(InputKind::Linker, "{\"cc\":\"cc\"}", "id-1")]
    ));
    assert_eq!(
        found(&j, &input(InputKind::Linker, "{\"cc\":\"clang\"}", "id-1")),
        "id-2"
    );
    assert_eq!(
        found(&j, &input(InputKind::Linker, "{\"cc\":\"gcc\"}", "id-1")),
        UNKNOWN
    );
    assert_eq!(asked.lock().unwrap()[0], "{\"cc\":\"cc\"}");
}
