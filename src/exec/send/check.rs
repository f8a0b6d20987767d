//! A share of remote results compiled here as well and compared (`XCACHE_EXECUTOR_CHECK`),
//! as `cargo xcache verify` compares a stored entry with a compile here. Main type:
//! [`RemoteOutputs`]; which units are checked: [`sampled`].
//!
//! A worker is trusted to compile: its outputs go into the store, signed by the client
//! that stored them, and its record is believed about what the compile read. The check
//! takes a sample of the units a worker compiled, keeps the digests of the outputs the
//! worker made (already fetched into place), removes them and compiles the unit here as
//! a fallback would; the local result is what the unit then uses and stores. Equal
//! outputs: the worker is confirmed on that unit. Different ones: the executor is given
//! up for the rest of the build ([`give_up`]), as when it is found down.
//!
//! What is compared: every output cargo expects except the dep-info, byte for byte (the
//! `.rlib`, `.rmeta`, a proc-macro's `.so`; rustc and the remapped paths make them the
//! same wherever they are compiled: the reason `verify` works). The dep-info is not:
//! the worker's names its own input root and is rewritten to this machine's paths
//! before it is put in place, and for a checked unit the local compile's stands anyway.
//! Nor are the messages and the record (this machine's compile gives its own).

use std::path::{Path, PathBuf};

use super::outcome::{Fallback, Fell};
use crate::config::ExecutorSpec;
use crate::key::{Key, KeyHasher};

/// The word a state file line starts with when a worker's result differed from this
/// machine's compile (the executor's state file, beside `down`).
const MISMATCH: &str = "mismatch\t";

/// Whether the unit whose first-level key is `unit` is among the `per_mille`
/// thousandths of remote results checked here: a function of the key alone, so the
/// same unit is checked on every build and every machine (1000: every unit; 0: none).
pub fn sampled(per_mille: u16, unit: &Key) -> bool {
    if per_mille == 0 {
        return false;
    }
    if per_mille >= 1000 {
        return true;
    }
    let h = KeyHasher::new("executor-check")
        .str("unit", &unit.to_hex())
        .finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(first) % 1000 < u64::from(per_mille)
}

/// The outputs a worker made for a unit, by digest, taken where they were put and then
/// removed, so that only the compile here can leave outputs in their place.
#[derive(Debug)]
pub struct RemoteOutputs {
    /// The worker, as it names itself.
    pub worker: String,
    files: Vec<(PathBuf, Key)>,
}

/// What comparing found: the first output that differs, in words.
pub type Mismatch = String;

impl RemoteOutputs {
    /// Takes the digests of `outputs` (the worker's, in place) and removes them. `Err`:
    /// one could not be read (the unit is then compiled here without a comparison).
    pub fn take(worker: &str, outputs: &[PathBuf]) -> Result<RemoteOutputs, String> {
        let mut files = Vec::with_capacity(outputs.len());
        for p in outputs {
            let d = digest(p).map_err(|e| format!("{}: {e}", p.display()))?;
            files.push((p.clone(), d));
        }
        for (p, _) in &files {
            let _ = std::fs::remove_file(p);
        }
        Ok(RemoteOutputs {
            worker: worker.to_string(),
            files,
        })
    }

    /// How many outputs are compared.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// After the compile here: whether it made every output with the bytes the worker
    /// made. `Err` names the first output that differs.
    pub fn compare(&self) -> Result<(), Mismatch> {
        for (p, remote) in &self.files {
            let name = p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
            match digest(p) {
                Ok(here) if here == *remote => {}
                Ok(here) => {
                    return Err(format!(
                        "{name} from worker {} is not this machine's compile of it (blake3 {} there, {} here)",
                        self.worker,
                        &remote.to_hex()[..16],
                        &here.to_hex()[..16]
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "the compile here made no {name} ({e}); worker {} did",
                        self.worker
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Gives the executor `spec` names up for the rest of the build because a worker's
/// result differed from this machine's (`why`): later compiles run here.
pub fn give_up(spec: &ExecutorSpec, why: &str) {
    let line = format!("{MISMATCH}{}\n", why.replace('\n', " "));
    let _ = crate::fsx::write_atomic(&super::attempt::state_file(spec), line.as_bytes());
}

/// Whether the executor was given up earlier in this build because a worker's result
/// differed from this machine's compile: the fallback for every compile after it.
pub fn given_up(spec: &ExecutorSpec) -> Option<Fell> {
    given_up_in(&super::attempt::state_file(spec))
}

/// The blake3 digest of the file at `p`, read whole now (no remembered digest: the file
/// was just made, and this is the question of whether it is what a worker made).
fn digest(p: &Path) -> std::io::Result<Key> {
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut std::fs::File::open(p)?, &mut h)?;
    Ok(Key(*h.finalize().as_bytes()))
}

fn given_up_in(state: &Path) -> Option<Fell> {
    let text = std::fs::read_to_string(state).ok()?;
    let why = text.strip_prefix(MISMATCH)?;
    Some((
        Fallback::Mismatch,
        format!("given up earlier in this build ({})", why.trim()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Key {
        Key::digest(format!("unit {i}").as_bytes())
    }

    #[test]
    fn the_sample_is_a_function_of_the_key_and_follows_the_share() {
        let keys: Vec<Key> = (0..4000).map(key).collect();
        // None and all.
        assert!(keys.iter().all(|k| !sampled(0, k)));
        assert!(keys.iter().all(|k| sampled(1000, k)));
        // The same answer every time for the same key.
        for k in &keys[..50] {
            assert_eq!(sampled(100, k), sampled(100, k));
        }
        // About the share asked for (4000 keys: 10% is 400, far from the bounds).
        let n = |share: u16| keys.iter().filter(|k| sampled(share, k)).count();
        let tenth = n(100);
        assert!((300..=500).contains(&tenth), "{tenth} of 4000 at 10%");
        let half = n(500);
        assert!((1800..=2200).contains(&half), "{half} of 4000 at 50%");
        // A larger share checks every unit a smaller one does.
        for k in &keys {
            if sampled(100, k) {
                assert!(sampled(500, k));
            }
        }
    }

    #[test]
    fn outputs_that_differ_or_are_missing_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("liba.rlib");
        let b = dir.path().join("liba.rmeta");
        std::fs::write(&a, b"worker's rlib").unwrap();
        std::fs::write(&b, b"worker's rmeta").unwrap();
        let taken = RemoteOutputs::take("w1", &[a.clone(), b.clone()]).unwrap();
        assert_eq!(taken.len(), 2);
        // Taken away: nothing of the worker's is left in place.
        assert!(!a.exists() && !b.exists());
        // The same bytes compiled here: equal.
        std::fs::write(&a, b"worker's rlib").unwrap();
        std::fs::write(&b, b"worker's rmeta").unwrap();
        assert_eq!(taken.compare(), Ok(()));
        // Other bytes: named, with the worker.
        std::fs::write(&b, b"this machine's rmeta").unwrap();
        let e = taken.compare().unwrap_err();
        assert!(e.contains("liba.rmeta") && e.contains("w1"), "{e}");
        // Missing here.
        std::fs::remove_file(&a).unwrap();
        let e = taken.compare().unwrap_err();
        assert!(e.contains("liba.rlib") && e.contains("made no"), "{e}");
    }

    #[test]
    fn a_mismatch_gives_up_with_its_reason_and_a_down_line_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(given_up_in(&state).is_none());
        std::fs::write(&state, "down\tconnection refused\n").unwrap();
        assert!(given_up_in(&state).is_none());
        std::fs::write(&state, format!("{MISMATCH}liba.rlib differs\n")).unwrap();
        let (f, why) = given_up_in(&state).unwrap();
        assert_eq!(f, Fallback::Mismatch);
        assert!(why.contains("liba.rlib differs"), "{why}");
    }
}
