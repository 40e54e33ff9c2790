//! `ksnn`: the offline compiler. Today: the toolchain report, ONNX import, model description,
//! and training and evaluation of zoo and imported models; distortion, knapsack, fine-tuning
//! and lowering follow.

use std::path::PathBuf;

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Parser, Subcommand};
use ksnn_compiler::data::{Classification, Dataset, Split};
use ksnn_compiler::ir::{Graph, GraphFile, rewrite};
use ksnn_compiler::onnx::ImportOptions;
use ksnn_compiler::torch::executor::{Executor, set_params};
use ksnn_compiler::torch::train::{self, Optimizer, Schedule, TrainConfig};
use ksnn_formats::Shape;
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
    /// Import an ONNX model (opsets 9–21) into a graph file that `train`, `eval` and `info`
    /// take with `--from`. Weights come from initializers, Constant nodes and external data
    /// files next to the model. Anything ksnn cannot compute exactly is refused with the op,
    /// the opset and the node.
    ///
    /// Example: ksnn import model.onnx --out runs/model.ksnn-graph --mean 0.1307 --std 0.3081
    Import {
        /// The .onnx file (its external data files are read from the same folder).
        onnx: PathBuf,
        /// Where to write the graph.
        #[arg(long)]
        out: PathBuf,
        /// C,H,W of the input, when the file leaves it open.
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        /// Normalisation the model expects, per channel or one value: pixels in [0,1]
        /// become (x - mean) / std before the first layer.
        #[arg(long, value_delimiter = ',')]
        mean: Option<Vec<f32>>,
        #[arg(long, value_delimiter = ',')]
        std: Option<Vec<f32>>,
        /// Replace ReLU6 (clip to [0,6]) by ReLU positions the knapsack can budget.
        #[arg(long)]
        relu6_to_relu: bool,
        /// Replace max pooling by average pooling (local in the secure protocol).
        #[arg(long)]
        maxpool_to_avgpool: bool,
        /// Drop a softmax at the very end (the predicted class does not change; secure
        /// inference returns logits).
        #[arg(long)]
        strip_softmax: bool,
    },
    /// Describe a model: every node with its op, output shape and parameters, and the ReLU
    /// layers (the names block specs use).
    Info {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Train a model on a dataset and save its parameters (safetensors), printing the
    /// held-out accuracy after every epoch.
    ///
    /// Example: ksnn train --model mnist-cnn --data data --out runs/mnist/model.safetensors
    Train {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Passes over the training set (12 take mnist-cnn past 98.5 % in about 75 s on two
        /// cores).
        #[arg(long, default_value_t = 12)]
        epochs: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Peak learning rate (Adam, linear warm-up, then linear decay).
        #[arg(long, default_value_t = 3e-3)]
        lr: f64,
        /// adam, or sgd (with --momentum and --weight-decay, as the seed trains).
        #[arg(long, default_value = "adam")]
        optimizer: String,
        #[arg(long, default_value_t = 0.9)]
        momentum: f64,
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f64,
        /// poly (linear decay to 1e-5), constant, or step:E1,E2,… (×0.1 at those epochs).
        #[arg(long, default_value = "poly")]
        schedule: String,
        /// Linear warm-up steps from 1 % of the rate.
        #[arg(long, default_value_t = 50)]
        warmup_steps: usize,
        /// Where to write the trained parameters (a .safetensors file).
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate a model's parameters on the held-out split.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Which model, and which parameters to start from.
#[derive(clap::Args)]
#[group(required = true, multiple = false, id = "source")]
struct ModelSource {
    /// A zoo model.
    #[arg(long, group = "source")]
    model: Option<String>,
    /// A graph file written by `ksnn import` (its parameters are the starting point).
    #[arg(long, group = "source")]
    from: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ModelArgs {
    #[command(flatten)]
    source: ModelSource,
    /// Parameters saved by `ksnn train` (safetensors); they replace the starting point.
    #[arg(long, alias = "resume")]
    checkpoint: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DataArgs {
    /// Dataset root (tools/setup.sh installs MNIST in ./data/mnist).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// mnist, cifar10 (ROOT/cifar-10-batches-bin), cifar100 (ROOT/cifar-100-binary) or
    /// folders (ROOT/train, ROOT/val with a folder per class).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Use only the first N images of each split (quick runs).
    #[arg(long)]
    limit: Option<usize>,
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

fn parse_shape(s: &str) -> Result<Shape, String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| format!("`{x}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [c, h, w] => Ok(Shape::new(*c, *h, *w)),
        _ => Err("expected C,H,W".into()),
    }
}

/// A model ready to run: its graph, parameters in a var store, and the executor.
struct Loaded {
    graph: Graph,
    vs: nn::VarStore,
    exec: Executor,
}

fn load_model(args: &ModelArgs) -> Result<Loaded> {
    let (graph, params) = match (&args.source.model, &args.source.from) {
        (Some(name), _) => (zoo(name)?, None),
        (None, Some(path)) => {
            let f = GraphFile::load(path)?;
            (f.graph, Some(f.params))
        }
        (None, None) => bail!("pass --model NAME or --from FILE"),
    };
    let mut vs = nn::VarStore::new(Device::cuda_if_available());
    let exec = Executor::new(&vs.root(), &graph)?;
    if let Some(p) = params.filter(|p| !p.is_empty()) {
        set_params(&vs, &p).context("the graph file's parameters")?;
    }
    if let Some(c) = &args.checkpoint {
        load_params(&mut vs, c)?;
    }
    Ok(Loaded { graph, vs, exec })
}

fn load_data(args: &DataArgs, graph: &Graph, split: Split) -> Result<Classification> {
    let ds = Dataset::parse(&args.dataset).ok_or_else(|| {
        anyhow!(
            "unknown dataset `{}`; ksnn reads {}",
            args.dataset,
            Dataset::NAMES.join(", ")
        )
    })?;
    let mut d = ds
        .load(&args.data, split, graph.input.h as usize)
        .with_context(|| {
            format!(
                "loading {} (run tools/setup.sh, or pass --data)",
                args.dataset
            )
        })?;
    let have = Shape::new(d.channels as u32, d.height as u32, d.width as u32);
    ensure!(
        have == graph.input,
        "{} images are {have}, but {} takes {}",
        args.dataset,
        graph.name,
        graph.input
    );
    if let Some(n) = args.limit {
        d.truncate(n);
    }
    Ok(d)
}

fn zoo(name: &str) -> Result<Graph> {
    ksnn_compiler::ir::zoo::build(name).ok_or_else(|| {
        anyhow!(
            "unknown model `{name}`; the zoo has: {}",
            ksnn_compiler::ir::zoo::MODELS.join(", ")
        )
    })
}

/// Loads parameters with a one-line error (libtorch's carry a C++ backtrace).
fn load_params(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    ensure!(
        path.is_file(),
        "{}: no such checkpoint file",
        path.display()
    );
    vs.load(path).map_err(|e| {
        let msg = e.to_string();
        anyhow!(
            "{}: {}",
            path.display(),
            msg.lines().next().unwrap_or("cannot load")
        )
    })
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
        Some(Command::Import {
            onnx,
            out,
            input_shape,
            mean,
            std,
            relu6_to_relu,
            maxpool_to_avgpool,
            strip_softmax,
        }) => {
            let opts = ImportOptions {
                input_shape,
                mean,
                std,
                strip_softmax,
            };
            let mut file = ksnn_compiler::onnx::import(&onnx, &opts)?;
            if relu6_to_relu {
                let n = rewrite::relu6_to_relu(&mut file.graph);
                println!("replaced {n} ReLU6 by ReLU");
            }
            if maxpool_to_avgpool {
                let n = rewrite::maxpool_to_avgpool(&mut file.graph);
                println!("replaced {n} max pools by average pools");
            }
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            file.save(&out)?;
            println!("{}", summary(&file.graph)?);
            println!("from {}; written to {}", file.source, out.display());
            Ok(())
        }
        Some(Command::Info { model }) => {
            let graph = match (&model.source.model, &model.source.from) {
                (Some(name), _) => zoo(name)?,
                (None, Some(path)) => GraphFile::load(path)?.graph,
                (None, None) => bail!("pass --model NAME or --from FILE"),
            };
            print!("{}", table(&graph)?);
            println!("{}", summary(&graph)?);
            Ok(())
        }
        Some(Command::Train {
            model,
            data,
            epochs,
            batch,
            lr,
            optimizer,
            momentum,
            weight_decay,
            schedule,
            warmup_steps,
            out,
        }) => {
            ensure!(
                out.extension().is_some_and(|e| e == "safetensors"),
                "--out {}: checkpoints are safetensors files; name it *.safetensors",
                out.display()
            );
            let m = load_model(&model)?;
            let train_set = load_data(&data, &m.graph, Split::Train)?;
            let test_set = load_data(&data, &m.graph, Split::Test)?;
            println!(
                "training {} ({} parameters) on {} images, testing on {}",
                m.graph.name,
                m.graph.parameters(),
                train_set.len(),
                test_set.len()
            );
            let cfg = TrainConfig {
                epochs,
                batch,
                lr,
                optimizer: match optimizer.as_str() {
                    "adam" => Optimizer::Adam,
                    "sgd" => Optimizer::Sgd {
                        momentum,
                        weight_decay,
                    },
                    o => bail!("unknown optimizer `{o}`; use adam or sgd"),
                },
                schedule: parse_schedule(&schedule)?,
                warmup_steps,
                ..Default::default()
            };
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
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            m.vs.save(&out)
                .with_context(|| format!("saving {}", out.display()))?;
            println!(
                "trained in {:.1} s; parameters in {}",
                started.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Some(Command::Eval { model, data }) => {
            let m = load_model(&model)?;
            let test_set = load_data(&data, &m.graph, Split::Test)?;
            println!(
                "{}: test accuracy {:.2}% on {} images",
                m.graph.name,
                100.0 * train::evaluate(&m.exec, &test_set, 256),
                test_set.len()
            );
            Ok(())
        }
    }
}

/// One line: nodes, parameters, ReLU layers, output shapes.
fn summary(g: &Graph) -> Result<String> {
    let shapes = g.shapes()?;
    let outs: Vec<String> = g
        .outputs
        .iter()
        .map(|&o| shapes[o as usize].to_string())
        .collect();
    Ok(format!(
        "{}: input {}, {} nodes, {} parameters, {} ReLU layers, output {}",
        g.name,
        g.input,
        g.nodes.len(),
        g.parameters(),
        g.relu_layers().len(),
        outs.join(", ")
    ))
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
        let op = format!("{:?}", n.op);
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
