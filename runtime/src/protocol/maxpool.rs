//! Max pooling by a tree of maxima: max(a, b) = a + DReLU(b − a)·(b − a). The window's
//! kh·kw taps are reduced pairwise, so a 3×3 pool takes 4 levels (each one select: a DReLU
//! batch and its product) instead of the original's 8 sequential steps; the DReLU count is the same,
//! kh·kw − 1 per output. Padding taps repeat an in-bounds value, so padding never wins.

use crate::protocol::Result;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;

/// Sizes of the successive reduction levels for `k` taps: pairs per level.
pub fn levels(k: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut m = k;
    while m > 1 {
        out.push(m / 2);
        m = m.div_ceil(2);
    }
    out
}

/// The maximum over `taps` (`taps[t]`: the t-th window value of each of `n` outputs; empty
/// vectors for a party that holds nothing). Level `l` is batch `l` of its DReLUs and products.
pub fn max_tree<A: Arith>(a: &mut A, mut taps: Vec<Vec<u64>>, n: usize) -> Result<Vec<u64>> {
    for (l, &pairs) in levels(taps.len()).iter().enumerate() {
        let level = l as u32;
        // d = b − a for every pair, all pairs in one batch.
        let mut d = Vec::new();
        if a.holds() {
            d.reserve(pairs * n);
            for t in 0..pairs {
                d.extend(crate::ring::sub(&taps[2 * t + 1], &taps[2 * t]));
            }
        }
        let delta = a.select(level, &MulShape::elementwise(pairs * n), &d)?;
        let last = if taps.len() % 2 == 1 {
            taps.pop()
        } else {
            None
        };
        let mut next = Vec::with_capacity(pairs + 1);
        for t in 0..pairs {
            let mut m = std::mem::take(&mut taps[2 * t]);
            if a.holds() {
                crate::ring::add_assign(&mut m, &delta[t * n..(t + 1) * n]);
            }
            next.push(m);
        }
        next.extend(last);
        taps = next;
    }
    Ok(taps.pop().unwrap_or_default())
}
