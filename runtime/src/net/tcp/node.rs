//! The handle to the event loop ([`Node`]) and a session's [`TcpTransport`]: both talk to the
//! loop thread ([`super::event_loop`]) through a command channel and a waker, so no caller
//! ever blocks on a socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ksnn_formats::ContentHash;
use mio::Waker;

use super::Limits;
use super::event_loop::Loop;
use super::keying::{Session, insecure};
use crate::net::tls::Identity;
use crate::net::{Message, NetError, Transport};
use crate::role::Role;

/// How a node runs.
#[derive(Clone)]
pub struct NodeConfig {
    /// This party's certificate, key and trusted CA, for mutual TLS on every connection.
    pub identity: Identity,
    /// Address to accept connections on (daemons); `None` for a node that only connects (P0).
    pub listen: Option<SocketAddr>,
    /// Hash of the compiled program; a peer greeting with a different one is refused.
    pub program_hash: ContentHash,
    /// How long a session waits for a message, and a connect for its greeting.
    pub timeout: Duration,
    /// Largest frame payload accepted from or sent to a peer, in bytes; longer messages are
    /// split into frames of at most this size.
    pub max_payload: u32,
    /// Largest message (all its frames together) accepted from a peer after its greeting, in
    /// bytes; checked before the payload is buffered.
    pub max_message: usize,
    /// Caps on sessions, connections, queues and timers that bound what a peer can cost us.
    pub limits: Limits,
    /// Simulated one-way latency per sending peer, for benchmarks; zero in production. Every
    /// session message is held this long after it reaches this node's event loop before
    /// `recv` returns it (messages in flight overlap, so pipelining and bandwidth are
    /// unaffected). Connection handshakes are not delayed.
    pub latency: Latency,
}

/// A simulated one-way latency for each peer a node receives from (a WAN emulation: the
/// kernel's netem is not available everywhere, and this keeps the delay per link).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency([Duration; 3]);

impl Latency {
    /// No simulated delay (production).
    pub const ZERO: Latency = Latency([Duration::ZERO; 3]);

    /// The same delay on the messages from every peer.
    pub fn uniform(d: Duration) -> Latency {
        Latency([d; 3])
    }

    /// `self` with the messages from `peer` held `d`.
    pub fn with(mut self, peer: Role, d: Duration) -> Latency {
        self.0[peer.index()] = d;
        self
    }

    /// How long a message from `peer` is held.
    pub fn from(&self, peer: Role) -> Duration {
        self.0[peer.index()]
    }

    /// True when no message is held.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(Duration::is_zero)
    }
}

/// What the loop tells the process.
// A session arrives once per session, not per message: boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum NodeEvent {
    /// A client opened a session (daemons).
    Session(Session),
    /// Something worth a log line.
    Log(String),
}

/// What a session's inbox carries: a message with the time it reached the event loop, or an
/// error (delivered at once).
pub(super) type InboxItem = Result<(Instant, Message), NetError>;
pub(super) type Inbox = Sender<InboxItem>;
/// Where a connect waits for its answer.
pub(super) type Reply = Sender<Result<(), NetError>>;

/// What the handles ask of the loop.
pub(super) enum Cmd {
    Connect {
        role: Role,
        addr: SocketAddr,
        reply: Reply,
    },
    Open {
        session: u64,
        reply: Sender<Result<Session, NetError>>,
    },
    #[cfg(feature = "test-utils")]
    Raw {
        session: u64,
        to: Role,
        msg: Message,
    },
    Send {
        session: u64,
        to: Role,
        msg: Message,
        unsent: Unsent,
    },
    Drop {
        session: u64,
    },
    Shutdown,
}

/// Handle to a running event loop.
pub struct Node {
    cmd: Sender<Cmd>,
    waker: Arc<Waker>,
    events: Receiver<NodeEvent>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
    links_up: Arc<[AtomicBool; 3]>,
    /// The address actually bound (port 0 resolved).
    pub local_addr: Option<SocketAddr>,
}

impl Node {
    /// Starts the loop (and the listener, if configured).
    pub fn start(config: NodeConfig) -> io::Result<Node> {
        let (cmd_tx, cmd_rx) = channel();
        let (ev_tx, ev_rx) = channel();
        let timeout = config.timeout;
        let links_up: Arc<[AtomicBool; 3]> = Arc::new(Default::default());
        let mut lp = Loop::new(config, cmd_rx, cmd_tx.clone(), ev_tx, links_up.clone())?;
        let waker = lp.waker.clone();
        let local_addr = lp.local_addr()?;
        if let Some(w) = insecure::warning() {
            eprintln!("\n{w}\n");
        }
        let thread = std::thread::Builder::new()
            .name("ksnn-net".into())
            .spawn(move || lp.run())?;
        Ok(Node {
            cmd: cmd_tx,
            waker,
            events: ev_rx,
            thread: Some(thread),
            timeout,
            links_up,
            local_addr,
        })
    }

    fn command(&self, c: Cmd) {
        let _ = self.cmd.send(c);
        let _ = self.waker.wake();
    }

    /// Starts connecting to `role` at `addr` and returns at once; the receiver gets the
    /// outcome (the greeting, a refusal or a timeout). A daemon keeps serving meanwhile.
    pub fn connect_in_background(
        &self,
        role: Role,
        addr: SocketAddr,
    ) -> Receiver<Result<(), NetError>> {
        let (tx, rx) = channel();
        self.command(Cmd::Connect {
            role,
            addr,
            reply: tx,
        });
        rx
    }

    /// Connects to `role` at `addr` and waits for its greeting (or its refusal).
    pub fn connect(&self, role: Role, addr: SocketAddr) -> Result<(), NetError> {
        let rx = self.connect_in_background(role, addr);
        match rx.recv_timeout(self.timeout + Duration::from_secs(1)) {
            Ok(r) => r,
            Err(_) => Err(NetError::Timeout {
                peer: role,
                seconds: self.timeout.as_secs_f64(),
            }),
        }
    }

    /// Client: opens a session over the connections to P1 and P2.
    pub fn open_session(&self) -> Result<Session, NetError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).expect("OS randomness");
        self.open_session_with_id(u64::from_le_bytes(id) | 1)
    }

    /// Client: opens a session with a chosen id. Any client could; the daemons refuse an id
    /// they have seen, so only tests have a use for it.
    #[cfg(feature = "test-utils")]
    pub fn open_session_as(&self, session: u64) -> Result<Session, NetError> {
        self.open_session_with_id(session)
    }

    /// Sends `msg` for any session id on the link to `to`, as a modified client could.
    #[cfg(feature = "test-utils")]
    pub fn send_raw(&self, session: u64, to: Role, msg: Message) {
        self.command(Cmd::Raw { session, to, msg });
    }

    fn open_session_with_id(&self, session: u64) -> Result<Session, NetError> {
        let (tx, rx) = channel();
        self.command(Cmd::Open { session, reply: tx });
        rx.recv_timeout(self.timeout)
            .map_err(|_| NetError::Timeout {
                peer: Role::Server,
                seconds: self.timeout.as_secs_f64(),
            })?
    }

    /// Whether the long-lived link to `role` is up.
    pub fn linked(&self, role: Role) -> bool {
        self.links_up[role.index()].load(Ordering::Relaxed)
    }

    /// The next event (daemons), waiting at most `wait`.
    pub fn next_event(&self, wait: Duration) -> Option<NodeEvent> {
        self.events.recv_timeout(wait).ok()
    }

    /// Stops the loop; open connections are closed.
    pub fn shutdown(mut self) {
        self.command(Cmd::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.command(Cmd::Shutdown);
        }
    }
}

/// One message's bytes in its session's count of unsent bytes: released when the event loop
/// has handed the message to TLS, or drops it (a closed connection, an unroutable message).
/// [`Transport::flush`] waits for the count to reach zero.
pub(super) struct Unsent {
    window: Arc<[AtomicUsize; 3]>,
    peer: usize,
    bytes: usize,
}

impl Drop for Unsent {
    fn drop(&mut self) {
        self.window[self.peer].fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A session's transport: sends go to the loop's queues, receives wait on the session's inbox.
pub struct TcpTransport {
    pub(super) role: Role,
    pub(super) session: u64,
    pub(super) cmd: Sender<Cmd>,
    pub(super) waker: Arc<Waker>,
    pub(super) inbox: [Option<Receiver<InboxItem>>; 3],
    pub(super) timeout: Duration,
    /// Simulated one-way latency ([`NodeConfig::latency`]).
    pub(super) latency: Latency,
    /// Bytes queued per peer and not yet handed to TLS.
    pub(super) unsent: Arc<[AtomicUsize; 3]>,
}

impl TcpTransport {
    /// Bytes of this session's messages to `to` that the event loop has not yet handed to TLS.
    pub fn unsent(&self, to: Role) -> usize {
        self.unsent[to.index()].load(Ordering::Acquire)
    }
}

impl Transport for TcpTransport {
    fn role(&self) -> Role {
        self.role
    }

    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError> {
        let bytes = msg.payload.len();
        self.unsent[to.index()].fetch_add(bytes, Ordering::AcqRel);
        let unsent = Unsent {
            window: self.unsent.clone(),
            peer: to.index(),
            bytes,
        };
        self.cmd
            .send(Cmd::Send {
                session: self.session,
                to,
                msg,
                unsent,
            })
            .map_err(|_| NetError::Disconnected { peer: to })?;
        let _ = self.waker.wake();
        Ok(())
    }

    fn flush(&mut self, to: Role) -> Result<(), NetError> {
        // The loop drops what it cannot send, so this ends even when the peer is gone (the
        // next receive reports that).
        let deadline = Instant::now() + self.timeout;
        while self.unsent(to) > 0 {
            if Instant::now() > deadline {
                return Err(NetError::Timeout {
                    peer: to,
                    seconds: self.timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        let rx = self.inbox[from.index()]
            .as_ref()
            .ok_or(NetError::Disconnected { peer: from })?;
        match rx.recv_timeout(self.timeout) {
            Ok(Ok((arrived, msg))) => {
                let held = self.latency.from(from);
                if !held.is_zero() {
                    let ready = arrived + held;
                    let now = Instant::now();
                    if ready > now {
                        std::thread::sleep(ready - now);
                    }
                }
                Ok(msg)
            }
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Err(NetError::Timeout {
                peer: from,
                seconds: self.timeout.as_secs_f64(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(NetError::Disconnected { peer: from }),
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Drop {
            session: self.session,
        });
        let _ = self.waker.wake();
    }
}
