//! Clip (ReLU6 and friends): `clip(x, lo, hi) = lo + relu(x − lo) − relu(x − hi)`, both
//! ReLUs in one select (one DReLU batch and its product).

use crate::protocol::Result;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;

/// Clips `n` values to `[lo, hi]` (raw fixed-point bounds).
pub fn clip<A: Arith>(a: &mut A, x: &[u64], n: usize, lo: i64, hi: i64) -> Result<Vec<u64>> {
    let (lo, hi) = (a.constant(lo as u64), a.constant(hi as u64));
    let mut d = Vec::with_capacity(if a.holds() { 2 * n } else { 0 });
    if a.holds() {
        d.extend(x.iter().map(|&v| v.wrapping_sub(lo)));
        d.extend(x.iter().map(|&v| v.wrapping_sub(hi)));
    }
    let r = a.select(0, &MulShape::elementwise(2 * n), &d)?;
    if !a.holds() {
        return Ok(Vec::new());
    }
    Ok((0..n)
        .map(|i| r[i].wrapping_sub(r[n + i]).wrapping_add(lo))
        .collect())
}
