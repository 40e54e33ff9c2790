//! Builds tch modules from an IR graph and runs them. Parameters are named after the nodes
//! (`conv1.weight`, `conv1_bn.running_mean`, …), so checkpoints map back to the graph.

use ksnn_formats::layer::{Padding, UpsampleMode};
use tch::Tensor;
use tch::nn::{self, ModuleT};

use crate::ir::{Graph, IrError, IrOp};

enum Module {
    Conv(nn::Conv2D, Padding),
    Linear(nn::Linear),
    Norm(nn::BatchNorm),
    None,
}

/// A graph with its parameters in a var store.
pub struct Executor {
    graph: Graph,
    modules: Vec<Module>,
}

fn symmetric(p: &Padding) -> bool {
    p.top == p.bottom && p.left == p.right
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
                    _ => Module::None,
                }
            })
            .collect();
        Ok(Self {
            graph: graph.clone(),
            modules,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Every tensor of the forward pass on a batch `x` (`N×C×H×W`); index = tensor id.
    pub fn forward_all(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut t: Vec<Tensor> = vec![x.shallow_clone()];
        for (n, m) in self.graph.nodes.iter().zip(&self.modules) {
            let a = &t[n.inputs[0] as usize];
            let y = match (&n.op, m) {
                (IrOp::Conv(c), Module::Conv(conv, pad)) => {
                    if symmetric(pad) {
                        conv.forward_t(a, train)
                    } else {
                        let _ = c;
                        let padded = a.constant_pad_nd([
                            pad.left as i64,
                            pad.right as i64,
                            pad.top as i64,
                            pad.bottom as i64,
                        ]);
                        conv.forward_t(&padded, train)
                    }
                }
                (IrOp::Linear(_), Module::Linear(l)) => l.forward_t(&a.flatten(1, -1), train),
                (IrOp::BatchNorm { .. }, Module::Norm(b)) => b.forward_t(a, train),
                (IrOp::Relu, _) => a.relu(),
                (IrOp::Clip { min, max }, _) => a.clamp(f64::from(*min), f64::from(*max)),
                (IrOp::MaxPool(p), _) => {
                    let a = if symmetric(&p.padding) {
                        a.shallow_clone()
                    } else {
                        a.constant_pad_nd([
                            p.padding.left as i64,
                            p.padding.right as i64,
                            p.padding.top as i64,
                            p.padding.bottom as i64,
                        ])
                    };
                    let pad = if symmetric(&p.padding) {
                        [p.padding.top as i64, p.padding.left as i64]
                    } else {
                        [0, 0]
                    };
                    a.max_pool2d(
                        [p.kernel[0] as i64, p.kernel[1] as i64],
                        [p.stride[0] as i64, p.stride[1] as i64],
                        pad,
                        [1, 1],
                        p.ceil_mode,
                    )
                }
                (IrOp::AvgPool(p), _) => a.avg_pool2d(
                    [p.kernel[0] as i64, p.kernel[1] as i64],
                    [p.stride[0] as i64, p.stride[1] as i64],
                    [p.padding.top as i64, p.padding.left as i64],
                    p.ceil_mode,
                    p.count_include_pad,
                    None::<i64>,
                ),
                (IrOp::GlobalAvgPool, _) => a.adaptive_avg_pool2d([1, 1]),
                (IrOp::Add, _) => a + &t[n.inputs[1] as usize],
                (IrOp::Concat, _) => {
                    let parts: Vec<&Tensor> = n.inputs.iter().map(|&i| &t[i as usize]).collect();
                    Tensor::cat(&parts, 1)
                }
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
                (op, _) => unreachable!("no module for {op:?}"),
            };
            t.push(y);
        }
        t
    }

    /// The first output (logits) on a batch.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let out = self.graph.outputs[0] as usize;
        self.forward_all(x, train).swap_remove(out)
    }
}
