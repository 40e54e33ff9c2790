//! Truncation by f bits after a product, two ways:
//!
//! - `LocalShift` (SecureML): each party shifts its own share; no messages. The result is
//!   ⌊y/2^f⌋ or one more, and with probability about |y|/2^64 it is off by 2^(64−f).
//! - `HelperExact`: exactly ⌊y/2^f⌋ for |y| < 2^62. With y' = y + 2^62 ≥ 0 and shares split
//!   as y'_j = h_j·2^f + l_j: ⌊y'/2^f⌋ = h0 + h1 + [l0 + l1 ≥ 2^f] − 2^(64−f)·[y'0 + y'1 ≥ 2^64];
//!   both carries come from one batched run of the wrap-bit protocol (4 rounds,
//!   26 + 3·64 + 26 + 3·f bytes per element).

use ksnn_formats::Truncation;

use crate::par;
use crate::prf::{Label, mask};
use crate::protocol::wrap::wrap_xor;
use crate::protocol::{Party, Result};
use crate::role::Role;

/// SecureML's local share shift by `k` bits: P0 `x0 >> k`, P1 `−((−x1) >> k)` (logical).
pub fn local_shift(role: Role, v: u64, k: u32) -> u64 {
    if k == 0 {
        return v;
    }
    match role {
        Role::Client => v >> k,
        _ => (v.wrapping_neg() >> k).wrapping_neg(),
    }
}

/// Truncates `n` shared values by the program's f bits with its truncation kind.
pub fn truncate(p: &mut Party, y: Vec<u64>, n: usize) -> Result<Vec<u64>> {
    let f = p.frac_bits as u32;
    match p.config.truncation {
        Truncation::LocalShift => Ok(par::map(y.len(), |i| local_shift(p.role, y[i], f))),
        Truncation::HelperExact => exact(p, y, n, f),
    }
}

const BIAS: u64 = 1 << 62;

/// Elements one exact truncation run takes at most: a larger batch goes in waves of this
/// many, one after another, so the per-element material of the wrap-bit runs (about 110 bytes
/// an element) stays near 230 MB however large the layer (a 512×512 segmentor's first layers
/// truncate 2–6M elements each). Each further wave costs the protocol's 4 rounds again.
pub const WAVE: usize = 1 << 21;

fn exact(p: &mut Party, y: Vec<u64>, n: usize, f: u32) -> Result<Vec<u64>> {
    if n <= WAVE {
        return exact_wave(p, y, n, f);
    }
    let mut out = Vec::with_capacity(y.len());
    for (w, start) in (0..n).step_by(WAVE).enumerate() {
        let len = WAVE.min(n - start);
        // P2 holds no values (its `y` is empty).
        let part = y
            .get(start..start + len)
            .map_or_else(Vec::new, <[u64]>::to_vec);
        // A wave of its own address: no two waves draw the same masks (docs/security.md §2.3).
        out.extend(exact_wave(&mut p.sub(Label::Wave(w as u32)), part, len, f)?);
    }
    Ok(out)
}

fn exact_wave(p: &mut Party, mut y: Vec<u64>, n: usize, f: u32) -> Result<Vec<u64>> {
    // Element i contributes two wrap instances: its low f bits (2i) and its 64 bits (2i+1).
    let widths: Vec<u32> = (0..n).flat_map(|_| [f, 64]).collect();
    if p.role == Role::Helper {
        wrap_xor(p, &widths, &[], &[])?;
        return Ok(Vec::new());
    }
    if p.role == Role::Client {
        y.iter_mut().for_each(|v| *v = v.wrapping_add(BIAS));
    }
    let u = par::map(2 * n, |k| {
        let v = y[k / 2];
        if k % 2 == 0 { v & mask(f) } else { v }
    });
    let carries = wrap_xor(p, &widths, &u, &vec![0; 2 * n])?;
    let role = p.role;
    Ok(par::map(n, |i| {
        let (v, c) = (y[i], &carries[2 * i..2 * i + 2]);
        let mut out = (v >> f).wrapping_add(c[0]).wrapping_sub(c[1] << (64 - f));
        if role == Role::Client {
            out = out.wrapping_sub(BIAS >> f);
        }
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::trunc_exact;
    use crate::testing::{mine, rand_u64, run3, split};
    use ksnn_formats::ProtocolConfig;

    fn run(values: &[u64], truncation: Truncation) -> Vec<u64> {
        let shares = split(values);
        let config = ProtocolConfig {
            truncation,
            ..Default::default()
        };
        let out = run3(config, |p| {
            truncate(p, mine(p.role, &shares), values.len()).unwrap()
        });
        crate::ring::add(&out[0].0, &out[1].0)
    }

    #[test]
    fn helper_exact_is_floor_over_the_whole_range() {
        let lim = 1i64 << 62;
        let mut values: Vec<u64> = (0..5000)
            .map(|_| ((rand_u64() as i64) >> 2) as u64)
            .collect();
        values.extend([0i64, -1, 1, 4095, 4096, -4096, -4097, lim - 1, -lim].map(|v| v as u64));
        let got = run(&values, Truncation::HelperExact);
        for (v, g) in values.iter().zip(&got) {
            assert_eq!(*g, trunc_exact(*v, 12), "trunc({})", *v as i64);
        }
    }

    /// A batch above [`WAVE`] goes in waves: still exact everywhere, including across the
    /// waves' seams, and each wave adds the protocol's rounds.
    #[test]
    fn large_batches_are_exact_in_waves() {
        let n = WAVE + 1000;
        let values: Vec<u64> = (0..n).map(|_| ((rand_u64() as i64) >> 20) as u64).collect();
        let shares = split(&values);
        let config = ProtocolConfig {
            truncation: Truncation::HelperExact,
            ..Default::default()
        };
        let out = run3(config, |p| truncate(p, mine(p.role, &shares), n).unwrap());
        let got = crate::ring::add(&out[0].0, &out[1].0);
        assert_eq!(got.len(), n);
        for k in [0, WAVE - 1, WAVE, n - 1] {
            assert_eq!(got[k], trunc_exact(values[k], 12), "element {k}");
        }
        assert!(
            got.iter()
                .zip(&values)
                .all(|(g, v)| *g == trunc_exact(*v, 12))
        );
        let rounds = out
            .iter()
            .map(|o| o.1.depth_at_end.values().max().copied().unwrap_or(0));
        assert_eq!(rounds.max(), Some(8), "two waves of 4 rounds");
    }

    #[test]
    fn local_shift_is_within_one_for_realistic_values() {
        let values: Vec<u64> = (0..5000)
            .map(|_| ((rand_u64() as i64) >> 30) as u64)
            .collect();
        let got = run(&values, Truncation::LocalShift);
        for (v, g) in values.iter().zip(&got) {
            let d = g.wrapping_sub(trunc_exact(*v, 12)) as i64;
            assert!(d == 0 || d == 1, "trunc({}) off by {d}", *v as i64);
        }
    }
}
