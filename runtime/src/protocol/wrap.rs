//! The wrap-bit protocol: from P0's `u0` and P1's `u1` (n-bit values, n ≤ 64) and private bits
//! `e0`, `e1`, produce additive shares over Z_2^64 of
//!
//! ```text
//!     e0 ⊕ e1 ⊕ wrap,   wrap = [u0 + u1 ≥ 2^n]
//! ```
//!
//! This is SecureNN's ShareConvert core (mask, let the helper add, PrivateCompare mod 67),
//! followed by a helper-assisted XOR instead of a second comparison:
//!
//! - With common masks r = r0 + r1 (mod 2^n), P_j sends ũ_j = u_j + r_j to P2 and keeps the
//!   carry β_j. P2 learns x = ũ0 + ũ1 (mod 2^n), uniformly random, and its carry δ.
//! - Then wrap = β0 + β1 + δ − α − \[x < r\] with α the carry of r0 + r1, and \[x < r\] comes from
//!   PrivateCompare(x, r − 1, η'') (η'' a common flip bit that hides the answer from P2).
//!   Since wrap ∈ {0, 1} the sum equals its parity, so every term can be XORed.
//! - P_j also sends P2 q_j = e_j ⊕ β_j ⊕ z_j (z_j common masks). P2 XORs q0, q1, δ and the
//!   comparison bit into v, which is the result masked by bits only P0 and P1 know, and
//!   shares v arithmetically; P0 and P1 unmask locally.
//!
//! DReLU uses it on the low 63 bits of a value's shares (the MSB is the XOR of the shares'
//! MSBs and the carry out of the low bits); exact truncation uses it on 64 and on f bits.
//! Online: 26 + 3n bytes and 4 rounds per element.
//!
//! What P2 sees, per element: ũ0, ũ1 (independent and uniform: r0, r1 are), q0, q1 (uniform
//! bits: z0, z1), and the comparison vectors d0, d1. The vectors are hidden only because
//! PrivateCompare adds a common zero-sharing m (see [`crate::protocol::private_compare`]):
//! without it P2, which dealt both parties' bit shares, recovers r and so u. With it, d0 is
//! uniform and d0 + d1 shows one zero or none, i.e. the comparison bit, itself masked by η''.
//! The simulator and every message are in `docs/security.md`.

use crate::par;
use crate::prf::{P, Purpose, mask};
use crate::protocol::private_compare::{PcBatch, bits_msb_first, helper_result, party_vector};
use crate::protocol::{Party, Result};
use crate::role::{Pair, Role};

/// Per-element common values of P0 and P1.
struct Common {
    r0: u64,
    r1: u64,
    alpha: u8,
    eta: u8,
    z0: u8,
    z1: u8,
    r_is_zero: bool,
}

impl Common {
    /// From the element's three stream words, in draw order: r, r0, the flags.
    fn new(words: &[u64], bits: u32) -> Self {
        let m = mask(bits);
        let r = words[0] & m;
        let r0 = words[1] & m;
        let r1 = r.wrapping_sub(r0) & m;
        let flags = words[2];
        Common {
            r0,
            r1,
            alpha: (r0 > r) as u8,
            eta: (flags & 1) as u8,
            z0: ((flags >> 1) & 1) as u8,
            z1: ((flags >> 2) & 1) as u8,
            r_is_zero: r == 0,
        }
    }

    /// PrivateCompare's public bound r − 1 (mod 2^n).
    fn bound(&self, bits: u32) -> u64 {
        let r = self.r0.wrapping_add(self.r1) & mask(bits);
        r.wrapping_sub(1) & mask(bits)
    }
}

/// `(a + b) mod 2^n` and its carry.
fn add_mod(a: u64, b: u64, bits: u32) -> (u64, u8) {
    if bits == 64 {
        let (s, c) = a.overflowing_add(b);
        (s, c as u8)
    } else {
        let s = a + b;
        (s & mask(bits), (s >> bits) as u8)
    }
}

/// Where each element's bits start in the flat bit vectors, and their total at the end.
fn offsets(bits: &[u32]) -> Vec<usize> {
    let mut off = Vec::with_capacity(bits.len() + 1);
    off.push(0);
    let mut total = 0;
    for &b in bits {
        total += b as usize;
        off.push(total);
    }
    off
}

/// Elements per piece at least: below twice this a batch goes as one piece.
const PIECE_MIN: usize = 4_096;
/// Pieces per batch, unless [`PIECE_BITS`] needs more.
const PIECES_MAX: usize = 4;
/// Compared bits per piece at most: the comparisons' per-bit randomness and vectors (about
/// 7 bytes a bit) exist for one piece at a time, so a large batch (a 512×512 layer's
/// truncations: 6.3M elements of 12 + 64 bits) needs tens of megabytes, not gigabytes.
const PIECE_BITS: usize = 1 << 22;

/// The element ranges a batch of `n` elements and `total_bits` compared bits is streamed in.
/// Every message of the protocol goes piece by piece, each piece's slice of the one message
/// it would otherwise be, so a party works on a piece while the next travels or is computed
/// elsewhere: the helper's bit shares of piece 1 while P0 and P1 still mask piece 2, their
/// comparison vectors of piece 1 while the helper computes piece 2's. The per-bit material
/// exists one piece at a time. The pieces depend only on the public sizes, never on values.
fn pieces(n: usize, total_bits: usize) -> Vec<std::ops::Range<usize>> {
    if n == 0 {
        // One empty piece: the messages still go, empty, as for any batch.
        return std::iter::once(0..0).collect();
    }
    let count = (n / PIECE_MIN)
        .clamp(1, PIECES_MAX)
        .max(total_bits.div_ceil(PIECE_BITS))
        .min(n);
    let len = n.div_ceil(count).max(1);
    (0..n).step_by(len).map(|a| a..(a + len).min(n)).collect()
}

/// The offsets of the elements in `r`, from 0 (for one piece's bit vector).
fn rebase(offsets: &[usize], r: &std::ops::Range<usize>) -> Vec<usize> {
    offsets[r.start..=r.end]
        .iter()
        .map(|o| o - offsets[r.start])
        .collect()
}

/// Runs the protocol on `n` elements with per-element widths `bits`. P0 and P1 pass their
/// `u` and `e`; P2 passes empty slices. Returns P0's / P1's shares (P2: empty).
///
/// Randomness is drawn in the one order the protocol defines; the per-element arithmetic
/// then runs in parallel (`crate::par`), the draws that no message depends on overlap the
/// waits for the network, and large batches are streamed in pieces ([`pieces`]).
pub fn wrap_xor(p: &mut Party, bits: &[u32], u: &[u64], e: &[u8]) -> Result<Vec<u64>> {
    let n = bits.len();
    let offsets = offsets(bits);
    let total_bits = offsets[n];
    let ranges = pieces(n, total_bits);
    if p.role == Role::Helper {
        return helper(p, bits, &offsets, &ranges);
    }
    let j = p.j() as u8;
    let mut st = p.stream(Pair::ClientServer, Purpose::WrapCommon);
    // Three words per element, element after element: what drawing them one by one gives.
    let words = st.ring(3 * n);
    let commons: Vec<Common> = par::map(n, |i| Common::new(&words[3 * i..3 * i + 3], bits[i]));
    drop(words);

    // The comparisons' randomness (the rest of the common stream, comparison after
    // comparison) depends on no message: the first piece's is drawn on the pool while this
    // thread sends round 1, the others' piece by piece below, in the same order.
    let corner = |i: usize| {
        let c = &commons[i];
        c.eta == 1 && c.bound(bits[i]) == mask(bits[i])
    };
    let draw = |st: &mut crate::prf::Stream, r: &std::ops::Range<usize>| {
        PcBatch::draw(st, &rebase(&offsets, r), |k| corner(r.start + k))
    };
    let (first_pc, sent) = par::beside(
        offsets[ranges[0].end],
        || draw(&mut st, &ranges[0]),
        || -> Result<()> {
            // Round 1: masked values and masked bits to the helper.
            let r_j = |c: &Common| if j == 0 { c.r0 } else { c.r1 };
            let z_j = |c: &Common| if j == 0 { c.z0 } else { c.z1 };
            for r in &ranges {
                let masked = par::map(r.len(), |k| {
                    let i = r.start + k;
                    add_mod(u[i], r_j(&commons[i]), bits[i]).0
                });
                let q = par::map(r.len(), |k| {
                    let (i, c) = (r.start + k, &commons[r.start + k]);
                    e[i] ^ add_mod(u[i], r_j(c), bits[i]).1 ^ z_j(c)
                });
                p.send_ring(Role::Helper, "wrap: masked values to P2", &masked)?;
                p.send_bytes(Role::Helper, "wrap: masked bits to P2", q)?;
            }
            Ok(())
        },
    );
    sent?;
    // P0's shares mod 67 of the bits of x come from its stream with P2, piece by piece; P1
    // receives its own below.
    let mut x0_stream = (j == 0).then(|| p.stream(Pair::ClientHelper, Purpose::WrapBits));
    let mut first_pc = Some(first_pc);

    // PrivateCompare(x, r − 1, η'') vectors, piece by piece.
    for r in &ranges {
        let (b0, b1) = (offsets[r.start], offsets[r.end]);
        let pc = first_pc.take().unwrap_or_else(|| draw(&mut st, r));
        #[cfg(test)]
        let pc = {
            let mut pc = pc;
            if crate::testing::leak() == crate::testing::Leak::UnmaskedCompare {
                pc.unmask_for_test();
            }
            pc
        };
        let x_share = match &mut x0_stream {
            Some(x0) => x0.mod_p(b1 - b0),
            None => p.recv_bytes(Role::Helper, "wrap: bit shares from P2", b1 - b0)?,
        };
        let local = rebase(&offsets, r);
        let mut d = vec![0u8; b1 - b0];
        par::for_each_segment(&mut d, &local, |k, out| {
            let i = r.start + k;
            let c = &commons[i];
            let at = local[k]..local[k + 1];
            party_vector(
                j,
                &x_share[at.clone()],
                c.bound(bits[i]),
                c.eta,
                bits[i],
                &pc.get(at),
                out,
            );
        });
        p.send_bytes(Role::Helper, "wrap: comparison vector to P2", d)?;
    }

    // The helper's v, shared: P0's part from the stream, P1's sent piece by piece.
    let v = if j == 0 {
        p.stream(Pair::ClientHelper, Purpose::WrapResult).ring(n)
    } else {
        let mut v = Vec::with_capacity(n);
        for r in &ranges {
            v.extend(p.recv_ring(Role::Helper, "wrap: result share from P2", r.len())?);
        }
        v
    };
    Ok(par::map(n, |i| {
        let (vj, c) = (v[i], &commons[i]);
        // result = v ⊕ (α ⊕ 1 ⊕ η'' ⊕ [r = 0] ⊕ z0 ⊕ z1), a flip both parties know.
        let flip = c.alpha ^ 1 ^ c.eta ^ c.r_is_zero as u8 ^ c.z0 ^ c.z1;
        if flip == 0 {
            vj
        } else if j == 0 {
            1u64.wrapping_sub(vj)
        } else {
            vj.wrapping_neg()
        }
    }))
}

fn helper(
    p: &mut Party,
    bits: &[u32],
    offsets: &[usize],
    ranges: &[std::ops::Range<usize>],
) -> Result<Vec<u64>> {
    let n = bits.len();
    let total_bits = offsets[n];
    // P0's bit shares and result shares depend on no message: draw them while the first
    // piece's masked values arrive.
    let mut x0_stream = p.stream(Pair::ClientHelper, Purpose::WrapBits);
    let mut v0_stream = p.stream(Pair::ClientHelper, Purpose::WrapResult);
    let first_bits = offsets[ranges[0].end];
    let recv_round1 = |p: &mut Party, len: usize| -> Result<_> {
        let m0 = p.recv_ring(Role::Client, "wrap: masked values from P0", len)?;
        let q0 = p.recv_bytes(Role::Client, "wrap: masked bits from P0", len)?;
        let m1 = p.recv_ring(Role::Server, "wrap: masked values from P1", len)?;
        let q1 = p.recv_bytes(Role::Server, "wrap: masked bits from P1", len)?;
        Ok((m0, q0, m1, q1))
    };
    let ((x0, v0), first) = par::beside(
        total_bits,
        || (x0_stream.mod_p(first_bits), v0_stream.ring(n)),
        || recv_round1(p, ranges[0].len()),
    );
    let mut x0 = Some(x0);
    let mut first = Some(first?);
    // x = ũ0 + ũ1 per element, and its carry δ, kept for the result.
    let mut x = Vec::with_capacity(n);
    let mut q = Vec::with_capacity(n);
    for r in ranges {
        let (m0, q0, m1, q1) = match first.take() {
            Some(f) => f,
            None => recv_round1(p, r.len())?,
        };
        let xs = par::map(r.len(), |k| {
            let b = bits[r.start + k];
            add_mod(m0[k] & mask(b), m1[k] & mask(b), b)
        });
        let local = rebase(offsets, r);
        // P0's shares of this piece's bits, from the stream in P0's order.
        let x0 = x0.take().unwrap_or_else(|| x0_stream.mod_p(local[r.len()]));
        let mut x1 = vec![0u8; local[r.len()]];
        par::for_each_segment(&mut x1, &local, |k, out| {
            let x0 = &x0[local[k]..local[k + 1]];
            let b = bits[r.start + k];
            for ((o, b), &s) in out.iter_mut().zip(bits_msb_first(xs[k].0, b)).zip(x0) {
                *o = (b + P - s) % P;
            }
        });
        p.send_bytes(Role::Server, "wrap: bit shares to P1", x1)?;
        x.extend(xs);
        q.extend(q0.iter().zip(&q1).map(|(a, b)| a ^ b));
    }
    for r in ranges {
        let (b0, b1) = (offsets[r.start], offsets[r.end]);
        let d0 = p.recv_bytes(Role::Client, "wrap: comparison vector from P0", b1 - b0)?;
        let d1 = p.recv_bytes(Role::Server, "wrap: comparison vector from P1", b1 - b0)?;
        let v1 = par::map_weighted(r.len(), b1 - b0, |k| {
            let i = r.start + k;
            let at = offsets[i] - b0..offsets[i + 1] - b0;
            let beta = helper_result(&d0[at.clone()], &d1[at]);
            let v = (q[i] ^ x[i].1 ^ beta) as u64;
            v.wrapping_sub(v0[i])
        });
        p.send_ring(Role::Server, "wrap: result share to P1", &v1)?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::counting::Phase;
    use crate::testing::{rand_u64, run3};
    use ksnn_formats::ProtocolConfig;

    #[test]
    fn pieces_cover_the_batch_in_order() {
        for n in [
            0,
            1,
            400,
            PIECE_MIN,
            2 * PIECE_MIN - 1,
            2 * PIECE_MIN,
            100_001,
        ] {
            let p = pieces(n, 64 * n);
            assert!((1..=PIECES_MAX).contains(&p.len()), "{n}");
            assert_eq!(p.iter().map(|r| r.len()).sum::<usize>(), n, "{n}");
            assert!(p.windows(2).all(|w| w[0].end == w[1].start), "{n}");
        }
        assert_eq!(pieces(2 * PIECE_MIN, 0).len(), 2);
        assert_eq!(pieces(PIECE_MIN, 0).len(), 1);
        // A 512×512 layer's truncations: pieces of at most PIECE_BITS compared bits.
        let n = 2_000_000;
        let p = pieces(n, 38 * n);
        assert_eq!(p.len(), (38 * n).div_ceil(PIECE_BITS));
        assert!(p.iter().all(|r| 38 * r.len() <= PIECE_BITS + 38));
        assert_eq!(p.iter().map(|r| r.len()).sum::<usize>(), n);
    }

    #[test]
    fn shares_of_xor_with_the_carry() {
        // 400 elements go as one piece, 40,000 as two (streamed).
        for (bits, n) in [
            (1u32, 400),
            (7, 400),
            (12, 400),
            (63, 400),
            (64, 400),
            (63, 40_000),
        ] {
            let m = mask(bits);
            let mut u0: Vec<u64> = (0..n).map(|_| rand_u64() & m).collect();
            let mut u1: Vec<u64> = (0..n).map(|_| rand_u64() & m).collect();
            // Edge cases: sums of exactly 2^n, 2^n − 1, zeros, maxima.
            u0[..6].copy_from_slice(&[0, m, 1, m, 0, m]);
            u1[..6].copy_from_slice(&[0, 1, m, m, m, 0]);
            let e0: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
            let e1: Vec<u8> = (0..n).map(|i| (i % 5 == 0) as u8).collect();
            let widths = vec![bits; n];
            let out = run3(ProtocolConfig::default(), |p| {
                let (u, e) = match p.role {
                    Role::Client => (u0.clone(), e0.clone()),
                    Role::Server => (u1.clone(), e1.clone()),
                    Role::Helper => (vec![], vec![]),
                };
                wrap_xor(p, &widths, &u, &e).unwrap()
            });
            for i in 0..n {
                let carry = if bits == 64 {
                    u0[i].checked_add(u1[i]).is_none()
                } else {
                    u0[i] + u1[i] > m
                } as u64;
                let expect = e0[i] as u64 ^ e1[i] as u64 ^ carry;
                assert_eq!(
                    out[0].0[i].wrapping_add(out[1].0[i]),
                    expect,
                    "bits {bits} i {i}: {} + {}",
                    u0[i],
                    u1[i]
                );
            }
            // Traffic: 26 + 3n bytes per element, 4 rounds.
            let bytes: u64 = out
                .iter()
                .map(|(_, s)| s.sent_in(Phase::Online).bytes)
                .sum();
            assert_eq!(bytes, n as u64 * (26 + 3 * bits as u64));
        }
    }
}
