//! Taking connections in: accepting within the connection limits (an unverified connection
//! makes way for a new one, so a flood of silent ones cannot lock honest peers out), and
//! setting up every new socket, accepted or connected.

use std::io;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};
use socket2::{SockRef, TcpKeepalive};

use super::conn::Conn;
use super::event_loop::Loop;
use crate::role::Role;

impl Loop {
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

    pub(super) fn accept(&mut self) {
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

    pub(super) fn add(
        &mut self,
        mut sock: TcpStream,
        tls: rustls::Connection,
        expect: Option<Role>,
    ) -> Token {
        let t = Token(self.next);
        self.next += 1;
        let _ = sock.set_nodelay(true);
        if let Err(e) = keepalive(&sock) {
            self.log(format!("cannot set TCP keepalive: {e}"));
        }
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
}

/// TCP keepalive on a connection: the kernel probes a silent peer after 30 s, every 10 s, and
/// gives up after 3 unanswered probes. Heartbeats already tell a dead peer from a slow one;
/// this also clears connections whose peer vanished without a FIN under a stopped loop.
fn keepalive(sock: &TcpStream) -> io::Result<()> {
    let probes = TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    SockRef::from(sock).set_tcp_keepalive(&probes)
}
