//! Clip (ReLU6 and friends): `clip(x, lo, hi) = lo + relu(x − lo) − relu(x − hi)`, both
//! ReLUs in one DReLU batch and one product.

use crate::protocol::beaver::{self, MulShape};
use crate::protocol::drelu::drelu;
use crate::protocol::{Party, Result};
use crate::role::Role;

pub fn offline(p: &mut Party, n: usize) -> Result<Option<Vec<u64>>> {
    beaver::offline(p, 1, &MulShape::elementwise(2 * n))
}

/// `lo`, `hi` are raw fixed-point bounds.
pub fn online(
    p: &mut Party,
    x: &[u64],
    n: usize,
    lo: i64,
    hi: i64,
    c0: Option<&[u64]>,
) -> Result<Vec<u64>> {
    let helper = p.role == Role::Helper;
    let client = p.role == Role::Client;
    // Public constants are added by P0 only.
    let shift = |v: u64, c: i64| if client { v.wrapping_sub(c as u64) } else { v };
    let mut d = Vec::with_capacity(2 * n);
    if !helper {
        d.extend(x.iter().map(|&v| shift(v, lo)));
        d.extend(x.iter().map(|&v| shift(v, hi)));
    }
    let bits = drelu(p, 0, &d, 2 * n)?;
    let r = beaver::online(p, 1, &MulShape::elementwise(2 * n), &d, &bits, c0)?;
    if helper {
        return Ok(Vec::new());
    }
    Ok((0..n)
        .map(|i| {
            let v = r[i].wrapping_sub(r[n + i]);
            if client { v.wrapping_add(lo as u64) } else { v }
        })
        .collect())
}
