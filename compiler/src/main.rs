//! `ksnn`: the offline compiler. It imports or builds a model, trains it, measures what
//! each block-ReLU choice costs in accuracy (distortion), picks the block sizes with a
//! knapsack under a DReLU budget, fine-tunes, lowers the result to a program (`ksnn compile`),
//! and runs the whole flow with secure evaluation (`ksnn pipeline`).

mod cmd;
mod stages;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cmd::{DataArgs, ModelArgs};

/// ksnn's offline compiler: it turns a model (ONNX or from the zoo) into a private-inference
/// program whose ReLUs are mostly block ReLUs, chosen by a knapsack over measured distortion.
///
/// Typical flow: `ksnn train` → `ksnn distortion` → `ksnn knapsack --ratio 0.06` →
/// `ksnn finetune --spec spec.json` (or `ksnn sweep` over several budgets). It trains with
/// libtorch (a GPU when present).
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
    /// Import an ONNX model (opsets 9–21) into a graph file that the other commands take
    /// with `--from`. Weights come from initializers, Constant nodes and external data
    /// files next to the model. Anything ksnn cannot compute exactly is refused with the op,
    /// the opset and the node.
    ///
    /// Example: ksnn import model.onnx --out runs/model.ksnn-graph --mean 0.1307 --std 0.3081
    Import(cmd::model::ImportArgs),
    /// Describe a model: every node with its op, output shape and parameters, and the ReLU
    /// layers (the names block specs use).
    Info {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Train a model on a dataset and save its parameters (safetensors), printing the
    /// held-out accuracy after every epoch. `--init FILE --map torchvision|mmcls|mmseg|ksnn`
    /// starts from a pretrained state dict instead of random parameters; with `--epochs 0`
    /// it only converts that file to a ksnn checkpoint (no data is read).
    ///
    /// Example: ksnn train --model mnist-cnn --data data --out runs/mnist/model.safetensors
    ///
    /// Example: ksnn train --model resnet50 --init resnet50-tv.safetensors --map torchvision --epochs 0 --out runs/r50/base.safetensors
    Train {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        train: cmd::train::TrainArgs,
        /// Train with block ReLUs from this spec (what `finetune` does).
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Fine-tune a trained model with a block spec (its ReLU layers become block ReLUs).
    ///
    /// Example: ksnn finetune --model mnist-cnn --checkpoint base.safetensors --spec spec.json --epochs 3 --lr 1e-3 --out ft.safetensors
    Finetune {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        train: cmd::train::TrainArgs,
        #[arg(long)]
        spec: PathBuf,
    },
    /// Evaluate a model's parameters on the held-out split (with a block spec if given).
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        spec: Option<PathBuf>,
    },
    /// Measure the distortion of every (ReLU layer, channel, candidate block size): the MSE
    /// of the final outputs against the clean model on a fixed sample of training images.
    /// Resumable, and shardable over processes and hosts with --shard i/n.
    ///
    /// Example: ksnn distortion --model mnist-cnn --checkpoint base.safetensors --out runs/dist
    Distortion(cmd::distortion::DistortionArgs),
    /// Choose every channel's block size under a DReLU budget (multiple-choice knapsack over
    /// the measured distortion) and write the block spec.
    ///
    /// Example: ksnn knapsack --distortion runs/dist/distortion.json --ratio 0.06 --out spec.json
    Knapsack(cmd::knapsack::KnapsackArgs),
    /// Lower a trained model and its block spec to model.ksnn (for all parties) and
    /// weights.ksnw (the server's), checked against the float model on calibration images.
    ///
    /// Example: ksnn compile --model mnist-cnn --checkpoint ft.safetensors --spec spec.json --out runs/compiled
    Compile(cmd::compile::CompileArgs),
    /// The whole flow, each stage cached in the run directory: train (or import) →
    /// distortion → knapsack → fine-tune → (sweep) → compile → secure evaluation by three
    /// ksnn-party processes over TLS; prints accuracy, DReLUs, bytes, rounds and time.
    ///
    /// Example: ksnn pipeline --config experiments/mnist.toml
    Pipeline(cmd::pipeline::PipelineArgs),
    /// Block-spec utilities.
    #[command(subcommand)]
    Spec(cmd::knapsack::SpecCommand),
    /// Knapsack + fine-tune + evaluate for several budgets; writes a table and a plot of
    /// accuracy against DReLUs.
    Sweep(cmd::sweep::SweepArgs),
    /// Benchmarks that print numbers.
    #[command(subcommand)]
    Bench(cmd::distortion::BenchCommand),
}

fn version_line() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (libtorch ",
        env!("KSNN_LIBTORCH_VERSION"),
        ")"
    )
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
        Some(Command::Version) | None => cmd::model::report(),
        Some(Command::Import(a)) => stages::import::run(&a.into()),
        Some(Command::Info { model }) => cmd::model::info(&model),
        Some(Command::Train {
            model,
            data,
            train,
            spec,
        }) => stages::train::run(&train.config(&model, &data, spec)?).map(|_| ()),
        Some(Command::Finetune {
            model,
            data,
            train,
            spec,
        }) => stages::train::run(&train.config(&model, &data, Some(spec))?).map(|_| ()),
        Some(Command::Eval { model, data, spec }) => {
            stages::train::eval(&(&model).try_into()?, &(&data).into(), spec.as_deref()).map(|_| ())
        }
        Some(Command::Distortion(a)) => stages::distortion::run(&(&a).try_into()?),
        Some(Command::Knapsack(a)) => stages::knapsack::run(&(&a).try_into()?).map(|_| ()),
        Some(Command::Compile(a)) => stages::compile::run(&(&a).try_into()?).map(|_| ()),
        Some(Command::Pipeline(a)) => cmd::pipeline::run(&a),
        Some(Command::Spec(c)) => cmd::knapsack::spec(c),
        Some(Command::Sweep(a)) => stages::sweep::run(&(&a).try_into()?),
        Some(Command::Bench(b)) => cmd::distortion::bench(b),
    }
}
