//! MNIST as `tools/setup.sh` installs it: `{train,t10k}-images-idx3-ubyte` and
//! `{train,t10k}-labels-idx1-ubyte` in one folder.

use std::path::Path;
use std::vec::Vec;

use super::{ImageError, read};
use crate::idx;

/// Which of MNIST's two sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// The 60,000 training digits.
    Train,
    /// The 10,000 test digits.
    Test,
}

impl Set {
    fn prefix(self) -> &'static str {
        match self {
            Set::Train => "train",
            Set::Test => "t10k",
        }
    }
}

/// Grey digits with their labels, pixels `N×H×W` in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// Rows per image (28).
    pub height: usize,
    /// Columns per image (28).
    pub width: usize,
    /// `N·H·W` grey values in [0, 1], image after image.
    pub pixels: Vec<f32>,
    /// The digit of each image, 0–9.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `i`-th image, `H×W`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads one set from `dir`; images and labels must agree in number.
pub fn load(dir: &Path, set: Set) -> Result<Mnist, ImageError> {
    let parse = |kind: &str| -> Result<idx::Idx, ImageError> {
        let path = dir.join(std::format!("{}-{kind}", set.prefix()));
        idx::parse(&read(&path)?).map_err(|reason| ImageError::Idx { path, reason })
    };
    let images = parse("images-idx3-ubyte")?;
    let labels = parse("labels-idx1-ubyte")?;
    if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
        return Err(ImageError::MnistMismatch {
            dir: dir.to_path_buf(),
            images: images.dims,
            labels: labels.dims,
        });
    }
    Ok(Mnist {
        height: images.dims[1] as usize,
        width: images.dims[2] as usize,
        pixels: images.data.iter().map(|&v| f32::from(v) / 255.0).collect(),
        labels: labels.data,
    })
}
