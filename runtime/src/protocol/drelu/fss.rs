//! DReLU from a distributed comparison function (issue 17): the algebra, as pure functions.
//! The messages around it (P2 deals offline, P0 and P1 open one masked value online) are not
//! wired yet, so `Model::new` still refuses `drelu = "fss"`.
//!
//! P2 draws a mask r, shares it, and deals the keys of the comparison c = [x̂′ < r′] on the
//! low 63 bits, with payload β = 1 − 2·MSB(r), plus shares of MSB(r). P0 and P1 open
//! x̂ = x + r. Because x = x̂ − r, the top bit of x is
//!
//! ```text
//!     MSB(x) = MSB(x̂) ⊕ MSB(r) ⊕ [x̂′ < r′]        (x̂′, r′: the low 63 bits)
//! ```
//!
//! (the low bits borrow exactly when x̂′ < r′), and MSB(r) ⊕ c = MSB(r) + (1 − 2·MSB(r))·c,
//! so the key's output plus the shares of MSB(r) are shares of MSB(r) ⊕ c. With MSB(x̂)
//! public, DReLU = 1 − MSB(x) is linear in those: exact on the whole ring.

use crate::fss::dcf::{Key, deal, eval};
use crate::fss::prg::Prg;
use crate::prf::mask;

/// What P2 deals one party for one DReLU.
#[derive(Clone, Debug)]
pub struct Material {
    /// The party's share of the mask r (mod 2^64).
    pub r: u64,
    /// The party's share of MSB(r) (mod 2^64).
    pub msb_r: u64,
    /// The party's key of β·[x̂′ < r′], β = 1 − 2·MSB(r).
    pub key: Key,
}

/// The dealer's side for one DReLU: from the mask `r`, the share splits `r0` and `m0` (P0's
/// shares of r and of MSB(r)), and the DCF roots — all uniform, secret — the material of P0
/// and P1.
pub fn deal_one(prg: &impl Prg, r: u64, r0: u64, m0: u64, roots: [u128; 2]) -> [Material; 2] {
    let msb = r >> 63;
    let beta = 1u64.wrapping_sub(2 * msb);
    let [k0, k1] = deal(prg, 63, r & mask(63), beta, roots);
    [
        Material {
            r: r0,
            msb_r: m0,
            key: k0,
        },
        Material {
            r: r.wrapping_sub(r0),
            msb_r: msb.wrapping_sub(m0),
            key: k1,
        },
    ]
}

/// Party `j`'s share (mod 2^64) of DReLU(x) = [x ≥ 0] from the opened x̂ = x + r and its
/// material.
pub fn eval_one(prg: &impl Prg, j: u8, opened: u64, m: &Material) -> u64 {
    // Shares of MSB(r) ⊕ [x̂′ < r′].
    let c = eval(prg, &m.key, opened & mask(63)).wrapping_add(m.msb_r);
    // MSB(x) = MSB(x̂) ⊕ that; DReLU = 1 − MSB(x). P0 adds the public constants.
    let msb = if opened >> 63 == 0 {
        c
    } else if j == 0 {
        1u64.wrapping_sub(c)
    } else {
        c.wrapping_neg()
    };
    if j == 0 {
        1u64.wrapping_sub(msb)
    } else {
        msb.wrapping_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fss::prg::AesPrg;
    use crate::testing::rand_u64;

    /// The whole exchange on cleartext shares: deal, open x + r, evaluate; the two results
    /// add up to [x ≥ 0] on random values and on the ring's edges.
    #[test]
    fn exact_on_random_and_edge_values() {
        let prg = AesPrg::default();
        let mut values: Vec<u64> = (0..3000).map(|_| rand_u64()).collect();
        values.extend(
            [
                0i64,
                -1,
                1,
                2,
                -2,
                1 << 62,
                -(1 << 62),
                i64::MAX,
                i64::MIN,
                i64::MAX - 1,
                i64::MIN + 1,
            ]
            .iter()
            .map(|&v| v as u64),
        );
        values.extend((0..400).map(|i| (i as i64 - 200) as u64));
        let root = || (u128::from(rand_u64()) << 64) | u128::from(rand_u64());
        for (k, &x) in values.iter().enumerate() {
            // Masks at the ring's corners too: r = 0, 2^63 − 1, 2^63, 2^64 − 1.
            let r = match k % 50 {
                0 => 0,
                1 => (1 << 63) - 1,
                2 => 1 << 63,
                3 => u64::MAX,
                _ => rand_u64(),
            };
            let m = deal_one(&prg, r, rand_u64(), rand_u64(), [root(), root()]);
            let x0 = rand_u64();
            let x1 = x.wrapping_sub(x0);
            // Each party sends its x_j + r_j; both learn x̂ = x + r.
            let opened = x0
                .wrapping_add(m[0].r)
                .wrapping_add(x1)
                .wrapping_add(m[1].r);
            let got =
                eval_one(&prg, 0, opened, &m[0]).wrapping_add(eval_one(&prg, 1, opened, &m[1]));
            assert_eq!(got, ((x as i64) >= 0) as u64, "x = {} r = {r}", x as i64);
        }
    }
}
