//! Parameter values that travel with a graph (an imported model's weights), named the way
//! the tch executor names its variables: `{node}.weight`, `{node}.bias`,
//! `{node}.running_mean`, `{node}.running_var`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
