//! Transports: how protocol messages move between parties. Protocol code never touches a
//! socket; it talks to a [`Transport`]. `mem` runs three parties as threads in one process;
//! `counting` wraps any transport to measure bytes, messages and rounds; `tcp` and `tls` (feature
//! `net`, on by default) run the parties as separate processes.

pub mod counting;
pub mod mem;
pub mod recording;
#[cfg(feature = "net")]
pub mod tcp;
#[cfg(feature = "net")]
pub mod tls;

use ksnn_formats::{FrameError, FrameKind};
use thiserror::Error;

use crate::role::Role;

/// One message between two parties: a payload kind, the sender's round depth, the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What the payload is (protocol data, link control, a session command, an abort), so the
    /// receiver knows how to decode it.
    pub kind: FrameKind,
    /// Length of the longest chain of dependent messages ending in this one.
    pub depth: u32,
    /// The message body, reassembled from its frames; its encoding depends on `kind`.
    pub payload: Vec<u8>,
}

/// A transport failure, naming the peer involved.
#[derive(Debug, Error)]
pub enum NetError {
    /// The connection to the peer closed (or was dropped as dead) while a session needed it.
    #[error("{peer} disconnected")]
    Disconnected {
        /// The party whose connection was lost.
        peer: Role,
    },
    /// The peer sent nothing within the transport's timeout.
    #[error("no message from {peer} within {seconds:.1} s")]
    Timeout {
        /// The party that was expected to send.
        peer: Role,
        /// The timeout that ran out, in seconds.
        seconds: f64,
    },
    /// The peer ended the session with an `Abort` frame.
    #[error("{peer} aborted the session: {reason}")]
    Aborted {
        /// The party that aborted.
        peer: Role,
        /// Its stated reason, sanitised by [`peer_text`].
        reason: String,
    },
    /// A new connection to the peer closed before it was ready: the TLS handshake or the
    /// greeting failed, was refused or timed out.
    #[error("could not connect to {peer}: {reason}")]
    ConnectFailed {
        /// The party we tried to reach.
        peer: Role,
        /// What went wrong, for the log.
        reason: String,
    },
    /// The peer sent bytes that are not a valid frame (bad header, payload over the limit).
    #[error("malformed frame from {peer}: {source}")]
    Frame {
        /// The party that sent the frame.
        peer: Role,
        /// Why the frame was rejected.
        source: FrameError,
    },
    /// A well-formed message that this step of the protocol or session does not accept.
    #[error("unexpected message from {peer}: expected {expected}, got {got}")]
    Unexpected {
        /// The party that sent it.
        peer: Role,
        /// What the step was waiting for, in words.
        expected: String,
        /// What arrived instead, in words.
        got: String,
    },
    /// A socket or TLS operation with the peer failed (e.g. the TCP connect itself).
    #[error("i/o with {peer}: {source}")]
    Io {
        /// The party on the other end of the connection.
        peer: Role,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Longest peer-supplied text (an abort reason) kept, in bytes.
pub const MAX_PEER_TEXT: usize = 256;

/// Text a peer sent, made safe to log: at most [`MAX_PEER_TEXT`] bytes of it, invalid UTF-8
/// replaced and control characters escaped, so a peer can neither flood a log nor forge lines.
pub fn peer_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_PEER_TEXT)];
    let mut out = String::with_capacity(cut.len());
    for c in String::from_utf8_lossy(cut).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if bytes.len() > MAX_PEER_TEXT {
        out.push_str(&format!(" … ({} bytes cut)", bytes.len() - MAX_PEER_TEXT));
    }
    out
}

impl NetError {
    /// `peer` aborted, with the reason it sent (sanitised by [`peer_text`]).
    pub fn aborted(peer: Role, payload: &[u8]) -> Self {
        NetError::Aborted {
            peer,
            reason: peer_text(payload),
        }
    }
}

/// Sends and receives whole messages to and from the two other parties. Messages between
/// one ordered pair arrive in the order they were sent.
pub trait Transport: Send {
    /// Who this end is.
    fn role(&self) -> Role;
    /// Queues `msg` for `to`; must not wait for the peer to read it.
    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError>;
    /// The next message from `from`, or an error after the transport's timeout.
    fn recv(&mut self, from: Role) -> Result<Message, NetError>;
    /// Waits until what was sent to `to` has left this party's memory (handed to the
    /// network, or dropped with a closed connection), at most the transport's timeout. A
    /// sender of many large messages calls it between them so it never holds them all.
    fn flush(&mut self, to: Role) -> Result<(), NetError> {
        let _ = to;
        Ok(())
    }
    /// [`recv`](Transport::recv) for protocol step `step`; protocols call this so a
    /// [`recording::RecordingTransport`] can label what a party saw.
    fn recv_step(&mut self, from: Role, step: &'static str) -> Result<Message, NetError> {
        let _ = step;
        self.recv(from)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn role(&self) -> Role {
        (**self).role()
    }
    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError> {
        (**self).send(to, msg)
    }
    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        (**self).recv(from)
    }
    fn flush(&mut self, to: Role) -> Result<(), NetError> {
        (**self).flush(to)
    }
    fn recv_step(&mut self, from: Role, step: &'static str) -> Result<Message, NetError> {
        (**self).recv_step(from, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_escapes_controls_and_cuts_long_text() {
        assert_eq!(peer_text(b"fine"), "fine");
        assert_eq!(
            peer_text(b"a\nforged line\x1b[0m"),
            "a\\nforged line\\u{1b}[0m"
        );
        assert_eq!(peer_text(&[0xff, b'x']), "\u{fffd}x");
        let long = peer_text(&[b'y'; MAX_PEER_TEXT + 10]);
        assert!(long.starts_with(&"y".repeat(MAX_PEER_TEXT)));
        assert!(long.ends_with("(10 bytes cut)"), "{long}");
    }
}
