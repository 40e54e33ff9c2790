//! The cleartext fixed-point reference executor: the program evaluated on plain ring values
//! with exactly the semantics the secure protocols compute — the same kernels, exact floor
//! truncation, DReLU(0) = 1 and the program's approximate comparison. A secure run with
//! helper-exact truncation equals it bit for bit; with local truncation, each truncation
//! may add one unit in the last place (and, with probability ~|y|/2^64, far more).

mod clear;

use ksnn_formats::ApproxCompare;

pub use clear::Clear;

use crate::exec::model::Model;
use crate::protocol::Result;

/// The secure DReLU's decision on a cleartext value, including approximate comparison
/// (shift right by k, keep 64 − g bits).
pub fn drelu(v: u64, approx: ApproxCompare) -> bool {
    ((((v as i64) >> approx.k) as u64) << approx.g) as i64 >= 0
}

/// Evaluates layer `i` on cleartext inputs: the layer's step on [`Clear`].
pub fn eval_layer(model: &Model, i: usize, inputs: &[&[u64]]) -> Result<Vec<u64>> {
    model.steps[i].eval(&mut Clear::new(model.program), inputs)
}

/// Runs the whole program on an encoded input and returns every tensor (index = tensor id).
///
/// Panics if `model` was built without weights: the reference is the server's computation.
pub fn run_all(model: &Model, input: &[u64]) -> Vec<Vec<u64>> {
    let mut tensors = vec![input.to_vec()];
    for i in 0..model.steps.len() {
        let y = eval_layer(model, i, &model.inputs(i, &tensors))
            .unwrap_or_else(|e| panic!("reference, layer {i}: {e}"));
        tensors.push(y);
    }
    tensors
}

/// Runs the program and returns its outputs, in program order.
pub fn run(model: &Model, input: &[u64]) -> Vec<Vec<u64>> {
    let all = run_all(model, input);
    model
        .program
        .outputs
        .iter()
        .map(|o| all[o.tensor as usize].clone())
        .collect()
}

/// The argmax of a logits vector (decoded as signed).
pub fn argmax(logits: &[u64]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by_key(|(_, v)| **v as i64)
        .map_or(0, |(i, _)| i)
}
