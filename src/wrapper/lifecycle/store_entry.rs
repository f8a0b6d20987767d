//! The storing of a miss: the entry of a unit's files, bound to any machine root its
//! outputs still name, its variant recorded, and the upload to the remote tier.

use std::io;
use std::path::PathBuf;

use super::cached::{OutFile, OutSource, Ran};
use super::context::Cx;
use crate::errors::CacheError;
use crate::key::{Input, InputKind, Key, PathMap, entry_key, normalize_inputs};
use crate::store::{BoundBy, EntryFile, EntryMeta, EntrySource, LocalStore, PutOutcome, Variant};
use crate::wrapper::remote_tier::remote_paths;

impl Cx {
    /// Stores an entry of `files` under the key of `l1` and `inputs`, records the
    /// variant, and uploads it (or leaves that to the front-end). An output that still
    /// holds one of this machine's roots after remapping is right only where that root
    /// has the same real path: the entry is *bound* to the root (a [`InputKind::Root`]
    /// input), and the key covers it. Returns the key, the put's outcome and the inputs.
    pub(super) fn store_entry(
        &mut self,
        l1: &Key,
        mut inputs: Vec<Input>,
        files: &[OutFile],
        ran: &Ran,
        ansi: bool,
        checked: Vec<BoundBy>,
    ) -> Result<Option<(Key, PutOutcome)>, CacheError> {
        let Some(store) = self.store.clone() else {
            return Err(CacheError::Write {
                path: PathBuf::new(),
                source: io::Error::other("no store"),
            });
        };
        let entry_files: Vec<EntryFile> = files
            .iter()
            .map(|f| EntryFile {
                role: f.role.clone(),
                name: f.name.clone(),
                template: matches!(&f.source, OutSource::Text(t) if PathMap::has_token(t)),
                executable: f.executable,
                object: None,
            })
            .collect();
        // Thin when nothing leaves this machine at once: a library's `.rlib` and
        // `.rmeta` and a proc-macro become the store's objects of their digests (the
        // `.rlib` by hard link, the others copied) instead of being compressed into the
        // entry; a restore links the `.rlib` beside its `.rmeta` and copies the others
        // (their times must be the restore's, and they must stay writable). An upload
        // needs the entry whole, so a build with a remote it writes stores it whole now;
        // anything that uploads a thin entry later makes it whole first
        // (`LocalStore::ensure_whole`).
        let thin = self.remote.as_ref().is_none_or(|r| r.read_only);
        let sources: Vec<(EntrySource<'_>, bool)> = files
            .iter()
            .map(|f| match &f.source {
                OutSource::Text(t) => (EntrySource::Bytes(t.as_bytes()), false),
                OutSource::File(p) if thin && f.shared => (EntrySource::Object(p), true),
                OutSource::File(p) => (EntrySource::Path(p), true),
            })
            .collect();
        let mut meta = EntryMeta {
            format_version: 1,
            key: String::new(),
            files: entry_files,
            stdout: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&ran.stdout)),
            stderr: self
                .pm
                .normalize_text(&String::from_utf8_lossy(&ran.stderr)),
            ansi,
            compile_ms: self.run_ms,
            xcache_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let mut unbound: Vec<_> = self
            .pm
            .roots()
            .iter()
            .filter(|r| {
                !inputs
                    .iter()
                    .any(|i| i.kind == InputKind::Root && i.name == r.kind.token())
            })
            .cloned()
            .collect();
        // Roots bound by a check rather than an output (`count` 0: see `BoundBy`).
        let mut bound_by = checked;
        let (key, outcome) = loop {
            normalize_inputs(&mut inputs);
            let key = entry_key(l1, &inputs);
            meta.key = key.to_hex();
            let needles: Vec<Vec<u8>> =
                unbound.iter().map(|r| r.real.as_bytes().to_vec()).collect();
            let outcome = store.put_entry(&key, &meta, &sources, &needles)?;
            let Some(found) = outcome.needle_found else {
                break (key, outcome);
            };
            let root = unbound.remove(found);
            if let Some((file, count)) = outcome.needle_file {
                bound_by.push(BoundBy {
                    root: root.kind.token().to_string(),
                    file: files.get(file).map_or_else(String::new, |f| f.name.clone()),
                    count,
                    c_file_name: false,
                });
            }
            inputs.push(Input::new(InputKind::Root, root.kind.token(), root.real));
        };
        let variant = Variant {
            inputs,
            entry: key.to_hex(),
            bound_by,
        };
        // In the background: what was stored must be what cargo was handed. An entry
        // no variant names is never restored (`gc` takes it).
        if let Some(path) = self.background.as_ref().and_then(|b| b.stamps.changed()) {
            self.detail = Some(self.pm.normalize_path(path));
            return Ok(None);
        }
        store.add_variant(l1, variant.clone())?;
        self.upload(&store, l1, &key, &variant);
        Ok(Some((key, outcome)))
    }

    /// Uploads a stored entry and its variant to the remote tier (or leaves that to
    /// `cargo xcache build`, which uploads in the background).
    fn upload(&mut self, store: &LocalStore, l1: &Key, key: &Key, variant: &Variant) {
        if self.cfg.defer_upload && self.cfg.events.is_some() {
            self.upload_later = self.remote.as_ref().is_some_and(|r| !r.read_only);
            return;
        }
        let Some(mut tier) = self.remote.take() else {
            return;
        };
        if !tier.read_only {
            let result = (|| -> Result<u64, CacheError> {
                let Some(remote) = tier.usable()? else {
                    return Ok(0);
                };
                let (_, entry_path) = remote_paths(l1, key);
                let n = remote.put_file(&entry_path, &store.entry_path(key))?;
                remote.add_variant(l1, variant)?;
                Ok(n)
            })();
            match result {
                Ok(n) => self.bytes_up += n,
                Err(e) => {
                    let e = tier.fail(e);
                    self.warn(&e);
                }
            }
        }
        self.remote = Some(tier);
    }
}
