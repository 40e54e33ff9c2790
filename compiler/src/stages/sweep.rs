//! Knapsack, fine-tune and evaluate at several budgets; a table and a plot.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, ensure};
use ksnn_compiler::distortion::store::{Distortion, write_json};
use ksnn_compiler::experiment::name_of;
use ksnn_compiler::plot::{self, Series};
use ksnn_compiler::torch::train::TrainConfig as Settings;
use ksnn_knapsack::Solver;

use super::knapsack::{Budget, Chosen, solve_at, write_spec};
use super::train::{TrainConfig, eval};
use super::{Data, Model, ModelSource};
use ksnn_knapsack::Granularity;

/// What `ksnn sweep` (and the pipeline's `[sweep]`) runs: one knapsack + fine-tune + evaluation per
/// ratio.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// The trained model distortion was measured on.
    pub model: Model,
    /// Fine-tuning uses its training split, the accuracies its test split.
    pub data: Data,
    /// `distortion.json` of the same model.
    pub distortion: PathBuf,
    /// Budgets as fractions of the model's DReLUs.
    pub ratios: Vec<f64>,
    /// The knapsack solver used at every budget.
    pub solver: Solver,
    /// Fine-tuning epochs per budget.
    pub epochs: usize,
    /// Fine-tuning learning rate (the same at every budget, no warm-up).
    pub lr: f64,
    /// Directory for specs, checkpoints, `sweep.md`, `sweep.json` and `sweep.png`.
    pub out: PathBuf,
    /// Naive choices run at the same budgets and fine-tuned the same way, beside the
    /// knapsack's (`uniform`, `layerwise`).
    pub baselines: Vec<Granularity>,
}

/// One choice of blocks at one budget, fine-tuned and evaluated.
#[derive(serde::Serialize)]
struct Outcome {
    drelus: u64,
    accuracy_before_finetune: f64,
    accuracy: f64,
}

#[derive(serde::Serialize)]
struct Point {
    ratio: f64,
    drelus: u64,
    budget: u64,
    full: u64,
    accuracy_before_finetune: f64,
    accuracy: f64,
    /// The baselines at this budget, by name (`uniform`, `layerwise`).
    baselines: std::collections::BTreeMap<String, Outcome>,
}

/// Chooses blocks at `granularity` under ratio `r`, then evaluates, fine-tunes and evaluates
/// again; the spec and checkpoint are named by `tag`.
fn outcome(
    a: &SweepConfig,
    d: &Distortion,
    r: f64,
    granularity: Granularity,
    tag: &str,
) -> Result<(Chosen, Outcome)> {
    let chosen = solve_at(d, Budget::Ratio(r), a.solver, granularity)?;
    let spec = a.out.join(format!("spec{tag}-{r}.json"));
    write_spec(&chosen.spec, &spec)?;
    let before = eval(&a.model, &a.data, Some(&spec))?;
    let after = super::train::run(&TrainConfig {
        model: a.model.clone(),
        data: a.data.clone(),
        spec: Some(spec),
        out: a.out.join(format!("finetuned{tag}-{r}.safetensors")),
        settings: Settings {
            epochs: a.epochs,
            lr: a.lr,
            warmup_steps: 0,
            ..Settings::default()
        },
    })?;
    let o = Outcome {
        drelus: chosen.drelus,
        accuracy_before_finetune: before,
        accuracy: after,
    };
    Ok((chosen, o))
}

/// Runs every budget, then writes `sweep.md`, `sweep.json` and `sweep.png` (accuracy against
/// DReLUs, before and after fine-tuning).
pub fn run(a: &SweepConfig) -> Result<()> {
    ensure!(
        a.model.checkpoint.is_some() || matches!(a.model.source, ModelSource::File(_)),
        "pass --checkpoint with the trained parameters"
    );
    ensure!(
        !a.baselines.contains(&Granularity::Channel),
        "baseline `channel` is the knapsack itself; the baselines are uniform and layerwise"
    );
    std::fs::create_dir_all(&a.out)?;
    let d = Distortion::load(&a.distortion)?;
    let base = eval(&a.model, &a.data, None)?;
    let mut points = Vec::new();
    for &r in &a.ratios {
        println!("== budget {:.1} %", 100.0 * r);
        let (chosen, knap) = outcome(a, &d, r, Granularity::Channel, "")?;
        let mut baselines = std::collections::BTreeMap::new();
        for &g in &a.baselines {
            let name = name_of(&g);
            println!("== budget {:.1} %, baseline `{name}`", 100.0 * r);
            baselines.insert(name.clone(), outcome(a, &d, r, g, &format!("-{name}"))?.1);
        }
        points.push(Point {
            ratio: r,
            drelus: chosen.drelus,
            budget: chosen.budget,
            full: chosen.full,
            accuracy_before_finetune: knap.accuracy_before_finetune,
            accuracy: knap.accuracy,
            baselines,
        });
    }
    let names: Vec<String> = a.baselines.iter().map(name_of).collect();
    let head: String = names
        .iter()
        .map(|n| format!(" {n}: DReLUs | {n}: after fine-tuning |"))
        .collect();
    let rule = "---|---|".repeat(names.len());
    let mut md = format!(
        "# {}: accuracy against the DReLU budget\n\nModel with plain ReLUs: {:.2} % on {} test images. Distortion on {} training images; knapsack solver `{}`; {} fine-tuning epochs per budget at lr {}.{}\n\n| budget | DReLUs | of all | before fine-tuning | after fine-tuning |{head}\n|---|---|---|---|---|{rule}\n",
        d.model,
        100.0 * base,
        a.data.limit.map_or("all".to_string(), |n| n.to_string()),
        d.images,
        name_of(&a.solver),
        a.epochs,
        a.lr,
        if names.is_empty() {
            String::new()
        } else {
            " Baselines at the same budgets, fine-tuned alike: `uniform` = one block for every channel, `layerwise` = one block per layer (DeepReDuce-style), both chosen from the same distortion.".to_string()
        }
    );
    for p in &points {
        let cols: String = names
            .iter()
            .map(|n| {
                let o = &p.baselines[n];
                format!(" {} | {:.2} % |", o.drelus, 100.0 * o.accuracy)
            })
            .collect();
        let _ = writeln!(
            md,
            "| {:.0} % | {} | {:.2} % | {:.2} % | {:.2} % |{cols}",
            100.0 * p.ratio,
            p.drelus,
            100.0 * p.drelus as f64 / p.full as f64,
            100.0 * p.accuracy_before_finetune,
            100.0 * p.accuracy
        );
    }
    std::fs::write(a.out.join("sweep.md"), &md)?;
    write_json(&a.out.join("sweep.json"), &points)?;
    let labels: Vec<String> = names
        .iter()
        .map(|n| format!("{n} baseline, after fine-tuning"))
        .collect();
    let mut series = vec![
        Series {
            label: "after fine-tuning",
            points: points
                .iter()
                .map(|p| (p.drelus.max(1) as f64, 100.0 * p.accuracy))
                .collect(),
        },
        Series {
            label: "before fine-tuning",
            points: points
                .iter()
                .map(|p| (p.drelus.max(1) as f64, 100.0 * p.accuracy_before_finetune))
                .collect(),
        },
    ];
    for (n, label) in names.iter().zip(&labels) {
        series.push(Series {
            label,
            points: points
                .iter()
                .map(|p| {
                    let o = &p.baselines[n];
                    (o.drelus.max(1) as f64, 100.0 * o.accuracy)
                })
                .collect(),
        });
    }
    plot::log_x_lines(
        &a.out.join("sweep.png"),
        &format!("{}: accuracy vs DReLUs", d.model),
        "DReLUs per inference",
        "test accuracy (%)",
        &series,
    )?;
    print!("{md}");
    println!("written to {}", a.out.display());
    Ok(())
}
