//! Link control (frame kind `Hello`, postcard): the greeting on every new connection and the
//! client's request to open a session. Commands inside a session are `exec::session`'s.

use serde::{Deserialize, Serialize};

use crate::net::Message;
use ksnn_formats::FrameKind;

/// Version of the protocols and wire format; parties must agree.
pub const PROTOCOL_VERSION: u16 = 1;

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
