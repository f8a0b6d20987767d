//! The rustc adapter's own decisions, from its arguments and settings: what it refuses,
//! which roots it names, what it may send to workers, what it runs, what it stores.
//! Nothing here runs rustc.

use std::path::{Path, PathBuf};

use super::adapter::{entry_rank, is_lib_artifact};
use super::inputs::{is_shared_library, loads_crates, loads_macros, rustup_home};
use super::unit::Rustc;
use crate::config::{Env, WrapperConfig};
use crate::key::{CompilerId, CrateKind, Key, RootKind, parse_rustc_args};
use crate::observe::{Event, Op, Trace};
use crate::reason::Uncacheable;
use crate::wrapper::Outcome;
use crate::wrapper::lifecycle::{Cached, Cx, OutSource, Ran};

/// A checkout with a tagged target dir, in a temporary directory.
struct Checkout {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    target: PathBuf,
}

impl Checkout {
    fn new() -> Checkout {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let target = ws.join("target");
        std::fs::create_dir_all(target.join("debug/deps")).unwrap();
        std::fs::write(
            target.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        Checkout {
            _tmp: tmp,
            ws,
            target,
        }
    }

    /// The settings of a wrapper run in the checkout with only `vars` set (no `HOME`:
    /// no store, no config file).
    fn cfg(&self, vars: &[(&str, &str)]) -> WrapperConfig {
        WrapperConfig::resolve(Env::from_pairs(vars.iter().copied()), self.ws.clone())
    }

    /// A library compile as cargo asks for one, with `extra` arguments after.
    fn lib(&self, extra: &str) -> Vec<String> {
        format!(
            "--crate-name dep --edition=2024 src/lib.rs --error-format=json \
             --json=diagnostic-rendered-ansi,artifacts,future-incompat --crate-type lib \
             --emit=dep-info,metadata,link -C embed-bitcode=no -C debuginfo=2 \
             -C metadata=05bd352a9f70e55a -C extra-filename=-9517d73897b5767e \
             --out-dir {t}/debug/deps -L dependency={t}/debug/deps {extra}",
            t = self.target.display()
        )
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    fn proc_macro(&self) -> Vec<String> {
        self.lib("")
            .into_iter()
            .map(|a| match a.as_str() {
                "lib" => "proc-macro".to_string(),
                "--emit=dep-info,metadata,link" => "--emit=dep-info,link".to_string(),
                _ => a,
            })
            .collect()
    }

    fn build_script(&self) -> Vec<String> {
        let out = format!("{}/debug/build/dep-0123456789abcdef", self.target.display());
        let args = self.lib("");
        let mut v: Vec<String> = args
            .into_iter()
            .map(|a| match a.as_str() {
                "dep" => "build_script_build".to_string(),
                "src/lib.rs" => "build.rs".to_string(),
                "lib" => "bin".to_string(),
                "--emit=dep-info,metadata,link" => "--emit=dep-info,link".to_string(),
                _ => a,
            })
            .collect();
        let i = v.iter().position(|a| a == "--out-dir").unwrap();
        v[i + 1] = out;
        v
    }
}

fn rustc() -> PathBuf {
    PathBuf::from("/toolchain/bin/rustc")
}

fn unit(args: &[String], cfg: &WrapperConfig) -> Rustc {
    Rustc::new(rustc(), None, parse_rustc_args(args), cfg)
}

fn behind(wrapper: &str, args: &[String], cfg: &WrapperConfig) -> Rustc {
    Rustc::new(
        rustc(),
        Some(PathBuf::from(wrapper)),
        parse_rustc_args(args),
        cfg,
    )
}

fn cx(u: &Rustc, cfg: WrapperConfig) -> Cx {
    let pm = u.path_map(&cfg);
    Cx::new(cfg, pm)
}

fn ran(trace: Option<Trace>) -> Ran {
    Ran {
        code: 0,
        stdout: Vec::new(),
        stderr: Vec::new(),
        trace,
    }
}

/// A record of reads of `paths` (and writes of `written`).
fn trace(reads: &[&str], written: &[&str]) -> Trace {
    let event = |op, path: &str| Event {
        pid: 1,
        op,
        err: 0,
        path: path.to_string(),
        caller: None,
        chain: None,
        image: 0,
        relative: false,
    };
    Trace {
        root: 1,
        events: written
            .iter()
            .map(|p| event(Op::Write, p))
            .chain(reads.iter().map(|p| event(Op::Read, p)))
            .collect(),
        torn: 0,
    }
}

/// A context whose compiler has its sysroot at `/toolchain`.
fn with_compiler(mut cx: Cx) -> Cx {
    cx.compiler = Some((
        rustc(),
        CompilerId {
            key: Key::digest(b"rustc"),
            version: "rustc 1.95.0\nhost: x86_64-unknown-linux-gnu\n".into(),
            sysroot: PathBuf::from("/toolchain"),
        },
    ));
    cx
}

// Names.

#[test]
fn rlibs_and_rmetas_are_what_dependents_name() {
    assert!(is_lib_artifact(Path::new("/t/libdep-1.rlib")));
    assert!(is_lib_artifact(Path::new("/t/libdep-1.rmeta")));
    for p in [
        "/t/libdep-1.so",
        "/t/dep-1.d",
        "/t/dep-1",
        "/t/rlib",
        "/t/x.rlib.tmp",
    ] {
        assert!(!is_lib_artifact(Path::new(p)), "{p}");
    }
}

#[test]
fn shared_libraries_are_known_by_their_names() {
    for p in [
        "/t/libm.so",
        "/t/libm.so.6",
        "/t/libc.so.6.1",
        "/t/libx.dylib",
    ] {
        assert!(is_shared_library(Path::new(p)), "{p}");
    }
    for p in ["/t/libdep.rlib", "/t/so", "/t/libso", "/t/x.sox", "/"] {
        assert!(!is_shared_library(Path::new(p)), "{p}");
    }
}

#[test]
fn an_entry_holds_the_rmeta_first_and_the_rlib_last() {
    let mut roles = ["rlib", "dep-info", "rmeta", "dylib", "executable"];
    roles.sort_by_key(|r| entry_rank(r));
    assert_eq!(roles, ["rmeta", "dep-info", "dylib", "executable", "rlib"]);
}

#[test]
fn rustup_keeps_its_toolchains_in_rustup_home_else_under_home() {
    let both = Env::from_pairs([("RUSTUP_HOME", "/r"), ("HOME", "/h")]);
    assert_eq!(rustup_home(&both), Some(PathBuf::from("/r")));
    let home = Env::from_pairs([("HOME", "/h")]);
    assert_eq!(rustup_home(&home), Some(PathBuf::from("/h/.rustup")));
    assert_eq!(rustup_home(&Env::from_pairs([])), None);
}

// Refusals.

#[test]
fn a_plain_library_compile_is_not_refused() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    assert_eq!(u.refusal(&cx(&u, cfg)), None);
}

#[test]
fn a_placeholder_is_refused_before_anything_else() {
    let c = Checkout::new();
    let mut cfg = c.cfg(&[("XCACHE_DISABLE", "1")]);
    cfg.placeholder = true;
    let u = behind("/bin/other-wrapper", &c.lib("--frobnicate"), &cfg);
    assert_eq!(u.refusal(&cx(&u, cfg)), Some(Uncacheable::Placeholder));
}

#[test]
fn a_flag_the_parser_does_not_know_is_refused_before_a_disabled_cache() {
    let c = Checkout::new();
    let cfg = c.cfg(&[("XCACHE_DISABLE", "1")]);
    let u = unit(&c.lib("--frobnicate"), &cfg);
    assert_eq!(u.refusal(&cx(&u, cfg)), Some(Uncacheable::UnknownFlag));
}

#[test]
fn a_disabled_cache_refuses_the_unit() {
    let c = Checkout::new();
    let cfg = c.cfg(&[("XCACHE_DISABLE", "1")]);
    assert!(cfg.disabled);
    let u = behind("/bin/other-wrapper", &c.lib(""), &cfg);
    assert_eq!(u.refusal(&cx(&u, cfg)), Some(Uncacheable::Disabled));
}

#[test]
fn a_workspace_wrapper_is_refused_unless_it_is_clippy_driver() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let other = behind("/bin/sccache", &c.lib(""), &cfg);
    assert_eq!(
        other.refusal(&cx(&other, cfg.clone())),
        Some(Uncacheable::WorkspaceWrapper)
    );
    let clippy = behind("/toolchain/bin/clippy-driver", &c.lib(""), &cfg);
    assert_eq!(clippy.refusal(&cx(&clippy, cfg)), None);
}

#[test]
fn an_incremental_unit_is_not_stored_after_a_miss() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let inc = c.lib(&format!(
        "-C incremental={}/debug/incremental",
        c.target.display()
    ));
    let u = unit(&inc, &cfg);
    assert!(u.asked_incremental);
    assert_eq!(u.reason_after_miss(), Some(Uncacheable::Incremental));
    assert_eq!(unit(&c.lib(""), &cfg).reason_after_miss(), None);
}

#[test]
fn dropping_incremental_compiles_without_it_and_remembers_it_was_asked() {
    let c = Checkout::new();
    let cfg = c.cfg(&[("XCACHE_DROP_INCREMENTAL", "1")]);
    let inc = c.lib(&format!(
        "-C incremental={}/debug/incremental",
        c.target.display()
    ));
    let u = unit(&inc, &cfg);
    assert!(u.asked_incremental);
    assert!(!u.inv.incremental);
    assert!(!u.inv.args.iter().any(|a| a.contains("incremental")));
    assert_eq!(u.reason_after_miss(), None);
}

// Roots.

#[test]
fn the_target_root_is_the_tagged_directory_above_the_out_dir() {
    let c = Checkout::new();
    let cfg = c.cfg(&[("CARGO_HOME", "/home/u/.cargo")]);
    let pm = unit(&c.lib(""), &cfg).path_map(&cfg);
    assert_eq!(pm.real_of(RootKind::Target), c.target.to_str());
    assert_eq!(pm.real_of(RootKind::Cwd), c.ws.to_str());
    assert_eq!(pm.real_of(RootKind::CargoHome), Some("/home/u/.cargo"));
    assert_eq!(
        pm.remapped(&c.ws.join("src/lib.rs")),
        "/xcache/ws/src/lib.rs"
    );
}

#[test]
fn a_package_outside_the_workspace_is_remapped_under_its_name_and_version() {
    let c = Checkout::new();
    let ws = c.ws.to_string_lossy().into_owned();
    let vars = [
        ("CARGO_MANIFEST_DIR", ws.as_str()),
        ("CARGO_PKG_NAME", "dep"),
        ("CARGO_PKG_VERSION", "1.2.3"),
    ];
    let cfg = c.cfg(&vars);
    let absolute = format!("{ws}/src/lib.rs");
    let args: Vec<String> = c
        .lib("")
        .into_iter()
        .map(|a| {
            if a == "src/lib.rs" {
                absolute.clone()
            } else {
                a
            }
        })
        .collect();
    let pm = unit(&args, &cfg).path_map(&cfg);
    assert_eq!(
        pm.remapped(&c.ws.join("src/lib.rs")),
        "/xcache/pkg/dep-1.2.3/src/lib.rs"
    );
    // A member names its source relative to the workspace root.
    let member = unit(&c.lib(""), &cfg).path_map(&cfg);
    assert_eq!(
        member.remapped(&c.ws.join("src/lib.rs")),
        "/xcache/ws/src/lib.rs"
    );
    // Without its version, the package keeps the workspace's name.
    let cfg = c.cfg(&vars[..2]);
    let pm = unit(&args, &cfg).path_map(&cfg);
    assert_eq!(
        pm.remapped(&c.ws.join("src/lib.rs")),
        "/xcache/ws/src/lib.rs"
    );
}

#[test]
fn real_paths_map_every_root_to_itself() {
    let c = Checkout::new();
    let cfg = c.cfg(&[("XCACHE_REAL_PATHS", "1")]);
    assert!(cfg.real_paths);
    let pm = unit(&c.lib(""), &cfg).path_map(&cfg);
    let lib = c.ws.join("src/lib.rs");
    assert_eq!(pm.remapped(&lib), lib.to_string_lossy());
    assert!(!pm.remap_args().is_empty());
}

// What the unit makes.

#[test]
fn a_proc_macro_that_links_is_known_by_its_shared_library() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.proc_macro(), &cfg);
    let cx = cx(&u, cfg.clone());
    assert_eq!(
        u.linked_lib_output(&cx),
        Some(c.target.join("debug/deps/libdep-9517d73897b5767e.so"))
    );
    assert_eq!(u.build_script_output(&cx), None);
    let lib = unit(&c.lib(""), &cfg);
    assert_eq!(lib.linked_lib_output(&cx), None);
    // Checked only (`cargo check`): nothing is linked.
    let checked: Vec<String> = c
        .proc_macro()
        .into_iter()
        .map(|a| {
            if a == "--emit=dep-info,link" {
                "--emit=dep-info,metadata".to_string()
            } else {
                a
            }
        })
        .collect();
    assert_eq!(unit(&checked, &cfg).linked_lib_output(&cx), None);
}

#[test]
fn a_build_script_that_links_is_known_by_its_executable() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.build_script(), &cfg);
    let cx = cx(&u, cfg);
    assert_eq!(u.inv.kind(), CrateKind::BuildScript);
    assert_eq!(
        u.build_script_output(&cx),
        Some(
            c.target
                .join("debug/build/dep-0123456789abcdef/build_script_build-9517d73897b5767e")
        )
    );
    assert_eq!(u.linked_lib_output(&cx), None);
    // A build script is no library a worker may build, nor stored in the background
    // (its shim goes in first).
    assert!(u.may_run_remotely(&cx).is_none());
}

#[test]
fn the_restore_directory_is_the_out_dir_below_where_rustc_runs() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    let cx = cx(&u, cfg);
    assert_eq!(u.restore_dir(&cx), Some(c.target.join("debug/deps")));
    let relative: Vec<String> = ["--crate-name", "dep", "src/lib.rs", "--crate-type", "lib"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--out-dir".to_string(), "target/debug/deps".to_string()])
        .collect();
    let u = unit(&relative, &cx.cfg);
    assert_eq!(u.restore_dir(&cx), Some(c.ws.join("target/debug/deps")));
}

#[test]
fn ansi_is_wanted_when_cargo_asks_for_rendered_ansi() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    assert!(unit(&c.lib(""), &cfg).wants_ansi());
    assert!(unit(&c.lib(""), &cfg).ansi());
    let plain: Vec<String> = c
        .lib("")
        .into_iter()
        .map(|a| {
            if a.starts_with("--json=") {
                "--json=artifacts,future-incompat".to_string()
            } else {
                a
            }
        })
        .collect();
    assert!(!unit(&plain, &cfg).wants_ansi());
}

#[test]
fn the_record_names_the_package_crate_kind_and_target() {
    let c = Checkout::new();
    let cfg = c.cfg(&[
        ("CARGO_PKG_NAME", "dep-pkg"),
        ("CARGO_PKG_VERSION", "0.1.0"),
    ]);
    let u = unit(&c.lib("--target x86_64-unknown-linux-gnu"), &cfg);
    let r = u.record(&cx(&u, cfg));
    assert_eq!(
        (
            r.package.as_str(),
            r.version.as_str(),
            r.crate_name.as_str(),
            r.kind.as_str()
        ),
        ("dep-pkg", "0.1.0", "dep", "lib")
    );
    assert_eq!(r.target.as_deref(), Some("x86_64-unknown-linux-gnu"));
    assert_eq!(r.outcome, Outcome::Miss);
}

// Remote execution.

/// Settings with an executor, and `vars`.
fn executor(c: &Checkout, vars: &[(&str, &str)]) -> WrapperConfig {
    let mut all = vec![("XCACHE_EXECUTOR", "grpc://127.0.0.1:1")];
    all.extend_from_slice(vars);
    let cfg = c.cfg(&all);
    assert!(cfg.executor.is_some(), "{:?}", cfg.executor_error);
    cfg
}

#[test]
fn a_library_that_does_not_link_may_be_sent_to_the_workers() {
    let c = Checkout::new();
    let cfg = executor(&c, &[]);
    let u = unit(&c.lib(""), &cfg);
    let spec = u.may_run_remotely(&cx(&u, cfg)).unwrap();
    assert_eq!(spec.server.display().to_string(), "grpc://127.0.0.1:1");
    // Without an executor, nothing is sent.
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    assert!(u.may_run_remotely(&cx(&u, cfg)).is_none());
}

#[test]
fn what_depends_on_this_machine_is_compiled_here() {
    let c = Checkout::new();
    let cfg = executor(&c, &[]);
    let inc = format!("-C incremental={}/debug/incremental", c.target.display());
    let bin: Vec<String> = c
        .lib("")
        .into_iter()
        .map(|a| if a == "lib" { "bin".to_string() } else { a })
        .collect();
    for (why, u) in [
        ("incremental", unit(&c.lib(&inc), &cfg)),
        ("native cpu", unit(&c.lib("-C target-cpu=native"), &cfg)),
        ("a binary", unit(&bin, &cfg)),
        // Its link plan is made with the first-level key: not yet here.
        (
            "a proc-macro without a link plan",
            unit(&c.proc_macro(), &cfg),
        ),
        (
            "behind clippy",
            behind("/t/clippy-driver", &c.lib(""), &cfg),
        ),
    ] {
        assert!(u.may_run_remotely(&cx(&u, cfg.clone())).is_none(), "{why}");
    }
    let named_cpu = unit(&c.lib("-C target-cpu=x86-64-v3"), &cfg);
    assert!(
        named_cpu
            .may_run_remotely(&cx(&named_cpu, cfg.clone()))
            .is_some()
    );
    let real = executor(&c, &[("XCACHE_REAL_PATHS", "1")]);
    let u = unit(&c.lib(""), &real);
    assert!(u.may_run_remotely(&cx(&u, real)).is_none(), "real paths");
}

// What runs.

#[test]
fn the_compiler_runs_behind_the_workspace_wrapper_when_cargo_names_one() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let alone = unit(&c.lib(""), &cfg).command();
    assert_eq!(alone.get_program(), rustc().as_os_str());
    assert_eq!(alone.get_args().count(), 0);
    let wrapped = behind("/t/clippy-driver", &c.lib(""), &cfg).command();
    assert_eq!(wrapped.get_program(), "/t/clippy-driver");
    assert_eq!(
        wrapped.get_args().collect::<Vec<_>>(),
        [rustc().as_os_str()]
    );
}

// What the compile loaded.

#[test]
fn an_extern_shared_library_loads_macros_whatever_was_observed() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let extern_so = format!(
        "--extern serde_derive={}/debug/deps/libserde_derive-1.so",
        c.target.display()
    );
    let u = unit(&c.lib(&extern_so), &cfg);
    let cx = with_compiler(cx(&u, cfg));
    assert!(loads_macros(&u.inv, &ran(Some(trace(&[], &[]))), &cx));
}

#[test]
fn a_shared_library_read_outside_the_sysroot_loads_macros_and_one_inside_does_not() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    let cx = with_compiler(cx(&u, cfg));
    let inside = ran(Some(trace(&["/toolchain/lib/librustc_driver.so"], &[])));
    assert!(!loads_macros(&u.inv, &inside, &cx));
    let outside = ran(Some(trace(&["/plugins/libmacro.so.1"], &[])));
    assert!(loads_macros(&u.inv, &outside, &cx));
}

#[test]
fn without_a_record_or_a_compiler_the_compile_may_have_loaded_anything() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    let no_compiler = cx(&u, cfg.clone());
    let observed = ran(Some(trace(&[], &[])));
    assert!(loads_macros(&u.inv, &observed, &no_compiler));
    assert!(loads_crates(&u.inv, &observed, &no_compiler));
    let cx = with_compiler(cx(&u, cfg));
    assert!(loads_macros(&u.inv, &ran(None), &cx));
    assert!(loads_crates(&u.inv, &ran(None), &cx));
    // Observed, with nothing loaded.
    assert!(!loads_macros(&u.inv, &observed, &cx));
    assert!(!loads_crates(&u.inv, &observed, &cx));
}

#[test]
fn a_crate_from_outside_the_sysroot_is_loaded_unless_the_compile_wrote_it() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let u = unit(&c.lib(""), &cfg);
    let cx = with_compiler(cx(&u, cfg.clone()));
    let std = ran(Some(trace(&["/toolchain/lib/rustlib/libstd-1.rlib"], &[])));
    assert!(!loads_crates(&u.inv, &std, &cx));
    let dep = "/t/debug/deps/libitoa-1.rmeta";
    assert!(loads_crates(&u.inv, &ran(Some(trace(&[dep], &[]))), &cx));
    // Its own library, written and read back.
    let own = "/t/debug/deps/rmeta123/libdep-1.rmeta";
    assert!(!loads_crates(
        &u.inv,
        &ran(Some(trace(&[own], &[own]))),
        &cx
    ));
    // Named by `--extern`, observed or not.
    let with_extern = unit(
        &c.lib(&format!(
            "--extern itoa={}/debug/deps/libitoa-1.rmeta",
            c.target.display()
        )),
        &cfg,
    );
    assert!(loads_crates(&with_extern.inv, &std, &cx));
}

// What is stored.

#[test]
fn every_output_must_exist_to_be_stored() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let mut u = unit(&c.lib(""), &cfg);
    let mut cx = cx(&u, cfg);
    let deps = c.target.join("debug/deps");
    std::fs::write(deps.join("libdep-9517d73897b5767e.rlib"), "rlib").unwrap();
    std::fs::write(deps.join("libdep-9517d73897b5767e.rmeta"), "rmeta").unwrap();
    assert_eq!(
        u.outputs(&mut cx, &ran(None)).err(),
        Some(Uncacheable::MissingOutput)
    );
}

#[test]
fn outputs_are_stored_rmeta_first_and_the_dep_info_with_its_roots_tokenized() {
    let c = Checkout::new();
    let cfg = c.cfg(&[]);
    let mut u = unit(&c.lib(""), &cfg);
    let mut cx = cx(&u, cfg);
    let deps = c.target.join("debug/deps");
    std::fs::write(deps.join("libdep-9517d73897b5767e.rlib"), "rlib").unwrap();
    std::fs::write(deps.join("libdep-9517d73897b5767e.rmeta"), "rmeta").unwrap();
    let d = deps.join("dep-9517d73897b5767e.d");
    std::fs::write(
        &d,
        format!("{}: {}\n", d.display(), c.ws.join("src/lib.rs").display()),
    )
    .unwrap();
    let files = u.outputs(&mut cx, &ran(None)).unwrap();
    let roles: Vec<&str> = files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["rmeta", "dep-info", "rlib"]);
    assert_eq!(files[0].name, "libdep-9517d73897b5767e.rmeta");
    assert!(files.iter().all(|f| f.shared && !f.executable));
    match &files[1].source {
        OutSource::Text(t) => assert_eq!(
            t,
            "@@xcache:target@@/debug/deps/dep-9517d73897b5767e.d: @@xcache:ws@@/src/lib.rs\n"
        ),
        OutSource::File(p) => panic!("dep-info stored from {}", p.display()),
    }
    assert!(
        matches!(&files[2].source, OutSource::File(p) if *p == deps.join("libdep-9517d73897b5767e.rlib"))
    );
}

// Prediction.

#[test]
fn a_unit_is_predicted_once_its_compiler_and_package_are_known() {
    let c = Checkout::new();
    let ws = c.ws.to_string_lossy().into_owned();
    let vars = [
        ("CARGO_MANIFEST_DIR", ws.as_str()),
        ("CARGO_PKG_NAME", "dep"),
        ("CARGO_PKG_VERSION", "0.1.0"),
    ];
    let cfg = c.cfg(&vars);
    let mut u = unit(&c.lib(""), &cfg);
    let cx = cx(&u, cfg);
    assert_eq!(u.prediction_keys(&cx), None);
    u.compiler_key = Some(Key::digest(b"rustc a"));
    let a = u.prediction_keys(&cx).unwrap();
    assert_ne!(a.0, a.1);
    u.compiler_key = Some(Key::digest(b"rustc b"));
    let b = u.prediction_keys(&cx).unwrap();
    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
    // Without the package cargo names, there is no prediction.
    let bare = c.cfg(&vars[1..]);
    let mut u = unit(&c.lib(""), &bare);
    u.compiler_key = Some(Key::digest(b"rustc a"));
    assert_eq!(u.prediction_keys(&self::cx(&u, bare)), None);
}
