//! Segmentation layouts: ADE20K (`images/{training,validation}/X.jpg` with
//! `annotations/{training,validation}/X.png`) and Pascal VOC (`JPEGImages/X.jpg`,
//! `SegmentationClass/X.png`, ids in `ImageSets/Segmentation/{train,val}.txt`).

use std::path::{Path, PathBuf};

use super::{DataError, Split};
use ksnn_formats::image::{self, Image};

/// The dataset layouts known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// ADE20K: `images/{training,validation}/` and `annotations/…` with the same stems.
    Ade20k,
    /// Pascal VOC: `JPEGImages/`, `SegmentationClass/`, split lists in `ImageSets/Segmentation/`.
    Voc,
}

/// One image and its class-id mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The JPEG image.
    pub image: PathBuf,
    /// The PNG of class ids (255 = ignore); it must have the image's size.
    pub mask: PathBuf,
}

/// The image/mask pairs of a split, checked to exist.
pub fn list(root: &Path, layout: Layout, split: Split) -> Result<Vec<Pair>, DataError> {
    let pairs: Vec<Pair> = match layout {
        Layout::Ade20k => {
            let sub = if split == Split::Train {
                "training"
            } else {
                "validation"
            };
            let dir = root.join("images").join(sub);
            let mut stems: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|e| DataError::Layout {
                    path: dir.clone(),
                    reason: format!("cannot list: {e}"),
                    expected: "ADE20K: images/{training,validation}/*.jpg and annotations/…/*.png",
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect();
            stems.sort();
            stems
                .into_iter()
                .map(|s| Pair {
                    image: dir.join(format!("{s}.jpg")),
                    mask: root.join("annotations").join(sub).join(format!("{s}.png")),
                })
                .collect()
        }
        Layout::Voc => {
            let list = root
                .join("ImageSets/Segmentation")
                .join(if split == Split::Train {
                    "train.txt"
                } else {
                    "val.txt"
                });
            let text = std::fs::read_to_string(&list).map_err(|e| DataError::Layout {
                path: list.clone(),
                reason: format!("cannot read: {e}"),
                expected: "VOC: ImageSets/Segmentation/{train,val}.txt, JPEGImages/, SegmentationClass/",
            })?;
            text.split_whitespace()
                .map(|id| Pair {
                    image: root.join(format!("JPEGImages/{id}.jpg")),
                    mask: root.join(format!("SegmentationClass/{id}.png")),
                })
                .collect()
        }
    };
    for p in &pairs {
        for f in [&p.image, &p.mask] {
            if !f.is_file() {
                return Err(DataError::file(f, "listed but missing"));
            }
        }
    }
    if pairs.is_empty() {
        return Err(DataError::file(root, "no images in this split"));
    }
    Ok(pairs)
}

/// Decodes one pair; the mask must have the image's size.
pub fn load(pair: &Pair) -> Result<(Image, Vec<u8>), DataError> {
    let img = image::load(&pair.image)?;
    let (h, w, mask) = image::load_mask(&pair.mask)?;
    if (h, w) != (img.height, img.width) {
        return Err(DataError::file(
            &pair.mask,
            format!(
                "mask is {h}x{w} but the image is {}x{}",
                img.height, img.width
            ),
        ));
    }
    Ok((img, mask))
}
