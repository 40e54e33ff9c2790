//! The event loop. It owns the listener and every connection, greets peers (role from the
//! certificate, program hash, protocol version), multiplexes sessions over connections by
//! session id (a session's frames are accepted only on its own connections, and a session
//! id is never opened twice), hands each session the TLS exporter values its fresh pair
//! secrets start from ([`super::keying`]), and reports a lost peer to every session that
//! needs it, so nothing waits forever.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ksnn_formats::{ContentHash, FrameKind};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::pki_types::ServerName;

use super::conn::{Conn, Incoming};
use super::control::{Control, PROTOCOL_VERSION};
use super::keying::{Session, insecure};
use crate::net::tls::{Identity, peer_role, role_name};
use crate::net::{Message, NetError, Transport};
use crate::prf::PairSecret;
use crate::role::Role;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const EXPORTER_LABEL: &[u8] = b"EXPORTER-ksnn-pair-secret";
/// Frames for sessions not opened yet (the other daemon may be ahead): at most this many.
const MAX_PENDING_FRAMES: usize = 4096;

/// Limits that keep one peer from taking a node down (`docs/operations.md` lists them with
/// their configuration keys).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Sessions open at once on a daemon.
    pub max_sessions: usize,
    /// Sessions open at once on one client connection.
    pub max_sessions_per_client: usize,
    /// Connections at once; a connection beyond it is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Connections still in their TLS handshake or greeting; when full, the oldest is closed,
    /// so a flood of silent connections cannot lock honest peers (or the P1–P2 link) out.
    pub max_unverified: usize,
    /// The same, per remote address: a flood from one address evicts only its own.
    pub max_unverified_per_address: usize,
    /// Time allowed for the TLS handshake and the greeting.
    pub handshake: Duration,
    /// A client connection with no open session and no message for this long is closed.
    pub idle: Duration,
    /// A heartbeat goes out on a connection quiet for this long ...
    pub heartbeat: Duration,
    /// ... and a peer that sends nothing at all for this long is taken for dead: its
    /// connection is closed and every session that needs it fails, naming it.
    pub dead_after: Duration,
    /// A session may last at most this long, however active (daemons).
    pub session_deadline: Duration,
    /// Bytes queued for one peer before it counts as not reading and is dropped.
    pub max_queued: usize,
    /// Bytes of frames parked for sessions that are not open yet, and how long they are kept.
    pub max_pending_bytes: usize,
    pub pending_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 64,
            max_sessions_per_client: 8,
            max_connections: 512,
            max_unverified: 64,
            max_unverified_per_address: 16,
            handshake: Duration::from_secs(5),
            idle: Duration::from_secs(300),
            heartbeat: Duration::from_secs(1),
            dead_after: Duration::from_secs(8),
            session_deadline: Duration::from_secs(24 * 3600),
            max_queued: 1 << 30,
            max_pending_bytes: 64 << 20,
            pending_ttl: Duration::from_secs(30),
        }
    }
}
/// Session ids a daemon remembers as used, so none is opened twice (oldest forgotten first;
/// ids are 64-bit random, and pair secrets are fresh anyway).
const MAX_USED_IDS: usize = 1 << 16;

/// How a node runs.
#[derive(Clone)]
pub struct NodeConfig {
    pub identity: Identity,
    pub listen: Option<SocketAddr>,
    pub program_hash: ContentHash,
    /// How long a session waits for a message, and a connect for its greeting.
    pub timeout: Duration,
    pub max_payload: u32,
    pub max_message: usize,
    pub limits: Limits,
}

/// What the loop tells the process.
pub enum NodeEvent {
    /// A client opened a session (daemons).
    Session(Session),
    /// Something worth a log line.
    Log(String),
}

type Inbox = Sender<Result<Message, NetError>>;
/// Where a connect waits for its answer.
type Reply = Sender<Result<(), NetError>>;

enum Cmd {
    Connect {
        role: Role,
        addr: SocketAddr,
        reply: Sender<Result<(), NetError>>,
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
    },
    Drop {
        session: u64,
    },
    Shutdown,
}

struct SessionEntry {
    /// Daemons: the client's connection.
    client: Option<Token>,
    inbox: [Option<Inbox>; 3],
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
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = match config.listen {
            Some(addr) => Some(TcpListener::bind(addr)?),
            None => None,
        };
        let local_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        let (cmd_tx, cmd_rx) = channel();
        let (ev_tx, ev_rx) = channel();
        let timeout = config.timeout;
        let links_up: Arc<[AtomicBool; 3]> = Arc::new(Default::default());
        let mut lp = Loop {
            links_up: links_up.clone(),
            poll,
            listener,
            conns: HashMap::new(),
            next: 2,
            links: [None, None, None],
            sessions: HashMap::new(),
            used: HashSet::new(),
            used_order: VecDeque::new(),
            pending: HashMap::new(),
            pending_frames: 0,
            pending_bytes: 0,
            refused: 0,
            last_report: Instant::now(),
            waiting: Vec::new(),
            again: Vec::new(),
            last_refusal: None,
            cmd_rx,
            cmd_tx: cmd_tx.clone(),
            waker: waker.clone(),
            events: ev_tx,
            role: config.identity.role,
            server_tls: config.identity.server_config().map_err(io::Error::other)?,
            client_tls: config.identity.client_config().map_err(io::Error::other)?,
            config,
        };
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

/// A session's transport: sends go to the loop's queues, receives wait on the session's inbox.
pub struct TcpTransport {
    role: Role,
    session: u64,
    cmd: Sender<Cmd>,
    waker: Arc<Waker>,
    inbox: [Option<Receiver<Result<Message, NetError>>>; 3],
    timeout: Duration,
}

impl Transport for TcpTransport {
    fn role(&self) -> Role {
        self.role
    }

    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError> {
        self.cmd
            .send(Cmd::Send {
                session: self.session,
                to,
                msg,
            })
            .map_err(|_| NetError::Disconnected { peer: to })?;
        let _ = self.waker.wake();
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        let rx = self.inbox[from.index()]
            .as_ref()
            .ok_or(NetError::Disconnected { peer: from })?;
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
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

struct Loop {
    links_up: Arc<[AtomicBool; 3]>,
    poll: Poll,
    listener: Option<TcpListener>,
    conns: HashMap<Token, Conn>,
    next: usize,
    /// Connection to each peer role that is a long-lived link (not a daemon's client).
    links: [Option<Token>; 3],
    sessions: HashMap<u64, SessionEntry>,
    /// Daemons: session ids opened so far (bounded, oldest first in `used_order`).
    used: HashSet<u64>,
    used_order: VecDeque<u64>,
    /// Frames that arrived before their session opened here, with when the first came.
    pending: HashMap<u64, (Instant, Vec<(Role, Message)>)>,
    pending_frames: usize,
    pending_bytes: usize,
    /// Connections and frames turned away since the last report (logged once a second).
    refused: usize,
    last_report: Instant,
    /// Connects waiting for the peer's greeting.
    waiting: Vec<(Token, Reply, Instant)>,
    /// Connections with unread input left by their read budget.
    again: Vec<Token>,
    /// The reason of the latest refusal, for the once-a-second report.
    last_refusal: Option<String>,
    cmd_rx: Receiver<Cmd>,
    cmd_tx: Sender<Cmd>,
    waker: Arc<Waker>,
    events: Sender<NodeEvent>,
    role: Role,
    server_tls: Arc<rustls::ServerConfig>,
    client_tls: Arc<rustls::ClientConfig>,
    config: NodeConfig,
}

impl Loop {
    fn log(&self, s: String) {
        let _ = self.events.send(NodeEvent::Log(s));
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            // Connections that stopped reading at their budget go on without a new event.
            let wait = if self.again.is_empty() {
                Duration::from_millis(500)
            } else {
                Duration::ZERO
            };
            for t in std::mem::take(&mut self.again) {
                self.ready(t);
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.log(format!("event loop stopped: {e}"));
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    t => self.ready(t),
                }
            }
            while let Ok(cmd) = self.cmd_rx.try_recv() {
                if let Cmd::Shutdown = cmd {
                    return self.drain();
                }
                self.command(cmd);
            }
            self.expire_waiting();
            self.tick();
            // Only connections with something to do: output, a greeting due, or a close.
            let tokens: Vec<Token> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.has_output()
                        || c.closing
                        || (c.peer.is_some() && !c.greet_sent)
                        || c.tls.is_handshaking()
                })
                .map(|(t, _)| *t)
                .collect();
            for t in tokens {
                self.flush(t);
            }
        }
    }

    /// On shutdown: send what is queued (a client's last `Close`, say) and say goodbye, for at
    /// most a second.
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let flush_all = |conns: &mut HashMap<Token, Conn>| {
            while Instant::now() < deadline {
                let mut pending = false;
                for c in conns.values_mut() {
                    if c.on_writable().is_ok() && c.has_output() {
                        pending = true;
                    }
                }
                if !pending {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        flush_all(&mut self.conns);
        for c in self.conns.values_mut() {
            c.tls.send_close_notify();
        }
        flush_all(&mut self.conns);
    }

    /// Periodic upkeep: close connections that did not greet in time, drop parked frames that
    /// outlived their time, retry an accept that failed for lack of descriptors, and report
    /// what was turned away.
    fn tick(&mut self) {
        let limits = self.config.limits.clone();
        let late: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.greeted && c.opened.elapsed() > limits.handshake)
            .map(|(t, _)| *t)
            .collect();
        for t in late {
            self.close(
                t,
                format!(
                    "no TLS handshake and greeting within {:.0} s",
                    limits.handshake.as_secs_f64()
                ),
            );
        }
        // Liveness: heartbeats out on quiet connections, silent peers closed.
        let ping = Control::Ping.message();
        let mut dead = Vec::new();
        for (t, c) in self.conns.iter_mut() {
            if !c.greeted {
                continue;
            }
            if c.last_heard.elapsed() > limits.dead_after {
                dead.push(*t);
            } else if c.last_sent.elapsed() >= limits.heartbeat {
                c.queue(0, ping.kind, 0, ping.payload.clone());
            }
        }
        for t in dead {
            self.close(
                t,
                format!(
                    "nothing heard for {:.0} s, not even a heartbeat: taken for dead",
                    limits.dead_after.as_secs_f64()
                ),
            );
        }
        if self.role != Role::Client {
            let idle: Vec<Token> = self
                .conns
                .iter()
                .filter(|(t, c)| {
                    c.greeted
                        && c.peer == Some(Role::Client)
                        && c.last_active.elapsed() > limits.idle
                        && !self.sessions.values().any(|s| s.client == Some(**t))
                })
                .map(|(t, _)| *t)
                .collect();
            for t in idle {
                self.close(
                    t,
                    format!(
                        "idle for {:.0} s with no session",
                        limits.idle.as_secs_f64()
                    ),
                );
            }
        }
        let stale: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (at, _))| at.elapsed() > limits.pending_ttl)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.unpark(id);
        }
        if self.listener.is_some() {
            self.accept();
        }
        if self.refused > 0 && self.last_report.elapsed() > Duration::from_secs(1) {
            let last = self.last_refusal.take().unwrap_or_default();
            self.log(format!(
                "turned away {} connections, sessions or frames over the limits in the last second{}{last}",
                self.refused,
                if last.is_empty() { "" } else { "; the latest: " }
            ));
            self.refused = 0;
            self.last_report = Instant::now();
        }
    }

    /// Removes the frames parked for `session`, returning them.
    fn unpark(&mut self, session: u64) -> Vec<(Role, Message)> {
        let frames = self
            .pending
            .remove(&session)
            .map(|(_, f)| f)
            .unwrap_or_default();
        self.pending_frames -= frames.len();
        self.pending_bytes -= frames.iter().map(|(_, m)| m.payload.len()).sum::<usize>();
        frames
    }

    /// Makes room for one more connection that has not greeted yet, from `from`: if the
    /// waiting ones are at their limit (in total, or from that address; or `always`), closes
    /// the oldest that has sent nothing for a grace period (an honest peer starts its handshake
    /// at once, so a flood of silent connections evicts itself), else the oldest that has. A
    /// flood from one address evicts only its own. False when every candidate is new: then the
    /// new connection is refused.
    fn make_room_for_unverified(&mut self, from: std::net::IpAddr, always: bool) -> bool {
        const GRACE: Duration = Duration::from_millis(250);
        let limits = &self.config.limits;
        let unverified: Vec<(Token, bool, Instant, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.greeted)
            .map(|(t, c)| (*t, c.heard, c.opened, c.ip == Some(from)))
            .collect();
        let same = unverified.iter().filter(|u| u.3).count();
        let per_address = same >= limits.max_unverified_per_address;
        if !always && !per_address && unverified.len() < limits.max_unverified {
            return true;
        }
        let oldest = |silent: bool| {
            unverified
                .iter()
                .filter(|(_, heard, at, same)| {
                    (*same || !per_address) && *heard != silent && (!silent || at.elapsed() > GRACE)
                })
                .min_by_key(|(_, _, at, _)| *at)
                .map(|(t, _, _, _)| *t)
        };
        let Some(t) = oldest(true).or_else(|| oldest(false)) else {
            return false;
        };
        self.refused += 1;
        self.last_refusal =
            Some("evicted a connection: too many waiting for their greeting".into());
        self.close(
            t,
            "evicted: too many connections waiting for their greeting".into(),
        );
        true
    }

    fn accept(&mut self) {
        loop {
            let Some(l) = self.listener.as_ref() else {
                return;
            };
            match l.accept() {
                Ok((sock, addr)) => {
                    // At the total limit, an unverified connection makes way if one can, so
                    // verified peers (the P1–P2 link among them) can always come back.
                    if self.conns.len() >= self.config.limits.max_connections
                        && !self.make_room_for_unverified(addr.ip(), true)
                    {
                        // Dropping the socket closes it.
                        self.refused += 1;
                        self.last_refusal = Some(format!(
                            "closed a connection from {addr}: {} open (limit)",
                            self.conns.len()
                        ));
                        continue;
                    }
                    if !self.make_room_for_unverified(addr.ip(), false) {
                        self.refused += 1;
                        self.last_refusal = Some(format!(
                            "closed a connection from {addr}: too many new ones waiting for their greeting"
                        ));
                        continue;
                    }
                    let tls = match rustls::ServerConnection::new(self.server_tls.clone()) {
                        Ok(c) => c,
                        Err(e) => return self.log(format!("TLS set-up for {addr} failed: {e}")),
                    };
                    let t = self.add(sock, rustls::Connection::Server(tls), None);
                    if let Some(c) = self.conns.get_mut(&t) {
                        c.ip = Some(addr.ip());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.log(format!("accept failed: {e}")),
            }
        }
    }

    fn add(&mut self, mut sock: TcpStream, tls: rustls::Connection, expect: Option<Role>) -> Token {
        let t = Token(self.next);
        self.next += 1;
        let _ = sock.set_nodelay(true);
        keepalive(&sock);
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut sock, t, Interest::READABLE | Interest::WRITABLE)
        {
            self.log(format!("cannot watch a socket: {e}"));
        }
        let mut c = Conn::new(sock, tls, self.config.max_payload, self.config.max_message);
        c.peer = expect;
        self.conns.insert(t, c);
        t
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Connect { role, addr, reply } => {
                let name = ServerName::try_from(role_name(role)).expect("static name");
                let sock = match TcpStream::connect(addr) {
                    Ok(s) => s,
                    Err(e) => {
                        return drop(reply.send(Err(NetError::Io {
                            peer: role,
                            source: e,
                        })));
                    }
                };
                let tls = match rustls::ClientConnection::new(self.client_tls.clone(), name) {
                    Ok(c) => c,
                    Err(e) => {
                        let err = io::Error::other(e.to_string());
                        return drop(reply.send(Err(NetError::Io {
                            peer: role,
                            source: err,
                        })));
                    }
                };
                let t = self.add(sock, rustls::Connection::Client(tls), Some(role));
                self.waiting.push((t, reply, Instant::now()));
            }
            Cmd::Open { session, reply } => {
                let r = self.open(session);
                let _ = reply.send(r);
            }
            Cmd::Send { session, to, msg } => self.send(session, to, msg),
            #[cfg(feature = "test-utils")]
            Cmd::Raw { session, to, msg } => {
                if let Some(c) = self.links[to.index()].and_then(|t| self.conns.get_mut(&t)) {
                    c.queue(session, msg.kind, msg.depth, msg.payload);
                }
            }
            Cmd::Drop { session } => {
                self.sessions.remove(&session);
                self.unpark(session);
            }
            Cmd::Shutdown => {}
        }
    }

    /// Where a session's message to `to` goes.
    fn route(&self, session: u64, to: Role) -> Option<Token> {
        if to == Role::Client && self.role != Role::Client {
            return self.sessions.get(&session)?.client;
        }
        self.links[to.index()]
    }

    fn send(&mut self, session: u64, to: Role, msg: Message) {
        let Some(t) = self.route(session, to) else {
            return self.deliver_error(session, to, NetError::Disconnected { peer: to });
        };
        let Some(c) = self.conns.get_mut(&t) else {
            return self.deliver_error(session, to, NetError::Disconnected { peer: to });
        };
        c.queue(session, msg.kind, msg.depth, msg.payload);
        let (queued, max) = (c.queued, self.config.limits.max_queued);
        if queued > max {
            self.close(
                t,
                format!(
                    "{to} does not read: {} MiB queued for it (limit {} MiB)",
                    queued >> 20,
                    max >> 20
                ),
            );
        }
    }

    fn deliver_error(&mut self, session: u64, peer: Role, e: NetError) {
        if let Some(s) = self.sessions.get(&session)
            && let Some(inbox) = &s.inbox[peer.index()]
        {
            let _ = inbox.send(Err(e));
        }
    }

    /// The exporter value of connection `t` for `session`: secret to its two ends, made fresh
    /// by the session's nonces ([`Session::establish`]).
    fn exported(&self, t: Token, session: u64) -> Option<PairSecret> {
        let c = self.conns.get(&t)?;
        let mut out = [0u8; 32];
        c.tls
            .export_keying_material(&mut out[..], EXPORTER_LABEL, Some(&session.to_le_bytes()))
            .ok()?;
        Some(PairSecret(out))
    }

    fn new_session(&mut self, session: u64, client: Option<Token>) -> Result<Session, NetError> {
        let me = self.role;
        let mut exported: [Option<PairSecret>; 3] = Default::default();
        for peer in me.others() {
            let t = if peer == Role::Client {
                client
            } else {
                self.links[peer.index()]
            };
            let t = t.ok_or(NetError::Disconnected { peer })?;
            exported[peer.index()] = Some(
                self.exported(t, session)
                    .ok_or(NetError::Disconnected { peer })?,
            );
        }
        let mut inbox: [Option<Inbox>; 3] = [None, None, None];
        let mut rx: [Option<Receiver<Result<Message, NetError>>>; 3] = [None, None, None];
        for peer in me.others() {
            let (tx, r) = channel();
            inbox[peer.index()] = Some(tx);
            rx[peer.index()] = Some(r);
        }
        self.sessions
            .insert(session, SessionEntry { client, inbox });
        // Replay what the other daemon sent before the client's open reached us.
        for (from, m) in self.unpark(session) {
            if let Some(inbox) = &self.sessions[&session].inbox[from.index()] {
                let _ = inbox.send(Ok(m));
            }
        }
        let transport = TcpTransport {
            role: me,
            session,
            cmd: self.cmd_tx.clone(),
            waker: self.waker.clone(),
            inbox: rx,
            timeout: self.config.timeout,
        };
        Ok(Session {
            id: session,
            transport,
            exported,
        })
    }

    fn open(&mut self, session: u64) -> Result<Session, NetError> {
        for peer in [Role::Server, Role::Helper] {
            let t = self.links[peer.index()].ok_or(NetError::Disconnected { peer })?;
            let m = Control::Open.message();
            self.conns
                .get_mut(&t)
                .expect("linked")
                .queue(session, m.kind, 0, m.payload);
        }
        self.new_session(session, None)
    }

    fn expire_waiting(&mut self) {
        let timeout = self.config.timeout;
        let (expired, keep): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|(_, _, at)| at.elapsed() > timeout);
        self.waiting = keep;
        for (t, reply, _) in expired {
            let peer = self
                .conns
                .get(&t)
                .and_then(|c| c.peer)
                .unwrap_or(Role::Server);
            let _ = reply.send(Err(NetError::Timeout {
                peer,
                seconds: timeout.as_secs_f64(),
            }));
            self.close(t, "no greeting in time".into());
        }
    }

    fn ready(&mut self, t: Token) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        // Backpressure: a client that does not drain what it is sent is not read from until
        // it does (its queue is bounded by `max_queued`, then it is dropped).
        if c.peer == Some(Role::Client) && self.role != Role::Client {
            c.paused = c.queued > self.config.limits.max_queued / 4;
        }
        if c.paused {
            return;
        }
        let result = c.on_readable();
        match result {
            Ok((messages, more)) => {
                if more && !self.again.contains(&t) {
                    self.again.push(t);
                }
                if self
                    .conns
                    .get(&t)
                    .is_some_and(|c| c.peer.is_none() && !c.tls.is_handshaking())
                {
                    self.identify(t);
                }
                for m in messages {
                    self.incoming(t, m);
                }
                if self.conns.get(&t).is_some_and(|c| c.closing) {
                    self.close(t, "peer closed the connection".into());
                }
            }
            Err(e) => self.close(t, e.to_string()),
        }
    }

    /// After the handshake: which role the certificate names, and the greeting.
    fn identify(&mut self, t: Token) {
        let allowed: &[Role] = match self.role {
            Role::Server => &[Role::Client, Role::Helper],
            Role::Helper => &[Role::Client],
            Role::Client => &[],
        };
        let c = self.conns.get_mut(&t).expect("present");
        let Some(role) = peer_role(c.tls.peer_certificates(), allowed) else {
            return self.close(
                t,
                "peer's certificate names no role allowed to connect here".into(),
            );
        };
        c.peer = Some(role);
        c.name = crate::net::tls::client_name(c.tls.peer_certificates());
        // Clients never take the last slots: they are the links' (P1–P2) to come back in.
        const LINK_ROOM: usize = 2;
        if role == Role::Client && self.role != Role::Client {
            let clients = self
                .conns
                .values()
                .filter(|c| c.peer == Some(Role::Client))
                .count();
            let cap = self
                .config
                .limits
                .max_connections
                .saturating_sub(LINK_ROOM)
                .max(1);
            if clients > cap {
                self.refuse(
                    t,
                    format!("{clients} client connections are open (limit {cap})"),
                );
            }
        }
    }

    fn refuse(&mut self, t: Token, reason: String) {
        if let Some(c) = self.conns.get_mut(&t) {
            c.queue(0, FrameKind::Abort, 0, reason.clone().into_bytes());
            c.closing = true;
        }
        self.log(format!("refused a peer: {reason}"));
        self.fail_waiting(t, reason);
    }

    fn fail_waiting(&mut self, t: Token, reason: String) {
        let peer = self
            .conns
            .get(&t)
            .and_then(|c| c.peer)
            .unwrap_or(Role::Server);
        if let Some(i) = self.waiting.iter().position(|(w, _, _)| *w == t) {
            let (_, reply, _) = self.waiting.swap_remove(i);
            let _ = reply.send(Err(NetError::Aborted { peer, reason }));
        }
    }

    fn incoming(&mut self, t: Token, m: Incoming) {
        let Some(peer) = self.conns.get(&t).and_then(|c| c.peer) else {
            return;
        };
        if m.session != 0
            && let Some(c) = self.conns.get_mut(&t)
        {
            c.last_active = Instant::now();
        }
        let greeted = self.conns[&t].greeted;
        if !greeted {
            return self.greeting(t, peer, m);
        }
        let msg = Message {
            kind: m.kind,
            depth: m.depth,
            payload: m.payload,
        };
        if m.session == 0 {
            if m.kind == FrameKind::Abort {
                let reason = crate::net::peer_text(&msg.payload);
                self.close(t, format!("{peer} closed the link: {reason}"));
            }
            return;
        }
        if !self.sessions.contains_key(&m.session) {
            if peer == Role::Client && self.role != Role::Client && msg.kind == FrameKind::Hello {
                if let Some(Control::Open) = Control::decode(&msg.payload) {
                    let limits = &self.config.limits;
                    let on_conn = self
                        .sessions
                        .values()
                        .filter(|s| s.client == Some(t))
                        .count();
                    let full = if on_conn >= limits.max_sessions_per_client {
                        Some(format!(
                            "{on_conn} sessions are open on this connection (limit {})",
                            limits.max_sessions_per_client
                        ))
                    } else if self.sessions.len() >= limits.max_sessions {
                        Some(format!(
                            "{} sessions are open (limit {})",
                            self.sessions.len(),
                            limits.max_sessions
                        ))
                    } else {
                        None
                    };
                    if let Some(why) = full {
                        let reason = format!(
                            "{} refuses session {}: {why}; try again later",
                            self.role,
                            short_id(m.session)
                        );
                        self.refused += 1;
                        self.last_refusal = Some(reason.clone());
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.queue(m.session, FrameKind::Abort, 0, reason.into_bytes());
                        }
                        return;
                    }
                    if !self.remember(m.session) {
                        let reason = format!(
                            "{} refuses session {}: the id was used before",
                            self.role,
                            short_id(m.session)
                        );
                        self.log(reason.clone());
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.queue(m.session, FrameKind::Abort, 0, reason.into_bytes());
                        }
                        return;
                    }
                    match self.new_session(m.session, Some(t)) {
                        Ok(s) => {
                            let who = self.conns.get(&t).and_then(|c| c.name.clone());
                            if let Some(name) = who {
                                self.log(format!(
                                    "session {} opened by client `{name}`",
                                    short_id(m.session)
                                ));
                            }
                            let _ = self.events.send(NodeEvent::Session(s));
                        }
                        Err(e) => {
                            let reason = format!("{} cannot open the session: {e}", self.role);
                            if let Some(c) = self.conns.get_mut(&t) {
                                c.queue(m.session, FrameKind::Abort, 0, reason.into_bytes());
                            }
                        }
                    }
                }
                return;
            }
            // Park a daemon's frame for a session that may still open here; never a client's,
            // never one for a session that has ended, and never beyond the caps.
            let fits = self.pending_frames < MAX_PENDING_FRAMES
                && self.pending_bytes + msg.payload.len() <= self.config.limits.max_pending_bytes;
            if peer != Role::Client && !self.used.contains(&m.session) && fits {
                self.pending_bytes += msg.payload.len();
                self.pending_frames += 1;
                self.pending
                    .entry(m.session)
                    .or_insert_with(|| (Instant::now(), Vec::new()))
                    .1
                    .push((peer, msg));
            } else if peer != Role::Client && !self.used.contains(&m.session) {
                self.refused += 1;
            }
            return;
        }
        // A session's frames count only on its own connections: the client's that opened it,
        // and the current link to a daemon.
        let entry = &self.sessions[&m.session];
        let own = if peer == Role::Client && self.role != Role::Client {
            entry.client == Some(t)
        } else {
            self.links[peer.index()] == Some(t)
        };
        if !own {
            return self.log(format!(
                "dropped a {:?} frame for session {} from {peer} on a connection that is not the session's",
                msg.kind,
                short_id(m.session)
            ));
        }
        if let Some(inbox) = &entry.inbox[peer.index()] {
            let _ = inbox.send(Ok(msg));
        }
    }

    /// Records `session` as used; false if it was used before.
    fn remember(&mut self, session: u64) -> bool {
        if !self.used.insert(session) {
            return false;
        }
        self.used_order.push_back(session);
        if self.used_order.len() > MAX_USED_IDS
            && let Some(old) = self.used_order.pop_front()
        {
            self.used.remove(&old);
        }
        true
    }

    fn greeting(&mut self, t: Token, peer: Role, m: Incoming) {
        if m.kind == FrameKind::Abort {
            let reason = crate::net::peer_text(&m.payload);
            self.fail_waiting(t, reason.clone());
            return self.close(t, format!("{peer} refused us: {reason}"));
        }
        let Some(Control::Hello {
            role,
            program,
            protocol,
        }) = Control::decode(&m.payload)
        else {
            return self.refuse(t, "expected a greeting".into());
        };
        if role != peer as u8 {
            return self.refuse(
                t,
                format!("greeting claims role {role} but the certificate is {peer}'s"),
            );
        }
        if protocol != PROTOCOL_VERSION {
            return self.refuse(
                t,
                format!(
                    "protocol version mismatch: {} speaks {protocol}, {} speaks {PROTOCOL_VERSION}",
                    peer, self.role
                ),
            );
        }
        if program != self.config.program_hash.0 {
            return self.refuse(
                t,
                format!(
                    "program hash mismatch: {peer} has {}, {} has {}",
                    ContentHash(program).short(),
                    self.role,
                    self.config.program_hash.short()
                ),
            );
        }
        let c = self.conns.get_mut(&t).expect("present");
        c.greeted = true;
        let is_link = peer != Role::Client || self.role == Role::Client;
        if let Some(i) = self.waiting.iter().position(|(w, _, _)| *w == t) {
            let (_, reply, _) = self.waiting.swap_remove(i);
            let _ = reply.send(Ok(()));
        }
        if is_link {
            self.links_up[peer.index()].store(true, Ordering::Relaxed);
            if let Some(old) = self.links[peer.index()].replace(t)
                && old != t
            {
                self.close(old, "replaced by a new connection".into());
            }
            self.log(format!("linked with {peer}"));
        }
    }

    fn flush(&mut self, t: Token) {
        let hello = Control::Hello {
            role: self.role as u8,
            program: self.config.program_hash.0,
            protocol: PROTOCOL_VERSION,
        };
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        // Both sides greet once the handshake is done and the peer's role is known.
        if c.peer.is_some() && !c.tls.is_handshaking() && !c.greet_sent {
            let m = hello.message();
            c.queue(0, m.kind, 0, m.payload);
            c.greet_sent = true;
        }
        if let Err(e) = c.on_writable() {
            return self.close(t, e.to_string());
        }
        if c.paused && c.queued <= self.config.limits.max_queued / 8 {
            // Drained: reading resumes (re-registering reports input that waited).
            c.paused = false;
        }
        if c.closing && !c.has_output() {
            return self.close(t, "closed after flushing".into());
        }
        let interest = c.interest();
        let _ = self.poll.registry().reregister(&mut c.sock, t, interest);
    }

    fn close(&mut self, t: Token, reason: String) {
        let Some(mut c) = self.conns.remove(&t) else {
            return;
        };
        let _ = c.on_writable();
        let _ = self.poll.registry().deregister(&mut c.sock);
        let peer = c.peer;
        self.fail_waiting_after_close(t, &reason, peer);
        let Some(peer) = peer else {
            // Counted, not logged one by one: a flood of them must not flood the log.
            self.refused += 1;
            self.last_refusal = Some(format!("dropped an unidentified connection: {reason}"));
            return;
        };
        let who = c
            .name
            .as_deref()
            .map(|n| format!(" `{n}`"))
            .unwrap_or_default();
        self.log(format!("lost {peer}{who}: {reason}"));
        let was_link = self.links[peer.index()] == Some(t);
        if was_link {
            self.links[peer.index()] = None;
            self.links_up[peer.index()].store(false, Ordering::Relaxed);
        }
        let affected: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| was_link || s.client == Some(t))
            .map(|(id, _)| *id)
            .collect();
        // Every inbox of the session hears it: a thread waiting on another party (which in
        // turn waits on this one) learns at once who is gone, instead of timing out and
        // blaming the party it was waiting on.
        for id in affected {
            for from in Role::ALL {
                self.deliver_error(id, from, NetError::Disconnected { peer });
            }
        }
    }

    fn fail_waiting_after_close(&mut self, t: Token, reason: &str, peer: Option<Role>) {
        if let Some(i) = self.waiting.iter().position(|(w, _, _)| *w == t) {
            let (_, reply, _) = self.waiting.swap_remove(i);
            let _ = reply.send(Err(NetError::ConnectFailed {
                peer: peer.unwrap_or(Role::Server),
                reason: reason.to_string(),
            }));
        }
    }
}

/// A session id for logs: enough to tell sessions apart, not enough to address one.
pub fn short_id(session: u64) -> String {
    format!("{:04x}…", session >> 48)
}

/// TCP keepalive on a connection: the kernel probes a silent peer after 30 s, every 10 s, and
/// gives up after 3 unanswered probes. Heartbeats already tell a dead peer from a slow one;
/// this also clears connections whose peer vanished without a FIN under a stopped loop.
fn keepalive(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt reads one c_int from the pointer for the given length, on a
        // descriptor this connection owns.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}
