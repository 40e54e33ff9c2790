//! Builds tch modules from an IR graph and runs them. Parameters are named after the nodes
//! (`conv1.weight`, `conv1_bn.running_mean`, …), so checkpoints map back to the graph.

use ksnn_formats::layer::{Padding, UpsampleMode};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};
use thiserror::Error;

use crate::torch::activation::{self, per_channel};
use crate::torch::block_relu::{self, BlockRelu};
use ksnn_formats::BlockSpec;
use ksnn_formats::spec::Block;
use ksnn_graph::ir::{Graph, IrActivation, IrError, IrOp, Param, Params};

enum Module {
    Conv(nn::Conv2D, Padding),
    Linear(nn::Linear),
    Norm(nn::BatchNorm),
    /// Per-channel constants, shaped `[C]` (broadcast to the input's rank at run time).
    Affine(Tensor, Tensor),
    /// PReLU's learned per-channel slopes, `[C]`.
    Slope(Tensor),
    None,
}

/// A graph with its parameters in a var store.
pub struct Executor {
    graph: Graph,
    modules: Vec<Module>,
    /// The blocks of node i (a ReLU or another budgeted activation), from a block spec.
    blocks: Vec<Option<BlockRelu>>,
    device: Device,
}

/// A block spec that does not fit the graph.
#[derive(Debug, Error)]
pub enum SpecError {
    /// The spec names a layer that is not a budgeted activation (ReLU, leaky ReLU, PReLU,
    /// hard sigmoid, hard swish) of the graph.
    #[error(
        "block spec layer `{0}` is not a ReLU or other budgeted activation of the model (see `ksnn info`)"
    )]
    UnknownLayer(String),
    /// The spec gives a layer a block per channel for a different channel count.
    #[error("block spec layer `{layer}` has {got} channels, the model has {expected}")]
    Channels {
        /// The ReLU layer's name (a node name).
        layer: String,
        /// Channels of the layer in the graph.
        expected: usize,
        /// Blocks the spec gives it.
        got: usize,
    },
    /// A block is invalid or larger than the layer's map.
    #[error("block spec layer `{layer}`: {problem}")]
    Block {
        /// The ReLU layer's name (a node name).
        layer: String,
        /// What is wrong with the block, from the formats' spec check.
        problem: ksnn_formats::Problem,
    },
}

/// Parameters that do not fit the graph's variables.
#[derive(Debug, Error)]
pub enum ParamError {
    /// A variable of the graph has no value in the parameters (by name).
    #[error("parameter `{0}` is missing")]
    Missing(String),
    /// A parameter's dimensions differ from its variable's.
    #[error("parameter `{name}` has shape {got:?}, the graph needs {expected:?}")]
    Shape {
        /// The variable, `node.weight` style.
        name: String,
        /// The variable's dimensions, as the graph builds it.
        expected: Vec<i64>,
        /// The parameter's dimensions.
        got: Vec<u32>,
    },
    /// A parameter matches no variable (a wrong or stale name), by name.
    #[error("parameter `{0}` belongs to no node of the graph")]
    Unknown(String),
    /// libtorch failed to copy or convert the values.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

fn symmetric(p: &Padding) -> bool {
    p.top == p.bottom && p.left == p.right
}

/// `[left, right, top, bottom]`, the order `constant_pad_nd` takes.
fn pad_order(p: &Padding) -> [i64; 4] {
    [p.left, p.right, p.top, p.bottom].map(i64::from)
}

/// Sets every variable of `vs` from `params`, requiring an exact match of names and shapes
/// (a silently random layer is what makes imported models wrong without a word).
pub fn set_params(vs: &nn::VarStore, params: &Params) -> Result<(), ParamError> {
    let vars = vs.variables();
    if let Some(name) = params.keys().find(|k| !vars.contains_key(*k)) {
        return Err(ParamError::Unknown(name.clone()));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let p = params
                .get(&name)
                .ok_or_else(|| ParamError::Missing(name.clone()))?;
            let dims: Vec<i64> = p.dims.iter().map(|&d| i64::from(d)).collect();
            if dims != var.size() {
                return Err(ParamError::Shape {
                    name,
                    expected: var.size(),
                    got: p.dims.clone(),
                });
            }
            let src = Tensor::from_slice(&p.data).view(dims.as_slice());
            var.f_copy_(&src)?;
        }
        Ok(())
    })
}

/// Every variable of `vs` as plain values (to save a graph with its parameters).
pub fn get_params(vs: &nn::VarStore) -> Result<Params, ParamError> {
    let mut out = Params::new();
    for (name, var) in vs.variables() {
        let dims = var.size().iter().map(|&d| d as u32).collect();
        let data: Vec<f32> = var
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1)
            .try_into()?;
        out.insert(name, Param::new(dims, data));
    }
    Ok(out)
}

impl Executor {
    /// Creates the parameters under `root`.
    pub fn new(root: &nn::Path, graph: &Graph) -> Result<Self, IrError> {
        graph.shapes()?;
        let modules = graph
            .nodes
            .iter()
            .map(|n| {
                let p = root / n.name.as_str();
                match &n.op {
                    IrOp::Conv(c) => {
                        let cfg = nn::ConvConfigND {
                            stride: [c.stride[0] as i64, c.stride[1] as i64],
                            padding: if symmetric(&c.padding) {
                                [c.padding.top as i64, c.padding.left as i64]
                            } else {
                                [0, 0]
                            },
                            dilation: [c.dilation[0] as i64, c.dilation[1] as i64],
                            groups: c.groups as i64,
                            bias: c.bias,
                            ..Default::default()
                        };
                        let k = [c.kernel[0] as i64, c.kernel[1] as i64];
                        Module::Conv(
                            nn::conv(p, c.in_channels as i64, c.out_channels as i64, k, cfg),
                            c.padding,
                        )
                    }
                    IrOp::Linear(l) => Module::Linear(nn::linear(
                        p,
                        l.in_features as i64,
                        l.out_features as i64,
                        nn::LinearConfig {
                            bias: l.bias,
                            ..Default::default()
                        },
                    )),
                    IrOp::BatchNorm { channels, eps } => Module::Norm(nn::batch_norm2d(
                        p,
                        *channels as i64,
                        nn::BatchNormConfig {
                            eps: *eps,
                            ..Default::default()
                        },
                    )),
                    IrOp::Activation(IrActivation::Prelu { channels }) => Module::Slope(p.var(
                        "slope",
                        &[i64::from(*channels)],
                        nn::Init::Const(0.25),
                    )),
                    IrOp::Affine { scale, shift } => Module::Affine(
                        Tensor::from_slice(scale).to_device(root.device()),
                        Tensor::from_slice(shift).to_device(root.device()),
                    ),
                    _ => Module::None,
                }
            })
            .collect();
        Ok(Self {
            graph: graph.clone(),
            modules,
            blocks: graph.nodes.iter().map(|_| None).collect(),
            device: root.device(),
        })
    }

    /// The graph this executor runs (input shape, mean/std, nodes).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Where the parameters live; inputs are moved here.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Every tensor of the forward pass on a batch `x` (`N×C×H×W`); index = tensor id.
    pub fn forward_all(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut t: Vec<Tensor> = vec![x.to_device(self.device)];
        self.run_from(&mut t, train);
        t
    }

    /// Continues a forward pass: `t` holds tensors `0..t.len()` (entries no later node reads
    /// may be empty placeholders); runs the remaining nodes and appends their outputs.
    pub fn run_from(&self, t: &mut Vec<Tensor>, train: bool) {
        let start = t.len() - 1;
        for (i, n) in self.graph.nodes.iter().enumerate().skip(start) {
            let inputs: Vec<&Tensor> = n.inputs.iter().map(|&j| &t[j as usize]).collect();
            let y = self.apply(i, &inputs, train);
            t.push(y);
        }
    }

    /// Node `i` on its inputs (in the node's input order); the one place a node is run.
    pub fn apply(&self, i: usize, inputs: &[&Tensor], train: bool) -> Tensor {
        let n = &self.graph.nodes[i];
        let a = inputs[0];
        match (&n.op, &self.modules[i]) {
            (IrOp::Conv(_), Module::Conv(conv, pad)) => {
                if symmetric(pad) {
                    conv.forward_t(a, train)
                } else {
                    conv.forward_t(&a.constant_pad_nd(pad_order(pad)), train)
                }
            }
            (IrOp::Linear(_), Module::Linear(l)) => l.forward_t(&a.flatten(1, -1), train),
            (IrOp::BatchNorm { .. }, Module::Norm(b)) => b.forward_t(a, train),
            (IrOp::Relu, _) => match &self.blocks[i] {
                Some(b) => b.forward(a),
                None => a.relu(),
            },
            (IrOp::Clip { min, max }, _) => a.clamp(f64::from(*min), f64::from(*max)),
            (IrOp::Activation(act), _) => {
                activation::forward(a, act, self.slopes(i), self.blocks[i].as_ref())
            }
            (IrOp::MaxPool(p), _) => max_pool(a, p),
            (IrOp::AvgPool(p), _) => avg_pool(a, p),
            (IrOp::GlobalAvgPool, _) => a.adaptive_avg_pool2d([1, 1]),
            (IrOp::Add, _) => a + inputs[1],
            // A `N×C×1×1` gate broadcasts over H×W as it does in the program.
            (IrOp::Mul, _) => a * inputs[1],
            (IrOp::Concat, _) => Tensor::cat(inputs, 1),
            (IrOp::Flatten, _) => a.flatten(1, -1),
            (IrOp::Upsample(u), _) => {
                let size = [u.size[0] as i64, u.size[1] as i64];
                match u.mode {
                    UpsampleMode::Nearest => a.upsample_nearest2d(size, None, None),
                    UpsampleMode::Bilinear { align_corners } => {
                        a.upsample_bilinear2d(size, align_corners, None, None)
                    }
                }
            }
            (IrOp::Identity, _) => a.shallow_clone(),
            (IrOp::Pad(p), _) => a.constant_pad_nd(pad_order(p)),
            (IrOp::Affine { .. }, Module::Affine(scale, shift)) => {
                a * per_channel(a, scale) + per_channel(a, shift)
            }
            (op, _) => unreachable!("no module for {op:?}"),
        }
    }

    /// Node `i` (a ReLU or another budgeted activation) on channel `c` of `x` (`N×C×H×W`)
    /// with block `b` instead of the layer's own: `N×H×W`. What distortion measures.
    pub fn budgeted_channel(&self, i: usize, x: &Tensor, c: i64, b: Block) -> Tensor {
        match &self.graph.nodes[i].op {
            IrOp::Activation(act) => {
                let part = x.narrow(1, c, 1);
                let slopes = self.slopes(i).map(|s| s.narrow(0, c, 1));
                let one = BlockRelu::new(&[b], self.device);
                activation::forward(&part, act, slopes.as_ref(), Some(&one)).squeeze_dim(1)
            }
            _ => block_relu::channel(x, c, b),
        }
    }

    /// Node `i`'s PReLU slopes, `[C]`; `None` for other nodes.
    fn slopes(&self, i: usize) -> Option<&Tensor> {
        match &self.modules[i] {
            Module::Slope(s) => Some(s),
            _ => None,
        }
    }

    /// Whether node `i` is a ReLU replaced by a block ReLU (from [`Self::set_spec`]).
    pub fn has_block_relu(&self, i: usize) -> bool {
        self.blocks[i].is_some()
    }

    /// Node `i`'s per-channel map `y = a·x + b` as `[C]` vectors, for BatchNorm in
    /// evaluation mode and Affine nodes; `None` for other nodes.
    pub fn channel_affine(&self, i: usize) -> Option<(Tensor, Tensor)> {
        match (&self.graph.nodes[i].op, &self.modules[i]) {
            (IrOp::BatchNorm { eps, .. }, Module::Norm(b)) => {
                let inv = (&b.running_var + *eps).rsqrt();
                let a = match &b.ws {
                    Some(w) => w * &inv,
                    None => inv,
                };
                let shift = -(&b.running_mean * &a);
                let shift = match &b.bs {
                    Some(bias) => shift + bias,
                    None => shift,
                };
                Some((a.detach(), shift.detach()))
            }
            (IrOp::Affine { .. }, Module::Affine(scale, shift)) => {
                Some((scale.shallow_clone(), shift.shallow_clone()))
            }
            _ => None,
        }
    }

    /// Node `i`'s convolution restricted to input channel `c`, applied to that channel's
    /// values `x` (`R×1×H×W`). With `bias: false` and `groups = 1` this is the change of
    /// every output channel when only channel `c` of the input changes by `x` (convolution
    /// is linear). For a depthwise convolution (`groups = C`, one input per group) it is
    /// output channel `c` itself, with the bias. `None` when node `i` is not a convolution
    /// of either kind.
    pub fn conv_channel(&self, i: usize, x: &Tensor, c: i64, bias: bool) -> Option<Tensor> {
        let (IrOp::Conv(cfg), Module::Conv(conv, pad)) =
            (&self.graph.nodes[i].op, &self.modules[i])
        else {
            return None;
        };
        let depthwise =
            cfg.groups > 1 && cfg.groups == cfg.in_channels && cfg.groups == cfg.out_channels;
        let w = match (cfg.groups, depthwise) {
            (1, _) => conv.ws.narrow(1, c, 1),
            (_, true) => conv.ws.narrow(0, c, 1),
            _ => return None,
        };
        let b = match (&conv.bs, bias) {
            (Some(b), true) if depthwise => Some(b.narrow(0, c, 1)),
            (Some(_), true) => return None,
            _ => None,
        };
        let (x, padding) = if symmetric(pad) {
            (x.shallow_clone(), [i64::from(pad.top), i64::from(pad.left)])
        } else {
            (x.constant_pad_nd(pad_order(pad)), [0, 0])
        };
        Some(x.conv2d(
            &w,
            b.as_ref(),
            [i64::from(cfg.stride[0]), i64::from(cfg.stride[1])],
            padding,
            [i64::from(cfg.dilation[0]), i64::from(cfg.dilation[1])],
            1,
        ))
    }

    /// Gives the spec's layers (ReLUs and the other budgeted activations) their blocks
    /// (layers not in the spec go back to per element). Checks names, channel counts and that
    /// every block fits.
    pub fn set_spec(&mut self, spec: &BlockSpec) -> Result<(), SpecError> {
        let shapes = self.graph.shapes().expect("checked at construction");
        let mut blocks: Vec<Option<BlockRelu>> = self.graph.nodes.iter().map(|_| None).collect();
        for (layer, codes) in &spec.layers {
            let i = self
                .graph
                .nodes
                .iter()
                .position(|n| &n.name == layer && n.op.budgeted())
                .ok_or_else(|| SpecError::UnknownLayer(layer.clone()))?;
            let s = shapes[i + 1];
            if codes.len() != s.c as usize {
                return Err(SpecError::Channels {
                    layer: layer.clone(),
                    expected: s.c as usize,
                    got: codes.len(),
                });
            }
            for (c, b) in codes.iter().enumerate() {
                b.check(c as u64, s.h, s.w)
                    .map_err(|problem| SpecError::Block {
                        layer: layer.clone(),
                        problem,
                    })?;
            }
            blocks[i] = Some(BlockRelu::new(codes, self.device));
        }
        self.blocks = blocks;
        Ok(())
    }

    /// The first output (logits) on a batch.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let out = self.graph.outputs[0] as usize;
        self.forward_all(x, train).swap_remove(out)
    }
}

fn window(v: [u32; 2]) -> [i64; 2] {
    v.map(i64::from)
}

/// Max pooling; asymmetric padding is applied explicitly with −∞ so padding never wins, as
/// in PyTorch, ONNX and the runtime.
fn max_pool(a: &Tensor, p: &ksnn_formats::layer::MaxPool) -> Tensor {
    let (k, s) = (window(p.kernel), window(p.stride));
    if symmetric(&p.padding) {
        let pad = [i64::from(p.padding.top), i64::from(p.padding.left)];
        return a.max_pool2d(k, s, pad, [1, 1], p.ceil_mode);
    }
    a.pad(pad_order(&p.padding), "constant", Some(f64::NEG_INFINITY))
        .max_pool2d(k, s, [0, 0], [1, 1], p.ceil_mode)
}

/// Average pooling; with asymmetric padding the sum over the zero-padded map is divided by
/// the padded window (`count_include_pad`) or by the in-bounds pixels (the same pooling of
/// a padded map of ones).
fn avg_pool(a: &Tensor, p: &ksnn_formats::layer::AvgPool) -> Tensor {
    let (k, s) = (window(p.kernel), window(p.stride));
    if symmetric(&p.padding) {
        let pad = [i64::from(p.padding.top), i64::from(p.padding.left)];
        return a.avg_pool2d(k, s, pad, p.ceil_mode, p.count_include_pad, None::<i64>);
    }
    let pool = |t: &Tensor| {
        t.constant_pad_nd(pad_order(&p.padding)).avg_pool2d(
            k,
            s,
            [0, 0],
            p.ceil_mode,
            true,
            None::<i64>,
        )
    };
    if p.count_include_pad {
        pool(a)
    } else {
        pool(a) / pool(&a.ones_like())
    }
}
