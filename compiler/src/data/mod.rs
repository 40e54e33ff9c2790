//! Datasets in their real on-disk layouts: MNIST (IDX), CIFAR-10/100 (binary batches),
//! ImageNet-style class folders, and the ADE20K and Pascal VOC segmentation layouts. Every
//! loader fails with the path, the file and what was expected.

pub mod cifar;
pub mod folders;
pub mod image;
pub mod mnist;
pub mod segmentation;

use std::path::PathBuf;

use ksnn_formats::image::ImageError;
use thiserror::Error;

/// A dataset problem, with where it is.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file is unreadable or its content is wrong.
    #[error("{path}: {reason}")]
    File {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What is wrong with it, for a person.
        reason: String,
    },
    /// A folder or file is not where or what the dataset's layout requires.
    #[error("{path}: {reason} (expected {expected})")]
    Layout {
        /// The folder or file at fault.
        path: PathBuf,
        /// What was found instead.
        reason: String,
        /// The layout the loader needs, e.g. `root/<class>/<image>.jpg`.
        expected: &'static str,
    },
    /// An image or MNIST file that does not decode.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl DataError {
    /// A [`DataError::File`] for `path`.
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
    /// The split models train on (and distortion and calibration sample).
    Train,
    /// The held-out split accuracies are reported on.
    Test,
}

/// Images of one size with class labels, pixels in `[0, 1]`, `N×C×H×W` row-major.
#[derive(Clone, Debug)]
pub struct Classification {
    /// C: 1 for grey (MNIST), 3 for RGB.
    pub channels: usize,
    /// H in pixels, the same for every image.
    pub height: usize,
    /// W in pixels, the same for every image.
    pub width: usize,
    /// All images back to back, `N×C×H×W` row-major, values in `[0, 1]`.
    pub pixels: Vec<f32>,
    /// One class index per image, below the number of classes.
    pub labels: Vec<u32>,
    /// Class names when the dataset has them.
    pub classes: Vec<String>,
}

impl Classification {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` images (quick runs, tests).
    pub fn truncate(&mut self, n: usize) {
        let per = self.channels * self.height * self.width;
        self.labels.truncate(n);
        self.pixels.truncate(n * per);
    }

    /// `n` images in a fixed pseudo-random order (the distortion sample: docs/original.md §4 takes a
    /// seeded shuffle of the training split; this is a SplitMix64 Fisher–Yates, not NumPy's).
    pub fn sample(&self, n: usize, seed: u64) -> Classification {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = ksnn_formats::example::SplitMix(seed);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let mut out = Classification {
            pixels: Vec::new(),
            labels: Vec::new(),
            ..self.clone_empty()
        };
        for &i in order.iter().take(n) {
            out.pixels.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    fn clone_empty(&self) -> Classification {
        Classification {
            channels: self.channels,
            height: self.height,
            width: self.width,
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: self.classes.clone(),
        }
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.channels * self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// The classification datasets `ksnn train` and `ksnn eval` read, each from its usual
/// folder under the data root. The command line and experiment files name them by their
/// `clap` value names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    /// `ROOT/mnist/` (IDX files; `tools/setup.sh` installs them).
    Mnist,
    /// `ROOT/cifar-10-batches-bin/`.
    #[value(name = "cifar10")]
    Cifar10,
    /// `ROOT/cifar-100-binary/`.
    #[value(name = "cifar100")]
    Cifar100,
    /// `ROOT/train/` and `ROOT/val/` with one folder per class (ImageNet layout), resized
    /// and centre-cropped to the model's input.
    Folders,
}

impl Dataset {
    /// Loads a split for a model whose input is `size×size` pixels. `root` may also be the
    /// dataset's own folder (`data/mnist` as well as `data`).
    pub fn load(
        self,
        root: &std::path::Path,
        split: Split,
        size: usize,
    ) -> Result<Classification, DataError> {
        let dir = |name: &str| {
            let sub = root.join(name);
            if !sub.is_dir() && root.file_name().is_some_and(|f| f == name) {
                root.to_path_buf()
            } else {
                sub
            }
        };
        match self {
            Dataset::Mnist => mnist::load(&dir("mnist"), split),
            Dataset::Cifar10 => cifar::load(&dir("cifar-10-batches-bin"), 10, split),
            Dataset::Cifar100 => cifar::load(&dir("cifar-100-binary"), 100, split),
            Dataset::Folders => {
                let dir = root.join(if split == Split::Train {
                    "train"
                } else {
                    "val"
                });
                folders::load(&dir, size * 8 / 7, size)
            }
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))
}
