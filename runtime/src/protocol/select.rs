//! Select: `x[i] · DReLU(Σ x over i's group)`, the step every comparison layer ends in —
//! block ReLU (groups: blocks of pixels), max pool and clip (groups of one).
//!
//! By parts (`securenn`, and the reference): a DReLU batch on the group sums, then a
//! compressed Beaver product keeps or zeroes each group.
//!
//! Fused (`fss`, `docs/design.md` §4.14, `docs/security.md` §3.13): the DReLU's mask *is* the product's mask. P0 and P1
//! open E = x − A for the product anyway; the group sums of E are ŝ = s − ΣA, so with
//! r = −ΣA (which P2, the dealer of A, knows) ŝ is the comparison's masked value and needs
//! no message of its own. P2 deals the DCF keys for that r beside the triple. Online:
//!
//! 1. open E (8 bytes per element each way), evaluate the keys at the sums of E;
//! 2. open F = DReLU − B (8 bytes per group each way) and combine as Beaver.
//!
//! Two rounds and the product's bytes only: the comparison costs no online byte.

use crate::prf::Label;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::{self, MulShape, Triple};
use crate::protocol::drelu::fss;
use crate::protocol::trunc::local_shift;
use crate::protocol::{Party, ProtocolError, Result};
use crate::role::Role;

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
    /// P0's triple share C0.
    c0: Option<Vec<u64>>,
    /// The comparison keys (P0 and P1).
    keys: Option<fss::Keys>,
}

/// Offline, fused: P2 deals the product's triple and the keys of the comparisons masked by
/// r = −ΣA over each group; P0 and P1 receive theirs. `p` is addressed at the step.
pub fn offline(p: &mut Party, level: u32, shape: &MulShape) -> Result<Dealt> {
    let (c0, a) = beaver::offline_with_mask(&mut p.sub(Label::Product(level)), shape)?;
    let (w, k) = (fss::width(p), p.config.approx.k as u32);
    let keys = match p.role {
        Role::Helper => {
            // z = ŝ + ΣA is compared as P0's and P1's would-be shares ŝ and ΣA, each shifted
            // locally by k (as the stand-alone DReLU does): z′ = x̂′ − r′ with
            // x̂′ = shift(ŝ) and r′ = −shift(ΣA), w bits each.
            let r: Vec<u64> = shape
                .sums(&a)
                .iter()
                .map(|&s| local_shift(Role::Server, s, k).wrapping_neg() & crate::prf::mask(w))
                .collect();
            fss::deal(&mut p.sub(Label::Compare(level)), &r, w)?;
            None
        }
        _ => Some(fss::receive(
            &mut p.sub(Label::Compare(level)),
            shape.n_y,
            w,
        )?),
    };
    Ok(Dealt { c0, keys })
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
    let keys = match dealt.keys {
        Some(keys) if keys.len() == shape.n_y && x.len() == shape.n_x => keys,
        _ => {
            return Err(ProtocolError::Preprocessing {
                role,
                what: "a select's comparison keys",
            });
        }
    };
    let (w, k) = (fss::width(p), p.config.approx.k as u32);
    let t = Triple::of(&p.sub(Label::Product(level)), shape, dealt.c0.as_deref());
    // Round 1: E = x − A, whose group sums are the comparisons' masked values.
    let mut e = t.mask_x(x);
    let other = p.exchange_ring("select: open x − A", &e)?;
    crate::ring::add_assign(&mut e, &other);
    let opened: Vec<u64> = shape
        .sums(&e)
        .iter()
        .map(|&s| local_shift(Role::Client, s, k) & crate::prf::mask(w))
        .collect();
    let bits = fss::evaluate(&p.sub(Label::Compare(level)), &keys, &opened, w);
    // Round 2: F = DReLU − B, then Beaver's combination.
    let mut f = t.mask_y(&bits);
    let other = p.exchange_ring("select: open DReLU − B", &f)?;
    crate::ring::add_assign(&mut f, &other);
    Ok(t.combine(p.j(), shape, &e, &f))
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
                    assert_eq!(bytes, 16 * nx + 16 * ny, "E and F each way, nothing else");
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
