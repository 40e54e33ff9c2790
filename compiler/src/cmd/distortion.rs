//! `ksnn distortion` and `ksnn bench distortion`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use ksnn_compiler::data::Split;
use ksnn_compiler::distortion::store::{Item, Meta, Shard, Store, items};
use ksnn_compiler::distortion::{self, Clean};
use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::train;
use tch::{Device, Kind, Tensor, nn};

use super::{DataArgs, ModelArgs, fingerprint, load_data, load_model};

#[derive(clap::Args)]
pub struct DistortionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
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
    /// Images × perturbations per forward pass (memory against speed).
    #[arg(long, default_value_t = 4096)]
    pub batch_samples: usize,
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(total);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    b
}

pub fn run(a: &DistortionArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let layers = distortion::layers(&m.graph);
    ensure!(!layers.is_empty(), "{} has no ReLU layers", m.graph.name);
    let meta = Meta {
        model: m.graph.name.clone(),
        fingerprint: fingerprint(&a.model)?,
        images: a.images,
        layers: layers.clone(),
    };
    let store = Store::open(&a.out, meta)?;
    if !a.merge {
        let sample = load_data(&a.data, &m.graph, Split::Train)?.sample(a.images, 123);
        ensure!(!sample.is_empty(), "no training images");
        let (x, _) = train::tensors(&sample, &m.graph.mean, &m.graph.std);
        let clean = Clean::new(&m.exec, &x);
        let shard = a.shard.unwrap_or(Shard::ALL);
        let todo: Vec<Item> = items(&layers)
            .into_iter()
            .enumerate()
            .filter(|(i, item)| shard.owns(*i) && !store.done(item))
            .map(|(_, item)| item)
            .collect();
        let total: u64 = todo
            .iter()
            .map(|i| (i.channels.len() * layers[i.layer].options.len()) as u64)
            .sum();
        println!(
            "{}: {} layers, {} channels; shard {}/{}: {} perturbations to measure on {} images",
            m.graph.name,
            layers.len(),
            layers.iter().map(|l| l.channels).sum::<u32>(),
            shard.index,
            shard.count,
            total,
            sample.len()
        );
        let how = distortion::Measure {
            per_pass: (a.batch_samples / sample.len()).max(1),
            dedup: true,
        };
        let progress = bar(total, "distortion");
        let started = Instant::now();
        for item in &todo {
            let layer = &layers[item.layer];
            progress.set_message(layer.name.clone());
            let noise = distortion::measure(
                &m.exec,
                &clean,
                layer,
                item.channels.clone(),
                how,
                &mut |k| progress.inc(k),
            );
            store.save(item, &noise)?;
        }
        progress.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "measured {total} perturbations in {secs:.1} s ({:.0} per second)",
            total as f64 / secs.max(1e-9)
        );
    }
    if a.merge || a.shard.is_none() {
        let d = store.merge()?;
        println!(
            "{}: {} layers, {} channel rows, written {}",
            d.model,
            d.layers.len(),
            d.layers.iter().map(|l| l.noise.len()).sum::<usize>(),
            a.out.join("distortion.json").display()
        );
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Perturbations per second, ksnn's way (batched, identical perturbations measured once)
    /// vs the original's (one perturbation per forward pass), on a zoo model with random
    /// weights and random images.
    Distortion {
        #[arg(long, default_value = "resnet18-cifar")]
        model: String,
        /// Images per perturbation.
        #[arg(long, default_value_t = 8)]
        images: usize,
        /// Channels measured per layer (all candidates of each).
        #[arg(long, default_value_t = 1)]
        channels: u32,
        #[arg(long, default_value_t = 2048)]
        batch_samples: usize,
    },
}

pub fn bench(b: BenchCommand) -> Result<()> {
    let BenchCommand::Distortion {
        model,
        images,
        channels,
        batch_samples,
    } = b;
    tch::manual_seed(0);
    let graph = super::zoo(&model)?;
    let vs = nn::VarStore::new(Device::cuda_if_available());
    let exec = Executor::new(&vs.root(), &graph)?;
    let s = graph.input;
    let x = Tensor::randn(
        [images as i64, s.c.into(), s.h.into(), s.w.into()],
        (Kind::Float, vs.device()),
    );
    let clean = Clean::new(&exec, &x);
    let layers = distortion::layers(&graph);
    println!(
        "{model}: {} layers, {images} images, {channels} channel(s) per layer with all candidates; {} threads, {:?}",
        layers.len(),
        tch::get_num_threads(),
        vs.device()
    );
    println!(
        "{:14} {:>6} {:>8} {:>12} {:>12} {:>8}",
        "layer", "shape", "perturb.", "batched/s", "single/s", "speedup"
    );
    let (mut tb, mut ts, mut total) = (0.0, 0.0, 0u64);
    for l in &layers {
        let n = (channels.min(l.channels) as usize * l.options.len()) as u64;
        let time = |how: distortion::Measure| {
            let t = Instant::now();
            let out = distortion::measure(
                &exec,
                &clean,
                l,
                0..channels.min(l.channels),
                how,
                &mut |_| {},
            );
            (t.elapsed().as_secs_f64(), out)
        };
        let (b_secs, b_out) = time(distortion::Measure {
            per_pass: (batch_samples / images).max(1),
            dedup: true,
        });
        let (s_secs, s_out) = time(distortion::Measure {
            per_pass: 1,
            dedup: false,
        });
        // Both ways measure the same thing.
        for (rb, rs) in b_out.iter().zip(&s_out) {
            for (vb, vs) in rb.iter().zip(rs) {
                ensure!(
                    (vb - vs).abs() <= 1e-6 * (1.0 + vs.abs()),
                    "{}: batched {vb} vs single {vs}",
                    l.name
                );
            }
        }
        println!(
            "{:14} {:>6} {:>8} {:>12.0} {:>12.0} {:>7.1}x",
            l.name,
            format!("{}@{}", l.channels, l.h),
            n,
            n as f64 / b_secs,
            n as f64 / s_secs,
            s_secs / b_secs
        );
        tb += b_secs;
        ts += s_secs;
        total += n;
    }
    println!(
        "all layers: {total} perturbations; batched {:.0}/s, one at a time {:.0}/s: {:.1}x",
        total as f64 / tb,
        total as f64 / ts,
        ts / tb
    );
    Ok(())
}
