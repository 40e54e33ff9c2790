//! What the client feeds the program: image files (PNG, JPEG, NPY) or the MNIST test set, as
//! pixel values in [0, 1] in the program's C×H×W layout; and NPY output files.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ksnn_formats::Shape;
use ksnn_formats::{idx, npy};

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
    let (c, h, w, data) = match ext.as_str() {
        "png" => decode_png(&bytes),
        "jpg" | "jpeg" => decode_jpeg(&bytes),
        "npy" => decode_npy(&bytes),
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

/// Converts an image (interleaved `h×w×c` for PNG/JPEG, planar for NPY is handled by the
/// decoder) to the program's channels; sizes must match.
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
        (3 | 4, 1) => (0..plane)
            .map(|i| 0.299 * planar[i] + 0.587 * planar[plane + i] + 0.114 * planar[2 * plane + i])
            .collect(),
        (a, b) => bail!("image has {a} channels but the program takes {b}"),
    })
}

fn planar_from_interleaved(c: usize, h: usize, w: usize, data: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0; c * h * w];
    for (i, v) in data.iter().enumerate() {
        out[(i % c) * h * w + i / c] = f32::from(*v) / 255.0;
    }
    out
}

fn decode_png(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<f32>)> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().context("not a readable PNG")?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader.next_frame(&mut buf).context("PNG data is corrupt")?;
    let c = info.color_type.samples();
    let (h, w) = (info.height as usize, info.width as usize);
    Ok((
        c,
        h,
        w,
        planar_from_interleaved(c, h, w, &buf[..info.buffer_size()]),
    ))
}

fn decode_jpeg(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<f32>)> {
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    let data = dec.decode().context("not a readable JPEG")?;
    let info = dec.info().context("JPEG without header")?;
    let c = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        other => bail!("unsupported JPEG pixel format {other:?}"),
    };
    let (h, w) = (info.height as usize, info.width as usize);
    Ok((c, h, w, planar_from_interleaved(c, h, w, &data)))
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
    let read = |name: &str| -> Result<idx::Idx> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (run tools/setup.sh, or pass --data)",
                path.display()
            )
        })?;
        idx::parse(&bytes).with_context(|| format!("{}", path.display()))
    };
    let images = read("t10k-images-idx3-ubyte")?;
    let labels = read("t10k-labels-idx1-ubyte")?;
    if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
        bail!("{}: images and labels do not match", dir.display());
    }
    let (h, w) = (images.dims[1] as usize, images.dims[2] as usize);
    let count = images.dims[0] as usize;
    if n > count {
        bail!(
            "asked for {n} test digits but {} has {count}",
            dir.display()
        );
    }
    (0..n)
        .map(|i| {
            let raw = &images.data[i * h * w..(i + 1) * h * w];
            let pixels = fit(
                1,
                h,
                w,
                raw.iter().map(|&v| f32::from(v) / 255.0).collect(),
                shape,
            )?;
            Ok(Sample {
                name: format!("mnist test #{i}"),
                pixels,
                label: Some(labels.data[i]),
            })
        })
        .collect()
}
