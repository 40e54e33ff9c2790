//! `ksnn compile`: lower a trained model and its block spec to `model.ksnn` (public) and
//! `weights.ksnw` (the server's), checked on calibration images against the float model.

use std::path::PathBuf;

use anyhow::Result;
use ksnn_formats::ApproxCompare;
use ksnn_formats::program::{DreluProtocol, FixedPoint, ProtocolConfig, Truncation};

use super::{DataArgs, ModelArgs};
use crate::stages::compile::CompileConfig;
use crate::stages::{Data, Model};

/// `ksnn compile`'s options; they become a [`CompileConfig`].
#[derive(clap::Args)]
pub struct CompileArgs {
    /// The trained (usually fine-tuned) model to lower.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Calibration images come from this dataset's training split.
    #[command(flatten)]
    pub data: DataArgs,
    /// The block spec (from `ksnn knapsack`); without one every ReLU stays a plain ReLU.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Calibration images for the fixed-point check.
    #[arg(long, default_value_t = 64)]
    pub calibration: usize,
    /// Fractional bits of the fixed-point encoding.
    #[arg(long, default_value_t = 12)]
    pub frac_bits: u8,
    /// local (each party shifts its share: ±1 LSB) or exact (helper-assisted: secure output
    /// equals the reference bit for bit, more bytes).
    #[arg(long, value_enum, default_value_t = Truncation::LocalShift)]
    pub truncation: Truncation,
    /// The DReLU protocol: securenn (wrap-bit comparison: 4 online rounds, 205 B per DReLU, no
    /// offline keys) or fss (helper-dealt comparison keys: 1 online round, 16 B per DReLU online,
    /// ~2 KB of keys per DReLU offline; wins when round trips cost more than bytes).
    #[arg(long, value_enum, default_value_t = DreluProtocol::SecureNn)]
    pub drelu: DreluProtocol,
    /// Approximate comparison (docs/original.md §7.9): shift the compared value right by K
    /// bits…
    #[arg(long, default_value_t = 0, value_parser = approx_bits())]
    pub approx_k: u8,
    /// …then compare only its top 64 − G bits (fewer bytes, a lower exact-comparison limit).
    #[arg(long, default_value_t = 0, value_parser = approx_bits())]
    pub approx_g: u8,
    /// Output directory for model.ksnn, weights.ksnw and spec.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// The bits a program may declare for k and g.
fn approx_bits() -> clap::builder::RangedI64ValueParser<u8> {
    clap::value_parser!(u8).range(0..=i64::from(ApproxCompare::MAX_BITS))
}

impl TryFrom<&CompileArgs> for CompileConfig {
    type Error = anyhow::Error;

    fn try_from(a: &CompileArgs) -> Result<Self> {
        Ok(Self {
            model: Model::try_from(&a.model)?,
            data: Data::from(&a.data),
            spec: a.spec.clone(),
            calibration: a.calibration,
            fixed_point: FixedPoint {
                frac_bits: a.frac_bits,
                ..FixedPoint::default()
            },
            protocol: ProtocolConfig {
                drelu: a.drelu,
                approx: ApproxCompare {
                    k: a.approx_k,
                    g: a.approx_g,
                },
                truncation: a.truncation,
            },
            out: a.out.clone(),
        })
    }
}
