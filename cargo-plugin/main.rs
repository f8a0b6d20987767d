//! The `cargo-xcache` executable: `cargo xcache …`, or a rustc wrapper when cargo runs it
//! as `RUSTC_WRAPPER`. All logic lives in the `xcache` library.

fn main() {
    std::process::exit(xcache::cli::main_impl());
}
