//! The cleartext fixed-point reference executor: the program evaluated on plain ring values
//! with exactly the semantics the secure protocols compute — the same kernels, exact floor
//! truncation, DReLU(0) = 1 and the program's approximate comparison. A secure run with
//! helper-exact truncation equals it bit for bit; with local truncation, each truncation
//! may add one unit in the last place (and, with probability ~|y|/2^64, far more).

mod clear;

use ksnn_formats::program::OutputKind;
use ksnn_formats::{ApproxCompare, Shape};

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

/// Runs the program and returns its outputs, in program order. Each tensor is dropped after
/// its last reader, so memory stays near the largest few activations (a 512×512 segmentor's
/// reference fits where keeping every tensor would not).
///
/// Panics if `model` was built without weights: the reference is the server's computation.
pub fn run(model: &Model, input: &[u64]) -> Vec<Vec<u64>> {
    run_visiting(model, input, |_, _| {})
}

/// [`run`], showing each layer's output to `visit` (layer index, values) as it is made.
pub fn run_visiting(
    model: &Model,
    input: &[u64],
    mut visit: impl FnMut(usize, &[u64]),
) -> Vec<Vec<u64>> {
    let mut tensors = vec![input.to_vec()];
    for i in 0..model.steps.len() {
        let y = eval_layer(model, i, &model.inputs(i, &tensors))
            .unwrap_or_else(|e| panic!("reference, layer {i}: {e}"));
        visit(i, &y);
        tensors.push(y);
        for &t in &model.program.layers[i].inputs {
            if model.last_use[t as usize] == i {
                tensors[t as usize] = Vec::new();
            }
        }
    }
    model
        .program
        .outputs
        .iter()
        .map(|o| tensors[o.tensor as usize].clone())
        .collect()
}

/// [`predict`] on ring values, read as signed.
pub fn predict_ring(kind: OutputKind, shape: Shape, values: &[u64]) -> Vec<u32> {
    predict(kind, shape, bytemuck::cast_slice::<u64, i64>(values))
}

/// What the client makes of an output's values: for [`OutputKind::Logits`] the class (one
/// label), for [`OutputKind::SegmentationLogits`] the class of every pixel (`C×H×W` scores →
/// `H×W` labels). Ties go to the lower class. Generic so that the client's ring values and
/// decoded floats go through the same rule.
pub fn predict<T: PartialOrd + Copy>(kind: OutputKind, shape: Shape, values: &[T]) -> Vec<u32> {
    let (classes, pixels) = match kind {
        OutputKind::Logits => (values.len(), 1),
        OutputKind::SegmentationLogits => (shape.c as usize, shape.plane() as usize),
    };
    (0..pixels)
        .map(|p| {
            let mut best = 0;
            for k in 1..classes {
                if values[k * pixels + p] > values[best * pixels + p] {
                    best = k;
                }
            }
            best as u32
        })
        .collect()
}
