//! The session table and session control: a client's request to open a session (within the
//! limits, never an id twice), each session's inboxes, the routing of its frames (accepted
//! only on its own connections), frames parked for a session not open here yet, and the TLS
//! exporter values its fresh pair secrets start from ([`super::keying`]).

use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use ksnn_formats::FrameKind;
use mio::Token;

use super::conn::Incoming;
use super::control::Control;
use super::event_loop::Loop;
use super::keying::Session;
use super::node::{Inbox, InboxItem, NodeEvent, TcpTransport, Unsent};
use crate::net::{Message, NetError};
use crate::prf::PairSecret;
use crate::role::Role;

const EXPORTER_LABEL: &[u8] = b"EXPORTER-ksnn-pair-secret";
/// Frames for sessions not opened yet (the other daemon may be ahead): at most this many.
const MAX_PENDING_FRAMES: usize = 4096;
/// Session ids a daemon remembers as used, so none is opened twice (oldest forgotten first;
/// ids are 64-bit random, and pair secrets are fresh anyway).
const MAX_USED_IDS: usize = 1 << 16;

/// A frame parked for a session not open here yet: who sent it, when it arrived, and the
/// message.
pub(super) type Parked = (Role, Instant, Message);

/// One open session: where its frames come from and go to.
pub(super) struct SessionEntry {
    /// Daemons: the client's connection.
    pub(super) client: Option<Token>,
    inbox: [Option<Inbox>; 3],
}

impl Loop {
    /// Parks a daemon's frame for a session that may still open here; never one for a session
    /// that has ended, and never beyond the caps.
    fn park(&mut self, session: u64, peer: Role, msg: Message) {
        if self.used.contains(&session) {
            return;
        }
        let fits = self.pending_frames < MAX_PENDING_FRAMES
            && self.pending_bytes + msg.payload.len() <= self.config.limits.max_pending_bytes;
        if !fits {
            self.refused += 1;
            return;
        }
        self.pending_bytes += msg.payload.len();
        self.pending_frames += 1;
        self.pending
            .entry(session)
            .or_insert_with(|| (Instant::now(), Vec::new()))
            .1
            .push((peer, Instant::now(), msg));
    }

    /// Removes the frames parked for `session`, returning them with their arrival times.
    pub(super) fn unpark(&mut self, session: u64) -> Vec<Parked> {
        let frames = self
            .pending
            .remove(&session)
            .map(|(_, f)| f)
            .unwrap_or_default();
        self.pending_frames -= frames.len();
        self.pending_bytes -= frames
            .iter()
            .map(|(_, _, m)| m.payload.len())
            .sum::<usize>();
        frames
    }

    /// Where a session's message to `to` goes.
    fn route(&self, session: u64, to: Role) -> Option<Token> {
        if to == Role::Client && self.role != Role::Client {
            return self.sessions.get(&session)?.client;
        }
        self.links[to.index()]
    }

    pub(super) fn send(&mut self, session: u64, to: Role, msg: Message, unsent: Unsent) {
        let Some(t) = self.route(session, to) else {
            return self.deliver_error(session, to, NetError::Disconnected { peer: to });
        };
        let Some(c) = self.conns.get_mut(&t) else {
            return self.deliver_error(session, to, NetError::Disconnected { peer: to });
        };
        c.queue_counted(session, msg.kind, msg.depth, msg.payload, Some(unsent));
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

    pub(super) fn deliver_error(&mut self, session: u64, peer: Role, e: NetError) {
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

    pub(super) fn new_session(
        &mut self,
        session: u64,
        client: Option<Token>,
    ) -> Result<Session, NetError> {
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
        let mut rx: [Option<Receiver<InboxItem>>; 3] = [None, None, None];
        for peer in me.others() {
            let (tx, r) = channel();
            inbox[peer.index()] = Some(tx);
            rx[peer.index()] = Some(r);
        }
        self.sessions
            .insert(session, SessionEntry { client, inbox });
        // Replay what the other daemon sent before the client's open reached us.
        for (from, arrived, m) in self.unpark(session) {
            if let Some(inbox) = &self.sessions[&session].inbox[from.index()] {
                let _ = inbox.send(Ok((arrived, m)));
            }
        }
        let transport = TcpTransport {
            role: me,
            session,
            cmd: self.cmd_tx.clone(),
            waker: self.waker.clone(),
            inbox: rx,
            timeout: self.config.timeout,
            latency: self.config.latency,
            unsent: Default::default(),
        };
        Ok(Session {
            id: session,
            transport,
            exported,
        })
    }

    pub(super) fn open(&mut self, session: u64) -> Result<Session, NetError> {
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

    pub(super) fn incoming(&mut self, t: Token, m: Incoming) {
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
            if peer == Role::Client
                && self.role != Role::Client
                && Control::decode(msg.kind, &msg.payload) == Some(Control::Open)
            {
                self.open_requested(t, m.session);
            }
            if peer != Role::Client {
                self.park(m.session, peer, msg);
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
            let _ = inbox.send(Ok((Instant::now(), msg)));
        }
    }

    /// A client on connection `t` asks to open `session`: within the limits, and never an id
    /// used before; the new session goes to the process as a [`NodeEvent::Session`].
    fn open_requested(&mut self, t: Token, session: u64) {
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
                short_id(session)
            );
            self.refused += 1;
            self.last_refusal = Some(reason.clone());
            if let Some(c) = self.conns.get_mut(&t) {
                c.queue(session, FrameKind::Abort, 0, reason.into_bytes());
            }
            return;
        }
        if !self.remember(session) {
            let reason = format!(
                "{} refuses session {}: the id was used before",
                self.role,
                short_id(session)
            );
            self.log(reason.clone());
            if let Some(c) = self.conns.get_mut(&t) {
                c.queue(session, FrameKind::Abort, 0, reason.into_bytes());
            }
            return;
        }
        match self.new_session(session, Some(t)) {
            Ok(s) => {
                let who = self.conns.get(&t).and_then(|c| c.name.clone());
                if let Some(name) = who {
                    self.log(format!(
                        "session {} opened by client `{name}`",
                        short_id(session)
                    ));
                }
                let _ = self.events.send(NodeEvent::Session(s));
            }
            Err(e) => {
                let reason = format!("{} cannot open the session: {e}", self.role);
                if let Some(c) = self.conns.get_mut(&t) {
                    c.queue(session, FrameKind::Abort, 0, reason.into_bytes());
                }
            }
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
}

/// A session id for logs: enough to tell sessions apart, not enough to address one.
pub fn short_id(session: u64) -> String {
    format!("{:04x}…", session >> 48)
}
