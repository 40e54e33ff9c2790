//! Experiment files (`experiments/*.toml`): the settings of every `ksnn pipeline` stage.
//! Loading is strict — an unknown key, a misspelt choice or an out-of-range value fails with
//! the file, the line and the allowed values — so a typo is caught before an hour of training,
//! not after it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ksnn_formats::program::{ApproxCompare, DreluProtocol, FixedPoint, ProtocolConfig, Truncation};
use ksnn_knapsack::Solver;
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::data::Dataset;

/// The cause is the error's source (anyhow's `{:#}` prints the chain).
#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error("reading {}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelCfg {
    pub zoo: Option<String>,
    pub onnx: Option<PathBuf>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataCfg {
    pub root: PathBuf,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Epochs {
    pub epochs: usize,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistortionCfg {
    pub images: usize,
}

impl Default for DistortionCfg {
    fn default() -> Self {
        Self { images: 64 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnapsackCfg {
    pub ratio: f64,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepCfg {
    pub ratios: Vec<f64>,
    pub epochs: usize,
}

impl Default for SweepCfg {
    fn default() -> Self {
        Self {
            ratios: vec![0.01, 0.03, 0.06, 0.25],
            epochs: 2,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompileCfg {
    pub calibration: usize,
    #[serde(with = "by_name")]
    pub truncation: Truncation,
    pub frac_bits: u8,
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
    pub fn fixed_point(&self) -> FixedPoint {
        FixedPoint {
            frac_bits: self.frac_bits,
            ..FixedPoint::default()
        }
    }

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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecureCfg {
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
    pub run_dir: PathBuf,
    #[serde(default)]
    pub model: ModelCfg,
    #[serde(default)]
    pub data: DataCfg,
    #[serde(default)]
    pub train: Epochs,
    #[serde(default)]
    pub distortion: DistortionCfg,
    #[serde(default)]
    pub knapsack: KnapsackCfg,
    #[serde(default = "finetune_default")]
    pub finetune: Epochs,
    pub sweep: Option<SweepCfg>,
    #[serde(default)]
    pub compile: CompileCfg,
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
