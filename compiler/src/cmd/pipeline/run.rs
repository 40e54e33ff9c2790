//! The orchestration: each stage's typed config built from the experiment, run in order
//! through the stage cache, each keyed by its settings and the keys of what it reads.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail, ensure};
use ksnn_compiler::data::Dataset;
use ksnn_compiler::experiment::Experiment;
use ksnn_compiler::torch::pretrained::Init;
use ksnn_formats::{ContentHash, Report};
use ksnn_graph::ir::GraphFile;
use ksnn_graph::onnx::ImportOptions;

use super::cache::{Stages, key, toml_of};
use super::secure::{self, Metrics};
use super::summary;
use crate::stages::compile::CompileConfig;
use crate::stages::distortion::DistortionConfig;
use crate::stages::import::ImportConfig;
use crate::stages::knapsack::{Budget, KnapsackConfig};
use crate::stages::sweep::SweepConfig;
use crate::stages::train::{TrainConfig, eval};
use crate::stages::{self, Data, Model, ModelSource};

/// How long a party of the secure stage waits for any one message. A stall is rare and a dead
/// party is seen at once (its connection closes), while a big model's set-up (DeepLabV3's
/// 65 M weights, a debug build on two busy cores) can keep a peer quiet well past the
/// interactive default of 10 s.
const SECURE_TIMEOUT_SECONDS: u32 = 600;

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

/// Runs the stages in order under `cfg.run_dir`, skipping those whose stamp is unchanged,
/// then the secure evaluation with `ksnn-party local`, and prints the summary.
pub fn run(cfg: &Experiment) -> Result<()> {
    let dir = cfg.run_dir.clone();
    std::fs::create_dir_all(&dir)?;
    let stages = Stages { dir: dir.clone() };
    let data = Data {
        root: cfg.data.root.clone(),
        dataset: cfg.data.dataset,
        limit: cfg.data.limit,
    };
    let started = std::time::Instant::now();

    // Model: a zoo name, or an imported ONNX graph.
    let graph_file = dir.join("model.ksnn-graph");
    let (source, model_key) = match (&cfg.model.zoo, &cfg.model.onnx) {
        (Some(z), None) => match cfg.model.zoo_options() {
            None => (ModelSource::Zoo(z.clone()), key(&["zoo", z])),
            // A zoo model at another size or class count: its graph as a file.
            Some(opts) => {
                let graph = ksnn_graph::ir::zoo::build_with(z, &opts).ok_or_else(|| {
                    anyhow!(
                        "[model]: the zoo has no `{z}` taking size {:?} and classes {:?} (the zoo has: {})",
                        cfg.model.size,
                        cfg.model.classes,
                        ksnn_graph::ir::zoo::MODELS.join(", ")
                    )
                })?;
                GraphFile {
                    graph,
                    params: Default::default(),
                    source: format!("zoo {z}"),
                }
                .save(&graph_file)?;
                (
                    ModelSource::File(graph_file.clone()),
                    key(&["zoo", z, &toml_of(&cfg.model)]),
                )
            }
        },
        (None, Some(onnx)) => {
            let bytes =
                std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
            let k = key(&[
                "onnx",
                &ContentHash::of(&bytes).to_string(),
                &toml_of(&cfg.model),
            ]);
            stages.run("import", &k, &[&graph_file], || {
                stages::import::run(&ImportConfig {
                    onnx: onnx.clone(),
                    out: graph_file.clone(),
                    options: ImportOptions {
                        input_shape: None,
                        mean: cfg.model.mean.clone(),
                        std: cfg.model.std.clone(),
                        strip_softmax: true,
                    },
                    relu6_to_relu: true,
                    maxpool_to_avgpool: false,
                })
            })?;
            (ModelSource::File(graph_file.clone()), k)
        }
        _ => bail!("[model] needs exactly one of `zoo` and `onnx`"),
    };
    // The recipe's starting checkpoint, if it names one (`[model] init`, `map`); a trained or
    // fine-tuned checkpoint replaces it.
    let init = match (&cfg.model.init, cfg.model.map) {
        (Some(path), Some(naming)) => Some(Init {
            path: path.clone(),
            naming,
        }),
        _ => None,
    };
    let model = |checkpoint: Option<PathBuf>| Model {
        source: source.clone(),
        init: init.clone(),
        checkpoint,
    };
    let data_key = toml_of(&cfg.data);

    // Train (or keep the imported weights when epochs = 0).
    let base = dir.join("base.safetensors");
    let mut train_parts = vec![model_key.clone(), data_key.clone(), toml_of(&cfg.train)];
    // The starting checkpoint's content is part of what training reads (runs without one
    // keep their stamps).
    if let Some(i) = &init {
        let bytes =
            std::fs::read(&i.path).with_context(|| format!("reading {}", i.path.display()))?;
        train_parts.push(ContentHash::of(&bytes).to_string());
    }
    let train_key = key(&train_parts.iter().map(String::as_str).collect::<Vec<_>>());
    let base_ckpt = if cfg.train.epochs > 0 || cfg.train.iterations.is_some() {
        stages.run("train", &train_key, &[&base], || {
            stages::train::run(&TrainConfig {
                model: model(None),
                data: data.clone(),
                spec: None,
                out: base.clone(),
                settings: cfg.train.settings(50),
            })
            .map(|_| ())
        })?;
        Some(base)
    } else {
        None
    };
    // Float accuracies on the same test images the secure run classifies.
    let same = Data {
        limit: Some(cfg.secure.images),
        ..data.clone()
    };
    let plain = eval(&model(base_ckpt.clone()), &same, None)?;

    let dist_dir = dir.join("distortion");
    let dist = dist_dir.join("distortion.json");
    let dist_key = key(&[&train_key, &toml_of(&cfg.distortion)]);
    stages.run("distortion", &dist_key, &[&dist], || {
        stages::distortion::run(&DistortionConfig {
            model: model(base_ckpt.clone()),
            data: Data {
                limit: None,
                ..data.clone()
            },
            images: cfg.distortion.images,
            out: dist_dir.clone(),
            shard: None,
            merge: false,
            batch_samples: None,
            layers: cfg.distortion.layers.clone(),
        })
    })?;

    let spec = dir.join("spec.json");
    let spec_key = key(&[&dist_key, &toml_of(&cfg.knapsack)]);
    stages.run("knapsack", &spec_key, &[&spec], || {
        stages::knapsack::run(&KnapsackConfig {
            distortion: dist.clone(),
            budget: Budget::Ratio(cfg.knapsack.ratio),
            solver: cfg.knapsack.solver,
            out: spec.clone(),
        })
        .map(|_| ())
    })?;

    let tuned = dir.join("finetuned.safetensors");
    let tune_key = key(&[&spec_key, &toml_of(&cfg.finetune)]);
    stages.run("finetune", &tune_key, &[&tuned], || {
        stages::train::run(&TrainConfig {
            model: model(base_ckpt.clone()),
            data: data.clone(),
            spec: Some(spec.clone()),
            out: tuned.clone(),
            settings: cfg.finetune.settings(0),
        })
        .map(|_| ())
    })?;
    let at_budget = eval(&model(Some(tuned.clone())), &same, Some(&spec))?;

    if let Some(sweep) = &cfg.sweep {
        let out = dir.join("sweep");
        let k = key(&[&dist_key, &toml_of(sweep), &toml_of(&cfg.finetune)]);
        stages.run("sweep", &k, &[&out.join("sweep.png")], || {
            stages::sweep::run(&SweepConfig {
                model: model(base_ckpt.clone()),
                data: data.clone(),
                distortion: dist.clone(),
                ratios: sweep.ratios.clone(),
                solver: cfg.knapsack.solver,
                epochs: sweep.epochs,
                lr: cfg.finetune.lr,
                out: out.clone(),
                baselines: sweep.baselines.clone(),
            })
        })?;
    }

    let compiled = dir.join("compiled");
    let (program, weights) = (compiled.join("model.ksnn"), compiled.join("weights.ksnw"));
    let compile_key = key(&[&tune_key, &toml_of(&cfg.compile)]);
    stages.run("compile", &compile_key, &[&program, &weights], || {
        stages::compile::run(&CompileConfig {
            model: model(Some(tuned.clone())),
            data: data.clone(),
            spec: Some(spec.clone()),
            calibration: cfg.compile.calibration,
            fixed_point: cfg.compile.fixed_point(),
            protocol: cfg.compile.protocol(),
            out: compiled.clone(),
        })
        .map(|_| ())
    })?;

    let report_path = dir.join("report.json");
    let metrics_path = dir.join("secure").join("metrics.json");
    let secure_key = key(&[&compile_key, &toml_of(&cfg.secure)]);
    let mnist = cfg.data.dataset == Dataset::Mnist;
    let mut outputs: Vec<&std::path::Path> = vec![&report_path];
    if !mnist {
        outputs.push(&metrics_path);
    }
    stages.run("secure", &secure_key, &outputs, || {
        let party = party_binary();
        let mut cmd = Command::new(&party);
        cmd.args(["local", "--model"])
            .arg(&program)
            .arg("--weights")
            .arg(&weights)
            .arg("--timeout")
            .arg(SECURE_TIMEOUT_SECONDS.to_string());
        // The MNIST digits the party binary reads itself; any other dataset's test images
        // as NPY files, scored here against their labels or masks.
        let written = if mnist {
            cmd.args([
                "--dataset",
                "mnist",
                "--n",
                &cfg.secure.images.to_string(),
                "--data",
            ])
            .arg(&cfg.data.root);
            None
        } else {
            let w = secure::write_inputs(&model(Some(tuned.clone())), &same, &dir.join("secure"))?;
            cmd.arg("--input")
                .args(&w.inputs)
                .arg("--out")
                .arg(&w.outputs);
            Some(w)
        };
        let status = cmd
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
        if let Some(w) = written {
            secure::score(&w, &program, &weights, &metrics_path)?;
        }
        Ok(())
    })?;
    let text = std::fs::read_to_string(&report_path)?;
    let report = Report::from_json(&text).with_context(|| format!("{}", report_path.display()))?;
    summary::plot_bytes(&report, &dir.join("bytes_per_layer.png"))?;
    let metrics = if mnist {
        Metrics {
            segmentation: false,
            plain,
            at_budget,
            reference: report.accuracy.plain,
            secure: report.accuracy.secure,
        }
    } else {
        secure::read_metrics(&metrics_path, plain, at_budget)?
    };
    summary::print(&report, &metrics, cfg);
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
