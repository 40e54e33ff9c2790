//! Image decoding (PNG, JPEG) to planar `[0, 1]` floats, label masks (PNG class indices,
//! palette kept), and the resize/crop the classification pipelines use.

use std::path::Path;

use super::{DataError, read};

/// A planar image, values in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// H in pixels.
    pub height: usize,
    /// W in pixels.
    pub width: usize,
    /// `C×H×W` planes, row-major.
    pub pixels: Vec<f32>,
}

fn planar(c: usize, h: usize, w: usize, data: &[u8]) -> Image {
    let mut pixels = vec![0.0; c * h * w];
    for (i, v) in data.iter().enumerate() {
        pixels[(i % c) * h * w + i / c] = f32::from(*v) / 255.0;
    }
    Image {
        channels: c,
        height: h,
        width: w,
        pixels,
    }
}

/// Decodes a PNG or JPEG file (by extension) to RGB or grey.
pub fn load(path: &Path) -> Result<Image, DataError> {
    let bytes = read(path)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let err = |e: &dyn std::fmt::Display| DataError::file(path, format!("cannot decode: {e}"));
    match ext.as_str() {
        "png" => {
            let mut dec = png::Decoder::new(std::io::Cursor::new(&bytes));
            dec.set_transformations(png::Transformations::normalize_to_color8());
            let mut r = dec.read_info().map_err(|e| err(&e))?;
            let mut buf = vec![
                0;
                r.output_buffer_size()
                    .ok_or_else(|| err(&"image too large"))?
            ];
            let info = r.next_frame(&mut buf).map_err(|e| err(&e))?;
            let c = info.color_type.samples();
            let img = planar(
                c,
                info.height as usize,
                info.width as usize,
                &buf[..info.buffer_size()],
            );
            Ok(if c == 4 || c == 2 {
                drop_alpha(img)
            } else {
                img
            })
        }
        "jpg" | "jpeg" => {
            let mut dec = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes));
            let data = dec.decode().map_err(|e| err(&e))?;
            let info = dec.info().ok_or_else(|| err(&"no header"))?;
            let c = match info.pixel_format {
                jpeg_decoder::PixelFormat::L8 => 1,
                jpeg_decoder::PixelFormat::RGB24 => 3,
                other => return Err(err(&format!("unsupported pixel format {other:?}"))),
            };
            Ok(planar(c, info.height as usize, info.width as usize, &data))
        }
        _ => Err(DataError::file(path, "not a .png, .jpg or .jpeg image")),
    }
}

fn drop_alpha(img: Image) -> Image {
    let plane = img.height * img.width;
    let c = img.channels - 1;
    Image {
        channels: c,
        pixels: img.pixels[..c * plane].to_vec(),
        ..img
    }
}

/// A PNG of class indices (VOC and ADE20K masks): raw 8-bit values, palette not expanded.
pub fn load_mask(path: &Path) -> Result<(usize, usize, Vec<u8>), DataError> {
    let bytes = read(path)?;
    let err = |e: &dyn std::fmt::Display| DataError::file(path, format!("cannot decode mask: {e}"));
    let mut dec = png::Decoder::new(std::io::Cursor::new(&bytes));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut r = dec.read_info().map_err(|e| err(&e))?;
    let mut buf = vec![
        0;
        r.output_buffer_size()
            .ok_or_else(|| err(&"mask too large"))?
    ];
    let info = r.next_frame(&mut buf).map_err(|e| err(&e))?;
    if info.bit_depth != png::BitDepth::Eight
        || !matches!(
            info.color_type,
            png::ColorType::Indexed | png::ColorType::Grayscale
        )
    {
        return Err(err(&format!(
            "expected 8-bit indexed or grey class ids, got {:?} {:?}",
            info.color_type, info.bit_depth
        )));
    }
    Ok((
        info.height as usize,
        info.width as usize,
        buf[..info.buffer_size()].to_vec(),
    ))
}

/// Bilinear resize (half-pixel centres, like PyTorch with `align_corners=False`).
pub fn resize(img: &Image, height: usize, width: usize) -> Image {
    let axis = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|d| {
                let s = ((d as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(n_in - 1);
                (i0, (i0 + 1).min(n_in - 1), s - i0 as f32)
            })
            .collect()
    };
    let (ay, ax) = (axis(img.height, height), axis(img.width, width));
    let mut pixels = Vec::with_capacity(img.channels * height * width);
    for c in 0..img.channels {
        let src = &img.pixels[c * img.height * img.width..(c + 1) * img.height * img.width];
        for &(y0, y1, ly) in &ay {
            for &(x0, x1, lx) in &ax {
                let at = |y: usize, x: usize| src[y * img.width + x];
                let top = at(y0, x0) * (1.0 - lx) + at(y0, x1) * lx;
                let bottom = at(y1, x0) * (1.0 - lx) + at(y1, x1) * lx;
                pixels.push(top * (1.0 - ly) + bottom * ly);
            }
        }
    }
    Image {
        channels: img.channels,
        height,
        width,
        pixels,
    }
}

/// Resize so the shorter side is `short`, then crop `size×size` from the centre
/// (the ImageNet test pipeline: 256 then 224).
pub fn resize_center_crop(img: &Image, short: usize, size: usize) -> Image {
    let scale = short as f32 / img.height.min(img.width) as f32;
    let (h, w) = (
        ((img.height as f32 * scale).round() as usize).max(size),
        ((img.width as f32 * scale).round() as usize).max(size),
    );
    let r = resize(img, h, w);
    let (top, left) = ((h - size) / 2, (w - size) / 2);
    let mut pixels = Vec::with_capacity(img.channels * size * size);
    for c in 0..img.channels {
        for y in 0..size {
            let row = c * h * w + (top + y) * w + left;
            pixels.extend_from_slice(&r.pixels[row..row + size]);
        }
    }
    Image {
        channels: img.channels,
        height: size,
        width: size,
        pixels,
    }
}
