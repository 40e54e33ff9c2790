//! Max pooling by a tree of secure maxima: max(a, b) = a + DReLU(b − a)·(b − a). The window's
//! kh·kw taps are reduced pairwise, so a 3×3 pool takes 4 levels (each one DReLU batch and
//! one product) instead of the original's 8 sequential steps; the DReLU count is the same,
//! kh·kw − 1 per output. Padding taps repeat an in-bounds value, so padding never wins.

use crate::protocol::beaver::{self, MulShape};
use crate::protocol::drelu::drelu;
use crate::protocol::{Party, Result};
use crate::role::Role;

/// Sizes of the successive reduction levels for `k` taps of `n` outputs: pairs per level.
pub fn levels(k: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut m = k;
    while m > 1 {
        out.push(m / 2);
        m = m.div_ceil(2);
    }
    out
}

/// Offline: one triple per level.
pub fn offline(p: &mut Party, k: usize, n: usize) -> Result<Vec<Option<Vec<u64>>>> {
    levels(k)
        .iter()
        .enumerate()
        .map(|(l, &pairs)| beaver::offline(p, 2 * l as u32 + 1, &MulShape::elementwise(pairs * n)))
        .collect()
}

/// Online: `taps[t]` are the t-th window values of every output (shares; P2: empty vectors).
pub fn online(
    p: &mut Party,
    mut taps: Vec<Vec<u64>>,
    n: usize,
    pre: &[Option<Vec<u64>>],
) -> Result<Vec<u64>> {
    let helper = p.role == Role::Helper;
    for (l, &pairs) in levels(taps.len()).iter().enumerate() {
        // d = b − a for every pair, all pairs in one batch.
        let mut d = Vec::with_capacity(pairs * n);
        if !helper {
            for t in 0..pairs {
                d.extend(crate::ring::sub(&taps[2 * t + 1], &taps[2 * t]));
            }
        }
        let bits = drelu(p, 2 * l as u32, &d, pairs * n)?;
        let shape = MulShape::elementwise(pairs * n);
        let delta = beaver::online(p, 2 * l as u32 + 1, &shape, &d, &bits, pre[l].as_deref())?;
        let odd = taps.len() % 2 == 1;
        let last = if odd { taps.pop() } else { None };
        let mut next = Vec::with_capacity(pairs + odd as usize);
        for t in 0..pairs {
            let mut m = std::mem::take(&mut taps[2 * t]);
            if !helper {
                crate::ring::add_assign(&mut m, &delta[t * n..(t + 1) * n]);
            }
            next.push(m);
        }
        next.extend(last);
        taps = next;
    }
    Ok(taps.pop().unwrap_or_default())
}
