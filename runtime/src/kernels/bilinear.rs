//! The server-weighted linear maps as bilinear maps `X ⊛ W`: what the linear protocol needs to
//! know of a layer (its sizes, and how to apply it to a vector and coefficients), kept with
//! the kernels so that the protocol stays free of layer kinds.

use ksnn_formats::Shape;
use ksnn_formats::layer::Conv2d;

use super::{conv2d, linear, scale_channels};

/// A bilinear map in `X` and `W`, with its sizes.
pub trait Bilinear: Sync {
    /// Elements of the input `X`.
    fn x_len(&self) -> usize;
    /// Elements of the coefficients `W`.
    fn w_len(&self) -> usize;
    /// Elements of the output `X ⊛ W`.
    fn y_len(&self) -> usize;
    /// `X ⊛ W` on ring elements (cleartext or shares alike).
    fn apply(&self, x: &[u64], w: &[u64]) -> Vec<u64>;
}

/// The linear maps whose coefficients the server holds.
#[derive(Clone, Debug)]
pub enum LinearMap<'a> {
    /// A 2-D convolution from input shape `x` to output shape `y`.
    Conv {
        /// Channels, kernel, stride, padding, dilation and groups.
        op: &'a Conv2d,
        /// Input shape.
        x: Shape,
        /// Output shape.
        y: Shape,
    },
    /// A fully connected layer, `x` inputs to `y` outputs.
    Dense {
        /// Input features.
        x: usize,
        /// Output features.
        y: usize,
    },
    /// Per-channel scaling of a tensor of shape `x`.
    Scale {
        /// Shape of the scaled tensor; W has one coefficient per channel.
        x: Shape,
    },
}

impl Bilinear for LinearMap<'_> {
    fn x_len(&self) -> usize {
        match self {
            LinearMap::Conv { x, .. } | LinearMap::Scale { x } => x.elements() as usize,
            LinearMap::Dense { x, .. } => *x,
        }
    }
    fn w_len(&self) -> usize {
        match self {
            LinearMap::Conv { op, .. } => {
                (op.out_channels * (op.in_channels / op.groups) * op.kernel[0] * op.kernel[1])
                    as usize
            }
            LinearMap::Dense { x, y } => x * y,
            LinearMap::Scale { x } => x.c as usize,
        }
    }
    fn y_len(&self) -> usize {
        match self {
            LinearMap::Conv { y, .. } => y.elements() as usize,
            LinearMap::Dense { y, .. } => *y,
            LinearMap::Scale { x } => x.elements() as usize,
        }
    }
    fn apply(&self, x: &[u64], w: &[u64]) -> Vec<u64> {
        match self {
            LinearMap::Conv { op, x: xs, y: ys } => conv2d(x, *xs, op, *ys, w),
            LinearMap::Dense { y, .. } => linear(x, w, *y),
            LinearMap::Scale { x: xs } => scale_channels(x, *xs, w),
        }
    }
}
