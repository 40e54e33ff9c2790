//! Block ReLU with the original's plaintext semantics (docs/original.md §3.2): each channel's map
//! is tiled from the top-left corner into `bh×bw` blocks (partial blocks at the border), a
//! block is kept when its mean is strictly positive, and the kept/dropped decision is copied
//! to every pixel of the block. `[1,1]` is a ReLU, `[0,1]` identity, `[1,0]` zero. The mask
//! carries no gradient, so the backward pass multiplies by the mask (straight-through).

use std::collections::BTreeMap;

use ksnn_formats::spec::{Block, BlockKind};
use tch::{Device, Tensor};

/// The 0/1 mask of one block size for `x` (`N×C×H×W`, or `N×C` after a linear layer: a map
/// of one pixel). Only the sign of a block's mean matters.
pub fn block_mask(x: &Tensor, bh: i64, bw: i64) -> Tensor {
    if (bh, bw) == (1, 1) {
        return x.gt(0.0).to_kind(x.kind());
    }
    per_block(x, bh, bw, |mean| mean.gt(0.0).to_kind(mean.kind()))
}

/// `f` of each block's mean, copied to the block's pixels: one value per block and pixel of
/// `x` (`N×C×H×W`, or `N×C`). Ceil mode without padding averages a partial border block over
/// its in-bounds pixels.
fn per_block(x: &Tensor, bh: i64, bw: i64, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let size = x.size();
    if size.len() == 2 {
        return per_block(&x.view([size[0], size[1], 1, 1]), bh, bw, f).view([size[0], size[1]]);
    }
    let mean = x.avg_pool2d([bh, bw], [bh, bw], [0, 0], true, false, None::<i64>);
    f(&mean)
        .repeat_interleave_self_int(bh, Some(2), None::<i64>)
        .repeat_interleave_self_int(bw, Some(3), None::<i64>)
        .narrow(2, 0, size[2])
        .narrow(3, 0, size[3])
}

/// One block ReLU layer: channels grouped by block code.
pub struct BlockRelu {
    groups: Vec<(Block, Tensor)>,
    all_relu: bool,
}

impl BlockRelu {
    /// `blocks[c]` is channel c's code (checked by the caller against the shape).
    pub fn new(blocks: &[Block], device: Device) -> Self {
        let mut by: BTreeMap<Block, Vec<i64>> = BTreeMap::new();
        for (c, &b) in blocks.iter().enumerate() {
            by.entry(b).or_default().push(c as i64);
        }
        let all_relu = by.len() == 1 && by.contains_key(&Block::RELU);
        let groups = by
            .into_iter()
            .map(|(b, idx)| (b, Tensor::from_slice(&idx).to_device(device)))
            .collect();
        Self { groups, all_relu }
    }

    /// Applies the layer to `x` (`N×C×H×W`): each channel times its block mask; the gradient
    /// flows through the kept pixels only.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.all_relu {
            return x.relu();
        }
        x * self.mask(x, 1.0)
    }

    /// The 0/1 decisions for `x` (`N×C×H×W`), without gradient: sized channels by their
    /// blocks' means, identity channels `identity` (1 keeps them; the upper clip of a hard
    /// activation passes 0, since an identity channel is not clipped), zero channels 0.
    pub fn mask(&self, x: &Tensor, identity: f64) -> Tensor {
        tch::no_grad(|| {
            let mut mask = x.zeros_like();
            for (b, idx) in &self.groups {
                let part = x.index_select(1, idx);
                let m = match b.kind() {
                    BlockKind::Identity if identity == 0.0 => continue,
                    BlockKind::Identity => part.ones_like() * identity,
                    BlockKind::Zero | BlockKind::Invalid => continue,
                    BlockKind::Sized { h, w } => block_mask(&part, h.into(), w.into()),
                };
                mask = mask.index_copy(1, idx, &m);
            }
            mask
        })
    }
}

impl BlockRelu {
    /// Hard swish's gate: `f(block mean)` for sized channels (with gradient), 1 for identity
    /// channels, 0 for zero channels.
    pub fn gate(&self, x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let mut gate = x.zeros_like();
        for (b, idx) in &self.groups {
            let part = x.index_select(1, idx);
            let g = match b.kind() {
                BlockKind::Identity => part.ones_like(),
                BlockKind::Zero | BlockKind::Invalid => continue,
                BlockKind::Sized { h, w } => per_block(&part, h.into(), w.into(), &f),
            };
            gate = gate.index_copy(1, idx, &g);
        }
        gate
    }
}

/// One channel of `x` (`N×C×H×W`) through block ReLU `b`: `N×H×W`.
pub fn channel(x: &Tensor, c: i64, b: Block) -> Tensor {
    let part = x.narrow(1, c, 1);
    let y = match b.kind() {
        BlockKind::Identity => part.shallow_clone(),
        BlockKind::Zero | BlockKind::Invalid => part.zeros_like(),
        BlockKind::Sized { h, w } => &part * block_mask(&part, h.into(), w.into()),
    };
    y.squeeze_dim(1)
}
