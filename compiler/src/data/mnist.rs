//! MNIST in IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…`), as
//! `tools/setup.sh` installs them under `data/mnist/`.

use std::path::Path;

use ksnn_formats::idx;

use super::{Classification, DataError, Split, read};

/// One split from `dir` (the folder holding the four IDX files): 1×28×28 images, classes
/// `0`–`9`.
pub fn load(dir: &Path, split: Split) -> Result<Classification, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let parse = |name: String| -> Result<idx::Idx, DataError> {
        let path = dir.join(&name);
        idx::parse(&read(&path)?).map_err(|e| DataError::file(&path, e))
    };
    let images = parse(format!("{prefix}-images-idx3-ubyte"))?;
    let labels = parse(format!("{prefix}-labels-idx1-ubyte"))?;
    if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
        return Err(DataError::Layout {
            path: dir.to_path_buf(),
            reason: format!(
                "images {:?} and labels {:?} do not match",
                images.dims, labels.dims
            ),
            expected: "N×H×W images and N labels",
        });
    }
    Ok(Classification {
        channels: 1,
        height: images.dims[1] as usize,
        width: images.dims[2] as usize,
        pixels: images.data.iter().map(|&v| f32::from(v) / 255.0).collect(),
        labels: labels.data.iter().map(|&l| u32::from(l)).collect(),
        classes: (0..10).map(|d| d.to_string()).collect(),
    })
}
