//! Segmentation quality: a confusion matrix over pixels and the mean intersection over union
//! the seed reports for ADE20K and VOC (classes absent from both prediction and labels are
//! left out of the mean; label 255 is "ignore", as in both datasets).

use tch::{Kind, Tensor};

/// Pixels counted by (label, prediction).
#[derive(Clone, Debug, PartialEq)]
pub struct Confusion {
    /// Number of classes K; labels at or above it (and 255) are not counted.
    pub classes: usize,
    /// Row-major `classes × classes`: `counts[label * classes + predicted]`.
    pub counts: Vec<u64>,
}

/// The label value that marks pixels without a class.
pub const IGNORE: i64 = 255;

impl Confusion {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds a batch: `logits` `N×K×H×W`, `labels` `N×H×W` (integers; 255 ignored).
    pub fn add(&mut self, logits: &Tensor, labels: &Tensor) {
        let k = self.classes as i64;
        let pred = logits.argmax(1, false).flatten(0, -1).to_kind(Kind::Int64);
        let label = labels
            .flatten(0, -1)
            .to_kind(Kind::Int64)
            .to_device(pred.device());
        let keep = label.ne(IGNORE).logical_and(&label.lt(k));
        let index = label.masked_select(&keep) * k + pred.masked_select(&keep);
        let counts = index.bincount(None::<Tensor>, k * k).to_kind(Kind::Int64);
        let counts: Vec<i64> = counts
            .to_device(tch::Device::Cpu)
            .try_into()
            .unwrap_or_default();
        for (c, n) in self.counts.iter_mut().zip(counts) {
            *c += n as u64;
        }
    }

    /// Adds label maps: `predicted` and `labels` class ids per pixel, in the same order
    /// (255 and ids at or above the class count ignored in `labels`).
    pub fn add_maps(&mut self, predicted: &[u32], labels: &[u8]) {
        let k = self.classes;
        for (&p, &l) in predicted.iter().zip(labels) {
            let (p, l) = (p as usize, usize::from(l));
            if l as i64 != IGNORE && l < k && p < k {
                self.counts[l * k + p] += 1;
            }
        }
    }

    /// Mean IoU over the classes that occur in labels or predictions.
    pub fn mean_iou(&self) -> f64 {
        let k = self.classes;
        let mut sum = 0.0;
        let mut present = 0;
        for c in 0..k {
            let tp = self.counts[c * k + c];
            let row: u64 = self.counts[c * k..(c + 1) * k].iter().sum();
            let col: u64 = (0..k).map(|r| self.counts[r * k + c]).sum();
            let union = row + col - tp;
            if union > 0 {
                sum += tp as f64 / union as f64;
                present += 1;
            }
        }
        if present == 0 {
            0.0
        } else {
            sum / present as f64
        }
    }

    /// Fraction of labelled pixels predicted right.
    pub fn pixel_accuracy(&self) -> f64 {
        let k = self.classes;
        let total: u64 = self.counts.iter().sum();
        let right: u64 = (0..k).map(|c| self.counts[c * k + c]).sum();
        if total == 0 {
            0.0
        } else {
            right as f64 / total as f64
        }
    }
}
