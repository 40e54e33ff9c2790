//! The `ksnn` subcommands, one module each, and what they share: choosing a model and its
//! parameters, loading a dataset.

pub mod compile;
pub mod distortion;
pub mod knapsack;
pub mod model;
pub mod pipeline;
pub mod sweep;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ksnn_compiler::data::{Classification, Dataset, Split};
use ksnn_compiler::torch::executor::{Executor, set_params};
use ksnn_formats::{ContentHash, Shape};
use ksnn_graph::ir::{Graph, GraphFile, Params};
use tch::{Device, nn};

/// Which model, and which parameters to start from.
#[derive(clap::Args)]
#[group(required = true, multiple = false, id = "source")]
pub struct ModelSource {
    /// A zoo model.
    #[arg(long, group = "source")]
    pub model: Option<String>,
    /// A graph file written by `ksnn import` (its parameters are the starting point).
    #[arg(long, group = "source")]
    pub from: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub source: ModelSource,
    /// Parameters saved by `ksnn train` (safetensors); they replace the starting point.
    #[arg(long, alias = "resume")]
    pub checkpoint: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DataArgs {
    /// Dataset root (tools/setup.sh installs MNIST in ./data/mnist).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// mnist, cifar10 (ROOT/cifar-10-batches-bin), cifar100 (ROOT/cifar-100-binary) or
    /// folders (ROOT/train, ROOT/val with a folder per class).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Use only the first N images of each split (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn parse_shape(s: &str) -> Result<Shape, String> {
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
pub struct Loaded {
    pub graph: Graph,
    pub vs: nn::VarStore,
    pub exec: Executor,
}

impl ModelSource {
    /// The graph, and the graph file's parameters when it is a file.
    pub fn load(&self) -> Result<(Graph, Option<Params>)> {
        match (&self.model, &self.from) {
            (Some(name), _) => Ok((zoo(name)?, None)),
            (None, Some(path)) => {
                let f = GraphFile::load(path)?;
                Ok((f.graph, Some(f.params)))
            }
            (None, None) => bail!("pass --model NAME or --from FILE"),
        }
    }
}

pub fn load_model(args: &ModelArgs) -> Result<Loaded> {
    let (graph, params) = args.source.load()?;
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

pub fn load_data(args: &DataArgs, graph: &Graph, split: Split) -> Result<Classification> {
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

pub fn zoo(name: &str) -> Result<Graph> {
    ksnn_graph::ir::zoo::build(name).ok_or_else(|| {
        anyhow!(
            "unknown model `{name}`; the zoo has: {}",
            ksnn_graph::ir::zoo::MODELS.join(", ")
        )
    })
}

/// Loads parameters with a one-line error (libtorch's carry a C++ backtrace).
pub fn load_params(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
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

/// Identifies a model and its parameters (graph, graph file, checkpoint bytes), so cached
/// work is reused only for the same model.
pub fn fingerprint(args: &ModelArgs) -> Result<String> {
    let mut bytes = Vec::new();
    if let Some(m) = &args.source.model {
        bytes.extend_from_slice(m.as_bytes());
    }
    for p in [&args.source.from, &args.checkpoint].into_iter().flatten() {
        bytes.extend(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    Ok(ContentHash::of(&bytes).to_string())
}
