//! Distortion extraction (docs/original.md §4): for every ReLU layer, channel and candidate block
//! size, the mean squared error of the network's final outputs against the clean network on
//! a fixed sample of training images. Each measurement starts from the cached clean
//! activations and runs only the rest of the network. The unit of work is a *row*, one
//! perturbed channel on one image: rows the block ReLU leaves unchanged are not run,
//! identical rows run once, many rows share a forward pass, and the rest of the network
//! runs channel-sparse (module `tail`); all of it exact. Work is split into items (a few
//! channels of one layer) that shards share out and that are skipped when already on disk;
//! see [`store`].

pub mod store;
mod tail;

use std::collections::HashMap;
use std::ops::Range;

use ksnn_formats::spec::Block;
use tch::Tensor;

use crate::torch::executor::Executor;
use ksnn_graph::ir::{Graph, IrOp};

/// One ReLU layer and the block sizes its channels may take.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerOptions {
    /// The ReLU node's name: the block spec's key for this layer.
    pub name: String,
    /// Node index of the ReLU in the graph.
    pub node: usize,
    /// C of the ReLU's output: one block choice per channel.
    pub channels: u32,
    /// Height of the ReLU's output map (pixels); blocks are fitted and costed on it.
    pub h: u32,
    /// Width of the ReLU's output map (pixels).
    pub w: u32,
    /// The candidate blocks, the knapsack's options (the candidate list for this map size,
    /// without `[1,0]`); noise rows are indexed in this order.
    pub options: Vec<Block>,
    /// Sign decisions per block: 1 for ReLU, leaky ReLU and PReLU, 2 for hard sigmoid and
    /// hard swish (absent in files written before they existed: 1).
    #[serde(default = "one")]
    pub decisions: u64,
}

fn one() -> u64 {
    1
}

impl LayerOptions {
    /// DReLUs of one channel with block `b`: the knapsack's weight.
    pub fn drelus(&self, b: Block) -> u64 {
        self.decisions * b.drelus(self.h, self.w)
    }

    /// DReLUs of the whole layer per element: what a budget's ratio is of.
    pub fn full(&self) -> u64 {
        self.decisions * u64::from(self.channels) * u64::from(self.h) * u64::from(self.w)
    }
}

/// Every ReLU layer of `graph` with its candidates (docs/original.md §3.4, for the real shape).
pub fn layers(graph: &Graph) -> Vec<LayerOptions> {
    let shapes = graph.shapes().expect("a checked graph");
    graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op.budgeted())
        .map(|(i, n)| {
            let s = shapes[i + 1];
            LayerOptions {
                name: n.name.clone(),
                node: i,
                channels: s.c,
                h: s.h,
                w: s.w,
                options: ksnn_formats::candidates::options(s.h, s.w),
                decisions: match &n.op {
                    IrOp::Activation(a) => a.decisions(),
                    _ => 1,
                },
            }
        })
        .collect()
}

/// The clean forward pass of the sample, kept for every layer's measurements.
pub struct Clean {
    tensors: Vec<Tensor>,
    images: i64,
    output: usize,
}

impl Clean {
    /// Runs the model on `images` (`N×C×H×W`, normalised) without gradients and keeps every
    /// tensor.
    pub fn new(exec: &Executor, images: &Tensor) -> Self {
        let tensors = tch::no_grad(|| exec.forward_all(images, false));
        Self {
            tensors,
            images: images.size()[0],
            output: exec.graph().outputs[0] as usize,
        }
    }

    /// The network's first output (what the noise is measured on).
    pub fn output(&self) -> &Tensor {
        &self.tensors[self.output]
    }
}

/// How measurements are run. A *row* is one perturbed channel on one image.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    /// Rows per forward pass: memory against speed.
    pub batch_samples: usize,
    /// Run identical rows once: options whose block ReLUs give the same channel on an
    /// image share that image's measurement. Exact, not an approximation.
    pub dedup: bool,
    /// Skip rows whose channel the block ReLU leaves exactly as the ReLU does (their error
    /// is 0), and run the rest of the network channel-sparse (module `tail`): clean branches
    /// are not run and the first convolution after the layer costs one input channel.
    /// Exact, not an approximation. Off, every node after the layer runs on every image,
    /// as in the original.
    pub sparse: bool,
}

impl Measure {
    /// The original's way: one perturbation (all images) per forward pass, nothing skipped.
    pub fn one_at_a_time(images: usize) -> Self {
        Self {
            batch_samples: images,
            dedup: false,
            sparse: false,
        }
    }

    /// Rows per pass that suit `device`: on a CPU the passes are compute-bound and larger
    /// batches only spill the caches (measured with `ksnn bench distortion`: 64–256 rows
    /// beat 1024 and more); a GPU needs large batches to be busy.
    pub fn default_batch(device: tch::Device) -> usize {
        if device.is_cuda() { 4096 } else { 128 }
    }

    /// ksnn's way: batched, deduplicated and sparse.
    pub fn fast(batch_samples: usize) -> Self {
        Self {
            batch_samples,
            dedup: true,
            sparse: true,
        }
    }
}

/// A row to run: a perturbed channel on one image, and the options it stands for. The
/// values are image `image` of `source` (`N×H×W`, where the activations are; `source_id`
/// tells sources apart).
struct Row {
    channel: u32,
    image: i64,
    source_id: usize,
    source: Tensor,
    options: Vec<usize>,
}

/// The values of `rows`, `R×1×H×W`: runs of consecutive images of one source are sliced,
/// not gathered one by one.
fn values(rows: &[Row]) -> Tensor {
    let mut parts: Vec<Tensor> = Vec::new();
    let mut start = 0;
    for end in 1..=rows.len() {
        let (a, b) = (&rows[end - 1], rows.get(end));
        let continues = b.is_some_and(|b| b.source_id == a.source_id && b.image == a.image + 1);
        if !continues {
            let first = &rows[start];
            let len = (end - start) as i64;
            parts.push(first.source.narrow(0, first.image, len));
            start = end;
        }
    }
    Tensor::cat(&parts, 0).unsqueeze(1)
}

fn hash(v: &[f32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for x in v {
        x.to_bits().hash(&mut h);
    }
    h.finish()
}

/// The rows of channel `c` of `layer`, deduplicated and skipped as `how` says. Host copies
/// for the comparisons live only while this channel is built; `next_source` numbers the
/// perturbed channels across calls.
fn channel_rows(
    exec: &Executor,
    x_in: &Tensor,
    layer: &LayerOptions,
    c: u32,
    how: Measure,
    next_source: &mut usize,
) -> Vec<Row> {
    let n = x_in.size()[0];
    let host = |t: &Tensor| -> Vec<f32> { t.flatten(0, -1).try_into().unwrap_or_default() };
    let compare = how.dedup || how.sparse;
    let relu = if compare {
        host(&exec.budgeted_channel(layer.node, x_in, i64::from(c), Block::RELU))
    } else {
        Vec::new()
    };
    let hw = relu.len() / n as usize;
    let mut out: Vec<Row> = Vec::new();
    // (image, hash of the values) → (row, option whose values it holds), to deduplicate.
    let mut seen: HashMap<(i64, u64), Vec<(usize, usize)>> = HashMap::new();
    let mut hosts: Vec<Vec<f32>> = Vec::new();
    let mut tensors: Vec<(usize, Tensor)> = Vec::new();
    for &b in &layer.options {
        let v = exec.budgeted_channel(layer.node, x_in, i64::from(c), b);
        hosts.push(if compare { host(&v) } else { Vec::new() });
        *next_source += 1;
        tensors.push((*next_source, v));
    }
    for (o, ((id, v), v_host)) in tensors.iter().zip(&hosts).enumerate() {
        for i in 0..n {
            let row = || Row {
                channel: c,
                image: i,
                source_id: *id,
                source: v.shallow_clone(),
                options: vec![o],
            };
            if compare {
                let at = i as usize * hw;
                let values = &v_host[at..at + hw];
                if how.sparse && values == &relu[at..at + hw] {
                    continue;
                }
                if how.dedup {
                    let same = seen.entry((i, hash(values))).or_default();
                    let equal = |&&(_, p): &&(usize, usize)| &hosts[p][at..at + hw] == values;
                    if let Some(&(r, _)) = same.iter().find(equal) {
                        out[r].options.push(o);
                        continue;
                    }
                    same.push((out.len(), o));
                }
            }
            out.push(row());
        }
    }
    out
}

/// Each row's mean squared output error, through one forward pass of the tail.
fn run_pass(tail: &tail::Tail, pass: &[Row]) -> Vec<f64> {
    tch::no_grad(|| {
        let ids: Vec<(i64, i64)> = pass
            .iter()
            .map(|r| (r.image, i64::from(r.channel)))
            .collect();
        let rows = tail::Rows::new(&ids, values(pass));
        tail.run(&rows).try_into().unwrap_or_default()
    })
}

/// What [`measure`] found.
pub struct Measured {
    /// `[channel][option]`: mean over the images of the outputs' mean squared error.
    pub noise: Vec<Vec<f64>>,
    /// Rows (perturbed channel × image) that ran through the network ...
    pub rows_run: usize,
    /// ... of all (channel, option, image) combinations; the rest were unchanged by the
    /// block ReLU or identical to a row that ran.
    pub rows_all: usize,
}

/// Noise for `channels` of `layer`; `done(k)` reports k more (layer, channel, option)
/// results.
pub fn measure(
    exec: &Executor,
    clean: &Clean,
    layer: &LayerOptions,
    channels: Range<u32>,
    how: Measure,
    done: &mut dyn FnMut(u64),
) -> Measured {
    let g = exec.graph();
    let k = layer.node;
    let x_in = &clean.tensors[g.nodes[k].inputs[0] as usize];
    let per_channel = layer.options.len() as u64;
    let tail = tail::Tail::new(exec, &clean.tensors, k, how.sparse);
    let batch = how.batch_samples.max(1);
    let mut noise = vec![vec![0.0; layer.options.len()]; channels.len()];
    // Rows not yet run, per channel; progress is reported when a channel's last row ran.
    let mut left = vec![0usize; channels.len()];
    let mut pending: Vec<Row> = Vec::new();
    let (mut rows_run, mut next_source) = (0, 0);
    // Rows are built a channel at a time and run as soon as a pass is full, so memory stays
    // at one channel's candidates plus one pass whatever the item size.
    for c in channels.clone() {
        let rows = tch::no_grad(|| channel_rows(exec, x_in, layer, c, how, &mut next_source));
        left[(c - channels.start) as usize] = rows.len();
        rows_run += rows.len();
        if rows.is_empty() {
            done(per_channel);
        }
        pending.extend(rows);
        let last = c + 1 == channels.end;
        while pending.len() >= batch || (last && !pending.is_empty()) {
            let pass: Vec<Row> = pending.drain(..pending.len().min(batch)).collect();
            let errors = run_pass(&tail, &pass);
            for (row, err) in pass.iter().zip(errors) {
                let c = (row.channel - channels.start) as usize;
                for &o in &row.options {
                    noise[c][o] += err / clean.images as f64;
                }
                left[c] -= 1;
                if left[c] == 0 {
                    done(per_channel);
                }
            }
        }
    }
    Measured {
        noise,
        rows_run,
        rows_all: channels.len() * layer.options.len() * clean.images as usize,
    }
}
