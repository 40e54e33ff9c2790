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
    /// The dataset is not under the data root: where it was looked for, the layout it
    /// needs and where it is normally obtained (nothing is downloaded at run time).
    #[error(
        "{dataset} is not in {path}: {reason}\n  expected layout: {layout}\n  obtain it from: {obtain} (ksnn downloads nothing; unpack it there or pass the data root)"
    )]
    Missing {
        /// The dataset's name as `--dataset` spells it.
        dataset: &'static str,
        /// The folder it was looked for in.
        path: PathBuf,
        /// What was missing.
        reason: String,
        /// The files and folders the loader reads.
        layout: &'static str,
        /// Where the dataset is normally obtained.
        obtain: &'static str,
    },
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

/// Images of one size with class labels, pixels in `[0, 1]`, `N×C×H×W` row-major; or, for
/// segmentation, with a class-id mask per image (`labels` then empty).
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
    /// One class index per image, below the number of classes (empty for segmentation).
    pub labels: Vec<u32>,
    /// Class names when the dataset has them.
    pub classes: Vec<String>,
    /// Segmentation only: every image's class ids, `N×H×W` row-major, 255 = ignore; empty
    /// for classification.
    pub masks: Vec<u8>,
}

impl Classification {
    /// Number of images.
    pub fn len(&self) -> usize {
        let per = self.channels * self.height * self.width;
        self.pixels
            .len()
            .checked_div(per)
            .unwrap_or(self.labels.len())
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the images carry masks (segmentation) rather than labels.
    pub fn is_segmentation(&self) -> bool {
        !self.masks.is_empty()
    }

    /// Keeps the first `n` images (quick runs, tests).
    pub fn truncate(&mut self, n: usize) {
        let per = self.channels * self.height * self.width;
        self.labels.truncate(n);
        self.pixels.truncate(n * per);
        self.masks.truncate(n * self.height * self.width);
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
            if let Some(&l) = self.labels.get(i) {
                out.labels.push(l);
            }
            out.masks.extend_from_slice(self.mask(i));
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
            masks: Vec::new(),
        }
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.channels * self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Class ids of image `i`'s pixels (`H×W`; empty for classification).
    pub fn mask(&self, i: usize) -> &[u8] {
        if self.masks.is_empty() {
            return &[];
        }
        let n = self.height * self.width;
        &self.masks[i * n..(i + 1) * n]
    }
}

/// The datasets `ksnn train` and `ksnn eval` read, each from its usual folder under the data
/// root: classification (MNIST, CIFAR, ImageNet-style class folders) and segmentation
/// (ADE20K, Pascal VOC). The command line and experiment files name them by their `clap` value
/// names.
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
    /// `ROOT/ADEChallengeData2016/` (or ROOT itself): `images/{training,validation}/*.jpg`
    /// and `annotations/…/*.png`; 150 classes, annotation 0 ("other") ignored.
    #[value(name = "ade20k")]
    Ade20k,
    /// `ROOT/VOCdevkit/VOC2012/` (or ROOT itself): `JPEGImages/`, `SegmentationClass/`,
    /// `ImageSets/Segmentation/{train,val}.txt`, and the SBD augmentation
    /// (`SegmentationClassAug/`, `ImageSets/Segmentation/aug.txt`) when present; 21 classes.
    Voc,
}

/// Where each dataset lives and comes from, for the message when it is missing.
struct Source {
    name: &'static str,
    layout: &'static str,
    obtain: &'static str,
}

const CIFAR10: Source = Source {
    name: "cifar10",
    layout: "ROOT/cifar-10-batches-bin/{data_batch_1.bin … data_batch_5.bin, test_batch.bin}",
    obtain: "cifar-10-binary.tar.gz (the binary version) from the CIFAR page of Alex Krizhevsky at the University of Toronto, unpacked in ROOT",
};
const CIFAR100: Source = Source {
    name: "cifar100",
    layout: "ROOT/cifar-100-binary/{train.bin, test.bin}",
    obtain: "cifar-100-binary.tar.gz (the binary version) from the CIFAR page of Alex Krizhevsky at the University of Toronto, unpacked in ROOT",
};
const FOLDERS: Source = Source {
    name: "folders",
    layout: "ROOT/train/<class>/<image>.JPEG and ROOT/val/<class>/<image>.JPEG, one folder per class (ImageNet: n01440764 …)",
    obtain: "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from the ImageNet site, image-net.org (after registration); the train tar holds one tar per class, and the val images must be sorted into class folders (e.g. with the widely used valprep.sh)",
};
const ADE20K: Source = Source {
    name: "ade20k",
    layout: "ROOT/ADEChallengeData2016/images/{training,validation}/ADE_*.jpg and ROOT/ADEChallengeData2016/annotations/{training,validation}/ADE_*.png (class ids 0–150, 0 = other)",
    obtain: "ADEChallengeData2016.zip from the MIT Scene Parsing Benchmark (sceneparsing.csail.mit.edu), unzipped in ROOT",
};
const VOC: Source = Source {
    name: "voc",
    layout: "ROOT/VOCdevkit/VOC2012/{JPEGImages/<id>.jpg, SegmentationClass/<id>.png (class ids 0–20, 255 = border), ImageSets/Segmentation/{train,val}.txt}; optionally the SBD augmentation as SegmentationClassAug/<id>.png and ImageSets/Segmentation/aug.txt",
    obtain: "VOCtrainval_11-May-2012.tar from the PASCAL VOC 2012 challenge page (Oxford), unpacked in ROOT; for the original's \"voc12aug\" training set also the Semantic Boundaries Dataset (SBD, benchmark.tgz, Hariharan et al.) converted into SegmentationClassAug/ and aug.txt (as mmsegmentation's tools/convert_datasets/voc_aug.py does)",
};

impl Dataset {
    /// Whether its items are images with per-pixel masks.
    pub fn is_segmentation(self) -> bool {
        matches!(self, Dataset::Ade20k | Dataset::Voc)
    }

    /// Loads a split for a model whose input is `size×size` pixels. `root` may also be the
    /// dataset's own folder (`data/mnist` as well as `data`). A dataset that is not there is a
    /// [`DataError::Missing`] naming the layout and where the dataset is obtained.
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
        let missing = |src: &Source, path: PathBuf, reason: String| DataError::Missing {
            dataset: src.name,
            path,
            reason,
            layout: src.layout,
            obtain: src.obtain,
        };
        // The dataset's folder, or `Missing` when `probe` (a file or folder in it) is absent.
        let find = |src: &Source, candidates: &[PathBuf], probe: &str| {
            candidates
                .iter()
                .find(|d| d.join(probe).exists())
                .cloned()
                .ok_or_else(|| {
                    missing(
                        src,
                        root.to_path_buf(),
                        format!("no {probe} in {}", candidates[0].display()),
                    )
                })
        };
        match self {
            Dataset::Mnist => mnist::load(&dir("mnist"), split),
            Dataset::Cifar10 => {
                let d = find(&CIFAR10, &[dir("cifar-10-batches-bin")], "test_batch.bin")?;
                cifar::load(&d, 10, split)
            }
            Dataset::Cifar100 => {
                let d = find(&CIFAR100, &[dir("cifar-100-binary")], "test.bin")?;
                cifar::load(&d, 100, split)
            }
            Dataset::Folders => {
                let sub = if split == Split::Train {
                    "train"
                } else {
                    "val"
                };
                let d = find(&FOLDERS, &[root.to_path_buf()], sub)?;
                folders::load(&d.join(sub), size * 8 / 7, size)
            }
            Dataset::Ade20k => {
                let d = find(
                    &ADE20K,
                    &[root.join("ADEChallengeData2016"), root.to_path_buf()],
                    "images",
                )?;
                segmentation::load_split(&d, segmentation::Layout::Ade20k, split, size)
            }
            Dataset::Voc => {
                let d = find(
                    &VOC,
                    &[
                        root.join("VOCdevkit/VOC2012"),
                        root.join("VOC2012"),
                        root.to_path_buf(),
                    ],
                    "JPEGImages",
                )?;
                segmentation::load_split(&d, segmentation::Layout::Voc, split, size)
            }
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))
}
