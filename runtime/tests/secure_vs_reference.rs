//! The secure three-party run against the cleartext reference executor, on a fixed CNN that
//! uses every layer kind and on random programs (every layer kind, random shapes, random
//! specs with border blocks, identity and zero channels).
//!
//! - Helper-exact truncation, k = 0: the secure output equals the reference bit for bit.
//! - Local truncation: layer by layer, the secure output equals the reference layer applied
//!   to the secure input, exactly for layers that do not truncate and within one unit in the
//!   last place for those that do (the documented truncation error).

use ksnn_formats::example::{random_program, tiny_cnn, with_weights};
use ksnn_formats::layer::ActivationKind;
use ksnn_formats::{DreluProtocol, Program, Truncation, Weights};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::exec::step::Step;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::reference;
use ksnn_runtime::ring::trunc_exact;
use ksnn_runtime::testing::random_input as input_for;
use proptest::prelude::*;

/// Forces the protocol choices a test needs and re-ties the weights to the new program.
fn configure(
    program: Program,
    seed: u64,
    drelu: DreluProtocol,
    truncation: Truncation,
    k: u8,
) -> (Program, Weights) {
    let mut p = program;
    p.protocol.drelu = drelu;
    p.protocol.truncation = truncation;
    p.protocol.approx.k = k;
    with_weights(p, seed, 0.5)
}

/// Whether every value of a reference run stays far from the ring's limits (random
/// programs can multiply magnitudes layer after layer).
fn in_range(tensors: &[Vec<u64>]) -> bool {
    tensors
        .iter()
        .flatten()
        .all(|&v| (v as i64).unsigned_abs() < 1 << 44)
}

fn exact_case(program: &Program, weights: &Weights, seed: u64) -> Result<(), TestCaseError> {
    let model = Model::new(program, Some(weights)).unwrap();
    let input = input_for(program, seed);
    let all = reference::run_all(&model, &input);
    prop_assume!(in_range(&all));
    let expect = reference::run(&model, &input);
    let options = LocalOptions {
        keep_shares: true,
        ..Default::default()
    };
    let runs = run_three(program, weights, &[input], Keys::random_triple(), &options)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&runs[0].inferences[0].outputs, &expect);
    let (s0, s1) = (&runs[0].inferences[0].shares, &runs[1].inferences[0].shares);
    // Every intermediate tensor too, except what only the client computes (a trailing
    // upsampling of the revealed logits).
    for (t, want) in all.iter().enumerate() {
        if t > 0 && model.client_side[t - 1] {
            prop_assert!(
                s0[t].is_empty() && s1[t].is_empty(),
                "tensor {} is the client's",
                t
            );
            continue;
        }
        prop_assert_eq!(
            &ksnn_runtime::ring::add(&s0[t], &s1[t]),
            want,
            "tensor {}",
            t
        );
    }
    prop_assert!(
        runs[1].inferences[0].outputs.is_empty(),
        "P1 learns no output"
    );
    prop_assert!(
        runs[2].inferences[0].outputs.is_empty(),
        "P2 learns no output"
    );
    Ok(())
}

#[test]
fn tiny_cnn_exact_equals_reference() {
    for drelu in [DreluProtocol::SecureNn, DreluProtocol::Fss] {
        let (p, _) = tiny_cnn(3);
        let (p, w) = configure(p, 3, drelu, Truncation::HelperExact, 0);
        exact_case(&p, &w, 11).unwrap();
    }
}

/// A `k×k` convolution with bias and "same" padding, for the hand-built programs below.
fn same_conv(cin: u32, cout: u32, k: u32) -> ksnn_formats::layer::Op {
    use ksnn_formats::layer::{Conv2d, Op, Padding};
    Op::Conv2d(Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [k, k],
        stride: [1, 1],
        padding: Padding::uniform(k / 2),
        dilation: [1, 1],
        groups: 1,
        bias: true,
    })
}

/// A layer reading one tensor.
fn one_input(name: &str, input: u32, op: ksnn_formats::layer::Op) -> ksnn_formats::layer::Layer {
    ksnn_formats::layer::Layer {
        name: name.into(),
        inputs: vec![input],
        op,
    }
}

/// Convolutions that span several of the GEMM's cache blocks, with small and large weights,
/// and a pointwise convolution: the secure run still equals the reference in every tensor.
#[test]
fn large_convolutions_are_exact_end_to_end() {
    use ksnn_formats::layer::{BlockRelu, Linear, Op};
    use ksnn_formats::program::{FixedPoint, InputSpec, Output, OutputKind, ProtocolConfig};
    use ksnn_formats::{Block, ContentHash, Shape};
    let (conv, layer) = (same_conv, one_input);
    let program = Program {
        name: "limbs".into(),
        fixed_point: FixedPoint::default(),
        input: InputSpec {
            // 24×24 = 576 columns and 16·9 = 144 rows: two cache blocks each way.
            shape: Shape::new(16, 24, 24),
            mean: vec![0.0; 16],
            std: vec![1.0; 16],
        },
        layers: vec![
            layer("conv1", 0, conv(16, 32, 3)),
            layer(
                "relu1",
                1,
                Op::BlockRelu(BlockRelu {
                    blocks: vec![Block(2, 2); 32],
                }),
            ),
            layer("conv2", 2, conv(32, 32, 1)),
            layer("gap", 3, Op::GlobalAvgPool),
            layer("flat", 4, Op::Flatten),
            layer(
                "fc",
                5,
                Op::Linear(Linear {
                    in_features: 32,
                    out_features: 10,
                    bias: true,
                }),
            ),
        ],
        outputs: vec![Output {
            tensor: 6,
            kind: OutputKind::Logits,
        }],
        protocol: ProtocolConfig::default(),
        weights_hash: ContentHash::default(),
    };
    for amplitude in [0.5, 20.0] {
        let mut p = program.clone();
        p.protocol.truncation = Truncation::HelperExact;
        let (p, w) = with_weights(p, 5, amplitude);
        exact_case(&p, &w, 5).unwrap();
    }
}

/// Offline material dealt in segments (here every layer its own, the first ahead, the rest
/// inside the online pass) changes nothing the parties compute or send: the same outputs,
/// equal to the reference, the same bytes per phase and layer, and the same rounds per phase.
#[test]
fn offline_segments_change_no_result_and_no_cost() {
    use ksnn_runtime::net::counting::{Phase, rounds};
    for drelu in [DreluProtocol::SecureNn, DreluProtocol::Fss] {
        let (p, _) = tiny_cnn(3);
        let (p, w) = configure(p, 3, drelu, Truncation::HelperExact, 0);
        let model = Model::new(&p, Some(&w)).unwrap();
        assert_eq!(model.segments.len(), 1, "a small model is one segment");
        let input = input_for(&p, 4);
        let expect = reference::run(&model, &input);
        let run = |segment_budget| {
            let options = LocalOptions {
                segment_budget,
                ..Default::default()
            };
            run_three(
                &p,
                &w,
                std::slice::from_ref(&input),
                Keys::random_triple(),
                &options,
            )
            .unwrap()
        };
        let (whole, cut) = (run(None), run(Some(1)));
        assert_eq!(cut[0].inferences[0].outputs, expect);
        let stats = |r: &[ksnn_runtime::exec::local::PartyRun; 3]| {
            r.iter()
                .map(|p| p.inferences[0].record.stats.clone())
                .collect::<Vec<_>>()
        };
        let (a, b) = (stats(&whole), stats(&cut));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.sent, y.sent, "bytes and messages per slot");
        }
        for phase in [Phase::Offline, Phase::Online] {
            let r = |s: &[ksnn_runtime::net::counting::Stats]| {
                rounds(&s.iter().collect::<Vec<_>>(), phase, p.layers.len())
            };
            assert_eq!(r(&a), r(&b), "{phase:?} rounds");
        }
    }
}

/// A segmentation head: the parties reveal the 5×8×8 logits and the client upsamples them
/// to 5×32×32 itself; the map still equals the reference's bit for bit, and the server sends
/// the small tensor's share, not the large one's.
#[test]
fn trailing_upsampling_is_the_clients() {
    use ksnn_formats::layer::{BlockRelu, Op, Upsample, UpsampleMode};
    use ksnn_formats::program::{FixedPoint, InputSpec, Output, OutputKind, ProtocolConfig};
    use ksnn_formats::{Block, ContentHash, Shape};
    use ksnn_runtime::net::counting::Phase;
    let conv = |cin, cout| same_conv(cin, cout, 3);
    let layer = one_input;
    for align_corners in [false, true] {
        let program = Program {
            name: "segmentor".into(),
            fixed_point: FixedPoint::default(),
            input: InputSpec {
                shape: Shape::new(3, 8, 8),
                mean: vec![0.0; 3],
                std: vec![1.0; 3],
            },
            layers: vec![
                layer("conv1", 0, conv(3, 4)),
                layer(
                    "relu1",
                    1,
                    Op::BlockRelu(BlockRelu {
                        blocks: vec![Block(2, 2); 4],
                    }),
                ),
                layer("conv_seg", 2, conv(4, 5)),
                layer(
                    "resize",
                    3,
                    Op::Upsample(Upsample {
                        mode: UpsampleMode::Bilinear { align_corners },
                        size: [32, 32],
                    }),
                ),
            ],
            outputs: vec![Output {
                tensor: 4,
                kind: OutputKind::SegmentationLogits,
            }],
            protocol: ProtocolConfig {
                truncation: Truncation::HelperExact,
                ..ProtocolConfig::default()
            },
            weights_hash: ContentHash::default(),
        };
        let (p, w) = with_weights(program, 9, 0.5);
        let model = Model::new(&p, Some(&w)).unwrap();
        assert_eq!(model.client_side, [false, false, false, true]);
        assert_eq!(model.revealed, [3]);
        exact_case(&p, &w, 9).unwrap();
        let runs = run_three(
            &p,
            &w,
            &[input_for(&p, 9)],
            Keys::random_triple(),
            &LocalOptions::default(),
        )
        .unwrap();
        assert_eq!(runs[0].inferences[0].outputs[0].len(), 5 * 32 * 32);
        let sent = runs[1].inferences[0]
            .record
            .stats
            .sent_at((Phase::Online, None))
            .bytes;
        assert_eq!(sent, 5 * 8 * 8 * 8, "P1 sends its share of the 8×8 logits");
    }
}

/// Hard sigmoid and hard swish truncate z = α·x before they compare it, so under local
/// truncation their secure z may be one unit above the reference's: the error bound per
/// element, or `None` where a block's sum of z − 0 or z − 1 lies within its pixel count of
/// zero (that block may decide either way). Leaky ReLU and PReLU compare x itself: `None`
/// for the caller's one-unit rule. Returns `None` for other steps.
fn activation_slack(step: &Step<'_>, x: &[u64], f: u8) -> Option<Vec<Option<u64>>> {
    let Step::Activation { plan, .. } = step else {
        return None;
    };
    let (alpha, beta, swish) = match plan.kind {
        ActivationKind::HardSigmoid { alpha, beta } => (alpha, beta, false),
        ActivationKind::HardSwish { alpha, beta } => (alpha, beta, true),
        _ => return Some(vec![Some(1); x.len()]),
    };
    let z: Vec<i64> = x
        .iter()
        .map(|&v| (trunc_exact(v.wrapping_mul(alpha as u64), f as u32) as i64) + beta)
        .collect();
    let l = &plan.layout;
    let mut size = vec![0i64; l.blocks];
    let mut sums = vec![[0i64; 2]; l.blocks];
    for (&p, &b) in l.pixels.iter().zip(&l.block_of) {
        size[b as usize] += 1;
        sums[b as usize][0] += z[p as usize];
        sums[b as usize][1] += z[p as usize] - (1 << f);
    }
    let mut slack: Vec<Option<u64>> = x
        .iter()
        .map(|&v| {
            // One unit of z, times |x| in hard swish's product, and the truncations.
            let magnitude = ((v as i64).unsigned_abs() >> f) + 1;
            Some(if swish { magnitude + 2 } else { 1 })
        })
        .collect();
    for (&p, &b) in l.pixels.iter().zip(&l.block_of) {
        let near = |s: i64| (-size[b as usize]..size[b as usize]).contains(&s);
        if sums[b as usize].iter().any(|&s| near(s)) {
            slack[p as usize] = None;
        }
    }
    Some(slack)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_exact(seed in any::<u64>()) {
        let (p, _) = random_program(seed, 8);
        let (p, w) = configure(p, seed, DreluProtocol::SecureNn, Truncation::HelperExact, 0);
        exact_case(&p, &w, seed)?;
    }

    /// The same with every DReLU by `fss` (fewer cases: the protocol is tested on its own
    /// in `protocol::drelu::fss`; here the wiring through every layer kind).
    #[test]
    fn random_programs_exact_fss(seed in any::<u64>()) {
        let (p, _) = random_program(seed, 8);
        let (p, w) = configure(p, seed, DreluProtocol::Fss, Truncation::HelperExact, 0);
        exact_case(&p, &w, seed)?;
    }

    #[test]
    fn random_programs_local_truncation_layer_by_layer(seed in any::<u64>()) {
        let (p, _) = random_program(seed, 8);
        let (p, w) = configure(p, seed, DreluProtocol::SecureNn, Truncation::LocalShift, 0);
        let model = Model::new(&p, Some(&w)).unwrap();
        let input = input_for(&p, seed);
        prop_assume!(in_range(&reference::run_all(&model, &input)));
        let options = LocalOptions { keep_shares: true, ..Default::default() };
        let runs = run_three(&p, &w, &[input], Keys::random_triple(), &options)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (s0, s1) = (&runs[0].inferences[0].shares, &runs[1].inferences[0].shares);
        let tensors: Vec<Vec<u64>> = s0.iter().zip(s1).map(|(a, b)| ksnn_runtime::ring::add(a, b)).collect();
        for i in (0..p.layers.len()).filter(|&i| !model.client_side[i]) {
            let ins: Vec<&[u64]> = p.layers[i].inputs.iter().map(|&t| tensors[t as usize].as_slice()).collect();
            let expect = reference::eval_layer(&model, i, &ins).unwrap();
            let truncates = model.steps[i].truncates();
            let slack = activation_slack(&model.steps[i], ins[0], p.fixed_point.frac_bits);
            for (k, (got, want)) in tensors[i + 1].iter().zip(&expect).enumerate() {
                let d = got.wrapping_sub(*want) as i64;
                let ok = match &slack {
                    Some(slack) => slack[k].is_none_or(|max| d.unsigned_abs() <= max),
                    None if truncates => (0..=1).contains(&d),
                    None => d == 0,
                };
                prop_assert!(ok, "layer {} ({}) element {k}: secure {} reference {}", i, p.layers[i].op.kind(), *got as i64, *want as i64);
            }
        }
    }
}
