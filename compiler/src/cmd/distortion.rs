//! `ksnn distortion` and `ksnn bench distortion`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail, ensure};
use ksnn_compiler::data::{Dataset, Split};
use ksnn_compiler::distortion::store::Shard;
use ksnn_compiler::distortion::{self, Clean, Measure};
use ksnn_compiler::torch::train;
use tch::{Kind, Tensor};

use super::{DataArgs, ModelArgs};
use crate::stages::distortion::DistortionConfig;
use crate::stages::{Data, Model, ModelSource, load_data, load_model};

/// `ksnn distortion`'s options; they become a [`DistortionConfig`].
#[derive(clap::Args)]
pub struct DistortionArgs {
    /// The trained model to measure.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The images come from this dataset's training split.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training images the distortion is averaged over (a fixed shuffle of the split).
    #[arg(long, default_value_t = 64)]
    pub images: usize,
    /// Output directory: finished work is kept there and skipped when the command runs
    /// again; `distortion.json` is written when all of it is done.
    #[arg(long)]
    pub out: PathBuf,
    /// Run only shard i of n (0-based), e.g. one per GPU or host; then `--merge`.
    #[arg(long, value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Only merge the finished shards into OUT/distortion.json.
    #[arg(long)]
    pub merge: bool,
    /// Images × perturbations per forward pass [default: 128 on a CPU, 4096 on a GPU].
    #[arg(long)]
    pub batch_samples: Option<usize>,
    /// Measure only these ReLU layers (comma-separated names); the knapsack then chooses
    /// blocks for them alone and the others keep plain ReLUs.
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
}

impl TryFrom<&DistortionArgs> for DistortionConfig {
    type Error = anyhow::Error;

    fn try_from(a: &DistortionArgs) -> Result<Self> {
        Ok(Self {
            model: Model::try_from(&a.model)?,
            data: Data::from(&a.data),
            images: a.images,
            out: a.out.clone(),
            shard: a.shard,
            merge: a.merge,
            batch_samples: a.batch_samples,
            layers: (!a.layers.is_empty()).then(|| a.layers.clone()),
        })
    }
}

/// `ksnn bench` subcommands.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Perturbations per second three ways on the same measurements: the original's (one
    /// perturbation per forward pass, every node after the layer on every image), batched
    /// (many perturbations per pass, identical ones measured once), and ksnn's (batched and
    /// channel-sparse: see `ksnn distortion`). Checks that all three give the same noise.
    Distortion {
        /// The zoo model to measure.
        #[arg(long, default_value = "resnet18-cifar")]
        model: String,
        /// Trained parameters (safetensors) instead of random ones.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Take the images from this dataset's training split (a fixed shuffle, as
        /// `ksnn distortion` does) instead of random ones.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The dataset under `--data`.
        #[arg(long, value_enum, default_value_t = Dataset::Mnist)]
        dataset: Dataset,
        /// Images per perturbation.
        #[arg(long, default_value_t = 8)]
        images: usize,
        /// Channels measured per layer (all candidates of each).
        #[arg(long, default_value_t = 1)]
        channels: u32,
        /// Rows (perturbation × image) per forward pass when batched [default: 128 on a
        /// CPU, 4096 on a GPU].
        #[arg(long)]
        batch_samples: Option<usize>,
        /// Only these ReLU layers (comma-separated names; default all).
        #[arg(long, value_delimiter = ',')]
        layers: Vec<String>,
    },
}

/// Runs a `ksnn bench` subcommand: times the three ways per layer, fails if their noise
/// differs beyond float rounding, and prints the rates and the whole-model estimates.
pub fn bench(b: BenchCommand) -> Result<()> {
    let BenchCommand::Distortion {
        model,
        checkpoint,
        data,
        dataset,
        images,
        channels,
        batch_samples,
        layers: only,
    } = b;
    tch::manual_seed(0);
    let m = load_model(&Model {
        source: ModelSource::Zoo(model.clone()),
        init: None,
        checkpoint,
    })?;
    let (graph, exec) = (&m.graph, &m.exec);
    let x = match data {
        Some(root) => {
            let d = Data {
                root,
                dataset,
                limit: None,
            };
            let sample = load_data(&d, graph, Split::Train)?.sample(images, 123);
            train::tensors(&sample, &graph.mean, &graph.std).0
        }
        None => {
            let s = graph.input;
            Tensor::randn(
                [images as i64, s.c.into(), s.h.into(), s.w.into()],
                (Kind::Float, exec.device()),
            )
        }
    };
    let batch_samples = batch_samples.unwrap_or_else(|| Measure::default_batch(exec.device()));
    let clean = Clean::new(exec, &x);
    let rms = clean.output().square().mean(Kind::Double).sqrt();
    let rms = f64::try_from(rms)?;
    let mut layers = distortion::layers(graph);
    if let Some(name) = only.iter().find(|n| !layers.iter().any(|l| &l.name == *n)) {
        bail!("{model} has no ReLU layer `{name}` (see `ksnn info --model {model}`)");
    }
    if !only.is_empty() {
        layers.retain(|l| only.contains(&l.name));
    }
    println!(
        "{model}: {} layers, {images} images, {channels} channel(s) per layer with all candidates; {} threads, {:?}",
        layers.len(),
        tch::get_num_threads(),
        exec.device()
    );
    println!(
        "{:16} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "layer", "shape", "perturb.", "one/s", "batched/s", "ksnn/s", "speedup", "rows ran"
    );
    let ways = [
        Measure::one_at_a_time(images),
        Measure {
            batch_samples,
            dedup: true,
            sparse: false,
        },
        Measure::fast(batch_samples),
    ];
    let mut secs = [0.0f64; 3];
    let mut total = 0u64;
    let mut rows = (0usize, 0usize);
    // Seconds for every channel of every layer at the measured per-layer rates.
    let mut whole = [0.0f64; 3];
    for l in &layers {
        let n = (channels.min(l.channels) as usize * l.options.len()) as u64;
        let mut rate = [0.0f64; 3];
        let mut outs = Vec::new();
        let mut ran = (0, 0);
        for (w, how) in ways.iter().enumerate() {
            let t = Instant::now();
            let out = distortion::measure(
                exec,
                &clean,
                l,
                0..channels.min(l.channels),
                *how,
                &mut |_| {},
            );
            let s = t.elapsed().as_secs_f64();
            secs[w] += s;
            rate[w] = n as f64 / s;
            ran = (out.rows_run, out.rows_all);
            outs.push(out.noise);
        }
        rows.0 += ran.0;
        rows.1 += ran.1;
        let every = (l.channels as usize * l.options.len()) as f64;
        for (t, r) in whole.iter_mut().zip(rate) {
            *t += every / r;
        }
        // All ways measure the same thing, up to float rounding: the sparse way adds the
        // first convolution's change to the clean output instead of convolving the sum, so
        // an output may move by about 1e-6·rms and the noise by 2·√noise times that.
        for out in &outs[1..] {
            for (r, r0) in out.iter().zip(&outs[0]) {
                for (v, v0) in r.iter().zip(r0) {
                    ensure!(
                        (v - v0).abs() <= 1e-4 * v0.sqrt() * rms + 1e-10 * rms * rms,
                        "{}: {v} vs one at a time {v0} (outputs rms {rms})",
                        l.name
                    );
                }
            }
        }
        println!(
            "{:16} {:>9} {:>8} {:>9.0} {:>9.0} {:>9.0} {:>7.1}x {:>7.1}%",
            l.name,
            format!("{}@{}x{}", l.channels, l.h, l.w),
            n,
            rate[0],
            rate[1],
            rate[2],
            rate[2] / rate[0],
            100.0 * ran.0 as f64 / ran.1.max(1) as f64
        );
        total += n;
    }
    let r = secs.map(|s| total as f64 / s);
    println!(
        "measured: {total} perturbations; one at a time {:.0}/s, batched {:.0}/s ({:.1}x), ksnn {:.0}/s ({:.1}x, {:.1}% of the rows ran)",
        r[0],
        r[1],
        r[1] / r[0],
        r[2],
        r[2] / r[0],
        100.0 * rows.0 as f64 / rows.1.max(1) as f64
    );
    println!(
        "every channel of these layers at these rates: one at a time {:.1} h, batched {:.1} h ({:.1}x), ksnn {:.1} h ({:.1}x)",
        whole[0] / 3600.0,
        whole[1] / 3600.0,
        whole[0] / whole[1],
        whole[2] / 3600.0,
        whole[0] / whole[2]
    );
    Ok(())
}
