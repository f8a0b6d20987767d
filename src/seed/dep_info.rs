//! cargo's encoded dep-info: the binary file (`.fingerprint/<unit>/dep-<kind>-<name>`)
//! in which cargo keeps the files and variables a unit read, for its freshness check.
//! It may name absolute paths (clippy-driver reports the workspace's `Cargo.toml`,
//! outside a member's directory), which a pack must not carry: capture stores it in a
//! text form ([`to_text`]) whose paths are tokenized like any text, and planting writes
//! it back in cargo's encoding ([`from_text`]). Main type: [`EncodedDepInfo`].
//!
//! The encoding is cargo's (`core/compiler/fingerprint/dep_info.rs`, protocol 1): a
//! marker (`1u32`, `0xff`), the protocol byte, the files (path type, path, optional
//! length and checksum), the variables (name, optional value); integers little-endian,
//! lengths as `u32`. A file this reader does not reproduce byte for byte is not
//! converted (capture then scans it as bytes, as before).

use serde::{Deserialize, Serialize};

/// The text form's version.
const FORMAT_VERSION: u32 = 1;

/// cargo's dep-info, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedDepInfo {
    /// Marks the text form (`xcache-cargo-dep-info`): this version.
    pub xcache_cargo_dep_info: u32,
    /// cargo's protocol byte.
    pub protocol: u8,
    pub files: Vec<DepFile>,
    pub env: Vec<(String, Option<String>)>,
}

/// One file cargo checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepFile {
    /// 0: relative to the package root; 1: to the target root (or absolute).
    pub path_type: u8,
    pub path: String,
    /// The file's length and checksum (`-Zchecksum-freshness`).
    pub checksum: Option<(u64, String)>,
}

const PROTOCOL: u8 = 1;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

impl EncodedDepInfo {
    /// Decodes cargo's bytes; `None` for anything but protocol 1 read in full.
    pub fn decode(bytes: &[u8]) -> Option<EncodedDepInfo> {
        let mut r = Reader(bytes);
        if r.u32()? != 1 || r.u8()? != u8::MAX {
            return None;
        }
        let protocol = r.u8()?;
        if protocol != PROTOCOL {
            return None;
        }
        let mut files = Vec::new();
        for _ in 0..r.u32()? {
            let path_type = r.u8()?;
            if path_type > 1 {
                return None;
            }
            let path = r.str()?;
            let checksum = match r.u8()? {
                0 => None,
                1 => Some((r.u64()?, r.str()?)),
                _ => return None,
            };
            files.push(DepFile {
                path_type,
                path,
                checksum,
            });
        }
        let mut env = Vec::new();
        for _ in 0..r.u32()? {
            let name = r.str()?;
            let value = match r.u8()? {
                0 => None,
                1 => Some(r.str()?),
                _ => return None,
            };
            env.push((name, value));
        }
        r.0.is_empty().then_some(EncodedDepInfo {
            xcache_cargo_dep_info: FORMAT_VERSION,
            protocol,
            files,
            env,
        })
    }

    /// cargo's bytes.
    pub fn encode(&self) -> Vec<u8> {
        fn str(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.push(u8::MAX);
        out.push(self.protocol);
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for f in &self.files {
            out.push(f.path_type);
            str(&mut out, &f.path);
            match &f.checksum {
                None => out.push(0),
                Some((len, sum)) => {
                    out.push(1);
                    out.extend_from_slice(&len.to_le_bytes());
                    str(&mut out, sum);
                }
            }
        }
        out.extend_from_slice(&(self.env.len() as u32).to_le_bytes());
        for (name, value) in &self.env {
            str(&mut out, name);
            match value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    str(&mut out, v);
                }
            }
        }
        out
    }
}

/// True for the name of cargo's dep-info file in a `.fingerprint` directory.
pub fn is_dep_info_name(name: &str) -> bool {
    name.starts_with("dep-")
}

/// True for cargo's dep-info file: `.fingerprint/<unit>/dep-…` (legacy layout) or
/// `build/<pkg>/<hash>/fingerprint/dep-…` (new layout, `key::Layout`).
pub fn is_fingerprint_dep_info(path: &std::path::Path) -> bool {
    fn name(p: Option<&std::path::Path>) -> Option<&str> {
        p?.file_name()?.to_str()
    }
    let up = |n: usize| name(path.ancestors().nth(n));
    up(0).is_some_and(is_dep_info_name)
        && (up(2) == Some(".fingerprint")
            || (up(1) == Some("fingerprint") && up(4) == Some("build")))
}

/// The text form of cargo's dep-info bytes, when they decode and encode back to the
/// same bytes.
pub fn to_text(bytes: &[u8]) -> Option<String> {
    let d = EncodedDepInfo::decode(bytes)?;
    (d.encode() == bytes).then(|| serde_json::to_string(&d).ok())?
}

/// cargo's bytes for a text form; `None` when `text` is not one (a pack written before
/// text forms, holding cargo's bytes as they were).
pub fn from_text(text: &[u8]) -> Option<Vec<u8>> {
    let d: EncodedDepInfo = serde_json::from_slice(text).ok()?;
    (d.xcache_cargo_dep_info == FORMAT_VERSION && d.protocol == PROTOCOL).then(|| d.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What cargo 1.95 wrote for a workspace member clippy checked.
    const CLIPPY_MEMBER: &[u8] = b"\x01\x00\x00\x00\xff\x01\x02\x00\x00\x00\
        \x00\x0a\x00\x00\x00src/lib.rs\x00\
        \x01\x15\x00\x00\x00/tmp/probe/Cargo.toml\x00\
        \x02\x00\x00\x00\
        \x0b\x00\x00\x00CLIPPY_ARGS\x01\x00\x00\x00\x00\
        \x0f\x00\x00\x00CLIPPY_CONF_DIR\x00";

    #[test]
    fn cargos_bytes_round_trip_through_the_text_form() {
        let text = to_text(CLIPPY_MEMBER).unwrap();
        assert!(text.contains("\"/tmp/probe/Cargo.toml\""), "{text}");
        assert!(text.contains("[\"CLIPPY_CONF_DIR\",null]"), "{text}");
        assert_eq!(from_text(text.as_bytes()).unwrap(), CLIPPY_MEMBER);
        // A path of another length (a checkout elsewhere) is encoded with its length.
        let moved = text.replace("/tmp/probe", "/elsewhere/much/longer");
        let bytes = from_text(moved.as_bytes()).unwrap();
        let d = EncodedDepInfo::decode(&bytes).unwrap();
        assert_eq!(d.files[1].path, "/elsewhere/much/longer/Cargo.toml");
    }

    #[test]
    fn what_is_not_cargos_protocol_1_is_left_alone() {
        assert_eq!(to_text(b""), None);
        // Trailing bytes, another protocol, a cut file.
        assert_eq!(to_text(&[CLIPPY_MEMBER, b"x"].concat()), None);
        let mut other = CLIPPY_MEMBER.to_vec();
        other[5] = 2;
        assert_eq!(to_text(&other), None);
        assert_eq!(to_text(&CLIPPY_MEMBER[..20]), None);
        assert_eq!(from_text(CLIPPY_MEMBER), None);
        assert_eq!(from_text(b"{\"xcache_cargo_dep_info\":9}"), None);
    }
}
