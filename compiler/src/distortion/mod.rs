//! Distortion extraction (seed-spec §4): for every ReLU layer, channel and candidate block
//! size, the mean squared error of the network's final outputs against the clean network on
//! a fixed sample of training images. Each measurement starts from the cached clean
//! activations and runs only the rest of the network, and many perturbations share one
//! forward pass (stacked in the batch dimension), where the original runs one per pass.
//! Work is split into items (a few channels of one layer) that shards share out and that
//! are skipped when already on disk; see [`store`].

pub mod store;

use std::ops::Range;

use ksnn_formats::spec::Block;
use tch::{Kind, Tensor};

use crate::ir::{Graph, IrOp};
use crate::torch::block_relu;
use crate::torch::executor::Executor;

/// One ReLU layer and the block sizes its channels may take.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerOptions {
    pub name: String,
    /// Node index of the ReLU in the graph.
    pub node: usize,
    pub channels: u32,
    pub h: u32,
    pub w: u32,
    pub options: Vec<Block>,
}

/// Every ReLU layer of `graph` with its candidates (seed-spec §3.4, for the real shape).
pub fn layers(graph: &Graph) -> Vec<LayerOptions> {
    let shapes = graph.shapes().expect("a checked graph");
    graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op == IrOp::Relu)
        .map(|(i, n)| {
            let s = shapes[i + 1];
            LayerOptions {
                name: n.name.clone(),
                node: i,
                channels: s.c,
                h: s.h,
                w: s.w,
                options: ksnn_formats::candidates::options(s.h, s.w),
            }
        })
        .collect()
}

/// The clean forward pass of the sample, kept for every layer's measurements.
pub struct Clean {
    tensors: Vec<Tensor>,
    images: i64,
}

impl Clean {
    pub fn new(exec: &Executor, images: &Tensor) -> Self {
        let tensors = tch::no_grad(|| exec.forward_all(images, false));
        Self {
            tensors,
            images: images.size()[0],
        }
    }
}

/// How measurements are run.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    /// Perturbations stacked in one forward pass.
    pub per_pass: usize,
    /// Run a forward pass only for distinct perturbed channels: an option whose block ReLU
    /// leaves the channel exactly as the ReLU does costs nothing (noise 0), and options that
    /// produce identical channels on the sample share one measurement. Exact, not an
    /// approximation.
    pub dedup: bool,
}

/// A perturbation to run: channel, the perturbed channel values, and the options it stands for.
struct Unique {
    channel: u32,
    values: Tensor,
    options: Vec<usize>,
}

fn fingerprint(t: &Tensor) -> (u64, Vec<f32>) {
    use std::hash::{Hash, Hasher};
    let v: Vec<f32> = t.flatten(0, -1).try_into().unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for x in &v {
        x.to_bits().hash(&mut h);
    }
    (h.finish(), v)
}

/// Noise (`[channel][option]`) for `channels` of `layer`; `done(k)` reports k more
/// (layer, channel, option) results.
pub fn measure(
    exec: &Executor,
    clean: &Clean,
    layer: &LayerOptions,
    channels: Range<u32>,
    how: Measure,
    done: &mut dyn FnMut(u64),
) -> Vec<Vec<f64>> {
    let g = exec.graph();
    let k = layer.node;
    let x_in = &clean.tensors[g.nodes[k].inputs[0] as usize];
    let out_id = g.outputs[0] as usize;
    let y0 = &clean.tensors[out_id];
    // Tensors up to this layer that later nodes still read.
    let mut needed = vec![false; k + 2];
    for n in &g.nodes[k + 1..] {
        for &t in &n.inputs {
            if (t as usize) <= k + 1 {
                needed[t as usize] = true;
            }
        }
    }
    for &o in &g.outputs {
        if (o as usize) <= k + 1 {
            needed[o as usize] = true;
        }
    }
    let mut noise = vec![vec![0.0; layer.options.len()]; channels.len()];
    let mut work: Vec<Unique> = Vec::new();
    tch::no_grad(|| {
        for c in channels.clone() {
            let relu = x_in.narrow(1, i64::from(c), 1).squeeze_dim(1).relu();
            let relu_key = fingerprint(&relu);
            let first = work.len();
            let mut keys: Vec<(u64, Vec<f32>)> = Vec::new();
            for (o, &b) in layer.options.iter().enumerate() {
                let v = block_relu::channel(x_in, i64::from(c), b);
                if !how.dedup {
                    work.push(Unique {
                        channel: c,
                        values: v,
                        options: vec![o],
                    });
                    continue;
                }
                let key = fingerprint(&v);
                if key == relu_key {
                    continue; // identical to the clean network: noise 0
                }
                match keys.iter().position(|k| *k == key) {
                    Some(i) => work[first + i].options.push(o),
                    None => {
                        keys.push(key);
                        work.push(Unique {
                            channel: c,
                            values: v,
                            options: vec![o],
                        });
                    }
                }
            }
        }
    });
    let skipped = (channels.len() * layer.options.len()) as u64
        - work.iter().map(|u| u.options.len() as u64).sum::<u64>();
    done(skipped);
    let n = clean.images;
    for chunk in work.chunks(how.per_pass.max(1)) {
        let p = chunk.len() as i64;
        let values = tch::no_grad(|| {
            let repeat = |t: &Tensor| {
                let mut r = vec![1i64; t.dim()];
                r[0] = p;
                t.repeat(r.as_slice())
            };
            let mut t: Vec<Tensor> = (0..=k)
                .map(|id| {
                    if needed[id] {
                        repeat(&clean.tensors[id])
                    } else {
                        Tensor::new()
                    }
                })
                .collect();
            let replaced = repeat(&clean.tensors[k + 1]);
            for (i, u) in chunk.iter().enumerate() {
                replaced
                    .narrow(0, i as i64 * n, n)
                    .select(1, i64::from(u.channel))
                    .copy_(&u.values);
            }
            t.push(replaced);
            exec.run_from(&mut t, false);
            let y = t[out_id].view([p, n, -1]).to_kind(Kind::Double);
            let d = (y - y0.view([1, n, -1]).to_kind(Kind::Double)).square();
            let per: Vec<f64> = d
                .mean_dim(&[1i64, 2][..], false, Kind::Double)
                .try_into()
                .unwrap_or_default();
            per
        });
        for (u, v) in chunk.iter().zip(values) {
            for &o in &u.options {
                noise[(u.channel - channels.start) as usize][o] = v;
            }
            done(u.options.len() as u64);
        }
    }
    noise
}
