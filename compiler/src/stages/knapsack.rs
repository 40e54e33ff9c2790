//! The knapsack: every channel's block size under a DReLU budget, from measured distortion.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ksnn_compiler::distortion::store::Distortion;
use ksnn_compiler::distortion::store::LayerDistortion;
use ksnn_compiler::experiment::name_of;
use ksnn_formats::{Block, BlockKind, BlockSpec};
use ksnn_knapsack::{self as knapsack, Granularity, Item, Problem, Row, Solver};

/// The DReLU budget.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// A fraction of the model's DReLUs with plain ReLUs (0.06 = 6 %).
    Ratio(f64),
    /// DReLUs per inference.
    Drelus(u64),
}

/// What `ksnn knapsack` (and the pipeline's knapsack stage) solves, and where the spec goes.
#[derive(Clone, Debug)]
pub struct KnapsackConfig {
    /// `distortion.json` from the distortion stage.
    pub distortion: PathBuf,
    /// How many DReLUs per inference the chosen blocks may cost in total.
    pub budget: Budget,
    /// Exact DP or the Lagrangian relaxation with a certified gap.
    pub solver: Solver,
    /// Where to write the block spec (JSON).
    pub out: PathBuf,
}

/// What the solver chose.
pub struct Chosen {
    /// One block per channel of every ReLU layer in the distortion file.
    pub spec: BlockSpec,
    /// DReLUs per inference the chosen blocks cost (at most `budget`).
    pub drelus: u64,
    /// The budget in DReLUs, after a ratio is turned into a count (floored).
    pub budget: u64,
    /// DReLUs per inference with plain ReLUs everywhere (Σ C·H·W over the ReLU layers).
    pub full: u64,
}

/// Solves the knapsack for `d` under `budget`, a block per channel.
pub fn solve(d: &Distortion, budget: Budget, solver: Solver) -> Result<Chosen> {
    solve_at(d, budget, solver, Granularity::Channel)
}

/// Chooses blocks for `d` under `budget` at `granularity`.
pub fn solve_at(
    d: &Distortion,
    budget: Budget,
    solver: Solver,
    granularity: Granularity,
) -> Result<Chosen> {
    // Costs from the real activation shapes recorded with the distortion.
    let full: u64 = d.layers.iter().map(|l| l.layer.full()).sum();
    let budget = match budget {
        Budget::Ratio(r) => {
            ensure!(
                (0.0..=1.0).contains(&r),
                "--ratio {r}: expected a fraction in [0, 1]"
            );
            (r * full as f64).floor() as u64
        }
        Budget::Drelus(m) => m,
    };
    for l in &d.layers {
        ensure!(
            l.noise.len() == l.layer.channels as usize,
            "distortion of `{}` has {} rows for {} channels",
            l.layer.name,
            l.noise.len(),
            l.layer.channels
        );
    }
    // The option index of every channel, layer after layer.
    let choice: Vec<usize> = match granularity {
        Granularity::Channel | Granularity::Layer => {
            let per_layer = granularity == Granularity::Layer;
            let mut rows = Vec::new();
            for l in &d.layers {
                let item = |b: &ksnn_formats::Block, noise: f64, channels: u64| Item {
                    weight: channels * l.layer.drelus(*b),
                    value: -noise,
                };
                if per_layer {
                    rows.push(Row {
                        options: l
                            .layer
                            .options
                            .iter()
                            .enumerate()
                            .map(|(k, b)| {
                                let noise = l.noise.iter().map(|n| n[k]).sum();
                                item(b, noise, u64::from(l.layer.channels))
                            })
                            .collect(),
                    });
                } else {
                    for noise in &l.noise {
                        rows.push(Row {
                            options: l
                                .layer
                                .options
                                .iter()
                                .zip(noise)
                                .map(|(b, &n)| item(b, n, 1))
                                .collect(),
                        });
                    }
                }
            }
            let picked = knapsack_rows(Problem { rows }, budget, full, solver)?;
            if per_layer {
                d.layers
                    .iter()
                    .zip(&picked)
                    .flat_map(|(l, &k)| std::iter::repeat_n(k, l.layer.channels as usize))
                    .collect()
            } else {
                picked
            }
        }
        Granularity::Uniform => uniform(d, budget)?,
    };
    let mut spec = BlockSpec::default();
    let mut row = 0;
    let mut drelus = 0;
    for l in &d.layers {
        let blocks: Vec<_> = (0..l.layer.channels as usize)
            .map(|_| {
                let b = l.layer.options[choice[row]];
                row += 1;
                drelus += l.layer.drelus(b);
                b
            })
            .collect();
        spec.layers.insert(l.layer.name.clone(), blocks);
    }
    ensure!(
        drelus <= budget,
        "internal error: the solution uses {drelus} DReLUs over the budget {budget}"
    );
    Ok(Chosen {
        spec,
        drelus,
        budget,
        full,
    })
}

/// The multiple-choice knapsack on `problem`: an option index per row.
fn knapsack_rows(problem: Problem, budget: u64, full: u64, solver: Solver) -> Result<Vec<usize>> {
    let started = Instant::now();
    let (choice, note) = match solver {
        Solver::Lagrangian => {
            let b = knapsack::lagrangian(&problem, budget)?;
            let note = format!(
                "value {:.6e}, upper bound {:.6e}, gap {:.3e} ({:.2e} relative)",
                b.solution.value,
                b.upper_bound,
                b.gap,
                b.gap / b.upper_bound.abs().max(1e-300)
            );
            (b.solution.choice, note)
        }
        Solver::Exact => {
            let s = knapsack::exact(&problem, budget)?;
            (s.choice, format!("value {:.6e} (optimal)", s.value))
        }
    };
    println!(
        "knapsack ({}): {} rows, budget {budget} of {full} DReLUs, {note}, {:.2} s",
        name_of(&solver),
        problem.rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(choice)
}

/// The uniform baseline: one block size for every channel of every layer, clipped to smaller
/// maps (as `bench model --uniform`), the one that costs the most DReLUs within `budget`
/// (ties: the least total distortion); a block whose clipped form a layer does not offer is
/// not a candidate. Its option index per channel.
fn uniform(d: &Distortion, budget: u64) -> Result<Vec<usize>> {
    let mut sizes: Vec<Block> = d
        .layers
        .iter()
        .flat_map(|l| l.layer.options.iter().copied())
        .collect();
    sizes.sort_unstable_by_key(|b| (b.0, b.1));
    sizes.dedup();
    let index = |l: &LayerDistortion, b: Block| {
        let clipped = match b.kind() {
            BlockKind::Sized { h, w } => Block(
                h.min(l.layer.h).try_into().unwrap_or(u16::MAX),
                w.min(l.layer.w).try_into().unwrap_or(u16::MAX),
            ),
            _ => b,
        };
        l.layer.options.iter().position(|&o| o == clipped)
    };
    let mut best: Option<(u64, f64, Block, Vec<usize>)> = None;
    for b in sizes {
        let Some(picks) = d
            .layers
            .iter()
            .map(|l| index(l, b))
            .collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        let (mut cost, mut noise) = (0u64, 0.0);
        for (l, &k) in d.layers.iter().zip(&picks) {
            let o = l.layer.options[k];
            cost += u64::from(l.layer.channels) * l.layer.drelus(o);
            noise += l.noise.iter().map(|n| n[k]).sum::<f64>();
        }
        let better = match &best {
            None => true,
            Some((c, n, ..)) => cost > *c || (cost == *c && noise < *n),
        };
        if cost <= budget && better {
            best = Some((cost, noise, b, picks));
        }
    }
    let (cost, _, block, picks) = best.with_context(|| {
        format!("no block offered by every layer fits the budget of {budget} DReLUs")
    })?;
    println!(
        "uniform baseline: block {block} everywhere (clipped to smaller maps), {cost} of {budget} DReLUs"
    );
    Ok(d.layers
        .iter()
        .zip(picks)
        .flat_map(|(l, k)| std::iter::repeat_n(k, l.layer.channels as usize))
        .collect())
}

/// Loads the distortion, solves, and writes the spec as JSON to `c.out`.
pub fn run(c: &KnapsackConfig) -> Result<Chosen> {
    let d = Distortion::load(&c.distortion)?;
    let chosen = solve(&d, c.budget, c.solver)?;
    write_spec(&chosen.spec, &c.out)?;
    println!(
        "{} DReLUs per inference ({:.2} % of {}), spec written to {}",
        chosen.drelus,
        100.0 * chosen.drelus as f64 / chosen.full as f64,
        chosen.full,
        c.out.display()
    );
    Ok(chosen)
}

/// Writes `spec` as JSON, creating the parent folder; the file `ksnn finetune --spec` takes.
pub fn write_spec(spec: &BlockSpec, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, spec.to_json()).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksnn_compiler::distortion::LayerOptions;

    /// Two layers of 4 channels on 8×8 maps; channel c of layer l pays `noise(l, c, block)`.
    fn distortion() -> Distortion {
        let options = vec![
            Block(1, 1),
            Block(1, 2),
            Block(2, 2),
            Block(4, 4),
            Block(8, 8),
        ];
        let layer = |name: &str, node, scale: f64| LayerDistortion {
            layer: LayerOptions {
                name: name.into(),
                node,
                channels: 4,
                h: 8,
                w: 8,
                options: options.clone(),
                decisions: 1,
            },
            // Larger blocks distort more; channels differ by a factor of 10 each, so the
            // per-channel choice has something to gain over a per-layer one.
            noise: (0..4)
                .map(|c| {
                    (0..options.len())
                        .map(|k| scale * 10f64.powi(c) * k as f64)
                        .collect()
                })
                .collect(),
        };
        Distortion {
            model: "toy".into(),
            fingerprint: String::new(),
            images: 1,
            // Layer b is far more sensitive: a per-layer choice spends the budget there.
            layers: vec![layer("a", 0, 1.0), layer("b", 1, 100.0)],
        }
    }

    fn total_noise(d: &Distortion, c: &Chosen) -> f64 {
        d.layers
            .iter()
            .map(|l| {
                let blocks = &c.spec.layers[&l.layer.name];
                blocks
                    .iter()
                    .zip(&l.noise)
                    .map(|(b, n)| n[l.layer.options.iter().position(|o| o == b).unwrap()])
                    .sum::<f64>()
            })
            .sum()
    }

    #[test]
    fn baselines_are_coarser_choices_under_the_same_budget() {
        let d = distortion();
        // 512 DReLUs with plain ReLUs; a budget of 26 %: 133 DReLUs.
        let budget = Budget::Ratio(0.26);
        let at = |g| solve_at(&d, budget, Solver::Exact, g).unwrap();
        let (channel, layer, uniform) = (
            at(Granularity::Channel),
            at(Granularity::Layer),
            at(Granularity::Uniform),
        );
        for c in [&channel, &layer, &uniform] {
            assert_eq!(c.budget, 133);
            assert!(c.drelus <= c.budget);
        }
        // Per layer: one block in each layer (8×8 in a, 1×2 in b: 4 + 128). Uniform: one
        // block everywhere, the costliest that fits (2×2: 128 DReLUs).
        for l in layer.spec.layers.values() {
            assert!(l.iter().all(|b| *b == l[0]), "{l:?}");
        }
        assert_eq!(layer.spec.layers["a"][0], Block(8, 8));
        assert_eq!(layer.spec.layers["b"][0], Block(1, 2));
        let all: Vec<Block> = uniform.spec.layers.values().flatten().copied().collect();
        assert!(all.iter().all(|b| *b == Block(2, 2)), "{all:?}");
        assert_eq!(uniform.drelus, 128);
        // Finer choices are at least as good, and here strictly better.
        let (nc, nl, nu) = (
            total_noise(&d, &channel),
            total_noise(&d, &layer),
            total_noise(&d, &uniform),
        );
        assert!(nc < nl && nl < nu, "channel {nc}, layer {nl}, uniform {nu}");
    }

    /// On a layer whose map is smaller than the block, the uniform block is clipped to the map
    /// (as `bench model --uniform`): 8×8 everywhere is 8×8 on the 8×8 maps and 4×4 on a 4×4.
    #[test]
    fn the_uniform_block_is_clipped_to_smaller_maps() {
        let mut d = distortion();
        d.layers.push(LayerDistortion {
            layer: LayerOptions {
                name: "c".into(),
                node: 2,
                channels: 2,
                h: 4,
                w: 4,
                options: vec![Block(1, 1), Block(2, 2), Block(4, 4)],
                decisions: 1,
            },
            noise: vec![vec![0.0, 1.0, 2.0]; 2],
        });
        // 4 + 4 + 2 channels at one DReLU each: only the largest block fits 10.
        let c = solve_at(&d, Budget::Drelus(10), Solver::Exact, Granularity::Uniform).unwrap();
        assert_eq!(c.drelus, 10);
        assert_eq!(c.spec.layers["a"], vec![Block(8, 8); 4]);
        assert_eq!(c.spec.layers["c"], vec![Block(4, 4); 2]);
    }

    #[test]
    fn a_uniform_block_must_fit() {
        let d = distortion();
        // 8×8 blocks everywhere cost 8 DReLUs; a budget of 4 fits none.
        let e = solve_at(&d, Budget::Drelus(4), Solver::Exact, Granularity::Uniform)
            .err()
            .unwrap();
        assert!(e.to_string().contains("fits the budget of 4"), "{e}");
    }
}
