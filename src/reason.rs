//! Why a unit is not cached. Main type: [`Uncacheable`]. Every variant has a stable
//! kebab-case code, a one-line description and a section under that code in the book
//! (`book/src/reference/uncacheable.md`); the list of codes is derived from the enum
//! ([`Uncacheable::iter`]), never kept by hand.

use std::fmt;

use strum::{EnumIter, IntoEnumIterator};

/// A reason a unit was compiled (or a build script run) without the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter)]
pub enum Uncacheable {
    Dylib,
    Cdylib,
    Staticlib,
    Incremental,
    UnknownFlag,
    ArgFile,
    UnsupportedEmit,
    UnsupportedCodegenOption,
    WorkspaceWrapper,
    UnresolvedNativeLib,
    UnsupportedLinkTarget,
    UnknownCompiler,
    UnknownLinker,
    UnresolvedLinkInput,
    UnreadableInput,
    Unobserved,
    WritesOutside,
    InputChangedDuringBuild,
    OutputChangedWhileStored,
    MissingOutput,
    Disabled,
    Placeholder,
    BuildScriptUnsupportedOutput,
    BuildScriptTooManyFiles,
    BuildScriptUnknownToolchain,
    Rustdoc,
}

/// The reason code of the `error` outcome: rustc failed, and failures are never cached.
pub const RUSTC_FAILED: &str = "rustc-failed";

/// The reason code of a build-script run's `error` outcome: the script failed, and
/// failures are never cached.
pub const BUILD_SCRIPT_FAILED: &str = "build-script-failed";

impl Uncacheable {
    /// Every reason, in the order the book lists them.
    pub fn all() -> impl Iterator<Item = Uncacheable> {
        Uncacheable::iter()
    }

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Uncacheable::Dylib => "dylib",
            Uncacheable::Cdylib => "cdylib",
            Uncacheable::Staticlib => "staticlib",
            Uncacheable::Incremental => "incremental",
            Uncacheable::UnknownFlag => "unknown-flag",
            Uncacheable::ArgFile => "arg-file",
            Uncacheable::UnsupportedEmit => "unsupported-emit",
            Uncacheable::UnsupportedCodegenOption => "unsupported-codegen-option",
            Uncacheable::WorkspaceWrapper => "workspace-wrapper",
            Uncacheable::UnresolvedNativeLib => "unresolved-native-lib",
            Uncacheable::UnsupportedLinkTarget => "unsupported-link-target",
            Uncacheable::UnknownCompiler => "unknown-compiler",
            Uncacheable::UnknownLinker => "unknown-linker",
            Uncacheable::UnresolvedLinkInput => "unresolved-link-input",
            Uncacheable::UnreadableInput => "unreadable-input",
            Uncacheable::Unobserved => "unobserved",
            Uncacheable::WritesOutside => "writes-outside",
            Uncacheable::InputChangedDuringBuild => "input-changed-during-build",
            Uncacheable::OutputChangedWhileStored => "output-changed-while-stored",
            Uncacheable::MissingOutput => "missing-output",
            Uncacheable::Disabled => "disabled",
            Uncacheable::Placeholder => "placeholder",
            Uncacheable::BuildScriptUnsupportedOutput => "build-script-unsupported-output",
            Uncacheable::BuildScriptTooManyFiles => "build-script-too-many-files",
            Uncacheable::BuildScriptUnknownToolchain => "build-script-unknown-toolchain",
            Uncacheable::Rustdoc => "rustdoc",
        }
    }

    /// One line for humans.
    pub fn description(self) -> &'static str {
        match self {
            Uncacheable::Dylib => "Rust dynamic libraries go through the linker",
            Uncacheable::Cdylib => "C dynamic libraries go through the linker",
            Uncacheable::Staticlib => "static libraries for C bundle the whole dependency tree",
            Uncacheable::Incremental => {
                "compiled with -C incremental and not found in the cache; incremental outputs are never stored"
            }
            Uncacheable::UnknownFlag => "a rustc argument the cache does not understand",
            Uncacheable::ArgFile => "arguments read from an @file",
            Uncacheable::UnsupportedEmit => {
                "--emit kinds other than dep-info, metadata and link, or an explicit output path"
            }
            Uncacheable::UnsupportedCodegenOption => {
                "a -C option whose inputs or outputs lie outside the unit (profile-use, save-temps)"
            }
            Uncacheable::WorkspaceWrapper => {
                "RUSTC_WORKSPACE_WRAPPER runs a tool other than clippy-driver in front of rustc for workspace members; what it does is unknown"
            }
            Uncacheable::UnresolvedNativeLib => {
                "a native library (-l) to bundle or link was not found on the search path"
            }
            Uncacheable::UnsupportedLinkTarget => {
                "linked outputs are cached for Linux targets only"
            }
            Uncacheable::UnknownCompiler => {
                "the compiler could not be identified (`rustc -vV` failed)"
            }
            Uncacheable::UnknownLinker => {
                "the linker, or the C runtime it links in, could not be identified"
            }
            Uncacheable::UnresolvedLinkInput => {
                "a file the linker read could not be found or described"
            }
            Uncacheable::UnreadableInput => {
                "an input (source, --extern, native library) could not be read"
            }
            Uncacheable::Unobserved => {
                "what the compile or run read could not be observed in full (a statically linked program, a child started without the observer)"
            }
            Uncacheable::WritesOutside => {
                "the compile or build-script run changed files outside its outputs, which a restore would not repeat"
            }
            Uncacheable::InputChangedDuringBuild => {
                "a file the unit read changed while it was reading it"
            }
            Uncacheable::OutputChangedWhileStored => {
                "an output changed after cargo was handed it and before the cache had stored it"
            }
            Uncacheable::MissingOutput => "rustc did not write an output the cache expected",
            Uncacheable::Disabled => "XCACHE_DISABLE is set",
            Uncacheable::Placeholder => {
                "a placeholder source of `cargo xcache warm`, never stored nor seeded"
            }
            Uncacheable::BuildScriptUnsupportedOutput => {
                "a build script left a symbolic link, a special file, an empty directory or a non-UTF-8 name in OUT_DIR"
            }
            Uncacheable::BuildScriptTooManyFiles => {
                "a build script's inputs or outputs hold more files than the cache describes"
            }
            Uncacheable::BuildScriptUnknownToolchain => {
                "the build script's executable or the rustc it is given could not be identified"
            }
            Uncacheable::Rustdoc => {
                "documentation and doctests are built by rustdoc, which cargo runs without the rustc wrapper"
            }
        }
    }
}

impl fmt::Display for Uncacheable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut codes: Vec<&str> = Uncacheable::all().map(|u| u.code()).collect();
        for c in &codes {
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{c}"
            );
        }
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
