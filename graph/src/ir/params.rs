//! Parameter values that travel with a graph (an imported model's weights), named the way
//! the tch executor names its variables: `{node}.weight`, `{node}.bias`,
//! `{node}.running_mean`, `{node}.running_var`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Graph, IrOp};

/// A dense float tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Dimensions, outermost first (PyTorch's order, e.g. `[out, in, kh, kw]`).
    pub dims: Vec<u32>,
    /// Values in row-major order; as many as the product of `dims`.
    pub data: Vec<f32>,
}

impl Param {
    /// A tensor from its dimensions and row-major values (their counts must agree).
    pub fn new(dims: Vec<u32>, data: Vec<f32>) -> Self {
        debug_assert_eq!(
            dims.iter().map(|&d| d as usize).product::<usize>(),
            data.len()
        );
        Self { dims, data }
    }

    /// Number of values.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// Parameters by variable name.
pub type Params = BTreeMap<String, Param>;

/// Every variable a model has, `(name, dims)` in node order, exactly as the tch executor
/// creates them (convolution and linear `weight`/`bias`, batch norm `weight`, `bias`,
/// `running_mean`, `running_var`), so pretrained tensors can be matched without libtorch.
pub fn variables(graph: &Graph) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    for n in &graph.nodes {
        match &n.op {
            IrOp::BatchNorm { channels, .. } => {
                for what in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{}.{what}", n.name), vec![*channels]));
                }
            }
            op => {
                for (role, dims) in op.weight_shapes() {
                    out.push((format!("{}.{}", n.name, role.as_str()), dims));
                }
            }
        }
    }
    out
}
