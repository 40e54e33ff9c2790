//! Compile-time checks on calibration images: the runtime's cleartext fixed-point reference
//! (what the secure run must equal) against the tch float model, and every tensor's range
//! against the ring and the approximate comparison's limit (docs/original.md §7.9).

use ksnn_formats::Program;
use ksnn_graph::lower::Lowered;
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::{reference, ring};

use crate::data::Classification;
use crate::torch::executor::Executor;

/// What the calibration run found.
#[derive(Clone, Debug)]
pub struct Check {
    /// Calibration images run through both models.
    pub images: usize,
    /// Images whose predicted class (segmentation: every pixel's class) is the same in fixed
    /// point and in float.
    pub top1_agree: usize,
    /// Segmentation: the fraction of pixels whose class is the same in fixed point and in
    /// float, over all images; `None` for a classifier.
    pub pixel_agree: Option<f64>,
    /// Largest |fixed-point logit − float logit|.
    pub max_logit_error: f64,
    /// Per layer: the largest |value| of its output, in real units.
    pub max_abs: Vec<(String, f64)>,
    /// The largest |value| a comparison may see and stay correct, in real units.
    pub compare_limit: f64,
    /// Block-ReLU / clip / max-pool layers whose inputs reached the comparison limit.
    pub over_limit: Vec<(String, f64)>,
}

/// The magnitude below which the approximate DReLU is exact: 2^(63 − g + k) raw units,
/// returned in real units (2^(63 − g + k − f), capped at 2^62).
pub fn compare_limit(p: &Program) -> f64 {
    let a = p.protocol.approx;
    let exp = 63 - i32::from(a.g) + i32::from(a.k) - i32::from(p.fixed_point.frac_bits);
    2f64.powi(exp.min(62))
}

/// Runs both executors on `data` (all of it) and compares.
pub fn calibrate(lowered: &Lowered, exec: &Executor, data: &Classification) -> Check {
    let p = &lowered.program;
    let model = Model::new(p, Some(&lowered.weights)).expect("a validated program and its weights");
    let f = p.fixed_point.frac_bits;
    let limit = compare_limit(p);
    let (x, _) = crate::torch::train::tensors(data, &exec.graph().mean, &exec.graph().std);
    let float = tch::no_grad(|| exec.forward(&x, false)).to_device(tch::Device::Cpu);
    let mut max_abs = vec![0.0f64; p.layers.len()];
    let (mut agree, mut max_err) = (0, 0.0f64);
    let output = &p.outputs[0];
    let shape = model.shapes[output.tensor as usize];
    let (mut pixels_same, mut pixels) = (0usize, 0usize);
    for i in 0..data.len() {
        let all = reference::run_all(&model, &encode_input(p, data.image(i)));
        for (l, t) in all[1..].iter().enumerate() {
            let m = t
                .iter()
                .map(|&v| ring::decode(v, f).abs())
                .fold(0.0, f64::max);
            max_abs[l] = max_abs[l].max(m);
        }
        let out: Vec<f64> = all[p.outputs[0].tensor as usize]
            .iter()
            .map(|&v| ring::decode(v, f))
            .collect();
        let fl: Vec<f32> = float
            .get(i as i64)
            .flatten(0, -1)
            .try_into()
            .unwrap_or_default();
        // The same decision rule as the client's: a class, or a class per pixel.
        let fixed = reference::predict(output.kind, shape, &out);
        let float: Vec<f64> = fl.iter().map(|&v| f64::from(v)).collect();
        let float = reference::predict(output.kind, shape, &float);
        if fixed == float {
            agree += 1;
        }
        pixels += fixed.len();
        pixels_same += fixed.iter().zip(&float).filter(|(a, b)| a == b).count();
        for (a, b) in out.iter().zip(&fl) {
            max_err = max_err.max((a - f64::from(*b)).abs());
        }
    }
    let mut over = Vec::new();
    // Only layers that compare (the cost model's DReLUs) go wrong beyond the limit.
    let costs = p.costs().unwrap_or_default();
    for (layer, cost) in p.layers.iter().zip(&costs) {
        if cost.drelus > 0 {
            let input = layer.inputs[0] as usize;
            let m = if input == 0 { 0.0 } else { max_abs[input - 1] };
            if m >= limit {
                over.push((layer.name.clone(), m));
            }
        }
    }
    Check {
        images: data.len(),
        top1_agree: agree,
        pixel_agree: (output.kind == ksnn_formats::OutputKind::SegmentationLogits)
            .then(|| pixels_same as f64 / pixels.max(1) as f64),
        max_logit_error: max_err,
        max_abs: p
            .layers
            .iter()
            .map(|l| l.name.clone())
            .zip(max_abs)
            .collect(),
        compare_limit: limit,
        over_limit: over,
    }
}
