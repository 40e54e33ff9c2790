//! The event loop: one mio poll over the listener and every connection. It feeds connections
//! their readiness, runs the commands of [`super::node`]'s handles, closes connections, and
//! does the periodic upkeep (greeting deadlines, heartbeats, dead and idle peers, parked
//! frames, refusal reports). Taking connections in is [`super::admission`]'s job, greeting a
//! peer [`super::greeting`]'s, and sessions are [`super::sessions`]'.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::pki_types::ServerName;

use super::conn::{Conn, ConnError};
use super::control::Control;
use super::node::{Cmd, NodeConfig, NodeEvent, Reply};
use super::sessions::{Parked, SessionEntry};
use crate::net::NetError;
use crate::net::tls::role_name;
use crate::role::Role;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Upkeep ([`Loop::tick`]) runs at most this often, not on every wake: under load the loop
/// wakes per message, and the upkeep walks every connection. Heartbeats (1 s by default) and
/// deadlines (seconds) are late by at most this much.
const TICK: Duration = Duration::from_millis(100);

/// The loop's state; its methods are spread over this module ([`Loop::run`], upkeep, sockets),
/// [`super::greeting`] and [`super::sessions`].
pub(super) struct Loop {
    pub(super) links_up: Arc<[AtomicBool; 3]>,
    pub(super) poll: Poll,
    pub(super) listener: Option<TcpListener>,
    pub(super) conns: HashMap<Token, Conn>,
    pub(super) next: usize,
    /// Connection to each peer role that is a long-lived link (not a daemon's client).
    pub(super) links: [Option<Token>; 3],
    pub(super) sessions: HashMap<u64, SessionEntry>,
    /// Daemons: session ids opened so far (bounded, oldest first in `used_order`).
    pub(super) used: HashSet<u64>,
    pub(super) used_order: VecDeque<u64>,
    /// Frames that arrived before their session opened here, with when the first came.
    pub(super) pending: HashMap<u64, (Instant, Vec<Parked>)>,
    pub(super) pending_frames: usize,
    pub(super) pending_bytes: usize,
    /// Connections and frames turned away since the last report (logged once a second).
    pub(super) refused: usize,
    pub(super) last_report: Instant,
    /// When [`Loop::tick`] last ran.
    pub(super) last_tick: Instant,
    /// Connects waiting for the peer's greeting.
    pub(super) waiting: Vec<(Token, Reply, Instant)>,
    /// Connections with unread input left by their read budget.
    pub(super) again: Vec<Token>,
    /// The reason of the latest refusal, for the once-a-second report.
    pub(super) last_refusal: Option<String>,
    pub(super) cmd_rx: Receiver<Cmd>,
    pub(super) cmd_tx: Sender<Cmd>,
    pub(super) waker: Arc<Waker>,
    pub(super) events: Sender<NodeEvent>,
    pub(super) role: Role,
    pub(super) server_tls: Arc<rustls::ServerConfig>,
    pub(super) client_tls: Arc<rustls::ClientConfig>,
    pub(super) config: NodeConfig,
}

impl Loop {
    pub(super) fn new(
        config: NodeConfig,
        cmd_rx: Receiver<Cmd>,
        cmd_tx: Sender<Cmd>,
        events: Sender<NodeEvent>,
        links_up: Arc<[AtomicBool; 3]>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = match config.listen {
            Some(addr) => Some(TcpListener::bind(addr)?),
            None => None,
        };
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(Loop {
            links_up,
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
            last_tick: Instant::now(),
            waiting: Vec::new(),
            again: Vec::new(),
            last_refusal: None,
            cmd_rx,
            cmd_tx,
            waker,
            events,
            role: config.identity.role,
            server_tls: config.identity.server_config().map_err(io::Error::other)?,
            client_tls: config.identity.client_config().map_err(io::Error::other)?,
            config,
        })
    }

    /// The address the listener is bound to (port 0 resolved).
    pub(super) fn local_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.listener.as_ref().map(|l| l.local_addr()).transpose()
    }

    pub(super) fn log(&self, s: String) {
        let _ = self.events.send(NodeEvent::Log(s));
    }

    pub(super) fn run(&mut self) {
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

    /// Periodic upkeep, at most every [`TICK`]: close connections that did not greet in time,
    /// send heartbeats and close silent peers, close idle clients, drop parked frames that
    /// outlived their time, retry an accept that failed for lack of descriptors, and report
    /// what was turned away.
    fn tick(&mut self) {
        if self.last_tick.elapsed() < TICK {
            return;
        }
        self.last_tick = Instant::now();
        let limits = self.config.limits.clone();
        self.close_each(
            |_, c| !c.greeted && c.opened.elapsed() > limits.handshake,
            &format!(
                "no TLS handshake and greeting within {:.0} s",
                limits.handshake.as_secs_f64()
            ),
        );
        // Liveness: silent peers closed, heartbeats out on quiet connections.
        self.close_each(
            |_, c| c.greeted && c.last_heard.elapsed() > limits.dead_after,
            &format!(
                "nothing heard for {:.0} s, not even a heartbeat: taken for dead",
                limits.dead_after.as_secs_f64()
            ),
        );
        let ping = Control::Ping.message();
        for c in self.conns.values_mut() {
            if c.greeted && c.last_sent.elapsed() >= limits.heartbeat {
                c.queue(0, ping.kind, 0, ping.payload.clone());
            }
        }
        if self.role != Role::Client {
            let busy: HashSet<Token> = self.sessions.values().filter_map(|s| s.client).collect();
            self.close_each(
                |t, c| {
                    c.greeted
                        && c.peer == Some(Role::Client)
                        && c.last_active.elapsed() > limits.idle
                        && !busy.contains(&t)
                },
                &format!(
                    "idle for {:.0} s with no session",
                    limits.idle.as_secs_f64()
                ),
            );
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

    /// Closes every connection `pick` chooses, for `reason`.
    fn close_each(&mut self, pick: impl Fn(Token, &Conn) -> bool, reason: &str) {
        let chosen: Vec<Token> = self
            .conns
            .iter()
            .filter(|(t, c)| pick(**t, c))
            .map(|(t, _)| *t)
            .collect();
        for t in chosen {
            self.close(t, reason.to_string());
        }
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
            Cmd::Send {
                session,
                to,
                msg,
                unsent,
            } => self.send(session, to, msg, unsent),
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
            // A connection that ends without having sent a byte is a reachability probe
            // (`ksnn-party health`, a load balancer's check): it cost nothing and is not a
            // refusal, so it is dropped without counting or a log line.
            Err(ConnError::Closed)
                if self
                    .conns
                    .get(&t)
                    .is_some_and(|c| c.ip.is_some() && c.peer.is_none() && !c.heard) =>
            {
                if let Some(mut c) = self.conns.remove(&t) {
                    let _ = self.poll.registry().deregister(&mut c.sock);
                }
            }
            Err(e) => self.close(t, e.to_string()),
        }
    }

    fn flush(&mut self, t: Token) {
        let hello = self.hello();
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        // Both sides greet once the handshake is done and the peer's role is known.
        if c.peer.is_some() && !c.tls.is_handshaking() && !c.greet_sent {
            c.queue(0, hello.kind, 0, hello.payload);
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

    pub(super) fn close(&mut self, t: Token, reason: String) {
        let Some(mut c) = self.conns.remove(&t) else {
            return;
        };
        let _ = c.on_writable();
        let _ = self.poll.registry().deregister(&mut c.sock);
        let peer = c.peer;
        self.answer_connect(
            t,
            Err(NetError::ConnectFailed {
                peer: peer.unwrap_or(Role::Server),
                reason: reason.clone(),
            }),
        );
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
}
