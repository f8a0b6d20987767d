//! Digesting a file while searching it for needles (the roots an output may hold), in
//! bounded pieces: a needle across two pieces is found.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The content digest of what `reader` gives and whether it holds any of `needles`,
/// read in pieces (never whole in memory).
pub fn digest_and_find(reader: impl Read, needles: &[Vec<u8>]) -> io::Result<(u64, Key, bool)> {
    let mut scanner = Scanner::new(needles);
    let mut buf = vec![0u8; 256 * 1024];
    let (len, digest) = pass(reader, io::sink(), true, 0, &mut scanner, &mut buf)?;
    Ok((len, digest, scanner.found.is_some()))
}

/// The needle search of one entry write: the first needle found, in which file, and how
/// many times that file holds it. Until one is found, every needle is looked for in
/// one pass over each chunk (an Aho-Corasick automaton: a third of the time of a pass
/// per needle over a program or an `.rlib`), with the border between two chunks
/// searched on its own, so that no chunk is copied; once one is, that needle is
/// counted through the rest of its file.
pub(super) struct Scanner<'n> {
    pub(super) needles: &'n [Vec<u8>],
    pub(super) any: Option<AhoCorasick>,
    pub(super) finders: Vec<memmem::Finder<'n>>,
    pub(super) overlap: usize,
    pub(super) found: Option<usize>,
    pub(super) file: Option<(usize, u64)>,
}

impl<'n> Scanner<'n> {
    pub(super) fn new(needles: &'n [Vec<u8>]) -> Self {
        // A needle is a root's path: never empty. An automaton that cannot be built
        // (it can be for any set of needles) leaves the search to one pass per needle.
        let any = (!needles.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(needles)
                    .ok()
            })
            .flatten();
        Scanner {
            needles,
            any,
            finders: needles.iter().map(memmem::Finder::new).collect(),
            overlap: needles
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(1)
                .saturating_sub(1),
            found: None,
            file: None,
        }
    }

    /// Which needle `hay` holds, if any.
    pub(super) fn find_any(&self, hay: &[u8]) -> Option<usize> {
        match &self.any {
            Some(ac) => ac.find(hay).map(|m| m.pattern().as_usize()),
            None => self.finders.iter().position(|f| f.find(hay).is_some()),
        }
    }

    /// Scans the next chunk of file `index`. `window`: what this scan keeps of the
    /// file's chunks before (the tail a needle across the border starts in).
    pub(super) fn scan(&mut self, index: usize, chunk: &[u8], window: &mut Vec<u8>) {
        if self.finders.is_empty() {
            return;
        }
        let counting = self.file.is_some_and(|(i, _)| i == index);
        if self.found.is_some() && !counting {
            return;
        }
        if self.found.is_none() {
            // A needle across the border lies in the last `overlap` bytes before it
            // and the first `overlap` after it.
            let before = window.len();
            window.extend_from_slice(&chunk[..chunk.len().min(self.overlap)]);
            let found = self.find_any(window).or_else(|| self.find_any(chunk));
            if found.is_none() {
                if chunk.len() >= self.overlap {
                    window.clear();
                    window.extend_from_slice(&chunk[chunk.len() - self.overlap..]);
                } else {
                    // The whole chunk is in the window already.
                    let keep = window.len().min(self.overlap);
                    window.drain(..window.len() - keep);
                }
                return;
            }
            self.found = found;
            self.file = Some((index, 0));
            // Counted below over what came before the border and the whole chunk.
            window.truncate(before);
        }
        window.extend_from_slice(chunk);
        if let (Some(n), Some((_, count))) = (self.found, self.file.as_mut()) {
            // Each occurrence once: the window keeps fewer bytes than the needle, so no
            // occurrence lies wholly in what was counted before.
            *count += self.finders[n].find_iter(window).count() as u64;
            let keep = window.len().min(self.needles[n].len().saturating_sub(1));
            window.drain(..window.len() - keep);
        }
    }

    pub(super) fn outcome(
        &self,
        bytes: u64,
        digests: Vec<Key>,
        objects: Vec<ByReference>,
    ) -> PutOutcome {
        PutOutcome {
            bytes,
            needle_found: self.found,
            needle_file: self.file,
            digests,
            objects,
        }
    }
}
