//! The knapsack: every channel's block size under a DReLU budget, from measured distortion.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ksnn_compiler::distortion::store::Distortion;
use ksnn_compiler::experiment::name_of;
use ksnn_formats::BlockSpec;
use ksnn_knapsack::{self as knapsack, Item, Problem, Row, Solver};

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

/// Solves the knapsack for `d` under `budget`.
pub fn solve(d: &Distortion, budget: Budget, solver: Solver) -> Result<Chosen> {
    // Costs from the real activation shapes recorded with the distortion.
    let full: u64 = d
        .layers
        .iter()
        .map(|l| u64::from(l.layer.channels) * u64::from(l.layer.h) * u64::from(l.layer.w))
        .sum();
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
    let mut rows = Vec::new();
    for l in &d.layers {
        ensure!(
            l.noise.len() == l.layer.channels as usize,
            "distortion of `{}` has {} rows for {} channels",
            l.layer.name,
            l.noise.len(),
            l.layer.channels
        );
        for noise in &l.noise {
            rows.push(Row {
                options: l
                    .layer
                    .options
                    .iter()
                    .zip(noise)
                    .map(|(b, &n)| Item {
                        weight: b.drelus(l.layer.h, l.layer.w),
                        value: -n,
                    })
                    .collect(),
            });
        }
    }
    let problem = Problem { rows };
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
        "knapsack ({}): {} channels, budget {budget} of {full} DReLUs, {note}, {:.2} s",
        name_of(&solver),
        problem.rows.len(),
        started.elapsed().as_secs_f64()
    );
    let mut spec = BlockSpec::default();
    let mut row = 0;
    let mut drelus = 0;
    for l in &d.layers {
        let blocks: Vec<_> = (0..l.layer.channels as usize)
            .map(|_| {
                let b = l.layer.options[choice[row]];
                row += 1;
                drelus += b.drelus(l.layer.h, l.layer.w);
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
