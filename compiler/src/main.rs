//! `ksnn`: the offline compiler. Later subcommands train, measure distortion, solve the
//! knapsack, fine-tune and lower models; this one reports the toolchain it runs on.

use anyhow::Result;
use clap::{Parser, Subcommand};
use tch::{Device, Tensor};

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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Version) | None => report(),
    }
}
