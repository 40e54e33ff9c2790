//! Block ReLU (plain ReLU is the `[1,1]` block): per layer, each party sums its share over
//! every block (the sign of the sum is the sign of the mean, so no division), one batched
//! DReLU decides all blocks of all channels, and a compressed Beaver product keeps or zeroes
//! each block's pixels. Identity channels are untouched, zero channels zeroed locally.

use crate::kernels::layout::BlockLayout;
use crate::protocol::beaver::{self, MulShape};
use crate::protocol::drelu::drelu;
use crate::protocol::{Party, Result};

/// The layer's product shape.
pub fn mul_shape(layout: &BlockLayout) -> MulShape {
    MulShape {
        n_x: layout.pixels.len(),
        n_y: layout.blocks,
        map: Some(layout.block_of.clone()),
    }
}

/// Offline: the triple for the product.
pub fn offline(p: &mut Party, layout: &BlockLayout) -> Result<Option<Vec<u64>>> {
    beaver::offline(p, 1, &mul_shape(layout))
}

/// Online: the block-ReLU of the shared activation `x` (P2: empty) with `plane` = H·W.
pub fn online(
    p: &mut Party,
    layout: &BlockLayout,
    x: Vec<u64>,
    plane: usize,
    c0: Option<&[u64]>,
) -> Result<Vec<u64>> {
    if p.role == crate::role::Role::Helper {
        drelu(p, 0, &[], layout.blocks)?;
        return Ok(x);
    }
    let bits = drelu(p, 0, &layout.sums(&x), layout.blocks)?;
    let kept = beaver::online(p, 1, &mul_shape(layout), &layout.gather(&x), &bits, c0)?;
    let mut out = x;
    layout.scatter(&mut out, &kept, plane);
    Ok(out)
}
