//! `ksnn-party`: the one binary a party host installs. It links no libtorch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ksnn_formats::{DreluProtocol, Program};
use ksnn_runtime::backend::BackendChoice;

mod client;
mod config;
mod daemon;
mod health;
mod input;
mod launcher;
mod setup;

/// Runs a ksnn program as one of the three parties: P0 the client (owns the input, gets the
/// answer), P1 the server (owns the weights), P2 the helper (deals correlated randomness and
/// learns nothing). Parties talk over TLS with mutual authentication; certificates come from
/// `ksnn-tools keygen`.
///
/// Every party loads the public program (model.ksnn); only the server also loads the weight
/// file (weights.ksnw).
///
/// Three hosts:  server$ ksnn-party serve --config p1.toml
///               helper$ ksnn-party serve --config p2.toml
///               client$ ksnn-party infer --config p0.toml --dataset mnist --n 100
/// Reachable?    ksnn-party health --config p0.toml
/// One machine:  ksnn-party local --model model.ksnn --weights weights.ksnw --dataset mnist --n 100
#[derive(Parser)]
#[command(name = "ksnn-party", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct InputArgs {
    /// Image files to classify: PNG, JPEG or NPY (H×W or C×H×W, values in [0, 1]).
    #[arg(long, num_args = 1.., conflicts_with = "dataset")]
    input: Vec<PathBuf>,
    /// A dataset instead of files: `mnist` (its test split).
    #[arg(long)]
    dataset: Option<String>,
    /// How many dataset images.
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Where the datasets are (default: $KSNN_DATA, else ./data).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct OutputArgs {
    /// Also write the outputs as NPY, one row per input: a classifier's decoded logits, a
    /// segmentor's label map (class per pixel; the maps are also `seg-<id>.png` beside the
    /// report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to write the report.
    #[arg(long, default_value = "report.json")]
    report: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run P1 (server) or P2 (helper) as a daemon that serves many clients, each session
    /// isolated. Stops on Ctrl-C.
    #[command(after_help = config::KEYS_HELP)]
    Serve {
        /// The party's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run P0 (client): classify images with the server and helper, print the answers and
    /// write report.json.
    #[command(after_help = config::KEYS_HELP)]
    Infer {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        outputs: OutputArgs,
    },
    /// Start all three parties as separate processes on 127.0.0.1 with fresh certificates,
    /// run, check against the cleartext reference, write the outputs and the report, and
    /// stop them.
    Local {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        outputs: OutputArgs,
        /// Seconds a party waits for a peer before giving up.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Inferences whose offline pass runs ahead of their input (the client's `ahead`).
        #[arg(long, default_value_t = 0)]
        ahead: usize,
        /// Simulated one-way latency added to every protocol message, for benchmarks: each
        /// message is held this long after it arrives (milliseconds, 0 to 10000).
        #[arg(long, default_value_t = 0.0)]
        latency_ms: f64,
        /// Where the linear layers' products run: auto (a CUDA device when a driver is
        /// present, else the CPU), cpu, or cuda (an error without a driver).
        #[arg(long, default_value = "auto")]
        backend: BackendChoice,
    },
    /// Check the party's network path: a daemon, that its listen address accepts connections;
    /// a client, that the server and the helper do (plain TCP, no TLS). Exits non-zero naming
    /// what is unreachable. For container health checks and first deployments.
    #[command(after_help = config::KEYS_HELP)]
    Health {
        #[arg(long)]
        config: PathBuf,
    },
    /// Load and validate the files a party needs, exactly as the party does at start-up, and
    /// print what it would run.
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

fn samples(args: &InputArgs, program: &Program) -> Result<Vec<input::Sample>> {
    let shape = program.input.shape;
    match args.dataset.as_deref() {
        Some("mnist") => {
            let data = args
                .data
                .clone()
                .or_else(|| std::env::var_os("KSNN_DATA").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("data"));
            input::mnist_test(&data, args.n, shape)
        }
        Some(other) => anyhow::bail!("unknown dataset `{other}` (the party binary knows `mnist`)"),
        None => args
            .input
            .iter()
            .map(|p| input::load_file(p, shape))
            .collect(),
    }
}

fn client_args(args: &InputArgs) -> Vec<String> {
    let mut v = Vec::new();
    for p in &args.input {
        v.push("--input".into());
        v.push(p.display().to_string());
    }
    if let Some(d) = &args.dataset {
        v.extend([
            "--dataset".into(),
            d.clone(),
            "--n".into(),
            args.n.to_string(),
        ]);
    }
    if let Some(d) = &args.data {
        v.extend(["--data".into(), d.display().to_string()]);
    }
    v
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config } => daemon::serve(config::Config::load(&config)?),
        Command::Infer {
            config,
            inputs,
            outputs: OutputArgs { out, report },
        } => {
            let cfg = config::Config::load(&config)?;
            anyhow::ensure!(
                cfg.role == ksnn_runtime::role::Role::Client,
                "{}: `infer` runs the client; this configuration is for the {}",
                config.display(),
                cfg.role
            );
            let (program, _) = setup::load_files(&cfg.model, None)?;
            let samples = samples(&inputs, &program)?;
            client::infer(cfg, samples, out.as_deref(), &report)
        }
        Command::Local {
            model,
            weights,
            inputs,
            outputs: OutputArgs { out, report },
            timeout,
            ahead,
            latency_ms,
            backend,
        } => {
            config::latency(latency_ms, "--latency-ms")?;
            if backend == BackendChoice::Cuda {
                // Before any daemon starts: a missing driver is one clear error, not three.
                ksnn_runtime::backend::install(backend).context("--backend cuda")?;
            }
            let (program, _) = setup::load_files(&model, None)?;
            let samples = samples(&inputs, &program)?;
            let args = client_args(&inputs);
            launcher::local(
                &model,
                &weights,
                &samples,
                &args,
                out.as_deref(),
                &report,
                launcher::Knobs {
                    timeout,
                    ahead,
                    latency_ms,
                    backend,
                },
            )
        }
        Command::Health { config } => health::check(&config::Config::load(&config)?),
        Command::Check { model, weights } => {
            let (program, weights) = setup::load_files(&model, weights.as_deref())?;
            let costs = program.costs()?;
            println!(
                "program {} ({}): input {}, {} layers, {} DReLUs per inference",
                program.name,
                program.content_hash().short(),
                program.input.shape,
                program.layers.len(),
                costs.iter().map(|c| c.drelus).sum::<u64>()
            );
            let proto = program.protocol;
            let drelu = match proto.drelu {
                DreluProtocol::SecureNn => {
                    "securenn DReLU (wrap-bit comparison, 4 online rounds)".to_string()
                }
                DreluProtocol::Fss => format!(
                    "fss DReLU (helper-dealt comparison keys, one online round; {:.2} MB of keys dealt per inference)",
                    program.dealt_key_bytes()? as f64 / 1e6
                ),
            };
            println!(
                "protocol: {drelu}, comparison on {} bits after a shift of {}, {:?} truncation",
                proto.approx.compared_bits(),
                proto.approx.k,
                proto.truncation
            );
            if let Some(w) = weights {
                let params: usize = w.content.tensors.iter().map(|t| t.data.len()).sum();
                println!("weights match the program: {params} parameters");
            }
            Ok(())
        }
    }
}
