//! Why a unit is not cached. Every variant has a stable kebab-case code and a section
//! under that code in the book (`book/src/reference/uncacheable.md`).

use std::fmt;

/// A reason a unit was compiled without the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uncacheable {
    Dylib,
    Cdylib,
    Staticlib,
    Incremental,
    UnknownFlag,
    ArgFile,
    UnsupportedEmit,
    UnsupportedCodegenOption,
    TargetSpecFile,
    UnresolvedNativeLib,
    UnsupportedLinkTarget,
    UnknownLinker,
    UnresolvedLinkInput,
    UnreadableInput,
    EmbedsAbsolutePath,
    InputChangedDuringBuild,
    MissingOutput,
    Disabled,
    Placeholder,
    BuildScriptProbesSystem,
    BuildScriptInputOutside,
    BuildScriptWritesOutside,
    BuildScriptUnsupportedOutput,
    BuildScriptTooManyFiles,
    BuildScriptUnknownToolchain,
}

/// The reason code of the `error` outcome: rustc failed, and failures are never cached.
pub const RUSTC_FAILED: &str = "rustc-failed";

/// The reason code of a build-script run's `error` outcome: the script failed, and
/// failures are never cached.
pub const BUILD_SCRIPT_FAILED: &str = "build-script-failed";

impl Uncacheable {
    /// Every reason, in the order the book lists them.
    pub const ALL: &[Uncacheable] = &[
        Uncacheable::Dylib,
        Uncacheable::Cdylib,
        Uncacheable::Staticlib,
        Uncacheable::Incremental,
        Uncacheable::UnknownFlag,
        Uncacheable::ArgFile,
        Uncacheable::UnsupportedEmit,
        Uncacheable::UnsupportedCodegenOption,
        Uncacheable::TargetSpecFile,
        Uncacheable::UnresolvedNativeLib,
        Uncacheable::UnsupportedLinkTarget,
        Uncacheable::UnknownLinker,
        Uncacheable::UnresolvedLinkInput,
        Uncacheable::UnreadableInput,
        Uncacheable::EmbedsAbsolutePath,
        Uncacheable::InputChangedDuringBuild,
        Uncacheable::MissingOutput,
        Uncacheable::Disabled,
        Uncacheable::Placeholder,
        Uncacheable::BuildScriptProbesSystem,
        Uncacheable::BuildScriptInputOutside,
        Uncacheable::BuildScriptWritesOutside,
        Uncacheable::BuildScriptUnsupportedOutput,
        Uncacheable::BuildScriptTooManyFiles,
        Uncacheable::BuildScriptUnknownToolchain,
    ];

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
            Uncacheable::TargetSpecFile => "target-spec-file",
            Uncacheable::UnresolvedNativeLib => "unresolved-native-lib",
            Uncacheable::UnsupportedLinkTarget => "unsupported-link-target",
            Uncacheable::UnknownLinker => "unknown-linker",
            Uncacheable::UnresolvedLinkInput => "unresolved-link-input",
            Uncacheable::UnreadableInput => "unreadable-input",
            Uncacheable::EmbedsAbsolutePath => "embeds-absolute-path",
            Uncacheable::InputChangedDuringBuild => "input-changed-during-build",
            Uncacheable::MissingOutput => "missing-output",
            Uncacheable::Disabled => "disabled",
            Uncacheable::Placeholder => "placeholder",
            Uncacheable::BuildScriptProbesSystem => "build-script-probes-system",
            Uncacheable::BuildScriptInputOutside => "build-script-input-outside",
            Uncacheable::BuildScriptWritesOutside => "build-script-writes-outside",
            Uncacheable::BuildScriptUnsupportedOutput => "build-script-unsupported-output",
            Uncacheable::BuildScriptTooManyFiles => "build-script-too-many-files",
            Uncacheable::BuildScriptUnknownToolchain => "build-script-unknown-toolchain",
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
            Uncacheable::TargetSpecFile => "--target names a custom target spec file",
            Uncacheable::UnresolvedNativeLib => {
                "a native library (-l) to bundle or link was not found on the search path"
            }
            Uncacheable::UnsupportedLinkTarget => {
                "linked outputs are cached for Linux targets only"
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
            Uncacheable::EmbedsAbsolutePath => {
                "a file a build script wrote holds an absolute path of this machine; it would be wrong elsewhere"
            }
            Uncacheable::InputChangedDuringBuild => {
                "a source file changed while rustc was reading it"
            }
            Uncacheable::MissingOutput => "rustc did not write an output the cache expected",
            Uncacheable::Disabled => "XCACHE_DISABLE is set",
            Uncacheable::Placeholder => {
                "a placeholder source of `cargo xcache warm`, never stored nor seeded"
            }
            Uncacheable::BuildScriptProbesSystem => {
                "a build script's directives or outputs name an absolute path outside the package, the target dir and CARGO_HOME"
            }
            Uncacheable::BuildScriptInputOutside => {
                "a build script declared rerun-if-changed on a path outside the package, the target dir and CARGO_HOME"
            }
            Uncacheable::BuildScriptWritesOutside => {
                "a build script changed files in its package directory, outside OUT_DIR"
            }
            Uncacheable::BuildScriptUnsupportedOutput => {
                "a build script left a symbolic link, a special file or a non-UTF-8 name in OUT_DIR"
            }
            Uncacheable::BuildScriptTooManyFiles => {
                "a build script's inputs or outputs hold more files than the cache describes"
            }
            Uncacheable::BuildScriptUnknownToolchain => {
                "the build script's executable or the rustc it is given could not be identified"
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
        let mut codes: Vec<&str> = Uncacheable::ALL.iter().map(|u| u.code()).collect();
        for c in &codes {
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{c}"
            );
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Uncacheable::ALL.len());
    }
}
