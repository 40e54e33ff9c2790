//! `ksnn version`, `ksnn import`, `ksnn info`.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use ksnn_formats::Shape;
use ksnn_graph::ir::{Graph, IrOp};
use ksnn_graph::onnx::ImportOptions;
use tch::{Device, Tensor};

use super::ModelArgs;
use crate::stages::Model;
use crate::stages::import::{ImportConfig, summary};

/// Import options (see `ksnn import --help`).
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The .onnx file (its external data files are read from the same folder).
    pub onnx: PathBuf,
    /// Where to write the graph.
    #[arg(long)]
    pub out: PathBuf,
    /// C,H,W of the input, when the file leaves it open.
    #[arg(long, value_parser = super::parse_shape)]
    pub input_shape: Option<Shape>,
    /// Normalisation the model expects, per channel or one value: pixels in [0,1]
    /// become (x - mean) / std before the first layer.
    #[arg(long, value_delimiter = ',')]
    pub mean: Option<Vec<f32>>,
    /// Standard deviation for the normalisation above, per channel or one value.
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Replace ReLU6 (clip to [0,6]) by ReLU positions the knapsack can budget.
    #[arg(long)]
    pub relu6_to_relu: bool,
    /// Replace max pooling by average pooling (local in the secure protocol).
    #[arg(long)]
    pub maxpool_to_avgpool: bool,
    /// Drop a softmax at the very end (the predicted class does not change; secure
    /// inference returns logits).
    #[arg(long)]
    pub strip_softmax: bool,
}

/// `ksnn version`: versions and devices, and a small matrix product that proves libtorch
/// really loads and computes.
pub fn report() -> Result<()> {
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
    ensure!(
        v == [4.5, -0.5, 9.5, -2.0],
        "libtorch computed {v:?}: the installation is broken"
    );
    Ok(())
}

impl From<ImportArgs> for ImportConfig {
    fn from(a: ImportArgs) -> Self {
        Self {
            onnx: a.onnx,
            out: a.out,
            options: ImportOptions {
                input_shape: a.input_shape,
                mean: a.mean,
                std: a.std,
                strip_softmax: a.strip_softmax,
            },
            relu6_to_relu: a.relu6_to_relu,
            maxpool_to_avgpool: a.maxpool_to_avgpool,
        }
    }
}

/// `ksnn info`: the node table and a one-line summary of a zoo model or graph file.
pub fn info(model: &ModelArgs) -> Result<()> {
    let (graph, _) = Model::try_from(model)?.source.load()?;
    print!("{}", table(&graph)?);
    println!("{}", summary(&graph)?);
    Ok(())
}

/// Every node: name, op, inputs, output shape, parameters.
fn table(g: &Graph) -> Result<String> {
    use std::fmt::Write as _;
    let shapes = g.shapes()?;
    let width = g
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:>4}  {:width$}  {:14}  {:>12}  {:>10}  inputs\n",
        "id", "name", "op", "output", "params"
    );
    for (i, n) in g.nodes.iter().enumerate() {
        let op = match &n.op {
            IrOp::Activation(a) => a.name().to_string(),
            op => format!("{op:?}"),
        };
        let op = op.split(['(', ' ', '{']).next().unwrap_or("");
        let _ = writeln!(
            s,
            "{:>4}  {:width$}  {:14}  {:>12}  {:>10}  {:?}",
            i + 1,
            n.name,
            op,
            shapes[i + 1].to_string(),
            n.op.parameters(),
            n.inputs
        );
    }
    Ok(s)
}
