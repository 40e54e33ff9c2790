//! The server-weighted linear maps as bilinear maps `X ⊛ W`: what the linear protocol needs to
//! know of a layer (its sizes, and how to apply it to a vector and coefficients), kept with
//! the kernels so that the protocol stays free of layer kinds.
//!
//! [`Bilinear::apply`] is the definition, on the CPU (the reference executor's). [`start`] is
//! how the protocol multiplies: on the installed device when the product is large enough
//! (`crate::backend`), and finished apart so that the party can draw its masks meanwhile.
//! The device computes the same ring elements.

use ksnn_formats::Shape;
use ksnn_formats::layer::{Conv2d, Padding};

use super::{conv2d, linear, scale_channels};
use crate::backend::{self, Coeffs, ConvJob, Pending};

/// A product under way: computed already, or running on the device.
pub struct Product<'a> {
    state: State<'a>,
}

enum State<'a> {
    Ready(Vec<u64>),
    /// On the device; the map, input and coefficients recompute it on the CPU if the device
    /// fails.
    Device {
        pending: Box<dyn Pending + 'a>,
        map: &'a dyn Bilinear,
        x: &'a [u64],
        w: &'a [u64],
    },
}

impl<'a> Product<'a> {
    /// A product computed already.
    pub fn ready(y: Vec<u64>) -> Self {
        Product {
            state: State::Ready(y),
        }
    }

    /// `X ⊛ W`, waiting for the device if it runs there.
    pub fn finish(self) -> Vec<u64> {
        match self.state {
            State::Ready(y) => y,
            State::Device { pending, map, x, w } => pending.finish().unwrap_or_else(|e| {
                backend::fell_back(&e);
                map.apply(x, w)
            }),
        }
    }
}

/// A bilinear map in `X` and `W`, with its sizes.
pub trait Bilinear: Sync {
    /// Elements of the input `X`.
    fn x_len(&self) -> usize;
    /// Elements of the coefficients `W`.
    fn w_len(&self) -> usize;
    /// Elements of the output `X ⊛ W`.
    fn y_len(&self) -> usize;
    /// `X ⊛ W` on ring elements (cleartext or shares alike), on the CPU.
    fn apply(&self, x: &[u64], w: &[u64]) -> Vec<u64>;
    /// The map as a convolution a device can run, if it is one.
    fn conv(&self) -> Option<ConvJob> {
        None
    }
}

/// Starts `X ⊛ W`: on the installed device when the map is a convolution large enough for
/// it, else on the CPU; [`Product::finish`] gives it.
pub fn start<'a>(map: &'a dyn Bilinear, x: &'a [u64], w: Coeffs<'a>) -> Product<'a> {
    match map.conv().and_then(|job| backend::start(&job, x, w)) {
        Some(pending) => Product {
            state: State::Device {
                pending,
                map,
                x,
                w: w.host,
            },
        },
        None => Product::ready(map.apply(x, w.host)),
    }
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
    fn conv(&self) -> Option<ConvJob> {
        match self {
            LinearMap::Conv { op, x, y } => Some(ConvJob {
                op: (*op).clone(),
                x: *x,
                y: *y,
            }),
            LinearMap::Dense { x, y } => Some(dense_as_conv(*x, *y)),
            // One product per element: never worth a transfer.
            LinearMap::Scale { .. } => None,
        }
    }
}

/// A fully connected layer `[out, in]` as the 1×1 convolution of an `in×1×1` input that it
/// is, so that a device needs one kernel for both.
fn dense_as_conv(n_in: usize, n_out: usize) -> ConvJob {
    let op = Conv2d {
        in_channels: n_in as u32,
        out_channels: n_out as u32,
        kernel: [1, 1],
        stride: [1, 1],
        padding: Padding::default(),
        dilation: [1, 1],
        groups: 1,
        bias: false,
    };
    ConvJob {
        op,
        x: Shape::new(n_in as u32, 1, 1),
        y: Shape::new(n_out as u32, 1, 1),
    }
}
