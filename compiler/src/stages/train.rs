//! Training, fine-tuning (training with a block spec) and evaluation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use ksnn_compiler::data::Split;
use ksnn_compiler::torch::train::{self, TrainConfig as Settings};
use ksnn_formats::BlockSpec;
use ksnn_formats::envelope::Magic;

use super::{Data, Loaded, Model, load_data, load_model};

/// One training (or, with a spec, fine-tuning) run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The model to train; its checkpoint, if any, is the starting point.
    pub model: Model,
    /// Trains on its training split and reports accuracy on its test split.
    pub data: Data,
    /// Train with block ReLUs from this spec.
    pub spec: Option<PathBuf>,
    /// Where to write the trained parameters (a .safetensors file).
    pub out: PathBuf,
    /// Epochs, rate, optimiser, schedule.
    pub settings: Settings,
}

/// Reads a block spec (JSON, or the binary form `ksnn knapsack` can also write).
pub fn read_spec(path: &Path) -> Result<BlockSpec> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = if Magic::sniff(&bytes) == Some(Magic::Spec) {
        BlockSpec::decode(&bytes)
    } else {
        BlockSpec::from_json(&String::from_utf8_lossy(&bytes))
    };
    spec.with_context(|| format!("{}", path.display()))
}

/// Loads the model and applies `spec` to its ReLU layers.
pub fn load_with_spec(model: &Model, spec: Option<&Path>) -> Result<Loaded> {
    let mut m = load_model(model)?;
    if let Some(path) = spec {
        let s = read_spec(path)?;
        m.exec
            .set_spec(&s)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }
    Ok(m)
}

/// Trains (or, with a spec, fine-tunes) and saves the parameters; returns the final test
/// accuracy.
pub fn run(c: &TrainConfig) -> Result<f64> {
    ensure!(
        c.out.extension().is_some_and(|e| e == "safetensors"),
        "--out {}: checkpoints are safetensors files; name it *.safetensors",
        c.out.display()
    );
    let spec = c.spec.as_deref();
    let m = load_with_spec(&c.model, spec)?;
    if c.settings.epochs == 0 && c.settings.iterations.is_none() {
        // Nothing to train: the starting parameters are the result (a pretrained file
        // converted to ksnn's names, or an imported graph's weights), and no data is read.
        save(&m, &c.out)?;
        println!(
            "0 epochs: {}'s starting parameters saved to {}",
            m.graph.name,
            c.out.display()
        );
        return Ok(0.0);
    }
    let train_set = load_data(&c.data, &m.graph, Split::Train)?;
    let test_set = load_data(&c.data, &m.graph, Split::Test)?;
    println!(
        "{} {} ({} parameters{}) on {} images, testing on {}",
        if spec.is_some() {
            "fine-tuning"
        } else {
            "training"
        },
        m.graph.name,
        m.graph.parameters(),
        spec.map(|s| format!(", block spec {}", s.display()))
            .unwrap_or_default(),
        train_set.len(),
        test_set.len()
    );
    let started = std::time::Instant::now();
    let epochs = train::train(&m.exec, &m.vs, &train_set, Some(&test_set), &c.settings)?;
    let (train_metric, test_metric) = if test_set.is_segmentation() {
        ("train pixel accuracy", "test mIoU")
    } else {
        ("train accuracy", "test accuracy")
    };
    for (i, e) in epochs.iter().enumerate() {
        println!(
            "epoch {}: loss {:.4}, {train_metric} {:.2}%, {test_metric} {:.2}%",
            i + 1,
            e.loss,
            100.0 * e.train_accuracy,
            100.0 * e.test_accuracy.unwrap_or(0.0)
        );
    }
    save(&m, &c.out)?;
    println!(
        "trained in {:.1} s; parameters in {}",
        started.elapsed().as_secs_f64(),
        c.out.display()
    );
    Ok(epochs.last().and_then(|e| e.test_accuracy).unwrap_or(0.0))
}

/// Writes the parameters to `out` (a .safetensors file), creating its folder.
fn save(m: &Loaded, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    m.vs.save(out)
        .with_context(|| format!("saving {}", out.display()))
}

/// Held-out accuracy, optionally with a spec.
pub fn eval(model: &Model, data: &Data, spec: Option<&Path>) -> Result<f64> {
    let m = load_with_spec(model, spec)?;
    let test_set = load_data(data, &m.graph, Split::Test)?;
    let acc = train::evaluate(&m.exec, &test_set, 256);
    println!(
        "{}: test {} {:.2}% on {} images",
        m.graph.name,
        if test_set.is_segmentation() {
            "mIoU"
        } else {
            "accuracy"
        },
        100.0 * acc,
        test_set.len()
    );
    Ok(acc)
}
