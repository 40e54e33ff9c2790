//! The network after a perturbed ReLU, run for a batch of *rows*: one row is one
//! perturbation (one channel of the layer replaced by one block ReLU) on one image.
//!
//! On this kind of machine the forward passes are compute-bound, so batching alone saves
//! little; what saves time is arithmetic not done. In sparse mode three exact shortcuts
//! apply, each an identity of the network rather than an approximation:
//! - A tensor is tracked as *clean* (equal to the cached clean pass, never computed),
//!   *sparse* (clean except the row's own channel, whose values are held) or *dense*.
//!   Per-channel ops (ReLU, pooling, BatchNorm, affine, pad, resize, depthwise convolution,
//!   adding a clean tensor) keep a tensor sparse at the cost of one channel.
//! - The first channel-mixing convolution uses linearity: `conv(x + δ) = conv(x) + W[:, c] ⋆ δ`
//!   with `δ` nonzero in channel `c` only, which costs `1/C_in` of the full convolution.
//! - Branches whose inputs are all clean (a downsampling shortcut fed by the block input)
//!   are clean and are not run, and the caller drops rows whose channel the perturbation
//!   leaves unchanged on that image: their output error is exactly 0.
//!
//! Without sparse mode every node after the layer runs on every row, as the original does.

use std::ops::Range;

use tch::{Kind, Tensor};

use crate::torch::executor::Executor;
use ksnn_graph::ir::IrOp;

/// The rows of one pass.
pub(super) struct Rows {
    /// `[R]` the image of each row (an index into the clean tensors' batch).
    image: Tensor,
    /// `[R]` the perturbed channel of each row.
    channel: Tensor,
    /// `(channel, rows)` for each run of consecutive rows with the same channel.
    runs: Vec<(i64, Range<i64>)>,
    /// `[R, 1, H, W]`: the perturbed channel after the layer's (block) ReLU.
    values: Tensor,
}

impl Rows {
    /// Rows from each row's `(image, channel)` and their `values` (`R×1×H×W`, on the
    /// device of the clean tensors).
    pub fn new(rows: &[(i64, i64)], values: Tensor) -> Self {
        let mut runs: Vec<(i64, Range<i64>)> = Vec::new();
        for (i, &(_, c)) in rows.iter().enumerate() {
            let i = i as i64;
            match runs.last_mut() {
                Some((last, r)) if *last == c => r.end = i + 1,
                _ => runs.push((c, i..i + 1)),
            }
        }
        let device = values.device();
        let column = |f: fn(&(i64, i64)) -> i64| {
            let v: Vec<i64> = rows.iter().map(f).collect();
            Tensor::from_slice(&v).to_device(device)
        };
        Self {
            image: column(|r| r.0),
            channel: column(|r| r.1),
            runs,
            values,
        }
    }

    fn len(&self) -> i64 {
        self.image.size()[0]
    }
}

enum State {
    /// Equal to the clean tensor on every row (not computed).
    Clean,
    /// Equal to the clean tensor except in the row's own channel: those values, `[R,1,…]`.
    Sparse(Tensor),
    /// Every value of every row.
    Dense(Tensor),
}

/// Runs the network's tail after one ReLU layer.
pub(super) struct Tail<'a> {
    exec: &'a Executor,
    clean: &'a [Tensor],
    /// Node index of the perturbed ReLU; its output is tensor `layer + 1`.
    layer: usize,
    sparse: bool,
    /// The last node reading each tensor (tensors are dropped after it).
    last_use: Vec<usize>,
}

impl<'a> Tail<'a> {
    pub fn new(exec: &'a Executor, clean: &'a [Tensor], layer: usize, sparse: bool) -> Self {
        let g = exec.graph();
        let mut last_use = vec![0; g.nodes.len() + 1];
        for (i, n) in g.nodes.iter().enumerate() {
            for &t in &n.inputs {
                last_use[t as usize] = i;
            }
        }
        for &o in &g.outputs {
            last_use[o as usize] = usize::MAX;
        }
        Self {
            exec,
            clean,
            layer,
            sparse,
            last_use,
        }
    }

    /// The clean tensor `id` for every row.
    fn gather(&self, id: usize, rows: &Rows) -> Tensor {
        self.clean[id].index_select(0, &rows.image)
    }

    /// The clean values of each row's own channel of tensor `id`: `[R, 1, …]`.
    fn clean_channel(&self, id: usize, rows: &Rows) -> Tensor {
        self.clean[id]
            .index(&[Some(&rows.image), Some(&rows.channel)])
            .unsqueeze(1)
    }

    fn materialize(&self, id: usize, s: &State, rows: &Rows) -> Tensor {
        match s {
            State::Clean => self.gather(id, rows),
            State::Dense(t) => t.shallow_clone(),
            State::Sparse(v) => {
                let mut shape = vec![1i64; v.dim()];
                shape[0] = rows.len();
                let index = rows.channel.view(shape.as_slice()).expand(v.size(), false);
                self.gather(id, rows).scatter(1, &index, v)
            }
        }
    }

    /// Node `i` on sparse inputs, when it keeps them cheap; `None` to run it densely.
    fn sparse_step(&self, i: usize, ins: &[&State], rows: &Rows) -> Option<State> {
        let n = &self.exec.graph().nodes[i];
        let input = |k: usize| n.inputs[k] as usize;
        let per_row = |t: &Tensor, v: &Tensor| {
            let mut shape = vec![1i64; v.dim()];
            shape[0] = rows.len();
            t.index_select(0, &rows.channel).view(shape.as_slice())
        };
        match (&n.op, ins) {
            (op, [State::Sparse(_)]) if op.budgeted() && self.exec.has_block_relu(i) => None,
            (op, [State::Sparse(v)]) if op.channelwise_without_parameters() => {
                Some(State::Sparse(self.exec.apply(i, &[v], false)))
            }
            (IrOp::BatchNorm { .. } | IrOp::Affine { .. }, [State::Sparse(v)]) => {
                let (a, b) = self.exec.channel_affine(i)?;
                Some(State::Sparse(v * per_row(&a, v) + per_row(&b, v)))
            }
            (IrOp::Conv(c), [State::Sparse(v)]) => {
                let depthwise = c.groups > 1;
                let x = if depthwise {
                    v.shallow_clone()
                } else {
                    v - self.clean_channel(input(0), rows)
                };
                let parts = rows
                    .runs
                    .iter()
                    .map(|(ch, r)| {
                        let part = x.narrow(0, r.start, r.end - r.start);
                        self.exec.conv_channel(i, &part, *ch, depthwise)
                    })
                    .collect::<Option<Vec<_>>>()?;
                let y = Tensor::cat(&parts, 0);
                Some(if depthwise {
                    State::Sparse(y)
                } else {
                    State::Dense(self.gather(i + 1, rows) + y)
                })
            }
            (IrOp::Add, [State::Sparse(a), State::Sparse(b)]) => Some(State::Sparse(a + b)),
            (IrOp::Add, [State::Sparse(a), State::Clean]) => {
                Some(State::Sparse(a + self.clean_channel(input(1), rows)))
            }
            (IrOp::Add, [State::Clean, State::Sparse(b)]) => {
                Some(State::Sparse(self.clean_channel(input(0), rows) + b))
            }
            _ => None,
        }
    }

    /// Each row's mean squared error of the first output against the clean output, `[R]`
    /// in double precision.
    pub fn run(&self, rows: &Rows) -> Tensor {
        let g = self.exec.graph();
        let mut states: Vec<State> = (0..=g.nodes.len()).map(|_| State::Clean).collect();
        let first = self.layer + 1;
        states[first] = if self.sparse {
            State::Sparse(rows.values.shallow_clone())
        } else {
            let s = State::Sparse(rows.values.shallow_clone());
            State::Dense(self.materialize(first, &s, rows))
        };
        for i in first..g.nodes.len() {
            let n = &g.nodes[i];
            let ins: Vec<&State> = n.inputs.iter().map(|&j| &states[j as usize]).collect();
            let out = if self.sparse && ins.iter().all(|s| matches!(s, State::Clean)) {
                State::Clean
            } else if let Some(s) = self
                .sparse
                .then(|| self.sparse_step(i, &ins, rows))
                .flatten()
            {
                s
            } else {
                let t: Vec<Tensor> = n
                    .inputs
                    .iter()
                    .zip(&ins)
                    .map(|(&j, s)| self.materialize(j as usize, s, rows))
                    .collect();
                let refs: Vec<&Tensor> = t.iter().collect();
                State::Dense(self.exec.apply(i, &refs, false))
            };
            states[i + 1] = out;
            for &j in &n.inputs {
                if self.last_use[j as usize] == i {
                    states[j as usize] = State::Clean;
                }
            }
        }
        let out = g.outputs[0] as usize;
        match &states[out] {
            State::Clean => Tensor::zeros([rows.len()], (Kind::Double, rows.image.device())),
            s => {
                let y = self.materialize(out, s, rows).to_kind(Kind::Double);
                let y0 = self.gather(out, rows).to_kind(Kind::Double);
                (y - y0)
                    .square()
                    .flatten(1, -1)
                    .mean_dim(1, false, Kind::Double)
            }
        }
    }
}
