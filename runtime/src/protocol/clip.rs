//! Clip (ReLU6 and friends, and the middle of hard sigmoid): `clip(x, lo, hi) = lo +
//! relu(x − lo) − relu(x − hi)`, both ReLUs in one select (one DReLU batch and its product).
//! Over a block tiling, each sized block decides both clip points once, on its sums of
//! `x − lo` and `x − hi` (block ReLU's rule); identity channels pass unclipped, zero channels
//! become `lo`.

use crate::kernels::layout::BlockLayout;
use crate::protocol::Result;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;

/// The select's shape: the tiling's pixels twice (`x − lo`, then `x − hi`), each half with
/// its own blocks.
fn mul_shape(layout: &BlockLayout) -> MulShape {
    let b = layout.blocks as u32;
    let map = layout
        .block_of
        .iter()
        .copied()
        .chain(layout.block_of.iter().map(|&k| k + b))
        .collect();
    MulShape {
        n_x: 2 * layout.pixels.len(),
        n_y: 2 * layout.blocks,
        map: Some(map),
    }
}

/// Clips `x` (`plane` = H·W) to `[lo, hi]` (raw fixed-point bounds) over `layout`'s blocks;
/// the select runs at `level`.
pub fn block_clip<A: Arith>(
    a: &mut A,
    level: u32,
    layout: &BlockLayout,
    x: &[u64],
    plane: usize,
    lo: i64,
    hi: i64,
) -> Result<Vec<u64>> {
    let (lo, hi) = (a.constant(lo as u64), a.constant(hi as u64));
    let holds = a.holds();
    let n = layout.pixels.len();
    let mut d = Vec::with_capacity(if holds { 2 * n } else { 0 });
    if holds {
        let pixels = layout.gather(x);
        d.extend(pixels.iter().map(|&v| v.wrapping_sub(lo)));
        d.extend(pixels.iter().map(|&v| v.wrapping_sub(hi)));
    }
    let r = a.select(level, &mul_shape(layout), &d)?;
    if !holds {
        return Ok(Vec::new());
    }
    let clipped: Vec<u64> = (0..n)
        .map(|i| r[i].wrapping_sub(r[n + i]).wrapping_add(lo))
        .collect();
    let mut out = x.to_vec();
    layout.scatter(&mut out, &clipped, plane, lo);
    Ok(out)
}
