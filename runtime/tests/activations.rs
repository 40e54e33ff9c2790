//! Leaky ReLU, PReLU, hard sigmoid and hard swish: the three parties equal the reference bit
//! for bit (helper-exact truncation, exact comparison) on random values and on the edges —
//! exactly at and one unit either side of the clip points, zero, large magnitudes — per
//! pixel and over blocks of every kind; and the reference is the activation it names, within
//! the documented fixed-point error.

use ksnn_formats::example::{SplitMix, random_block, with_weights};
use ksnn_formats::layer::{Activation, ActivationKind, Layer, Op, WeightRole};
use ksnn_formats::program::{FixedPoint, InputSpec, Output, OutputKind, ProtocolConfig};
use ksnn_formats::{Block, ContentHash, DreluProtocol, Program, Shape, Truncation, Weights};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::reference;
use ksnn_runtime::ring::{decode, encode};
use proptest::prelude::*;

const F: u8 = 12;
const ONE: i64 = 1 << F;

/// A program of one activation layer on `shape` with `blocks`.
fn program(
    kind: ActivationKind,
    shape: Shape,
    blocks: Vec<Block>,
    drelu: DreluProtocol,
) -> (Program, Weights) {
    let program = Program {
        name: format!("one-{}", kind.name()),
        fixed_point: FixedPoint {
            ring_bits: 64,
            frac_bits: F,
        },
        input: InputSpec {
            shape,
            mean: vec![0.0; shape.c as usize],
            std: vec![1.0; shape.c as usize],
        },
        layers: vec![Layer {
            name: "act".into(),
            inputs: vec![0],
            op: Op::Activation(Activation { kind, blocks }),
        }],
        outputs: vec![Output {
            tensor: 1,
            kind: OutputKind::Logits,
        }],
        protocol: ProtocolConfig {
            drelu,
            truncation: Truncation::HelperExact,
            ..ProtocolConfig::default()
        },
        weights_hash: ContentHash::default(),
    };
    with_weights(program, 7, 0.9)
}

/// The kinds under test: hard sigmoid with α = 1/8 (its clip points ±4 are exact in fixed
/// point) and PyTorch's 1/6 (they are not), hard swish likewise, a leaky slope, PReLU.
fn kinds() -> Vec<ActivationKind> {
    vec![
        ActivationKind::LeakyRelu { slope: ONE / 10 },
        ActivationKind::Prelu,
        ActivationKind::HardSigmoid {
            alpha: ONE / 8,
            beta: ONE / 2,
        },
        ActivationKind::HardSigmoid {
            alpha: ONE / 6,
            beta: ONE / 2,
        },
        ActivationKind::HardSwish {
            alpha: ONE / 8,
            beta: ONE / 2,
        },
        ActivationKind::HardSwish {
            alpha: ONE / 6,
            beta: ONE / 2,
        },
    ]
}

/// Raw inputs that sit on the edges: zero and its neighbours, the clip points x = ±4 and
/// ±3 and one unit either side, and large magnitudes.
fn edges() -> Vec<i64> {
    let mut v = vec![0, 1, -1, 1 << 40, -(1 << 40), 1 << 30, -(1 << 30)];
    for p in [4 * ONE, -4 * ONE, 3 * ONE, -3 * ONE] {
        v.extend([p - 1, p, p + 1]);
    }
    v
}

fn input(rng: &mut SplitMix, n: usize) -> Vec<u64> {
    let edges = edges();
    (0..n)
        .map(|i| {
            if i < edges.len() || rng.chance(30) {
                edges[(i + rng.range(0, 6) as usize) % edges.len()] as u64
            } else {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                encode(12.0 * u - 6.0, F)
            }
        })
        .collect()
}

fn secure_equals_reference(
    kind: ActivationKind,
    shape: Shape,
    blocks: Vec<Block>,
    drelu: DreluProtocol,
    x: Vec<u64>,
) -> Result<(), TestCaseError> {
    let (p, w) = program(kind, shape, blocks, drelu);
    let expect = reference::run(&Model::new(&p, Some(&w)).unwrap(), &x);
    let runs = run_three(
        &p,
        &w,
        &[x],
        Keys::random_triple(),
        &LocalOptions::default(),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&runs[0].inferences[0].outputs, &expect, "{}", kind.name());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Per pixel: every edge value decided on its own.
    #[test]
    fn per_pixel_secure_equals_reference(seed in any::<u64>()) {
        let mut rng = SplitMix(seed);
        let shape = Shape::new(2, 3, 5);
        let drelu = if seed % 2 == 0 { DreluProtocol::SecureNn } else { DreluProtocol::Fss };
        for kind in kinds() {
            let x = input(&mut rng, shape.elements() as usize);
            secure_equals_reference(kind, shape, vec![Block::RELU; 2], drelu, x)?;
        }
    }

    /// Over random blocks, identity and zero channels included.
    #[test]
    fn blocks_secure_equal_reference(seed in any::<u64>()) {
        let mut rng = SplitMix(seed);
        let shape = Shape::new(rng.range(1, 4), rng.range(1, 7), rng.range(1, 7));
        let drelu = if seed % 2 == 0 { DreluProtocol::Fss } else { DreluProtocol::SecureNn };
        for kind in kinds() {
            let blocks = (0..shape.c).map(|_| random_block(&mut rng, shape.h, shape.w)).collect();
            let x = input(&mut rng, shape.elements() as usize);
            secure_equals_reference(kind, shape, blocks, drelu, x)?;
        }
    }
}

/// The activation by its definition, in f64, for channel `c` (slope: PReLU's).
fn definition(kind: ActivationKind, x: f64, slope: f64) -> f64 {
    let hsig = |alpha: i64, beta: i64| {
        (decode(alpha as u64, F) * x + decode(beta as u64, F)).clamp(0.0, 1.0)
    };
    match kind {
        ActivationKind::LeakyRelu { slope } => {
            if x >= 0.0 {
                x
            } else {
                decode(slope as u64, F) * x
            }
        }
        ActivationKind::Prelu => {
            if x >= 0.0 {
                x
            } else {
                slope * x
            }
        }
        ActivationKind::HardSigmoid { alpha, beta } => hsig(alpha, beta),
        ActivationKind::HardSwish { alpha, beta } => x * hsig(alpha, beta),
    }
}

/// Per pixel, the reference is the activation: within 2 units in the last place, plus the
/// rounding of α·x carried through hard swish's product (|x| units). Identity channels are
/// the middle piece (hard swish's: its upper piece, x), zero channels the lowest.
#[test]
fn reference_is_the_activation() {
    let shape = Shape::new(3, 4, 4);
    let ulp = 1.0 / ONE as f64;
    let mut rng = SplitMix(5);
    for kind in kinds() {
        let blocks = vec![Block::RELU, Block::IDENTITY, Block::ZERO];
        let (p, w) = program(kind, shape, blocks, DreluProtocol::SecureNn);
        let slopes: Vec<f64> = w
            .get("act", WeightRole::Slope)
            .map(|t| t.data.iter().map(|&s| decode(s as u64, F)).collect())
            .unwrap_or_default();
        let x: Vec<u64> = (0..shape.elements() as usize)
            .map(|i| {
                let e = edges();
                let v = e[i % e.len()];
                if v.unsigned_abs() > 1 << 20 {
                    encode(rng.range(0, 2000) as f64 / 100.0 - 10.0, F)
                } else {
                    v as u64
                }
            })
            .collect();
        let y = reference::run(&Model::new(&p, Some(&w)).unwrap(), &x);
        let plane = shape.plane() as usize;
        for (i, (&xi, &yi)) in x.iter().zip(&y[0]).enumerate() {
            let (c, xv) = (i / plane, decode(xi, F));
            let slope = slopes.get(c).copied().unwrap_or(0.0);
            let want = match (c, kind) {
                (0, _) => definition(kind, xv, slope),
                // Identity: the middle piece.
                (1, ActivationKind::HardSigmoid { alpha, beta }) => {
                    decode(alpha as u64, F) * xv + decode(beta as u64, F)
                }
                // Hard swish's identity is its upper piece, x.
                (1, _) => xv,
                // Zero: the lowest piece.
                (_, ActivationKind::LeakyRelu { slope }) => decode(slope as u64, F) * xv,
                (_, ActivationKind::Prelu) => slope * xv,
                (_, _) => 0.0,
            };
            let tolerance = (2.0 + xv.abs()) * ulp;
            let got = decode(yi, F);
            assert!(
                (got - want).abs() <= tolerance,
                "{}, channel {c}, x = {xv}: {got}, want {want}",
                kind.name()
            );
        }
    }
}
