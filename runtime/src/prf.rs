//! Correlated randomness: ChaCha12 streams keyed by a pairwise secret (12 rounds, as `rand`'s
//! `StdRng`: the best known attacks reach 7; 20 rounds cost two thirds more keystream time).
//!
//! Every stream is derived from (pair secret, [`Addr`], purpose), so it is *position-addressed*:
//! a party draws exactly the values it needs for one step and purpose, in the order that
//! purpose defines, and never has to mirror another party's call order. The helper can
//! therefore run ahead. An [`Addr`] is a scope (one inference, or the whole session) and a
//! path of [`Label`]s from the program down — `[Layer(3), Compare(1)]` is the second DReLU
//! batch of layer 3 — built by `Party::sub` the way mpz forks a `Context`: each sub-protocol
//! gets its own child, so no two steps share an address by accident, and no protocol picks
//! index constants. Secrets are 256-bit, fresh per session (the network
//! layer derives them from each pair's TLS exporter and per-session nonces, see
//! `net::tcp::keying`); nothing here has a fixed seed. A stream address must serve one use
//! only: the daemons refuse repeated inference ids for that reason (`exec::session`).

use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::role::{Pair, Role};

/// What a stream is used for. Distinct purposes give independent streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Purpose {
    /// (P0,P1): P1's share of the input.
    InputShare = 1,
    /// (P0,P2): the mask A of a linear layer's input.
    LinearA = 2,
    /// (P0,P1), per session: the mask F of a linear layer's weights (B = W − F goes to P2).
    /// (3 was `LinearB`, the P1–P2 mask of the weights P0 used to receive and store.)
    LinearF = 9,
    /// (P1,P2): P1's share C1 of A⊛B.
    LinearC1 = 4,
    /// (P0,P2) / (P1,P2): Beaver triple shares for element-wise products.
    MulTriple = 5,
    /// (P0,P1): the masks, permutations and flips of the wrap-bit comparison.
    WrapCommon = 6,
    /// (P0,P2): P0's shares of the masked value's bits mod 67.
    WrapBits = 7,
    /// (P0,P2): P0's share of the comparison's result.
    WrapResult = 8,
    /// (P0,P2) / (P1,P2): the party's share of a stand-alone `fss` DReLU's mask r.
    FssMask = 10,
    /// (P0,P2) / (P1,P2): the party's DCF root seeds of an `fss` comparison batch.
    FssRoot = 11,
    /// (P0,P2) / (P1,P2): an `fss` select's masks: A_j and the bits δ_j; P1 also its shares
    /// of δ and δ·A.
    SelectMask = 12,
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

    /// The party that holds these keys: the role an engine built from them runs as.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The stream for (`pair`, `at`, `purpose`).
    ///
    /// Panics if this party is not in `pair`: protocol code must never ask for a stream it
    /// cannot have, and tests catch it.
    pub fn stream(&self, pair: Pair, at: &Addr, purpose: Purpose) -> Stream {
        let secret = self.secrets[pair.index()]
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no secret for {pair:?}", self.role));
        #[cfg(any(test, feature = "test-utils"))]
        audit::note(pair, at, purpose);
        let mut h = Sha256::new();
        h.update(b"ksnn prf v3");
        h.update(secret.0);
        at.hash_into(&mut h);
        h.update((purpose as u32).to_le_bytes());
        Stream(ChaCha12Rng::from_seed(h.finalize().into()))
    }
}

/// How long a stream lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One inference (its id): masks that must never be reused.
    Inference(u64),
    /// The whole session: the weight masks B, which the server sends masked once.
    Session,
}

/// One step of a stream address, named by what the step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// Sharing the client's input.
    Input,
    /// Revealing the outputs to the client (draws nothing today; named so a future use
    /// cannot borrow another step's address).
    Output,
    /// Layer `i` of the program.
    Layer(u32),
    /// A DReLU batch within a step; the number tells batches of one step apart (max-pool
    /// levels).
    Compare(u32),
    /// A Beaver product, numbered like [`Label::Compare`].
    Product(u32),
    /// The truncation after a product; the number tells a step's truncations apart (hard
    /// swish has two).
    Truncate(u32),
    /// A linear layer's masks (the bilinear triple).
    Linear,
    /// One wave of a batch split into waves (exact truncation of a large layer): each wave
    /// draws its own randomness.
    Wave(u32),
}

impl Label {
    /// Fixed-width encoding (tag, value), so distinct paths hash distinct inputs.
    fn encode(self) -> [u8; 5] {
        let (tag, v) = match self {
            Label::Input => (1u8, 0u32),
            Label::Output => (7, 0),
            Label::Layer(i) => (2, i),
            Label::Compare(i) => (3, i),
            Label::Product(i) => (4, i),
            Label::Truncate(i) => (5, i),
            Label::Linear => (6, 0),
            Label::Wave(i) => (8, i),
        };
        let mut out = [tag, 0, 0, 0, 0];
        out[1..].copy_from_slice(&v.to_le_bytes());
        out
    }
}

/// How deep a path may go: program → layer → step → sub-step, with room to spare.
pub const MAX_DEPTH: usize = 6;

/// A stream's address: its scope and the path of labels that leads to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    scope: Scope,
    /// The labels from the root, then `None`s: the depth is the number of labels.
    path: [Option<Label>; MAX_DEPTH],
}

impl Addr {
    /// The root of `scope`: the program as a whole.
    pub const fn root(scope: Scope) -> Self {
        Self {
            scope,
            path: [None; MAX_DEPTH],
        }
    }

    /// The child `label` of this address.
    ///
    /// Panics past [`MAX_DEPTH`]: paths are fixed by the code, not by input, so a test run
    /// finds any that is too deep.
    pub fn child(mut self, label: Label) -> Self {
        let d = self.path().count();
        assert!(d < MAX_DEPTH, "stream path {self:?} is full");
        self.path[d] = Some(label);
        self
    }

    /// The same path in another scope.
    pub fn in_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The labels from the root down.
    pub fn path(&self) -> impl Iterator<Item = Label> + '_ {
        self.path.iter().map_while(|l| *l)
    }

    fn hash_into(&self, h: &mut Sha256) {
        match self.scope {
            Scope::Inference(id) => {
                h.update([1u8]);
                h.update(id.to_le_bytes());
            }
            Scope::Session => h.update([2u8; 9]),
        }
        h.update([self.path().count() as u8]);
        for l in self.path() {
            h.update(l.encode());
        }
    }
}

/// Test-only record of every stream this thread opens, to check that one inference never
/// opens the same address twice for two different uses.
#[cfg(any(test, feature = "test-utils"))]
pub mod audit {
    use std::cell::RefCell;

    use super::{Addr, Purpose};
    use crate::role::Pair;

    thread_local! {
        static LOG: RefCell<Option<Vec<(Pair, Addr, Purpose)>>> = const { RefCell::new(None) };
    }

    /// Starts recording this thread's stream openings (clears an earlier record).
    pub fn start() {
        LOG.with(|l| *l.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns what this thread opened, in order.
    pub fn take() -> Vec<(Pair, Addr, Purpose)> {
        LOG.with(|l| l.borrow_mut().take().unwrap_or_default())
    }

    pub(super) fn note(pair: Pair, at: &Addr, purpose: Purpose) {
        LOG.with(|l| {
            if let Some(v) = l.borrow_mut().as_mut() {
                v.push((pair, *at, purpose));
            }
        });
    }
}

/// One randomness stream.
pub struct Stream(ChaCha12Rng);

/// The prime of PrivateCompare's bit shares.
pub const P: u8 = 67;

impl Stream {
    /// The next 64 uniform bits: one ring element, or bits to mask down or split into flags.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// `n` uniform ring elements: the next `2n` stream words, two per element.
    ///
    /// A fixed-size draw, so every chunk's position in the stream is known: long draws are
    /// generated in parallel by copies of the generator sought to their chunk, element for
    /// element what one pass gives, and the stream then continues after the last word.
    pub fn ring(&mut self, n: usize) -> Vec<u64> {
        let start = self.0.get_word_pos();
        let mut out = vec![0; n];
        crate::par::chunks_mut(&mut out, |first, chunk| {
            let mut g = self.0.clone();
            g.set_word_pos(start + 2 * first as u128);
            chunk.iter_mut().for_each(|v| *v = g.next_u64());
        });
        self.0.set_word_pos(start + 2 * n as u128);
        out
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

    /// Fills `out` with uniform values in `lo..P` (`lo` is 0 or 1) by rejection on stream
    /// bytes, 64 at a time. Each call starts on fresh stream bytes (what is left of the last
    /// 64 is dropped), so a call's draws are fixed by its length alone.
    fn mod_p_fill(&mut self, lo: u8, out: &mut [u8]) {
        let table = &BYTE_TO_MOD_P[lo as usize];
        let (mut buf, mut kept) = ([0u8; 64], [0u8; 64]);
        let mut k = 0;
        while k < out.len() {
            self.0.fill_bytes(&mut buf);
            // Branch-free: every byte is written, only accepted ones advance.
            let mut c = 0;
            for &b in &buf {
                let v = table[b as usize];
                kept[c] = v;
                c += (v != REJECT) as usize;
            }
            let take = c.min(out.len() - k);
            out[k..k + take].copy_from_slice(&kept[..take]);
            k += take;
        }
    }

    /// `n` uniform values mod 67.
    pub fn mod_p(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        self.mod_p_into(&mut out);
        out
    }

    /// Fills `out` with uniform values mod 67: the same draws as `mod_p(out.len())`.
    pub fn mod_p_into(&mut self, out: &mut [u8]) {
        self.mod_p_fill(0, out);
    }

    /// `n` uniform non-zero values mod 67.
    pub fn nonzero_mod_p(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        self.nonzero_mod_p_into(&mut out);
        out
    }

    /// Fills `out` with uniform non-zero values mod 67: the same draws as
    /// `nonzero_mod_p(out.len())`.
    pub fn nonzero_mod_p_into(&mut self, out: &mut [u8]) {
        self.mod_p_fill(1, out);
    }

    /// Fisher–Yates: a uniform permutation of `0..n`, written into `out` (`n` ≤ 256).
    ///
    /// Each index below k (k ≤ 256) comes from a 16-bit lane of the stream — four per word,
    /// low lane first, a permutation starting on a fresh word — by Lemire's multiply-shift:
    /// x·k = m, and the lane is rejected when m mod 2^16 < 2^16 mod k, which leaves exactly
    /// the same number of lanes for each ⌊m / 2^16⌋, so every index is exactly uniform. Two
    /// stream bytes per index instead of eight: the permutations were most of the keystream
    /// PrivateCompare draws.
    pub fn permutation_into(&mut self, out: &mut [u8]) {
        assert!(out.len() <= 256, "permutations of at most 256 positions");
        for (i, v) in out.iter_mut().enumerate() {
            *v = i as u8;
        }
        let (mut word, mut lanes) = (0u64, 0u32);
        for i in (1..out.len()).rev() {
            let k = i as u32 + 1;
            let reject_below = LANE_REJECT[i] as u32;
            let j = loop {
                if lanes == 0 {
                    word = self.0.next_u64();
                    lanes = 4;
                }
                let m = (word & 0xFFFF) as u32 * k;
                word >>= 16;
                lanes -= 1;
                if m & 0xFFFF >= reject_below {
                    break m >> 16;
                }
            };
            out.swap(i, j as usize);
        }
    }
}

/// Entry `k − 1` is 2^16 mod k, for k in 1..=256: [`Stream::permutation_into`]'s rejection
/// threshold (a lookup instead of a division per index).
const LANE_REJECT: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut k = 1;
    while k <= 256 {
        t[k - 1] = (65536 % k) as u16;
        k += 1;
    }
    t
};

/// Marks a rejected byte in [`BYTE_TO_MOD_P`] (no value mod 67 is 255).
const REJECT: u8 = u8::MAX;

/// For `lo` = 0 and 1: byte `b` ↦ `lo + b mod (P − lo)` if `b` is below the largest multiple
/// of `P − lo` that fits in a byte, else [`REJECT`]. A lookup instead of a division per byte.
const BYTE_TO_MOD_P: [[u8; 256]; 2] = [byte_table(0), byte_table(1)];

const fn byte_table(lo: u8) -> [u8; 256] {
    let span = (P - lo) as u32;
    let limit = 256 - 256 % span;
    let mut t = [REJECT; 256];
    let mut b = 0;
    while b < limit {
        t[b as usize] = lo + (b % span) as u8;
        b += 1;
    }
    t
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

    fn at(inference: u64, layer: u32) -> Addr {
        Addr::root(Scope::Inference(inference)).child(Label::Layer(layer))
    }

    #[test]
    fn pairs_agree_and_purposes_differ() {
        let [p0, p1, p2] = Keys::random_triple();
        let a = p0
            .stream(Pair::ClientServer, &at(3, 1), Purpose::InputShare)
            .ring(4);
        let b = p1
            .stream(Pair::ClientServer, &at(3, 1), Purpose::InputShare)
            .ring(4);
        assert_eq!(a, b);
        let c = p0
            .stream(Pair::ClientServer, &at(4, 1), Purpose::InputShare)
            .ring(4);
        assert_ne!(a, c, "inference id changes the stream");
        let d = p0
            .stream(Pair::ClientServer, &at(3, 1), Purpose::LinearA)
            .ring(4);
        assert_ne!(a, d, "purpose changes the stream");
        let e = p2
            .stream(Pair::ClientHelper, &at(3, 1), Purpose::LinearA)
            .ring(4);
        assert_eq!(
            e,
            p0.stream(Pair::ClientHelper, &at(3, 1), Purpose::LinearA)
                .ring(4)
        );
    }

    #[test]
    fn fresh_secrets_give_fresh_streams() {
        let [a, ..] = Keys::random_triple();
        let [b, ..] = Keys::random_triple();
        assert_ne!(
            a.stream(Pair::ClientServer, &at(0, 0), Purpose::InputShare)
                .ring(2),
            b.stream(Pair::ClientServer, &at(0, 0), Purpose::InputShare)
                .ring(2)
        );
    }

    #[test]
    #[should_panic(expected = "has no secret")]
    fn a_party_cannot_open_a_stream_of_another_pair() {
        let [p0, ..] = Keys::random_triple();
        p0.stream(Pair::ServerHelper, &at(0, 0), Purpose::LinearF);
    }

    /// Two copies of one stream.
    fn twin_streams() -> (Stream, Stream) {
        let [p0, ..] = Keys::random_triple();
        let open = || p0.stream(Pair::ClientServer, &at(0, 0), Purpose::WrapCommon);
        (open(), open())
    }

    #[test]
    fn fast_samplers_draw_what_their_definitions_draw() {
        // The definitions, step by step: rejection on fresh 64-byte refills; Fisher–Yates
        // on 16-bit lanes with the threshold computed by `%`.
        fn mod_p_def(s: &mut Stream, lo: u8, n: usize) -> Vec<u8> {
            let span = (P - lo) as u32;
            let limit = 256 - 256 % span;
            let (mut buf, mut pos, mut out) = ([0u8; 64], 64, Vec::new());
            while out.len() < n {
                if pos == 64 {
                    s.0.fill_bytes(&mut buf);
                    pos = 0;
                }
                let b = buf[pos] as u32;
                pos += 1;
                if b < limit {
                    out.push(lo + (b % span) as u8);
                }
            }
            out
        }
        let (mut fast, mut def) = twin_streams();
        for round in 0..200usize {
            let n = (round * 37) % 300;
            assert_eq!(fast.mod_p(n), mod_p_def(&mut def, 0, n), "mod_p({n})");
            assert_eq!(
                fast.nonzero_mod_p(n),
                mod_p_def(&mut def, 1, n),
                "nonzero_mod_p({n})"
            );
            let len = 1 + round % 256;
            let mut perm = vec![0u8; len];
            fast.permutation_into(&mut perm);
            let mut expect: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut lanes: Vec<u64> = Vec::new();
            for i in (1..len).rev() {
                let k = i as u64 + 1;
                let j = loop {
                    if lanes.is_empty() {
                        let w = def.u64();
                        lanes = (0..4).rev().map(|l| (w >> (16 * l)) & 0xFFFF).collect();
                    }
                    let m = lanes.pop().unwrap() * k;
                    if m % 65536 >= 65536 % k {
                        break m / 65536;
                    }
                };
                expect.swap(i, j as usize);
            }
            assert_eq!(perm, expect, "permutation of {len}");
        }
    }

    #[test]
    fn parallel_ring_draws_are_the_sequential_ones() {
        // Lengths below and well above the parallel threshold, from even and odd word
        // positions (a byte draw consumes whole 32-bit words), then the stream continues.
        let (mut par, mut seq) = twin_streams();
        for (round, n) in [
            0,
            1,
            5,
            3 * crate::par::MIN_LEN + 7,
            100,
            9 * crate::par::MIN_LEN,
        ]
        .into_iter()
        .enumerate()
        {
            let mut skip = vec![0u8; 4 * round + 4];
            par.0.fill_bytes(&mut skip);
            seq.0.fill_bytes(&mut skip);
            let expect: Vec<u64> = (0..n).map(|_| seq.u64()).collect();
            assert_eq!(par.ring(n), expect, "ring({n}) after {} words", round + 1);
            assert_eq!(par.u64(), seq.u64(), "the word after ring({n})");
            assert_eq!(par.mod_p(70), seq.mod_p(70));
        }
    }

    #[test]
    fn samplers_stay_in_range_and_are_roughly_uniform() {
        let [p0, ..] = Keys::random_triple();
        let mut s = p0.stream(Pair::ClientServer, &at(0, 0), Purpose::WrapCommon);
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
        // All 6 permutations of 3 equally often, and for 63 positions every value lands in
        // position 0 about equally often (a biased index would skew either).
        let mut seen = std::collections::HashMap::new();
        for _ in 0..60_000 {
            let mut p = [0u8; 3];
            s.permutation_into(&mut p);
            *seen.entry(p).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), 6);
        assert!(
            seen.values().all(|&c| (9_500..10_500).contains(&c)),
            "{seen:?}"
        );
        let mut first = [0u32; 63];
        for _ in 0..63_000 {
            s.permutation_into(&mut perm);
            first[perm[0] as usize] += 1;
        }
        assert!(first.iter().all(|&c| (820..1180).contains(&c)), "{first:?}");
    }
}
