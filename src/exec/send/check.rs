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

/// The file of the private directory that keeps this client's salt for the sample.
const SALT_FILE: &str = "executor-check-salt";

/// Whether the unit whose first-level key is `unit` is among the `per_mille`
/// thousandths of remote results checked here: a function of the key and of this
/// client's secret salt (32 random bytes kept in the private directory), so the same
/// unit is checked on every build of this machine (a re-run reproduces a finding) but
/// a worker, which can compute keys, cannot tell which units are checked (1000: every
/// unit; 0: none).
pub fn sampled(per_mille: u16, unit: &Key) -> bool {
    match salt() {
        Some(salt) => sampled_with(&salt, per_mille, unit),
        // No random source at all (the OS's never fails on Linux): a predictable sample
        // is what the salt is for avoiding, so a share checks every unit instead.
        None => per_mille > 0,
    }
}

/// [`sampled`] with the salt `salt`.
fn sampled_with(salt: &[u8; 32], per_mille: u16, unit: &Key) -> bool {
    if per_mille == 0 {
        return false;
    }
    if per_mille >= 1000 {
        return true;
    }
    let h = KeyHasher::new("executor-check")
        .bytes("salt", salt)
        .str("unit", &unit.to_hex())
        .finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(first) % 1000 < u64::from(per_mille)
}

/// This client's salt for the sample: 32 random bytes from the OS, made once and kept
/// in the private directory, which only this user may write or read into (a worker
/// never sees it: nothing of it is sent). `None` only when the OS gives no randomness.
fn salt() -> Option<[u8; 32]> {
    static SALT: std::sync::OnceLock<Option<[u8; 32]>> = std::sync::OnceLock::new();
    *SALT.get_or_init(|| {
        crate::private_dir::private_dir()
            .ok()
            .and_then(|dir| kept_salt(&dir.join(SALT_FILE)))
            // Not kept (no private directory, or its file unreadable and not writable):
            // a fresh salt for this process. The units it checks then differ from a
            // re-run's, which costs reproducing a finding, never the secret; an
            // unsalted sample would hand every worker the list of units it may lie on.
            .or_else(random_salt)
    })
}

/// The salt kept at `path`, made there first if there is none: written whole in one
/// step and never over another (two compiles that find none at once keep the first
/// one written and both use it). `None`: none can be read or kept there.
fn kept_salt(path: &Path) -> Option<[u8; 32]> {
    let read =
        || -> Option<[u8; 32]> { crate::fsx::read_small_bytes(path, 64).ok()?.try_into().ok() };
    if let Some(s) = read() {
        return Some(s);
    }
    let new = random_salt()?;
    match crate::fsx::write_new_atomic(path, &new) {
        Ok(true) => Some(new),
        // One was there: it is the machine's; one of another length was never used,
        // and is replaced.
        Ok(false) => read().or_else(|| crate::fsx::write_atomic(path, &new).ok().map(|()| new)),
        Err(_) => None,
    }
}

/// 32 bytes from the OS's random source.
fn random_salt() -> Option<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(b)
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
    fn the_sample_is_a_function_of_the_key_and_the_salt_and_follows_the_share() {
        let keys: Vec<Key> = (0..10_000).map(key).collect();
        let salt = [7u8; 32];
        let n = |salt: &[u8; 32], share: u16| {
            keys.iter().filter(|k| sampled_with(salt, share, k)).count()
        };
        // None and all.
        assert_eq!(n(&salt, 0), 0);
        assert_eq!(n(&salt, 1000), keys.len());
        // The same answer every time for the same key and salt.
        for k in &keys[..50] {
            assert_eq!(sampled_with(&salt, 100, k), sampled_with(&salt, 100, k));
        }
        // About the share asked for (10 000 keys: 10% is 1000 ± 30 for one standard
        // deviation, so the bounds are over three away).
        let tenth = n(&salt, 100);
        assert!((900..=1100).contains(&tenth), "{tenth} of 10000 at 10%");
        let half = n(&salt, 500);
        assert!((4800..=5200).contains(&half), "{half} of 10000 at 50%");
        // A larger share checks every unit a smaller one does.
        for k in &keys {
            if sampled_with(&salt, 100, k) {
                assert!(sampled_with(&salt, 500, k));
            }
        }
        // Another salt, another sample of the same share: who knows the keys but not
        // the salt cannot tell which units are checked.
        let other = [8u8; 32];
        let both = keys
            .iter()
            .filter(|k| sampled_with(&salt, 100, k) && sampled_with(&other, 100, k))
            .count();
        let theirs = n(&other, 100);
        assert!((900..=1100).contains(&theirs), "{theirs} of 10000 at 10%");
        // Independent samples of 10% meet on about 1% of the units.
        assert!(
            (50..=160).contains(&both),
            "{both} checked under both salts"
        );
    }

    #[test]
    fn the_salt_is_made_once_kept_and_used_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SALT_FILE);
        let made = kept_salt(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), made);
        // Readable by its owner only (the private directory is too).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(kept_salt(&path), Some(made));
        // Random: another machine's is another.
        let other = dir.path().join("other");
        assert_ne!(kept_salt(&other), Some(made));
        // A damaged one is not used: replaced, and the new one kept.
        std::fs::write(&path, b"short").unwrap();
        let replaced = kept_salt(&path).unwrap();
        assert_ne!(replaced, made);
        assert_eq!(std::fs::read(&path).unwrap(), replaced);
        assert_eq!(kept_salt(&path), Some(replaced));
        // Where none can be kept (its directory is a file), none: `salt` then makes a
        // fresh one for the process.
        assert_eq!(kept_salt(&path.join("salt")), None);
        // The process's salt is one for all its questions.
        assert_eq!(salt(), salt());
        assert!(salt().is_some());
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
