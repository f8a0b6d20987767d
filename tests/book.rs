//! The book documents every code the program can print.

use xcache::wrapper::{RUSTC_FAILED, Uncacheable};

fn book(page: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("book/src")
        .join(page);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_uncacheable_reason_has_a_section() {
    let page = book("reference/uncacheable.md");
    for u in Uncacheable::ALL {
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
    for code in codes {
        assert!(
            page.contains(&format!("### `{code}`")),
            "no section for {code}"
        );
    }
}
