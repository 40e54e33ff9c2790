//! The layer kinds a program can contain, their parameters and the weight tensors each needs.
//!
//! A program is in SSA form: tensor 0 is the input and layer `i` writes tensor `i + 1`.
//! Layers name the tensors they read; shapes are never stored but inferred
//! ([`crate::program::Program::validate`] returns them), so a shape cannot disagree with the
//! layer list.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::spec::Block;

/// Identifies a tensor: 0 is the program input, `i + 1` is the output of layer `i`.
pub type TensorId = u32;

/// One layer: a unique name (block specs and weights key on it), its inputs and its op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Unique within the program (taken from the source model); specs, weights and errors key
    /// on it.
    pub name: String,
    /// Tensors the op reads, in order; each must be defined before this layer (SSA).
    pub inputs: Vec<TensorId>,
    /// What the layer computes, with its parameters.
    pub op: Op,
}

/// Zero padding on the four sides of a feature map (ONNX allows it to be asymmetric).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding {
    /// Rows of padding above the map.
    pub top: u32,
    /// Columns of padding left of the map.
    pub left: u32,
    /// Rows of padding below the map.
    pub bottom: u32,
    /// Columns of padding right of the map.
    pub right: u32,
}

impl Padding {
    /// The same padding on every side.
    pub const fn uniform(p: u32) -> Self {
        Self {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }
}

/// 2-D convolution, PyTorch semantics; grouped and depthwise when `groups > 1`.
/// Weights: `weight [out, in/groups, kh, kw]`, and `bias [out]` when `bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Channels of the input; must match the input tensor and be divisible by `groups`.
    pub in_channels: u32,
    /// Channels of the output (filters); must be divisible by `groups`.
    pub out_channels: u32,
    /// `[kh, kw]`.
    pub kernel: [u32; 2],
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// Zero padding added around the input before convolving.
    pub padding: Padding,
    /// `[dh, dw]`.
    pub dilation: [u32; 2],
    /// Channel groups convolved independently; 1 is an ordinary convolution, `in_channels`
    /// a depthwise one.
    pub groups: u32,
    /// Whether a `bias [out]` tensor is added after the convolution.
    pub bias: bool,
}

/// Fully connected layer on a flattened `N×1×1` input.
/// Weights: `weight [out, in]`, and `bias [out]` when `bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Length of the flattened input vector.
    pub in_features: u32,
    /// Length of the output vector.
    pub out_features: u32,
    /// Whether a `bias [out]` tensor is added.
    pub bias: bool,
}

/// Block ReLU: one `[bh, bw]` per channel. `[1,1]` is an ordinary ReLU, `[0,1]` identity,
/// `[1,0]` zero — the original's codes, so its specs load unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRelu {
    /// One block per input channel, in channel order.
    pub blocks: Vec<Block>,
}

/// Element-wise clamp to `[min, max]` in raw fixed-point units; ReLU6 is `[0, 6·2^f]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Lower bound (inclusive), raw fixed-point; must be below `max`.
    pub min: i64,
    /// Upper bound (inclusive), raw fixed-point.
    pub max: i64,
}

/// A piecewise-linear activation other than ReLU, budgeted like one: one block per channel,
/// with block ReLU's codes. In a sized block every sign decision the activation needs is
/// taken once, on the block's sum (as block ReLU does); an identity channel keeps the
/// activation's middle piece and a zero channel its lowest (see [`ActivationKind`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// Which activation, with its public constants.
    pub kind: ActivationKind,
    /// One block per input channel, in channel order.
    pub blocks: Vec<Block>,
}

/// The activations [`Activation`] computes. Constants are raw fixed point (value · 2^f).
/// Pieces (decisions; identity channel; zero channel):
/// - leaky ReLU / PReLU `x ≥ 0 ? x : a·x` (one decision, x ≥ 0; x; a·x),
/// - hard sigmoid `clip(α·x + β, 0, 1)` with `z = α·x + β` (two, z ≥ 0 and z ≥ 1; z; 0),
/// - hard swish `x · hard_sigmoid(x)` (two, as hard sigmoid; x·z; 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivationKind {
    /// Leaky ReLU with a public slope (ONNX's `alpha` attribute).
    LeakyRelu {
        /// Slope of the negative piece, raw fixed point.
        slope: i64,
    },
    /// PReLU: the slope of channel c is the server's weight `slope [C]` (learned, private).
    Prelu,
    /// `clip(α·x + β, 0, 1)` (ONNX `HardSigmoid`; PyTorch's is α = 1/6, β = 1/2).
    HardSigmoid {
        /// α, raw fixed point.
        alpha: i64,
        /// β, raw fixed point.
        beta: i64,
    },
    /// `x · clip(α·x + β, 0, 1)` (ONNX `HardSwish` is α = 1/6, β = 1/2).
    HardSwish {
        /// α, raw fixed point.
        alpha: i64,
        /// β, raw fixed point.
        beta: i64,
    },
}

impl ActivationKind {
    /// Short lower-case name used in messages, tables and reports.
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::LeakyRelu { .. } => "leaky_relu",
            ActivationKind::Prelu => "prelu",
            ActivationKind::HardSigmoid { .. } => "hard_sigmoid",
            ActivationKind::HardSwish { .. } => "hard_swish",
        }
    }

    /// Sign decisions per block: one for the leaky kinds, two (both clip points) for the
    /// hard ones.
    pub fn decisions(self) -> u64 {
        match self {
            ActivationKind::LeakyRelu { .. } | ActivationKind::Prelu => 1,
            ActivationKind::HardSigmoid { .. } | ActivationKind::HardSwish { .. } => 2,
        }
    }
}

/// Max pooling; padding never wins (it acts as −∞).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxPool {
    /// Window size `[kh, kw]`.
    pub kernel: [u32; 2],
    /// Step between windows `[sh, sw]`.
    pub stride: [u32; 2],
    /// Padding around the input; padded positions never win.
    pub padding: Padding,
    /// Round the output size up (PyTorch `ceil_mode`): a partial last window still counts.
    pub ceil_mode: bool,
}

/// Average pooling. With `count_include_pad` the divisor is the full window, otherwise the
/// in-bounds pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AvgPool {
    /// Window size `[kh, kw]`.
    pub kernel: [u32; 2],
    /// Step between windows `[sh, sw]`.
    pub stride: [u32; 2],
    /// Zero padding around the input.
    pub padding: Padding,
    /// Round the output size up (PyTorch `ceil_mode`): a partial last window still counts.
    pub ceil_mode: bool,
    /// Divide by the full window size (padding counts as zeros) instead of the in-bounds pixels.
    pub count_include_pad: bool,
}

/// How [`Upsample`] interpolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpsampleMode {
    /// Nearest neighbour, PyTorch's `nearest` (floor of the scaled index).
    Nearest,
    /// Bilinear, with PyTorch's `align_corners` flag.
    Bilinear {
        /// Map the corner pixels of input and output onto each other (PyTorch's flag).
        align_corners: bool,
    },
}

/// Resize every channel to `[out_h, out_w]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upsample {
    /// How output pixels are interpolated from input pixels.
    pub mode: UpsampleMode,
    /// `[out_h, out_w]`.
    pub size: [u32; 2],
}

/// Per-channel affine map `x·scale[c] + bias[c]` (a BatchNorm that could not be folded).
/// Weights: `scale [C]` when `scale`, `bias [C]` when `bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleBias {
    /// Channels of the input; the length of `scale` and `bias`.
    pub channels: u32,
    /// Whether a `scale [C]` tensor multiplies (otherwise the scale is 1).
    pub scale: bool,
    /// Whether a `bias [C]` tensor is added (otherwise the bias is 0).
    pub bias: bool,
}

/// Every layer kind of a program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// 2-D convolution; see [`Conv2d`].
    Conv2d(Conv2d),
    /// Fully connected layer on a flattened vector; see [`Linear`].
    Linear(Linear),
    /// ReLU whose sign is decided once per block of pixels (the DReLU-saving nonlinearity).
    BlockRelu(BlockRelu),
    /// Element-wise clamp (ReLU6 and friends): two DReLUs per element.
    Clip(Clip),
    /// Max pooling: `kh·kw − 1` DReLUs per output; see [`MaxPool`].
    MaxPool(MaxPool),
    /// Average pooling (linear: no DReLUs); see [`AvgPool`].
    AvgPool(AvgPool),
    /// Mean over H×W per channel, giving `C×1×1`.
    GlobalAvgPool,
    /// Element-wise sum of two same-shaped tensors (residual connections).
    Add,
    /// Channel concatenation of tensors with equal H×W.
    Concat,
    /// `C×H×W` to `(C·H·W)×1×1`, channel-major like PyTorch.
    Flatten,
    /// Spatial resize to a fixed size; see [`Upsample`].
    Upsample(Upsample),
    /// Per-channel affine map (a BatchNorm that could not be folded); see [`ScaleBias`].
    ScaleBias(ScaleBias),
    /// Leaky ReLU, PReLU, hard sigmoid, hard swish, per block like block ReLU; see
    /// [`Activation`]. (Last: postcard numbers variants, so older programs still decode.)
    Activation(Activation),
    /// Product of two computed tensors, the second of the first's shape or `C×1×1` (one
    /// value per channel, broadcast over H×W: a squeeze-and-excitation gate); one Beaver
    /// product and a truncation. (After [`Op::Activation`], for the same reason.)
    Mul,
}

/// What a weight tensor is to its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WeightRole {
    /// The main kernel or matrix (convolution filters, linear weights).
    Weight,
    /// Added per output channel (or feature) after the product.
    Bias,
    /// The per-channel multiplier of [`ScaleBias`].
    Scale,
    /// The per-channel negative slope of a PReLU ([`ActivationKind::Prelu`]).
    Slope,
}

impl WeightRole {
    /// Lower-case name used in tensor names (`layer.role`) and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightRole::Weight => "weight",
            WeightRole::Bias => "bias",
            WeightRole::Scale => "scale",
            WeightRole::Slope => "slope",
        }
    }
}

impl Op {
    /// Short lower-case name used in messages, tables and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::Linear(_) => "linear",
            Op::BlockRelu(_) => "block_relu",
            Op::Clip(_) => "clip",
            Op::Activation(a) => a.kind.name(),
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::Upsample(_) => "upsample",
            Op::ScaleBias(_) => "scale_bias",
        }
    }

    /// The weight tensors this layer needs from the weight file, with their shapes. This is
    /// the one place that says which layer owns which weights.
    pub fn weight_shapes(&self) -> Vec<(WeightRole, Vec<u32>)> {
        let mut out = Vec::new();
        match self {
            Op::Conv2d(c) => {
                let per_group = c.in_channels / c.groups.max(1);
                out.push((
                    WeightRole::Weight,
                    vec![c.out_channels, per_group, c.kernel[0], c.kernel[1]],
                ));
                if c.bias {
                    out.push((WeightRole::Bias, vec![c.out_channels]));
                }
            }
            Op::Linear(l) => {
                out.push((WeightRole::Weight, vec![l.out_features, l.in_features]));
                if l.bias {
                    out.push((WeightRole::Bias, vec![l.out_features]));
                }
            }
            Op::Activation(a) if a.kind == ActivationKind::Prelu => {
                out.push((WeightRole::Slope, vec![a.blocks.len() as u32]));
            }
            Op::ScaleBias(s) => {
                if s.scale {
                    out.push((WeightRole::Scale, vec![s.channels]));
                }
                if s.bias {
                    out.push((WeightRole::Bias, vec![s.channels]));
                }
            }
            _ => {}
        }
        out
    }
}

impl Op {
    /// The per-channel blocks of a budgeted layer (block ReLU and the other activations):
    /// what a block spec sets and the knapsack chooses.
    pub fn blocks(&self) -> Option<&[Block]> {
        match self {
            Op::BlockRelu(b) => Some(&b.blocks),
            Op::Activation(a) => Some(&a.blocks),
            _ => None,
        }
    }

    /// The blocks of a budgeted layer, to install a spec.
    pub fn blocks_mut(&mut self) -> Option<&mut Vec<Block>> {
        match self {
            Op::BlockRelu(b) => Some(&mut b.blocks),
            Op::Activation(a) => Some(&mut a.blocks),
            _ => None,
        }
    }

    /// Sign decisions per DReLU-block of a budgeted layer (block ReLU: one).
    pub fn decisions_per_block(&self) -> u64 {
        match self {
            Op::Activation(a) => a.kind.decisions(),
            _ => 1,
        }
    }
}

/// Per-channel blocks counted and grouped for a one-line summary (`2x2x30 identity x2`).
fn blocks_summary(blocks: &[Block]) -> String {
    use alloc::format;
    let mut counts: alloc::collections::BTreeMap<Block, usize> = Default::default();
    for blk in blocks {
        *counts.entry(*blk).or_default() += 1;
    }
    let mut counts: Vec<(Block, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut parts: Vec<String> = counts
        .iter()
        .map(|(blk, n)| match blk.kind() {
            crate::spec::BlockKind::Identity => format!("identity x{n}"),
            crate::spec::BlockKind::Zero => format!("zero x{n}"),
            _ => format!("{blk}x{n}"),
        })
        .collect();
    if parts.len() > 4 {
        let more = parts.len() - 3;
        parts.truncate(3);
        parts.push(format!("+{more} more"));
    }
    parts.join(" ")
}

fn pad_str(p: &Padding) -> String {
    if p.top == p.left && p.left == p.bottom && p.bottom == p.right {
        alloc::format!("{}", p.top)
    } else {
        alloc::format!("{},{},{},{}", p.top, p.left, p.bottom, p.right)
    }
}

impl Op {
    /// One-line human summary of the parameters, for tables.
    pub fn summary(&self) -> String {
        use alloc::format;
        match self {
            Op::Conv2d(c) => format!(
                "{}->{} k{}x{} s{}x{} p{} d{}x{}{}{}",
                c.in_channels,
                c.out_channels,
                c.kernel[0],
                c.kernel[1],
                c.stride[0],
                c.stride[1],
                pad_str(&c.padding),
                c.dilation[0],
                c.dilation[1],
                if c.groups > 1 {
                    format!(" g{}", c.groups)
                } else {
                    String::new()
                },
                if c.bias { " +bias" } else { "" }
            ),
            Op::Linear(l) => format!(
                "{}->{}{}",
                l.in_features,
                l.out_features,
                if l.bias { " +bias" } else { "" }
            ),
            Op::BlockRelu(b) => blocks_summary(&b.blocks),
            Op::Clip(c) => format!("[{}, {}] raw", c.min, c.max),
            Op::Activation(a) => {
                let constants = match a.kind {
                    ActivationKind::LeakyRelu { slope } => format!("slope {slope} raw, "),
                    ActivationKind::Prelu => String::new(),
                    ActivationKind::HardSigmoid { alpha, beta }
                    | ActivationKind::HardSwish { alpha, beta } => {
                        format!("alpha {alpha} beta {beta} raw, ")
                    }
                };
                format!("{constants}{}", blocks_summary(&a.blocks))
            }
            Op::MaxPool(p) => format!(
                "k{}x{} s{}x{} p{}{}",
                p.kernel[0],
                p.kernel[1],
                p.stride[0],
                p.stride[1],
                pad_str(&p.padding),
                if p.ceil_mode { " ceil" } else { "" }
            ),
            Op::AvgPool(p) => format!(
                "k{}x{} s{}x{} p{}{}{}",
                p.kernel[0],
                p.kernel[1],
                p.stride[0],
                p.stride[1],
                pad_str(&p.padding),
                if p.ceil_mode { " ceil" } else { "" },
                if p.count_include_pad { " incl-pad" } else { "" }
            ),
            Op::Upsample(u) => format!(
                "{} to {}x{}",
                match u.mode {
                    UpsampleMode::Nearest => "nearest",
                    UpsampleMode::Bilinear {
                        align_corners: true,
                    } => "bilinear aligned",
                    UpsampleMode::Bilinear {
                        align_corners: false,
                    } => "bilinear",
                },
                u.size[0],
                u.size[1]
            ),
            Op::ScaleBias(s) => format!(
                "{} ch{}{}",
                s.channels,
                if s.scale { " scale" } else { "" },
                if s.bias { " bias" } else { "" }
            ),
            Op::GlobalAvgPool | Op::Add | Op::Mul | Op::Concat | Op::Flatten => String::new(),
        }
    }
}
