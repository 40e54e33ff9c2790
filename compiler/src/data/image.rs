//! The resize and crop the classification pipelines use; decoding is `ksnn_formats::image`.

use ksnn_formats::image::Image;

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

/// The size after scaling the shorter side of `height×width` to `short` (at least `size`
/// either way, so a `size×size` crop fits).
fn scaled(height: usize, width: usize, short: usize, size: usize) -> (usize, usize) {
    let scale = short as f32 / height.min(width) as f32;
    (
        ((height as f32 * scale).round() as usize).max(size),
        ((width as f32 * scale).round() as usize).max(size),
    )
}

/// Resize so the shorter side is `short`, then crop `size×size` from the centre
/// (the ImageNet test pipeline: 256 then 224).
pub fn resize_center_crop(img: &Image, short: usize, size: usize) -> Image {
    let (h, w) = scaled(img.height, img.width, short, size);
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

/// A class-id mask (`height×width`) through the same geometry as [`resize_center_crop`], with
/// nearest-neighbour sampling (half-pixel centres) so ids stay ids.
pub fn resize_center_crop_mask(
    mask: &[u8],
    height: usize,
    width: usize,
    short: usize,
    size: usize,
) -> Vec<u8> {
    let (h, w) = scaled(height, width, short, size);
    let (top, left) = ((h - size) / 2, (w - size) / 2);
    let near = |d: usize, n_in: usize, n_out: usize| {
        (((d as f32 + 0.5) * n_in as f32 / n_out as f32) as usize).min(n_in - 1)
    };
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let sy = near(top + y, height, h);
        for x in 0..size {
            out.push(mask[sy * width + near(left + x, width, w)]);
        }
    }
    out
}
