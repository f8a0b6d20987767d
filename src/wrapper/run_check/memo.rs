//! The memo of the first run's compiles that the aliasing library reads
//! (`XCACHE_CC_MEMO`, [`memo`]), and the marks it leaves of the archives it took.

use std::path::Path;

use super::compiles::Compile;

/// Variables a compile's environment is compared without: the two runs' own (the
/// libraries each preloads and what they read) and the jobserver's, which the second
/// run does not get; none changes what a compile writes. `alias.c` leaves out the same.
const NOT_COMPARED: &[&str] = &[
    "LD_PRELOAD=",
    "XCACHE_OBSERVE_LOG=",
    "XCACHE_ALIAS_MAP=",
    "XCACHE_CC_MEMO=",
    "XCACHE_RUSTC_QUERY=",
    "CARGO_MAKEFLAGS=",
    "MAKEFLAGS=",
    "MFLAGS=",
];

/// The memo the aliasing library reads (`XCACHE_CC_MEMO`): for each compile, its working
/// directory, arguments and sorted environment told at the aliases, the first run's
/// object and where the second run's compile writes it, the files of `OUT_DIR` it read
/// (the first run's and the second's names) and the names there it did not find. Lines
/// `C` (a new compile), then `w`, `a`…, `e`…, `s`, `o`, (`f`, `g`)…, `n`…, and for a step
/// of an archive's making `k <chain> <step>`, each followed
/// by a space and its value, in which `\` and newlines are escaped (`\\`, `\n`).
pub(super) fn memo(
    compiles: &[Compile],
    tell: impl Fn(&str) -> String,
    out_dir: &Path,
    second_out: &Path,
) -> String {
    let mut text = String::new();
    for c in compiles {
        let Ok(rel) = c.output.strip_prefix(out_dir) else {
            continue;
        };
        let mut env: Vec<String> = c
            .env
            .iter()
            .filter(|e| !NOT_COMPARED.iter().any(|n| e.starts_with(n)))
            .map(|e| tell(e))
            .collect();
        env.sort();
        let mut lines = vec![format!("w {}", tell(&c.cwd))];
        lines.extend(c.argv.iter().map(|a| format!("a {}", tell(a))));
        lines.extend(env.iter().map(|e| format!("e {e}")));
        lines.push(format!("s {}", c.output.display()));
        lines.push(format!("o {}", second_out.join(rel).display()));
        for f in &c.same {
            lines.push(format!("f {}", out_dir.join(f).display()));
            lines.push(format!("g {}", second_out.join(f).display()));
        }
        lines.extend(
            c.absent
                .iter()
                .map(|f| format!("n {}", second_out.join(f).display())),
        );
        lines.extend(c.members.iter().map(|m| format!("m {}", tell(m))));
        if let Some(s) = c.chain {
            lines.push(format!("k {} {}", s.chain, s.step));
        }
        text.push_str("C\n");
        for l in lines {
            // One line each: `\` and newlines escaped (`alias.c` reads them back).
            text.push_str(&l.replace('\\', "\\\\").replace('\n', "\\n"));
            text.push('\n');
        }
    }
    text
}

/// Whether the second run began taking an archive's making from the first run but did
/// not finish (`alias.c` marks what it takes: `<memo>.chain-<n>-<step>` for each step,
/// `<memo>.chain-<n>-at-<count>` for the members appended so far): the archive it left is
/// not what its own steps would have made, so the second run says nothing.
pub(super) fn archives_in_part(compiles: &[Compile], memo_path: &Path) -> Option<String> {
    let dir = memo_path.parent()?;
    let name = memo_path.file_name()?.to_string_lossy().into_owned();
    let marks: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!("{name}.chain-")))
        .collect();
    compiles.iter().filter_map(|c| c.chain).find_map(|s| {
        let prefix = format!("{name}.chain-{}-", s.chain);
        let begun = marks.iter().any(|m| m.starts_with(&prefix));
        let finished = marks.contains(&format!("{prefix}{}", s.steps - 1));
        (s.step == 0 && begun && !finished).then(|| {
            "the second run took part of an archive's making from the first run, not all of it"
                .to_string()
        })
    })
}
