//! The `ksnn` subcommands, one module each: their command-line options and the conversion
//! into the typed configs of [`crate::stages`], which do the work. Here: the options every
//! subcommand shares (the model, the dataset).

pub mod compile;
pub mod distortion;
pub mod knapsack;
pub mod model;
pub mod pipeline;
pub mod sweep;
pub mod train;

use std::path::PathBuf;

use anyhow::{Result, bail};
use ksnn_compiler::data::Dataset;
use ksnn_formats::Shape;

use crate::stages::{Data, Model, ModelSource as Source};

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

/// The model options every model-taking subcommand flattens in: `--model`/`--from` and
/// `--checkpoint`.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// `--model NAME` or `--from GRAPH` (exactly one).
    #[command(flatten)]
    pub source: ModelSource,
    /// Parameters saved by `ksnn train` (safetensors); they replace the starting point.
    #[arg(long, alias = "resume")]
    pub checkpoint: Option<PathBuf>,
}

/// The dataset options every data-taking subcommand flattens in: `--data`, `--dataset`, `--limit`.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Dataset root (tools/setup.sh installs MNIST in ./data/mnist).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// mnist, cifar10 (ROOT/cifar-10-batches-bin), cifar100 (ROOT/cifar-100-binary) or
    /// folders (ROOT/train, ROOT/val with a folder per class).
    #[arg(long, value_enum, default_value_t = Dataset::Mnist)]
    pub dataset: Dataset,
    /// Use only the first N images of each split (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Parses `C,H,W` (`--input-shape 1,28,28`) for clap; the error says which part is wrong.
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

impl TryFrom<&ModelArgs> for Model {
    type Error = anyhow::Error;

    fn try_from(a: &ModelArgs) -> Result<Self> {
        let source = match (&a.source.model, &a.source.from) {
            (Some(name), None) => Source::Zoo(name.clone()),
            (None, Some(path)) => Source::File(path.clone()),
            _ => bail!("pass one of --model NAME and --from FILE"),
        };
        Ok(Model {
            source,
            init: None,
            checkpoint: a.checkpoint.clone(),
        })
    }
}

impl From<&DataArgs> for Data {
    fn from(a: &DataArgs) -> Self {
        Data {
            root: a.data.clone(),
            dataset: a.dataset,
            limit: a.limit,
        }
    }
}
