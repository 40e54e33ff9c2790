//! Greeting a peer: after the TLS handshake the certificate names the peer's role, and the
//! first message each way is [`Control::Hello`] (role, program hash, protocol version). A
//! connection that fails any check is refused with a reason; one that passes becomes a link
//! (to another daemon, or a client's to a daemon) and wakes whoever waits on the connect.

use std::sync::atomic::Ordering;

use ksnn_formats::{ContentHash, FrameKind};
use mio::Token;

use super::conn::Incoming;
use super::control::{Control, PROTOCOL_VERSION};
use super::event_loop::Loop;
use crate::net::tls::peer_role;
use crate::net::{Message, NetError};
use crate::role::Role;

impl Loop {
    /// Our greeting, the first message on every connection once the handshake is done.
    pub(super) fn hello(&self) -> Message {
        Control::Hello {
            role: self.role as u8,
            program: self.config.program_hash.0,
            protocol: PROTOCOL_VERSION,
        }
        .message()
    }

    /// After the handshake: which role the certificate names, and the greeting.
    pub(super) fn identify(&mut self, t: Token) {
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

    /// Refuses the peer on `t`: tells it why, then closes once that is sent.
    pub(super) fn refuse(&mut self, t: Token, reason: String) {
        if let Some(c) = self.conns.get_mut(&t) {
            c.queue(0, FrameKind::Abort, 0, reason.clone().into_bytes());
            c.closing = true;
        }
        self.log(format!("refused a peer: {reason}"));
        self.fail_waiting(t, reason);
    }

    /// The peer's role on connection `t`, or the server's if it is not known yet (a connect
    /// names its role; only an accepted connection has none before its certificate).
    fn role_of(&self, t: Token) -> Role {
        self.conns
            .get(&t)
            .and_then(|c| c.peer)
            .unwrap_or(Role::Server)
    }

    /// Answers the connect waiting on `t`, if one is.
    pub(super) fn answer_connect(&mut self, t: Token, outcome: Result<(), NetError>) {
        if let Some(i) = self.waiting.iter().position(|(w, _, _)| *w == t) {
            let (_, reply, _) = self.waiting.swap_remove(i);
            let _ = reply.send(outcome);
        }
    }

    /// The connect waiting on `t`, if any, fails: the peer refused (or we refused it).
    fn fail_waiting(&mut self, t: Token, reason: String) {
        let peer = self.role_of(t);
        self.answer_connect(t, Err(NetError::Aborted { peer, reason }));
    }

    /// The first message on a connection, which must be the peer's greeting (or its refusal).
    pub(super) fn greeting(&mut self, t: Token, peer: Role, m: Incoming) {
        if m.kind == FrameKind::Abort {
            let reason = crate::net::peer_text(&m.payload);
            self.fail_waiting(t, reason.clone());
            return self.close(t, format!("{peer} refused us: {reason}"));
        }
        let Some(Control::Hello {
            role,
            program,
            protocol,
        }) = Control::decode(m.kind, &m.payload)
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
        self.answer_connect(t, Ok(()));
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

    /// Connects whose greeting did not come within the timeout fail, and their connections
    /// close.
    pub(super) fn expire_waiting(&mut self) {
        let timeout = self.config.timeout;
        let (expired, keep): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|(_, _, at)| at.elapsed() > timeout);
        self.waiting = keep;
        for (t, reply, _) in expired {
            let peer = self.role_of(t);
            let _ = reply.send(Err(NetError::Timeout {
                peer,
                seconds: timeout.as_secs_f64(),
            }));
            self.close(t, "no greeting in time".into());
        }
    }
}
