//! What a finished run prints and draws: the accuracy, DReLU, byte, round and time table, and
//! the bytes-per-layer plot.

use std::path::Path;

use anyhow::Result;
use ksnn_compiler::experiment::Experiment;
use ksnn_compiler::plot;
use ksnn_formats::Report;

use super::secure::Metrics;

/// Prints the run's table from the secure evaluation's report and the run's accuracies (or,
/// for segmentation, mIoUs) in `m`.
pub fn print(r: &Report, m: &Metrics, cfg: &Experiment) {
    let p = &r.per_inference;
    let differ = r.images - r.secure_equals_reference;
    println!("\n{:-<72}", "");
    println!(
        "{} at {:.0} % of the DReLUs; the first {} held-out test images",
        r.model,
        100.0 * cfg.knapsack.ratio,
        r.images
    );
    println!("{:-<72}", "");
    let row = |k: &str, v: String| println!("{k:<44} {v}");
    let metric = if m.segmentation { "mIoU" } else { "accuracy" };
    row(
        &format!("{metric}, float, plain ReLUs"),
        format!("{:.2} %", 100.0 * m.plain),
    );
    row(
        &format!("{metric}, float, block ReLUs (fine-tuned)"),
        format!("{:.2} %", 100.0 * m.at_budget),
    );
    row(
        &format!("{metric}, fixed-point reference"),
        format!("{:.2} %", 100.0 * m.reference),
    );
    row(
        &format!("{metric}, secure (three parties, TLS)"),
        format!("{:.2} %", 100.0 * m.secure),
    );
    row(
        "secure = reference",
        format!(
            "{}/{}{}",
            r.secure_equals_reference,
            r.images,
            if differ > 0 {
                format!(" ({differ} differ: local truncation is exact only to ±1 LSB)")
            } else {
                String::new()
            }
        ),
    );
    let all: u64 = r.per_layer.iter().map(|l| l.drelus).sum();
    row(
        "DReLUs per inference",
        format!(
            "{all} ({} in block ReLUs, the knapsack's budget; {} in pooling)",
            r.spec_drelus,
            all - r.spec_drelus
        ),
    );
    row(
        "bytes per inference (all parties)",
        format!("{:.2} MB", p.bytes.total as f64 / 1e6),
    );
    row(
        "bytes once per session (masked weights)",
        format!("{:.2} MB", r.setup_bytes as f64 / 1e6),
    );
    row("rounds per inference", p.rounds.to_string());
    row(
        "seconds per inference (offline + online)",
        format!(
            "{:.4} + {:.4} = {:.4}",
            p.seconds.offline, p.seconds.online, p.seconds.total
        ),
    );
}

/// Draws the bytes each layer sends per inference (kB, all parties) as a bar chart (PNG).
pub fn plot_bytes(r: &Report, path: &Path) -> Result<()> {
    let points: Vec<(String, f64)> = r
        .per_layer
        .iter()
        .map(|l| (l.name.clone(), l.bytes as f64 / 1e3))
        .collect();
    plot::bars(
        path,
        &format!("{}: bytes per layer per inference", r.model),
        "kB",
        &points,
    )?;
    Ok(())
}
