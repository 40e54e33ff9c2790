//! Random parameters for a zoo graph, so a model can be benchmarked without training: He
//! (Kaiming) uniform weights, zero biases, and batch norms whose running statistics are the
//! mean and variance their input is expected to have, so every batch norm outputs values of
//! unit scale, as a trained network's statistics do. With identity statistics instead, an
//! untrained ResNet's residual stream roughly doubles per block (×2^16 over ResNet-50), far
//! from the range a trained fixed-point model has.

use ksnn_formats::WeightRole;
use ksnn_graph::ir::{Graph, IrActivation, IrOp, Param, Params};

use crate::synthetic::Rng;

/// A tensor's expected statistics over all its values: mean and second moment E[x²].
#[derive(Clone, Copy, Debug)]
struct Moments {
    mean: f64,
    sq: f64,
}

impl Moments {
    fn var(self) -> f64 {
        (self.sq - self.mean * self.mean).max(0.0)
    }

    /// ReLU of a normal variable with these moments: E[max(x, 0)] = μΦ(a) + σφ(a) and
    /// E[max(x, 0)²] = (μ² + σ²)Φ(a) + μσφ(a), a = μ/σ. Exact for a normal input; the
    /// residual stream (a sum with a non-negative shortcut) is why the mean matters.
    fn relu(self) -> Self {
        let (mu, sd) = (self.mean, self.var().sqrt());
        if sd == 0.0 {
            let m = mu.max(0.0);
            return Self { mean: m, sq: m * m };
        }
        let a = mu / sd;
        let pdf = (-a * a / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = normal_cdf(a);
        Self {
            mean: mu * cdf + sd * pdf,
            sq: (mu * mu + sd * sd) * cdf + mu * sd * pdf,
        }
    }
}

/// Φ(x) = erfc(−x/√2)/2, with Numerical Recipes' erfc (relative error < 1.2e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = -x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z.abs());
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if z >= 0.0 { erfc } else { 2.0 - erfc }
}

/// `{node}.weight`, `.bias`, `.running_mean`, `.running_var` for every node that needs them,
/// deterministic from `seed`.
///
/// The statistics are propagated through the graph, one mean and second moment per tensor
/// (inputs: pixels uniform in [0, 1] after the model's normalisation): a He-initialised
/// convolution or linear layer has mean 0 and twice its input's E[x²], a batch norm outputs
/// mean 0 and E[x²] = 1, a ReLU acts as on a normal variable ([`Moments::relu`]), an
/// addition adds (independent inputs), pools, resizes and reshapes keep them. An estimate,
/// not a measurement; the unit tests check the reference's activations stay near unit scale.
pub fn random(graph: &Graph, seed: u64) -> Params {
    let mut rng = Rng::new(seed);
    let mut params = Params::new();
    let mut stats = vec![input_moments(graph)];
    for n in &graph.nodes {
        let ins: Vec<Moments> = n.inputs.iter().map(|&t| stats[t as usize]).collect();
        let first = ins
            .first()
            .copied()
            .unwrap_or(Moments { mean: 0.0, sq: 1.0 });
        let mut put = |what: &str, dims: Vec<u32>, data: Vec<f32>| {
            params.insert(format!("{}.{what}", n.name), Param::new(dims, data));
        };
        let linear = Moments {
            mean: 0.0,
            sq: 2.0 * first.sq,
        };
        let out = match &n.op {
            IrOp::Conv(_) | IrOp::Linear(_) => {
                // He weights (fan-in: every dimension after the outputs), zero biases.
                for (role, dims) in n.op.weight_shapes() {
                    let data = if role == WeightRole::Bias {
                        vec![0.0; dims[0] as usize]
                    } else {
                        he_uniform(&mut rng, dims[1..].iter().product(), dims[0])
                    };
                    put(role.as_str(), dims, data);
                }
                linear
            }
            IrOp::BatchNorm { channels, .. } => {
                let c = *channels as usize;
                put("weight", vec![*channels], vec![1.0; c]);
                put("bias", vec![*channels], vec![0.0; c]);
                put("running_mean", vec![*channels], vec![first.mean as f32; c]);
                put("running_var", vec![*channels], vec![first.var() as f32; c]);
                Moments { mean: 0.0, sq: 1.0 }
            }
            // ReLU6 too: values of unit scale rarely reach 6.
            IrOp::Relu | IrOp::Clip { .. } => first.relu(),
            // Near enough for scale: the other activations are ReLU-like or bounded by it.
            IrOp::Activation(act) => {
                if let IrActivation::Prelu { channels } = act {
                    // PyTorch's initial slope.
                    put("slope", vec![*channels], vec![0.25; *channels as usize]);
                }
                first.relu()
            }
            IrOp::Add => {
                let mean: f64 = ins.iter().map(|m| m.mean).sum();
                let var: f64 = ins.iter().map(|m| m.var()).sum();
                Moments {
                    mean,
                    sq: var + mean * mean,
                }
            }
            // As if independent: E[xy] = E[x]·E[y], E[x²y²] = E[x²]·E[y²].
            IrOp::Mul => Moments {
                mean: ins.iter().map(|m| m.mean).product(),
                sq: ins.iter().map(|m| m.sq).product(),
            },
            IrOp::Concat => {
                let k = ins.len().max(1) as f64;
                Moments {
                    mean: ins.iter().map(|m| m.mean).sum::<f64>() / k,
                    sq: ins.iter().map(|m| m.sq).sum::<f64>() / k,
                }
            }
            IrOp::Affine { scale, shift } => {
                let avg = |v: &[f32], f: &dyn Fn(f64) -> f64| {
                    v.iter().map(|&x| f(f64::from(x))).sum::<f64>() / v.len().max(1) as f64
                };
                let (s, t) = (avg(scale, &|x| x), avg(shift, &|x| x));
                let (s2, t2) = (avg(scale, &|x| x * x), avg(shift, &|x| x * x));
                Moments {
                    mean: first.mean * s + t,
                    sq: first.sq * s2 + t2 + 2.0 * s * t * first.mean,
                }
            }
            IrOp::MaxPool(_)
            | IrOp::AvgPool(_)
            | IrOp::GlobalAvgPool
            | IrOp::Flatten
            | IrOp::Upsample(_)
            | IrOp::Identity
            | IrOp::Pad(_) => first,
        };
        stats.push(out);
    }
    params
}

/// Mean and E[x²] of a normalised input with pixels uniform in [0, 1], averaged over
/// channels: per channel E[u − m] = 1/2 − m and E[(u − m)²] = 1/3 − m + m², over std and std².
fn input_moments(graph: &Graph) -> Moments {
    let c = graph.mean.len().max(1) as f64;
    let (mut mean, mut sq) = (0.0, 0.0);
    for (&m, &s) in graph.mean.iter().zip(&graph.std) {
        let (m, s) = (f64::from(m), f64::from(s));
        mean += (0.5 - m) / s / c;
        sq += (1.0 / 3.0 - m + m * m) / (s * s) / c;
    }
    Moments { mean, sq }
}

/// `fan_out × fan_in` values uniform in ±√(6 / fan_in): variance 2 / fan_in (He/Kaiming).
fn he_uniform(rng: &mut Rng, fan_in: u32, fan_out: u32) -> Vec<f32> {
    let a = (6.0 / f64::from(fan_in.max(1))).sqrt();
    (0..u64::from(fan_in) * u64::from(fan_out))
        .map(|_| rng.symmetric(a) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksnn_formats::layer::Op;
    use ksnn_graph::ir::zoo::{self, ZooOptions};
    use ksnn_graph::lower::{LowerOptions, lower};
    use ksnn_runtime::exec::model::{Model, encode_input};
    use ksnn_runtime::reference;
    use ksnn_runtime::ring::decode;

    #[test]
    fn random_parameters_lower_to_valid_programs_for_the_zoo() {
        for name in ["mnist-cnn", "resnet18-cifar", "mobilenetv2"] {
            let g = zoo::build(name).unwrap();
            let p = random(&g, 1);
            // `lower` validates the program and checks the weights against it.
            let l = lower(&g, &p, &Default::default(), &LowerOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                l.program
                    .layers
                    .iter()
                    .any(|l| matches!(l.op, Op::Conv2d(_)))
            );
        }
    }

    #[test]
    fn normal_cdf_and_relu_moments_are_right() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((normal_cdf(-2.0) - 0.022_750_132).abs() < 1e-6);
        // A centred normal: E[relu²] = σ²/2, E[relu] = σ/√(2π).
        let r = Moments { mean: 0.0, sq: 4.0 }.relu();
        assert!((r.sq - 2.0).abs() < 1e-6 && (r.mean - 2.0 * 0.398_942_28).abs() < 1e-6);
        // Far above zero ReLU is the identity.
        let r = Moments {
            mean: 10.0,
            sq: 101.0,
        }
        .relu();
        assert!((r.mean - 10.0).abs() < 1e-6 && (r.sq - 101.0).abs() < 1e-4);
    }

    #[test]
    fn parameters_follow_the_seed() {
        let g = zoo::mnist_cnn();
        assert_eq!(random(&g, 5), random(&g, 5));
        assert_ne!(random(&g, 5), random(&g, 6));
        let p = random(&g, 5);
        let w = &p["conv2.weight"];
        // He uniform: variance 2 / fan_in, fan_in = 16·3·3.
        let var = w.data.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / w.numel() as f64;
        assert!((var * 144.0 / 2.0 - 1.0).abs() < 0.1, "variance {var}");
    }

    #[test]
    fn activations_stay_at_unit_scale_through_the_reference() {
        // Small inputs keep the cleartext reference fast in a debug build; depth is what
        // matters (ResNet-50's 16 residual blocks would grow activations ~2^8 in scale
        // without the batch-norm variances).
        let small = |size| ZooOptions {
            size: Some((size, size)),
            classes: None,
        };
        for (name, opts) in [
            ("mnist-cnn", ZooOptions::default()),
            ("resnet18-cifar", small(16)),
            ("resnet50", small(32)),
        ] {
            let g = zoo::build_with(name, &opts).unwrap();
            let l = lower(
                &g,
                &random(&g, 2),
                &Default::default(),
                &LowerOptions::default(),
            )
            .unwrap();
            let model = Model::new(&l.program, Some(&l.weights)).unwrap();
            let s = l.program.input.shape;
            let px: Vec<f32> = (0..s.elements())
                .map(|i| ((i * 37) % 101) as f32 / 100.0)
                .collect();
            let f = l.program.fixed_point.frac_bits;
            let tensors = reference::run_all(&model, &encode_input(&l.program, &px));
            let mut peak = 0.0f64;
            for (i, t) in tensors.iter().enumerate().skip(1) {
                let rms =
                    (t.iter().map(|&v| decode(v, f).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
                let layer = &l.program.layers[i - 1].name;
                // Low only where a 3x3 convolution sees a 1x1 map (padding leaves one tap).
                assert!(rms > 0.01 && rms < 10.0, "{name} {layer}: rms {rms}");
                peak = peak.max(rms);
            }
            // Unit scale, not merely bounded: the deepest residual stream stays within a few.
            assert!(peak > 0.5 && peak < 6.0, "{name}: largest rms {peak}");
        }
    }
}
