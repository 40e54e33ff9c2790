//! Training and evaluation loops: mini-batches, Adam or SGD with the seed's schedules,
//! light augmentation (random shifts), progress bars. Classification trains with
//! cross-entropy and reports top-1; segmentation (data with masks: `K×H×W` logits against
//! `H×W` class ids) trains with per-pixel cross-entropy ignoring label 255 and reports mIoU.

use indicatif::{ProgressBar, ProgressStyle};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::Classification;
use crate::torch::executor::Executor;
use crate::torch::metrics::{Confusion, IGNORE};

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
    /// Multiply by `gamma` at each epoch in `milestones`, never below `min_lr` (mmcv's
    /// `StepLrUpdaterHook`).
    Step {
        /// Epochs (0-based) from which one more factor `gamma` applies.
        milestones: Vec<usize>,
        /// The factor per milestone passed (0.1 for `--schedule step`).
        gamma: f64,
        /// The rate never falls below this (0 for `--schedule step`).
        min_lr: f64,
    },
    /// `(1 - progress)^power`, floored at `min_lr`.
    Poly {
        /// The decay's exponent (1 = linear).
        power: f64,
        /// The rate never falls below this.
        min_lr: f64,
    },
    /// mmcv's `PolyLrUpdaterHook`, the original's segmentation schedule: from the rate down to
    /// `min_lr`, `(lr − min_lr)·(1 − progress)^power + min_lr`, progress counted in steps.
    PolyToMin {
        /// The decay's exponent (0.9 in the original).
        power: f64,
        /// The rate at the end.
        min_lr: f64,
    },
}

/// How [`train`] optimises: epochs, batch, rate, optimiser, schedule, augmentation, seed.
/// `Default` is a short Adam run with a linear (poly 1) decay and 2-pixel shifts.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Optimisation steps instead of `epochs` (mmseg's iteration-based runs): the data is
    /// cycled, epochs counted as they complete, and the schedule spans these steps.
    pub iterations: Option<usize>,
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
    /// Warm-up epochs (mmcv's `warmup_by_epoch`), added to `warmup_steps` as whole epochs of
    /// steps.
    pub warmup_epochs: usize,
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
            iterations: None,
            batch: 64,
            lr: 2e-3,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Poly {
                power: 1.0,
                min_lr: 1e-5,
            },
            warmup_steps: 50,
            warmup_epochs: 0,
            shift: 2,
            seed: 0,
            progress: true,
        }
    }
}

/// Per-epoch results.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// Mean cross-entropy over the epoch's training batches (with augmentation; per pixel
    /// for segmentation).
    pub loss: f64,
    /// Top-1 accuracy on the training batches as they were trained (augmented, training mode);
    /// for segmentation, the fraction of labelled pixels right.
    pub train_accuracy: f64,
    /// Top-1 accuracy (segmentation: mean IoU) on the held-out set after the epoch, when one
    /// was given.
    pub test_accuracy: Option<f64>,
}

/// The data as a normalised `N×C×H×W` tensor and a target tensor: class ids `N`, or for
/// segmentation the masks `N×H×W` (255 = ignore).
pub fn tensors(data: &Classification, mean: &[f32], std: &[f32]) -> (Tensor, Tensor) {
    let n = data.len() as i64;
    let (h, w) = (data.height as i64, data.width as i64);
    let x = Tensor::from_slice(&data.pixels).view([n, data.channels as i64, h, w]);
    let m = Tensor::from_slice(mean).view([1, -1, 1, 1]);
    let s = Tensor::from_slice(std).view([1, -1, 1, 1]);
    let y = if data.is_segmentation() {
        Tensor::from_slice(&data.masks)
            .to_kind(Kind::Int64)
            .view([n, h, w])
    } else {
        Tensor::from_slice(
            &data
                .labels
                .iter()
                .map(|&l| i64::from(l))
                .collect::<Vec<_>>(),
        )
    };
    ((x - m) / s, y)
}

/// Random shifts of up to `max` pixels (zero padding); a segmentation target `y` (`N×H×W`)
/// moves with its image, padded with the ignore label.
fn shift(x: &Tensor, y: &Tensor, max: i64) -> (Tensor, Tensor) {
    if max == 0 {
        return (x.shallow_clone(), y.shallow_clone());
    }
    let (h, w) = (x.size()[2], x.size()[3]);
    let padded = x.constant_pad_nd([max, max, max, max]);
    let masks = y.dim() == 3;
    // The border is the ignore label: 255 − (255 − y padded with zeros).
    let padded_y = if masks {
        (y.full_like(IGNORE) - y).constant_pad_nd([max, max, max, max]) * -1 + IGNORE
    } else {
        y.shallow_clone()
    };
    let n = x.size()[0];
    let offsets = Tensor::randint(2 * max + 1, [n, 2], (Kind::Int64, Device::Cpu));
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..n {
        let dy = offsets.int64_value(&[i, 0]);
        let dx = offsets.int64_value(&[i, 1]);
        xs.push(padded.narrow(0, i, 1).narrow(2, dy, h).narrow(3, dx, w));
        if masks {
            ys.push(padded_y.narrow(0, i, 1).narrow(1, dy, h).narrow(2, dx, w));
        }
    }
    let y = if masks {
        Tensor::cat(&ys, 0)
    } else {
        y.shallow_clone()
    };
    (Tensor::cat(&xs, 0), y)
}

/// The rate at optimisation step `step` of `total`, in epoch `epoch` (0-based), after
/// `warmup` warm-up steps: the schedule, scaled linearly from 1 % during the warm-up (mmcv's
/// linear warm-up with ratio 0.01).
pub fn lr_at(cfg: &TrainConfig, step: usize, total: usize, epoch: usize, warmup: usize) -> f64 {
    let base = match &cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Step {
            milestones,
            gamma,
            min_lr,
        } => (cfg.lr * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32))
            .max(*min_lr),
        Schedule::Poly { power, min_lr } => {
            (cfg.lr * (1.0 - step as f64 / total as f64).powf(*power)).max(*min_lr)
        }
        Schedule::PolyToMin { power, min_lr } => {
            let progress = (step as f64 / total.max(1) as f64).min(1.0);
            (cfg.lr - min_lr) * (1.0 - progress).powf(*power) + min_lr
        }
    };
    if step < warmup {
        base * (0.01 + 0.99 * step as f64 / warmup as f64)
    } else {
        base
    }
}

/// Top-1 accuracy of `exec` on `data`; for segmentation data, the mean IoU over the classes
/// present (label 255 ignored).
pub fn evaluate(exec: &Executor, data: &Classification, batch: usize) -> f64 {
    let g = exec.graph();
    let (x, y) = tensors(data, &g.mean, &g.std);
    let _guard = tch::no_grad_guard();
    let n = data.len() as i64;
    let mut correct = 0.0;
    let mut confusion: Option<Confusion> = None;
    let mut i = 0;
    while i < n {
        let len = (batch as i64).min(n - i);
        let logits = exec.forward(&x.narrow(0, i, len), false);
        let yb = y.narrow(0, i, len).to_device(exec.device());
        if data.is_segmentation() {
            confusion
                .get_or_insert_with(|| Confusion::new(logits.size()[1] as usize))
                .add(&logits, &yb);
        } else {
            correct += f64::try_from(logits.argmax(-1, false).eq_tensor(&yb).sum(Kind::Float))
                .unwrap_or(0.0);
        }
        i += len;
    }
    match confusion {
        Some(c) => c.mean_iou(),
        None if data.is_segmentation() => 0.0,
        None => correct / n.max(1) as f64,
    }
}

/// The loss of `logits` against `y`, and how many of `y`'s labels are right and counted: per
/// image for classification; per pixel with label 255 ignored for segmentation.
fn loss_and_hits(logits: &Tensor, y: &Tensor) -> (Tensor, f64, f64) {
    if y.dim() == 3 {
        let loss = logits.cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Mean, IGNORE, 0.0);
        let keep = y.ne(IGNORE);
        let right = logits.argmax(1, false).eq_tensor(y).logical_and(&keep);
        let count = |t: Tensor| f64::try_from(t.sum(Kind::Float)).unwrap_or(0.0);
        (loss, count(right), count(keep))
    } else {
        let loss = logits.cross_entropy_for_logits(y);
        let right =
            f64::try_from(logits.argmax(-1, false).eq_tensor(y).sum(Kind::Float)).unwrap_or(0.0);
        (loss, right, y.size()[0] as f64)
    }
}

/// Trains the parameters in `vs` on `train`, evaluating on `test` after each epoch (and after
/// the last step of an iteration-based run).
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
    let (total, epochs_run) = match cfg.iterations {
        Some(it) => (it, it.div_ceil(steps_per_epoch.max(1))),
        None => (steps_per_epoch * cfg.epochs, cfg.epochs),
    };
    let warmup = cfg.warmup_steps + cfg.warmup_epochs * steps_per_epoch;
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
    for epoch in 0..epochs_run {
        let bar = if cfg.progress {
            ProgressBar::new(steps_per_epoch.min(total - step) as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, epochs_run));
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let (mut loss_sum, mut seen, mut correct, mut counted) = (0.0, 0.0, 0.0, 0.0);
        let mut i = 0;
        while i < n && step < total {
            let len = (cfg.batch as i64).min(n - i);
            let idx = order.narrow(0, i, len);
            let (xb, yb) = shift(
                &x.index_select(0, &idx),
                &y.index_select(0, &idx),
                cfg.shift,
            );
            let yb = yb.to_device(exec.device());
            opt.set_lr(lr_at(cfg, step, total, epoch, warmup));
            let logits = exec.forward(&xb, true);
            let (loss, right, count) = loss_and_hits(&logits, &yb);
            opt.backward_step(&loss);
            let l = f64::try_from(&loss).unwrap_or(f64::NAN);
            loss_sum += l * len as f64;
            seen += len as f64;
            correct += right;
            counted += count;
            bar.inc(1);
            bar.set_message(format!("loss {l:.4}"));
            i += len;
            step += 1;
        }
        bar.finish_and_clear();
        let test_accuracy = test.map(|t| evaluate(exec, t, 256));
        epochs.push(Epoch {
            loss: loss_sum / seen.max(1.0),
            train_accuracy: correct / counted.max(1.0),
            test_accuracy,
        });
    }
    Ok(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lr: f64, schedule: Schedule) -> TrainConfig {
        TrainConfig {
            lr,
            schedule,
            ..TrainConfig::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-12)
    }

    /// mmcv's step schedule as the original's CIFAR-100 fine-tune sets it: ×0.25 at epochs 30,
    /// 60 and 90, never below 1e-4.
    #[test]
    fn step_schedule_with_gamma_and_floor() {
        let c = cfg(
            0.005,
            Schedule::Step {
                milestones: vec![30, 60, 90],
                gamma: 0.25,
                min_lr: 1e-4,
            },
        );
        let at = |epoch| lr_at(&c, 1_000_000, 2_000_000, epoch, 0);
        assert!(close(at(0), 0.005));
        assert!(close(at(29), 0.005));
        assert!(close(at(30), 0.00125));
        assert!(close(at(60), 0.0003125));
        // 0.005 · 0.25³ = 7.8e-5, floored.
        assert!(close(at(90), 1e-4));
        assert!(close(at(119), 1e-4));
        // Without a floor (the command line's `--schedule step`): ×0.1 per milestone.
        let plain = cfg(
            1.0,
            Schedule::Step {
                milestones: vec![2, 4],
                gamma: 0.1,
                min_lr: 0.0,
            },
        );
        assert!(close(lr_at(&plain, 0, 10, 5, 0), 0.01));
    }

    /// mmcv's poly as the original's segmentation fine-tunes set it: power 0.9 from 5e-4 to
    /// 1e-4 over the run's iterations.
    #[test]
    fn poly_to_min_schedule() {
        let c = cfg(
            5e-4,
            Schedule::PolyToMin {
                power: 0.9,
                min_lr: 1e-4,
            },
        );
        let at = |step| lr_at(&c, step, 40_000, 0, 0);
        assert!(close(at(0), 5e-4));
        assert!(close(at(20_000), 4e-4 * 0.5f64.powf(0.9) + 1e-4));
        assert!(close(at(40_000), 1e-4));
        // The floored poly (the demo's) stays as it was: max(lr·(1 − p), min).
        let floored = cfg(
            3e-3,
            Schedule::Poly {
                power: 1.0,
                min_lr: 1e-5,
            },
        );
        assert!(close(lr_at(&floored, 50, 100, 0, 0), 1.5e-3));
        assert!(close(lr_at(&floored, 100, 100, 0, 0), 1e-5));
    }

    /// Linear warm-up from 1 % of the scheduled rate.
    #[test]
    fn warmup_scales_the_scheduled_rate_from_one_percent() {
        let c = cfg(0.1, Schedule::Constant);
        assert!(close(lr_at(&c, 0, 100, 0, 10), 0.001));
        assert!(close(lr_at(&c, 5, 100, 0, 10), 0.1 * (0.01 + 0.99 * 0.5)));
        assert!(close(lr_at(&c, 10, 100, 0, 10), 0.1));
        assert!(close(lr_at(&c, 3, 100, 0, 0), 0.1));
    }
}
