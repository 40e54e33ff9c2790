//! `ksnn train`, `ksnn finetune`, `ksnn eval`: any model, optionally with a block spec.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ksnn_compiler::data::Split;
use ksnn_compiler::torch::train::{self, Optimizer, Schedule, TrainConfig};
use ksnn_formats::BlockSpec;
use ksnn_formats::envelope::Magic;

use super::{DataArgs, Loaded, ModelArgs, load_data, load_model};

/// Optimisation settings.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Passes over the training set (12 take mnist-cnn past 98.5 % in under a minute on
    /// two cores).
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (linear warm-up, then the schedule).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// adam, or sgd (with --momentum and --weight-decay, as the seed trains).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// poly (linear decay to 1e-5), constant, or step:E1,E2,… (×0.1 at those epochs).
    #[arg(long, default_value = "poly")]
    pub schedule: String,
    /// Linear warm-up steps from 1 % of the rate.
    #[arg(long, default_value_t = 50)]
    pub warmup_steps: usize,
    /// Where to write the trained parameters (a .safetensors file).
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_schedule(s: &str) -> Result<Schedule> {
    Ok(match s {
        "poly" => Schedule::Poly {
            power: 1.0,
            min_lr: 1e-5,
        },
        "constant" => Schedule::Constant,
        _ => match s.strip_prefix("step:") {
            Some(list) => Schedule::Step {
                milestones: list
                    .split(',')
                    .map(|e| e.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| anyhow!("--schedule {s}: milestones are epoch numbers"))?,
                gamma: 0.1,
            },
            None => bail!("unknown schedule `{s}`; use poly, constant or step:E1,E2"),
        },
    })
}

impl TrainArgs {
    pub fn config(&self) -> Result<TrainConfig> {
        Ok(TrainConfig {
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            optimizer: match self.optimizer.as_str() {
                "adam" => Optimizer::Adam,
                "sgd" => Optimizer::Sgd {
                    momentum: self.momentum,
                    weight_decay: self.weight_decay,
                },
                o => bail!("unknown optimizer `{o}`; use adam or sgd"),
            },
            schedule: parse_schedule(&self.schedule)?,
            warmup_steps: self.warmup_steps,
            ..Default::default()
        })
    }
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
pub fn load_with_spec(model: &ModelArgs, spec: Option<&Path>) -> Result<Loaded> {
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
pub fn train(
    model: &ModelArgs,
    data: &DataArgs,
    args: &TrainArgs,
    spec: Option<&Path>,
) -> Result<f64> {
    ensure!(
        args.out.extension().is_some_and(|e| e == "safetensors"),
        "--out {}: checkpoints are safetensors files; name it *.safetensors",
        args.out.display()
    );
    let m = load_with_spec(model, spec)?;
    let train_set = load_data(data, &m.graph, Split::Train)?;
    let test_set = load_data(data, &m.graph, Split::Test)?;
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
    let cfg = args.config()?;
    let started = std::time::Instant::now();
    let epochs = train::train(&m.exec, &m.vs, &train_set, Some(&test_set), &cfg)?;
    for (i, e) in epochs.iter().enumerate() {
        println!(
            "epoch {}: loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%",
            i + 1,
            e.loss,
            100.0 * e.train_accuracy,
            100.0 * e.test_accuracy.unwrap_or(0.0)
        );
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    m.vs.save(&args.out)
        .with_context(|| format!("saving {}", args.out.display()))?;
    println!(
        "trained in {:.1} s; parameters in {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(epochs.last().and_then(|e| e.test_accuracy).unwrap_or(0.0))
}

/// Held-out accuracy, optionally with a spec.
pub fn eval(model: &ModelArgs, data: &DataArgs, spec: Option<&Path>) -> Result<f64> {
    let m = load_with_spec(model, spec)?;
    let test_set = load_data(data, &m.graph, Split::Test)?;
    let acc = train::evaluate(&m.exec, &test_set, 256);
    println!(
        "{}: test accuracy {:.2}% on {} images",
        m.graph.name,
        100.0 * acc,
        test_set.len()
    );
    Ok(acc)
}
