//! The layer plan: what each program layer is to the executors, built once by
//! [`crate::exec::model::Model::new`]. The secure engine's offline and online passes and the
//! cleartext reference all run [`Step::eval`], generic over [`Arith`]; the weight, bias and
//! index structures (block tilings, max-pool taps) are chosen here and nowhere else.

use ksnn_formats::layer::{AvgPool, Layer, Op, UpsampleMode, WeightRole};
use ksnn_formats::{Shape, Weights};

use crate::kernels::bilinear::{Bilinear, LinearMap};
use crate::kernels::layout::BlockLayout;
use crate::kernels::{pool, resize};
use crate::prf::Label;
use crate::protocol::activation::Plan;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;
use crate::protocol::{Result, clip, maxpool, relu};

/// One layer as the executors run it.
pub enum Step<'a> {
    /// Convolution, fully connected or per-channel scale: the server-weighted map, truncation
    /// by f (the product has 2f fractional bits), then the bias.
    Linear {
        /// The map `X ⊛ W` and its sizes: convolution, dense or per-channel scale.
        map: LinearMap<'a>,
        /// The server's (and the reference's) coefficients; `None` for P0 and P2.
        weight: Option<&'a [u64]>,
        /// The server's (and the reference's) per-channel bias at f fractional bits, added
        /// after truncation; `None` for P0 and P2, and for layers without a bias.
        bias: Option<&'a [u64]>,
    },
    /// A bias alone (scale-bias without scale): the server adds it, no protocol.
    Bias {
        /// The server's (and the reference's) per-channel bias at f fractional bits; `None`
        /// for P0 and P2.
        bias: Option<&'a [u64]>,
    },
    /// Linear in the shares with public coefficients: each party applies it to its share;
    /// truncated when the coefficients are fractional (averages, bilinear weights).
    Local {
        /// Which local layer, with its parameters.
        op: Local<'a>,
        /// Shape of the (first) input.
        x: Shape,
        /// Shape of the output.
        y: Shape,
        /// Fractional bits f of the public coefficients, and the shift of the truncation.
        frac_bits: u8,
        /// Whether the coefficients are fractional, so the result has 2f fractional bits and
        /// is truncated back to f.
        truncate: bool,
    },
    /// Block ReLU over the input's tiling (`plane` = H·W).
    BlockRelu {
        /// Which pixels form each block (one DReLU per block) and which channels are zeroed;
        /// the other channels pass unchanged.
        layout: BlockLayout,
        /// H·W of the input: elements per channel.
        plane: usize,
    },
    /// Clamp every value to raw fixed-point bounds (a tiling of one-pixel blocks).
    Clip {
        /// Every pixel its own block.
        layout: BlockLayout,
        /// H·W of the input.
        plane: usize,
        /// Lower bound (inclusive), raw fixed-point.
        lo: i64,
        /// Upper bound (inclusive), raw fixed-point.
        hi: i64,
    },
    /// Leaky ReLU, PReLU, hard sigmoid or hard swish over the input's tiling.
    Activation {
        /// The activation's public plan.
        plan: Plan<'a>,
        /// PReLU's slopes: the server's (and the reference's); `None` for P0 and P2 and for
        /// the other kinds.
        slopes: Option<&'a [u64]>,
    },
    /// Product of two shared tensors, the second broadcast per channel when it is `C×1×1`
    /// (the Beaver triple is compressed the same way, so the gate costs one opening per
    /// channel), then truncation.
    Mul {
        /// The product's shape: the gate's index of each element.
        shape: MulShape,
    },
    /// Max over each output's window: `taps[t][o]` is the input index of output `o`'s
    /// t-th window value.
    MaxPool {
        /// For each window position t, the input index each output reads there (padding taps
        /// repeat an in-bounds value).
        taps: Vec<Vec<u32>>,
        /// Elements of the output.
        n: usize,
    },
}

/// The local layers.
pub enum Local<'a> {
    /// Element-wise sum of two same-shaped tensors (residual connections).
    Add,
    /// Channel concatenation: the inputs' data one after the other.
    Concat,
    /// `C×H×W` to `(C·H·W)×1×1`; the data does not move.
    Flatten,
    /// Spatial resize: nearest copies values; bilinear mixes them with public fractional
    /// weights, so it is truncated.
    Upsample(UpsampleMode),
    /// Window sums times the public reciprocal of the divisor, then truncation.
    AvgPool(&'a AvgPool),
    /// Per-channel sums times the public `1 / (H·W)`, then truncation.
    GlobalAvgPool,
}

impl<'a> Step<'a> {
    /// The step for `layer`, whose inputs have shapes `inputs` and output `y`; `weights` are
    /// given to the server and the reference (already checked against the program).
    pub fn new(
        layer: &'a Layer,
        inputs: &[Shape],
        y: Shape,
        frac_bits: u8,
        weights: Option<&'a Weights>,
    ) -> Self {
        let x = inputs[0];
        // Borrowed from the weight file, not copied: the server holds its weights once (the
        // ring's u64 is the same bits as the file's i64).
        let tensor = |role| {
            weights
                .and_then(|w| w.get(&layer.name, role))
                .map(|t| bytemuck::cast_slice::<i64, u64>(&t.data))
        };
        let local = |op, truncate| Step::Local {
            op,
            x,
            y,
            frac_bits,
            truncate,
        };
        match &layer.op {
            Op::Conv2d(op) => Step::Linear {
                map: LinearMap::Conv { op, x, y },
                weight: tensor(WeightRole::Weight),
                bias: tensor(WeightRole::Bias),
            },
            Op::Linear(l) => Step::Linear {
                map: LinearMap::Dense {
                    x: l.in_features as usize,
                    y: l.out_features as usize,
                },
                weight: tensor(WeightRole::Weight),
                bias: tensor(WeightRole::Bias),
            },
            Op::ScaleBias(s) if s.scale => Step::Linear {
                map: LinearMap::Scale { x },
                weight: tensor(WeightRole::Scale),
                bias: tensor(WeightRole::Bias),
            },
            Op::ScaleBias(_) => Step::Bias {
                bias: tensor(WeightRole::Bias),
            },
            Op::BlockRelu(b) => Step::BlockRelu {
                layout: BlockLayout::new(x, &b.blocks),
                plane: x.plane() as usize,
            },
            Op::Clip(c) => Step::Clip {
                layout: BlockLayout::singletons(x.elements() as usize),
                plane: x.plane() as usize,
                lo: c.min,
                hi: c.max,
            },
            Op::Activation(act) => Step::Activation {
                plan: Plan {
                    kind: act.kind,
                    layout: BlockLayout::new(x, &act.blocks),
                    plane: x.plane() as usize,
                    n: x.elements() as usize,
                    scale: LinearMap::Scale { x },
                    frac_bits,
                },
                slopes: tensor(WeightRole::Slope),
            },
            Op::MaxPool(m) => Step::MaxPool {
                taps: pool::max_pool_taps(x, m, y),
                n: y.elements() as usize,
            },
            Op::Mul => Step::Mul {
                shape: product_shape(x, inputs[1]),
            },
            Op::Add => local(Local::Add, false),
            Op::Concat => local(Local::Concat, false),
            Op::Flatten => local(Local::Flatten, false),
            Op::Upsample(u) => local(Local::Upsample(u.mode), resize::scales(u.mode)),
            Op::AvgPool(p) => local(Local::AvgPool(p), true),
            Op::GlobalAvgPool => local(Local::GlobalAvgPool, true),
        }
    }

    /// Runs the step on its inputs (empty slices for a party that holds nothing).
    pub fn eval<A: Arith>(&self, a: &mut A, inputs: &[&[u64]]) -> Result<Vec<u64>> {
        match self {
            Step::Linear { map, weight, bias } => {
                let y = a.linear(map, *weight, inputs[0])?;
                let mut y = a.truncate(0, y, map.y_len())?;
                a.add_bias(&mut y, *bias);
                Ok(y)
            }
            Step::Bias { bias } => {
                let mut y = inputs[0].to_vec();
                a.add_bias(&mut y, *bias);
                Ok(y)
            }
            Step::Local {
                op,
                x,
                y,
                frac_bits,
                truncate,
            } => {
                let out = if a.holds() {
                    op.eval(inputs, *x, *y, *frac_bits)
                } else {
                    Vec::new()
                };
                if *truncate {
                    a.truncate(0, out, y.elements() as usize)
                } else {
                    Ok(out)
                }
            }
            Step::BlockRelu { layout, plane } => relu::block_relu(a, layout, inputs[0], *plane),
            Step::Clip {
                layout,
                plane,
                lo,
                hi,
            } => clip::block_clip(a, 0, layout, inputs[0], *plane, *lo, *hi),
            Step::Activation { plan, slopes } => plan.eval(a, inputs[0], *slopes),
            Step::Mul { shape } => {
                let y = a.mul(Label::Product(0), shape, inputs[0], inputs[1])?;
                a.truncate(0, y, shape.n_x)
            }
            Step::MaxPool { taps, n } => {
                let x = inputs[0];
                let gathered = taps
                    .iter()
                    .map(|t| {
                        if a.holds() {
                            t.iter().map(|&k| x[k as usize]).collect()
                        } else {
                            Vec::new()
                        }
                    })
                    .collect();
                maxpool::max_tree(a, gathered, *n)
            }
        }
    }

    /// The server-weighted map, for the session set-up.
    pub fn linear_map(&self) -> Option<&LinearMap<'a>> {
        match self {
            Step::Linear { map, .. } => Some(map),
            Step::Activation { plan, .. } => plan.linear_map(),
            _ => None,
        }
    }

    /// The server's coefficients of a linear step (PReLU's slopes).
    pub fn weight(&self) -> Option<&[u64]> {
        match self {
            Step::Linear { weight, .. } => *weight,
            Step::Activation { slopes, .. } => *slopes,
            _ => None,
        }
    }

    /// Whether the step truncates (so local truncation may differ by one from the exact one).
    pub fn truncates(&self) -> bool {
        match self {
            Step::Linear { .. } | Step::Activation { .. } | Step::Mul { .. } => true,
            Step::Local { truncate, .. } => *truncate,
            Step::Bias { .. }
            | Step::BlockRelu { .. }
            | Step::Clip { .. }
            | Step::MaxPool { .. } => false,
        }
    }
}

/// The product of a `x`-shaped tensor with a second of `second`'s shape: element-wise, or
/// one value per channel.
fn product_shape(x: Shape, second: Shape) -> MulShape {
    let n = x.elements() as usize;
    if second == x {
        return MulShape::elementwise(n);
    }
    let plane = x.plane() as usize;
    MulShape {
        n_x: n,
        n_y: x.c as usize,
        map: Some((0..n).map(|i| (i / plane) as u32).collect()),
    }
}

impl Local<'_> {
    /// Applies the layer to `inputs` (cleartext or one party's shares alike), before any
    /// truncation.
    fn eval(&self, inputs: &[&[u64]], xs: Shape, ys: Shape, f: u8) -> Vec<u64> {
        let x = inputs[0];
        match self {
            Local::Add => crate::ring::add(inputs[0], inputs[1]),
            Local::Concat => inputs.concat(),
            Local::Flatten => x.to_vec(),
            Local::Upsample(mode) => resize::upsample(x, xs, ys, *mode, f),
            Local::AvgPool(p) => pool::avg_pool_scaled(x, xs, p, ys, f),
            Local::GlobalAvgPool => pool::global_avg_scaled(x, xs, f),
        }
    }
}
