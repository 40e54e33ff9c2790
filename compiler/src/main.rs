//! `ksnn`: the offline compiler. Today: the toolchain report, and training and evaluation of
//! zoo models; distortion, knapsack, fine-tuning and lowering follow.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ksnn_compiler::data::{Split, mnist};
use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::train::{self, TrainConfig};
use tch::{Device, Tensor, nn};

/// ksnn's offline compiler: it turns a model (ONNX or from the zoo) into a private-inference
/// program whose ReLUs are mostly block ReLUs, chosen by a knapsack over measured distortion.
///
/// It trains and fine-tunes with libtorch (a GPU when present) and writes `model.ksnn` for all
/// three parties and `weights.ksnw` for the server.
#[derive(Parser)]
#[command(name = "ksnn", version = version_line())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the versions, the compute devices found, and check that libtorch really works
    /// by running a small tensor computation.
    Version,
    /// Train a zoo model on a dataset and save its parameters (safetensors), printing the
    /// held-out accuracy after every epoch.
    ///
    /// Example: ksnn train --model mnist-cnn --data data --epochs 4 --out runs/mnist/model.safetensors
    Train {
        /// A zoo model: mnist-cnn.
        #[arg(long)]
        model: String,
        /// Dataset directory holding `mnist/` (tools/setup.sh installs it in ./data).
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Peak learning rate (Adam, linear warm-up, then linear decay).
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Where to write the trained parameters.
        #[arg(long)]
        out: PathBuf,
        /// Continue from these parameters.
        #[arg(long)]
        resume: Option<PathBuf>,
    },
    /// Evaluate saved parameters of a zoo model on the held-out split.
    Eval {
        #[arg(long)]
        model: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        checkpoint: PathBuf,
    },
}

fn zoo(name: &str) -> Result<ksnn_compiler::ir::Graph> {
    ksnn_compiler::ir::zoo::build(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown model `{name}`; the zoo has: {}",
            ksnn_compiler::ir::zoo::MODELS.join(", ")
        )
    })
}

/// Loads parameters with a one-line error (libtorch's carry a C++ backtrace).
fn load_params(vs: &mut nn::VarStore, path: &std::path::Path) -> Result<()> {
    anyhow::ensure!(
        path.is_file(),
        "{}: no such checkpoint file",
        path.display()
    );
    vs.load(path).map_err(|e| {
        let msg = e.to_string();
        anyhow::anyhow!(
            "{}: {}",
            path.display(),
            msg.lines().next().unwrap_or("cannot load")
        )
    })
}

fn mnist(data: &std::path::Path, split: Split) -> Result<ksnn_compiler::data::Classification> {
    mnist::load(&data.join("mnist"), split)
        .with_context(|| "loading MNIST (run tools/setup.sh, or pass --data)".to_string())
}

fn version_line() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (libtorch ",
        env!("KSNN_LIBTORCH_VERSION"),
        ")"
    )
}

fn report() -> Result<()> {
    println!("ksnn {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch {}", env!("KSNN_LIBTORCH_VERSION"));
    let cuda = tch::Cuda::is_available();
    println!(
        "cuda: {}",
        if cuda {
            format!("available, {} device(s)", tch::Cuda::device_count())
        } else {
            "not available (training runs on the CPU)".to_string()
        }
    );
    println!("torch threads: {}", tch::get_num_threads());
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
    let b = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25])
        .reshape([2, 2])
        .to_device(Device::Cpu);
    let c = a.matmul(&b);
    let v: Vec<f32> = c.flatten(0, -1).try_into()?;
    println!("check: [[1,2],[3,4]] x [[0.5,-1],[2,0.25]] = {v:?}");
    anyhow::ensure!(
        v == [4.5, -0.5, 9.5, -2.0],
        "libtorch computed {v:?}: the installation is broken"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Version) | None => report(),
        Some(Command::Train {
            model,
            data,
            epochs,
            batch,
            lr,
            out,
            resume,
        }) => {
            let graph = zoo(&model)?;
            let mut vs = nn::VarStore::new(Device::cuda_if_available());
            let exec = Executor::new(&vs.root(), &graph)?;
            if let Some(r) = resume {
                load_params(&mut vs, &r).context("resuming")?;
            }
            let (train_set, test_set) = (mnist(&data, Split::Train)?, mnist(&data, Split::Test)?);
            println!(
                "training {model} ({} parameters) on {} images, testing on {}",
                graph.parameters(),
                train_set.len(),
                test_set.len()
            );
            let cfg = TrainConfig {
                epochs,
                batch,
                lr,
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let epochs = train::train(&exec, &vs, &train_set, Some(&test_set), &cfg)?;
            for (i, e) in epochs.iter().enumerate() {
                println!(
                    "epoch {}: loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%",
                    i + 1,
                    e.loss,
                    100.0 * e.train_accuracy,
                    100.0 * e.test_accuracy.unwrap_or(0.0)
                );
            }
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            vs.save(&out)
                .with_context(|| format!("saving {}", out.display()))?;
            println!(
                "trained in {:.1} s; parameters in {}",
                started.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Some(Command::Eval {
            model,
            data,
            checkpoint,
        }) => {
            let graph = zoo(&model)?;
            let mut vs = nn::VarStore::new(Device::cuda_if_available());
            let exec = Executor::new(&vs.root(), &graph)?;
            load_params(&mut vs, &checkpoint)?;
            let test_set = mnist(&data, Split::Test)?;
            println!(
                "{model}: test accuracy {:.2}% on {} images",
                100.0 * train::evaluate(&exec, &test_set, 256),
                test_set.len()
            );
            Ok(())
        }
    }
}
