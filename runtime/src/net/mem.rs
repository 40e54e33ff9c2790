//! Three parties as threads in one process, connected by channels. Used by tests, benches
//! and anything that wants the protocols without sockets.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::{Message, NetError, Transport};
use crate::role::Role;

/// One party's end of the in-memory network.
pub struct MemTransport {
    role: Role,
    to: [Option<Sender<Message>>; 3],
    from: [Option<Receiver<Message>>; 3],
    timeout: Duration,
}

/// Connects three parties; `recv` gives up after `timeout` instead of hanging.
pub fn triple(timeout: Duration) -> [MemTransport; 3] {
    let mut ends = Role::ALL.map(|role| MemTransport {
        role,
        to: [None, None, None],
        from: [None, None, None],
        timeout,
    });
    for a in Role::ALL {
        for b in a.others() {
            let (tx, rx) = channel();
            ends[a.index()].to[b.index()] = Some(tx);
            ends[b.index()].from[a.index()] = Some(rx);
        }
    }
    ends
}

impl Transport for MemTransport {
    fn role(&self) -> Role {
        self.role
    }

    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError> {
        let tx = self.to[to.index()]
            .as_ref()
            .ok_or(NetError::Disconnected { peer: to })?;
        tx.send(msg)
            .map_err(|_| NetError::Disconnected { peer: to })
    }

    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        let rx = self.from[from.index()]
            .as_ref()
            .ok_or(NetError::Disconnected { peer: from })?;
        match rx.recv_timeout(self.timeout) {
            Ok(m) => Ok(m),
            Err(RecvTimeoutError::Timeout) => Err(NetError::Timeout {
                peer: from,
                seconds: self.timeout.as_secs_f64(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(NetError::Disconnected { peer: from }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksnn_formats::FrameKind;

    #[test]
    fn delivers_in_order_and_reports_dead_peers() {
        let [mut a, mut b, c] = triple(Duration::from_millis(200));
        for i in 0..3u8 {
            a.send(
                Role::Server,
                Message {
                    kind: FrameKind::Bytes,
                    depth: 0,
                    payload: vec![i],
                },
            )
            .unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(b.recv(Role::Client).unwrap().payload, vec![i]);
        }
        assert!(matches!(
            b.recv(Role::Client),
            Err(NetError::Timeout {
                peer: Role::Client,
                ..
            })
        ));
        drop(c);
        assert!(matches!(
            b.recv(Role::Helper),
            Err(NetError::Disconnected { peer: Role::Helper })
        ));
    }
}
