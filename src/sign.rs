//! Signatures over what a build writes to a store (entries, seed packs, a remote's
//! index), so that a reader can use only what a key it trusts wrote. Ed25519 through
//! `ed25519-dalek`; nothing here is home-made cryptography. Main types: [`Signer`] (a
//! writer's private key), [`TrustedKeys`] (a reader's list) and [`Trust`] (both, as one
//! build is configured).
//!
//! A signature covers bytes the caller frames: every caller prefixes a context tag of
//! its own (see `store::entry`'s `SIGNED_ENTRY`) so that a signature made for one kind
//! of object can never be replayed as another.
//!
//! Text forms (versioned by their prefixes): a public key is
//! `xcache-ed25519:<64 hex>`; a private key file holds one line
//! `xcache-ed25519-secret:<64 hex>`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

const PUBLIC_PREFIX: &str = "xcache-ed25519:";
const SECRET_PREFIX: &str = "xcache-ed25519-secret:";

/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// A problem with a key, or a signature that does not hold.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("failed to read the signing key {path}: {source}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a signing key written by `cargo xcache keygen` (expected one line `{SECRET_PREFIX}<64 hex digits>`)"
    )]
    BadKeyFile { path: PathBuf },
    #[error("{path} already exists; keygen never overwrites a key")]
    KeyExists { path: PathBuf },
    #[error("failed to write the signing key {path}: {source}")]
    WriteKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to get random bytes for a key: {0}")]
    Random(String),
    #[error(
        "{0:?} is not a public key (expected `{PUBLIC_PREFIX}<64 hex digits>`, as `cargo xcache keygen` prints)"
    )]
    BadPublicKey(String),
}

/// A public key, as printed and as listed in `XCACHE_TRUSTED_KEYS`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PublicKey {
    /// Parses `xcache-ed25519:<64 hex>`; the key must be a valid curve point.
    pub fn parse(text: &str) -> Result<PublicKey, SignError> {
        let bad = || SignError::BadPublicKey(text.chars().take(100).collect());
        let bytes = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .and_then(unhex::<PUBLIC_KEY_LEN>)
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        Ok(PublicKey(bytes))
    }
}

/// A writer's private key.
pub struct Signer {
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.public_key())
    }
}

impl Signer {
    /// A new random key.
    pub fn generate() -> Result<Signer, SignError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SignError::Random(e.to_string()))?;
        Ok(Signer {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a key file written by [`Signer::write_new`].
    pub fn read(path: &Path) -> Result<Signer, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
        let seed = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .and_then(unhex::<32>)
            .ok_or_else(|| SignError::BadKeyFile {
                path: path.to_path_buf(),
            })?;
        Ok(Signer {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Writes the key to a new file `path`, readable by its owner only. An existing
    /// file is never replaced.
    pub fn write_new(&self, path: &Path) -> Result<(), SignError> {
        use std::os::unix::fs::OpenOptionsExt;
        let werr = |source| SignError::WriteKey {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    SignError::KeyExists {
                        path: path.to_path_buf(),
                    }
                } else {
                    werr(e)
                }
            })?;
        writeln!(f, "{SECRET_PREFIX}{}", hex::encode(self.key.to_bytes())).map_err(werr)?;
        f.sync_all().map_err(werr)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `bytes` (which the caller framed with its context tag).
    pub fn sign(&self, bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        self.key.sign(bytes).to_bytes()
    }
}

/// The public keys a reader trusts. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    /// Parses a comma-separated list (spaces and empty items are ignored); `None` when
    /// it names no key.
    pub fn parse(list: &str) -> Result<Option<TrustedKeys>, SignError> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PublicKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!keys.is_empty()).then_some(TrustedKeys(keys)))
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.0
    }
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("it is not signed")]
    Unsigned,
    #[error("it is signed by {0}, which is not among the trusted keys")]
    UnknownKey(PublicKey),
    #[error("its signature by {0} does not match its contents")]
    BadSignature(PublicKey),
}

/// Checks that `signature`, made by `signer`, is a signature of `bytes` by one of the
/// `trusted` keys.
pub fn verify(
    bytes: &[u8],
    signer: &PublicKey,
    signature: &[u8; SIGNATURE_LEN],
    trusted: &TrustedKeys,
) -> Result<(), Untrusted> {
    if !trusted.0.contains(signer) {
        return Err(Untrusted::UnknownKey(*signer));
    }
    let key = VerifyingKey::from_bytes(&signer.0).map_err(|_| Untrusted::BadSignature(*signer))?;
    // Strict verification: no malleable or small-order forms.
    key.verify_strict(bytes, &Signature::from_bytes(signature))
        .map_err(|_| Untrusted::BadSignature(*signer))
}

/// What one process does with signatures: sign what it writes (with `XCACHE_SIGNING_KEY`)
/// and accept only what a trusted key signed (with `XCACHE_TRUSTED_KEYS`). The default
/// signs nothing and accepts everything, as before signatures existed.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub signer: Option<Arc<Signer>>,
    pub trusted: Option<TrustedKeys>,
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let s = Signer::generate().unwrap();
        s.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            s.write_new(&path),
            Err(SignError::KeyExists { .. })
        ));
        let back = Signer::read(&path).unwrap();
        assert_eq!(back.public_key(), s.public_key());
        let text = s.public_key().to_string();
        assert_eq!(PublicKey::parse(&text).unwrap(), s.public_key());

        let other = Signer::generate().unwrap();
        let trusted = TrustedKeys::parse(&format!(" {text} ,, {}", other.public_key()))
            .unwrap()
            .unwrap();
        let sig = s.sign(b"ctx\0hello");
        verify(b"ctx\0hello", &s.public_key(), &sig, &trusted).unwrap();
        assert_eq!(
            verify(b"ctx\0hellO", &s.public_key(), &sig, &trusted),
            Err(Untrusted::BadSignature(s.public_key()))
        );
        let only_other = TrustedKeys::parse(&other.public_key().to_string())
            .unwrap()
            .unwrap();
        assert_eq!(
            verify(b"ctx\0hello", &s.public_key(), &sig, &only_other),
            Err(Untrusted::UnknownKey(s.public_key()))
        );
        assert_eq!(TrustedKeys::parse(" , ").unwrap(), None);
        for bad in ["abc", "xcache-ed25519:zz", "xcache-ed25519:00"] {
            assert!(TrustedKeys::parse(bad).is_err(), "{bad}");
        }
        std::fs::write(dir.path().join("bad"), "nope").unwrap();
        assert!(matches!(
            Signer::read(&dir.path().join("bad")),
            Err(SignError::BadKeyFile { .. })
        ));
    }
}
