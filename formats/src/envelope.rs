//! The fixed file header shared by programs, weight files and binary specs:
//!
//! ```text
//! offset  size  field
//!      0     8  magic ("KSNNPRG\0", "KSNNWGT\0", "KSNNSPC\0", "KSNNGRF\0")
//!      8     2  format version, little-endian
//!     10     2  reserved, zero
//!     12     8  body length in bytes, little-endian
//!     20    32  SHA-256 of the body
//!     52     …  body: postcard
//! ```
//!
//! The hash is checked before the body is decoded, so a corrupted file is reported as such
//! instead of as whatever garbage the decoder would make of it.

use alloc::string::ToString;
use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{FileKind, FormatError};
use crate::hash::ContentHash;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 52;

/// The file kinds that use the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// The public program all parties run (`model.ksnn`).
    Program,
    /// The server's fixed-point weights (`weights.ksnw`).
    Weights,
    /// A block spec in its binary (postcard) form.
    Spec,
    /// The compiler's graph IR with its parameters (`model.ksnn-graph`).
    Graph,
}

impl Magic {
    /// The 8 bytes a file of this kind starts with.
    pub const fn bytes(self) -> [u8; 8] {
        match self {
            Magic::Program => *b"KSNNPRG\0",
            Magic::Weights => *b"KSNNWGT\0",
            Magic::Spec => *b"KSNNSPC\0",
            Magic::Graph => *b"KSNNGRF\0",
        }
    }

    /// The [`FileKind`] that errors about this envelope report.
    pub const fn file(self) -> FileKind {
        match self {
            Magic::Program => FileKind::Program,
            Magic::Weights => FileKind::Weights,
            Magic::Spec => FileKind::Spec,
            Magic::Graph => FileKind::Graph,
        }
    }

    /// Which envelope kind `bytes` starts with, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Magic> {
        [Magic::Program, Magic::Weights, Magic::Spec, Magic::Graph]
            .into_iter()
            .find(|m| bytes.starts_with(&m.bytes()))
    }
}

/// Serializes `value` and wraps it in the header.
pub fn seal<T: Serialize>(magic: Magic, value: &T) -> Vec<u8> {
    let body = postcard::to_allocvec(value).expect("in-memory postcard encoding cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&magic.bytes());
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&ContentHash::of(&body).0);
    out.extend_from_slice(&body);
    out
}

/// Checks the header and hash, then decodes the body; trailing bytes are an error.
pub fn open<T: DeserializeOwned>(magic: Magic, bytes: &[u8]) -> Result<T, FormatError> {
    let body = checked_body(magic, bytes)?;
    decode_body(magic.file(), body)
}

/// Decodes a postcard body that must be consumed exactly.
pub(crate) fn decode_body<T: DeserializeOwned>(
    file: FileKind,
    body: &[u8],
) -> Result<T, FormatError> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| FormatError::Decode {
        file,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(FormatError::Decode {
            file,
            reason: alloc::format!("{} unused bytes after the body", rest.len()),
        });
    }
    Ok(value)
}

/// Validates the header and returns the body.
pub fn checked_body(magic: Magic, bytes: &[u8]) -> Result<&[u8], FormatError> {
    let file = magic.file();
    if bytes.len() < HEADER_LEN {
        // Still say "bad magic" when what is there is clearly another kind of file.
        if bytes.len() >= 8 && bytes[..8] != magic.bytes() {
            return Err(FormatError::BadMagic {
                file,
                found: bytes[..8].try_into().expect("8 bytes"),
            });
        }
        return Err(FormatError::Truncated {
            file,
            needed: HEADER_LEN as u64,
            got: bytes.len() as u64,
        });
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    let found: [u8; 8] = header[..8].try_into().expect("8 bytes");
    if found != magic.bytes() {
        return Err(FormatError::BadMagic { file, found });
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            file,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if header[10..12] != [0, 0] {
        return Err(FormatError::Decode {
            file,
            reason: "reserved header bytes are not zero".into(),
        });
    }
    let claimed = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if claimed != body.len() as u64 {
        return Err(FormatError::BodyLength {
            file,
            claimed,
            actual: body.len() as u64,
        });
    }
    let expected = ContentHash(header[20..52].try_into().expect("32 bytes"));
    let actual = ContentHash::of(body);
    if expected != actual {
        return Err(FormatError::HashMismatch {
            file,
            expected,
            actual,
        });
    }
    Ok(body)
}

/// The body hash recorded in a sealed file's header (not re-checked).
pub fn header_hash(bytes: &[u8]) -> Option<ContentHash> {
    bytes
        .get(20..52)
        .map(|h| ContentHash(h.try_into().expect("32 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn header_errors() {
        let sealed = seal(Magic::Spec, &String::from("hello"));
        assert_eq!(open::<String>(Magic::Spec, &sealed).unwrap(), "hello");
        assert!(matches!(
            open::<String>(Magic::Program, &sealed),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(matches!(
            open::<String>(Magic::Spec, &sealed[..30]),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            open::<String>(Magic::Spec, &sealed[..sealed.len() - 1]),
            Err(FormatError::BodyLength { .. })
        ));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open::<String>(Magic::Spec, &flipped),
            Err(FormatError::HashMismatch { .. })
        ));
        let mut version = sealed.clone();
        version[8] = 9;
        assert!(matches!(
            open::<String>(Magic::Spec, &version),
            Err(FormatError::UnsupportedVersion { found: 9, .. })
        ));
    }
}
