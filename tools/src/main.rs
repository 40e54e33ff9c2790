//! `ksnn-tools`: look inside ksnn files, write example files, (later) keys and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_kernels;
mod bench_knapsack;
mod bench_model;
mod bench_soak;
mod inspect;
mod sample;
mod synthetic;

/// Utilities around ksnn programs, weight files, block specs and reports.
///
/// Examples:
///   ksnn-tools sample --out runs/example
///   ksnn-tools inspect runs/example/model.ksnn
///   ksnn-tools inspect runs/example/weights.ksnw --program runs/example/model.ksnn
///   ksnn-tools inspect runs/example/spec.json --program runs/example/model.ksnn
///   ksnn-tools keygen --out certs/
///   ksnn-tools bench net --mib 256
///   ksnn-tools bench knapsack
///   ksnn-tools bench kernels --model resnet50
///   ksnn-tools bench model --model resnet18-cifar --uniform 4x4 --images 3
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
    /// Write a certificate authority and one certificate and key per party (ca.pem, p0.pem,
    /// p0.key, p1.…, p2.…) for mutual TLS between the parties. Copy ca.pem and a party's own
    /// pair to each host; keep ca.key offline. Keys are written readable by their owner only.
    ///
    /// With `--renew`, re-issue p0/p1/p2 from the existing ca.key (ca.pem stays valid, so no
    /// host needs a new one). With `--client NAME`, issue one client its own P0 certificate
    /// (clients/NAME.pem and .key); the daemons' logs name the client. With `--revoke NAME`,
    /// add that certificate to the revocation list crl.pem.
    Keygen {
        /// Directory to write into (created), or that holds ca.key for --renew / --client.
        #[arg(long)]
        out: PathBuf,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = ksnn_runtime::net::tls::DEFAULT_DAYS)]
        days: u32,
        /// Re-issue the three party certificates with the existing CA.
        #[arg(long, conflicts_with = "client")]
        renew: bool,
        /// Issue a named client certificate with the existing CA.
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// Revoke a client's certificate (NAME from --client, or p0): rewrites crl.pem, which
        /// daemons read at start (`crl` in their configuration).
        #[arg(long, value_name = "NAME", conflicts_with_all = ["client", "renew"])]
        revoke: Option<String>,
    },
    /// Benchmarks that print numbers.
    #[command(subcommand)]
    Bench(Bench),
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

#[derive(Subcommand)]
enum Bench {
    /// Throughput between two parties: in memory and over TLS on loopback.
    Net {
        /// MiB to send.
        #[arg(long, default_value_t = 256)]
        mib: usize,
    },
    /// Honest clients and a hostile one at once against real daemons on loopback (needs
    /// ksnn-party next to this binary): every honest answer must equal the reference; prints
    /// the daemons' memory before, at peak and after.
    Soak {
        /// Honest clients running at the same time.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Inferences per honest client.
        #[arg(long, default_value_t = 200)]
        n: usize,
    },
    /// The linear-layer kernels on a zoo model's convolution shapes: whole convolutions, the
    /// GEMMs alone (AVX2 and portable builds), and this machine's f64 GEMM rate on the same
    /// shapes, in G multiply-adds per second.
    Kernels {
        /// Zoo model whose convolutions to run.
        #[arg(long, default_value = "resnet50")]
        model: String,
        /// Runs per shape (the fastest counts).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// cpu: the CPU builds; cuda: also the CUDA device's u64 kernel (with its transfers),
        /// or an error without a driver.
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
        backend: String,
    },
    /// Knapsack solvers on synthetic instances with the seed's real shapes and budgets.
    Knapsack {
        /// Seed for the synthetic distortions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also run the exact DP on the large instances (minutes for ImageNet, hours for VOC).
        #[arg(long)]
        exact: bool,
    },
    /// A zoo model end to end: random parameters (He weights; batch norms that keep
    /// activations at unit scale), a block spec, lowering, and the three parties as
    /// processes over TLS on loopback (needs ksnn-party next to this binary; no dataset, no
    /// libtorch). Prints seconds offline/online per inference, throughput, bytes per party,
    /// rounds, the slowest layers, totals per layer kind and each party's peak memory; fails
    /// unless every secure prediction equals the cleartext reference.
    ///
    /// The spec: none = every ReLU plain; --uniform HxW = that block everywhere; --budget F
    /// = the knapsack over synthetic distortions (as `bench knapsack`) keeping F of all
    /// ReLUs' DReLUs; --spec FILE = a JSON, binary or pickle spec.
    ///
    /// Examples:
    ///   ksnn-tools bench model --model mnist-cnn --uniform 2x2 --images 2
    ///   ksnn-tools bench model --model resnet18-cifar --uniform 4x4 --images 3
    ///   ksnn-tools bench model --model resnet18-cifar --budget 0.06 --approx 5,48
    ///   ksnn-tools bench model --model resnet50-avgpool --uniform 4x4 --truncation exact
    ///   ksnn-tools bench model --model resnet18-cifar --spec spec.json --report r18.json --keep runs/r18
    #[command(verbatim_doc_comment)]
    Model(bench_model::ModelArgs),
}

/// The `ksnn-party` binary next to this one (the benchmarks that run real daemons need it).
fn party_binary() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let party = std::env::current_exe()?
        .parent()
        .context("this binary has no directory")?
        .join("ksnn-party");
    anyhow::ensure!(
        party.exists(),
        "{} is missing: build it first (cargo build --release -p ksnn-party)",
        party.display()
    );
    Ok(party)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file, program } => inspect::run(&file, program.as_deref()),
        Command::Sample { out, seed } => sample::run(&out, seed),
        Command::Keygen {
            out,
            days,
            renew,
            client,
            revoke,
        } => keygen(&out, days, renew, client.as_deref(), revoke.as_deref()),
        Command::Bench(Bench::Net { mib }) => bench::net(mib),
        Command::Bench(Bench::Kernels {
            model,
            reps,
            backend,
        }) => bench_kernels::run(&model, reps, backend == "cuda"),
        Command::Bench(Bench::Knapsack { seed, exact }) => bench_knapsack::run(seed, exact),
        Command::Bench(Bench::Soak { clients, n }) => bench_soak::run(clients, n),
        Command::Bench(Bench::Model(args)) => bench_model::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(
    out: &std::path::Path,
    days: u32,
    renew: bool,
    client: Option<&str>,
    revoke: Option<&str>,
) -> anyhow::Result<()> {
    use ksnn_runtime::net::tls;
    let written = match (renew, client, revoke) {
        (_, _, Some(name)) => tls::revoke(out, name, days)?,
        (true, _, _) => tls::renew(out, days)?,
        (false, Some(name), _) => tls::issue_client(out, name, days)?,
        (false, None, None) => tls::generate_for(out, days)?,
    };

    for path in written {
        println!("wrote {}", path.display());
    }
    println!("valid for {days} days");
    if revoke.is_some() {
        println!("copy crl.pem to the server and the helper and restart them");
    } else if client.is_none() {
        println!(
            "copy ca.pem plus p0.*, p1.* or p2.* to the client, server and helper hosts; keep ca.key offline"
        );
    }
    Ok(())
}
