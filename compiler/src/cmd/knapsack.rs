//! `ksnn knapsack` (block sizes under a DReLU budget) and `ksnn spec import`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use ksnn_compiler::distortion::store::Distortion;
use ksnn_formats::BlockSpec;
use ksnn_knapsack::{self as knapsack, Item, Problem, Row};

#[derive(clap::Args)]
pub struct KnapsackArgs {
    /// `distortion.json` from `ksnn distortion`.
    #[arg(long)]
    pub distortion: PathBuf,
    /// Budget as a fraction of the model's DReLUs with plain ReLUs (0.06 = 6 %).
    #[arg(
        long,
        conflicts_with = "max_drelus",
        required_unless_present = "max_drelus"
    )]
    pub ratio: Option<f64>,
    /// Budget in DReLUs per inference.
    #[arg(long)]
    pub max_drelus: Option<u64>,
    /// lagrangian (fast; reports a certified optimality gap) or exact (dynamic programming;
    /// for small budgets).
    #[arg(long, default_value = "lagrangian")]
    pub solver: String,
    /// Where to write the block spec (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

/// What the solver chose.
pub struct Chosen {
    pub spec: BlockSpec,
    pub drelus: u64,
    pub budget: u64,
    pub full: u64,
}

/// Solves the knapsack for `d` under `budget` (or `ratio` of the full count).
pub fn solve(d: &Distortion, ratio: Option<f64>, max: Option<u64>, solver: &str) -> Result<Chosen> {
    // Costs from the real activation shapes recorded with the distortion.
    let full: u64 = d
        .layers
        .iter()
        .map(|l| u64::from(l.layer.channels) * u64::from(l.layer.h) * u64::from(l.layer.w))
        .sum();
    let budget = match (ratio, max) {
        (Some(r), None) => {
            ensure!(
                (0.0..=1.0).contains(&r),
                "--ratio {r}: expected a fraction in [0, 1]"
            );
            (r * full as f64).floor() as u64
        }
        (None, Some(m)) => m,
        _ => bail!("pass exactly one of --ratio and --max-drelus"),
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
        "lagrangian" => {
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
        "exact" => {
            let s = knapsack::exact(&problem, budget)?;
            (s.choice, format!("value {:.6e} (optimal)", s.value))
        }
        other => bail!("unknown solver `{other}`; use lagrangian or exact"),
    };
    println!(
        "knapsack ({solver}): {} channels, budget {budget} of {full} DReLUs, {note}, {:.2} s",
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

pub fn run(a: &KnapsackArgs) -> Result<Chosen> {
    let d = Distortion::load(&a.distortion)?;
    let c = solve(&d, a.ratio, a.max_drelus, &a.solver)?;
    write_spec(&c.spec, &a.out)?;
    println!(
        "{} DReLUs per inference ({:.2} % of {}), spec written to {}",
        c.drelus,
        100.0 * c.drelus as f64 / c.full as f64,
        c.full,
        a.out.display()
    );
    Ok(c)
}

pub fn write_spec(spec: &BlockSpec, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, spec.to_json()).with_context(|| format!("writing {}", out.display()))
}

#[derive(clap::Subcommand)]
pub enum SpecCommand {
    /// Convert the original's block-spec pickle (layer → int [C,2] arrays) to ksnn's JSON.
    Import {
        pickle: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn spec(c: SpecCommand) -> Result<()> {
    let SpecCommand::Import { pickle, out } = c;
    let bytes = std::fs::read(&pickle).with_context(|| format!("reading {}", pickle.display()))?;
    let layers = ksnn_graph::spec::pickle::read_block_spec(&bytes)
        .with_context(|| format!("{}", pickle.display()))?;
    let spec = BlockSpec { layers };
    write_spec(&spec, &out)?;
    println!(
        "{} layers, {} channels written to {}",
        spec.layers.len(),
        spec.channels(),
        out.display()
    );
    Ok(())
}
