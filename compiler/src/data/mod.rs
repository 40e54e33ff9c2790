//! Datasets in their real on-disk layouts: MNIST (IDX), CIFAR-10/100 (binary batches),
//! ImageNet-style class folders, and the ADE20K and Pascal VOC segmentation layouts. Every
//! loader fails with the path, the file and what was expected.

pub mod cifar;
pub mod folders;
pub mod image;
pub mod mnist;
pub mod segmentation;

use std::path::PathBuf;

use thiserror::Error;

/// A dataset problem, with where it is.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: {reason} (expected {expected})")]
    Layout {
        path: PathBuf,
        reason: String,
        expected: &'static str,
    },
}

impl DataError {
    pub fn file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        DataError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Which part of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Images of one size with class labels, pixels in `[0, 1]`, `N×C×H×W` row-major.
#[derive(Clone, Debug)]
pub struct Classification {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
    pub labels: Vec<u32>,
    /// Class names when the dataset has them.
    pub classes: Vec<String>,
}

impl Classification {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.channels * self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))
}
