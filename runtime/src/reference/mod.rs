//! The cleartext fixed-point reference executor: the program evaluated on plain ring values
//! with exactly the semantics the secure protocols compute — the same kernels, exact floor
//! truncation, DReLU(0) = 1 and the program's approximate comparison. A secure run with
//! helper-exact truncation equals it bit for bit; with local truncation, each truncation
//! may add one unit in the last place (and, with probability ~|y|/2^64, far more).

use ksnn_formats::ApproxCompare;
use ksnn_formats::layer::Op;

use crate::exec::model::{Model, Plan};
use crate::protocol::linear::Bilinear;
use crate::ring::trunc_exact;

/// The secure DReLU's decision on a cleartext value, including approximate comparison
/// (shift right by k, keep 64 − g bits).
pub fn drelu(v: u64, approx: ApproxCompare) -> bool {
    ((((v as i64) >> approx.k) as u64) << approx.g) as i64 >= 0
}

/// `max(a, b)` as the secure tree computes it.
fn secure_max(a: u64, b: u64, approx: ApproxCompare) -> u64 {
    if drelu(b.wrapping_sub(a), approx) {
        b
    } else {
        a
    }
}

/// Evaluates layer `i` on cleartext inputs.
pub fn eval_layer(model: &Model, i: usize, inputs: &[&[u64]]) -> Vec<u64> {
    let program = model.program;
    let f = program.fixed_point.frac_bits as u32;
    let approx = program.protocol.approx;
    let params = &model.params[i];
    let x = inputs[0];
    let trunc = |v: Vec<u64>| -> Vec<u64> { v.into_iter().map(|e| trunc_exact(e, f)).collect() };
    let add_bias = |mut v: Vec<u64>| -> Vec<u64> {
        if let Some(b) = &params.bias {
            let per = v.len() / b.len();
            v.iter_mut()
                .enumerate()
                .for_each(|(k, e)| *e = e.wrapping_add(b[k / per]));
        }
        v
    };
    if let Some(map) = model.linear_map(i) {
        let w = params
            .weight
            .as_ref()
            .or(params.scale.as_ref())
            .expect("reference needs the weights");
        return add_bias(trunc(map.apply(x, w)));
    }
    if let Some(needs_trunc) = model.local(i) {
        let y = model.eval_local(i, inputs);
        return if needs_trunc { trunc(y) } else { y };
    }
    match (&program.layers[i].op, &model.plans[i]) {
        (Op::ScaleBias(_), _) => add_bias(x.to_vec()),
        (Op::BlockRelu(_), Plan::Blocks(layout)) => {
            let keep: Vec<bool> = layout.sums(x).iter().map(|&s| drelu(s, approx)).collect();
            let kept: Vec<u64> = layout
                .gather(x)
                .iter()
                .zip(&layout.block_of)
                .map(|(&v, &b)| if keep[b as usize] { v } else { 0 })
                .collect();
            let mut out = x.to_vec();
            layout.scatter(&mut out, &kept, model.input_shape(i).plane() as usize);
            out
        }
        (Op::Clip(c), _) => x
            .iter()
            .map(|&v| {
                let (lo, hi) = (c.min as u64, c.max as u64);
                let a = if drelu(v.wrapping_sub(lo), approx) {
                    v.wrapping_sub(lo)
                } else {
                    0
                };
                let b = if drelu(v.wrapping_sub(hi), approx) {
                    v.wrapping_sub(hi)
                } else {
                    0
                };
                lo.wrapping_add(a).wrapping_sub(b)
            })
            .collect(),
        (Op::MaxPool(_), Plan::MaxTaps(taps)) => {
            let mut level: Vec<Vec<u64>> = taps
                .iter()
                .map(|t| t.iter().map(|&k| x[k as usize]).collect())
                .collect();
            while level.len() > 1 {
                let odd = if level.len() % 2 == 1 {
                    level.pop()
                } else {
                    None
                };
                let mut next: Vec<Vec<u64>> = level
                    .chunks(2)
                    .map(|pair| {
                        pair[0]
                            .iter()
                            .zip(&pair[1])
                            .map(|(&a, &b)| secure_max(a, b, approx))
                            .collect()
                    })
                    .collect();
                next.extend(odd);
                level = next;
            }
            level.pop().unwrap_or_default()
        }
        (op, _) => unreachable!("layer kind {} has no reference", op.kind()),
    }
}

/// Runs the whole program on an encoded input and returns every tensor (index = tensor id).
pub fn run_all(model: &Model, input: &[u64]) -> Vec<Vec<u64>> {
    let mut tensors = vec![input.to_vec()];
    for i in 0..model.program.layers.len() {
        let ins: Vec<&[u64]> = model.program.layers[i]
            .inputs
            .iter()
            .map(|&t| tensors[t as usize].as_slice())
            .collect();
        let y = eval_layer(model, i, &ins);
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
