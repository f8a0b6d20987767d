//! The observer's record, parsed. Main type: [`Trace`].

/// What a process did (see `preload.c` for the letters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A process (or a new program in it, after exec) started; `err` holds the parent pid.
    Start,
    Read,
    Write,
    Stat,
    List,
    Readlink,
    Realpath,
    Mkdir,
    Env,
    /// The environment was read whole (`environ` walked); path: the object whose code
    /// did, caller: the function, or why the guard could not tell.
    EnvAll,
    /// A program looked up by name in PATH (`execvp`, `posix_spawnp`; path: the name,
    /// caller: the PATH searched; `err` 0 when found).
    Lookup,
    /// PATH read by name (path: its value, caller: the object whose code read it).
    PathVar,
    /// A variable set or removed by the process (path: its name, `*` when the
    /// environment was cleared).
    EnvChange,
    /// The process becomes another program.
    Exec,
    /// The process starts a child running a program.
    Spawn,
    Escape,
    /// A process shaped like a compile of one file (`-c`, `-o`) started: path: a count,
    /// then its working directory and arguments, separated by 0x1f.
    Args,
    /// That compile's environment: a count, then each `NAME=value`, separated by 0x1f.
    EnvList,
}

impl Op {
    fn from_letter(c: char) -> Option<Op> {
        Some(match c {
            'I' => Op::Start,
            'o' => Op::Read,
            'w' => Op::Write,
            's' => Op::Stat,
            'd' => Op::List,
            'l' => Op::Readlink,
            'r' => Op::Realpath,
            'm' => Op::Mkdir,
            'e' => Op::Env,
            'E' => Op::EnvAll,
            'L' => Op::Lookup,
            'P' => Op::PathVar,
            'c' => Op::EnvChange,
            'x' => Op::Exec,
            'p' => Op::Spawn,
            'X' => Op::Escape,
            'a' => Op::Args,
            'A' => Op::EnvList,
            _ => return None,
        })
    }
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    pub op: Op,
    /// The call's errno (0: it succeeded); for [`Op::Env`], 1 when the variable was unset.
    pub err: i64,
    /// An absolute path, a variable name, or a message.
    pub path: String,
    /// For [`Op::Env`]: the object (executable or shared library) whose code asked.
    pub caller: Option<String>,
    /// For [`Op::PathVar`] read by the program itself: the return addresses of the calls
    /// in it that led to the read (`+0x… +0x…`, offsets from where it was loaded).
    pub chain: Option<String>,
    /// Which program of its process made the call: 0 before the first exec, then 1, ….
    pub image: u32,
    /// For [`Op::Read`]: the process named the file by a relative path (recorded as
    /// `rel` after a tab); `path` is absolute all the same.
    pub relative: bool,
}

/// Everything one observed run recorded, in the order it was written.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The pid of the process the wrapper started.
    pub root: u32,
    pub events: Vec<Event>,
    /// Lines that could not be read (a process killed mid-write leaves none: each line
    /// is one write).
    pub torn: usize,
}

impl Trace {
    /// Parses the record of a run whose first process was `root`.
    pub fn parse(text: &str, root: u32) -> Trace {
        let mut events = Vec::new();
        let mut torn = 0;
        // Which program each pid runs now: a start after the first counts up.
        let mut images: std::collections::HashMap<u32, (u32, bool)> = Default::default();
        for line in text.lines() {
            let Some(ev) = parse_line(line) else {
                torn += 1;
                continue;
            };
            let mut ev = ev;
            let slot = images.entry(ev.pid).or_insert((0, false));
            if ev.op == Op::Start {
                if slot.1 {
                    slot.0 += 1;
                }
                slot.1 = true;
            }
            ev.image = slot.0;
            events.push(ev);
        }
        Trace { root, events, torn }
    }

    /// True when the process the wrapper started ran with the observer loaded.
    pub fn root_observed(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.pid == self.root && e.op == Op::Start)
    }

    /// Why some process ran unobserved, if any did.
    pub fn escapes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .events
            .iter()
            .filter(|e| e.op == Op::Escape)
            .map(|e| e.path.as_str())
            .collect();
        if !self.root_observed() {
            v.push("the started program did not load the observer");
        }
        v
    }
}

fn parse_line(line: &str) -> Option<Event> {
    let mut parts = line.splitn(4, ' ');
    let pid: u32 = parts.next()?.parse().ok()?;
    let op_s = parts.next()?;
    let mut chars = op_s.chars();
    let op = Op::from_letter(chars.next()?)?;
    if chars.next().is_some() {
        return None;
    }
    let err: i64 = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let (path, mut caller) = match rest.split_once('\t') {
        Some((p, c)) => (unescape(p), Some(unescape(c))),
        None => (unescape(rest), None),
    };
    // `obj @ +0x… +0x…`: the object, then the chain (only when all of it parses, so an
    // object whose path holds " @" is never cut).
    let mut chain = None;
    if op == Op::PathVar
        && let Some((obj, ch)) = caller.as_deref().and_then(|c| c.rsplit_once(" @"))
        && ch.split_whitespace().all(|f| {
            f.strip_prefix("+0x")
                .is_some_and(|h| u64::from_str_radix(h, 16).is_ok())
        })
    {
        chain = Some(ch.trim().to_string());
        caller = Some(obj.to_string());
    }
    let relative = op == Op::Read && caller.as_deref() == Some("rel");
    if relative {
        caller = None;
    }
    Some(Event {
        pid,
        op,
        err,
        path,
        caller,
        chain,
        image: 0,
        relative,
    })
}

/// The observer escapes `\`, newlines and tabs (`preload.c`).
fn unescape(s: &str) -> String {
    crate::key::unescape_backslashes(s, &[('n', '\n'), ('t', '\t')])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_images_and_escapes() {
        let text = "10 I 9 /usr/bin/rustup\n\
                    10 s 2 /ws/rust-toolchain.toml\n\
                    10 x 0 /sysroot/bin/rustc\n\
                    10 I 9 /sysroot/bin/rustc\n\
                    10 o 0 /ws/a\\tb\\nc\n\
                    10 e 1 MAC_FLAVOR\t/t/deps/libmac.so\n\
                    11 I 10 /usr/bin/cc\n\
                    11 X 0 /bin/static: statically linked program\n\
                    12 o 0 /half-writ";
        let t = Trace::parse(text, 10);
        assert!(t.root_observed());
        assert_eq!(t.events.len(), 9);
        assert_eq!(t.events[1].image, 0);
        assert_eq!(t.events[3].image, 1);
        assert_eq!(t.events[4].path, "/ws/a\tb\nc");
        assert_eq!(t.events[5].op, Op::Env);
        assert_eq!(t.events[5].err, 1);
        assert_eq!(t.events[5].caller.as_deref(), Some("/t/deps/libmac.so"));
        assert_eq!(t.escapes(), ["/bin/static: statically linked program"]);
        let unobserved = Trace::parse("11 o 0 /x\n", 10);
        assert_eq!(unobserved.escapes().len(), 1);
        assert_eq!(Trace::parse("garbage\n1 Q 0 x\n", 1).torn, 2);
    }
}
