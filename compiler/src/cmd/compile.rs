//! `ksnn compile`: lower a trained model and its block spec to `model.ksnn` (public) and
//! `weights.ksnw` (the server's), checked on calibration images against the float model.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use ksnn_compiler::check;
use ksnn_compiler::data::Split;
use ksnn_compiler::torch::executor::get_params;
use ksnn_formats::BlockSpec;
use ksnn_formats::program::{OutputKind, Truncation};
use ksnn_graph::lower::{self, LowerOptions};

use super::train::{load_with_spec, read_spec};
use super::{DataArgs, ModelArgs, load_data};

#[derive(clap::Args)]
pub struct CompileArgs {
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
    #[arg(long, default_value = "local")]
    pub truncation: String,
    /// Output directory for model.ksnn, weights.ksnw and spec.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// Lowers, checks and writes; returns the DReLUs per inference.
pub fn run(a: &CompileArgs) -> Result<u64> {
    let m = load_with_spec(&a.model, a.spec.as_deref())?;
    let spec = match &a.spec {
        Some(p) => read_spec(p)?,
        None => BlockSpec::default(),
    };
    let mut opts = LowerOptions::default();
    opts.fixed_point.frac_bits = a.frac_bits;
    opts.protocol.truncation = match a.truncation.as_str() {
        "local" => Truncation::LocalShift,
        "exact" => Truncation::HelperExact,
        t => bail!("unknown truncation `{t}`; use local or exact"),
    };
    opts.output = OutputKind::Logits;
    let params = get_params(&m.vs)?;
    let lowered = lower::lower(&m.graph, &params, &spec, &opts)?;
    let costs = lowered.program.costs()?;
    let drelus: u64 = costs.iter().map(|c| c.drelus).sum();
    let calib = load_data(&a.data, &m.graph, Split::Train)?.sample(a.calibration, 7);
    let c = check::calibrate(&lowered, &m.exec, &calib);
    println!(
        "{}: {} layers, {} DReLUs per inference; fixed point f = {}, {:?} truncation",
        lowered.program.name,
        lowered.program.layers.len(),
        drelus,
        a.frac_bits,
        opts.protocol.truncation
    );
    println!(
        "calibration on {} training images: fixed-point reference and float agree on {} top-1 ({:.2} %), max |logit error| {:.4}",
        c.images,
        c.top1_agree,
        100.0 * c.top1_agree as f64 / c.images.max(1) as f64,
        c.max_logit_error
    );
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
        "values reach the comparison limit {:.3e} at {}; lower --frac-bits or choose a wider comparison",
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
