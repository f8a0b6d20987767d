//! The remote tier as one wrapper sees it. Main type: [`RemoteTier`].
//!
//! Opened only when the local tier misses. Whether the remote answers is decided once
//! per build and written to a state file (`cargo xcache build` checks before cargo
//! starts; in drop-in mode the first wrapper of a cargo process checks). The first
//! failure marks the remote down for the rest of the build, so a remote that is down
//! costs one timeout, not one per unit; only the wrapper that saw the failure warns.

use std::path::PathBuf;

use crate::config::WrapperConfig;
use crate::errors::CacheError;
use crate::key::{Key, KeyHasher};
use crate::store::{LocalStore, Manifest, RemoteStore};

/// The remote tier of one wrapper invocation.
pub struct RemoteTier {
    spec: crate::config::RemoteSpec,
    state_file: PathBuf,
    store: Option<RemoteStore>,
    down: bool,
    pub read_only: bool,
}

impl RemoteTier {
    /// `None` when no remote is configured.
    pub fn new(cfg: &WrapperConfig) -> Option<RemoteTier> {
        let spec = cfg.remote.clone()?;
        let state_file = cfg.remote_state.clone().unwrap_or_else(|| {
            let id = KeyHasher::new("remote-state")
                .str("uri", spec.display())
                .finish();
            std::env::temp_dir().join(format!(
                "xcache-remote-{}-{}",
                std::os::unix::process::parent_id(),
                &id.to_hex()[..16]
            ))
        });
        Some(RemoteTier {
            spec,
            state_file,
            store: None,
            down: false,
            read_only: cfg.read_only,
        })
    }

    /// The store if it can be used, checking it (once per build) first.
    pub fn usable(&mut self) -> Result<Option<&RemoteStore>, CacheError> {
        if self.down {
            return Ok(None);
        }
        let state = std::fs::read_to_string(&self.state_file).unwrap_or_default();
        if state.starts_with("down") {
            self.down = true;
            return Ok(None);
        }
        if self.store.is_none() {
            let store = match RemoteStore::open(&self.spec) {
                Ok(s) => s,
                Err(e) => return Err(self.mark_down(e)),
            };
            if !state.starts_with("ok") {
                if let Err(e) = store.check() {
                    return Err(self.mark_down(e));
                }
                let _ = crate::fsx::write_atomic(&self.state_file, b"ok\n");
            }
            self.store = Some(store);
        }
        Ok(self.store.as_ref())
    }

    /// Records a failure. An entry too large for the backend, or a damaged object, only
    /// skips that entry; anything else gives the remote up for the rest of the build.
    pub fn fail(&mut self, e: CacheError) -> CacheError {
        if matches!(e.code(), "remote-entry-too-large" | "remote-entry-damaged") {
            return e;
        }
        self.mark_down(e)
    }

    /// Looks `l1` up in the remote: its manifest, the variant `pick` chooses from it, and
    /// that entry, downloaded into `local` unless it is there already. The chosen input
    /// set is recorded locally, so the next lookup needs no round trip. Returns the entry
    /// key and the bytes downloaded; an error has already been recorded with
    /// [`RemoteTier::fail`].
    pub fn fetch(
        &mut self,
        local: &LocalStore,
        l1: &Key,
        pick: impl FnOnce(&Manifest) -> Option<Key>,
    ) -> Result<Option<(Key, u64)>, CacheError> {
        let result = (|| -> Result<Option<(Key, u64)>, CacheError> {
            let Some(remote) = self.usable()? else {
                return Ok(None);
            };
            let Some(bytes) = remote.get_record(&RemoteStore::manifest_path(l1))? else {
                return Ok(None);
            };
            let manifest: Manifest = serde_json::from_slice(&bytes).unwrap_or_default();
            let Some(key) = pick(&manifest) else {
                return Ok(None);
            };
            let mut down = 0;
            if local.entry_size(&key).is_none() {
                let tmp = local.temp_path();
                match remote.get_entry(&key, &tmp, None)? {
                    Some(n) => {
                        down = n;
                        local.adopt_entry(&key, &tmp)?;
                    }
                    None => {
                        let _ = std::fs::remove_file(&tmp);
                        return Ok(None);
                    }
                }
            }
            if let Some(v) = manifest.variants.iter().find(|v| v.entry == key.to_hex()) {
                let _ = local.add_variant(l1, v.clone());
            }
            Ok(Some((key, down)))
        })();
        result.map_err(|e| self.fail(e))
    }

    fn mark_down(&mut self, e: CacheError) -> CacheError {
        self.down = true;
        self.store = None;
        let line = format!("down\t{}\t{e}\n", e.code());
        let _ = crate::fsx::write_atomic(&self.state_file, line.as_bytes());
        e
    }
}

/// The object paths of a unit in the remote.
pub fn remote_paths(l1: &Key, entry: &Key) -> (String, String) {
    (
        RemoteStore::manifest_path(l1),
        RemoteStore::entry_path(entry),
    )
}
