//! Link control (frame kind `Link`, postcard): the greeting on every new connection, the
//! client's request to open a session, a session's nonces and heartbeats. Commands inside a
//! session are `exec::session`'s, in frames of kind `Command`: the kinds keep the two apart,
//! so a command is never taken for link control (both are postcard enums and look alike).

use serde::{Deserialize, Serialize};

use crate::net::Message;
use ksnn_formats::FrameKind;

/// Version of the protocols and wire format; parties must agree.
/// 2: per-session nonces in the pair secrets, the helper takes its commands from the server,
/// PrivateCompare's zero-sharing. 3: wire version 2 (no frame sequence number; link control
/// and session commands in frames of different kinds). 4: masked weights go P1 → P2 (with F
/// from P0–P1's stream), the `Prepare` session command (offline ahead).
pub const PROTOCOL_VERSION: u16 = 4;

/// A link-control message: what the transport itself says on a connection, as opposed to
/// protocol data and session commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// First message on every connection, both ways.
    Hello {
        /// The sender's role index (0 = P0, 1 = P1, 2 = P2); must match its certificate.
        role: u8,
        /// The sender's program hash; must equal the receiver's.
        program: [u8; 32],
        /// The sender's [`PROTOCOL_VERSION`]; must equal the receiver's.
        protocol: u16,
    },
    /// P0 opens a session (on its connections to P1 and P2).
    Open,
    /// First message of every session on each connection: the sender's fresh nonce for the
    /// pair secret (see [`super::keying`]).
    Nonce {
        /// 32 fresh random bytes from the sender.
        nonce: [u8; 32],
    },
    /// Liveness, outside any session: sent on a connection that has been quiet for a while,
    /// so a silent peer is dead, not slow.
    Ping,
}

impl Control {
    /// The control message as a `Link` frame.
    pub fn message(&self) -> Message {
        Message {
            kind: FrameKind::Link,
            depth: 0,
            payload: postcard::to_allocvec(self).expect("encodes"),
        }
    }

    /// The control message in a frame, if it is a `Link` frame that decodes as one.
    pub fn decode(kind: FrameKind, payload: &[u8]) -> Option<Control> {
        if kind != FrameKind::Link {
            return None;
        }
        postcard::from_bytes(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::session::SessionCmd;

    /// `Open` and `Close` have the same postcard bytes; only the frame kind tells them apart.
    #[test]
    fn commands_are_never_read_as_link_control() {
        let close = SessionCmd::Close.message();
        let open = Control::Open.message();
        assert_eq!(close.payload, open.payload, "the case the kinds are for");
        assert_ne!(close.kind, open.kind);
        assert_eq!(Control::decode(close.kind, &close.payload), None);
        assert_eq!(
            Control::decode(open.kind, &open.payload),
            Some(Control::Open)
        );
        let infer = SessionCmd::Infer { id: 1 }.message();
        assert_eq!(Control::decode(infer.kind, &infer.payload), None);
    }
}
