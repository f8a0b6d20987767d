//! Explicit, ordered hashing of named fields into blake3.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 32-byte blake3 digest used as a cache key or a content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Key> {
        blake3::Hash::from_hex(s).ok().map(|h| Key(*h.as_bytes()))
    }

    /// Digest of a byte slice.
    pub fn digest(bytes: &[u8]) -> Key {
        Key(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", &self.to_hex()[..16])
    }
}

/// Keys serialize as their hex form.
impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = String::deserialize(d)?;
        Key::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a 64-digit hex key"))
    }
}

/// Feeds named fields into blake3 in a fixed order. Every field is length-prefixed, so
/// no two different sequences of fields can produce the same byte stream.
pub struct KeyHasher {
    inner: blake3::Hasher,
}

impl KeyHasher {
    /// A hasher for one purpose (`domain`), bound to the key schema version.
    pub fn new(domain: &str) -> KeyHasher {
        let mut h = KeyHasher {
            inner: blake3::Hasher::new(),
        };
        h.bytes("schema", super::KEY_SCHEMA.as_bytes());
        h.bytes("domain", domain.as_bytes());
        h
    }

    /// One named field.
    pub fn bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.raw(name.as_bytes());
        self.raw(value);
        self
    }

    /// One named string field.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.bytes(name, value.as_bytes())
    }

    /// A named list: its length, then every item in the order given.
    pub fn list<'a, I>(&mut self, name: &str, items: I) -> &mut Self
    where
        I: IntoIterator<Item = &'a str>,
    {
        let items: Vec<&str> = items.into_iter().collect();
        self.raw(name.as_bytes());
        self.inner.update(&(items.len() as u64).to_le_bytes());
        for item in items {
            self.raw(item.as_bytes());
        }
        self
    }

    /// A named key.
    pub fn key(&mut self, name: &str, key: &Key) -> &mut Self {
        self.bytes(name, &key.0)
    }

    fn raw(&mut self, b: &[u8]) {
        self.inner.update(&(b.len() as u64).to_le_bytes());
        self.inner.update(b);
    }

    /// The final key.
    pub fn finish(&self) -> Key {
        Key(*self.inner.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed() {
        let a = KeyHasher::new("t").str("a", "bc").finish();
        let b = KeyHasher::new("t").str("ab", "c").finish();
        assert_ne!(a, b);
        let l1 = KeyHasher::new("t").list("l", ["a", "b"]).finish();
        let l2 = KeyHasher::new("t").list("l", ["ab"]).finish();
        assert_ne!(l1, l2);
    }

    #[test]
    fn key_serializes_as_hex() {
        let k = Key::digest(b"x");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", k.to_hex()));
        assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), k);
    }

    #[test]
    fn hex_round_trips() {
        let k = Key::digest(b"hello");
        assert_eq!(Key::from_hex(&k.to_hex()), Some(k));
        assert_eq!(Key::from_hex("zz"), None);
    }
}
