//! `ksnn pipeline`: train (or import) → distortion → knapsack → fine-tune → compile →
//! secure evaluation by three `ksnn-party` processes over TLS. The experiment file's schema
//! is [`ksnn_compiler::experiment`]; here are the command line ([`PipelineArgs`]), the stage
//! cache ([`cache`]), the orchestration ([`run`]) and what a finished run reports
//! ([`summary`]).

mod cache;
mod run;
mod secure;
mod summary;

use std::path::PathBuf;

use anyhow::Result;
use ksnn_compiler::experiment::{Experiment, ModelCfg};

/// `ksnn pipeline`'s options: an experiment file or an ONNX model, and overrides; they
/// become an [`Experiment`].
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The experiment (see experiments/mnist.toml).
    #[arg(long, required_unless_present = "onnx")]
    pub config: Option<PathBuf>,
    /// Run an ONNX model with the config's other settings (or the built-in defaults).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Override the run directory.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Override the dataset root.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl TryFrom<&PipelineArgs> for Experiment {
    type Error = anyhow::Error;

    /// The experiment file (checked in full before any stage runs) with the overrides.
    fn try_from(a: &PipelineArgs) -> Result<Self> {
        let mut cfg = match &a.config {
            Some(p) => Experiment::load(p)?,
            None => Experiment::without_file(),
        };
        if let Some(o) = &a.onnx {
            cfg.model = ModelCfg {
                zoo: None,
                onnx: Some(o.clone()),
                ..cfg.model
            };
        }
        if let Some(d) = &a.run_dir {
            cfg.run_dir = d.clone();
        }
        if let Some(d) = &a.data {
            cfg.data.root = d.clone();
        }
        Ok(cfg)
    }
}

/// Loads and checks the experiment, applies the overrides, and runs every stage.
pub fn run(a: &PipelineArgs) -> Result<()> {
    run::run(&Experiment::try_from(a)?)
}
