//! Compilation: a trained model and its block spec become `model.ksnn` (public) and
//! `weights.ksnw` (the server's), checked on calibration images against the float model.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use ksnn_compiler::check;
use ksnn_compiler::data::Split;
use ksnn_compiler::experiment::name_of;
use ksnn_compiler::torch::executor::get_params;
use ksnn_formats::BlockSpec;
use ksnn_formats::program::{FixedPoint, ProtocolConfig};
use ksnn_graph::lower::{self, LowerOptions};

use super::train::{load_with_spec, read_spec};
use super::{Data, Model, load_data};

/// What `ksnn compile` (and the pipeline's compile stage) needs: the trained model, its spec,
/// the fixed point and protocol to lower to, and the calibration check.
#[derive(Clone, Debug)]
pub struct CompileConfig {
    /// The trained (usually fine-tuned) model to lower; its checkpoint gives the weights.
    pub model: Model,
    /// Calibration images come from this dataset's training split.
    pub data: Data,
    /// The block spec; without one every ReLU stays a plain ReLU.
    pub spec: Option<PathBuf>,
    /// Calibration images for the fixed-point check.
    pub calibration: usize,
    /// The program's ring and fractional bits f (`--frac-bits`); every parameter is quantized to
    /// it.
    pub fixed_point: FixedPoint,
    /// Truncation, DReLU protocol and approximate comparison, recorded in the program.
    pub protocol: ProtocolConfig,
    /// Output directory for model.ksnn, weights.ksnw and spec.json.
    pub out: PathBuf,
}

/// Lowers, checks and writes; returns the DReLUs per inference.
pub fn run(a: &CompileConfig) -> Result<u64> {
    let m = load_with_spec(&a.model, a.spec.as_deref())?;
    let spec = match &a.spec {
        Some(p) => read_spec(p)?,
        None => BlockSpec::default(),
    };
    let opts = LowerOptions {
        fixed_point: a.fixed_point,
        protocol: a.protocol,
    };
    let params = get_params(&m.vs)?;
    let lowered = lower::lower(&m.graph, &params, &spec, &opts)?;
    let costs = lowered.program.costs()?;
    let drelus: u64 = costs.iter().map(|c| c.drelus).sum();
    let calib = load_data(&a.data, &m.graph, Split::Train)?.sample(a.calibration, 7);
    let c = check::calibrate(&lowered, &m.exec, &calib);
    println!(
        "{}: {} layers, {} DReLUs per inference; fixed point f = {}, {} truncation, {} DReLU, approximate comparison k = {}, g = {}",
        lowered.program.name,
        lowered.program.layers.len(),
        drelus,
        opts.fixed_point.frac_bits,
        name_of(&opts.protocol.truncation),
        name_of(&opts.protocol.drelu),
        opts.protocol.approx.k,
        opts.protocol.approx.g
    );
    match c.pixel_agree {
        Some(px) => println!(
            "calibration on {} training images: fixed-point reference and float agree on {:.2} % of the pixels' classes ({} whole maps), max |logit error| {:.4}",
            c.images,
            100.0 * px,
            c.top1_agree,
            c.max_logit_error
        ),
        None => println!(
            "calibration on {} training images: fixed-point reference and float agree on {} top-1 ({:.2} %), max |logit error| {:.4}",
            c.images,
            c.top1_agree,
            100.0 * c.top1_agree as f64 / c.images.max(1) as f64,
            c.max_logit_error
        ),
    }
    let widest = c
        .max_abs
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, v)| format!("{v:.1} at `{n}`"))
        .unwrap_or_default();
    println!(
        "largest value {widest}; comparisons are exact below {:.3e}",
        c.compare_limit
    );
    ensure!(
        c.over_limit.is_empty(),
        "values reach the comparison limit {:.3e} at {}; lower frac_bits, or widen the comparison (raise approx_k, lower approx_g)",
        c.compare_limit,
        c.over_limit
            .iter()
            .map(|(n, v)| format!("`{n}` ({v:.3e})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::create_dir_all(&a.out)?;
    let write = |name: &str, bytes: Vec<u8>| -> Result<()> {
        let p = a.out.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("model.ksnn", lowered.program.encode())?;
    write("weights.ksnw", lowered.weights.encode())?;
    write(
        "spec.json",
        lowered.program.block_spec().to_json().into_bytes(),
    )?;
    println!(
        "written {}/model.ksnn, weights.ksnw, spec.json",
        a.out.display()
    );
    Ok(drelus)
}
