//! `ksnn-tools`: look inside ksnn files, write example files, (later) keys and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;
mod sample;

/// Utilities around ksnn programs, weight files, block specs and reports.
///
/// Examples:
///   ksnn-tools sample --out runs/example
///   ksnn-tools inspect runs/example/model.ksnn
///   ksnn-tools inspect runs/example/weights.ksnw --program runs/example/model.ksnn
///   ksnn-tools inspect runs/example/spec.json --program runs/example/model.ksnn
#[derive(Parser)]
#[command(name = "ksnn-tools", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a program (model.ksnn), weight file (weights.ksnw), block spec (JSON or binary)
    /// or report.json readably: layers, shapes, DReLUs per layer and in total. The kind of
    /// file is recognised from its contents. Fails with a precise message on a bad file.
    Inspect {
        /// The file to show.
        file: PathBuf,
        /// Also check the file against this program: weights must belong to it, a spec must
        /// fit its layers (and its DReLUs are then counted on the real shapes).
        #[arg(long)]
        program: Option<PathBuf>,
    },
    /// Write a small example program that uses every layer kind, with pseudo-random weights
    /// and its block spec, to try the tools and the runtime on (not a trained model).
    Sample {
        /// Directory to write model.ksnn, weights.ksnw and spec.json into (created).
        #[arg(long)]
        out: PathBuf,
        /// Seed for the pseudo-random weights.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file, program } => inspect::run(&file, program.as_deref()),
        Command::Sample { out, seed } => sample::run(&out, seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
