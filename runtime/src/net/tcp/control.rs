//! Link control (frame kind `Hello`, postcard): the greeting on every new connection and the
//! client's request to open a session. Commands inside a session are `exec::session`'s.

use serde::{Deserialize, Serialize};

use crate::net::Message;
use ksnn_formats::FrameKind;

/// Version of the protocols and wire format; parties must agree.
/// 2: per-session nonces in the pair secrets, the helper takes its commands from the server,
/// PrivateCompare's zero-sharing.
pub const PROTOCOL_VERSION: u16 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// First message on every connection, both ways.
    Hello {
        role: u8,
        program: [u8; 32],
        protocol: u16,
    },
    /// P0 opens a session (on its connections to P1 and P2).
    Open,
    /// First message of every session on each connection: the sender's fresh nonce for the
    /// pair secret (see [`super::keying`]).
    Nonce { nonce: [u8; 32] },
    /// Liveness, outside any session: sent on a connection that has been quiet for a while,
    /// so a silent peer is dead, not slow.
    Ping,
}

impl Control {
    pub fn message(&self) -> Message {
        Message {
            kind: FrameKind::Hello,
            depth: 0,
            payload: postcard::to_allocvec(self).expect("encodes"),
        }
    }

    pub fn decode(payload: &[u8]) -> Option<Control> {
        postcard::from_bytes(payload).ok()
    }
}
