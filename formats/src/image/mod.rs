//! Image files as the programs see them: PNG and JPEG decoded to planar channels×H×W `f32` in
//! [0, 1], the PNG class-index masks of segmentation datasets, and MNIST's IDX pairs. The
//! compiler's datasets and the client's inputs both read images here, so a file means the same
//! pixels at training time and at inference time.
//!
//! The alpha rule: alpha is dropped, never composited or premultiplied. Grey+alpha becomes grey,
//! RGBA becomes RGB, and a palette or colour key with transparency becomes grey or RGB, so an
//! image with alpha decodes to exactly the pixels of the same image without it.

pub mod jpeg;
pub mod mnist;
pub mod png;

use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use thiserror::Error;

/// Most bytes one decoded image may take before conversion to floats (256 MiB: an 8192×8192
/// RGBA image), so a header claiming a huge image cannot make the decoder allocate unboundedly.
pub const MAX_DECODED_BYTES: usize = 1 << 28;

/// A planar image: `pixels[c·H·W + y·W + x]`, values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Colour channels: 1 (grey) or 3 (RGB); alpha is dropped.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels·height·width` values in [0, 1], channel-major.
    pub pixels: Vec<f32>,
}

/// The image file types ksnn reads, told apart by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `.png`: every colour type, 1–16 bits.
    Png,
    /// `.jpg` / `.jpeg`: 8-bit grey or RGB.
    Jpeg,
}

impl Kind {
    /// `.png`, `.jpg` or `.jpeg` in any case; `None` for anything else.
    pub fn of(path: &Path) -> Option<Kind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Kind::Png),
            "jpg" | "jpeg" => Some(Kind::Jpeg),
            _ => None,
        }
    }
}

/// What is wrong with an image's bytes.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The PNG decoder's complaint.
    #[error("not a readable PNG: {0}")]
    Png(String),
    /// The JPEG decoder's complaint.
    #[error("not a readable JPEG: {0}")]
    Jpeg(String),
    /// A JPEG pixel format ksnn does not convert (12/16-bit, CMYK).
    #[error("{0} JPEGs are not supported (8-bit grey or RGB only)")]
    JpegPixels(&'static str),
    /// The header claims more than [`MAX_DECODED_BYTES`] decoded.
    #[error("the image is {width}x{height}: more than {MAX_DECODED_BYTES} bytes decoded")]
    TooLarge {
        /// Claimed width in pixels.
        width: u32,
        /// Claimed height in pixels.
        height: u32,
    },
    /// A segmentation mask that is not 8-bit class ids.
    #[error("expected 8-bit indexed or grey class ids, got {0}")]
    Mask(String),
}

/// An image file that cannot be used, with the file it is about.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The file cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        reason: std::io::Error,
    },
    /// The extension names no image type ksnn reads.
    #[error("{}: not a .png, .jpg or .jpeg image", path.display())]
    Type {
        /// The file.
        path: PathBuf,
    },
    /// The bytes do not decode.
    #[error("{}: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: DecodeError,
    },
    /// An MNIST IDX file that is not well formed.
    #[error("{}: {reason}", path.display())]
    Idx {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: crate::FormatError,
    },
    /// MNIST's image and label files disagree.
    #[error(
        "{}: images {images:?} and labels {labels:?} do not match (expected N×H×W images and N labels)",
        dir.display()
    )]
    MnistMismatch {
        /// The MNIST folder.
        dir: PathBuf,
        /// The image file's dimensions.
        images: Vec<u32>,
        /// The label file's dimensions.
        labels: Vec<u32>,
    },
}

/// Decodes an image file's bytes.
pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Image, DecodeError> {
    match kind {
        Kind::Png => png::decode(bytes),
        Kind::Jpeg => jpeg::decode(bytes),
    }
}

/// Reads and decodes a `.png`, `.jpg` or `.jpeg` file.
pub fn load(path: &Path) -> Result<Image, ImageError> {
    let kind = Kind::of(path).ok_or_else(|| ImageError::Type {
        path: path.to_path_buf(),
    })?;
    decode(kind, &read(path)?).map_err(|reason| ImageError::Decode {
        path: path.to_path_buf(),
        reason,
    })
}

/// A PNG of class indices (VOC and ADE20K masks): `(height, width, ids)`, 8-bit values as
/// stored, palette not expanded.
pub fn load_mask(path: &Path) -> Result<(usize, usize, Vec<u8>), ImageError> {
    png::decode_mask(&read(path)?).map_err(|reason| ImageError::Decode {
        path: path.to_path_buf(),
        reason,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|reason| ImageError::Read {
        path: path.to_path_buf(),
        reason,
    })
}

/// Interleaved samples (`h×w×c`, already in [0, 1]) to a planar image without its alpha
/// channel (the module's alpha rule): grey+alpha → grey, RGBA → RGB.
fn planar_without_alpha(c: usize, h: usize, w: usize, samples: &[f32]) -> Image {
    let kept = if c == 2 || c == 4 { c - 1 } else { c };
    let plane = h * w;
    let mut pixels = std::vec![0.0; kept * plane];
    for (i, px) in samples.chunks_exact(c).enumerate() {
        for (k, &v) in px[..kept].iter().enumerate() {
            pixels[k * plane + i] = v;
        }
    }
    Image {
        channels: kept,
        height: h,
        width: w,
        pixels,
    }
}
