//! `ksnn sweep`: knapsack, fine-tune and evaluate at several budgets; a table and a plot.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, ensure};
use ksnn_compiler::distortion::store::{Distortion, write_json};
use ksnn_compiler::plot::{self, Series};

use super::train::{TrainArgs, eval, train};
use super::{DataArgs, ModelArgs};

#[derive(clap::Args)]
pub struct SweepArgs {
    /// The trained model (pass --checkpoint with the parameters distortion was measured on).
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// `distortion.json` from `ksnn distortion` on the same model.
    #[arg(long)]
    pub distortion: PathBuf,
    /// Budgets as fractions of the model's DReLUs.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.01,0.03,0.06,0.1,0.25,1"
    )]
    pub ratios: Vec<f64>,
    #[arg(long, default_value = "lagrangian")]
    pub solver: String,
    /// Fine-tuning epochs per budget.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Directory for specs, checkpoints, `sweep.md`, `sweep.json` and `sweep.png`.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(serde::Serialize)]
struct Point {
    ratio: f64,
    drelus: u64,
    budget: u64,
    full: u64,
    accuracy_before_finetune: f64,
    accuracy: f64,
}

pub fn run(a: &SweepArgs) -> Result<()> {
    ensure!(
        a.model.checkpoint.is_some() || a.model.source.from.is_some(),
        "pass --checkpoint with the trained parameters"
    );
    std::fs::create_dir_all(&a.out)?;
    let d = Distortion::load(&a.distortion)?;
    let base = eval(&a.model, &a.data, None)?;
    let mut points = Vec::new();
    for &r in &a.ratios {
        println!("== budget {:.1} %", 100.0 * r);
        let chosen = super::knapsack::solve(&d, Some(r), None, &a.solver)?;
        let spec = a.out.join(format!("spec-{r}.json"));
        super::knapsack::write_spec(&chosen.spec, &spec)?;
        let before = eval(&a.model, &a.data, Some(&spec))?;
        let args = TrainArgs {
            epochs: a.epochs,
            batch: 64,
            lr: a.lr,
            optimizer: "adam".into(),
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: "poly".into(),
            warmup_steps: 0,
            out: a.out.join(format!("finetuned-{r}.safetensors")),
        };
        let after = train(&a.model, &a.data, &args, Some(&spec))?;
        points.push(Point {
            ratio: r,
            drelus: chosen.drelus,
            budget: chosen.budget,
            full: chosen.full,
            accuracy_before_finetune: before,
            accuracy: after,
        });
    }
    let mut md = format!(
        "# {}: accuracy against the DReLU budget\n\nModel with plain ReLUs: {:.2} % on {} test images. Distortion on {} training images; knapsack solver `{}`; {} fine-tuning epochs per budget at lr {}.\n\n| budget | DReLUs | of all | before fine-tuning | after fine-tuning |\n|---|---|---|---|---|\n",
        d.model,
        100.0 * base,
        a.data.limit.map_or("all".to_string(), |n| n.to_string()),
        d.images,
        a.solver,
        a.epochs,
        a.lr
    );
    for p in &points {
        let _ = writeln!(
            md,
            "| {:.0} % | {} | {:.2} % | {:.2} % | {:.2} % |",
            100.0 * p.ratio,
            p.drelus,
            100.0 * p.drelus as f64 / p.full as f64,
            100.0 * p.accuracy_before_finetune,
            100.0 * p.accuracy
        );
    }
    std::fs::write(a.out.join("sweep.md"), &md)?;
    write_json(&a.out.join("sweep.json"), &points)?;
    plot::log_x_lines(
        &a.out.join("sweep.png"),
        &format!("{}: accuracy vs DReLUs", d.model),
        "DReLUs per inference",
        "test accuracy (%)",
        &[
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
        ],
    )?;
    print!("{md}");
    println!("written to {}", a.out.display());
    Ok(())
}
