//! The three-party protocols. Each is straight-line code run by all three roles, generic over
//! a [`Transport`]; randomness comes from position-addressed pairwise streams, and a
//! protocol that calls another hands it a child address ([`Party::sub`]).
//!
//! Conventions: a secret `x` is held as `x0 + x1 (mod 2^64)` by P0 and P1; P2 holds no share
//! (its slices are empty) and only deals or takes part in comparisons. Functions take the
//! element count `n` explicitly because P2 has no shares to measure.

pub mod activation;
pub mod arith;
pub mod beaver;
pub mod clip;
pub mod drelu;
pub mod linear;
pub mod maxpool;
pub mod private_compare;
pub mod relu;
pub mod select;
pub mod share;
pub mod trunc;
#[cfg(test)]
mod views;
pub mod wrap;

use ksnn_formats::{FrameKind, ProtocolConfig};
use thiserror::Error;

use crate::net::{Message, NetError, Transport};
use crate::prf::{Addr, Keys, Label, Purpose, Scope, Stream};
use crate::role::{Pair, Role};

/// A protocol step failed.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// The transport failed or timed out, or a peer aborted, while this party ran `step`.
    #[error("{role}, {step}: {source}")]
    Net {
        /// The party that saw the failure.
        role: Role,
        /// The step's message label, e.g. `product: open x − A, y − B`.
        step: &'static str,
        /// What the transport reported.
        source: NetError,
    },
    /// A peer's frame had the expected kind but not the step's payload size: the peer runs
    /// another program or step, or misbehaves.
    #[error("{role}, {step}: {peer} sent {got} bytes, expected {expected}")]
    Length {
        /// The receiving party.
        role: Role,
        /// The step's message label.
        step: &'static str,
        /// The sender.
        peer: Role,
        /// Payload bytes the step expects: 8 per ring element, 1 per small value.
        expected: usize,
        /// Payload bytes that arrived.
        got: usize,
    },
    /// A peer sent a frame of another kind than the step receives.
    #[error("{role}, {step}: {peer} sent a {got:?} frame, expected {expected:?}")]
    Kind {
        /// The receiving party.
        role: Role,
        /// The step's message label.
        step: &'static str,
        /// The sender.
        peer: Role,
        /// The kind the step receives: ring elements or small values.
        expected: FrameKind,
        /// The kind that arrived (an abort is reported as [`ProtocolError::Net`] instead).
        got: FrameKind,
    },
    /// The online pass found the offline pass's stash short of what a step needs, so the
    /// two passes did not run the same steps.
    #[error("{role}: the offline pass left no {what} for the online pass")]
    Preprocessing {
        /// The party whose online pass ran short.
        role: Role,
        /// The missing item, e.g. `a product's triple`.
        what: &'static str,
    },
    /// The cleartext reference reached a linear layer without its coefficients: its model
    /// was built without the weights.
    #[error("the cleartext reference needs the weights; build its model with them")]
    NoWeights,
}

/// What every protocol function returns: its value, or the error that stopped the step.
pub type Result<T> = std::result::Result<T, ProtocolError>;

/// One party's view while running a protocol: its role, its keys, the network, and the
/// address its randomness streams hang from.
pub struct Party<'a> {
    /// Which of the three parties runs the code: protocols branch on it.
    pub role: Role,
    /// This party's pair secrets, from which [`Party::stream`] derives all its randomness.
    pub keys: &'a Keys,
    /// The links to the other two parties; every message of the protocol goes through it.
    pub net: &'a mut dyn Transport,
    /// Where this protocol's streams live: the inference's scope and the path to this step.
    pub at: Addr,
    /// The program's protocol choices: DReLU protocol, approximate comparison, truncation.
    pub config: ProtocolConfig,
    /// Fractional bits f of the fixed-point encoding: truncation brings products from 2f
    /// back to f.
    pub frac_bits: u8,
}

impl Party<'_> {
    /// The stream for `pair` and `purpose` at this party's address.
    pub fn stream(&self, pair: Pair, purpose: Purpose) -> Stream {
        #[cfg(test)]
        if crate::testing::leak() == crate::testing::Leak::ReusedMask {
            // Positive control of the view tests: every inference draws the same masks.
            let at = self.at.in_scope(Scope::Inference(0));
            return self.keys.stream(pair, &at, purpose);
        }
        self.keys.stream(pair, &self.at, purpose)
    }

    /// A stream that lives for the whole session (same in every inference), at this path.
    pub fn session_stream(&self, pair: Pair, purpose: Purpose) -> Stream {
        self.keys
            .stream(pair, &self.at.in_scope(Scope::Session), purpose)
    }

    /// The same party at the same address, borrowing the network again.
    pub fn reborrow(&mut self) -> Party<'_> {
        Party {
            role: self.role,
            keys: self.keys,
            net: &mut *self.net,
            at: self.at,
            config: self.config,
            frac_bits: self.frac_bits,
        }
    }

    /// The same party one step down, at child `label`: how a protocol hands a sub-protocol
    /// randomness of its own (mpz's `Context::fork`). The child borrows the network.
    pub fn sub(&mut self, label: Label) -> Party<'_> {
        #[cfg(test)]
        let at = if crate::testing::leak() == crate::testing::Leak::FlatAddress {
            // Positive control of the address test: sub-protocols share their parent's streams.
            self.at
        } else {
            self.at.child(label)
        };
        #[cfg(not(test))]
        let at = self.at.child(label);
        Party {
            role: self.role,
            keys: self.keys,
            net: &mut *self.net,
            at,
            config: self.config,
            frac_bits: self.frac_bits,
        }
    }

    /// P0 → 0, P1 → 1: the index SecureNN's formulas use.
    pub fn j(&self) -> u64 {
        debug_assert!(self.role != Role::Helper);
        self.role.index() as u64
    }

    /// The other computing party (P0 ↔ P1).
    pub fn peer(&self) -> Role {
        match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
            Role::Helper => unreachable!("the helper has no computing peer"),
        }
    }

    fn send(
        &mut self,
        to: Role,
        step: &'static str,
        kind: FrameKind,
        payload: Vec<u8>,
    ) -> Result<()> {
        let role = self.role;
        self.net
            .send(
                to,
                Message {
                    kind,
                    depth: 0,
                    payload,
                },
            )
            .map_err(|source| ProtocolError::Net { role, step, source })
    }

    fn recv(
        &mut self,
        from: Role,
        step: &'static str,
        kind: FrameKind,
        bytes: usize,
    ) -> Result<Vec<u8>> {
        let role = self.role;
        let m = self
            .net
            .recv_step(from, step)
            .map_err(|source| ProtocolError::Net { role, step, source })?;
        if m.kind != kind {
            if m.kind == FrameKind::Abort {
                return Err(ProtocolError::Net {
                    role,
                    step,
                    source: NetError::aborted(from, &m.payload),
                });
            }
            return Err(ProtocolError::Kind {
                role,
                step,
                peer: from,
                expected: kind,
                got: m.kind,
            });
        }
        if m.payload.len() != bytes {
            return Err(ProtocolError::Length {
                role,
                step,
                peer: from,
                expected: bytes,
                got: m.payload.len(),
            });
        }
        Ok(m.payload)
    }

    /// Sends ring elements.
    pub fn send_ring(&mut self, to: Role, step: &'static str, values: &[u64]) -> Result<()> {
        let mut payload = Vec::with_capacity(values.len() * 8);
        ksnn_formats::frame::put_ring(&mut payload, values);
        self.send(to, step, FrameKind::Ring, payload)
    }

    /// Waits until what this party sent `to` has left its memory ([`Transport::flush`]).
    pub fn flush(&mut self, to: Role, step: &'static str) -> Result<()> {
        let role = self.role;
        self.net
            .flush(to)
            .map_err(|source| ProtocolError::Net { role, step, source })
    }

    /// Receives exactly `n` ring elements.
    pub fn recv_ring(&mut self, from: Role, step: &'static str, n: usize) -> Result<Vec<u64>> {
        let payload = self.recv(from, step, FrameKind::Ring, n * 8)?;
        Ok(ksnn_formats::frame::get_ring(&payload).expect("length checked"))
    }

    /// Sends small values, one byte each.
    pub fn send_bytes(&mut self, to: Role, step: &'static str, values: Vec<u8>) -> Result<()> {
        self.send(to, step, FrameKind::Bytes, values)
    }

    /// Receives exactly `n` bytes.
    pub fn recv_bytes(&mut self, from: Role, step: &'static str, n: usize) -> Result<Vec<u8>> {
        self.recv(from, step, FrameKind::Bytes, n)
    }

    /// P0 and P1 swap vectors of `n` bits (0/1 bytes), sent packed eight per byte; returns
    /// the peer's, unpacked.
    pub fn exchange_bits(&mut self, step: &'static str, mine: &[u8]) -> Result<Vec<u8>> {
        let peer = self.peer();
        let mut packed = vec![0u8; mine.len().div_ceil(8)];
        for (i, &b) in mine.iter().enumerate() {
            packed[i / 8] |= (b & 1) << (i % 8);
        }
        self.send_bytes(peer, step, packed)?;
        let theirs = self.recv_bytes(peer, step, mine.len().div_ceil(8))?;
        Ok((0..mine.len())
            .map(|i| (theirs[i / 8] >> (i % 8)) & 1)
            .collect())
    }

    /// P0 and P1 swap ring vectors of equal length; returns the peer's.
    pub fn exchange_ring(&mut self, step: &'static str, mine: &[u64]) -> Result<Vec<u64>> {
        let peer = self.peer();
        self.send_ring(peer, step, mine)?;
        self.recv_ring(peer, step, mine.len())
    }
}
