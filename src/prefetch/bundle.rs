//! Bundles: the objects (entries and seed packs) one build used, concatenated into a few
//! pieces of bounded size and listed in the index, so that the next build fetches them
//! in a few large requests, all at once, instead of one request per object.
//!
//! The build's writer (after cargo, with the index) bundles the objects it used that no
//! piece held yet, when there are at least [`MIN_NEW`]; the index keeps the newest
//! [`MAX_PIECES`]. A reader of an object store fetches, from each piece, the byte range
//! that spans the objects it wants (a new range when a gap of [`GAP_BYTES`] or more lies
//! between two of them); a key-value store serves no ranges, so its reader fetches a
//! whole piece when the objects it wants make up at least half of it. The reader splits
//! the stream into its members while it arrives, verifies each as an entry fetched
//! alone is verified, and fetches alone whatever a piece did not deliver whole and
//! verified. Every object also stays in the remote on its own, for wrappers, older
//! readers and pieces that are gone or damaged (unless uploads are bundled:
//! `uploads=bundles`, where pieces are all there is).
//!
//! Main functions: [`choose`], [`fetch_piece`], [`write`].

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::index::{BundleMember, BundlePiece, Index};
use crate::errors::CacheError;
use crate::key::{Key, KeyHasher};
use crate::store::{LocalStore, RemoteStore, verify_entry};

/// A piece holds objects up to this many bytes (an object larger than that gets a piece
/// of its own; no object is split).
pub const PIECE_BYTES: u64 = 16 << 20;
/// How many pieces the index keeps, newest first.
pub const MAX_PIECES: usize = 32;
/// A build writes a new bundle when at least this many of the objects it used were in
/// no piece; fewer travel alone.
pub const MIN_NEW: usize = 8;
/// Two wanted objects of a piece travel in one range unless this many unwanted bytes
/// or more lie between them: downloading a smaller gap costs less than a request.
pub const GAP_BYTES: u64 = 1 << 20;

/// Where a piece lives in the remote.
pub fn piece_path(key: &Key) -> String {
    format!("{}/bundles/{}.xcb", crate::store::LAYOUT, key.to_hex())
}

/// A member of a piece whose table was checked: `(key, offset, len)`.
pub type Member = (Key, u64, u64);

/// A piece's key and members, if its table holds: every key
/// parses, every member has bytes, members come in order without overlapping and end
/// inside the piece. A piece whose table does not hold is not used at all.
pub fn members(piece: &BundlePiece) -> Option<(Key, Vec<Member>)> {
    let key = Key::from_hex(&piece.key)?;
    let mut end = 0u64;
    let mut out = Vec::with_capacity(piece.members.len());
    for m in &piece.members {
        let k = Key::from_hex(&m.key)?;
        let stop = m.offset.checked_add(m.len)?;
        if m.len == 0 || m.offset < end || stop > piece.size {
            return None;
        }
        end = stop;
        out.push((k, m.offset, m.len));
    }
    (!out.is_empty()).then_some((key, out))
}

/// Every object the usable pieces of `index` hold.
pub fn held(index: &Index) -> HashSet<Key> {
    index
        .bundles
        .iter()
        .filter_map(members)
        .flat_map(|(_, m)| m.into_iter().map(|(k, _, _)| k))
        .collect()
}

/// A range of a piece to fetch and the members wanted from it (the others are skipped).
#[derive(Clone, Debug)]
pub struct PieceJob {
    pub key: Key,
    pub size: u64,
    /// The bytes to fetch: `start..end` of the piece (`0..size` for all of it).
    pub start: u64,
    pub end: u64,
    pub members: Vec<Member>,
}

impl PieceJob {
    fn of(key: Key, size: u64, members: Vec<Member>) -> PieceJob {
        let start = members.first().map_or(0, |m| m.1);
        let end = members.last().map_or(0, |m| m.1 + m.2);
        PieceJob {
            key,
            size,
            start,
            end,
            members,
        }
    }
}

/// Chooses what to fetch from pieces for `wanted` (in the order planting needs them),
/// newest piece first for an object several hold. With `ranges` (an object store), each
/// piece's wanted objects are fetched as ranges of it, split where [`GAP_BYTES`] or more
/// lie between two of them; without (a key-value store), a whole piece is fetched when
/// the wanted objects in it make up at least half its bytes. Returns the jobs, ordered
/// by their first wanted object, and the objects left to fetch alone, in order.
pub fn choose(
    index: &Index,
    wanted: &[(Key, Option<u64>)],
    ranges: bool,
) -> (Vec<PieceJob>, Vec<(Key, Option<u64>)>) {
    let rank: std::collections::HashMap<Key, usize> = wanted
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let mut covered: HashSet<Key> = HashSet::new();
    let mut jobs: Vec<PieceJob> = Vec::new();
    for piece in &index.bundles {
        let Some((key, all)) = members(piece) else {
            continue;
        };
        let mine: Vec<Member> = all
            .into_iter()
            .filter(|(k, _, _)| rank.contains_key(k) && !covered.contains(k))
            .collect();
        let bytes: u64 = mine.iter().map(|(_, _, len)| len).sum();
        if mine.is_empty() || (!ranges && bytes.saturating_mul(2) < piece.size) {
            continue;
        }
        covered.extend(mine.iter().map(|(k, _, _)| *k));
        if !ranges {
            jobs.push(PieceJob {
                key,
                size: piece.size,
                start: 0,
                end: piece.size,
                members: mine,
            });
            continue;
        }
        let mut span: Vec<Member> = Vec::new();
        for m in mine {
            if let Some(last) = span.last()
                && m.1 - (last.1 + last.2) >= GAP_BYTES
            {
                jobs.push(PieceJob::of(key, piece.size, std::mem::take(&mut span)));
            }
            span.push(m);
        }
        jobs.push(PieceJob::of(key, piece.size, span));
    }
    let first = |j: &PieceJob| {
        j.members
            .iter()
            .filter_map(|(k, _, _)| rank.get(k))
            .min()
            .copied()
            .unwrap_or(usize::MAX)
    };
    jobs.sort_by_cached_key(first);
    let alone = wanted
        .iter()
        .filter(|(k, _)| !covered.contains(k))
        .copied()
        .collect();
    (jobs, alone)
}

/// What fetching one piece gave.
#[derive(Debug, Default)]
pub struct PieceOutcome {
    /// Wanted members that did not arrive whole and verified: to be fetched alone.
    pub missing: Vec<(Key, u64)>,
    /// The first member that arrived but was not what the index said, as a message.
    pub damaged: Option<String>,
    /// Whether the piece itself was absent.
    pub absent: bool,
    pub bytes: u64,
}

/// Streams a piece's range and splits it into its wanted members as it arrives. Each member is
/// written to a temporary file, verified as an entry of its key (its header, as
/// [`RemoteStore::get_entry`] does when the size was known; a restore checks every
/// digest), adopted into `local` and passed to `arrived` with its length. Never more
/// than a transfer's buffer in memory.
pub fn fetch_piece(
    remote: &RemoteStore,
    local: &LocalStore,
    job: &PieceJob,
    arrived: &mut dyn FnMut(Key, u64),
) -> PieceOutcome {
    let path = piece_path(&job.key);
    let mut split = Split {
        local,
        members: &job.members,
        next: 0,
        pos: job.start,
        open: None,
        delivered: vec![false; job.members.len()],
        damaged: None,
        path: &path,
        arrived,
    };
    let whole = job.start == 0 && job.end == job.size;
    let got = if whole {
        remote.get_stream(&path, Some(job.size), &mut |chunk| split.feed(chunk))
    } else {
        remote.get_range(&path, job.start..job.end, &mut |chunk| split.feed(chunk))
    };
    if let Some((_, tmp)) = split.open.take() {
        // The piece ended (or failed) inside a member.
        let _ = std::fs::remove_file(tmp);
    }
    let missing = job
        .members
        .iter()
        .zip(&split.delivered)
        .filter(|(_, d)| !**d)
        .map(|((k, _, len), _)| (*k, *len))
        .collect();
    PieceOutcome {
        missing,
        damaged: split.damaged,
        absent: matches!(got, Ok(None)),
        bytes: split.pos - job.start,
    }
}

struct Split<'a> {
    local: &'a LocalStore,
    members: &'a [Member],
    /// The member being received or awaited.
    next: usize,
    /// Where in the piece the next byte to arrive lies.
    pos: u64,
    open: Option<(std::fs::File, PathBuf)>,
    delivered: Vec<bool>,
    damaged: Option<String>,
    path: &'a str,
    arrived: &'a mut dyn FnMut(Key, u64),
}

impl Split<'_> {
    fn feed(&mut self, mut data: &[u8]) -> Result<(), CacheError> {
        while !data.is_empty() {
            let Some(&(key, offset, len)) = self.members.get(self.next) else {
                // Past the last wanted member: the rest is not needed.
                self.pos += data.len() as u64;
                return Ok(());
            };
            if self.pos < offset {
                let skip = (offset - self.pos).min(data.len() as u64) as usize;
                self.pos += skip as u64;
                data = &data[skip..];
                continue;
            }
            let end = offset + len;
            let take = (end - self.pos).min(data.len() as u64) as usize;
            let (file, tmp) = match &mut self.open {
                Some(o) => o,
                None => {
                    let tmp = self.local.temp_path();
                    let file = std::fs::File::create(&tmp).map_err(|source| CacheError::Write {
                        path: tmp.clone(),
                        source,
                    })?;
                    self.open.insert((file, tmp))
                }
            };
            file.write_all(&data[..take])
                .map_err(|source| CacheError::Write {
                    path: tmp.clone(),
                    source,
                })?;
            self.pos += take as u64;
            data = &data[take..];
            if self.pos == end {
                if let Some((file, tmp)) = self.open.take() {
                    drop(file);
                    self.finish_member(key, len, &tmp);
                }
                self.next += 1;
            }
        }
        Ok(())
    }

    fn finish_member(&mut self, key: Key, len: u64, tmp: &Path) {
        match verify_entry(tmp, &key, false) {
            Ok(()) if self.local.adopt_entry(&key, tmp).is_ok() => {
                self.delivered[self.next] = true;
                (self.arrived)(key, len);
            }
            Ok(()) => {
                let _ = std::fs::remove_file(tmp);
            }
            Err(what) => {
                let _ = std::fs::remove_file(tmp);
                self.damaged.get_or_insert(format!(
                    "member {} of bundle piece {} is damaged ({what}); it was not used and was fetched alone",
                    key.to_hex(),
                    self.path
                ));
            }
        }
    }
}

/// Objects gathered, in order, into groups of at most [`PIECE_BYTES`] (an object larger
/// than that gets a group of its own; no object is split).
#[derive(Default)]
pub struct Groups {
    group: Vec<(Key, u64)>,
    filled: u64,
}

impl Groups {
    /// Adds an object of `n` bytes; the group it closed, if it closed one.
    pub fn push(&mut self, key: Key, n: u64) -> Option<Vec<(Key, u64)>> {
        let full = (!self.group.is_empty() && self.filled + n > PIECE_BYTES).then(|| {
            self.filled = 0;
            std::mem::take(&mut self.group)
        });
        self.group.push((key, n));
        self.filled += n;
        full
    }

    /// The last group, if any object is in it.
    pub fn rest(self) -> Option<Vec<(Key, u64)>> {
        (!self.group.is_empty()).then_some(self.group)
    }
}

/// Uploads `group` (objects of the local store and their sizes, in order) as one piece;
/// the piece's table. `None` when an object changed size while it was read (another
/// build stored the same key): the table would not fit the bytes, so the piece is not
/// listed (readers would find out, but need not).
pub fn write_piece(
    remote: &RemoteStore,
    local: &LocalStore,
    group: &[(Key, u64)],
) -> Result<Option<BundlePiece>, CacheError> {
    let mut h = KeyHasher::new("bundle-piece");
    let names: Vec<String> = group
        .iter()
        .map(|(k, n)| format!("{}:{n}", k.to_hex()))
        .collect();
    h.list("members", names.iter().map(String::as_str));
    let key = h.finish();
    let paths: Vec<PathBuf> = group.iter().map(|(k, _)| local.entry_path(k)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let size: u64 = group.iter().map(|(_, n)| n).sum();
    if remote.put_files(&piece_path(&key), &refs)? != size {
        return Ok(None);
    }
    let mut offset = 0;
    let members = group
        .iter()
        .map(|(k, n)| {
            let m = BundleMember {
                key: k.to_hex(),
                offset,
                len: *n,
            };
            offset += n;
            m
        })
        .collect();
    Ok(Some(BundlePiece {
        key: key.to_hex(),
        size,
        members,
    }))
}

/// For bundled uploads, where pieces are all the remote holds: drops from `index` every
/// entry and seed whose objects no usable piece holds (a reader would ask for them in
/// vain), then every piece that holds nothing the index lists. Pieces come first in
/// the order given; an object several hold is looked for in the first.
pub fn keep_held(index: &mut Index) {
    index.bundles.retain(|p| members(p).is_some());
    let mut seen = HashSet::new();
    index.bundles.retain(|p| seen.insert(p.key.clone()));
    let held: HashSet<String> = held(index).iter().map(Key::to_hex).collect();
    for list in index.units.values_mut() {
        list.retain(|e| held.contains(&e.variant.entry));
    }
    for list in index.seeds.values_mut() {
        list.retain(|s| {
            held.contains(&s.variant.pack)
                && s.variant.separate_entry().is_none_or(|e| held.contains(e))
        });
    }
    index.units.retain(|_, l| !l.is_empty());
    index.seeds.retain(|_, l| !l.is_empty());
    let listed: HashSet<&str> = index
        .units
        .values()
        .flatten()
        .map(|e| e.variant.entry.as_str())
        .chain(index.seeds.values().flatten().flat_map(|s| {
            std::iter::once(s.variant.pack.as_str()).chain(s.variant.entry.as_deref())
        }))
        .collect();
    index
        .bundles
        .retain(|p| p.members.iter().any(|m| listed.contains(m.key.as_str())));
}

/// The objects of `objects` that `held` does not hold.
pub fn uncovered(held: &HashSet<Key>, objects: &[Key]) -> usize {
    objects.iter().filter(|k| !held.contains(k)).count()
}

/// Writes the objects of `objects` (in order) that no usable piece of `index` holds
/// into new pieces, when there are at least [`MIN_NEW`], and lists them first in
/// `index`, which keeps at most [`MAX_PIECES`]. Objects not in the local store are left
/// out. A piece the remote does not take (memcached keeps values under 1 MiB; a large
/// upload to a busy server can outlast the upload timeout of
/// `RemoteStore::open_for_uploads`) ends the bundle without a word: the build is done, its objects still travel alone, and the
/// index update that follows says whether the remote is really in trouble. Returns the
/// pieces listed and the bytes uploaded.
pub fn write(
    remote: &RemoteStore,
    local: &LocalStore,
    index: &mut Index,
    objects: &[Key],
) -> (usize, u64) {
    index.bundles.retain(|p| members(p).is_some());
    let held = held(index);
    let mut seen = HashSet::new();
    let new: Vec<(Key, u64)> = objects
        .iter()
        .filter(|k| !held.contains(k) && seen.insert(**k))
        // A thin entry leaves the machine whole (or not at all).
        .filter(|k| local.ensure_whole(k))
        .filter_map(|k| Some((*k, local.entry_size(k).filter(|n| *n > 0)?)))
        .collect();
    if new.len() < MIN_NEW {
        return (0, 0);
    }
    let mut groups = Groups::default();
    let mut full: Vec<Vec<(Key, u64)>> = new
        .into_iter()
        .filter_map(|(k, n)| groups.push(k, n))
        .collect();
    full.extend(groups.rest());
    let mut pieces = Vec::new();
    let mut up = 0;
    for group in full {
        match write_piece(remote, local, &group) {
            Ok(Some(piece)) => {
                up += piece.size;
                pieces.push(piece);
            }
            Ok(None) => continue,
            Err(_) => break,
        }
    }
    let written = pieces.len();
    pieces.append(&mut index.bundles);
    pieces.truncate(MAX_PIECES);
    index.bundles = pieces;
    (written, up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(size: u64, members: &[(u8, u64, u64)]) -> BundlePiece {
        BundlePiece {
            key: Key::digest(b"piece").to_hex(),
            size,
            members: members
                .iter()
                .map(|(k, offset, len)| BundleMember {
                    key: Key::digest(&[*k]).to_hex(),
                    offset: *offset,
                    len: *len,
                })
                .collect(),
        }
    }

    #[test]
    fn a_member_table_that_does_not_hold_makes_the_piece_unusable() {
        assert!(members(&piece(10, &[(1, 0, 4), (2, 4, 6)])).is_some());
        // Past the end of the piece.
        assert!(members(&piece(10, &[(1, 0, 4), (2, 4, 7)])).is_none());
        // Overlapping, or out of order.
        assert!(members(&piece(10, &[(1, 0, 4), (2, 3, 2)])).is_none());
        // Empty member, and an offset that overflows.
        assert!(members(&piece(10, &[(1, 0, 0)])).is_none());
        assert!(members(&piece(10, &[(1, u64::MAX, 2)])).is_none());
        // A key that is not one.
        let mut p = piece(10, &[(1, 0, 4)]);
        p.members[0].key = "../../etc/passwd".into();
        assert!(members(&p).is_none());
        assert!(members(&piece(10, &[])).is_none());
    }

    #[test]
    fn a_piece_is_chosen_when_wanted_objects_fill_half_of_it() {
        let k = |b: u8| Key::digest(&[b]);
        let index = Index {
            bundles: vec![
                piece(10, &[(1, 0, 4), (2, 4, 6)]),
                piece(10, &[(3, 0, 1), (4, 1, 9)]),
            ],
            ..Index::default()
        };
        // 1 and 2 fill the first piece; 3 is 1 byte of the second: alone.
        let wanted = vec![(k(3), None), (k(2), None), (k(1), Some(4))];
        let (jobs, alone) = choose(&index, &wanted, false);
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].members.iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![k(1), k(2)]
        );
        assert_eq!(alone, vec![(k(3), None)]);
    }

    #[test]
    fn an_object_store_fetches_the_ranges_that_span_the_wanted_objects() {
        let k = |b: u8| Key::digest(&[b]);
        let g = GAP_BYTES;
        // Objects 1 to 4 end to end, a gap of exactly GAP_BYTES before 5 (object 9
        // fills it), 6 a byte after 5.
        let index = Index {
            bundles: vec![piece(
                3 * g,
                &[
                    (1, 0, 10),
                    (2, 10, 10),
                    (3, 20, 10),
                    (4, 30, 10),
                    (9, 40, g),
                    (5, 40 + g, 10),
                    (6, 51 + g, 10),
                ],
            )],
            ..Index::default()
        };
        // 1, 2 and 4 (3 between them is downloaded and skipped), then 5 and 6 (the
        // gap of GAP_BYTES starts another range); 7 is in no piece.
        let wanted = vec![
            (k(5), None),
            (k(7), Some(3)),
            (k(4), None),
            (k(2), None),
            (k(1), None),
            (k(6), None),
        ];
        let (jobs, alone) = choose(&index, &wanted, true);
        let spans: Vec<(u64, u64, usize)> = jobs
            .iter()
            .map(|j| (j.start, j.end, j.members.len()))
            .collect();
        // Ordered by the first wanted object each holds: 5 comes first.
        assert_eq!(spans, vec![(40 + g, 61 + g, 2), (0, 40, 3)]);
        assert_eq!(alone, vec![(k(7), Some(3))]);
        // A key-value store: the wanted bytes are under half the piece, so all alone.
        let (jobs, alone) = choose(&index, &wanted, false);
        assert!(jobs.is_empty());
        assert_eq!(alone.len(), wanted.len());
    }
}
