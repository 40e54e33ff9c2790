//! The secure stage on any dataset but MNIST (which the party binary reads itself): the test
//! images go to `ksnn-party local` as NPY files, and its outputs (decoded logits, or label
//! maps) are scored here against the labels or masks, as are the cleartext fixed-point
//! reference's predictions: top-1 accuracy, or mIoU for segmentation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use ksnn_compiler::data::Split;
use ksnn_compiler::torch::metrics::Confusion;
use ksnn_formats::program::OutputKind;
use ksnn_formats::{Program, Weights, npy};
use ksnn_runtime::exec::model::{Model as RingModel, encode_input};
use ksnn_runtime::reference;
use serde::{Deserialize, Serialize};

use crate::stages::{Data, Model, load_data};

/// The test images written for the parties, and what they should be.
pub struct Written {
    /// One NPY file per image (`C×H×W`, pixels in [0, 1]).
    pub inputs: Vec<PathBuf>,
    /// Where `ksnn-party local --out` writes the outputs.
    pub outputs: PathBuf,
    pixels: Vec<Vec<f32>>,
    labels: Vec<u32>,
    /// `H×W` per image, segmentation only.
    masks: Vec<Vec<u8>>,
}

/// The run's quality figures: top-1 accuracy, or mIoU for segmentation (fractions).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metrics {
    /// mIoU rather than accuracy.
    pub segmentation: bool,
    /// Float, plain ReLUs.
    pub plain: f64,
    /// Float, block ReLUs, fine-tuned.
    pub at_budget: f64,
    /// The cleartext fixed-point reference of the compiled program.
    pub reference: f64,
    /// The three parties.
    pub secure: f64,
}

/// Writes `data`'s test images (cut to its limit) under `dir/inputs/`.
pub fn write_inputs(model: &Model, data: &Data, dir: &Path) -> Result<Written> {
    let (graph, _) = model.source.load()?;
    let test = load_data(data, &graph, Split::Test)?;
    let inputs_dir = dir.join("inputs");
    let _ = std::fs::remove_dir_all(&inputs_dir);
    std::fs::create_dir_all(&inputs_dir)?;
    let mut w = Written {
        inputs: Vec::new(),
        outputs: dir.join("outputs.npy"),
        pixels: Vec::new(),
        labels: test.labels.clone(),
        masks: Vec::new(),
    };
    for i in 0..test.len() {
        let path = inputs_dir.join(format!("{i:05}.npy"));
        let dims = [test.channels, test.height, test.width];
        std::fs::write(&path, npy::encode(&dims, test.image(i)))
            .with_context(|| format!("writing {}", path.display()))?;
        w.inputs.push(path);
        w.pixels.push(test.image(i).to_vec());
        if test.is_segmentation() {
            w.masks.push(test.mask(i).to_vec());
        }
    }
    ensure!(!w.inputs.is_empty(), "no test images for the secure run");
    Ok(w)
}

/// Scores the parties' outputs and the reference's predictions; writes `metrics` (JSON, with
/// the float figures left 0 until [`read_metrics`]).
pub fn score(w: &Written, program: &Path, weights: &Path, metrics: &Path) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let program = Program::decode(&read(program)?)?;
    let weights = Weights::decode(&read(weights)?)?;
    let model = RingModel::new(&program, Some(&weights))?;
    let out = npy::decode(&read(&w.outputs)?)?;
    let rows = out.dims.first().copied().unwrap_or(0);
    ensure!(
        rows == w.inputs.len(),
        "{}: {rows} outputs for {} inputs",
        w.outputs.display(),
        w.inputs.len()
    );
    let cols = out.data.len() / rows.max(1);
    let first = &program.outputs[0];
    let shape = model.shapes[first.tensor as usize];
    let segmentation = first.kind == OutputKind::SegmentationLogits;
    let classes = shape.c as usize;
    let (mut reference_hits, mut secure_hits) = (0usize, 0usize);
    let (mut reference_iou, mut secure_iou) = (Confusion::new(classes), Confusion::new(classes));
    for (i, pixels) in w.pixels.iter().enumerate() {
        let expect = reference::run(&model, &encode_input(&program, pixels));
        let want = reference::predict_ring(first.kind, shape, &expect[0]);
        let row = &out.data[i * cols..(i + 1) * cols];
        if segmentation {
            // The client's row is its label map.
            let got: Vec<u32> = row.iter().map(|&k| k as u32).collect();
            let mask = w.masks.get(i).map(Vec::as_slice).unwrap_or_default();
            reference_iou.add_maps(&want, mask);
            secure_iou.add_maps(&got, mask);
        } else {
            // The client's row is its decoded logits.
            let got = reference::predict(first.kind, shape, row);
            let label = w.labels.get(i).copied();
            reference_hits += usize::from(label == want.first().copied());
            secure_hits += usize::from(label == got.first().copied());
        }
    }
    let n = w.pixels.len().max(1) as f64;
    let m = Metrics {
        segmentation,
        plain: 0.0,
        at_budget: 0.0,
        reference: if segmentation {
            reference_iou.mean_iou()
        } else {
            reference_hits as f64 / n
        },
        secure: if segmentation {
            secure_iou.mean_iou()
        } else {
            secure_hits as f64 / n
        },
    };
    std::fs::write(metrics, serde_json::to_string_pretty(&m)?)
        .with_context(|| format!("writing {}", metrics.display()))?;
    Ok(())
}

/// The scores [`score`] wrote, with the float figures.
pub fn read_metrics(path: &Path, plain: f64, at_budget: f64) -> Result<Metrics> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let m: Metrics = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(Metrics {
        plain,
        at_budget,
        ..m
    })
}
