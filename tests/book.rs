//! The book documents every code the program can print.

use xcache::reason::{RUSTC_FAILED, Uncacheable};

fn book(page: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("book/src")
        .join(page);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_uncacheable_reason_has_a_section() {
    let page = book("reference/uncacheable.md");
    for u in Uncacheable::all() {
        assert!(
            page.contains(&format!("## `{}`", u.code())),
            "no section for {}",
            u.code()
        );
    }
    assert!(page.contains(&format!("## `{RUSTC_FAILED}`")));
}

#[test]
fn every_error_and_warning_code_has_a_section() {
    let page = book("reference/errors.md");
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/errors.rs"),
    )
    .unwrap();
    // Every `=> "code"` arm of the `code()` functions.
    let codes: Vec<&str> = src
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|rest| rest.trim_end_matches("\",").trim_end_matches('"'))
        .collect();
    assert!(codes.len() >= 10, "{codes:?}");
    // The remote classes are named where remote failures are classified: the remote
    // stores' rooms and the REAPI client.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut remote = String::new();
    for dir in ["src/store/remote", "src/reapi"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            remote.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
    }
    let remote_codes: Vec<&str> = remote
        .split('"')
        .filter(|t| {
            t.starts_with("remote-") && t.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .collect();
    assert!(remote_codes.len() >= 5, "{remote_codes:?}");
    for code in codes.into_iter().chain(remote_codes) {
        assert!(
            page.contains(&format!("### `{code}`")),
            "no section for {code}"
        );
    }
}
