//! What of the first run the second may take instead of making it again: the compiles and
//! archives into `OUT_DIR` found in the observer's record ([`Compile`], [`compiles`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::observe::{Op, Trace};

/// A compile of one file the first run made (`-c`, `-o` in its `OUT_DIR`), which the
/// second run may take from it instead of compiling again: the compile's own paths are
/// the C checks' (`observe::file_macros`, the prefix maps and the output scan), so what
/// a second compile would give differs from the first only where the script gave it
/// something else. So only when the second run starts it with the same arguments,
/// environment and working directory (each told at the aliases) is the object copied,
/// and only if what the compile read that the run made is the same: nothing written by
/// the run outside `OUT_DIR` (a C file in the temporary directory), and each file of
/// `OUT_DIR` it read (headers the script copied or generated there) written before the
/// compile started and never after, and found with the same bytes in the second run's
/// `OUT_DIR` when the second run starts the compile; each name it looked for there in
/// vain, still absent then.
pub(in crate::wrapper) struct Compile {
    pub(super) cwd: String,
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<String>,
    /// The object the first run's compile wrote.
    pub(super) output: PathBuf,
    /// Files of `OUT_DIR` the compile read, relative to it: the second run's must have
    /// the same bytes.
    pub(super) same: Vec<PathBuf>,
    /// Names in `OUT_DIR` the compile looked for and did not find, relative to it: the
    /// second run's must be absent too.
    pub(super) absent: Vec<PathBuf>,
    /// For a step of an archive's making ([`archives`]): which.
    pub(super) chain: Option<Step>,
    /// For the step that appends an archive's members (`ar cq ARCHIVE`, whose arguments
    /// then end at the archive): the members, in order, in whatever batches the second
    /// run gives them ([`appends_as_one`]).
    pub(super) members: Vec<String>,
}

/// A step of the making of an archive: the chain's number in the memo, the step's place
/// in it and the number of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Step {
    pub(super) chain: usize,
    pub(super) step: usize,
    pub(super) steps: usize,
}

/// The fields of an [`Op::Args`] or [`Op::EnvList`] record, when whole: separated by
/// 0x1f, within which 0x1b escapes 0x1f (`1`) and itself (`preload.c`, `note_fields`).
pub(super) fn fields(path: &str) -> Option<Vec<String>> {
    let mut it = path.split('\u{1f}');
    let n: usize = it.next()?.parse().ok()?;
    let v: Vec<String> = it
        .map(|f| {
            let mut out = String::with_capacity(f.len());
            let mut chars = f.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\u{1b}' => match chars.next()? {
                        '1' => out.push('\u{1f}'),
                        '\u{1b}' => out.push('\u{1b}'),
                        _ => return None,
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

/// What the first run's record says of its processes, for finding the compiles and
/// archives the second run may take.
struct Processes<'t> {
    parent: HashMap<u32, u32>,
    /// Where in the record each process started and made its last call.
    started: HashMap<u32, usize>,
    last: HashMap<u32, usize>,
    args: HashMap<(u32, u32), Vec<String>>,
    envs: HashMap<(u32, u32), Vec<String>>,
    /// What each process read (programs it ran included), with its place in the record.
    reads: HashMap<u32, Vec<(Op, &'t str, usize)>>,
    /// The names it looked for in vain.
    probes: HashMap<u32, Vec<(&'t str, usize)>>,
    /// Every write, with its place in the record and its process.
    written: HashMap<&'t str, Vec<(usize, u32)>>,
    escaped: HashSet<u32>,
}

impl<'t> Processes<'t> {
    fn of(trace: &'t Trace) -> Processes<'t> {
        let mut p = Processes {
            parent: HashMap::new(),
            started: HashMap::new(),
            last: HashMap::new(),
            args: HashMap::new(),
            envs: HashMap::new(),
            reads: HashMap::new(),
            probes: HashMap::new(),
            written: HashMap::new(),
            escaped: HashSet::new(),
        };
        for (at, e) in trace.events.iter().enumerate() {
            p.last.insert(e.pid, at);
            match e.op {
                Op::Start => {
                    p.parent.insert(e.pid, e.err as u32);
                    p.started.entry(e.pid).or_insert(at);
                    // A program is read too: one the run wrote has to be compared.
                    p.reads
                        .entry(e.pid)
                        .or_default()
                        .push((Op::Start, &e.path, at));
                }
                Op::Exec | Op::Spawn => p.reads.entry(e.pid).or_default().push((e.op, &e.path, at)),
                Op::Args => {
                    if let Some(f) = fields(&e.path) {
                        p.args.insert((e.pid, e.image), f);
                    }
                }
                Op::EnvList => {
                    if let Some(f) = fields(&e.path) {
                        p.envs.insert((e.pid, e.image), f);
                    }
                }
                Op::Read | Op::List if e.err == 0 => {
                    p.reads.entry(e.pid).or_default().push((e.op, &e.path, at));
                }
                Op::Read | Op::Stat | Op::Readlink | Op::List if e.err != 0 => {
                    p.probes.entry(e.pid).or_default().push((&e.path, at));
                }
                Op::Write | Op::Mkdir if e.err == 0 => {
                    p.written.entry(&e.path).or_default().push((at, e.pid));
                }
                Op::Escape => {
                    p.escaped.insert(e.pid);
                }
                _ => {}
            }
        }
        p
    }

    /// A process and every process started below it.
    fn tree(&self, pid: u32) -> HashSet<u32> {
        let mut tree: HashSet<u32> = HashSet::from([pid]);
        loop {
            let before = tree.len();
            for (child, p) in &self.parent {
                if tree.contains(p) {
                    tree.insert(*child);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        tree
    }

    /// Where in the record processes of `tree` (`own`) or others wrote `path`.
    fn writes_of(&self, path: &str, tree: &HashSet<u32>, own: bool) -> Vec<usize> {
        self.written
            .get(path)
            .into_iter()
            .flatten()
            .filter(|(_, p)| tree.contains(p) == own)
            .map(|(at, _)| *at)
            .collect()
    }

    /// The files of `OUT_DIR` (relative to it) the processes of `tree` read that the
    /// second run's must hold the same bytes, and the names there they looked for in
    /// vain; `None` when what they read cannot be compared: a file the run wrote again
    /// after `start` (or outside `OUT_DIR` at all), a program or a listing of
    /// `OUT_DIR`. Paths in `internal` are left to the caller.
    fn inputs(
        &self,
        tree: &HashSet<u32>,
        start: usize,
        out_dir: &Path,
        internal: &[&str],
    ) -> Option<(Vec<PathBuf>, Vec<PathBuf>)> {
        let mut same: Vec<PathBuf> = Vec::new();
        for (op, r, _) in tree
            .iter()
            .flat_map(|p| self.reads.get(p).into_iter().flatten())
        {
            if internal.contains(r) {
                continue;
            }
            let others = self.writes_of(r, tree, false);
            match in_out_dir(r, out_dir) {
                // A file of `OUT_DIR` read and not written by the tree itself: compared,
                // if the run wrote it before `start` and never again.
                Some(rel) if *op == Op::Read && self.writes_of(r, tree, true).is_empty() => {
                    if others.iter().any(|at| *at > start) {
                        return None;
                    }
                    same.push(rel);
                }
                // A program or a directory listing of `OUT_DIR`.
                Some(_) if *op != Op::Read => return None,
                // A file the tree wrote there itself and read back.
                Some(_) => {}
                None if !others.is_empty() => return None,
                None => {}
            }
        }
        same.sort();
        same.dedup();
        let mut absent: Vec<PathBuf> = tree
            .iter()
            .flat_map(|p| self.probes.get(p).into_iter().flatten())
            .filter_map(|(p, _)| in_out_dir(p, out_dir))
            .collect();
        absent.sort();
        absent.dedup();
        Some((same, absent))
    }
}

/// A path in `OUT_DIR`, relative to it, made of names only (a `..` would not stay below
/// it).
fn in_out_dir(p: &str, out_dir: &Path) -> Option<PathBuf> {
    let rel = Path::new(p).strip_prefix(out_dir).ok()?;
    let names = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (names && !rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// The compiles (and archives) of the first run the second may take (see [`Compile`]).
pub(in crate::wrapper) fn compiles(trace: &Trace, out_dir: &Path) -> Vec<Compile> {
    let procs = Processes::of(trace);
    let mut out = Vec::new();
    for ((pid, image), a) in &procs.args {
        let (Some(cwd), Some(env)) = (a.first(), procs.envs.get(&(*pid, *image))) else {
            continue;
        };
        let argv = a[1..].to_vec();
        if archive_of(&argv).is_some() {
            continue;
        }
        let Some(o) = argv
            .iter()
            .rposition(|x| x == "-o")
            .and_then(|i| argv.get(i + 1))
        else {
            continue;
        };
        let output = Path::new(cwd).join(o);
        if !output.starts_with(out_dir) || !output.is_file() {
            continue;
        }
        let tree = procs.tree(*pid);
        if tree.iter().any(|p| procs.escaped.contains(p)) {
            continue;
        }
        let start = procs.started.get(pid).copied().unwrap_or(0);
        if !procs
            .writes_of(&output.to_string_lossy(), &tree, false)
            .is_empty()
        {
            continue;
        }
        let Some((same, absent)) = procs.inputs(&tree, start, out_dir, &[]) else {
            continue;
        };
        out.push(Compile {
            cwd: cwd.clone(),
            argv,
            env: env.clone(),
            output,
            same,
            absent,
            chain: None,
            members: Vec::new(),
        });
    }
    out.extend(archives(&procs, out_dir));
    out
}

/// The archive an archiver's arguments make (`ar cq ARCHIVE member…`, `ar s ARCHIVE`),
/// when they are of the forms whose archive holds only the members' names and bytes:
/// the operation `q`, `r` or `s` with the modifiers `c`, `s` and `D` only (not `P` or
/// `T`, which keep the members' paths, nor `u`, `o`, `U`, which read or keep times,
/// nor `a`, `b`, `i`, `N`, which take a further argument), no option before the
/// archive and no `@file`.
pub(super) fn archive_of(argv: &[String]) -> Option<&str> {
    let program = Path::new(argv.first()?).file_name()?.to_str()?;
    if program != "ar" && !program.ends_with("-ar") {
        return None;
    }
    let op = argv.get(1)?;
    let letters = op.strip_prefix('-').unwrap_or(op);
    let known = !letters.is_empty() && letters.chars().all(|c| "qrscD".contains(c));
    let operation = letters.chars().filter(|c| "qr".contains(*c)).count() <= 1
        && letters.chars().any(|c| "qrs".contains(c));
    let archive = argv.get(2)?;
    let plain = argv[2..]
        .iter()
        .all(|a| !a.starts_with('-') && !a.starts_with('@') && !a.is_empty());
    (known && operation && plain).then_some(archive.as_str())
}

/// The archives of `OUT_DIR` the first run made with an archiver, which the second may
/// take whole: each archive's makers, in order (`ar cq` of the members, then `ar s` to
/// index them, as the `cc` crate runs them), are a chain of steps the second run takes
/// only from the first and in order (`alias.c`): the first step puts the first run's
/// archive in place, each later one finds it there unchanged and does nothing.
///
/// A chain is taken only if: the first step found no archive (it looked, in vain); no
/// other process read or wrote the archive from the chain's first start to its last
/// call, nor wrote it after; the steps did not overlap; and what each step read of what
/// the run made is compared as a compile's is. The archive's bytes are then a function
/// of the members' names (not their paths: see [`archive_of`]) and bytes, which the
/// second run's steps give as the first's did, told at the aliases.
fn archives(procs: &Processes<'_>, out_dir: &Path) -> Vec<Compile> {
    let mut by_archive: HashMap<PathBuf, Vec<(usize, u32, u32)>> = HashMap::new();
    for ((pid, image), a) in &procs.args {
        let Some(cwd) = a.first() else { continue };
        let Some(archive) = archive_of(&a[1..]) else {
            continue;
        };
        let path = Path::new(cwd).join(archive);
        let start = procs.started.get(pid).copied().unwrap_or(0);
        by_archive
            .entry(path)
            .or_default()
            .push((start, *pid, *image));
    }
    let mut out = Vec::new();
    let mut chains = 0;
    let mut by_archive: Vec<_> = by_archive.into_iter().collect();
    by_archive.sort();
    for (archive, mut steps) in by_archive {
        if in_out_dir(&archive.to_string_lossy(), out_dir).is_none() || !archive.is_file() {
            continue;
        }
        steps.sort();
        let name = archive.to_string_lossy().into_owned();
        let mut chain: Vec<Compile> = Vec::new();
        let mut ok = true;
        let first_start = steps[0].0;
        let mut end = 0;
        let mut trees: HashSet<u32> = HashSet::new();
        for (i, (start, pid, image)) in steps.iter().enumerate() {
            let tree = procs.tree(*pid);
            let last = tree
                .iter()
                .filter_map(|p| procs.last.get(p))
                .max()
                .copied()
                .unwrap_or(*start);
            // Steps one after the other, each a process of its own.
            ok &= *start > end || i == 0;
            ok &= !tree.iter().any(|p| procs.escaped.contains(p));
            end = last;
            let (Some(a), Some(env)) = (
                procs.args.get(&(*pid, *image)),
                procs.envs.get(&(*pid, *image)),
            ) else {
                ok = false;
                break;
            };
            let Some((same, absent)) = procs.inputs(&tree, *start, out_dir, &[&name]) else {
                ok = false;
                break;
            };
            if i == 0 {
                // The first step made the archive anew: it looked for it in vain before
                // it read it.
                let looked = procs
                    .probes
                    .get(pid)
                    .into_iter()
                    .flatten()
                    .filter(|(p, _)| *p == name)
                    .map(|(_, at)| *at)
                    .min();
                let read = procs
                    .reads
                    .get(pid)
                    .into_iter()
                    .flatten()
                    .filter(|(_, p, _)| *p == name)
                    .map(|(_, _, at)| *at)
                    .min();
                ok &= looked.is_some_and(|l| read.is_none_or(|r| l < r));
            }
            trees.extend(tree);
            chain.push(Compile {
                cwd: a[0].clone(),
                argv: a[1..].to_vec(),
                env: env.clone(),
                output: archive.clone(),
                same,
                absent,
                chain: Some(Step {
                    chain: chains,
                    step: i,
                    steps: steps.len(),
                }),
                members: Vec::new(),
            });
        }
        // Nobody else touched the archive from the first step on.
        let touched_by_others = procs
            .written
            .get(name.as_str())
            .into_iter()
            .flatten()
            .any(|(at, p)| *at >= first_start && !trees.contains(p))
            || procs.reads.iter().any(|(p, reads)| {
                !trees.contains(p)
                    && reads
                        .iter()
                        .any(|(_, r, at)| *r == name && *at >= first_start && *at <= end)
            });
        if ok && !touched_by_others {
            out.extend(appends_as_one(chain));
            chains += 1;
        }
    }
    out
}

/// An archive's chain with its first steps that append members (`ar cq ARCHIVE m…`, the
/// same program, operation, archive, environment and working directory each time) made
/// one step listing every member in order: the `cc` crate appends in batches of so many
/// bytes of paths, which at the second run's aliases (of other lengths) fall elsewhere.
/// Appending the same members in the same order in other batches makes the same archive
/// (GNU `ar` writes the whole archive again each time); the second run's batches are
/// taken when they give the members in order (`alias.c`).
pub(super) fn appends_as_one(chain: Vec<Compile>) -> Vec<Compile> {
    let appends = |c: &Compile| c.argv.get(1).is_some_and(|op| op.contains('q'));
    let n = chain
        .iter()
        .take_while(|c| {
            appends(c)
                && c.argv.len() > 3
                && c.argv[..3] == chain[0].argv[..3]
                && c.env == chain[0].env
                && c.cwd == chain[0].cwd
        })
        .count();
    if n == 0 {
        return chain;
    }
    let steps = chain.len() - n + 1;
    let mut rest = chain.into_iter();
    let mut first = rest.next().expect("at least one appending step");
    first.members = first.argv.split_off(3);
    for b in rest.by_ref().take(n - 1) {
        first.members.extend(b.argv.into_iter().skip(3));
        first.same.extend(b.same);
        first.absent.extend(b.absent);
    }
    first.same.sort();
    first.same.dedup();
    first.absent.sort();
    first.absent.dedup();
    let mut out = vec![first];
    out.extend(rest);
    for (i, c) in out.iter_mut().enumerate() {
        if let Some(s) = c.chain.as_mut() {
            s.step = i;
            s.steps = steps;
        }
    }
    out
}
