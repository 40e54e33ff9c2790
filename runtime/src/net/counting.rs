//! A transport wrapper that measures traffic: payload bytes and messages per peer, per
//! layer and per phase, and rounds as the longest chain of dependent messages (each frame
//! carries its sender's depth; a receiver's depth becomes the max of its own and the frame's).

use std::collections::BTreeMap;

use super::{Message, NetError, Transport};
use crate::role::Role;

/// When a message is sent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Phase {
    /// Once per session (the server's masked weights).
    Setup,
    /// Per inference, before the input is known.
    Offline,
    /// Per inference, after.
    Online,
    /// Session commands and measurements between client and daemons: not protocol cost.
    Control,
}

/// Bytes and messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Payload bytes, without frame headers.
    pub bytes: u64,
    /// Whole messages (a message split into several frames counts once).
    pub messages: u64,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        self.messages += 1;
    }
}

impl core::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.bytes += o.bytes;
        self.messages += o.messages;
    }
}

/// Where traffic is attributed: a phase and a layer (`None` outside any layer, e.g. the
/// output reveal).
pub type Slot = (Phase, Option<u32>);

/// Everything one party measured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Sent traffic per slot and destination.
    pub sent: BTreeMap<(Slot, Role), Traffic>,
    /// Received traffic per slot and source.
    pub received: BTreeMap<(Slot, Role), Traffic>,
    /// This party's depth (dependent-message chain length) when each slot ended.
    pub depth_at_end: BTreeMap<Slot, u32>,
}

/// Rounds on the critical path, per layer and in total, from all parties' stats: layer i
/// takes `max_p depth_p(end of i) − max_p depth_p(end of i − 1)`.
pub fn rounds(parties: &[&Stats], phase: Phase, layers: usize) -> (Vec<u32>, u32) {
    let at = |slot: Slot| {
        parties
            .iter()
            .filter_map(|s| s.depth_at_end.get(&slot))
            .copied()
            .max()
    };
    let mut prev = 0;
    let mut per_layer = Vec::with_capacity(layers);
    for i in 0..layers {
        let end = at((phase, Some(i as u32))).unwrap_or(prev).max(prev);
        per_layer.push(end - prev);
        prev = end;
    }
    let total = parties
        .iter()
        .flat_map(|s| {
            s.depth_at_end
                .iter()
                .filter(|((p, _), _)| *p == phase)
                .map(|(_, d)| *d)
        })
        .max()
        .unwrap_or(0);
    (per_layer, total)
}

impl Stats {
    /// Total sent in a phase.
    pub fn sent_in(&self, phase: Phase) -> Traffic {
        Self::in_phase(&self.sent, phase)
    }

    /// Adds `other`'s traffic to this one's (depths: `other`'s slots are taken as they are).
    pub fn absorb(&mut self, other: Stats) {
        for (k, v) in other.sent {
            *self.sent.entry(k).or_default() += v;
        }
        for (k, v) in other.received {
            *self.received.entry(k).or_default() += v;
        }
        self.depth_at_end.extend(other.depth_at_end);
    }

    fn in_phase(map: &BTreeMap<(Slot, Role), Traffic>, phase: Phase) -> Traffic {
        let mut t = Traffic::default();
        for (((p, _), _), v) in map {
            if *p == phase {
                t += *v;
            }
        }
        t
    }

    /// Total sent in a slot.
    pub fn sent_at(&self, slot: Slot) -> Traffic {
        let mut t = Traffic::default();
        for ((s, _), v) in &self.sent {
            if *s == slot {
                t += *v;
            }
        }
        t
    }
}

/// Wraps a transport and counts.
pub struct CountingTransport<T> {
    inner: T,
    depth: u32,
    slot: Slot,
    stats: Stats,
}

impl<T: Transport> CountingTransport<T> {
    /// Wraps `inner` with empty stats, at depth 0, attributing traffic to the set-up phase.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            depth: 0,
            slot: (Phase::Setup, None),
            stats: Stats::default(),
        }
    }

    /// Attributes what follows to `slot`.
    pub fn set_slot(&mut self, slot: Slot) {
        self.close_slot();
        self.slot = slot;
    }

    /// Starts a new phase: depths restart at 0, so rounds are counted per phase.
    pub fn start_phase(&mut self, phase: Phase) {
        self.close_slot();
        self.depth = 0;
        self.slot = (phase, None);
    }

    /// Goes back to `phase` at `depth`, the depth it had when it was left: a model dealt in
    /// segments interleaves offline passes with its online pass, and each phase's rounds
    /// continue where they stopped.
    pub fn resume_phase(&mut self, phase: Phase, depth: u32) {
        self.close_slot();
        self.depth = depth;
        self.slot = (phase, None);
    }

    fn close_slot(&mut self) {
        self.stats.depth_at_end.insert(self.slot, self.depth);
    }

    /// This party's current depth (rounds so far in the phase).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The measurements so far.
    pub fn stats(&mut self) -> &Stats {
        self.close_slot();
        &self.stats
    }

    /// Takes the measurements and starts from zero.
    pub fn take_stats(&mut self) -> Stats {
        self.close_slot();
        std::mem::take(&mut self.stats)
    }

    /// Unwraps the transport, dropping the measurements.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// The wrapped transport (a test reads a recorder's view between inferences).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: Transport> Transport for CountingTransport<T> {
    fn role(&self) -> Role {
        self.inner.role()
    }

    fn send(&mut self, to: Role, mut msg: Message) -> Result<(), NetError> {
        msg.depth = self.depth + 1;
        self.stats
            .sent
            .entry((self.slot, to))
            .or_default()
            .add(msg.payload.len());
        self.inner.send(to, msg)
    }

    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        let msg = self.inner.recv(from)?;
        Ok(self.count_received(from, msg))
    }

    fn flush(&mut self, to: Role) -> Result<(), NetError> {
        self.inner.flush(to)
    }

    fn recv_step(&mut self, from: Role, step: &'static str) -> Result<Message, NetError> {
        let msg = self.inner.recv_step(from, step)?;
        Ok(self.count_received(from, msg))
    }
}

impl<T: Transport> CountingTransport<T> {
    fn count_received(&mut self, from: Role, msg: Message) -> Message {
        self.depth = self.depth.max(msg.depth);
        self.stats
            .received
            .entry((self.slot, from))
            .or_default()
            .add(msg.payload.len());
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::mem::triple;
    use ksnn_formats::FrameKind;
    use std::time::Duration;

    fn msg(n: usize) -> Message {
        Message {
            kind: FrameKind::Bytes,
            depth: 0,
            payload: vec![0; n],
        }
    }

    #[test]
    fn rounds_follow_the_dependency_chain() {
        let [a, b, c] = triple(Duration::from_secs(5));
        let (mut a, mut b, mut c) = (
            CountingTransport::new(a),
            CountingTransport::new(b),
            CountingTransport::new(c),
        );
        for t in [&mut a, &mut b, &mut c] {
            t.start_phase(Phase::Online);
        }
        // A simultaneous exchange between P0 and P1 is one round ...
        a.send(Role::Server, msg(8)).unwrap();
        b.send(Role::Client, msg(8)).unwrap();
        a.recv(Role::Server).unwrap();
        b.recv(Role::Client).unwrap();
        assert_eq!((a.depth(), b.depth()), (1, 1));
        // ... and a message that depends on it is the second.
        b.send(Role::Helper, msg(3)).unwrap();
        c.recv(Role::Server).unwrap();
        assert_eq!(c.depth(), 2);
        let s = b.take_stats();
        assert_eq!(
            s.sent_in(Phase::Online),
            Traffic {
                bytes: 11,
                messages: 2
            }
        );
        assert_eq!(s.depth_at_end[&(Phase::Online, None)], 1);
    }
}
