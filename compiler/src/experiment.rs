//! Experiment files (`experiments/*.toml`): the settings of every `ksnn pipeline` stage.
//! Loading is strict — an unknown key, a misspelt choice or an out-of-range value fails with
//! the file, the line and the allowed values — so a typo is caught before an hour of training,
//! not after it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ksnn_formats::program::{ApproxCompare, DreluProtocol, FixedPoint, ProtocolConfig, Truncation};
use ksnn_graph::ir::pretrained::Naming;
use ksnn_knapsack::{Granularity, Solver};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::data::Dataset;
use crate::torch::train::{Optimizer, Schedule, TrainConfig};

/// The cause is the error's source (anyhow's `{:#}` prints the chain).
#[derive(Debug, Error)]
pub enum ExperimentError {
    /// The file could not be read.
    #[error("reading {}", .path.display())]
    Read {
        /// The experiment file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or breaks the schema (unknown key, misspelt choice, value out
    /// of range); the source names the line.
    #[error("{}", .path.display())]
    Parse {
        /// The experiment file.
        path: PathBuf,
        /// What is wrong and on which line.
        source: toml::de::Error,
    },
}

/// `[model]`: which model the pipeline runs — exactly one of `zoo` and `onnx` — and, for
/// ONNX, its input normalisation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelCfg {
    /// A zoo model name (`mnist-cnn`, …), trained from scratch by the `train` stage.
    pub zoo: Option<String>,
    /// An ONNX file, imported with ReLU6 → ReLU and the final softmax stripped.
    pub onnx: Option<PathBuf>,
    /// Per-channel (or one) mean the ONNX model expects of pixels in [0, 1].
    pub mean: Option<Vec<f32>>,
    /// Per-channel (or one) standard deviation, paired with `mean`.
    pub std: Option<Vec<f32>>,
    /// A zoo model's input `[height, width]` instead of its default (small runs, tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<[u32; 2]>,
    /// A zoo model's output classes instead of its dataset's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<u32>,
    /// A pretrained state dict (safetensors) the run starts from, as `ksnn train --init`: the
    /// original's starting checkpoints, converted once to safetensors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// How `init`'s tensors are named, spelt as `--map`: ksnn, torchvision, mmcls, mmseg.
    #[serde(with = "by_name_opt", skip_serializing_if = "Option::is_none", default)]
    pub map: Option<Naming>,
}

impl ModelCfg {
    /// The zoo overrides `size` and `classes`, when either is given.
    pub fn zoo_options(&self) -> Option<ksnn_graph::ir::zoo::ZooOptions> {
        (self.size.is_some() || self.classes.is_some()).then(|| ksnn_graph::ir::zoo::ZooOptions {
            classes: self.classes,
            size: self.size.map(|[h, w]| (h, w)),
        })
    }
}

/// `[data]`: the dataset every stage reads (training, distortion, calibration, accuracy).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataCfg {
    /// The data root, as `--data` (default `data`).
    pub root: PathBuf,
    /// The dataset, spelt as `--dataset` (default `mnist`).
    #[serde(with = "by_name")]
    pub dataset: Dataset,
    /// Images per split (quick runs).
    pub limit: Option<usize>,
}

impl Default for DataCfg {
    fn default() -> Self {
        Self {
            root: "data".into(),
            dataset: Dataset::Mnist,
            limit: None,
        }
    }
}

/// The optimiser an experiment names (`optimizer = "sgd"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerChoice {
    /// Adam with tch's defaults, no weight decay.
    Adam,
    /// SGD with `momentum` (default 0.9) and `weight_decay` (default 0).
    Sgd,
}

/// The learning-rate schedule an experiment names (`schedule = "step"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleChoice {
    /// mmcv's poly: `(lr − min_lr)·(1 − progress)^power + min_lr` (`power` default 0.9,
    /// `min_lr` default 0), progress in steps.
    Poly,
    /// ×`gamma` (default 0.1) at each epoch of `milestones`, never below `min_lr` (default 0).
    Step,
    /// The rate throughout (after the warm-up).
    Constant,
}

/// `[train]` and `[finetune]`: how long and how fast to train. `epochs` and `lr` are always
/// used; every other key is optional and, when absent, the command's default applies (Adam,
/// batch 64, a linear decay floored at 1e-5, 2-pixel shifts, 50 warm-up steps in `[train]` and
/// none in `[finetune]`), so files that give only `epochs` and `lr` train as before.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Epochs {
    /// Passes over the training split; 0 in `[train]` keeps the starting parameters.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Optimisation steps instead of epochs (the original's segmentation runs count
    /// iterations); the data is cycled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Images per step (the original's GPUs × images per GPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// `adam` or `sgd`.
    #[serde(with = "by_name_opt", skip_serializing_if = "Option::is_none", default)]
    pub optimizer: Option<OptimizerChoice>,
    /// SGD momentum (default 0.9); only with `optimizer = "sgd"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// SGD L2 weight decay (default 0); only with `optimizer = "sgd"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// `poly`, `step` or `constant`.
    #[serde(with = "by_name_opt", skip_serializing_if = "Option::is_none", default)]
    pub schedule: Option<ScheduleChoice>,
    /// The poly schedule's exponent (default 0.9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    /// Epochs (0-based) at which the step schedule multiplies the rate by `gamma`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Vec<usize>>,
    /// The step schedule's factor per milestone (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// The rate the poly schedule ends at, and the step schedule's floor (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    /// Linear warm-up from 1 % of the rate over this many steps…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
    /// …or over this many epochs (not both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<usize>,
    /// Random shifts of up to this many pixels, zero-padded (default 2; 4 is CIFAR's
    /// random crop with padding 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<i64>,
}

impl Default for Epochs {
    fn default() -> Self {
        Self::new(12, 3e-3)
    }
}

impl Epochs {
    /// `epochs` at `lr`, every other setting the command's default.
    pub fn new(epochs: usize, lr: f64) -> Self {
        Self {
            epochs,
            lr,
            iterations: None,
            batch: None,
            optimizer: None,
            momentum: None,
            weight_decay: None,
            schedule: None,
            power: None,
            milestones: None,
            gamma: None,
            min_lr: None,
            warmup_steps: None,
            warmup_epochs: None,
            shift: None,
        }
    }

    /// Keys that only make sense together, checked at load; the message names the keys.
    fn check(&self) -> Result<(), String> {
        let sgd = self.optimizer == Some(OptimizerChoice::Sgd);
        if !sgd && (self.momentum.is_some() || self.weight_decay.is_some()) {
            return Err("`momentum` and `weight_decay` apply to optimizer = \"sgd\"".into());
        }
        let step = self.schedule == Some(ScheduleChoice::Step);
        if step && self.milestones.as_ref().is_none_or(Vec::is_empty) {
            return Err("schedule = \"step\" needs `milestones = [E1, E2, …]`".into());
        }
        if !step && (self.milestones.is_some() || self.gamma.is_some()) {
            return Err("`milestones` and `gamma` apply to schedule = \"step\"".into());
        }
        if self.power.is_some() && self.schedule != Some(ScheduleChoice::Poly) {
            return Err("`power` applies to schedule = \"poly\"".into());
        }
        if self.min_lr.is_some()
            && !matches!(
                self.schedule,
                Some(ScheduleChoice::Poly | ScheduleChoice::Step)
            )
        {
            return Err("`min_lr` applies to schedule = \"poly\" or \"step\"".into());
        }
        if self.warmup_steps.is_some() && self.warmup_epochs.is_some() {
            return Err("give `warmup_steps` or `warmup_epochs`, not both".into());
        }
        if self.iterations == Some(0) || self.batch == Some(0) {
            return Err("`iterations` and `batch` must be at least 1".into());
        }
        if self.shift.is_some_and(|s| s < 0) {
            return Err("`shift` must be 0 or more".into());
        }
        Ok(())
    }

    /// The training settings these keys describe; `warmup_steps` is the stage's default
    /// warm-up when the file gives none.
    pub fn settings(&self, warmup_steps: usize) -> TrainConfig {
        let d = TrainConfig::default();
        let optimizer = match self.optimizer {
            None | Some(OptimizerChoice::Adam) => d.optimizer,
            Some(OptimizerChoice::Sgd) => Optimizer::Sgd {
                momentum: self.momentum.unwrap_or(0.9),
                weight_decay: self.weight_decay.unwrap_or(0.0),
            },
        };
        let schedule = match self.schedule {
            None => d.schedule.clone(),
            Some(ScheduleChoice::Constant) => Schedule::Constant,
            Some(ScheduleChoice::Poly) => Schedule::PolyToMin {
                power: self.power.unwrap_or(0.9),
                min_lr: self.min_lr.unwrap_or(0.0),
            },
            Some(ScheduleChoice::Step) => Schedule::Step {
                milestones: self.milestones.clone().unwrap_or_default(),
                gamma: self.gamma.unwrap_or(0.1),
                min_lr: self.min_lr.unwrap_or(0.0),
            },
        };
        let (warmup_steps, warmup_epochs) = match (self.warmup_steps, self.warmup_epochs) {
            (Some(s), _) => (s, 0),
            (None, Some(e)) => (0, e),
            (None, None) => (warmup_steps, 0),
        };
        TrainConfig {
            epochs: self.epochs,
            iterations: self.iterations,
            batch: self.batch.unwrap_or(d.batch),
            lr: self.lr,
            optimizer,
            schedule,
            warmup_steps,
            warmup_epochs,
            shift: self.shift.unwrap_or(d.shift),
            ..d
        }
    }
}

/// `[distortion]`: the measurement's sample size.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistortionCfg {
    /// Training images the distortion is averaged over (default 64).
    pub images: usize,
    /// Only these ReLU layers are measured and then knapsacked (the others keep plain ReLUs
    /// and stay outside the budget); all of them when absent. For partial runs and tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<String>>,
}

impl Default for DistortionCfg {
    fn default() -> Self {
        Self {
            images: 64,
            layers: None,
        }
    }
}

/// `[knapsack]`: the budget of the run's block spec and the solver.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnapsackCfg {
    /// DReLU budget as a fraction of the model's plain-ReLU DReLUs (default 0.06).
    pub ratio: f64,
    /// `lagrangian` (default) or `exact`, spelt as `--solver`.
    #[serde(with = "by_name")]
    pub solver: Solver,
}

impl Default for KnapsackCfg {
    fn default() -> Self {
        Self {
            ratio: 0.06,
            solver: Solver::Lagrangian,
        }
    }
}

/// `[sweep]`: optional extra budgets, each knapsacked, fine-tuned and evaluated (the rate is
/// `[finetune]`'s).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepCfg {
    /// Budgets as fractions of the plain-ReLU DReLUs.
    pub ratios: Vec<f64>,
    /// Fine-tuning epochs per budget.
    pub epochs: usize,
    /// Naive choices at the same budgets, fine-tuned alike, as columns beside the knapsack's:
    /// `uniform`, `layerwise` (spelt as `ksnn sweep --baseline`).
    #[serde(with = "by_name_list")]
    pub baselines: Vec<Granularity>,
}

impl Default for SweepCfg {
    fn default() -> Self {
        Self {
            ratios: vec![0.01, 0.03, 0.06, 0.25],
            epochs: 2,
            baselines: Vec::new(),
        }
    }
}

/// `[compile]`: the fixed point, protocols and calibration of the compiled program, as
/// `ksnn compile` takes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompileCfg {
    /// Training images the fixed-point reference is checked on (default 64).
    pub calibration: usize,
    /// `local` (default) or `exact`, spelt as `--truncation`.
    #[serde(with = "by_name")]
    pub truncation: Truncation,
    /// Fractional bits f of the fixed point (default 12).
    pub frac_bits: u8,
    /// The DReLU protocol, spelt as `--drelu` (default `securenn`, the only one the runtime runs).
    #[serde(with = "by_name")]
    pub drelu: DreluProtocol,
    /// Approximate comparison (docs/original.md §7.9): shift right by `approx_k` bits…
    #[serde(deserialize_with = "approx_bits")]
    pub approx_k: u8,
    /// …then compare only the top `64 - approx_g` bits.
    #[serde(deserialize_with = "approx_bits")]
    pub approx_g: u8,
}

impl Default for CompileCfg {
    fn default() -> Self {
        let p = ProtocolConfig::default();
        Self {
            calibration: 64,
            truncation: p.truncation,
            frac_bits: 12,
            drelu: p.drelu,
            approx_k: p.approx.k,
            approx_g: p.approx.g,
        }
    }
}

impl CompileCfg {
    /// The program's fixed point: `frac_bits` in the 64-bit ring.
    pub fn fixed_point(&self) -> FixedPoint {
        FixedPoint {
            frac_bits: self.frac_bits,
            ..FixedPoint::default()
        }
    }

    /// The protocol settings the program records: DReLU protocol, approximate comparison,
    /// truncation.
    pub fn protocol(&self) -> ProtocolConfig {
        ProtocolConfig {
            drelu: self.drelu,
            approx: ApproxCompare {
                k: self.approx_k,
                g: self.approx_g,
            },
            truncation: self.truncation,
        }
    }
}

/// `[secure]`: the final three-party evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecureCfg {
    /// The first N test images of the dataset, classified (or segmented) securely; the float
    /// accuracies use the same images (default 200).
    pub images: usize,
}

impl Default for SecureCfg {
    fn default() -> Self {
        Self { images: 200 }
    }
}

/// An experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Where every stage writes its outputs and stamps; required in a file.
    pub run_dir: PathBuf,
    /// `[model]`: the zoo model or ONNX file the run starts from.
    #[serde(default)]
    pub model: ModelCfg,
    /// `[data]`: the dataset for every stage.
    #[serde(default)]
    pub data: DataCfg,
    /// `[train]`: the base model's training (default 12 epochs at 3e-3).
    #[serde(default)]
    pub train: Epochs,
    /// `[distortion]`: the sample the distortion is measured on.
    #[serde(default)]
    pub distortion: DistortionCfg,
    /// `[knapsack]`: the run's DReLU budget and solver.
    #[serde(default)]
    pub knapsack: KnapsackCfg,
    /// `[finetune]`: fine-tuning with the knapsack's spec (default 5 epochs at 2e-3).
    #[serde(default = "finetune_default")]
    pub finetune: Epochs,
    /// `[sweep]`; without it the pipeline runs one budget.
    pub sweep: Option<SweepCfg>,
    /// `[compile]`: the compiled program's fixed point and protocols.
    #[serde(default)]
    pub compile: CompileCfg,
    /// `[secure]`: how many test images the three parties classify.
    #[serde(default)]
    pub secure: SecureCfg,
}

fn finetune_default() -> Epochs {
    Epochs::new(5, 2e-3)
}

impl Experiment {
    /// Reads and checks an experiment file in full; every error names the file.
    pub fn load(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExperimentError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ExperimentError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses experiment TOML strictly (unknown keys, misspelt choices and out-of-range
    /// `approx_k`/`approx_g` are errors).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        let e: Self = toml::from_str(text)?;
        let custom = |m: String| <toml::de::Error as serde::de::Error>::custom(m);
        match (&e.model.init, &e.model.map) {
            (Some(_), None) => return Err(custom("[model] `init` needs `map`".into())),
            (None, Some(_)) => return Err(custom("[model] `map` applies to `init`".into())),
            _ => {}
        }
        for (section, t) in [("[train]", &e.train), ("[finetune]", &e.finetune)] {
            t.check().map_err(|m| custom(format!("{section}: {m}")))?;
        }
        Ok(e)
    }

    /// The settings without a file (`ksnn pipeline --onnx`): the imported weights are kept.
    pub fn without_file() -> Self {
        Self {
            run_dir: "runs/onnx".into(),
            model: ModelCfg::default(),
            data: DataCfg::default(),
            train: Epochs::new(0, 3e-3),
            distortion: DistortionCfg::default(),
            knapsack: KnapsackCfg::default(),
            finetune: finetune_default(),
            sweep: None,
            compile: CompileCfg::default(),
            secure: SecureCfg::default(),
        }
    }
}

/// A choice's name as the command line spells it.
pub fn name_of<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// Choices in a file are spelt as on the command line (their `clap` value names), so there is
/// one spelling, and a misspelt one is answered with the allowed ones.
mod by_name {
    use clap::ValueEnum;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: ValueEnum, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::name_of(v))
    }

    pub fn deserialize<'de, T: ValueEnum, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        T::from_str(&s, false).map_err(|_| {
            let allowed: Vec<String> = T::value_variants().iter().map(super::name_of).collect();
            D::Error::custom(format!(
                "unknown value `{s}`; expected one of: {}",
                allowed.join(", ")
            ))
        })
    }
}

/// [`by_name`] for an optional choice.
mod by_name_opt {
    use clap::ValueEnum;
    use serde::{Deserializer, Serializer};

    pub fn serialize<T: ValueEnum, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::by_name::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: ValueEnum, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        super::by_name::deserialize(d).map(Some)
    }
}

/// [`by_name`] for a list of choices.
mod by_name_list {
    use clap::ValueEnum;
    use serde::de::Error as _;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: ValueEnum, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&super::name_of(x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, T: ValueEnum, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                T::from_str(s, false).map_err(|_| {
                    let allowed: Vec<String> =
                        T::value_variants().iter().map(super::name_of).collect();
                    D::Error::custom(format!(
                        "unknown value `{s}`; expected one of: {}",
                        allowed.join(", ")
                    ))
                })
            })
            .collect()
    }
}

/// `approx_k` and `approx_g` within what a program may declare.
fn approx_bits<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    use serde::de::Error as _;
    let v = u64::deserialize(d)?;
    u8::try_from(v)
        .ok()
        .filter(|&b| b <= ApproxCompare::MAX_BITS)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{v} is out of range: expected 0..={}",
                ApproxCompare::MAX_BITS
            ))
        })
}
