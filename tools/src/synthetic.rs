//! Reproducible pseudo-random data for the benchmarks: one generator ([`Rng`]) and the
//! synthetic knapsack instances `bench knapsack` solves and `bench model --budget` chooses
//! blocks with, so both stand on the same distortions.

use ksnn_formats::example::SplitMix;
use ksnn_formats::{Block, BlockKind, candidates};
use ksnn_knapsack::{Item, Problem, Row};

/// SplitMix64 (`ksnn_formats::example::SplitMix`), so instances and parameters are identical
/// on every run and machine.
pub struct Rng(SplitMix);

impl Rng {
    /// The generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(SplitMix(seed))
    }

    /// Uniform in `[0, 1)`: the top 53 bits of the next value.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[-a, a)`.
    pub fn symmetric(&mut self, a: f64) -> f64 {
        a * (2.0 * self.unit() - 1.0)
    }
}

/// One ReLU layer as the knapsack sees it: `channels` rows on an `h×w` map.
#[derive(Clone, Copy, Debug)]
pub struct ReluShape {
    /// Rows (one per channel).
    pub channels: u64,
    /// Sign decisions per block: 1 for ReLU, leaky ReLU and PReLU, 2 for hard sigmoid and
    /// hard swish (an option weighs its blocks times this).
    pub decisions: u64,
    /// Activation height.
    pub h: u32,
    /// Activation width.
    pub w: u32,
}

/// A synthetic instance and, per layer, the block each option index stands for.
pub struct Instance {
    /// One row per channel, layers in the given order.
    pub problem: Problem,
    /// Per layer, its candidate blocks (`candidates::options`), in option order.
    pub blocks: Vec<Vec<Block>>,
}

/// Synthetic distortions with real shapes: per layer and per channel a log-spread scale;
/// noise grows with the block area (0 for 1x1), a little with elongation, jittered per
/// option; identity is worst. Weights are the blocks' real DReLU costs.
pub fn instance(layers: &[ReluShape], seed: u64) -> Instance {
    let mut rng = Rng::new(seed);
    let channels: u64 = layers.iter().map(|l| l.channels).sum();
    let mut rows = Vec::with_capacity(channels as usize);
    let mut all = Vec::with_capacity(layers.len());
    for &ReluShape {
        channels,
        decisions,
        h,
        w,
    } in layers
    {
        let blocks: Vec<Block> = candidates::options(h, w);
        let layer_scale = 10f64.powf(2.0 * rng.unit() - 1.0);
        let full = f64::from(h * w).ln();
        for _ in 0..channels {
            let scale = layer_scale * (1.5 * (rng.unit() + rng.unit() - 1.0)).exp();
            let options = blocks
                .iter()
                .map(|&b| {
                    let weight = decisions * b.drelus(h, w);
                    let jitter = 1.0 + 0.3 * rng.unit();
                    let noise = match b.kind() {
                        BlockKind::Sized { h, w } => {
                            let area = f64::from(h * w).ln();
                            let shape = 0.15 * (f64::from(h) / f64::from(w)).ln().abs();
                            (area + shape) * jitter
                        }
                        _ => (full + 2.0) * jitter,
                    };
                    Item {
                        weight,
                        value: -scale * noise,
                    }
                })
                .collect();
            rows.push(Row { options });
        }
        all.push(blocks);
    }
    Instance {
        problem: Problem { rows },
        blocks: all,
    }
}
