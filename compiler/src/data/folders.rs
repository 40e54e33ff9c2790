//! ImageNet-style class folders: `root/<class>/<image>.{jpg,jpeg,png}`; classes are the
//! sub-directory names in sorted order.

use std::path::{Path, PathBuf};

use ksnn_formats::image::{self, Kind};

use super::image::resize_center_crop;
use super::{Classification, DataError};

/// Image files with their class index.
pub type Labelled = Vec<(PathBuf, u32)>;

/// The images under `root` with their class index, and the class names.
pub fn list(root: &Path) -> Result<(Labelled, Vec<String>), DataError> {
    let mut classes: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| DataError::file(root, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::Layout {
            path: root.to_path_buf(),
            reason: "no class folders".into(),
            expected: "root/<class>/<image>.jpg",
        });
    }
    let mut items = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| DataError::file(&dir, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| Kind::of(p).is_some())
            .collect();
        files.sort();
        items.extend(files.into_iter().map(|p| (p, label as u32)));
    }
    Ok((items, classes))
}

/// Loads every image, resized so the shorter side is `short` and centre-cropped to
/// `size×size`, as RGB.
pub fn load(root: &Path, short: usize, size: usize) -> Result<Classification, DataError> {
    let (items, classes) = list(root)?;
    let mut out = Classification {
        channels: 3,
        height: size,
        width: size,
        pixels: Vec::new(),
        labels: Vec::new(),
        classes,
        masks: Vec::new(),
    };
    for (path, label) in items {
        let mut img = image::load(&path)?;
        if img.channels == 1 {
            img.pixels = img.pixels.repeat(3);
            img.channels = 3;
        }
        out.pixels
            .extend(resize_center_crop(&img, short, size).pixels);
        out.labels.push(label);
    }
    Ok(out)
}
