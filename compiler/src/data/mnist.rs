//! MNIST in IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…`), as
//! `tools/setup.sh` installs them under `data/mnist/`; read by `ksnn_formats::image::mnist`,
//! as the client reads them.

use std::path::Path;

use ksnn_formats::image::mnist::{self, Set};

use super::{Classification, DataError, Split};

/// One split from `dir` (the folder holding the four IDX files): 1×28×28 images, classes
/// `0`–`9`.
pub fn load(dir: &Path, split: Split) -> Result<Classification, DataError> {
    let set = match split {
        Split::Train => Set::Train,
        Split::Test => Set::Test,
    };
    let m = mnist::load(dir, set)?;
    Ok(Classification {
        channels: 1,
        height: m.height,
        width: m.width,
        pixels: m.pixels,
        labels: m.labels.iter().map(|&l| u32::from(l)).collect(),
        classes: (0..10).map(|d| d.to_string()).collect(),
        masks: Vec::new(),
    })
}
