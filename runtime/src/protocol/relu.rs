//! Block ReLU (plain ReLU is the `[1,1]` block): per layer, one select
//! ([`crate::protocol::select`]) over the pixels of every sized block: each block's sum (the
//! sign of the sum is the sign of the mean, so no division) decides by one batched DReLU, and
//! the block's pixels are kept or zeroed. Identity channels are untouched, zero channels
//! zeroed locally.

use crate::kernels::layout::BlockLayout;
use crate::protocol::Result;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;

/// The layer's product shape: each pixel times its block's bit.
pub fn mul_shape(layout: &BlockLayout) -> MulShape {
    MulShape {
        n_x: layout.pixels.len(),
        n_y: layout.blocks,
        map: Some(layout.block_of.clone()),
    }
}

/// The block ReLU of `x` (`plane` = H·W).
pub fn block_relu<A: Arith>(
    a: &mut A,
    layout: &BlockLayout,
    x: &[u64],
    plane: usize,
) -> Result<Vec<u64>> {
    let holds = a.holds();
    let pixels = if holds { layout.gather(x) } else { Vec::new() };
    let kept = a.select(0, &mul_shape(layout), &pixels)?;
    let mut out = x.to_vec();
    if holds {
        layout.scatter(&mut out, &kept, plane, 0);
    }
    Ok(out)
}
