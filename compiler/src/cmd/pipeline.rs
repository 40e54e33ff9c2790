//! `ksnn pipeline`: train (or import) → distortion → knapsack → fine-tune → compile →
//! secure evaluation by three `ksnn-party` processes over TLS. Every stage writes into the
//! run directory with a stamp of what it was made from, and is skipped while that is
//! unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use ksnn_compiler::plot;
use ksnn_formats::{ContentHash, Report};
use serde::{Deserialize, Serialize};

use super::compile::CompileArgs;
use super::distortion::DistortionArgs;
use super::knapsack::KnapsackArgs;
use super::sweep::SweepArgs;
use super::train::{TrainArgs, eval, train};
use super::{DataArgs, ModelArgs, ModelSource};

#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The experiment (see experiments/mnist.toml).
    #[arg(long, required_unless_present = "onnx")]
    pub config: Option<PathBuf>,
    /// Run an ONNX model with the config's other settings (or the built-in defaults).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Override the run directory.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Override the dataset root.
    #[arg(long)]
    pub data: Option<PathBuf>,
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
    pub dataset: String,
    /// Images per split (quick runs).
    pub limit: Option<usize>,
}

impl Default for DataCfg {
    fn default() -> Self {
        Self {
            root: "data".into(),
            dataset: "mnist".into(),
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
    pub solver: String,
}

impl Default for KnapsackCfg {
    fn default() -> Self {
        Self {
            ratio: 0.06,
            solver: "lagrangian".into(),
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
    pub truncation: String,
    pub frac_bits: u8,
}

impl Default for CompileCfg {
    fn default() -> Self {
        Self {
            calibration: 64,
            truncation: "local".into(),
            frac_bits: 12,
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
pub struct Config {
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

/// Skips a stage whose stamp matches; otherwise runs it and writes the stamp.
struct Stages {
    dir: PathBuf,
}

impl Stages {
    fn run(
        &self,
        name: &str,
        key: &str,
        outputs: &[&Path],
        f: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        let stamp = self.dir.join(".stamps").join(name);
        let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s == key)
            && outputs.iter().all(|p| p.exists());
        if fresh {
            println!("\n== {name}: unchanged, skipped");
            return Ok(false);
        }
        println!("\n== {name}");
        let _ = std::fs::remove_file(&stamp);
        f().with_context(|| format!("stage {name}"))?;
        std::fs::create_dir_all(stamp.parent().expect("has a parent"))?;
        std::fs::write(&stamp, key)?;
        Ok(true)
    }
}

/// A stage's key: what it is made from (its settings and the keys before it).
fn key(parts: &[&str]) -> String {
    ContentHash::of(parts.join("\n").as_bytes()).to_string()
}

fn toml_of<T: Serialize>(v: &T) -> String {
    toml::to_string(v).unwrap_or_default()
}

/// `ksnn-party` next to this binary, else on the PATH.
fn party_binary() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("ksnn-party")));
    match beside {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("ksnn-party"),
    }
}

pub fn run(a: &PipelineArgs) -> Result<()> {
    let mut cfg: Config = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", p.display()))?
        }
        None => Config {
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
        },
    };
    if let Some(o) = &a.onnx {
        cfg.model = ModelCfg {
            zoo: None,
            onnx: Some(o.clone()),
            ..cfg.model
        };
    }
    if let Some(d) = &a.run_dir {
        cfg.run_dir = d.clone();
    }
    if let Some(d) = &a.data {
        cfg.data.root = d.clone();
    }
    let dir = cfg.run_dir.clone();
    std::fs::create_dir_all(&dir)?;
    let stages = Stages { dir: dir.clone() };
    let data = DataArgs {
        data: cfg.data.root.clone(),
        dataset: cfg.data.dataset.clone(),
        limit: cfg.data.limit,
    };
    let started = std::time::Instant::now();

    // Model: a zoo name, or an imported ONNX graph.
    let graph_file = dir.join("model.ksnn-graph");
    let (source, model_key) = match (&cfg.model.zoo, &cfg.model.onnx) {
        (Some(z), None) => (
            ModelSource {
                model: Some(z.clone()),
                from: None,
            },
            key(&["zoo", z]),
        ),
        (None, Some(onnx)) => {
            let bytes =
                std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
            let k = key(&[
                "onnx",
                &ContentHash::of(&bytes).to_string(),
                &toml_of(&cfg.model),
            ]);
            stages.run("import", &k, &[&graph_file], || {
                super::model::import(super::model::ImportArgs {
                    onnx: onnx.clone(),
                    out: graph_file.clone(),
                    input_shape: None,
                    mean: cfg.model.mean.clone(),
                    std: cfg.model.std.clone(),
                    relu6_to_relu: true,
                    maxpool_to_avgpool: false,
                    strip_softmax: true,
                })
            })?;
            (
                ModelSource {
                    model: None,
                    from: Some(graph_file.clone()),
                },
                k,
            )
        }
        _ => bail!("[model] needs exactly one of `zoo` and `onnx`"),
    };
    let model = |checkpoint: Option<PathBuf>| ModelArgs {
        source: ModelSource {
            model: source.model.clone(),
            from: source.from.clone(),
        },
        checkpoint,
    };
    let data_key = toml_of(&cfg.data);

    // Train (or keep the imported weights when epochs = 0).
    let base = dir.join("base.safetensors");
    let train_key = key(&[&model_key, &data_key, &toml_of(&cfg.train)]);
    let base_ckpt = if cfg.train.epochs > 0 {
        stages.run("train", &train_key, &[&base], || {
            train(
                &model(None),
                &data,
                &train_args(&cfg.train, &base, 50),
                None,
            )
            .map(|_| ())
        })?;
        Some(base)
    } else {
        None
    };
    // Float accuracies on the same test images the secure run classifies.
    let same = DataArgs {
        limit: Some(cfg.secure.images),
        ..clone_data(&data)
    };
    let plain = eval(&model(base_ckpt.clone()), &same, None)?;

    let dist_dir = dir.join("distortion");
    let dist = dist_dir.join("distortion.json");
    let dist_key = key(&[&train_key, &toml_of(&cfg.distortion)]);
    stages.run("distortion", &dist_key, &[&dist], || {
        super::distortion::run(&DistortionArgs {
            model: model(base_ckpt.clone()),
            data: DataArgs {
                limit: None,
                ..clone_data(&data)
            },
            images: cfg.distortion.images,
            out: dist_dir.clone(),
            shard: None,
            merge: false,
            batch_samples: None,
        })
    })?;

    let spec = dir.join("spec.json");
    let spec_key = key(&[&dist_key, &toml_of(&cfg.knapsack)]);
    stages.run("knapsack", &spec_key, &[&spec], || {
        super::knapsack::run(&KnapsackArgs {
            distortion: dist.clone(),
            ratio: Some(cfg.knapsack.ratio),
            max_drelus: None,
            solver: cfg.knapsack.solver.clone(),
            out: spec.clone(),
        })
        .map(|_| ())
    })?;

    let tuned = dir.join("finetuned.safetensors");
    let tune_key = key(&[&spec_key, &toml_of(&cfg.finetune)]);
    stages.run("finetune", &tune_key, &[&tuned], || {
        train(
            &model(base_ckpt.clone()),
            &data,
            &train_args(&cfg.finetune, &tuned, 0),
            Some(&spec),
        )
        .map(|_| ())
    })?;
    let at_budget = eval(&model(Some(tuned.clone())), &same, Some(&spec))?;

    if let Some(sweep) = &cfg.sweep {
        let out = dir.join("sweep");
        let k = key(&[&dist_key, &toml_of(sweep), &toml_of(&cfg.finetune)]);
        stages.run("sweep", &k, &[&out.join("sweep.png")], || {
            super::sweep::run(&SweepArgs {
                model: model(base_ckpt.clone()),
                data: clone_data(&data),
                distortion: dist.clone(),
                ratios: sweep.ratios.clone(),
                solver: cfg.knapsack.solver.clone(),
                epochs: sweep.epochs,
                lr: cfg.finetune.lr,
                out: out.clone(),
            })
        })?;
    }

    let compiled = dir.join("compiled");
    let (program, weights) = (compiled.join("model.ksnn"), compiled.join("weights.ksnw"));
    let compile_key = key(&[&tune_key, &toml_of(&cfg.compile)]);
    stages.run("compile", &compile_key, &[&program, &weights], || {
        super::compile::run(&CompileArgs {
            model: model(Some(tuned.clone())),
            data: clone_data(&data),
            spec: Some(spec.clone()),
            calibration: cfg.compile.calibration,
            frac_bits: cfg.compile.frac_bits,
            truncation: cfg.compile.truncation.clone(),
            out: compiled.clone(),
        })
        .map(|_| ())
    })?;

    let report_path = dir.join("report.json");
    let secure_key = key(&[&compile_key, &toml_of(&cfg.secure)]);
    stages.run("secure", &secure_key, &[&report_path], || {
        ensure!(
            cfg.data.dataset == "mnist",
            "secure evaluation reads the MNIST test digits; the dataset is {}",
            cfg.data.dataset
        );
        let party = party_binary();
        let status = Command::new(&party)
            .args(["local", "--model"])
            .arg(&program)
            .arg("--weights")
            .arg(&weights)
            .args([
                "--dataset",
                "mnist",
                "--n",
                &cfg.secure.images.to_string(),
                "--data",
            ])
            .arg(&cfg.data.root)
            .arg("--report")
            .arg(&report_path)
            .status()
            .with_context(|| {
                format!(
                    "starting {} (build it with `cargo build --release -p ksnn-party`)",
                    party.display()
                )
            })?;
        ensure!(
            status.success(),
            "{} local failed ({status})",
            party.display()
        );
        Ok(())
    })?;
    let text = std::fs::read_to_string(&report_path)?;
    let report = Report::from_json(&text).with_context(|| format!("{}", report_path.display()))?;
    plot_bytes(&report, &dir.join("bytes_per_layer.png"))?;
    print_summary(&report, plain, at_budget, &cfg);
    println!(
        "\nrun directory {}: report.json, bytes_per_layer.png{}; {:.0} s",
        dir.display(),
        if cfg.sweep.is_some() {
            ", sweep/sweep.png"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn clone_data(d: &DataArgs) -> DataArgs {
    DataArgs {
        data: d.data.clone(),
        dataset: d.dataset.clone(),
        limit: d.limit,
    }
}

fn train_args(e: &Epochs, out: &Path, warmup_steps: usize) -> TrainArgs {
    TrainArgs {
        epochs: e.epochs,
        batch: 64,
        lr: e.lr,
        optimizer: "adam".into(),
        momentum: 0.9,
        weight_decay: 0.0,
        schedule: "poly".into(),
        warmup_steps,
        out: out.to_path_buf(),
    }
}

fn print_summary(r: &Report, plain: f64, at_budget: f64, cfg: &Config) {
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
    row(
        "accuracy, float, plain ReLUs",
        format!("{:.2} %", 100.0 * plain),
    );
    row(
        "accuracy, float, block ReLUs (fine-tuned)",
        format!("{:.2} %", 100.0 * at_budget),
    );
    row(
        "accuracy, fixed-point reference",
        format!("{:.2} %", 100.0 * r.accuracy.plain),
    );
    row(
        "accuracy, secure (three parties, TLS)",
        format!("{:.2} %", 100.0 * r.accuracy.secure),
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

fn plot_bytes(r: &Report, path: &Path) -> Result<()> {
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
