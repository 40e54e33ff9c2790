//! Correlated randomness: ChaCha20 streams keyed by a pairwise secret.
//!
//! Every stream is derived from (pair secret, inference id, layer, purpose, index), so it is
//! *position-addressed*: a party draws exactly the values it needs for one layer and purpose,
//! in the order that purpose defines, and never has to mirror another party's call order.
//! The helper can therefore run ahead. Secrets are 256-bit, fresh per session (the network
//! layer derives them from each pair's TLS exporter and per-session nonces, see
//! `net::tcp::keying`); nothing here has a fixed seed. A stream address must serve one use
//! only: the daemons refuse repeated inference ids for that reason (`exec::session`).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::role::{Pair, Role};

/// What a stream is used for. Distinct purposes give independent streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Purpose {
    /// (P0,P1): P1's share of the input.
    InputShare = 1,
    /// (P0,P2): the mask A of a linear layer's input.
    LinearA = 2,
    /// (P1,P2), per session: the mask B of a linear layer's weights.
    LinearB = 3,
    /// (P1,P2): P1's share C1 of A⊛B.
    LinearC1 = 4,
    /// (P0,P2) / (P1,P2): Beaver triple shares for element-wise products.
    MulTriple = 5,
    /// (P0,P1): the masks, permutations and flips of the wrap-bit comparison.
    WrapCommon = 6,
    /// (P0,P2): P0's shares of the masked value's bits mod 67, and of the result.
    WrapClient = 7,
}

/// A 256-bit secret shared by one pair of parties.
#[derive(Clone, PartialEq, Eq)]
pub struct PairSecret(pub [u8; 32]);

impl core::fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PairSecret(..)")
    }
}

impl PairSecret {
    /// A fresh secret from the operating system's generator.
    pub fn random() -> Self {
        let mut s = [0u8; 32];
        getrandom::fill(&mut s).expect("the OS random generator is available");
        Self(s)
    }
}

/// The secrets one party holds: one for each pair it belongs to.
#[derive(Clone, Debug)]
pub struct Keys {
    role: Role,
    secrets: [Option<PairSecret>; 3],
}

/// Inference id used for streams that live for a whole session (the weight masks B).
pub const SESSION_SCOPE: u64 = u64::MAX;

impl Keys {
    /// Keys for `role` from the secrets of its two pairs.
    pub fn new(role: Role, pairs: [(Pair, PairSecret); 2]) -> Self {
        let mut secrets: [Option<PairSecret>; 3] = Default::default();
        for (pair, secret) in pairs {
            assert!(pair.contains(role), "{role} is not in {pair:?}");
            secrets[pair.index()] = Some(secret);
        }
        Self { role, secrets }
    }

    /// Consistent keys for all three parties from three fresh random secrets (tests,
    /// benchmarks and the in-process runner).
    pub fn random_triple() -> [Keys; 3] {
        let s = [
            PairSecret::random(),
            PairSecret::random(),
            PairSecret::random(),
        ];
        Self::triple_from(s)
    }

    /// Keys for all three parties from given pair secrets, in [`Pair::ALL`] order.
    pub fn triple_from(s: [PairSecret; 3]) -> [Keys; 3] {
        Role::ALL.map(|role| {
            let mine: Vec<(Pair, PairSecret)> = Pair::ALL
                .into_iter()
                .filter(|p| p.contains(role))
                .map(|p| (p, s[p.index()].clone()))
                .collect();
            Keys::new(role, [mine[0].clone(), mine[1].clone()])
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The stream for (`pair`, `inference`, `layer`, `purpose`, `index`).
    ///
    /// Panics if this party is not in `pair`: protocol code must never ask for a stream it
    /// cannot have, and tests catch it.
    pub fn stream(
        &self,
        pair: Pair,
        inference: u64,
        layer: u32,
        purpose: Purpose,
        index: u32,
    ) -> Stream {
        let secret = self.secrets[pair.index()]
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no secret for {pair:?}", self.role));
        let mut h = Sha256::new();
        h.update(b"ksnn prf v1");
        h.update(secret.0);
        h.update(inference.to_le_bytes());
        h.update(layer.to_le_bytes());
        h.update((purpose as u32).to_le_bytes());
        h.update(index.to_le_bytes());
        Stream(ChaCha20Rng::from_seed(h.finalize().into()))
    }
}

/// One randomness stream.
pub struct Stream(ChaCha20Rng);

/// The prime of PrivateCompare's bit shares.
pub const P: u8 = 67;

impl Stream {
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// `n` uniform ring elements.
    pub fn ring(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.0.next_u64()).collect()
    }

    /// `n` uniform values below `2^bits` (`bits` ≤ 64).
    pub fn below_pow2(&mut self, n: usize, bits: u32) -> Vec<u64> {
        let mask = mask(bits);
        (0..n).map(|_| self.0.next_u64() & mask).collect()
    }

    /// `n` uniform bits as 0/1 bytes.
    pub fn bits(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let w = self.0.next_u64();
            out.extend((0..64.min(n - out.len())).map(|i| ((w >> i) & 1) as u8));
        }
        out
    }

    /// One uniform byte value in `lo..P` by rejection (`lo` is 0 or 1).
    fn mod_p_from(&mut self, lo: u8, buf: &mut [u8; 64], pos: &mut usize) -> u8 {
        let span = P - lo;
        let limit = 256 - 256 % span as u32;
        loop {
            if *pos == buf.len() {
                self.0.fill_bytes(buf);
                *pos = 0;
            }
            let b = buf[*pos] as u32;
            *pos += 1;
            if b < limit {
                return lo + (b % span as u32) as u8;
            }
        }
    }

    /// `n` uniform values mod 67.
    pub fn mod_p(&mut self, n: usize) -> Vec<u8> {
        let (mut buf, mut pos) = ([0u8; 64], 64);
        (0..n)
            .map(|_| self.mod_p_from(0, &mut buf, &mut pos))
            .collect()
    }

    /// `n` uniform non-zero values mod 67.
    pub fn nonzero_mod_p(&mut self, n: usize) -> Vec<u8> {
        let (mut buf, mut pos) = ([0u8; 64], 64);
        (0..n)
            .map(|_| self.mod_p_from(1, &mut buf, &mut pos))
            .collect()
    }

    /// A uniform index below `n` (`n` ≥ 1), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.0.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Fisher–Yates: a uniform permutation of `0..n`, written into `out`.
    pub fn permutation_into(&mut self, out: &mut [u8]) {
        for (i, v) in out.iter_mut().enumerate() {
            *v = i as u8;
        }
        for i in (1..out.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            out.swap(i, j);
        }
    }
}

/// `2^bits - 1` for `bits` ≤ 64.
pub const fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_agree_and_purposes_differ() {
        let [p0, p1, p2] = Keys::random_triple();
        let a = p0
            .stream(Pair::ClientServer, 3, 1, Purpose::InputShare, 0)
            .ring(4);
        let b = p1
            .stream(Pair::ClientServer, 3, 1, Purpose::InputShare, 0)
            .ring(4);
        assert_eq!(a, b);
        let c = p0
            .stream(Pair::ClientServer, 4, 1, Purpose::InputShare, 0)
            .ring(4);
        assert_ne!(a, c, "inference id changes the stream");
        let d = p0
            .stream(Pair::ClientServer, 3, 1, Purpose::LinearA, 0)
            .ring(4);
        assert_ne!(a, d, "purpose changes the stream");
        let e = p2
            .stream(Pair::ClientHelper, 3, 1, Purpose::LinearA, 0)
            .ring(4);
        assert_eq!(
            e,
            p0.stream(Pair::ClientHelper, 3, 1, Purpose::LinearA, 0)
                .ring(4)
        );
    }

    #[test]
    fn fresh_secrets_give_fresh_streams() {
        let [a, ..] = Keys::random_triple();
        let [b, ..] = Keys::random_triple();
        assert_ne!(
            a.stream(Pair::ClientServer, 0, 0, Purpose::InputShare, 0)
                .ring(2),
            b.stream(Pair::ClientServer, 0, 0, Purpose::InputShare, 0)
                .ring(2)
        );
    }

    #[test]
    #[should_panic(expected = "has no secret")]
    fn a_party_cannot_open_a_stream_of_another_pair() {
        let [p0, ..] = Keys::random_triple();
        p0.stream(Pair::ServerHelper, 0, 0, Purpose::LinearB, 0);
    }

    #[test]
    fn samplers_stay_in_range_and_are_roughly_uniform() {
        let [p0, ..] = Keys::random_triple();
        let mut s = p0.stream(Pair::ClientServer, 0, 0, Purpose::WrapCommon, 0);
        let v = s.mod_p(67_000);
        let mut counts = [0u32; 67];
        v.iter().for_each(|&x| counts[x as usize] += 1);
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert!(s.nonzero_mod_p(1000).iter().all(|&x| (1..67).contains(&x)));
        assert!(s.below_pow2(1000, 5).iter().all(|&x| x < 32));
        let bits = s.bits(10_000);
        let ones = bits.iter().filter(|&&b| b == 1).count();
        assert!((4700..5300).contains(&ones));
        let mut perm = [0u8; 63];
        s.permutation_into(&mut perm);
        let mut sorted = perm;
        sorted.sort();
        assert!(sorted.iter().enumerate().all(|(i, &v)| v as usize == i));
    }
}
