//! DReLU by the wrap-bit protocol; see the module above for why not ShareConvert.

use crate::par;
use crate::protocol::trunc::local_shift;
use crate::protocol::wrap::wrap_xor;
use crate::protocol::{Party, Result};
use crate::role::Role;

/// Shares (over Z_2^64) of `[a ≥ 0]` for `n` shared values `a` (P2: empty slice).
/// Several DReLU batches in one step need distinct addresses: call with `p.sub(..)`.
pub fn drelu(p: &mut Party, a: &[u64], n: usize) -> Result<Vec<u64>> {
    let (k, g) = (p.config.approx.k as u32, p.config.approx.g as u32);
    let bits = 63 - g;
    let widths = vec![bits; n];
    if p.role == Role::Helper {
        return wrap_xor(p, &widths, &[], &[]);
    }
    let (role, low) = (p.role, crate::prf::mask(63));
    let shifted = |i: usize| local_shift(role, a[i], k) << g;
    let u = par::map(a.len(), |i| (shifted(i) & low) >> g);
    // P0 flips its MSB bit: DReLU = 1 − MSB = 1 ⊕ MSB.
    let e = par::map(a.len(), |i| {
        (shifted(i) >> 63) as u8 ^ (role == Role::Client) as u8
    });
    wrap_xor(p, &widths, &u, &e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{mine, online_cost, rand_u64, run3, split};
    use ksnn_formats::{ApproxCompare, ProtocolConfig};

    fn secure(values: &[u64], config: ProtocolConfig) -> (Vec<u64>, u64, u32) {
        let shares = split(values);
        let out = run3(config, |p| {
            let x = mine(p.role, &shares);
            drelu(p, &x, values.len()).unwrap()
        });
        let bits = crate::ring::add(&out[0].0, &out[1].0);
        let (bytes, rounds) = online_cost(&out);
        (bits, bytes, rounds)
    }

    #[test]
    fn exact_on_random_and_edge_values() {
        let mut values: Vec<u64> = (0..100_000).map(|_| rand_u64()).collect();
        let edges: [i64; 10] = [
            0,
            -1,
            1,
            1 << 62,
            -(1 << 62),
            i64::MAX,
            i64::MIN,
            2,
            -2,
            i64::MAX - 1,
        ];
        values.extend(edges.iter().map(|&v| v as u64));
        // Small magnitudes, as activations are.
        values.extend((0..2000).map(|i| (i as i64 - 1000) as u64));
        let (bits, bytes, rounds) = secure(&values, ProtocolConfig::default());
        for (v, b) in values.iter().zip(&bits) {
            assert_eq!(*b, ((*v as i64) >= 0) as u64, "DReLU({})", *v as i64);
        }
        let n = values.len() as u64;
        assert_eq!(bytes, n * (26 + 3 * 63));
        assert!(bytes <= n * (112 + 6 * 64), "within SecureNN's 112 + 6·NB");
        assert!(rounds <= 8, "rounds {rounds}");
        assert_eq!(rounds, 4);
    }

    #[test]
    fn approximate_comparison_limits() {
        // g = 44, k = 0 (the seed's segmentation setting): correct below 2^19 in magnitude.
        let config = ProtocolConfig {
            approx: ApproxCompare { k: 0, g: 44 },
            ..Default::default()
        };
        let limit = 1i64 << 19;
        let inside: Vec<u64> = [-limit, -limit + 1, -1, 0, 1, limit - 1, 12345, -54321]
            .iter()
            .map(|&v| v as u64)
            .collect();
        let (bits, bytes, _) = secure(&inside, config);
        for (v, b) in inside.iter().zip(&bits) {
            assert_eq!(
                *b,
                ((*v as i64) >= 0) as u64,
                "DReLU({}) inside the limit",
                *v as i64
            );
        }
        assert_eq!(
            bytes,
            inside.len() as u64 * (26 + 3 * 19),
            "only 19 bits compared"
        );
        // Beyond it: the documented failure — the value wraps in the top bits and the
        // sign may be wrong — but no panic and a 0/1 result.
        let beyond: Vec<u64> = [limit, 3 * limit, -3 * limit, i64::MAX, i64::MIN]
            .iter()
            .map(|&v| v as u64)
            .collect();
        let (bits, _, _) = secure(&beyond, config);
        assert!(bits.iter().all(|&b| b <= 1));
        assert_eq!(
            bits[0], 0,
            "2^19 wraps to -2^19 in 20 bits: reported negative"
        );

        // k = 5, g = 48 (the seed's classification setting): correct for |a| < 2^20 − 2^k
        // (the local shift may add one unit of 2^k), except within 2^k below zero, where
        // that unit can round a small negative up to zero.
        let config = ProtocolConfig {
            approx: ApproxCompare { k: 5, g: 48 },
            ..Default::default()
        };
        let vals: Vec<u64> = [(1 << 20) - 33, -(1 << 20), 100, -100, 0, 31]
            .iter()
            .map(|&v: &i64| v as u64)
            .collect();
        let (bits, bytes, _) = secure(&vals, config);
        for (v, b) in vals.iter().zip(&bits) {
            assert_eq!(
                *b,
                ((*v as i64) >= 0) as u64,
                "DReLU({}) with k=5, g=48",
                *v as i64
            );
        }
        assert_eq!(bytes, vals.len() as u64 * (26 + 3 * 15));
    }
}
