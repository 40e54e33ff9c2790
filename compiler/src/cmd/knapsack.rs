//! `ksnn knapsack` (block sizes under a DReLU budget) and `ksnn spec import`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ksnn_formats::BlockSpec;
use ksnn_knapsack::Solver;

use crate::stages::knapsack::{Budget, KnapsackConfig, write_spec};

/// `ksnn knapsack`'s options; they become a [`KnapsackConfig`].
#[derive(clap::Args)]
pub struct KnapsackArgs {
    /// `distortion.json` from `ksnn distortion`.
    #[arg(long)]
    pub distortion: PathBuf,
    /// Budget as a fraction of the model's DReLUs with plain ReLUs (0.06 = 6 %).
    #[arg(
        long,
        conflicts_with = "max_drelus",
        required_unless_present = "max_drelus"
    )]
    pub ratio: Option<f64>,
    /// Budget in DReLUs per inference.
    #[arg(long)]
    pub max_drelus: Option<u64>,
    /// The solver: lagrangian reports a certified optimality gap; exact is for small budgets.
    #[arg(long, value_enum, default_value_t = Solver::Lagrangian)]
    pub solver: Solver,
    /// Where to write the block spec (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

impl TryFrom<&KnapsackArgs> for KnapsackConfig {
    type Error = anyhow::Error;

    fn try_from(a: &KnapsackArgs) -> Result<Self> {
        Ok(Self {
            distortion: a.distortion.clone(),
            budget: match (a.ratio, a.max_drelus) {
                (Some(r), None) => Budget::Ratio(r),
                (None, Some(m)) => Budget::Drelus(m),
                _ => bail!("pass exactly one of --ratio and --max-drelus"),
            },
            solver: a.solver,
            out: a.out.clone(),
        })
    }
}

/// `ksnn spec` subcommands.
#[derive(clap::Subcommand)]
pub enum SpecCommand {
    /// Convert the original's block-spec pickle (layer → int [C,2] arrays) to ksnn's JSON.
    Import {
        /// The pickle file (a dict of layer name → NumPy int array of shape [C, 2]).
        pickle: PathBuf,
        /// Where to write the JSON block spec.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a `ksnn spec` subcommand: reads the pickle with the safe reader and writes the JSON spec.
pub fn spec(c: SpecCommand) -> Result<()> {
    let SpecCommand::Import { pickle, out } = c;
    let bytes = std::fs::read(&pickle).with_context(|| format!("reading {}", pickle.display()))?;
    let layers = ksnn_graph::spec::pickle::read_block_spec(&bytes)
        .with_context(|| format!("{}", pickle.display()))?;
    let spec = BlockSpec { layers };
    write_spec(&spec, &out)?;
    println!(
        "{} layers, {} channels written to {}",
        spec.layers.len(),
        spec.channels(),
        out.display()
    );
    Ok(())
}
