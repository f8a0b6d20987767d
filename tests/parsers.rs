//! Property tests: arbitrary bytes fed to every parser of stored or user-given data
//! this crate reads. The properties: no panic; no escape (whatever yields a path to
//! write keeps it inside its directory); a clear error; and for the entry format, a
//! damaged entry never reads back as other content than what was stored.

use std::fs::File;
use std::path::Path;

use proptest::prelude::*;
use xcache::config::parse::{parse_bool, parse_count, parse_duration, parse_size};
use xcache::key::{DepInfo, Key, parse_rustc_args};
use xcache::recipe::{Recipe, lay_out};
use xcache::sign::{Signer, TrustedKeys};
use xcache::store::{
    EntryFile, EntryMeta, EntryReader, EntrySource, OpenError, ReadError, write_entry,
};

fn config() -> ProptestConfig {
    // Enough cases to matter, few enough to keep the suite fast.
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        // The same cases on every run.
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0013),
        ..ProptestConfig::default()
    }
}

/// Reads every file of an entry; `Ok` only if all digests and the end marker held.
fn read_entry(
    path: &Path,
    key: &Key,
    trusted: Option<&TrustedKeys>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut r = match EntryReader::open_checked(path, key, trusted) {
        Ok(r) => r,
        Err(OpenError::Read(ReadError::Corrupt(m))) => return Err(format!("corrupt: {m}")),
        Err(OpenError::Read(ReadError::Io(e))) => return Err(format!("io: {e}")),
        Err(OpenError::Untrusted(u)) => return Err(format!("untrusted: {u}")),
    };
    let n = r.meta().files.len();
    let mut out = Vec::new();
    for _ in 0..n {
        if r.next_object().is_some() {
            let o = r.skip_object().map_err(|e| format!("{e:?}"))?;
            out.push(reference(&o.digest, o.len));
            continue;
        }
        let mut buf = Vec::new();
        r.next_file(&mut buf).map_err(|e| format!("{e:?}"))?;
        out.push(buf);
    }
    r.finish().map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

/// How [`read_entry`] gives a file held by reference: its digest, then its length.
fn reference(digest: &Key, len: u64) -> Vec<u8> {
    let mut v = digest.0.to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn meta(key: &Key, names: &[&str]) -> EntryMeta {
    EntryMeta {
        format_version: 1,
        key: key.to_hex(),
        files: names
            .iter()
            .map(|n| EntryFile {
                role: "rlib".into(),
                name: n.to_string(),
                template: false,
                executable: false,
                object: None,
            })
            .collect(),
        stdout: String::new(),
        stderr: String::new(),
        ansi: false,
        compile_ms: 1,
        xcache_version: "t".into(),
    }
}

/// How an entry file is damaged.
#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Append(Vec<u8>),
    Replace(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Damage::Append),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(Damage::Replace),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    match d {
        Damage::Truncate(i) => bytes.truncate(i % bytes.len().max(1)),
        Damage::Flip(i, x) => {
            let n = bytes.len();
            if n > 0 {
                bytes[i % n] ^= x;
            }
        }
        Damage::Append(more) => bytes.extend_from_slice(more),
        Damage::Replace(all) => *bytes = all.clone(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// A damaged entry is refused, or reads back exactly as stored; signed and read with
    /// its writer trusted, it is refused or exact too. Thin or whole: a file held by
    /// reference reads back as the digest and length it was written with.
    #[test]
    fn entry_decoder_never_returns_other_content(
        a in proptest::collection::vec(any::<u8>(), 0..3000),
        b in proptest::collection::vec(any::<u8>(), 0..3000),
        d in damage(),
        signed in any::<bool>(),
        thin in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::digest(b"prop");
        let path = dir.path().join("e");
        let b_path = dir.path().join("b");
        std::fs::write(&b_path, &b).unwrap();
        let signer = Signer::generate().unwrap();
        let second = if thin { EntrySource::Object(&b_path) } else { EntrySource::Bytes(&b) };
        write_entry(
            File::create(&path).unwrap(),
            &meta(&key, &["a", "b"]),
            &[(EntrySource::Bytes(&a), false), (second, false)],
            &[],
            signed.then_some(&signer),
        ).unwrap();
        let expected = if thin {
            vec![a.clone(), reference(&Key::digest(&b), b.len() as u64)]
        } else {
            vec![a.clone(), b.clone()]
        };
        let mut bytes = std::fs::read(&path).unwrap();
        apply(&mut bytes, &d);
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(files) = read_entry(&path, &key, None) {
            prop_assert_eq!(&files, &expected);
        }
        let trusted = TrustedKeys::parse(&signer.public_key().to_string()).unwrap().unwrap();
        if let Ok(files) = read_entry(&path, &key, Some(&trusted)) {
            prop_assert!(signed);
            prop_assert_eq!(&files, &expected);
        }
    }

    /// Arbitrary bytes as an entry file: refused with a reason, never a panic.
    #[test]
    fn entry_decoder_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        std::fs::write(&path, &bytes).unwrap();
        let r = read_entry(&path, &Key::digest(b"x"), None);
        prop_assert!(r.is_err());
    }

    /// A recipe from arbitrary path segments: refused, or laid out entirely inside the
    /// directory it may write in (the rest of the scratch area stays empty).
    #[test]
    fn recipe_paths_stay_confined(
        segments in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just("..".to_string()),
                    Just(".".to_string()),
                    Just("".to_string()),
                    Just("link".to_string()),
                    Just("C:".to_string()),
                    Just("a\\\\b".to_string()),
                    "[a-z]{1,3}",
                ],
                1..5,
            ),
            1..4,
        ),
        absolute in any::<bool>(),
    ) {
        let scratch = tempfile::tempdir().unwrap();
        let bound = scratch.path().join("b");
        let root = bound.join("ws");
        std::fs::create_dir_all(&root).unwrap();
        // A symbolic link planted on the way leads outside.
        let outside = scratch.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let files: Vec<String> = segments
            .iter()
            .map(|s| {
                let p = s.join("/");
                if absolute { format!("/{p}") } else { p }
            })
            .collect();
        let json = serde_json::json!({
            "format_version": 1,
            "files": files.iter().map(|p| serde_json::json!({"path": p, "contents": "x"})).collect::<Vec<_>>(),
            "placeholders": [],
            "local_packages": [],
            "bin": null,
        });
        let recipe_path = scratch.path().join("recipe.json");
        std::fs::write(&recipe_path, serde_json::to_vec(&json).unwrap()).unwrap();
        let Ok(recipe) = Recipe::read(&recipe_path) else {
            return Ok(());
        };
        let _ = lay_out(&recipe, &root, &bound);
        prop_assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let mut top: Vec<String> = std::fs::read_dir(scratch.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        prop_assert_eq!(top, vec!["b", "outside", "recipe.json"]);
    }

    /// Arbitrary bytes as a recipe: a clear error naming the file, or a recipe.
    #[test]
    fn recipe_reader_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = Recipe::read(&path) {
            prop_assert!(e.to_string().contains("r.json"), "{}", e);
        }
    }

    /// Dep-info text of any shape: no panic, every file absolute.
    #[test]
    fn depinfo_takes_any_text(text in "(.|\n){0,400}", rule in "[ -~]{0,80}") {
        let text = format!("{rule}\n{text}");
        let d = DepInfo::parse(&text, Path::new("/cwd"));
        for f in &d.files {
            prop_assert!(f.is_absolute(), "{}", f.display());
        }
    }

    /// rustc arguments of any (ASCII) shape: no panic in parsing or in what is derived
    /// from it. Non-ASCII arguments: `rustc_args_take_any_unicode`, below.
    #[test]
    fn rustc_args_take_anything(
        args in rustc_args("[ -~]{0,20}"),
    ) {
        derive_everything(&args);
    }

    /// Config files: parsed or refused with the line and column, never a panic.
    #[test]
    fn config_file_errors_have_a_place(text in "(.|\n){0,200}") {
        if let Err(e) = xcache::config::parse_config(&text) {
            prop_assert!(e.starts_with("line ") || !e.is_empty(), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// rustc arguments holding any Unicode: `key/rustc_args/parse.rs` slices a short flag at
    /// byte 2 (`&arg[..2]`), which panics on `-é…`.
    #[test]
    fn rustc_args_take_any_unicode(args in rustc_args(".{0,20}")) {
        derive_everything(&args);
    }
}

fn derive_everything(args: &[String]) {
    let inv = parse_rustc_args(args);
    let _ = inv.kind();
    let _ = inv.outputs();
    let _ = inv.lib_outputs();
    let _ = inv.features();
    let _ = inv.profile_dir();
    let _ = inv.depinfo_path();
    let _ = inv.key_args(|p| p.display().to_string());
}

fn rustc_args(free: &'static str) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            Just("--crate-type".to_string()),
            Just("--emit".to_string()),
            Just("--out-dir".to_string()),
            Just("-C".to_string()),
            Just("--extern".to_string()),
            Just("-L".to_string()),
            Just("-l".to_string()),
            Just("--crate-name".to_string()),
            Just("--target".to_string()),
            free,
        ],
        0..24,
    )
}

proptest! {
    #![proptest_config(config())]

    /// Settings: every value is understood or refused; sizes and durations do not wrap.
    #[test]
    fn settings_parse_or_refuse(v in ".{0,24}", n in 0u64..1_000_000) {
        let _ = parse_bool(&v);
        let _ = parse_count(&v);
        let _ = parse_size(&v);
        let _ = parse_duration(&v);
        prop_assert_eq!(parse_size(&format!("{n}K")), Ok(n * 1024));
        prop_assert_eq!(parse_duration(&format!("{n}m")).map(|d| d.as_secs()), Ok(n * 60));
        prop_assert_eq!(parse_count(&format!("{}", n + 1)), Ok((n + 1) as usize));
    }

    /// The one judge of confinement: what it accepts lies under the base, made only of
    /// plain components.
    #[test]
    fn confined_never_escapes(rel in "[a-z./\\\\:\0]{0,24}") {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(p) = xcache::fsx::confined(dir.path(), &rel) {
            prop_assert!(p.starts_with(dir.path()));
            prop_assert!(p != dir.path());
            let rest = p.strip_prefix(dir.path()).unwrap();
            prop_assert!(rest.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        }
    }
}
