//! The graph IR both the ONNX importer and the model zoo produce, so training, distortion
//! and lowering work alike on imported and built-in models. Nodes are in SSA form like the
//! program (tensor 0 is the input, node i writes tensor i + 1) and shapes come from the one
//! shape rule in `ksnn_formats::infer`.

pub mod file;
pub mod params;
pub mod pretrained;
pub mod rewrite;
pub mod zoo;

use ksnn_formats::layer::{
    ActivationKind, AvgPool, Conv2d, Linear, MaxPool, Op, Padding, Upsample, WeightRole,
};
use ksnn_formats::{Problem, Shape};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use file::GraphFile;
pub use params::{Param, Params, variables};

/// An IR node's operation. Training-only and foldable operations (batch norm, identity) live
/// here; everything else reuses the program's parameter types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IrOp {
    /// 2-D convolution (grouped, dilated, asymmetric padding), as the program's layer.
    Conv(Conv2d),
    /// Fully connected layer on an `N×1×1` input.
    Linear(Linear),
    /// Per-channel batch normalisation (folded into the convolution before lowering).
    BatchNorm {
        /// C of the input; the node holds per-channel weight, bias and running statistics.
        channels: u32,
        /// Added to the running variance before the square root.
        eps: f64,
    },
    /// A ReLU position: becomes a block-ReLU layer, its name keys the block spec.
    Relu,
    /// Clamp to `[min, max]` (ReLU6 is `[0, 6]`).
    Clip {
        /// Lower bound in real units.
        min: f32,
        /// Upper bound in real units.
        max: f32,
    },
    /// Leaky ReLU, PReLU, hard sigmoid or hard swish: piecewise linear, run securely from
    /// sign decisions like a ReLU; its name keys the block spec the same way.
    Activation(IrActivation),
    /// Max pooling (padding never wins).
    MaxPool(MaxPool),
    /// Average pooling (`count_include_pad` and `ceil_mode` as the program's layer).
    AvgPool(AvgPool),
    /// Mean over each channel's map: `C×H×W` → `C×1×1`.
    GlobalAvgPool,
    /// Element-wise sum of two inputs of the same shape (residual connections).
    Add,
    /// Product of two computed tensors: the second of the first's shape, or `C×1×1`
    /// broadcast over H×W (a squeeze-and-excitation gate).
    Mul,
    /// Concatenation of the inputs along channels (all of the same H×W).
    Concat,
    /// `C×H×W` → `(C·H·W)×1×1`, row-major, for a following linear layer.
    Flatten,
    /// Resize to a given size, nearest or bilinear.
    Upsample(Upsample),
    /// Dropout at inference, reshapes that keep the layout, explicit identities.
    Identity,
    /// Zero padding of the feature map (ONNX `Pad`); folded into the next convolution when
    /// it can be, since programs pad only inside convolutions and pools.
    Pad(Padding),
    /// `x · scale[c] + shift[c]` with constants: ONNX `Mul`/`Div`/`Sub`/`Add` by a constant.
    /// One value broadcasts over all channels.
    Affine {
        /// Per-channel factors, or one for every channel.
        scale: Vec<f32>,
        /// Per-channel offsets, or one for every channel.
        shift: Vec<f32>,
    },
}

/// The activations of [`IrOp::Activation`], with their constants in real units (the
/// program's [`ksnn_formats::layer::ActivationKind`] holds them in fixed point).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum IrActivation {
    /// `x ≥ 0 ? x : slope·x` with a constant slope.
    LeakyRelu {
        /// Slope of the negative piece.
        slope: f32,
    },
    /// `x ≥ 0 ? x : slope[c]·x` with learned per-channel slopes (parameter `name.slope`,
    /// `[C]`).
    Prelu {
        /// C of the input: the number of slopes.
        channels: u32,
    },
    /// `clip(α·x + β, 0, 1)`.
    HardSigmoid {
        /// α.
        alpha: f32,
        /// β.
        beta: f32,
    },
    /// `x · clip(α·x + β, 0, 1)`.
    HardSwish {
        /// α.
        alpha: f32,
        /// β.
        beta: f32,
    },
}

impl IrActivation {
    /// Sign decisions per block, as the program's kind counts them (one for the leaky kinds,
    /// two for the hard ones).
    pub fn decisions(self) -> u64 {
        let Ok(kind) = self.kind(|_, _| Ok::<i64, std::convert::Infallible>(0));
        kind.decisions()
    }

    /// The program's kind, each constant converted by `q(name, value)` (lowering rounds it to
    /// fixed point): the one mapping from the IR's activations to the program's.
    pub fn kind<E>(
        self,
        mut q: impl FnMut(&'static str, f32) -> Result<i64, E>,
    ) -> Result<ActivationKind, E> {
        Ok(match self {
            IrActivation::LeakyRelu { slope } => ActivationKind::LeakyRelu {
                slope: q("slope", slope)?,
            },
            IrActivation::Prelu { .. } => ActivationKind::Prelu,
            IrActivation::HardSigmoid { alpha, beta } => ActivationKind::HardSigmoid {
                alpha: q("alpha", alpha)?,
                beta: q("beta", beta)?,
            },
            IrActivation::HardSwish { alpha, beta } => ActivationKind::HardSwish {
                alpha: q("alpha", alpha)?,
                beta: q("beta", beta)?,
            },
        })
    }

    /// The ONNX op name, for tables and messages.
    pub fn name(self) -> &'static str {
        match self {
            IrActivation::LeakyRelu { .. } => "LeakyRelu",
            IrActivation::Prelu { .. } => "PRelu",
            IrActivation::HardSigmoid { .. } => "HardSigmoid",
            IrActivation::HardSwish { .. } => "HardSwish",
        }
    }
}

/// One node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique within the graph: parameters are named `name.weight` etc. and, for a ReLU, the
    /// block spec's layer key.
    pub name: String,
    /// What the node computes, with its hyperparameters.
    pub op: IrOp,
    /// Tensor ids read, in order, all below this node's own tensor (SSA).
    pub inputs: Vec<u32>,
}

/// A model graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The model's name, carried into the program and distortion files.
    pub name: String,
    /// Tensor 0's shape, `C×H×W`, with no batch dimension.
    pub input: Shape,
    /// Input normalisation: pixels in [0, 1] become `(x - mean[c]) / std[c]`.
    pub mean: Vec<f32>,
    /// Per-channel divisors of that normalisation (pairs with `mean`).
    pub std: Vec<f32>,
    /// Nodes in topological order; node i writes tensor i + 1.
    pub nodes: Vec<Node>,
    /// Output tensor ids.
    pub outputs: Vec<u32>,
}

/// A graph that does not hold together.
#[derive(Debug, Error)]
pub enum IrError {
    /// A node's inputs or hyperparameters do not fit the shapes before it.
    #[error("node {index} `{name}`: {problem}")]
    Node {
        /// Position of the node in `Graph::nodes`.
        index: usize,
        /// The node's name.
        name: String,
        /// What does not fit, in the program's shape-rule terms.
        problem: Problem,
    },
}

impl IrOp {
    /// The program op with the same shape behaviour, if any.
    fn as_program_op(&self) -> Option<Op> {
        Some(match self {
            IrOp::Conv(c) => Op::Conv2d(c.clone()),
            IrOp::Linear(l) => Op::Linear(l.clone()),
            IrOp::MaxPool(p) => Op::MaxPool(p.clone()),
            IrOp::AvgPool(p) => Op::AvgPool(p.clone()),
            IrOp::GlobalAvgPool => Op::GlobalAvgPool,
            IrOp::Add => Op::Add,
            IrOp::Mul => Op::Mul,
            IrOp::Concat => Op::Concat,
            IrOp::Flatten => Op::Flatten,
            IrOp::Upsample(u) => Op::Upsample(u.clone()),
            IrOp::BatchNorm { .. }
            | IrOp::Relu
            | IrOp::Clip { .. }
            | IrOp::Activation(_)
            | IrOp::Identity
            | IrOp::Pad(_)
            | IrOp::Affine { .. } => {
                return None;
            }
        })
    }

    /// Whether output channel c depends only on input channel c and the op has no
    /// per-channel parameters, so it runs as is on any subset of channels (the distortion
    /// tail carries one-channel perturbations through such ops). Exhaustive on purpose: a new
    /// op must decide.
    pub fn channelwise_without_parameters(&self) -> bool {
        match self {
            IrOp::Relu
            | IrOp::Clip { .. }
            | IrOp::Activation(
                IrActivation::LeakyRelu { .. }
                | IrActivation::HardSigmoid { .. }
                | IrActivation::HardSwish { .. },
            )
            | IrOp::MaxPool(_)
            | IrOp::AvgPool(_)
            | IrOp::GlobalAvgPool
            | IrOp::Pad(_)
            | IrOp::Upsample(_)
            | IrOp::Identity => true,
            // Per-channel parameters, or mixing channels.
            IrOp::BatchNorm { .. }
            | IrOp::Affine { .. }
            | IrOp::Activation(IrActivation::Prelu { .. })
            | IrOp::Conv(_)
            | IrOp::Linear(_)
            | IrOp::Add
            | IrOp::Mul
            | IrOp::Concat
            | IrOp::Flatten => false,
        }
    }

    /// The weight tensors of a convolution, linear or PReLU node, by the program's one rule
    /// ([`Op::weight_shapes`]); none for other ops (a batch norm's are folded at lowering).
    pub fn weight_shapes(&self) -> Vec<(WeightRole, Vec<u32>)> {
        match self {
            IrOp::Conv(_) | IrOp::Linear(_) => self
                .as_program_op()
                .map(|op| op.weight_shapes())
                .unwrap_or_default(),
            IrOp::Activation(IrActivation::Prelu { channels }) => {
                vec![(WeightRole::Slope, vec![*channels])]
            }
            _ => Vec::new(),
        }
    }

    /// Whether a block spec may name this node: a ReLU or another budgeted activation.
    pub fn budgeted(&self) -> bool {
        matches!(self, IrOp::Relu | IrOp::Activation(_))
    }

    /// Trainable parameters (PyTorch's count: batch norm has a weight and a bias).
    pub fn parameters(&self) -> u64 {
        match self {
            IrOp::BatchNorm { channels, .. } => 2 * u64::from(*channels),
            _ => self
                .weight_shapes()
                .iter()
                .map(|(_, dims)| dims.iter().map(|&d| u64::from(d)).product::<u64>())
                .sum(),
        }
    }
}

impl Graph {
    /// Every tensor's shape (index = tensor id), checking each node.
    pub fn shapes(&self) -> Result<Vec<Shape>, IrError> {
        let mut shapes = vec![self.input];
        for (index, n) in self.nodes.iter().enumerate() {
            shapes.push(node_shape(index, n, &shapes)?);
        }
        Ok(shapes)
    }

    /// Appends a node after checking it against the shapes so far (which it extends), so
    /// a builder learns of a bad node where it adds it. Returns the node's tensor id.
    pub fn push(&mut self, node: Node, shapes: &mut Vec<Shape>) -> Result<u32, IrError> {
        debug_assert_eq!(shapes.len(), self.nodes.len() + 1);
        shapes.push(node_shape(self.nodes.len(), &node, shapes)?);
        self.nodes.push(node);
        Ok(self.nodes.len() as u32)
    }

    /// Trainable parameters in total.
    pub fn parameters(&self) -> u64 {
        self.nodes.iter().map(|n| n.op.parameters()).sum()
    }

    /// Names of the budgeted activations other than ReLU (leaky ReLU, PReLU, hard sigmoid,
    /// hard swish), in order.
    pub fn other_activation_layers(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.op, IrOp::Activation(_)))
            .map(|n| n.name.as_str())
            .collect()
    }

    /// Names of the ReLU positions, in order.
    pub fn relu_layers(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.op == IrOp::Relu)
            .map(|n| n.name.as_str())
            .collect()
    }
}

/// The output shape of node `index` given the shapes of the tensors before it.
fn node_shape(index: usize, n: &Node, shapes: &[Shape]) -> Result<Shape, IrError> {
    let err = |problem| IrError::Node {
        index,
        name: n.name.clone(),
        problem,
    };
    let ins: Vec<Shape> = n
        .inputs
        .iter()
        .map(|&t| {
            shapes
                .get(t as usize)
                .copied()
                .ok_or(Problem::UnknownTensor {
                    id: t,
                    defined: index as u32,
                })
        })
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let first = *ins
        .first()
        .ok_or(Problem::Arity {
            expected: "1 or more",
            got: 0,
        })
        .map_err(err)?;
    let channels = |expected: u32, field: &'static str| {
        if expected == first.c {
            Ok(first)
        } else {
            Err(err(Problem::Mismatch {
                field,
                expected: first.c.into(),
                got: expected.into(),
            }))
        }
    };
    match &n.op {
        IrOp::BatchNorm { channels: c, .. } => channels(*c, "channels"),
        IrOp::Activation(IrActivation::Prelu { channels: c }) => channels(*c, "slopes"),
        IrOp::Affine { scale, shift } => {
            for v in [scale, shift] {
                if v.len() != 1 {
                    channels(v.len() as u32, "affine constants")?;
                }
            }
            Ok(first)
        }
        IrOp::Pad(p) => Ok(Shape::new(
            first.c,
            first.h + p.top + p.bottom,
            first.w + p.left + p.right,
        )),
        op => match op.as_program_op() {
            Some(p) => ksnn_formats::infer::output_shape(&p, &ins).map_err(err),
            None => Ok(first),
        },
    }
}
