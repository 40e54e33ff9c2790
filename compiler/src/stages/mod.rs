//! The work of each `ksnn` stage, with typed configs: the `cmd` modules turn command lines into
//! these, and `ksnn pipeline` builds them from an experiment file, so both run the same code.
//! This module holds what the stages share: which model, which data, loading both.

pub mod compile;
pub mod distortion;
pub mod import;
pub mod knapsack;
pub mod sweep;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use ksnn_compiler::data::{Classification, Dataset, Split};
use ksnn_compiler::experiment::name_of;
use ksnn_compiler::torch::executor::{Executor, set_params};
use ksnn_compiler::torch::pretrained::{self, Init};
use ksnn_formats::{ContentHash, Shape};
use ksnn_graph::ir::{Graph, GraphFile, Params};
use tch::{Device, nn};

/// Where a model's graph (and starting parameters) come from.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A zoo model (random starting parameters).
    Zoo(String),
    /// A graph file written by `ksnn import`, with its parameters.
    File(PathBuf),
}

/// A model and the parameters to start from.
#[derive(Clone, Debug)]
pub struct Model {
    /// Where the graph (and, for a graph file, its initial parameters) comes from.
    pub source: ModelSource,
    /// A pretrained state dict in another framework's names (`--init`/`--map`); it replaces
    /// the graph file's parameters, and a checkpoint replaces it.
    pub init: Option<Init>,
    /// Parameters saved by `ksnn train`; they replace the starting point.
    pub checkpoint: Option<PathBuf>,
}

/// A dataset and how much of it to use.
#[derive(Clone, Debug)]
pub struct Data {
    /// The data root (`--data`): the folder holding each dataset's usual folder, or that
    /// folder itself.
    pub root: PathBuf,
    /// Which dataset and on-disk layout to read; its image shape must equal the model's input.
    pub dataset: Dataset,
    /// Only the first N images of each split (quick runs).
    pub limit: Option<usize>,
}

/// A model ready to run: its graph, parameters in a var store, and the executor.
pub struct Loaded {
    /// The model's IR as loaded; it fixes the input shape, mean/std and the ReLU-layer names.
    pub graph: Graph,
    /// The trainable parameters (on the GPU when present), named after the graph's nodes;
    /// what a checkpoint saves.
    pub vs: nn::VarStore,
    /// Runs `graph` with the parameters in `vs`; carries the block spec when one is installed.
    pub exec: Executor,
}

impl ModelSource {
    /// The graph, and the graph file's parameters when it is a file.
    pub fn load(&self) -> Result<(Graph, Option<Params>)> {
        match self {
            ModelSource::Zoo(name) => Ok((zoo(name)?, None)),
            ModelSource::File(path) => {
                let f = GraphFile::load(path)?;
                Ok((f.graph, Some(f.params)))
            }
        }
    }
}

/// Builds the model on the best device, then overwrites its fresh parameters with the graph
/// file's, the pretrained file's and then the checkpoint's (the later source wins).
pub fn load_model(model: &Model) -> Result<Loaded> {
    let (graph, params) = model.source.load()?;
    let mut vs = nn::VarStore::new(Device::cuda_if_available());
    let exec = Executor::new(&vs.root(), &graph)?;
    if let Some(p) = params.filter(|p| !p.is_empty()) {
        set_params(&vs, &p).context("the graph file's parameters")?;
    }
    if let Some(init) = &model.init {
        let plan = pretrained::load(&vs, &graph, init)?;
        println!(
            "initialised {} tensors of {} from {} (--map {})",
            plan.names.len(),
            graph.name,
            init.path.display(),
            init.naming
        );
        if !plan.skipped.is_empty() {
            println!(
                "skipped {} training-only tensors: {}",
                plan.skipped.len(),
                plan.skipped.join(", ")
            );
        }
    }
    if let Some(c) = &model.checkpoint {
        load_params(&mut vs, c)?;
    }
    Ok(Loaded { graph, vs, exec })
}

/// One split of `data` at the model's input size, cut to `data.limit`; an image shape other
/// than the graph's input is an error naming both.
pub fn load_data(data: &Data, graph: &Graph, split: Split) -> Result<Classification> {
    let name = name_of(&data.dataset);
    let mut d = data
        .dataset
        .load(&data.root, split, graph.input.h as usize)
        .with_context(|| format!("loading {name} (run tools/setup.sh, or pass --data)"))?;
    let have = Shape::new(d.channels as u32, d.height as u32, d.width as u32);
    ensure!(
        have == graph.input,
        "{name} images are {have}, but {} takes {}",
        graph.name,
        graph.input
    );
    if let Some(n) = data.limit {
        d.truncate(n);
    }
    Ok(d)
}

/// Builds the zoo model `name`; an unknown name is an error listing the zoo.
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

/// Identifies a model and its parameters (graph, graph file, pretrained file and its naming,
/// checkpoint bytes), so cached work is reused only for the same model.
pub fn fingerprint(model: &Model) -> Result<String> {
    let mut bytes = Vec::new();
    let file = match &model.source {
        ModelSource::Zoo(m) => {
            bytes.extend_from_slice(m.as_bytes());
            None
        }
        ModelSource::File(p) => Some(p),
    };
    if let Some(init) = &model.init {
        bytes.extend_from_slice(init.naming.as_str().as_bytes());
    }
    let init = model.init.as_ref().map(|i| &i.path);
    for p in [file, init, model.checkpoint.as_ref()]
        .into_iter()
        .flatten()
    {
        bytes.extend(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    Ok(ContentHash::of(&bytes).to_string())
}
