//! Fresh pair secrets for every session.
//!
//! The TLS exporter of a connection, with the session id as context, is a secret only the two
//! ends know, but it is not fresh: the P1–P2 link lives across sessions and the client picks
//! session ids, so a reopened id would repeat the P1–P2 secret (F2 in `docs/security.md`).
//! So at the start of every session each party sends each peer a fresh nonce *on that peer's
//! connection*, and a pair's secret hashes the exporter value with both ends' nonces. Each
//! daemon's own nonce makes its pair secrets fresh whatever the client sends, and the client
//! never carries the P1–P2 nonces, so it cannot influence that pair.

use ksnn_formats::FrameKind;
use sha2::{Digest, Sha256};

use super::control::Control;
use super::node::TcpTransport;
use crate::net::{NetError, Transport};
use crate::prf::{Keys, PairSecret};
use crate::role::Pair;

/// A session as the event loop hands it over: the exporter values are not yet fresh, so the
/// only way to its [`Keys`] is [`Session::establish`].
pub struct Session {
    /// The session id P0 chose; it tags every frame of the session on each connection.
    pub id: u64,
    pub(super) transport: TcpTransport,
    /// The TLS exporter value of the connection to each peer (by role index).
    pub(super) exported: [Option<PairSecret>; 3],
}

impl Session {
    /// The transport alone, with no keys: for benches that only move bytes.
    pub fn transport_only(self) -> TcpTransport {
        self.transport
    }

    /// Exchanges nonces with both peers (one message each way, before anything else in the
    /// session) and derives the session's keys.
    pub fn establish(mut self) -> Result<(Keys, TcpTransport), NetError> {
        let me = self.transport.role();
        let mut mine = [0u8; 32];
        getrandom::fill(&mut mine).expect("the OS random generator is available");
        for peer in me.others() {
            self.transport
                .send(peer, Control::Nonce { nonce: mine }.message())?;
        }
        let mut pairs = Vec::with_capacity(2);
        for peer in me.others() {
            let m = self.transport.recv_step(peer, "session: nonce")?;
            if m.kind == FrameKind::Abort {
                return Err(NetError::aborted(peer, &m.payload));
            }
            let theirs = match Control::decode(m.kind, &m.payload) {
                Some(Control::Nonce { nonce }) => nonce,
                _ => {
                    return Err(NetError::Unexpected {
                        peer,
                        expected: "the session's nonce".into(),
                        got: format!("a {:?} frame of {} bytes", m.kind, m.payload.len()),
                    });
                }
            };
            let exported = self.exported[peer.index()]
                .take()
                .ok_or(NetError::Disconnected { peer })?;
            let pair = Pair::of(me, peer).expect("two roles");
            let (lo, hi) = if me < peer {
                (&mine, &theirs)
            } else {
                (&theirs, &mine)
            };
            let secret =
                insecure::fixed(pair).unwrap_or_else(|| pair_secret(&exported, self.id, lo, hi));
            pairs.push((pair, secret));
        }
        let keys = Keys::new(me, [pairs[0].clone(), pairs[1].clone()]);
        Ok((keys, self.transport))
    }
}

/// A pair's session secret: the exporter value, the session id and both ends' nonces (the
/// lower role's first).
pub fn pair_secret(
    exported: &PairSecret,
    session: u64,
    lo: &[u8; 32],
    hi: &[u8; 32],
) -> PairSecret {
    let mut h = Sha256::new();
    h.update(b"ksnn pair secret v2");
    h.update(exported.0);
    h.update(session.to_le_bytes());
    h.update(lo);
    h.update(hi);
    PairSecret(h.finalize().into())
}

/// Fixed pair secrets for tests that compare a networked run bit for bit with an in-memory
/// one. Only with the non-default `insecure-test-secrets` feature in a debug build; otherwise
/// the variable is ignored.
pub mod insecure {
    use super::*;

    /// The variable that sets the fixed secrets' seed.
    pub const VAR: &str = "KSNN_INSECURE_TEST_SECRETS";

    /// Whether this build honours [`VAR`].
    pub const HONOURED: bool = cfg!(all(feature = "insecure-test-secrets", debug_assertions));

    /// The fixed secret for `pair`, when this build honours the variable and it is set.
    pub fn fixed(pair: Pair) -> Option<PairSecret> {
        if !HONOURED {
            return None;
        }
        let seed = std::env::var(VAR).ok()?;
        Some(test_pair_secret(&seed, pair))
    }

    /// A warning to print loudly at start-up when fixed secrets are in force.
    pub fn warning() -> Option<String> {
        (HONOURED && std::env::var_os(VAR).is_some()).then(|| {
            format!(
                "WARNING: {VAR} is set and this build honours it: every pair secret is FIXED \
                 and derived from a public string. Nothing computed here is private. Never \
                 run this build outside tests."
            )
        })
    }

    /// The secret [`fixed`] uses for `pair` (tests build the in-memory run's keys from it).
    pub fn test_pair_secret(seed: &str, pair: Pair) -> PairSecret {
        let mut h = Sha256::new();
        h.update(b"ksnn insecure test secret");
        h.update(seed.as_bytes());
        h.update([pair.index() as u8]);
        PairSecret(h.finalize().into())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        #[cfg(not(feature = "insecure-test-secrets"))]
        fn default_build_ignores_insecure_test_secrets() {
            const { assert!(!HONOURED) };
            // Whatever the environment says, no fixed secret and no warning.
            assert!(fixed(Pair::ClientServer).is_none());
            assert!(warning().is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_and_sessions_change_the_secret() {
        let e = PairSecret([7; 32]);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let s = pair_secret(&e, 5, &a, &b);
        assert_ne!(
            s,
            pair_secret(&e, 5, &a, &[3; 32]),
            "a fresh nonce, a fresh secret"
        );
        assert_ne!(s, pair_secret(&e, 6, &a, &b));
        assert_ne!(s, pair_secret(&PairSecret([8; 32]), 5, &a, &b));
        assert_eq!(s, pair_secret(&e, 5, &a, &b));
    }
}
