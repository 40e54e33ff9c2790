//! Select: `x[i] · DReLU(Σ x over i's group)`, the step every comparison layer ends in —
//! block ReLU (groups: blocks of pixels), max pool and clip (groups of one).
//!
//! By parts (`securenn`, and the reference): a DReLU batch on the group sums, then a
//! compressed Beaver product keeps or zeroes each group.
//!
//! Fused (`fss`, `docs/design.md` §4.14, `docs/security.md` §3.13): the comparison's mask is
//! the product's. P2 deals A (the mask of x, A = A0 + A1 from its streams with P0 and P1); the
//! group sums of E = x − A are ŝ = s − ΣA, so with r = −ΣA, which P2 knows, the opening of E
//! carries every comparison's masked value. P2 deals the DCF keys for that r with outputs in
//! Z_2 (a third smaller than Z_2^64 keys), and, to turn the XOR-shared bit b into a factor, a
//! random bit δ (XOR shares δ_j from the streams) with additive shares of δ and of δ·A.
//! Online:
//!
//! 1. open E (8 bytes per element each way); evaluate the keys at the sums of E: XOR shares
//!    b_j of each group's DReLU;
//! 2. open e = b ⊕ δ (one bit per group each way); then b = e + (1 − 2e)·δ, and
//!    y = b·x = b·E + e·A + (1 − 2e)·δA, all local on shares.
//!
//! Two rounds, and 8 bytes per element plus a bit per group each way: the comparison costs no
//! online byte, and the select's second round is 64 times smaller than a Beaver opening.

use crate::fss::dcf::Output;
use crate::prf::{Label, Purpose, mask};
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;
use crate::protocol::drelu::fss;
use crate::protocol::trunc::local_shift;
use crate::protocol::{Party, ProtocolError, Result};
use crate::role::{Pair, Role};

/// The select by its parts: DReLU of the group sums at `Compare(level)`, then the product at
/// `Product(level)`.
pub fn by_parts<A: Arith + ?Sized>(
    a: &mut A,
    level: u32,
    shape: &MulShape,
    x: &[u64],
) -> Result<Vec<u64>> {
    let sums = if a.holds() { shape.sums(x) } else { Vec::new() };
    let bits = a.drelu(Label::Compare(level), &sums, shape.n_y)?;
    a.mul(Label::Product(level), shape, x, &bits)
}

/// What the fused select's offline pass leaves P0 and P1 (P2: nothing).
pub struct Dealt {
    /// P0's additive shares of δ (per group) and δ·A (per element), from P2; P1 draws its own.
    shares0: Option<Vec<u64>>,
    /// The comparison keys (P0 and P1).
    keys: Option<fss::Keys>,
}

/// One computing party's select masks, from its stream with P2 at `Product(level)`: A_j (per
/// element) and δ_j (a bit per group); P1 also draws its additive shares of δ and δ·A.
struct Masks {
    a: Vec<u64>,
    delta: Vec<u8>,
    /// [δ]_j then [δA]_j (P1's drawn, P0's received).
    shares: Vec<u64>,
}

fn masks(p: &Party, pair: Pair, shape: &MulShape) -> Masks {
    let mut st = p.stream(pair, Purpose::SelectMask);
    let a = st.ring(shape.n_x);
    let delta = st.bits(shape.n_y);
    let shares = if pair == Pair::ServerHelper {
        st.ring(shape.n_y + shape.n_x)
    } else {
        Vec::new()
    };
    Masks { a, delta, shares }
}

const SHARES: &str = "select: shares of δ and δ·A to P0";

/// Offline, fused: P2 deals the masks, P0's shares of δ and δ·A, and the keys of the
/// comparisons masked by r = −ΣA over each group; P0 and P1 receive theirs. `p` is addressed
/// at the step.
pub fn offline(p: &mut Party, level: u32, shape: &MulShape) -> Result<Dealt> {
    let (w, k) = (fss::width(p), p.config.approx.k as u32);
    let (n_x, n_y) = (shape.n_x, shape.n_y);
    match p.role {
        Role::Helper => {
            let (m0, m1) = {
                let at = p.sub(Label::Product(level));
                (
                    masks(&at, Pair::ClientHelper, shape),
                    masks(&at, Pair::ServerHelper, shape),
                )
            };
            let a = crate::ring::add(&m0.a, &m1.a);
            let delta: Vec<u64> = (0..n_y)
                .map(|g| u64::from(m0.delta[g] ^ m1.delta[g]))
                .collect();
            // P0's shares: δ − [δ]_1, then δ·A − [δA]_1.
            let mut shares0: Vec<u64> = (0..n_y)
                .map(|g| delta[g].wrapping_sub(m1.shares[g]))
                .collect();
            shares0.extend(crate::par::map(n_x, |i| {
                (delta[shape.y_of(i)] * a[i]).wrapping_sub(m1.shares[n_y + i])
            }));
            p.sub(Label::Product(level))
                .send_ring(Role::Client, SHARES, &shares0)?;
            // z = ŝ + ΣA is compared as P0's and P1's would-be shares ŝ and ΣA, each shifted
            // locally by k (as the stand-alone DReLU does): z′ = x̂′ − r′ with
            // x̂′ = shift(ŝ) and r′ = −shift(ΣA), w bits each.
            let r: Vec<u64> = shape
                .sums(&a)
                .iter()
                .map(|&s| local_shift(Role::Server, s, k).wrapping_neg() & mask(w))
                .collect();
            fss::deal(&mut p.sub(Label::Compare(level)), &r, w, Output::Bit)?;
            Ok(Dealt {
                shares0: None,
                keys: None,
            })
        }
        role => {
            let shares0 = if role == Role::Client {
                Some(
                    p.sub(Label::Product(level))
                        .recv_ring(Role::Helper, SHARES, n_y + n_x)?,
                )
            } else {
                None
            };
            let keys = fss::receive(&mut p.sub(Label::Compare(level)), n_y, w, Output::Bit)?;
            Ok(Dealt {
                shares0,
                keys: Some(keys),
            })
        }
    }
}

/// Online, fused: shares of `x[i] · DReLU(Σ x over i's group)` (P2: empty, no message).
pub fn online(
    p: &mut Party,
    level: u32,
    shape: &MulShape,
    x: &[u64],
    dealt: Dealt,
) -> Result<Vec<u64>> {
    if p.role == Role::Helper {
        return Ok(Vec::new());
    }
    let role = p.role;
    let (n_x, n_y) = (shape.n_x, shape.n_y);
    let keys = match dealt.keys {
        Some(keys) if keys.len() == n_y && x.len() == n_x => keys,
        _ => {
            return Err(ProtocolError::Preprocessing {
                role,
                what: "a select's comparison keys",
            });
        }
    };
    let (w, k) = (fss::width(p), p.config.approx.k as u32);
    let mut m = masks(
        &p.sub(Label::Product(level)),
        Pair::of(role, Role::Helper).expect("P0 or P1"),
        shape,
    );
    if let Some(shares0) = dealt.shares0 {
        m.shares = shares0;
    }
    if m.shares.len() != n_y + n_x {
        return Err(ProtocolError::Preprocessing {
            role,
            what: "a select's shares of δ and δ·A",
        });
    }
    let (d_shares, da_shares) = m.shares.split_at(n_y);
    // Round 1: E = x − A, whose group sums are the comparisons' masked values.
    let mut e = crate::ring::sub(x, &m.a);
    let other = p.exchange_ring("select: open x − A", &e)?;
    crate::ring::add_assign(&mut e, &other);
    let opened: Vec<u64> = shape
        .sums(&e)
        .iter()
        .map(|&s| local_shift(Role::Client, s, k) & mask(w))
        .collect();
    let b = fss::evaluate(&p.sub(Label::Compare(level)), &keys, &opened, w);
    // Round 2: e = b ⊕ δ, a bit per group, packed.
    let mine: Vec<u8> = (0..n_y).map(|g| (b[g] as u8 & 1) ^ m.delta[g]).collect();
    let theirs = p.exchange_bits("select: open DReLU ⊕ δ", &mine)?;
    let flips: Vec<u64> = mine
        .iter()
        .zip(&theirs)
        .map(|(a, b)| u64::from(a ^ b))
        .collect();
    let j = p.j();
    // [b]_j = j0·e + (1 − 2e)·[δ]_j; [y]_i = [b]·E_i + e·[A]_i + (1 − 2e)·[δA]_i.
    let sign = |f: u64| 1u64.wrapping_sub(2 * f);
    let bit: Vec<u64> = (0..n_y)
        .map(|g| {
            let f = flips[g];
            (f * (1 - j)).wrapping_add(sign(f).wrapping_mul(d_shares[g]))
        })
        .collect();
    Ok(crate::par::map(n_x, |i| {
        let g = shape.y_of(i);
        let f = flips[g];
        bit[g]
            .wrapping_mul(e[i])
            .wrapping_add(f.wrapping_mul(m.a[i]))
            .wrapping_add(sign(f).wrapping_mul(da_shares[i]))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::secure::Secure;
    use crate::reference::Clear;
    use crate::testing::{mine, online_cost, rand_u64, run3_passes, split};
    use ksnn_formats::{ApproxCompare, DreluProtocol, ProtocolConfig};

    /// A compressed shape: `groups` groups of uneven sizes over `n` elements.
    fn grouped(n: usize, groups: usize) -> MulShape {
        MulShape {
            n_x: n,
            n_y: groups,
            map: Some((0..n).map(|i| ((i * i) % groups) as u32).collect()),
        }
    }

    /// Selecting on shares, both passes: the reconstructed result, online bytes of all
    /// parties and online rounds.
    fn secure(config: ProtocolConfig, shape: &MulShape, x: &[u64]) -> (Vec<u64>, u64, u32) {
        let shares = split(x);
        let out = run3_passes(config, |a: &mut Secure| {
            let role = a.role();
            a.select(0, shape, &mine(role, &shares))
        });
        let (bytes, rounds) = online_cost(&out);
        (crate::ring::add(&out[0].0, &out[1].0), bytes, rounds)
    }

    fn clear(config: ProtocolConfig, shape: &MulShape, x: &[u64]) -> Vec<u64> {
        let mut program = ksnn_formats::example::tiny_cnn(1).0;
        program.protocol = config;
        by_parts(&mut Clear::new(&program), 0, shape, x).unwrap()
    }

    /// Fused (fss) and by parts (securenn) both give the reference's select, on groups and
    /// on single elements, for values near zero and anywhere on the ring; the fused one in
    /// two rounds and the product's bytes only.
    #[test]
    fn fused_and_by_parts_equal_the_reference() {
        let mut x: Vec<u64> = (0..3000).map(|i| (i as i64 % 401 - 200) as u64).collect();
        x.extend((0..1000).map(|_| rand_u64()));
        x.extend([0, u64::MAX, 1 << 63, (1 << 63) - 1]);
        for shape in [grouped(x.len(), 97), MulShape::elementwise(x.len())] {
            for drelu in [DreluProtocol::SecureNn, DreluProtocol::Fss] {
                let config = ProtocolConfig {
                    drelu,
                    ..Default::default()
                };
                let (got, bytes, rounds) = secure(config, &shape, &x);
                assert_eq!(got, clear(config, &shape, &x), "{drelu:?}");
                if drelu == DreluProtocol::Fss {
                    let (nx, ny) = (shape.n_x as u64, shape.n_y as u64);
                    assert_eq!(
                        bytes,
                        16 * nx + 2 * ny.div_ceil(8),
                        "E and a bit per group each way, nothing else"
                    );
                    assert_eq!(rounds, 2);
                }
            }
        }
    }

    /// Approximate comparison in the fused select: the same decisions as the reference
    /// within its limits (up to the local shift's unit for k > 0, which the values avoid).
    #[test]
    fn fused_approximate_comparison() {
        for approx in [ApproxCompare { k: 0, g: 44 }, ApproxCompare { k: 5, g: 48 }] {
            let config = ProtocolConfig {
                drelu: DreluProtocol::Fss,
                approx,
                ..Default::default()
            };
            // Each group's elements share a value, so its sum keeps the sign, stays inside
            // 2^18 and away from 0 by more than 2^k.
            let shape = grouped(2000, 41);
            let x: Vec<u64> = (0..2000)
                .map(|i| {
                    let g = shape.y_of(i) as i64;
                    let v = 10 * g + 100;
                    (if g % 2 == 0 { v } else { -v }) as u64
                })
                .collect();
            let sums = shape.sums(&x);
            for (g, &s) in sums.iter().enumerate() {
                let s = (s as i64).unsigned_abs();
                assert!(s < 1 << 18 && (s > 64 || s == 0), "group {g}: {s}");
            }
            let (got, _, _) = secure(config, &shape, &x);
            assert_eq!(got, clear(config, &shape, &x), "{approx:?}");
        }
    }
}
