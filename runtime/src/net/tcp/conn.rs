//! One TLS connection on a non-blocking socket: reads frames into whole messages, writes
//! queued messages as the socket drains. Large payloads are split into frames and fed to TLS
//! in small chunks, so nothing copies a whole tensor into the TLS buffers.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use ksnn_formats::frame::{FRAME_HEADER_LEN, FrameHeader};
use ksnn_formats::{FrameError, FrameKind};
use mio::Interest;
use mio::net::TcpStream;

use super::node::Unsent;
use crate::role::Role;

/// Plaintext handed to TLS per write: small enough to keep TLS buffers small.
const CHUNK: usize = 64 << 10;

/// Largest message accepted before the peer's greeting: a greeting is a few dozen bytes, and
/// nothing else may arrive first, so an unauthenticated peer cannot make us hold more.
pub const MAX_BEFORE_GREETING: usize = 4 << 10;

/// TLS bytes read from one connection per turn of the event loop: a peer that sends without
/// pause must not starve the others, nor fill memory before its frames are checked.
const READ_BUDGET: usize = 1 << 20;

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnError {
    Closed,
    Io(io::Error),
    Tls(rustls::Error),
    Frame(FrameError),
    TooLarge { len: usize, max: usize },
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Closed => f.write_str("connection closed"),
            ConnError::Io(e) => write!(f, "i/o error: {e}"),
            ConnError::Tls(e) => write!(f, "TLS error: {e}"),
            ConnError::Frame(e) => write!(f, "{e}"),
            ConnError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

/// A complete received message.
pub struct Incoming {
    pub session: u64,
    pub kind: FrameKind,
    pub depth: u32,
    pub payload: Vec<u8>,
}

pub struct Conn {
    pub sock: TcpStream,
    pub tls: rustls::Connection,
    /// The peer's role, once its certificate is checked.
    pub peer: Option<Role>,
    /// A named client's name (from its certificate), for the logs.
    pub name: Option<String>,
    /// The remote address of an accepted connection (per-address limits).
    pub ip: Option<std::net::IpAddr>,
    /// The peer's greeting was received and accepted.
    pub greeted: bool,
    /// Our greeting is queued.
    pub greet_sent: bool,
    /// Close once the queue is flushed.
    pub closing: bool,
    /// Not read from until its output drains (backpressure on a peer that does not read).
    pub paused: bool,
    /// When the connection was accepted or made (the greeting deadline counts from here).
    pub opened: std::time::Instant,
    /// When the last message other than a heartbeat arrived (set by the node; idle client
    /// connections are closed).
    pub last_active: std::time::Instant,
    /// When any bytes last arrived: a peer silent for too long is dead, not slow.
    pub last_heard: std::time::Instant,
    /// Whether any bytes arrived at all (a silent connection is evicted before a handshake
    /// in progress).
    pub heard: bool,
    /// When anything was last queued for the peer (a heartbeat goes out after a quiet spell).
    pub last_sent: std::time::Instant,
    /// Bytes waiting in `out`: a peer that does not read is dropped past a limit.
    pub queued: usize,
    out: VecDeque<(FrameHeader, Vec<u8>, Option<Unsent>)>,
    /// Bytes of the front frame (header then payload) already handed to TLS.
    out_off: usize,
    inbuf: Vec<u8>,
    partial: Option<(FrameHeader, Vec<u8>)>,
    max_payload: u32,
    max_message: usize,
}

impl Conn {
    pub fn new(
        sock: TcpStream,
        mut tls: rustls::Connection,
        max_payload: u32,
        max_message: usize,
    ) -> Self {
        tls.set_buffer_limit(Some(4 * CHUNK));
        Self {
            sock,
            tls,
            peer: None,
            name: None,
            ip: None,
            greeted: false,
            greet_sent: false,
            closing: false,
            paused: false,
            opened: std::time::Instant::now(),
            last_active: std::time::Instant::now(),
            last_heard: std::time::Instant::now(),
            heard: false,
            last_sent: std::time::Instant::now(),
            queued: 0,
            out: VecDeque::new(),
            out_off: 0,
            inbuf: Vec::new(),
            partial: None,
            max_payload,
            max_message,
        }
    }

    /// Queues one message, split into frames of at most `max_payload` bytes.
    pub fn queue(&mut self, session: u64, kind: FrameKind, depth: u32, payload: Vec<u8>) {
        self.queue_counted(session, kind, depth, payload, None);
    }

    /// [`Conn::queue`] for a session's message whose bytes count in its sender's window until
    /// the last frame has been handed to TLS (or dropped with the connection).
    pub fn queue_counted(
        &mut self,
        session: u64,
        kind: FrameKind,
        depth: u32,
        payload: Vec<u8>,
        unsent: Option<Unsent>,
    ) {
        let max = self.max_payload as usize;
        if payload.len() <= max {
            self.push(session, kind, depth, false, payload, unsent);
            return;
        }
        let n = payload.len().div_ceil(max);
        let mut unsent = unsent;
        for (i, part) in payload.chunks(max).enumerate() {
            let last = i + 1 == n;
            let tag = if last { unsent.take() } else { None };
            self.push(session, kind, depth, !last, part.to_vec(), tag);
        }
    }

    fn push(
        &mut self,
        session: u64,
        kind: FrameKind,
        depth: u32,
        more: bool,
        payload: Vec<u8>,
        unsent: Option<Unsent>,
    ) {
        let header = FrameHeader {
            session,
            depth,
            kind,
            more,
            len: payload.len() as u32,
        };
        self.queued += FRAME_HEADER_LEN + payload.len();
        self.last_sent = std::time::Instant::now();
        self.out.push_back((header, payload, unsent));
    }

    pub fn interest(&self) -> Interest {
        let write = self.tls.wants_write() || (!self.out.is_empty() && !self.tls.is_handshaking());
        match (write, self.paused) {
            (true, true) => Interest::WRITABLE,
            (true, false) => Interest::READABLE | Interest::WRITABLE,
            // Paused with nothing left to write cannot last: reading resumes at the next flush.
            (false, _) => Interest::READABLE,
        }
    }

    pub fn has_output(&self) -> bool {
        self.tls.wants_write() || !self.out.is_empty()
    }

    /// Moves queued plaintext into TLS and TLS records onto the socket until it would block.
    /// A frame is written as header then payload, in pieces as TLS accepts them.
    pub fn on_writable(&mut self) -> Result<(), ConnError> {
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(ConnError::Io(e)),
                }
            }
            if self.tls.is_handshaking() {
                return Ok(());
            }
            let Some((header, payload, _)) = self.out.front() else {
                return Ok(());
            };
            let total = FRAME_HEADER_LEN + payload.len();
            if self.out_off >= total {
                self.out.pop_front();
                self.out_off = 0;
                self.queued -= total;
                continue;
            }
            let written = if self.out_off < FRAME_HEADER_LEN {
                self.tls.writer().write(&header.encode()[self.out_off..])
            } else {
                let at = self.out_off - FRAME_HEADER_LEN;
                let end = (at + CHUNK).min(payload.len());
                self.tls.writer().write(&payload[at..end])
            }
            .map_err(ConnError::Io)?;
            if written == 0 && !self.tls.wants_write() {
                return Ok(());
            }
            self.out_off += written;
        }
    }

    /// Reads what the socket has, up to a budget; returns the messages completed and whether
    /// the budget ran out (then the caller must come back without waiting for an event).
    pub fn on_readable(&mut self) -> Result<(Vec<Incoming>, bool), ConnError> {
        let mut eof = false;
        let mut budget = READ_BUDGET;
        let mut more = false;
        loop {
            if budget == 0 {
                more = true;
                break;
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.last_heard = std::time::Instant::now();
                    self.heard = true;
                    let state = self.tls.process_new_packets().map_err(|e| {
                        // Tell the peer why before we go.
                        let _ = self.tls.write_tls(&mut self.sock);
                        ConnError::Tls(e)
                    })?;
                    if state.plaintext_bytes_to_read() > 0 {
                        let start = self.inbuf.len();
                        self.inbuf
                            .resize(start + state.plaintext_bytes_to_read(), 0);
                        self.tls
                            .reader()
                            .read_exact(&mut self.inbuf[start..])
                            .map_err(ConnError::Io)?;
                    }
                    if state.peer_has_closed() {
                        eof = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
        let messages = self.parse()?;
        if eof && messages.is_empty() {
            return Err(ConnError::Closed);
        }
        if eof {
            self.closing = true;
        }
        Ok((messages, more && !eof))
    }

    fn parse(&mut self) -> Result<Vec<Incoming>, ConnError> {
        let mut done = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &self.inbuf[pos..];
            if rest.len() < FRAME_HEADER_LEN {
                break;
            }
            // The length is checked against the limits before anything is allocated for it,
            // and before the frame's payload has arrived.
            let h = FrameHeader::decode(rest, self.max_payload).map_err(ConnError::Frame)?;
            // The first message must be the greeting (the node refuses anything else).
            let max = if self.greeted || !done.is_empty() {
                self.max_message
            } else {
                MAX_BEFORE_GREETING
            };
            let so_far = self.partial.as_ref().map_or(0, |(_, d)| d.len());
            if so_far + h.len as usize > max {
                return Err(ConnError::TooLarge {
                    len: so_far + h.len as usize,
                    max,
                });
            }
            let need = FRAME_HEADER_LEN + h.len as usize;
            if rest.len() < need {
                break;
            }
            let body = &rest[FRAME_HEADER_LEN..need];
            pos += need;
            let (first, mut data) = match self.partial.take() {
                Some((first, data)) if first.session == h.session && first.kind == h.kind => {
                    (first, data)
                }
                Some(_) => return Err(ConnError::Frame(FrameError::UnknownKind(h.kind as u8))),
                None => (h, Vec::new()),
            };
            data.extend_from_slice(body);
            if h.more {
                self.partial = Some((first, data));
            } else {
                done.push(Incoming {
                    session: first.session,
                    kind: first.kind,
                    depth: first.depth,
                    payload: data,
                });
            }
        }
        self.inbuf.drain(..pos);
        // A burst can grow the buffer; give the memory back once it is drained.
        if self.inbuf.capacity() > 4 * CHUNK && self.inbuf.len() < CHUNK {
            self.inbuf.shrink_to(CHUNK);
        }
        Ok(done)
    }
}
