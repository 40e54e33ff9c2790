//! Ready-made programs with matching weights: a fixed small CNN that uses every layer kind
//! (for `ksnn-tools sample`, docs and tests) and seeded random programs (for property tests
//! of decoders here and of the secure runtime against its reference).
//!
//! Weights are pseudo-random from a seed: these are test inputs, not models.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::hash::ContentHash;
use crate::infer::output_shape;
use crate::layer::*;
use crate::program::*;
use crate::shape::Shape;
use crate::spec::Block;
use crate::weights::{WeightTensor, Weights};

/// SplitMix64: a small deterministic generator for building test programs (never for secrets).
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next pseudo-random 64-bit value (advances the state).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % (u64::from(hi - lo) + 1)) as u32
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.range(0, 99) < percent
    }
}

/// Fills in weights for `layers` (uniform in ±`amplitude` real units) and ties the program
/// and weight hashes together.
pub fn with_weights(mut program: Program, seed: u64, amplitude: f64) -> (Program, Weights) {
    let mut rng = SplitMix(seed);
    let f = program.fixed_point.frac_bits;
    let scale = amplitude * f64::from(1u32 << f);
    let mut tensors = Vec::new();
    for layer in &program.layers {
        for (role, shape) in layer.op.weight_shapes() {
            let n: u64 = shape.iter().map(|&d| u64::from(d)).product();
            let data = (0..n)
                .map(|_| {
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    ((2.0 * u - 1.0) * scale) as i64
                })
                .collect();
            tensors.push(WeightTensor {
                layer: layer.name.clone(),
                role,
                shape,
                data,
            });
        }
    }
    let weights = Weights::bind(&mut program, f, tensors);
    (program, weights)
}

fn layer(name: &str, inputs: &[TensorId], op: Op) -> Layer {
    Layer {
        name: name.into(),
        inputs: inputs.to_vec(),
        op,
    }
}

fn conv(cin: u32, cout: u32, k: u32, pad: u32, dil: u32, groups: u32) -> Op {
    Op::Conv2d(Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [k, k],
        stride: [1, 1],
        padding: Padding::uniform(pad),
        dilation: [dil, dil],
        groups,
        bias: true,
    })
}

/// A small MNIST-shaped CNN (1×28×28 → 10 logits) that uses every layer kind once or more:
/// grouped, dilated and depthwise convolutions, block ReLUs with every kind of block
/// (including border blocks, identity and zero channels), ReLU6, both poolings, a residual
/// add, upsampling, concatenation, global pooling and two linear heads, and a chain of leaky
/// ReLU, PReLU, hard sigmoid and hard swish with every kind of block into a third head.
pub fn tiny_cnn(seed: u64) -> (Program, Weights) {
    let f = FixedPoint::default().frac_bits;
    let relu1 = vec![
        Block::RELU,
        Block(2, 2),
        Block(3, 3),
        Block::IDENTITY,
        Block::ZERO,
        Block(4, 7),
        Block(28, 28),
        Block(5, 3),
    ];
    let act_blocks = [
        Block::RELU,
        Block(2, 2),
        Block::IDENTITY,
        Block::ZERO,
        Block(3, 5),
        Block(14, 14),
        Block::RELU,
        Block(4, 4),
    ];
    let layers = vec![
        layer("conv1", &[0], conv(1, 8, 3, 1, 1, 1)),
        layer("relu1", &[1], Op::BlockRelu(BlockRelu { blocks: relu1 })),
        layer(
            "pool1",
            &[2],
            Op::MaxPool(MaxPool {
                kernel: [2, 2],
                stride: [2, 2],
                padding: Padding::default(),
                ceil_mode: false,
            }),
        ),
        layer("conv2", &[3], conv(8, 16, 3, 1, 1, 2)),
        layer(
            "bn2",
            &[4],
            Op::ScaleBias(ScaleBias {
                channels: 16,
                scale: true,
                bias: true,
            }),
        ),
        layer(
            "relu6_2",
            &[5],
            Op::Clip(Clip {
                min: 0,
                max: 6 << f,
            }),
        ),
        layer("conv3_dw", &[6], conv(16, 16, 3, 2, 2, 16)),
        layer("res3", &[6, 7], Op::Add),
        layer(
            "relu3",
            &[8],
            Op::BlockRelu(BlockRelu {
                blocks: (0..16)
                    .map(|c| if c % 4 == 3 { Block::RELU } else { Block(2, 2) })
                    .collect(),
            }),
        ),
        layer(
            "pool3",
            &[9],
            Op::AvgPool(AvgPool {
                kernel: [2, 2],
                stride: [2, 2],
                padding: Padding::default(),
                ceil_mode: false,
                count_include_pad: true,
            }),
        ),
        layer(
            "up3",
            &[10],
            Op::Upsample(Upsample {
                mode: UpsampleMode::Nearest,
                size: [14, 14],
            }),
        ),
        layer("cat3", &[11, 9], Op::Concat),
        layer("gap", &[12], Op::GlobalAvgPool),
        layer("flat", &[10], Op::Flatten),
        layer(
            "fc_spatial",
            &[14],
            Op::Linear(Linear {
                in_features: 16 * 7 * 7,
                out_features: 10,
                bias: true,
            }),
        ),
        layer(
            "fc_pooled",
            &[13],
            Op::Linear(Linear {
                in_features: 32,
                out_features: 10,
                bias: false,
            }),
        ),
        layer("logits", &[15, 16], Op::Add),
        // The other budgeted activations in a chain on pool1's 8×14×14, every block kind.
        layer(
            "leaky4",
            &[3],
            activation(
                ActivationKind::LeakyRelu {
                    slope: (1 << f) / 10,
                },
                &act_blocks,
            ),
        ),
        layer(
            "prelu4",
            &[18],
            activation(ActivationKind::Prelu, &act_blocks),
        ),
        layer(
            "hsig4",
            &[19],
            activation(
                ActivationKind::HardSigmoid {
                    alpha: (1 << f) / 5,
                    beta: (1 << f) / 2,
                },
                &act_blocks,
            ),
        ),
        layer(
            "hswish4",
            &[20],
            activation(
                ActivationKind::HardSwish {
                    alpha: (1 << f) / 6,
                    beta: (1 << f) / 2,
                },
                &act_blocks,
            ),
        ),
        layer("gap4", &[21], Op::GlobalAvgPool),
        // A squeeze-and-excitation gate: the map times its own channel means.
        layer("gate4", &[21, 22], Op::Mul),
        layer("gap5", &[23], Op::GlobalAvgPool),
        layer(
            "fc4",
            &[24],
            Op::Linear(Linear {
                in_features: 8,
                out_features: 10,
                bias: true,
            }),
        ),
        layer("logits_all", &[17, 25], Op::Add),
    ];
    let program = Program {
        name: "tiny-cnn-example".into(),
        fixed_point: FixedPoint::default(),
        input: InputSpec {
            shape: Shape::new(1, 28, 28),
            mean: vec![0.1307],
            std: vec![0.3081],
        },
        outputs: vec![Output {
            tensor: layers.len() as u32,
            kind: OutputKind::Logits,
        }],
        layers,
        protocol: ProtocolConfig::default(),
        weights_hash: ContentHash::default(),
    };
    with_weights(program, seed, 0.3)
}

/// A random valid program of up to `max_layers` layers over small shapes, drawing every
/// layer kind and every block kind, including border blocks.
pub fn random_program(seed: u64, max_layers: u32) -> (Program, Weights) {
    let mut rng = SplitMix(seed);
    let c = rng.range(1, 3);
    let input = Shape::new(c, rng.range(1, 9), rng.range(1, 9));
    let mut shapes = vec![input];
    let mut layers: Vec<Layer> = Vec::new();
    let n = rng.range(1, max_layers.max(1));
    for i in 0..n {
        let src = rng.range(0, shapes.len() as u32 - 1);
        let x = shapes[src as usize];
        let (op, inputs) = random_op(&mut rng, &shapes, src);
        let (op, inputs, y) = match output_shape(
            &op,
            &inputs
                .iter()
                .map(|&t| shapes[t as usize])
                .collect::<Vec<_>>(),
        ) {
            Ok(y) => (op, inputs, y),
            // Parameters that do not fit fall back to a block ReLU, which always does.
            Err(_) => (random_block_relu(&mut rng, x), vec![src], x),
        };
        layers.push(Layer {
            name: format!("l{i}_{}", op.kind()),
            inputs,
            op,
        });
        shapes.push(y);
    }
    let mut outputs = vec![Output {
        tensor: shapes.len() as u32 - 1,
        kind: OutputKind::Logits,
    }];
    if rng.chance(30) {
        outputs.push(Output {
            tensor: rng.range(1, shapes.len() as u32 - 1),
            kind: OutputKind::SegmentationLogits,
        });
    }
    let protocol = ProtocolConfig {
        drelu: if rng.chance(50) {
            DreluProtocol::SecureNn
        } else {
            DreluProtocol::Fss
        },
        approx: ApproxCompare {
            k: rng.range(0, 5) as u8,
            g: rng.range(0, 48) as u8,
        },
        truncation: if rng.chance(50) {
            Truncation::LocalShift
        } else {
            Truncation::HelperExact
        },
    };
    let program = Program {
        name: format!("random-{seed}"),
        fixed_point: FixedPoint {
            ring_bits: 64,
            frac_bits: rng.range(8, 16) as u8,
        },
        input: InputSpec {
            shape: input,
            mean: (0..c).map(|i| 0.1 * i as f32).collect(),
            std: (0..c).map(|i| 0.5 + 0.1 * i as f32).collect(),
        },
        layers,
        outputs,
        protocol,
        weights_hash: ContentHash::default(),
    };
    with_weights(program, seed ^ 0xA5A5, 0.5)
}

/// A random block for an `h×w` channel: mostly sizes (borders included), sometimes
/// identity or zero.
pub fn random_block(rng: &mut SplitMix, h: u32, w: u32) -> Block {
    match rng.range(0, 9) {
        0 => Block::IDENTITY,
        1 => Block::ZERO,
        2 => Block::RELU,
        _ => Block(
            rng.range(1, h.min(255)) as u16,
            rng.range(1, w.min(255)) as u16,
        ),
    }
}

fn activation(kind: ActivationKind, blocks: &[Block]) -> Op {
    Op::Activation(Activation {
        kind,
        blocks: blocks.to_vec(),
    })
}

/// A random activation other than ReLU with random constants (raw, for f ≥ 8) and blocks.
fn random_activation(rng: &mut SplitMix, x: Shape) -> Op {
    let signed = |rng: &mut SplitMix, max: u32| i64::from(rng.range(0, 2 * max)) - i64::from(max);
    let kind = match rng.range(0, 3) {
        0 => ActivationKind::LeakyRelu {
            slope: signed(rng, 200),
        },
        1 => ActivationKind::Prelu,
        k => {
            let (alpha, beta) = (i64::from(rng.range(1, 200)), signed(rng, 300));
            if k == 2 {
                ActivationKind::HardSigmoid { alpha, beta }
            } else {
                ActivationKind::HardSwish { alpha, beta }
            }
        }
    };
    Op::Activation(Activation {
        kind,
        blocks: (0..x.c).map(|_| random_block(rng, x.h, x.w)).collect(),
    })
}

fn random_block_relu(rng: &mut SplitMix, x: Shape) -> Op {
    Op::BlockRelu(BlockRelu {
        blocks: (0..x.c).map(|_| random_block(rng, x.h, x.w)).collect(),
    })
}

fn random_op(rng: &mut SplitMix, shapes: &[Shape], src: u32) -> (Op, Vec<TensorId>) {
    let x = shapes[src as usize];
    let same_plane: Vec<u32> = (0..shapes.len() as u32)
        .filter(|&t| (shapes[t as usize].h, shapes[t as usize].w) == (x.h, x.w))
        .collect();
    let same_shape: Vec<u32> = (0..shapes.len() as u32)
        .filter(|&t| shapes[t as usize] == x)
        .collect();
    let window = |rng: &mut SplitMix| {
        let k = [rng.range(1, 3), rng.range(1, 3)];
        let pad = Padding {
            top: rng.range(0, k[0] - 1),
            left: rng.range(0, k[1] - 1),
            bottom: rng.range(0, k[0] - 1),
            right: rng.range(0, k[1] - 1),
        };
        (k, [rng.range(1, 2), rng.range(1, 2)], pad)
    };
    let op = match rng.range(0, 13) {
        0 => {
            let groups = if rng.chance(30) { x.c } else { 1 };
            let (kernel, stride, padding) = window(rng);
            Op::Conv2d(Conv2d {
                in_channels: x.c,
                out_channels: groups * rng.range(1, 3),
                kernel,
                stride,
                padding,
                dilation: [rng.range(1, 2), rng.range(1, 2)],
                groups,
                bias: rng.chance(70),
            })
        }
        1 => {
            let (op, _) = (
                Op::Linear(Linear {
                    in_features: x.c,
                    out_features: rng.range(1, 6),
                    bias: rng.chance(50),
                }),
                (),
            );
            if (x.h, x.w) == (1, 1) {
                op
            } else {
                Op::Flatten
            }
        }
        2 => random_block_relu(rng, x),
        3 => {
            let min = i64::from(rng.range(0, 3)) - 2;
            Op::Clip(Clip {
                min,
                max: min + i64::from(rng.range(1, 5000)),
            })
        }
        4 => {
            let (kernel, stride, padding) = window(rng);
            Op::MaxPool(MaxPool {
                kernel,
                stride,
                padding,
                ceil_mode: rng.chance(30),
            })
        }
        5 => {
            let (kernel, stride, padding) = window(rng);
            Op::AvgPool(AvgPool {
                kernel,
                stride,
                padding,
                ceil_mode: rng.chance(30),
                count_include_pad: rng.chance(50),
            })
        }
        6 => Op::GlobalAvgPool,
        7 => {
            let other = same_shape[rng.range(0, same_shape.len() as u32 - 1) as usize];
            return (Op::Add, vec![src, other]);
        }
        12 => {
            // A product with a tensor of the same shape or a per-channel gate.
            let gates: Vec<u32> = (0..shapes.len() as u32)
                .filter(|&t| {
                    let s = shapes[t as usize];
                    s == x || s == Shape::vector(x.c)
                })
                .collect();
            let other = gates[rng.range(0, gates.len() as u32 - 1) as usize];
            return (Op::Mul, vec![src, other]);
        }
        8 => {
            let k = rng.range(1, 3) as usize;
            let mut inputs = vec![src];
            for _ in 1..k {
                inputs.push(same_plane[rng.range(0, same_plane.len() as u32 - 1) as usize]);
            }
            return (Op::Concat, inputs);
        }
        9 => Op::Flatten,
        10 => Op::Upsample(Upsample {
            mode: if rng.chance(50) {
                UpsampleMode::Nearest
            } else {
                UpsampleMode::Bilinear {
                    align_corners: rng.chance(50),
                }
            },
            size: [rng.range(1, 10), rng.range(1, 10)],
        }),
        11 => random_activation(rng, x),
        _ => Op::ScaleBias(ScaleBias {
            channels: x.c,
            scale: rng.chance(70),
            bias: true,
        }),
    };
    (op, vec![src])
}

/// The names of every op kind, to check that tests reach them all.
pub const ALL_KINDS: [&str; 17] = [
    "conv2d",
    "linear",
    "block_relu",
    "clip",
    "leaky_relu",
    "prelu",
    "hard_sigmoid",
    "hard_swish",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "add",
    "mul",
    "concat",
    "flatten",
    "upsample",
    "scale_bias",
];

/// Lists the layer kinds a program uses.
pub fn kinds(program: &Program) -> Vec<String> {
    program.layers.iter().map(|l| l.op.kind().into()).collect()
}
