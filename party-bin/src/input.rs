//! What the client feeds the program: image files (PNG, JPEG, NPY) or the MNIST test set, as
//! pixel values in [0, 1] in the program's C×H×W layout; and NPY output files. PNG, JPEG and
//! MNIST are read by `ksnn_formats::image`, as the compiler reads its datasets (alpha dropped).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use ksnn_formats::Shape;
use ksnn_formats::image::{self, ImageError, mnist};
use ksnn_formats::npy;

/// One input with its label when known.
pub struct Sample {
    pub name: String,
    pub pixels: Vec<f32>,
    pub label: Option<u8>,
}

/// Loads an image file for a program taking `shape`.
pub fn load_file(path: &Path, shape: Shape) -> Result<Sample> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (c, h, w, data) = match (ext.as_str(), image::Kind::of(path)) {
        ("npy", _) => decode_npy(&bytes),
        (_, Some(kind)) => image::decode(kind, &bytes)
            .map(|i| (i.channels, i.height, i.width, i.pixels))
            .map_err(Into::into),
        _ => bail!("unknown image type `.{ext}`: use .png, .jpg or .npy"),
    }
    .with_context(|| format!("{}", path.display()))?;
    let pixels = fit(c, h, w, data, shape).with_context(|| format!("{}", path.display()))?;
    Ok(Sample {
        name: path.display().to_string(),
        pixels,
        label: None,
    })
}

/// Converts a planar image to the program's channels (grey → copies, RGB → luma); sizes must
/// match.
fn fit(c: usize, h: usize, w: usize, planar: Vec<f32>, shape: Shape) -> Result<Vec<f32>> {
    if (h, w) != (shape.h as usize, shape.w as usize) {
        bail!(
            "image is {h}x{w} but the program takes {}x{}",
            shape.h,
            shape.w
        );
    }
    let plane = h * w;
    Ok(match (c, shape.c) {
        (a, b) if a as u32 == b => planar,
        (1, n) => (0..n).flat_map(|_| planar.iter().copied()).collect(),
        (3, 1) => (0..plane)
            .map(|i| 0.299 * planar[i] + 0.587 * planar[plane + i] + 0.114 * planar[2 * plane + i])
            .collect(),
        (a, b) => bail!("image has {a} channels but the program takes {b}"),
    })
}

/// NPY: `H×W`, `C×H×W` or `1×C×H×W`, values already in [0, 1].
pub fn decode_npy(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<f32>)> {
    let a = npy::decode(bytes)?;
    let (c, h, w) = match a.dims.as_slice() {
        [h, w] => (1, *h, *w),
        [c, h, w] | [1, c, h, w] => (*c, *h, *w),
        other => bail!("NPY shape {other:?} is not H×W, C×H×W or 1×C×H×W"),
    };
    Ok((c, h, w, a.data))
}

/// Writes `rows` (equal lengths) as a float32 NPY array `[rows, cols]`.
pub fn write_npy(path: &Path, rows: &[Vec<f32>]) -> Result<()> {
    let cols = rows.first().map_or(0, Vec::len);
    let data: Vec<f32> = rows.concat();
    std::fs::write(path, npy::encode(&[rows.len(), cols], &data))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The first `n` digits of the MNIST test set installed by `tools/setup.sh` in `data_dir`.
pub fn mnist_test(data_dir: &Path, n: usize, shape: Shape) -> Result<Vec<Sample>> {
    let dir = data_dir.join("mnist");
    let set = mnist::load(&dir, mnist::Set::Test).map_err(|e| match e {
        ImageError::Read { .. } => anyhow!("{e} (run tools/setup.sh, or pass --data)"),
        e => e.into(),
    })?;
    let count = set.len();
    if n > count {
        bail!(
            "asked for {n} test digits but {} has {count}",
            dir.display()
        );
    }
    (0..n)
        .map(|i| {
            let pixels = fit(1, set.height, set.width, set.image(i).to_vec(), shape)?;
            Ok(Sample {
                name: format!("mnist test #{i}"),
                pixels,
                label: Some(set.labels[i]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_file(name: &str, color: png::ColorType, data: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ksnn-input-{}-{name}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 2, 1);
        e.set_color(color);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(data).unwrap();
        path
    }

    #[test]
    fn images_with_alpha_feed_programs_like_the_same_images_without() {
        let rgb = png_file("rgb.png", png::ColorType::Rgb, &[255, 0, 51, 0, 102, 255]);
        let rgba = png_file(
            "rgba.png",
            png::ColorType::Rgba,
            &[255, 0, 51, 9, 0, 102, 255, 0],
        );
        let shape = Shape::new(3, 1, 2);
        let want = load_file(&rgb, shape).unwrap().pixels;
        assert_eq!(want, [1.0, 0.0, 0.0, 0.4, 0.2, 1.0]);
        assert_eq!(load_file(&rgba, shape).unwrap().pixels, want);
        let ga = png_file("ga.png", png::ColorType::GrayscaleAlpha, &[51, 0, 255, 7]);
        assert_eq!(
            load_file(&ga, Shape::new(1, 1, 2)).unwrap().pixels,
            [0.2, 1.0]
        );
        let Err(e) = load_file(&rgba, Shape::new(3, 2, 2)) else {
            panic!("a 1x2 image fed a 2x2 program")
        };
        let e = format!("{e:#}");
        assert!(e.contains("image is 1x2 but the program takes 2x2"), "{e}");
    }
}
