//! SecureNN's PrivateCompare over Z_67 (Wagh et al., Alg. 3), as pure functions.
//!
//! P0 and P1 hold additive shares mod 67 of the bits of an n-bit x (MSB first) and both know a
//! public R and a bit β. Each computes a masked, permuted vector; the helper, adding the two,
//! finds a zero exactly when β ⊕ (x > R) = 1 and learns only that bit. The R = 2^n − 1, β = 1
//! corner (where R + 1 overflows) is handled as in the paper.
//!
//! Unlike the paper's Algorithm 3, P0 adds and P1 subtracts a fresh common mask m_i before
//! multiplying by s_i. Without it the helper, which deals the bit shares and so knows both
//! parties' shares of x, sees d1/d0 = c1_i/c0_i (s cancels) and recovers the hidden R by search
//! (`docs/security.md`, F1). With it d0 is uniform and independent of everything the helper
//! knows, and d0 + d1 = π(s ⊙ c) is all it learns: one zero or none among uniform non-zeros.

use crate::prf::{P, Stream};

fn modp(v: i32) -> u8 {
    v.rem_euclid(P as i32) as u8
}

/// The per-comparison randomness both computing parties draw from their common stream, in
/// this order: masks s (n, non-zero), a permutation (n), the zero-sharing m (n), and for the
/// corner case u (n).
pub struct PcRandom<'a> {
    /// Non-zero multipliers mod 67, one per bit position: they hide each term's value but
    /// keep whether it is zero.
    pub s: &'a [u8],
    /// The output position of each bit position's term, a permutation of `0..n`: it hides
    /// where the zero is.
    pub perm: &'a [u8],
    /// P0 adds m_i, P1 subtracts it: hides each party's vector from the helper. (All zero
    /// only in the positive control of the view tests, which unmasks the comparison.)
    pub m: &'a [u8],
    /// Only used in the R = 2^n − 1, β = 1 corner.
    pub u: &'a [u8],
}

/// Party j's vector d for one comparison. `x_share` are its shares of x's n bits (MSB first),
/// `r` the public bound, `beta` the public flip bit; writes n bytes into `out`.
pub fn party_vector(
    j: u8,
    x_share: &[u8],
    r: u64,
    beta: u8,
    bits: u32,
    rnd: &PcRandom,
    out: &mut [u8],
) {
    let n = bits as usize;
    let all_ones = r == crate::prf::mask(bits);
    let j = j as i32;
    // The common zero-sharing: +m_i for P0, −m_i for P1.
    let zero_share = |i: usize| -> i32 {
        let m = rnd.m[i] as i32;
        if j == 0 { m } else { -m }
    };
    if beta == 1 && all_ones {
        // x ≤ 2^n − 1 always holds, so the answer is 1: plant one zero (P0: u, P1: −u) at
        // position 0 and ones elsewhere ((u + 1) − u); the permutation hides where.
        for i in 0..n {
            let u = rnd.u[i] as i32;
            let c = if i == 0 {
                if j == 0 { u } else { -u }
            } else if j == 0 {
                u + 1
            } else {
                -u
            };
            out[rnd.perm[i] as usize] = modp(rnd.s[i] as i32 * modp(c + zero_share(i)) as i32);
        }
        return;
    }
    // β = 0 tests x > R; β = 1 tests x < R + 1 (i.e. x ≤ R). T is R or R + 1, σ the sign.
    let t = if beta == 0 { r } else { r + 1 };
    let sigma = if beta == 0 { -1 } else { 1 };
    // Only residues matter, so the prefix (Σ over more significant bits of shares of
    // x_k ⊕ t_k) is summed without reducing: 64 terms in (−67, 134) stay below 2^14, and
    // one bias that is a multiple of 67 keeps each term non-negative for a `u32` remainder.
    const BIAS: i32 = 67 * 256;
    let mut prefix = 0i32;
    for i in 0..n {
        let ti = ((t >> (n - 1 - i)) & 1) as i32;
        let xi = x_share[i] as i32;
        let c = sigma * (xi - j * ti) + j + prefix + zero_share(i);
        let v = (c + BIAS) as u32 % P as u32;
        out[rnd.perm[i] as usize] = (rnd.s[i] as u32 * v % P as u32) as u8;
        prefix += xi + j * ti - 2 * ti * xi;
    }
}

/// The helper's side: 1 iff some position of `d0 + d1` is 0 mod 67. Every position is
/// looked at (no early exit), so the helper's time does not depend on the answer.
pub fn helper_result(d0: &[u8], d1: &[u8]) -> u8 {
    d0.iter().zip(d1).fold(0u8, |acc, (a, b)| {
        acc | (*a as u16 + *b as u16).is_multiple_of(P as u16) as u8
    })
}

/// The randomness of a batch of comparisons, drawn up front so that the vectors can be
/// computed in parallel: comparison `i` owns positions `offsets[i]..offsets[i + 1]` of each
/// buffer (its bit width).
pub struct PcBatch {
    s: Vec<u8>,
    perm: Vec<u8>,
    m: Vec<u8>,
    u: Vec<u8>,
}

impl PcBatch {
    /// Draws comparison after comparison from `stream`, each in [`PcRandom`]'s order, `u`
    /// only where `corner(i)`: the stream is consumed exactly as one comparison at a time
    /// would consume it.
    pub fn draw(stream: &mut Stream, offsets: &[usize], corner: impl Fn(usize) -> bool) -> Self {
        let total = offsets.last().copied().unwrap_or(0);
        let mut b = Self {
            s: vec![0; total],
            perm: vec![0; total],
            m: vec![0; total],
            u: vec![0; total],
        };
        for (i, w) in offsets.windows(2).enumerate() {
            let r = w[0]..w[1];
            stream.nonzero_mod_p_into(&mut b.s[r.clone()]);
            stream.permutation_into(&mut b.perm[r.clone()]);
            stream.mod_p_into(&mut b.m[r.clone()]);
            if corner(i) {
                stream.mod_p_into(&mut b.u[r]);
            }
        }
        b
    }

    /// The randomness of the comparison at positions `r`.
    pub fn get(&self, r: std::ops::Range<usize>) -> PcRandom<'_> {
        PcRandom {
            s: &self.s[r.clone()],
            perm: &self.perm[r.clone()],
            m: &self.m[r.clone()],
            u: &self.u[r],
        }
    }

    /// The positive control of the view tests: PrivateCompare without the zero-sharing (the
    /// paper's Algorithm 3 as is). The draws are unchanged; only their use is dropped.
    #[cfg(test)]
    pub fn unmask_for_test(&mut self) {
        self.m.fill(0);
    }
}

/// Bits of `x` (n of them, MSB first).
pub fn bits_msb_first(x: u64, bits: u32) -> impl Iterator<Item = u8> {
    (0..bits).map(move |i| ((x >> (bits - 1 - i)) & 1) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prf::{Keys, Purpose};
    use crate::role::Pair;

    /// Runs the two parties' vectors and the helper on cleartext inputs.
    fn compare(x: u64, r: u64, beta: u8, bits: u32, stream: &mut Stream) -> u8 {
        let xb: Vec<u8> = bits_msb_first(x, bits).collect();
        let x0 = stream.mod_p(bits as usize);
        let x1: Vec<u8> = xb
            .iter()
            .zip(&x0)
            .map(|(b, s)| modp(*b as i32 - *s as i32))
            .collect();
        let corner = beta == 1 && r == crate::prf::mask(bits);
        let batch = PcBatch::draw(stream, &[0, bits as usize], |_| corner);
        let rnd = batch.get(0..bits as usize);
        let (mut d0, mut d1) = (vec![0; bits as usize], vec![0; bits as usize]);
        party_vector(0, &x0, r, beta, bits, &rnd, &mut d0);
        party_vector(1, &x1, r, beta, bits, &rnd, &mut d1);
        helper_result(&d0, &d1)
    }

    #[test]
    fn equals_beta_xor_greater_than() {
        let [k, ..] = Keys::random_triple();
        let mut st = k.stream(
            Pair::ClientServer,
            &crate::prf::Addr::root(crate::prf::Scope::Session),
            Purpose::WrapCommon,
        );
        for bits in [1u32, 2, 5, 12, 63, 64] {
            let m = crate::prf::mask(bits);
            let mut cases = vec![
                (0, 0),
                (m, m),
                (0, m),
                (m, 0),
                (1, 0),
                (0, 1),
                (m - (m > 0) as u64, m),
            ];
            for _ in 0..300 {
                let x = st.u64() & m;
                let r = if st.u64() % 4 == 0 { x } else { st.u64() & m };
                cases.push((x, r));
            }
            for (x, r) in cases {
                for beta in [0u8, 1] {
                    let expect = beta ^ (x > r) as u8;
                    assert_eq!(
                        compare(x, r, beta, bits, &mut st),
                        expect,
                        "x={x} r={r} beta={beta} bits={bits}"
                    );
                }
            }
        }
    }
}
