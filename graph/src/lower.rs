//! Lowering: a trained graph, its parameters and a block spec become a program (public, for
//! all three parties) and its weight file (the server's). Batch norms are folded, zero pads
//! absorbed, identities dropped, ReLU positions become block-ReLU layers (plain `[1,1]` where
//! the spec says nothing), and every parameter is rounded to the program's fixed point.

use ksnn_formats::layer::{Activation, Clip, Layer, Op, ScaleBias};
use ksnn_formats::program::{FixedPoint, InputSpec, Output, OutputKind, ProtocolConfig};
use ksnn_formats::spec::Block;
use ksnn_formats::weights::WeightTensor;
use ksnn_formats::{BlockSpec, ContentHash, FormatError, Program, Weights};
use thiserror::Error;

use crate::ir::rewrite::{self, RewriteError};
use crate::ir::{Graph, IrOp, Params};

/// Choices that are not in the graph.
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// The ring and fractional bits every parameter and clip bound is rounded to.
    pub fixed_point: FixedPoint,
    /// DReLU protocol, approximate comparison and truncation, recorded in the program.
    pub protocol: ProtocolConfig,
}

/// Why a graph could not become a valid program; each names the node, parameter or layer.
#[derive(Debug, Error)]
pub enum LowerError {
    /// Folding batch norms failed (a parameter missing or misshapen).
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// A node the program cannot express, or parameters that do not fit its layer.
    #[error("node `{node}`: {what}")]
    Unsupported {
        /// The graph node.
        node: String,
        /// What the program cannot express.
        what: String,
    },
    /// A parameter a layer needs is absent (by name, `node.weight` style).
    #[error("parameter `{0}` is missing")]
    Missing(String),
    #[error(
        "parameter `{name}`: value {value} does not fit the ring at {frac_bits} fractional bits"
    )]
    /// A parameter's value times 2^f reaches 2^62 (or is not finite).
    Range {
        /// The parameter's name (`node.weight` style).
        name: String,
        /// The offending value, in real units.
        value: f32,
        /// The fractional bits f it was rounded at.
        frac_bits: u8,
    },
    /// A block-spec layer name is not a budgeted activation of the graph.
    #[error("block spec layer `{0}` is not a ReLU or other budgeted activation of the model")]
    SpecLayer(String),
    /// The assembled program or weights fail their own validation (a lowering bug or an
    /// unsupported shape).
    #[error("the lowered program is invalid: {0}")]
    Format(#[from] FormatError),
}

/// A program and its weights, tied by each other's hashes.
pub struct Lowered {
    /// The public program, with the block spec in its `BlockRelu` layers and the weights' hash.
    pub program: Program,
    /// The server's fixed-point weights, bound to the program's hash.
    pub weights: Weights,
}

/// Rounds to fixed point, refusing values that would leave a safe part of the ring.
fn quantize(name: &str, data: &[f32], f: u8) -> Result<Vec<i64>, LowerError> {
    let scale = f64::from(1u32 << f);
    data.iter()
        .map(|&v| {
            let x = (f64::from(v) * scale).round();
            if x.is_finite() && x.abs() < (1u64 << 62) as f64 {
                Ok(x as i64)
            } else {
                Err(LowerError::Range {
                    name: name.into(),
                    value: v,
                    frac_bits: f,
                })
            }
        })
        .collect()
}

/// Lowers `graph` with `params` and `spec` (see the module docs); the spec's layers must
/// be ReLU positions, and every parameter must fit the ring at `opts.fixed_point`.
pub fn lower(
    graph: &Graph,
    params: &Params,
    spec: &BlockSpec,
    opts: &LowerOptions,
) -> Result<Lowered, LowerError> {
    let (mut g, mut p) = (graph.clone(), params.clone());
    rewrite::fold_batchnorm(&mut g, &mut p)?;
    rewrite::fold_pad(&mut g);
    let shapes = g.shapes().map_err(|e| LowerError::Unsupported {
        node: String::new(),
        what: e.to_string(),
    })?;
    for layer in spec.layers.keys() {
        if !g.nodes.iter().any(|n| &n.name == layer && n.op.budgeted()) {
            return Err(LowerError::SpecLayer(layer.clone()));
        }
    }
    let f = opts.fixed_point.frac_bits;
    let mut map = vec![0u32; g.nodes.len() + 1];
    let mut layers = Vec::new();
    let mut tensors = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let inputs: Vec<u32> = n.inputs.iter().map(|&t| map[t as usize]).collect();
        let c = shapes[i + 1].c;
        // A budgeted layer's blocks: the spec's, or per element where it says nothing.
        let blocks = || {
            spec.layers
                .get(&n.name)
                .cloned()
                .unwrap_or_else(|| vec![Block::RELU; c as usize])
        };
        let unsupported = |what: &str| LowerError::Unsupported {
            node: n.name.clone(),
            what: what.into(),
        };
        let op = match &n.op {
            IrOp::Conv(conv) => Op::Conv2d(conv.clone()),
            IrOp::Linear(l) => Op::Linear(l.clone()),
            IrOp::Relu => Op::BlockRelu(ksnn_formats::layer::BlockRelu { blocks: blocks() }),
            IrOp::Activation(act) => Op::Activation(Activation {
                kind: act.kind(|name, v| {
                    quantize(&format!("{}.{name}", n.name), &[v], f).map(|v| v[0])
                })?,
                blocks: blocks(),
            }),
            IrOp::Clip { min, max } => {
                if !min.is_finite() || !max.is_finite() {
                    return Err(unsupported("a clip with an infinite bound other than ReLU"));
                }
                let q = |v: f32| (f64::from(v) * f64::from(1u32 << f)).round() as i64;
                Op::Clip(Clip {
                    min: q(*min),
                    max: q(*max),
                })
            }
            IrOp::MaxPool(m) => Op::MaxPool(m.clone()),
            IrOp::AvgPool(a) => Op::AvgPool(a.clone()),
            IrOp::GlobalAvgPool => Op::GlobalAvgPool,
            IrOp::Add => Op::Add,
            IrOp::Mul => Op::Mul,
            IrOp::Concat => Op::Concat,
            IrOp::Flatten => Op::Flatten,
            IrOp::Upsample(u) => Op::Upsample(u.clone()),
            IrOp::Identity => {
                map[i + 1] = inputs[0];
                continue;
            }
            IrOp::Affine { scale, shift } => {
                let has_scale = scale.iter().any(|&s| s != 1.0);
                let has_bias = shift.iter().any(|&s| s != 0.0);
                let expand = |v: &[f32]| {
                    if v.len() == 1 {
                        vec![v[0]; c as usize]
                    } else {
                        v.to_vec()
                    }
                };
                if has_scale {
                    p.insert(
                        format!("{}.scale", n.name),
                        crate::ir::Param::new(vec![c], expand(scale)),
                    );
                }
                if has_bias {
                    p.insert(
                        format!("{}.bias", n.name),
                        crate::ir::Param::new(vec![c], expand(shift)),
                    );
                }
                Op::ScaleBias(ScaleBias {
                    channels: c,
                    scale: has_scale,
                    bias: has_bias,
                })
            }
            IrOp::Pad(_) => return Err(unsupported("a zero pad that no convolution absorbs")),
            IrOp::BatchNorm { .. } => unreachable!("folded above"),
        };
        for (role, shape) in op.weight_shapes() {
            let name = format!("{}.{}", n.name, role.as_str());
            let param = p
                .get(&name)
                .ok_or_else(|| LowerError::Missing(name.clone()))?;
            let want: usize = shape.iter().map(|&d| d as usize).product();
            if param.numel() != want {
                return Err(LowerError::Unsupported {
                    node: n.name.clone(),
                    what: format!(
                        "{name} has {} values, the layer needs {want}",
                        param.numel()
                    ),
                });
            }
            tensors.push(WeightTensor {
                layer: n.name.clone(),
                role,
                shape,
                data: quantize(&name, &param.data, f)?,
            });
        }
        layers.push(Layer {
            name: n.name.clone(),
            inputs,
            op,
        });
        map[i + 1] = layers.len() as u32;
    }
    let mut program = Program {
        name: g.name.clone(),
        fixed_point: opts.fixed_point,
        input: InputSpec {
            shape: g.input,
            mean: g.mean.clone(),
            std: g.std.clone(),
        },
        layers,
        outputs: g
            .outputs
            .iter()
            .map(|&t| Output {
                tensor: map[t as usize],
                kind: OutputKind::of_shape(shapes[t as usize]),
            })
            .collect(),
        protocol: opts.protocol,
        weights_hash: ContentHash::default(),
    };
    let weights = Weights::bind(&mut program, f, tensors);
    program.validate()?;
    weights.check_against(&program)?;
    Ok(Lowered { program, weights })
}
