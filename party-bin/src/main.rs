//! `ksnn-party`: the one binary a party host installs. It links no libtorch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ksnn_formats::{Program, Weights};

/// Runs a ksnn program as one of the three parties: P0 the client (owns the input, gets the
/// answer), P1 the server (owns the weights), P2 the helper (deals correlated randomness and
/// learns nothing).
///
/// Every party loads the public program (model.ksnn); only the server also loads the weight
/// file (weights.ksnw).
#[derive(Parser)]
#[command(name = "ksnn-party", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate the files a party needs, exactly as the party does at start-up, and
    /// print what it would run: program hash, input, outputs, DReLUs per inference.
    Check {
        /// The public program.
        #[arg(long)]
        model: PathBuf,
        /// The server's weight file; checked to belong to the program.
        #[arg(long)]
        weights: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { model, weights } => {
            let bytes = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let program =
                Program::decode(&bytes).with_context(|| format!("{}", model.display()))?;
            let costs = program.costs()?;
            println!(
                "program {} ({}): input {}, {} layers, {} DReLUs per inference",
                program.name,
                program.content_hash().short(),
                program.input.shape,
                program.layers.len(),
                costs.iter().map(|c| c.drelus).sum::<u64>()
            );
            if let Some(path) = weights {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let w = Weights::decode(&bytes).with_context(|| format!("{}", path.display()))?;
                w.check_against(&program)
                    .with_context(|| format!("{}", path.display()))?;
                let params: usize = w.content.tensors.iter().map(|t| t.data.len()).sum();
                println!("weights match the program: {params} parameters");
            }
            Ok(())
        }
    }
}
