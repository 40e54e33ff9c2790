//! `ksnn train`, `ksnn finetune`, `ksnn eval`: any model, optionally with a block spec.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use ksnn_compiler::torch::pretrained::Init;
use ksnn_compiler::torch::train::{Optimizer, Schedule, TrainConfig as Settings};
use ksnn_graph::ir::pretrained::Naming;

use super::{DataArgs, ModelArgs};
use crate::stages::train::TrainConfig;
use crate::stages::{Data, Model};

/// Optimisers `--optimizer` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Adam without weight decay (the default).
    Adam,
    /// With --momentum and --weight-decay, as the seed trains.
    Sgd,
}

/// Learning-rate schedules `--schedule` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleKind {
    /// Linear decay to 1e-5.
    Poly,
    /// The peak rate throughout (after the warm-up).
    Constant,
    /// ×0.1 at each epoch of --milestones.
    Step,
}

/// Optimisation settings.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Start from a pretrained state dict saved as safetensors instead of random
    /// parameters. Its tensor names are translated by --map and every shape is checked:
    /// all missing, extra and mis-shaped tensors are listed before anything loads;
    /// training-only ones (`num_batches_tracked`, mmseg's `auxiliary_head.*`) are skipped
    /// and listed. With --epochs 0 this only converts the file to a ksnn checkpoint.
    #[arg(long, requires = "map")]
    pub init: Option<PathBuf>,
    /// How --init's tensors are named.
    #[arg(long, value_enum, requires = "init")]
    pub map: Option<Naming>,
    /// Passes over the training set (12 take mnist-cnn past 98.5 % in under a minute on
    /// two cores); 0 saves the starting parameters (e.g. --init's) without reading data.
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (linear warm-up, then the schedule).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum (ignored by Adam).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// SGD L2 weight decay (ignored by Adam).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// How the rate changes over epochs after the warm-up.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Poly)]
    pub schedule: ScheduleKind,
    /// Epochs at which `--schedule step` multiplies the rate by 0.1 (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    /// Linear warm-up steps from 1 % of the rate.
    #[arg(long, default_value_t = 50)]
    pub warmup_steps: usize,
    /// Where to write the trained parameters (a .safetensors file).
    #[arg(long)]
    pub out: PathBuf,
}

impl TrainArgs {
    /// The run these options describe, on `model` and `data` (with block ReLUs from `spec`).
    pub fn config(
        &self,
        model: &ModelArgs,
        data: &DataArgs,
        spec: Option<PathBuf>,
    ) -> Result<TrainConfig> {
        ensure!(
            self.milestones.is_empty() || self.schedule == ScheduleKind::Step,
            "--milestones applies to --schedule step"
        );
        let schedule = match self.schedule {
            ScheduleKind::Poly => Settings::default().schedule,
            ScheduleKind::Constant => Schedule::Constant,
            ScheduleKind::Step => {
                ensure!(
                    !self.milestones.is_empty(),
                    "--schedule step needs --milestones E1,E2,…"
                );
                Schedule::Step {
                    milestones: self.milestones.clone(),
                    gamma: 0.1,
                    min_lr: 0.0,
                }
            }
        };
        let init = match (&self.init, self.map) {
            (Some(path), Some(map)) => Some(Init {
                path: path.clone(),
                naming: map,
            }),
            _ => None,
        };
        Ok(TrainConfig {
            model: Model {
                init,
                ..Model::try_from(model)?
            },
            data: Data::from(data),
            spec,
            out: self.out.clone(),
            settings: Settings {
                epochs: self.epochs,
                batch: self.batch,
                lr: self.lr,
                optimizer: match self.optimizer {
                    OptimizerKind::Adam => Optimizer::Adam,
                    OptimizerKind::Sgd => Optimizer::Sgd {
                        momentum: self.momentum,
                        weight_decay: self.weight_decay,
                    },
                },
                schedule,
                warmup_steps: self.warmup_steps,
                ..Settings::default()
            },
        })
    }
}
