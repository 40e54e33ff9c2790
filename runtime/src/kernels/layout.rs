//! How a block-ReLU layer tiles its activation: which pixels belong to sized blocks, which
//! block each one falls in, and which channels are zeroed. Tiles start at the top-left
//! corner; border blocks are partial (docs/original.md §3.2).

use ksnn_formats::{Block, BlockKind, Shape};

/// The tiling of one block-ReLU layer.
#[derive(Clone, Debug)]
pub struct BlockLayout {
    /// Indices (into the activation) of pixels in sized-block channels.
    pub pixels: Vec<u32>,
    /// For each entry of `pixels`, its block (a DReLU) index.
    pub block_of: Vec<u32>,
    /// Number of blocks, i.e. DReLUs.
    pub blocks: usize,
    /// Channels set to zero.
    pub zero_channels: Vec<u32>,
}

impl BlockLayout {
    /// Blocks are numbered channel by channel, then row-major within a channel.
    pub fn new(xs: Shape, spec: &[Block]) -> Self {
        let (h, w) = (xs.h as usize, xs.w as usize);
        let mut layout = BlockLayout {
            pixels: Vec::new(),
            block_of: Vec::new(),
            blocks: 0,
            zero_channels: Vec::new(),
        };
        for (c, b) in spec.iter().enumerate() {
            match b.kind() {
                BlockKind::Sized { h: bh, w: bw } => {
                    let (bh, bw) = (bh as usize, bw as usize);
                    let per_row = w.div_ceil(bw);
                    for y in 0..h {
                        for x in 0..w {
                            layout.pixels.push((c * h * w + y * w + x) as u32);
                            layout
                                .block_of
                                .push((layout.blocks + (y / bh) * per_row + x / bw) as u32);
                        }
                    }
                    layout.blocks += h.div_ceil(bh) * per_row;
                }
                BlockKind::Zero => layout.zero_channels.push(c as u32),
                BlockKind::Identity | BlockKind::Invalid => {}
            }
        }
        layout
    }

    /// `n` values, each its own block (a clip per element).
    pub fn singletons(n: usize) -> Self {
        BlockLayout {
            pixels: (0..n as u32).collect(),
            block_of: (0..n as u32).collect(),
            blocks: n,
            zero_channels: Vec::new(),
        }
    }

    /// The sized-channel pixels of `x`, in layout order.
    pub fn gather(&self, x: &[u64]) -> Vec<u64> {
        crate::par::map(self.pixels.len(), |i| x[self.pixels[i] as usize])
    }

    /// Writes `values` (layout order) back into `x` and fills the zero channels with `zero`
    /// (0 for block ReLU; a clip's lower bound, a party's share of it).
    pub fn scatter(&self, x: &mut [u64], values: &[u64], plane: usize, zero: u64) {
        for (&p, &v) in self.pixels.iter().zip(values) {
            x[p as usize] = v;
        }
        for &c in &self.zero_channels {
            x[c as usize * plane..(c as usize + 1) * plane].fill(zero);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_border_blocks_and_codes() {
        // 3x5 channel with 2x2 blocks: 2x3 = 6 blocks, the last row and column partial.
        let l = BlockLayout::new(
            Shape::new(3, 3, 5),
            &[Block(2, 2), Block::IDENTITY, Block::ZERO],
        );
        assert_eq!(l.blocks, 6);
        assert_eq!(l.pixels.len(), 15);
        assert_eq!(l.zero_channels, [2]);
        let x: Vec<u64> = (0..45).collect();
        // Block sums as the select forms them: the gathered pixels summed per block.
        let s = crate::protocol::relu::mul_shape(&l).sums(&l.gather(&x));
        assert_eq!(s, [1 + 5 + 6, 2 + 3 + 7 + 8, 4 + 9, 10 + 11, 12 + 13, 14]);
        assert_eq!(l.blocks as u64, Block(2, 2).drelus(3, 5));
    }
}
