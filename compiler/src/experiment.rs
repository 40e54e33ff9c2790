//! Experiment files (`experiments/*.toml`): the settings of every `ksnn pipeline` stage.
//! Loading is strict — an unknown key, a misspelt choice or an out-of-range value fails with
//! the file, the line and the allowed values — so a typo is caught before an hour of training,
//! not after it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ksnn_formats::program::{ApproxCompare, DreluProtocol, FixedPoint, ProtocolConfig, Truncation};
use ksnn_knapsack::{Granularity, Solver};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::data::Dataset;

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

/// `[train]` and `[finetune]`: how long and how fast to train (the rest are the command's
/// defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Epochs {
    /// Passes over the training split; 0 in `[train]` keeps the starting parameters.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            epochs: 12,
            lr: 3e-3,
        }
    }
}

/// `[distortion]`: the measurement's sample size.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistortionCfg {
    /// Training images the distortion is averaged over (default 64).
    pub images: usize,
}

impl Default for DistortionCfg {
    fn default() -> Self {
        Self { images: 64 }
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
    /// The first N MNIST test images, classified securely; the float accuracies use the same
    /// images (default 200).
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
    Epochs {
        epochs: 5,
        lr: 2e-3,
    }
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
        toml::from_str(text)
    }

    /// The settings without a file (`ksnn pipeline --onnx`): the imported weights are kept.
    pub fn without_file() -> Self {
        Self {
            run_dir: "runs/onnx".into(),
            model: ModelCfg::default(),
            data: DataCfg::default(),
            train: Epochs {
                epochs: 0,
                lr: 3e-3,
            },
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
