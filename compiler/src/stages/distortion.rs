//! Distortion: how much each (ReLU layer, channel, block size) choice moves the model's
//! outputs, measured resumably and shardably into a store.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use ksnn_compiler::data::Split;
use ksnn_compiler::distortion::store::{Item, Meta, Shard, Store, items};
use ksnn_compiler::distortion::{self, Clean, Measure};
use ksnn_compiler::torch::train;

use super::{Data, Model, fingerprint, load_data, load_model};

/// What `ksnn distortion` (and the pipeline's distortion stage) measures, and where it keeps the
/// results.
#[derive(Clone, Debug)]
pub struct DistortionConfig {
    /// The trained model whose ReLU layers are perturbed; its fingerprint pins the store.
    pub model: Model,
    /// Its training split gives the images.
    pub data: Data,
    /// Training images the distortion is averaged over (a fixed shuffle of the split).
    pub images: usize,
    /// Finished work is kept here; `distortion.json` is written when all of it is done.
    pub out: PathBuf,
    /// Only this shard; `None` = all, then merge.
    pub shard: Option<Shard>,
    /// Only merge the finished shards.
    pub merge: bool,
    /// Images × perturbations per forward pass (`None`: the device's default).
    pub batch_samples: Option<usize>,
    /// Only these ReLU layers (by name); `None` = all. An unknown name is an error.
    pub layers: Option<Vec<String>>,
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

/// Measures what is not yet measured (of this shard), then merges when all is done.
pub fn run(a: &DistortionConfig) -> Result<()> {
    let m = load_model(&a.model)?;
    let mut layers = distortion::layers(&m.graph);
    ensure!(!layers.is_empty(), "{} has no ReLU layers", m.graph.name);
    if let Some(only) = &a.layers {
        for name in only {
            ensure!(
                layers.iter().any(|l| &l.name == name),
                "{} has no ReLU layer `{name}`; its ReLU layers are {}",
                m.graph.name,
                layers
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        layers.retain(|l| only.contains(&l.name));
    }
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
        let how = Measure::fast(
            a.batch_samples
                .unwrap_or_else(|| Measure::default_batch(m.exec.device())),
        );
        let progress = bar(total, "distortion");
        let started = Instant::now();
        let (mut run, mut all) = (0, 0);
        for item in &todo {
            let layer = &layers[item.layer];
            progress.set_message(layer.name.clone());
            let measured = distortion::measure(
                &m.exec,
                &clean,
                layer,
                item.channels.clone(),
                how,
                &mut |k| progress.inc(k),
            );
            store.save(item, &measured.noise)?;
            run += measured.rows_run;
            all += measured.rows_all;
        }
        progress.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "measured {total} perturbations in {secs:.1} s ({:.0} per second); {run} of {all} \
             (channel, option, image) rows ran, the others were unchanged by the block ReLU or \
             identical to one that ran",
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
