//! An action's input root as REAPI wants it: a Merkle tree of `Directory` messages
//! whose files are named by digest. Main type: [`InputRoot`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message as _;

use crate::errors::CacheError;

/// Where an input file's bytes come from.
#[derive(Clone, Debug)]
pub enum Bytes {
    /// A file on this machine, read when uploaded.
    File(PathBuf),
    /// Bytes in memory.
    Inline(std::sync::Arc<Vec<u8>>),
    /// A file on this machine whose digest the caller already knows (from a memo it
    /// vouches for): not hashed again; read when uploaded, and checked against the
    /// digest then.
    Hashed(PathBuf, re::Digest),
}

/// One file of the input root.
#[derive(Clone, Debug)]
pub struct InputFile {
    pub bytes: Bytes,
    pub executable: bool,
}

/// The files an action may read, by their path inside the input root (plain relative
/// paths, `/`-separated).
#[derive(Clone, Debug, Default)]
pub struct InputRoot {
    files: BTreeMap<String, InputFile>,
}

/// The input root made into messages: every blob to upload, by digest.
pub struct Merkle {
    pub root: re::Digest,
    /// The `Directory` messages, serialized.
    pub directories: Vec<(re::Digest, Vec<u8>)>,
    /// The files, once each.
    pub files: Vec<(re::Digest, Bytes)>,
}

impl InputRoot {
    /// Adds a file at `rel`; a path that is not plain and relative is refused.
    pub fn add(&mut self, rel: &str, file: InputFile) -> Result<(), String> {
        if !crate::exec::wire::plain(rel) {
            return Err(format!("`{rel}` is not a plain relative path"));
        }
        self.files.insert(rel.to_string(), file);
        Ok(())
    }

    /// Adds every file of `other` under the directory `prefix`.
    pub fn graft(&mut self, prefix: &str, other: &InputRoot) -> Result<(), String> {
        for (rel, f) in &other.files {
            self.add(&format!("{prefix}/{rel}"), f.clone())?;
        }
        Ok(())
    }

    /// The paths of its files.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Hashes every file and builds the directories, bottom up.
    pub fn merkle(&self) -> Result<Merkle, CacheError> {
        // A directory's entries: its files, and its subdirectories by name.
        #[derive(Default)]
        struct Node {
            files: BTreeMap<String, (re::Digest, bool)>,
            dirs: BTreeMap<String, Node>,
        }
        let mut top = Node::default();
        let mut files = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (rel, f) in &self.files {
            let digest = digest_of(&f.bytes)?;
            if seen.insert(digest.hash.clone()) {
                files.push((digest.clone(), f.bytes.clone()));
            }
            let mut parts: Vec<&str> = rel.split('/').collect();
            let name = parts.pop().unwrap_or_default();
            let mut node = &mut top;
            for p in parts {
                node = node.dirs.entry(p.to_string()).or_default();
            }
            node.files.insert(name.to_string(), (digest, f.executable));
        }
        fn build(node: &Node, out: &mut Vec<(re::Digest, Vec<u8>)>) -> re::Digest {
            let dir = re::Directory {
                files: node
                    .files
                    .iter()
                    .map(|(name, (d, x))| re::FileNode {
                        name: name.clone(),
                        digest: Some(d.clone()),
                        is_executable: *x,
                        ..Default::default()
                    })
                    .collect(),
                directories: node
                    .dirs
                    .iter()
                    .map(|(name, sub)| re::DirectoryNode {
                        name: name.clone(),
                        digest: Some(build(sub, out)),
                    })
                    .collect(),
                ..Default::default()
            };
            let bytes = dir.encode_to_vec();
            let digest = crate::reapi::digest_of(&bytes);
            out.push((digest.clone(), bytes));
            digest
        }
        let mut directories = Vec::new();
        let root = build(&top, &mut directories);
        Ok(Merkle {
            root,
            directories,
            files,
        })
    }
}

fn digest_of(bytes: &Bytes) -> Result<re::Digest, CacheError> {
    match bytes {
        Bytes::Inline(b) => Ok(crate::reapi::digest_of(b)),
        Bytes::File(path) => digest_file(path),
        Bytes::Hashed(_, d) => Ok(d.clone()),
    }
}

/// The REAPI digest (SHA-256 and size) of the file at `path`, read as it streams.
pub fn digest_file(path: &Path) -> Result<re::Digest, CacheError> {
    crate::reapi::Source::Files(vec![path.to_path_buf()]).digest()
}
