//! Segmentation layouts: ADE20K (`images/{training,validation}/X.jpg` with
//! `annotations/{training,validation}/X.png`) and Pascal VOC (`JPEGImages/X.jpg`,
//! `SegmentationClass/X.png`, ids in `ImageSets/Segmentation/{train,val}.txt`; the SBD
//! augmentation, `SegmentationClassAug/X.png` listed in `ImageSets/Segmentation/aug.txt`,
//! joins the training split when present, as mmseg's `voc12aug`).

use std::path::{Path, PathBuf};

use super::image::{resize_center_crop, resize_center_crop_mask};
use super::{Classification, DataError, Split};
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
            let mut pairs: Vec<Pair> = text
                .split_whitespace()
                .map(|id| Pair {
                    image: root.join(format!("JPEGImages/{id}.jpg")),
                    mask: root.join(format!("SegmentationClass/{id}.png")),
                })
                .collect();
            let aug = root.join("ImageSets/Segmentation/aug.txt");
            if split == Split::Train && aug.is_file() {
                let text = std::fs::read_to_string(&aug)
                    .map_err(|e| DataError::file(&aug, format!("cannot read: {e}")))?;
                let known: std::collections::HashSet<PathBuf> =
                    pairs.iter().map(|p| p.image.clone()).collect();
                let extra: Vec<Pair> = text
                    .split_whitespace()
                    .map(|id| Pair {
                        image: root.join(format!("JPEGImages/{id}.jpg")),
                        mask: root.join(format!("SegmentationClassAug/{id}.png")),
                    })
                    .filter(|p| !known.contains(&p.image))
                    .collect();
                pairs.extend(extra);
            }
            pairs
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

/// A split decoded for a model taking `size×size` RGB images: each image resized so its shorter
/// side is `size` and centre-cropped (the original's distortion sample, docs/original.md §4),
/// its mask alike with nearest sampling. ADE20K's annotation 0 ("other") becomes the ignore
/// label 255 and the classes 1–150 become 0–149 (mmseg's `reduce_zero_label`); VOC's ids are
/// kept (0–20, 255 = border).
pub fn load_split(
    root: &Path,
    layout: Layout,
    split: Split,
    size: usize,
) -> Result<Classification, DataError> {
    let pairs = list(root, layout, split)?;
    let mut out = Classification {
        channels: 3,
        height: size,
        width: size,
        pixels: Vec::with_capacity(pairs.len() * 3 * size * size),
        labels: Vec::new(),
        classes: Vec::new(),
        masks: Vec::with_capacity(pairs.len() * size * size),
    };
    for pair in &pairs {
        let (mut img, mask) = load(pair)?;
        if img.channels == 1 {
            img.pixels = img.pixels.repeat(3);
            img.channels = 3;
        }
        out.pixels
            .extend(resize_center_crop(&img, size, size).pixels);
        let mask = resize_center_crop_mask(&mask, img.height, img.width, size, size);
        out.masks.extend(mask.into_iter().map(|m| match layout {
            Layout::Ade20k if m == 0 || m == 255 => 255,
            Layout::Ade20k => m - 1,
            Layout::Voc => m,
        }));
    }
    Ok(out)
}
