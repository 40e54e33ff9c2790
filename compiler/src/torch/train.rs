//! Training and evaluation loops: mini-batches, Adam or SGD with the seed's schedules,
//! light augmentation (random shifts), progress bars.

use indicatif::{ProgressBar, ProgressStyle};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::Classification;
use crate::torch::executor::Executor;

/// Optimiser choice.
#[derive(Clone, Copy, Debug)]
pub enum Optimizer {
    /// Adam with tch's defaults (β = 0.9, 0.999; no weight decay).
    Adam,
    /// SGD with `momentum` and L2 `weight_decay`, as the seed trains.
    Sgd {
        /// Momentum factor (`--momentum`, default 0.9).
        momentum: f64,
        /// L2 penalty added to the gradient (`--weight-decay`, default 0).
        weight_decay: f64,
    },
}

/// Learning-rate schedules of the seed (docs/original.md §6).
#[derive(Clone, Debug)]
pub enum Schedule {
    /// The base rate throughout (after the warm-up).
    Constant,
    /// Multiply by `gamma` at each epoch in `milestones`.
    Step {
        /// Epochs (0-based) from which one more factor `gamma` applies.
        milestones: Vec<usize>,
        /// The factor per milestone passed (0.1 for `--schedule step`).
        gamma: f64,
    },
    /// `(1 - progress)^power`, floored at `min_lr`.
    Poly {
        /// The decay's exponent (1 = linear).
        power: f64,
        /// The rate never falls below this.
        min_lr: f64,
    },
}

/// How [`train`] optimises: epochs, batch, rate, optimiser, schedule, augmentation, seed.
/// `Default` is a short Adam run with a linear (poly 1) decay and 2-pixel shifts.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimisation step (the last batch of an epoch may be smaller).
    pub batch: usize,
    /// The peak learning rate; warm-up and schedule scale it.
    pub lr: f64,
    /// Adam or SGD.
    pub optimizer: Optimizer,
    /// How the rate changes with the step or epoch after the warm-up.
    pub schedule: Schedule,
    /// Linear warm-up over this many steps from 1 % of the rate.
    pub warmup_steps: usize,
    /// Random shifts of up to this many pixels.
    pub shift: i64,
    /// libtorch's random seed (shuffle and shifts), so a run can be repeated.
    pub seed: i64,
    /// Show a per-epoch progress bar (off in tests).
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 4,
            batch: 64,
            lr: 2e-3,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Poly {
                power: 1.0,
                min_lr: 1e-5,
            },
            warmup_steps: 50,
            shift: 2,
            seed: 0,
            progress: true,
        }
    }
}

/// Per-epoch results.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// Mean cross-entropy over the epoch's training batches (with augmentation).
    pub loss: f64,
    /// Top-1 accuracy on the training batches as they were trained (augmented, training mode).
    pub train_accuracy: f64,
    /// Top-1 accuracy on the held-out set after the epoch, when one was given.
    pub test_accuracy: Option<f64>,
}

/// The data as a normalised `N×C×H×W` tensor and a label tensor.
pub fn tensors(data: &Classification, mean: &[f32], std: &[f32]) -> (Tensor, Tensor) {
    let n = data.len() as i64;
    let x = Tensor::from_slice(&data.pixels).view([
        n,
        data.channels as i64,
        data.height as i64,
        data.width as i64,
    ]);
    let m = Tensor::from_slice(mean).view([1, -1, 1, 1]);
    let s = Tensor::from_slice(std).view([1, -1, 1, 1]);
    let y = Tensor::from_slice(
        &data
            .labels
            .iter()
            .map(|&l| i64::from(l))
            .collect::<Vec<_>>(),
    );
    ((x - m) / s, y)
}

fn shift(x: &Tensor, max: i64) -> Tensor {
    if max == 0 {
        return x.shallow_clone();
    }
    let (h, w) = (x.size()[2], x.size()[3]);
    let padded = x.constant_pad_nd([max, max, max, max]);
    let n = x.size()[0];
    let offsets = Tensor::randint(2 * max + 1, [n, 2], (Kind::Int64, Device::Cpu));
    let parts: Vec<Tensor> = (0..n)
        .map(|i| {
            let dy = offsets.int64_value(&[i, 0]);
            let dx = offsets.int64_value(&[i, 1]);
            padded.narrow(0, i, 1).narrow(2, dy, h).narrow(3, dx, w)
        })
        .collect();
    Tensor::cat(&parts, 0)
}

fn lr_at(cfg: &TrainConfig, step: usize, total: usize, epoch: usize) -> f64 {
    let base = match &cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Step { milestones, gamma } => {
            cfg.lr * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32)
        }
        Schedule::Poly { power, min_lr } => {
            (cfg.lr * (1.0 - step as f64 / total as f64).powf(*power)).max(*min_lr)
        }
    };
    if step < cfg.warmup_steps {
        base * (0.01 + 0.99 * step as f64 / cfg.warmup_steps as f64)
    } else {
        base
    }
}

/// Top-1 accuracy of `exec` on `data`.
pub fn evaluate(exec: &Executor, data: &Classification, batch: usize) -> f64 {
    let g = exec.graph();
    let (x, y) = tensors(data, &g.mean, &g.std);
    let _guard = tch::no_grad_guard();
    let n = data.len() as i64;
    let mut correct = 0.0;
    let mut i = 0;
    while i < n {
        let len = (batch as i64).min(n - i);
        let logits = exec.forward(&x.narrow(0, i, len), false);
        correct += f64::try_from(
            logits
                .argmax(-1, false)
                .eq_tensor(&y.narrow(0, i, len).to_device(exec.device()))
                .sum(Kind::Float),
        )
        .unwrap_or(0.0);
        i += len;
    }
    correct / n as f64
}

/// Trains the parameters in `vs` on `train`, evaluating on `test` after each epoch.
pub fn train(
    exec: &Executor,
    vs: &nn::VarStore,
    train: &Classification,
    test: Option<&Classification>,
    cfg: &TrainConfig,
) -> Result<Vec<Epoch>, tch::TchError> {
    tch::manual_seed(cfg.seed);
    let g = exec.graph();
    let (x, y) = tensors(train, &g.mean, &g.std);
    let n = train.len() as i64;
    let steps_per_epoch = (n as usize).div_ceil(cfg.batch);
    let total = steps_per_epoch * cfg.epochs;
    let mut opt = match cfg.optimizer {
        Optimizer::Adam => nn::Adam::default().build(vs, cfg.lr)?,
        Optimizer::Sgd {
            momentum,
            weight_decay,
        } => nn::Sgd {
            momentum,
            wd: weight_decay,
            ..Default::default()
        }
        .build(vs, cfg.lr)?,
    };
    let mut epochs = Vec::new();
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let bar = if cfg.progress {
            ProgressBar::new(steps_per_epoch as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let (mut loss_sum, mut correct) = (0.0, 0.0);
        let mut i = 0;
        while i < n {
            let len = (cfg.batch as i64).min(n - i);
            let idx = order.narrow(0, i, len);
            let xb = shift(&x.index_select(0, &idx), cfg.shift);
            let yb = y.index_select(0, &idx).to_device(exec.device());
            opt.set_lr(lr_at(cfg, step, total, epoch));
            let logits = exec.forward(&xb, true);
            let loss = logits.cross_entropy_for_logits(&yb);
            opt.backward_step(&loss);
            let l = f64::try_from(&loss).unwrap_or(f64::NAN);
            loss_sum += l * len as f64;
            correct += f64::try_from(logits.argmax(-1, false).eq_tensor(&yb).sum(Kind::Float))
                .unwrap_or(0.0);
            bar.inc(1);
            bar.set_message(format!("loss {l:.4}"));
            i += len;
            step += 1;
        }
        bar.finish_and_clear();
        let test_accuracy = test.map(|t| evaluate(exec, t, 256));
        epochs.push(Epoch {
            loss: loss_sum / n as f64,
            train_accuracy: correct / n as f64,
            test_accuracy,
        });
    }
    Ok(epochs)
}
