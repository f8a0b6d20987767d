//! What a capture did: the variants it recorded ([`Captured`]), the counts of a build's
//! captures ([`CaptureStats`]), why a unit is not captured (`Skip`), and a capture made
//! while cargo ran ([`Attempt`]) with what it read.

use std::io;

use crate::key::Key;
use crate::seed::record::SeedVariant;
use crate::store::ReadAs;

/// A variant a capture recorded: what the remote index should learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The record key the variant is recorded under (`key::record_key`).
    pub upk: Key,
    pub variant: SeedVariant,
}

/// What a capture did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Variants written.
    pub captured: usize,
    /// Units whose current state was already recorded.
    pub unchanged: usize,
    /// Units that cannot be seeded (see `Skip`).
    pub unseedable: usize,
    /// The variants written.
    pub variants: Vec<Captured>,
}

impl CaptureStats {
    pub(super) fn add(&mut self, r: Result<Option<Captured>, Skip>) {
        match r {
            Ok(Some(c)) => {
                self.captured += 1;
                self.variants.push(c);
            }
            Ok(None) => self.unchanged += 1,
            Err(Skip::NotCached) => {}
            Err(Skip::Unseedable | Skip::Io) => self.unseedable += 1,
        }
    }

    /// Adds what another capture did.
    pub fn merge(&mut self, other: CaptureStats) {
        self.captured += other.captured;
        self.unchanged += other.unchanged;
        self.unseedable += other.unseedable;
        self.variants.extend(other.variants);
    }
}

/// Why a unit is not captured. Not an error: the unit is still cached by the wrapper,
/// it just goes through cargo and the wrapper next time.
#[derive(Debug)]
pub(super) enum Skip {
    /// The event lacks what seeding needs (no key, no place, not cached).
    NotCached,
    /// A file cargo keeps holds a machine path, the unit's build-script run was not
    /// cached, or an input cannot be described.
    Unseedable,
    Io,
}

impl From<io::Error> for Skip {
    fn from(_: io::Error) -> Skip {
        Skip::Io
    }
}

/// The files of the target dir a capture read (relative to the target root), each as it
/// was before it was read; `None` when the capture read none (its outcome followed from
/// the event and the store alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stamps(pub(super) Option<Vec<(String, ReadAs)>>);

/// A unit captured while cargo still ran: what the capture did, and what it read. It
/// stands once cargo has exited only if [`still_as_read`](super::during_build::still_as_read) says so.
#[derive(Debug)]
pub struct Attempt {
    pub(super) result: Result<Option<Captured>, Skip>,
    pub(super) stamps: Stamps,
}

impl Attempt {
    /// Whether the attempt's outcome may stand: not a failure to read, which the capture
    /// after cargo tries again.
    pub fn is_final(&self) -> bool {
        !matches!(self.result, Err(Skip::Io))
    }

    /// Adds the outcome to `stats`.
    pub fn count_into(self, stats: &mut CaptureStats) {
        stats.add(self.result);
    }
}
