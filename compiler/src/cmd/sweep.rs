//! `ksnn sweep`: knapsack, fine-tune and evaluate at several budgets; a table and a plot.

use std::path::PathBuf;

use anyhow::Result;
use ksnn_knapsack::{Granularity, Solver};

use super::{DataArgs, ModelArgs};
use crate::stages::sweep::SweepConfig;
use crate::stages::{Data, Model};

/// `ksnn sweep`'s options; they become a [`SweepConfig`].
#[derive(clap::Args)]
pub struct SweepArgs {
    /// The trained model (pass --checkpoint with the parameters distortion was measured on).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Fine-tuning uses the training split, the accuracies the test split.
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
    /// The knapsack solver used at every budget.
    #[arg(long, value_enum, default_value_t = Solver::Lagrangian)]
    pub solver: Solver,
    /// Fine-tuning epochs per budget.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Fine-tuning learning rate (no warm-up).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Directory for specs, checkpoints, `sweep.md`, `sweep.json` and `sweep.png`.
    #[arg(long)]
    pub out: PathBuf,
    /// Also run naive choices at the same budgets, fine-tuned the same way, as columns
    /// beside the knapsack's: `uniform` (one block for every channel of every layer) and
    /// `layerwise` (one block per layer, DeepReDuce-style), e.g. `--baseline uniform,layerwise`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub baseline: Vec<Granularity>,
}

impl TryFrom<&SweepArgs> for SweepConfig {
    type Error = anyhow::Error;

    fn try_from(a: &SweepArgs) -> Result<Self> {
        Ok(Self {
            model: Model::try_from(&a.model)?,
            data: Data::from(&a.data),
            distortion: a.distortion.clone(),
            ratios: a.ratios.clone(),
            solver: a.solver,
            epochs: a.epochs,
            lr: a.lr,
            out: a.out.clone(),
            baselines: a.baseline.clone(),
        })
    }
}
