//! Wire frames between parties: a fixed 20-byte header, then the payload.
//!
//! ```text
//! offset size field
//!      0    2 magic "KF"
//!      2    1 wire version
//!      3    1 payload kind; the high bit says another frame of the same message follows
//!      4    8 session id           (which inference session; daemons multiplex many)
//!     12    4 sender depth         (longest chain of dependent messages so far: rounds)
//!     16    4 payload length in bytes
//! ```
//! All little-endian. The receiver checks the length against its own limit *before* it
//! allocates anything for the payload. There is no sequence number: frames travel over TLS,
//! which already delivers them in order, whole and once (wire version 1 carried one that no
//! receiver checked).

use alloc::vec::Vec;

use thiserror::Error;

/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 20;
/// Wire protocol version carried in every frame. 2: no sequence number; `Link` and
/// `Command` frames apart; no `Done`.
pub const WIRE_VERSION: u8 = 2;
const FRAME_MAGIC: [u8; 2] = *b"KF";
/// Default limit on one frame's payload; bigger tensors are sent as several frames.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 << 20;

/// What a payload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Link control (postcard): the greeting (role, program hash, protocol version), a
    /// client's request to open a session, a session's nonces, heartbeats.
    Link = 1,
    /// Ring elements, `u64` little-endian.
    Ring = 2,
    /// Small values one byte each (bit shares, mod-67 digits).
    Bytes = 3,
    /// The sender aborts the session; the payload is a UTF-8 reason.
    Abort = 4,
    /// Session commands between the client and the daemons (postcard): which inference to
    /// run, the end of the session, each daemon's record. A kind of their own, so a command can
    /// never be read as link control, nor the reverse.
    Command = 5,
}

impl FrameKind {
    /// The kind for a header's kind byte (high "more" bit already cleared); `None` if unknown.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => FrameKind::Link,
            2 => FrameKind::Ring,
            3 => FrameKind::Bytes,
            4 => FrameKind::Abort,
            5 => FrameKind::Command,
            _ => return None,
        })
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Inference session the frame belongs to, so one connection can multiplex many.
    pub session: u64,
    /// Longest chain of dependent messages ending in this one (sender's depth + 1, per phase);
    /// the receiver raises its own depth to it, which is how rounds are counted.
    pub depth: u32,
    /// What the payload holds.
    pub kind: FrameKind,
    /// Another frame continues this message (messages larger than one frame are split).
    pub more: bool,
    /// Payload bytes after the header; checked against the receiver's limit before allocating.
    pub len: u32,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer than [`FRAME_HEADER_LEN`] bytes were given (the count is carried).
    #[error("frame header: expected {FRAME_HEADER_LEN} bytes, got {0}")]
    ShortHeader(usize),
    /// The header does not start with `KF` (the two bytes found are carried).
    #[error("frame header: bad magic {0:02x?} (not a ksnn peer, or the stream lost sync)")]
    BadMagic([u8; 2]),
    /// The peer speaks another wire version.
    #[error("frame header: wire version {found}, this build speaks {WIRE_VERSION}")]
    Version {
        /// Version byte in the header.
        found: u8,
    },
    /// The kind byte is not a known [`FrameKind`] (the raw byte is carried).
    #[error("frame header: unknown payload kind {0}")]
    UnknownKind(u8),
    /// The declared payload exceeds the receiver's limit; refused before allocating.
    #[error("frame header: payload of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Payload length the header declares.
        len: u32,
        /// The receiver's limit.
        max: u32,
    },
    /// A payload's length is not a multiple of its element size.
    #[error("frame payload: {len} bytes is not a whole number of {unit}-byte elements")]
    Ragged {
        /// Payload length in bytes.
        len: usize,
        /// Element size in bytes (8 for ring elements).
        unit: usize,
    },
}

impl FrameHeader {
    /// The header's 24 wire bytes (magic and version filled in).
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[0..2].copy_from_slice(&FRAME_MAGIC);
        h[2] = WIRE_VERSION;
        h[3] = self.kind as u8 | if self.more { 0x80 } else { 0 };
        h[4..12].copy_from_slice(&self.session.to_le_bytes());
        h[12..16].copy_from_slice(&self.depth.to_le_bytes());
        h[16..20].copy_from_slice(&self.len.to_le_bytes());
        h
    }

    /// Parses and checks a header; `max_payload` is the receiver's limit.
    pub fn decode(bytes: &[u8], max_payload: u32) -> Result<Self, FrameError> {
        let h: &[u8; FRAME_HEADER_LEN] = bytes
            .get(..FRAME_HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(FrameError::ShortHeader(bytes.len()))?;
        if h[0..2] != FRAME_MAGIC {
            return Err(FrameError::BadMagic([h[0], h[1]]));
        }
        if h[2] != WIRE_VERSION {
            return Err(FrameError::Version { found: h[2] });
        }
        let kind = FrameKind::from_u8(h[3] & 0x7f).ok_or(FrameError::UnknownKind(h[3]))?;
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let len = u32_at(16);
        if len > max_payload {
            return Err(FrameError::TooLong {
                len,
                max: max_payload,
            });
        }
        Ok(Self {
            session: u64::from_le_bytes(h[4..12].try_into().expect("8 bytes")),
            depth: u32_at(12),
            kind,
            more: h[3] & 0x80 != 0,
            len,
        })
    }
}

/// Appends ring elements as little-endian bytes.
pub fn put_ring(out: &mut Vec<u8>, values: &[u64]) {
    out.reserve(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a `Ring` payload.
pub fn get_ring(payload: &[u8]) -> Result<Vec<u64>, FrameError> {
    if !payload.len().is_multiple_of(8) {
        return Err(FrameError::Ragged {
            len: payload.len(),
            unit: 8,
        });
    }
    Ok(payload
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FrameHeader {
        FrameHeader {
            session: 0x0102_0304_0506_0708,
            depth: 3,
            kind: FrameKind::Ring,
            more: false,
            len: 16,
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let h = header();
        let bytes = h.encode();
        assert_eq!(&bytes[0..4], &[b'K', b'F', WIRE_VERSION, 2]);
        assert_eq!(bytes[4], 0x08, "little-endian session id");
        assert_eq!(bytes[12], 3, "depth right after the session id");
        assert_eq!(bytes[16], 16, "then the length");
        assert_eq!(FrameHeader::decode(&bytes, 16), Ok(h));
    }

    #[test]
    fn rejects_bad_headers() {
        let bytes = header().encode();
        assert_eq!(
            FrameHeader::decode(&bytes[..10], 100),
            Err(FrameError::ShortHeader(10))
        );
        assert_eq!(
            FrameHeader::decode(&bytes, 15),
            Err(FrameError::TooLong { len: 16, max: 15 })
        );
        let mut b = bytes;
        b[3] = 99;
        assert_eq!(
            FrameHeader::decode(&b, 100),
            Err(FrameError::UnknownKind(99))
        );
        let mut b = bytes;
        b[0] = b'X';
        assert!(matches!(
            FrameHeader::decode(&b, 100),
            Err(FrameError::BadMagic(_))
        ));
        let mut b = bytes;
        b[2] = 1;
        assert_eq!(
            FrameHeader::decode(&b, 100),
            Err(FrameError::Version { found: 1 })
        );
        let mut b = bytes;
        b[3] = 6;
        assert_eq!(
            FrameHeader::decode(&b, 100),
            Err(FrameError::UnknownKind(6)),
            "kind 5 is the last"
        );
    }

    #[test]
    fn ring_payloads() {
        let mut out = Vec::new();
        put_ring(&mut out, &[1, u64::MAX]);
        assert_eq!(get_ring(&out).unwrap(), [1, u64::MAX]);
        assert!(get_ring(&out[..5]).is_err());
    }
}
