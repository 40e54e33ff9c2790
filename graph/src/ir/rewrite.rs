//! Graph rewrites that keep the IR's SSA numbering: batch-norm folding (before lowering),
//! zero-pad folding (programs pad only inside convolutions and pools), and the two opt-in
//! substitutions of docs/original.md §1 / §7.10 (MaxPool → AvgPool, ReLU6 → ReLU).

use ksnn_formats::layer::{AvgPool, Padding};
use thiserror::Error;

use super::{Graph, IrOp, Param, Params};

/// A fold that found a node's parameters missing or of the wrong size.
#[derive(Debug, Error)]
pub enum RewriteError {
    /// A parameter the fold needs is absent.
    #[error("folding `{node}`: parameter `{param}` is missing")]
    Missing {
        /// The node being folded.
        node: String,
        /// The parameter's name.
        param: String,
    },
    /// A parameter has the wrong number of values for the node.
    #[error("folding `{node}`: parameter `{param}` has {got} values, expected {expected}")]
    Size {
        /// The node being folded.
        node: String,
        /// The parameter's name (`node.weight` style).
        param: String,
        /// Values the node's shape needs.
        expected: usize,
        /// Values the parameter holds.
        got: usize,
    },
}

/// Tensors read by more than one node or by the outputs cannot lose their producer.
fn uses(graph: &Graph, tensor: u32) -> usize {
    graph
        .nodes
        .iter()
        .flat_map(|n| &n.inputs)
        .chain(&graph.outputs)
        .filter(|&&t| t == tensor)
        .count()
}

/// Removes node `index`, making its readers read `replacement` instead.
fn remove(graph: &mut Graph, index: usize, replacement: u32) {
    let removed = index as u32 + 1;
    graph.nodes.remove(index);
    let map = |t: &mut u32| {
        if *t == removed {
            *t = replacement;
        } else if *t > removed {
            *t -= 1;
        }
    };
    for n in &mut graph.nodes {
        n.inputs.iter_mut().for_each(map);
    }
    graph.outputs.iter_mut().for_each(map);
}

fn take(params: &Params, node: &str, what: &str, len: usize) -> Result<Vec<f32>, RewriteError> {
    let name = format!("{node}.{what}");
    let p = params.get(&name).ok_or_else(|| RewriteError::Missing {
        node: node.into(),
        param: name.clone(),
    })?;
    if p.numel() != len {
        return Err(RewriteError::Size {
            node: node.into(),
            param: name,
            expected: len,
            got: p.numel(),
        });
    }
    Ok(p.data.clone())
}

/// Folds every batch norm: into the convolution before it when that convolution feeds
/// nothing else, otherwise into a per-channel affine. Returns how many were folded.
pub fn fold_batchnorm(graph: &mut Graph, params: &mut Params) -> Result<usize, RewriteError> {
    let mut folded = 0;
    let mut i = 0;
    while i < graph.nodes.len() {
        let IrOp::BatchNorm { channels, eps } = graph.nodes[i].op else {
            i += 1;
            continue;
        };
        let c = channels as usize;
        let name = graph.nodes[i].name.clone();
        let gamma = take(params, &name, "weight", c)?;
        let beta = take(params, &name, "bias", c)?;
        let mean = take(params, &name, "running_mean", c)?;
        let var = take(params, &name, "running_var", c)?;
        let scale: Vec<f32> = (0..c)
            .map(|k| (f64::from(gamma[k]) / (f64::from(var[k]) + eps).sqrt()) as f32)
            .collect();
        let shift: Vec<f32> = (0..c).map(|k| beta[k] - mean[k] * scale[k]).collect();
        for what in ["weight", "bias", "running_mean", "running_var"] {
            params.remove(&format!("{name}.{what}"));
        }
        let input = graph.nodes[i].inputs[0];
        let producer = (input as usize).checked_sub(1);
        let conv = producer
            .filter(|&p| matches!(graph.nodes[p].op, IrOp::Conv(_)) && uses(graph, input) == 1);
        match conv {
            Some(p) => {
                let conv_name = graph.nodes[p].name.clone();
                let IrOp::Conv(conv) = &mut graph.nodes[p].op else {
                    unreachable!("checked above")
                };
                let per_out =
                    (conv.in_channels / conv.groups * conv.kernel[0] * conv.kernel[1]) as usize;
                let w = params
                    .get_mut(&format!("{conv_name}.weight"))
                    .ok_or_else(|| RewriteError::Missing {
                        node: conv_name.clone(),
                        param: format!("{conv_name}.weight"),
                    })?;
                for (k, row) in w.data.chunks_mut(per_out).enumerate() {
                    row.iter_mut().for_each(|v| *v *= scale[k]);
                }
                let bias = if conv.bias {
                    take(params, &conv_name, "bias", c)?
                } else {
                    vec![0.0; c]
                };
                conv.bias = true;
                let b = (0..c).map(|k| bias[k] * scale[k] + shift[k]).collect();
                params.insert(format!("{conv_name}.bias"), Param::new(vec![c as u32], b));
                remove(graph, i, input);
            }
            None => {
                graph.nodes[i].op = IrOp::Affine { scale, shift };
                i += 1;
            }
        }
        folded += 1;
    }
    Ok(folded)
}

/// Folds a zero `Pad` into the convolution (or padding-counting average pool) that alone
/// reads it. Returns how many were folded; the others stay as `Pad` nodes.
pub fn fold_pad(graph: &mut Graph) -> usize {
    let mut folded = 0;
    let mut i = 0;
    while i < graph.nodes.len() {
        let IrOp::Pad(pad) = graph.nodes[i].op else {
            i += 1;
            continue;
        };
        let out = i as u32 + 1;
        let reader = graph.nodes.iter().position(|n| n.inputs.contains(&out));
        let can = uses(graph, out) == 1
            && reader.is_some_and(|r| match &graph.nodes[r].op {
                IrOp::Conv(_) => true,
                IrOp::AvgPool(p) => {
                    p.count_include_pad
                        && !p.ceil_mode
                        && (p.padding.top + pad.top).max(p.padding.bottom + pad.bottom)
                            < p.kernel[0]
                        && (p.padding.left + pad.left).max(p.padding.right + pad.right)
                            < p.kernel[1]
                }
                _ => false,
            });
        if !can {
            i += 1;
            continue;
        }
        let r = reader.expect("checked above");
        let add = |p: &mut Padding| {
            p.top += pad.top;
            p.left += pad.left;
            p.bottom += pad.bottom;
            p.right += pad.right;
        };
        match &mut graph.nodes[r].op {
            IrOp::Conv(c) => add(&mut c.padding),
            IrOp::AvgPool(p) => add(&mut p.padding),
            _ => unreachable!("checked above"),
        }
        let input = graph.nodes[i].inputs[0];
        remove(graph, i, input);
        folded += 1;
    }
    folded
}

/// Max pools become average pools with the same window, padding counted (docs/original.md §7.10:
/// the secure average pool is local; the network is fine-tuned afterwards).
pub fn maxpool_to_avgpool(graph: &mut Graph) -> usize {
    let mut n = 0;
    for node in &mut graph.nodes {
        if let IrOp::MaxPool(p) = &node.op {
            node.op = IrOp::AvgPool(AvgPool {
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                ceil_mode: p.ceil_mode,
                count_include_pad: true,
            });
            n += 1;
        }
    }
    n
}

/// ReLU6 (a clip to [0, 6]) becomes a ReLU position, so the knapsack can budget it
/// (docs/original.md §7.10: ReLU6 has no secure counterpart; the model is fine-tuned after).
pub fn relu6_to_relu(graph: &mut Graph) -> usize {
    let mut n = 0;
    for node in &mut graph.nodes {
        if let IrOp::Clip { min, max } = node.op
            && min == 0.0
            && max == 6.0
        {
            node.op = IrOp::Relu;
            n += 1;
        }
    }
    n
}
