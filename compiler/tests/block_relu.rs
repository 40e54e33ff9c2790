//! The tch block ReLU (training, distortion) and the runtime's cleartext reference (what the
//! secure protocol must equal) agree on random tensors, for every kind of block, and the
//! gradient is the mask (straight-through).

use ksnn_compiler::torch::block_relu::{BlockRelu, block_mask};
use ksnn_formats::layer::{BlockRelu as BlockReluOp, Layer, Op};
use ksnn_formats::program::{Output, OutputKind};
use ksnn_formats::spec::Block;
use ksnn_formats::{Shape, example};
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::{reference, ring};
use tch::{Device, Kind, Tensor};

/// The runtime reference on a one-layer program: block ReLU of `x` (`C×H×W`, values in
/// [-1, 1]).
fn runtime_block_relu(blocks: &[Block], s: Shape, x: &[f32]) -> Vec<f64> {
    let (mut p, _) = example::tiny_cnn(1);
    p.input.shape = s;
    p.input.mean = vec![0.0; s.c as usize];
    p.input.std = vec![1.0; s.c as usize];
    p.layers = vec![Layer {
        name: "relu".into(),
        inputs: vec![0],
        op: Op::BlockRelu(BlockReluOp {
            blocks: blocks.to_vec(),
        }),
    }];
    p.outputs = vec![Output {
        tensor: 1,
        kind: OutputKind::Logits,
    }];
    let (p, w) = example::with_weights(p, 1, 1.0);
    let model = Model::new(&p, Some(&w)).expect("valid program");
    let out = reference::run(&model, &encode_input(&p, x));
    let f = p.fixed_point.frac_bits;
    out[0].iter().map(|&v| ring::decode(v, f)).collect()
}

#[test]
fn tch_and_runtime_reference_agree() {
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let all_codes = [
        Block::RELU,
        Block::IDENTITY,
        Block::ZERO,
        Block(2, 2),
        Block(3, 1),
        Block(1, 5),
        Block(4, 3),
        Block(7, 7),
    ];
    for case in 0..40 {
        let (c, h, w) = (1 + next(6) as u32, 3 + next(12) as u32, 3 + next(12) as u32);
        let s = Shape::new(c, h, w);
        let blocks: Vec<Block> = (0..c)
            .map(|_| {
                let mut b = all_codes[next(all_codes.len() as u64) as usize];
                if b.0 as u32 > h || b.1 as u32 > w {
                    b = Block(
                        (1 + next(h.min(7) as u64)) as u16,
                        (1 + next(w.min(7) as u64)) as u16,
                    );
                }
                b
            })
            .collect();
        // k/64 + 2^-12: exact in fixed point (f = 12), and a block of n < 64 pixels sums to
        // m/64 + n·2^-12 ≠ 0, so no block sits on the tie the two semantics break
        // differently (docs/original.md §3.2).
        assert_eq!(example::tiny_cnn(1).0.fixed_point.frac_bits, 12);
        let x: Vec<f32> = (0..s.elements())
            .map(|_| (next(127) as f32 - 63.0) / 64.0 + 1.0 / 4096.0)
            .collect();
        let want = runtime_block_relu(&blocks, s, &x);
        let xt = Tensor::from_slice(&x).view([1, c as i64, h as i64, w as i64]);
        let got: Vec<f32> = BlockRelu::new(&blocks, Device::Cpu)
            .forward(&xt)
            .flatten(0, -1)
            .try_into()
            .unwrap();
        for (i, (&g, &r)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(g) - r).abs() < 1e-3,
                "case {case}: shape {s}, blocks {blocks:?}, element {i}: tch {g} vs reference {r}"
            );
        }
    }
}

#[test]
fn partial_border_blocks_average_in_bounds_pixels() {
    // 1×1×3×3 with 2×2 blocks: the bottom-right block is the single pixel (2,2).
    let x = Tensor::from_slice(&[1.0f32, 1.0, -5.0, 1.0, 1.0, -5.0, -1.0, -1.0, 2.0])
        .view([1, 1, 3, 3]);
    let m: Vec<f32> = block_mask(&x, 2, 2).flatten(0, -1).try_into().unwrap();
    // top-left block mean 1 > 0; top-right (-5,-5) < 0; bottom-left (-1,-1) < 0; (2) > 0.
    assert_eq!(m, [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    // A zero mean counts as negative in plaintext (docs/original.md §3.2).
    let z = Tensor::from_slice(&[1.0f32, -1.0]).view([1, 1, 1, 2]);
    let m: Vec<f32> = block_mask(&z, 1, 2).flatten(0, -1).try_into().unwrap();
    assert_eq!(m, [0.0, 0.0]);
}

#[test]
fn gradient_is_the_mask() {
    let x = Tensor::from_slice(&[1.0f32, -3.0, 0.5, 0.5, -1.0, 2.0, -0.2, 0.1])
        .view([1, 2, 2, 2])
        .set_requires_grad(true);
    let b = BlockRelu::new(&[Block(2, 2), Block::IDENTITY], Device::Cpu);
    let y = b.forward(&x);
    y.sum(Kind::Float).backward();
    let g: Vec<f32> = x.grad().flatten(0, -1).try_into().unwrap();
    // Channel 0: mean (1-3+0.5+0.5)/4 < 0 → all dropped; channel 1: identity.
    assert_eq!(g, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
}

/// The other budgeted activations per block: tch (training, distortion) against the runtime
/// reference on one-layer programs at f = 16, every kind of block, every kind of activation.
/// Inputs (k − 63)/8 + 2^-12 and α = 1/8, β = 1/2 keep every block sum of x, z and z − 1 off
/// the tie where the two semantics differ (by less than 2^-6 against a grid of 2^-6), so any
/// difference beyond fixed-point rounding is a disagreement on a block (hard swish's gate is
/// continuous in the block mean: no ties).
#[test]
fn tch_activations_per_block_equal_the_runtime_reference() {
    use ksnn_compiler::torch::activation;
    use ksnn_formats::layer::{Activation, ActivationKind, WeightRole};
    use ksnn_graph::ir::IrActivation;

    let mut rng = 0x2545f4914f6cdd1du64;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    const F: u8 = 16;
    let one = 1i64 << F;
    let kinds = [
        (
            ActivationKind::LeakyRelu { slope: one / 8 },
            IrActivation::LeakyRelu { slope: 0.125 },
        ),
        (ActivationKind::Prelu, IrActivation::Prelu { channels: 0 }),
        (
            ActivationKind::HardSigmoid {
                alpha: one / 8,
                beta: one / 2,
            },
            IrActivation::HardSigmoid {
                alpha: 0.125,
                beta: 0.5,
            },
        ),
        (
            ActivationKind::HardSwish {
                alpha: one / 8,
                beta: one / 2,
            },
            IrActivation::HardSwish {
                alpha: 0.125,
                beta: 0.5,
            },
        ),
    ];
    let codes = [
        Block::RELU,
        Block::IDENTITY,
        Block::ZERO,
        Block(2, 2),
        Block(3, 1),
        Block(4, 3),
        Block(7, 7),
    ];
    for case in 0..24 {
        let (kind, act) = kinds[case % kinds.len()];
        let (c, h, w) = (1 + next(5) as u32, 7 + next(6) as u32, 7 + next(6) as u32);
        let s = Shape::new(c, h, w);
        let blocks: Vec<Block> = (0..c)
            .map(|_| codes[next(codes.len() as u64) as usize])
            .collect();
        let x: Vec<f32> = (0..s.elements())
            .map(|_| (next(127) as f32 - 63.0) / 8.0 + 1.0 / 4096.0)
            .collect();
        // The runtime reference on a one-layer program.
        let (mut p, _) = example::tiny_cnn(1);
        p.fixed_point.frac_bits = F;
        p.input.shape = s;
        p.input.mean = vec![0.0; c as usize];
        p.input.std = vec![1.0; c as usize];
        p.layers = vec![Layer {
            name: "act".into(),
            inputs: vec![0],
            op: Op::Activation(Activation {
                kind,
                blocks: blocks.clone(),
            }),
        }];
        p.outputs = vec![Output {
            tensor: 1,
            kind: OutputKind::Logits,
        }];
        let (p, weights) = example::with_weights(p, case as u64, 0.5);
        let model = Model::new(&p, Some(&weights)).expect("valid program");
        let want: Vec<f64> = reference::run(&model, &encode_input(&p, &x))[0]
            .iter()
            .map(|&v| ring::decode(v, F))
            .collect();
        // tch with the same (fixed-point) slopes.
        let slopes: Option<Tensor> = weights.get("act", WeightRole::Slope).map(|t| {
            let v: Vec<f32> = t.data.iter().map(|&r| r as f32 / one as f32).collect();
            Tensor::from_slice(&v)
        });
        let xt = Tensor::from_slice(&x).view([1, c as i64, h as i64, w as i64]);
        let b = BlockRelu::new(&blocks, Device::Cpu);
        let got: Vec<f32> = activation::forward(&xt, &act, slopes.as_ref(), Some(&b))
            .flatten(0, -1)
            .try_into()
            .unwrap();
        // Hard swish's gate scales each block sum by α/n rounded to 2^-16: off by up to
        // |x̄|·n·2^-17 (x̄ ≤ 4 in the gate's range, n ≤ 49), times |x|.
        let swish = matches!(kind, ActivationKind::HardSwish { .. });
        for (i, (&g, &r)) in got.iter().zip(&want).enumerate() {
            let tolerance = if swish {
                1e-2 + 2e-3 * f64::from(x[i].abs())
            } else {
                1e-2
            };
            assert!(
                (f64::from(g) - r).abs() < tolerance,
                "case {case} ({}): blocks {blocks:?}, element {i} (x = {}): tch {g} vs reference {r}",
                kind.name(),
                x[i]
            );
        }
    }
}
