//! SHA-256 content hashes that tie a program, its weights and its peers together.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest. Programs, weight files and handshakes compare these, so a party never
/// runs weights or peers that belong to another program.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Hash of `value`'s postcard encoding, streamed into the hash: the same digest as
    /// hashing the encoded bytes, without holding them (a weight file's tensors are hundreds
    /// of megabytes).
    pub fn of_encoding<T: Serialize + ?Sized>(value: &T) -> Self {
        let sink = HashSink {
            hash: Sha256::new(),
            buf: [0; 4096],
            len: 0,
        };
        postcard::serialize_with_flavor(value, sink).expect("hashing cannot fail")
    }

    /// The first 8 bytes as 16 hex digits, for log lines and tables.
    pub fn short(&self) -> ShortHash<'_> {
        ShortHash(self)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// A postcard output that feeds SHA-256 through a small buffer.
struct HashSink {
    hash: Sha256,
    buf: [u8; 4096],
    len: usize,
}

impl postcard::ser_flavors::Flavor for HashSink {
    type Output = ContentHash;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.len == self.buf.len() {
            self.hash.update(self.buf);
            self.len = 0;
        }
        self.buf[self.len] = data;
        self.len += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.buf.len() - self.len {
            self.hash.update(&self.buf[..self.len]);
            self.len = 0;
            if data.len() >= self.buf.len() {
                self.hash.update(data);
                return Ok(());
            }
        }
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<ContentHash> {
        self.hash.update(&self.buf[..self.len]);
        Ok(ContentHash(self.hash.finalize().into()))
    }
}

/// Display adapter returned by [`ContentHash::short`].
pub struct ShortHash<'a>(&'a ContentHash);

impl fmt::Display for ShortHash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn streamed_encoding_hash_equals_the_hash_of_the_bytes() {
        // Small and large values, so both the buffered and the direct paths run.
        let values: [alloc::vec::Vec<i64>; 3] = [
            alloc::vec![],
            (0..100).collect(),
            (0..20_000).map(|i| i * 7_919 - 1_000_000).collect(),
        ];
        for v in &values {
            let bytes = postcard::to_allocvec(v).unwrap();
            assert_eq!(ContentHash::of_encoding(v), ContentHash::of(&bytes));
        }
        assert_ne!(
            ContentHash::of_encoding(&values[1]),
            ContentHash::of_encoding(&values[2])
        );
    }

    #[test]
    fn known_vector() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            ContentHash::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ContentHash::of(b"abc").short().to_string(),
            "ba7816bf8f01cfea"
        );
    }
}
