//! The image loader: every PNG colour type decodes, alpha is dropped (an image with alpha gives
//! the pixels of the same image without it), a real JPEG decodes, and broken files give an
//! error that names the file, never a panic.

use std::path::{Path, PathBuf};

use ksnn_formats::image::{self, ImageError, Kind, mnist};
use png::{BitDepth, ColorType};

const JPEG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny.jpg");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-image-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 3×2 PNG; `setup` sets a palette or transparency.
fn png_bytes(
    color: ColorType,
    depth: BitDepth,
    data: &[u8],
    setup: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, 3, 2);
        e.set_color(color);
        e.set_depth(depth);
        setup(&mut e);
        e.write_header().unwrap().write_image_data(data).unwrap();
    }
    out
}

fn png8(color: ColorType, data: &[u8]) -> Vec<u8> {
    png_bytes(color, BitDepth::Eight, data, |_| {})
}

fn decode_png(bytes: &[u8]) -> image::Image {
    image::decode(Kind::Png, bytes).unwrap()
}

const GREY: [u8; 6] = [0, 51, 102, 153, 204, 255];

fn rgb() -> Vec<u8> {
    GREY.iter().flat_map(|&v| [v, 255 - v, v / 3]).collect()
}

#[test]
fn alpha_is_dropped() {
    let grey = decode_png(&png8(ColorType::Grayscale, &GREY));
    assert_eq!((grey.channels, grey.height, grey.width), (1, 2, 3));
    assert_eq!(grey.pixels[1], 0.2);
    let ga: Vec<u8> = GREY.iter().flat_map(|&v| [v, 255 - v]).collect();
    assert_eq!(decode_png(&png8(ColorType::GrayscaleAlpha, &ga)), grey);

    let rgb_img = decode_png(&png8(ColorType::Rgb, &rgb()));
    assert_eq!(rgb_img.channels, 3);
    assert_eq!(
        rgb_img.pixels[6..9],
        [1.0, 0.8, 0.6],
        "planar: the second channel"
    );
    let rgba: Vec<u8> = rgb()
        .chunks(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 40) as u8])
        .collect();
    assert_eq!(decode_png(&png8(ColorType::Rgba, &rgba)), rgb_img);

    // A palette with transparency expands to RGBA, then loses its alpha.
    let palette = rgb();
    let indexed = png_bytes(
        ColorType::Indexed,
        BitDepth::Eight,
        &[0, 1, 2, 3, 4, 5],
        |e| {
            e.set_palette(palette.clone());
            e.set_trns(vec![0u8, 128, 255, 7, 9, 11]);
        },
    );
    assert_eq!(decode_png(&indexed), rgb_img);
}

#[test]
fn bit_depths_decode_to_the_same_values() {
    let grey = decode_png(&png8(ColorType::Grayscale, &GREY));
    let wide: Vec<u8> = GREY
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
        .collect();
    let g16 = png_bytes(ColorType::Grayscale, BitDepth::Sixteen, &wide, |_| {});
    assert_eq!(decode_png(&g16), grey, "16-bit samples keep their value");
    // 1-bit grey: rows `101` and `010`, each row padded to a byte.
    let g1 = png_bytes(
        ColorType::Grayscale,
        BitDepth::One,
        &[0b1010_0000, 0b0100_0000],
        |_| {},
    );
    assert_eq!(decode_png(&g1).pixels, [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn a_real_jpeg_decodes() {
    let img = image::load(Path::new(JPEG)).unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 16, 16));
    assert!(img.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn truncated_and_broken_files_are_errors_not_panics() {
    let pngs = [
        png8(ColorType::Rgba, &[200; 24]),
        png_bytes(ColorType::Grayscale, BitDepth::Sixteen, &[7; 12], |_| {}),
    ];
    // The last 20 bytes are the zlib checksum, the IDAT CRC and IEND, which a decoder may do
    // without; a cut anywhere before them loses pixels and must be an error.
    for bytes in &pngs {
        for n in 0..bytes.len() {
            let r = image::decode(Kind::Png, &bytes[..n]);
            assert!(n + 20 >= bytes.len() || r.is_err(), "PNG cut at {n}");
        }
    }
    let jpeg = std::fs::read(JPEG).unwrap();
    for n in 0..jpeg.len() - 2 {
        // A JPEG cut inside its entropy-coded data may still decode (the decoder pads it);
        // what matters is that no prefix panics.
        let _ = image::decode(Kind::Jpeg, &jpeg[..n]);
    }
    assert!(image::decode(Kind::Jpeg, &jpeg[..100]).is_err());

    let d = dir("broken");
    let cut = d.join("cut.png");
    std::fs::write(&cut, &pngs[0][..pngs[0].len() / 2]).unwrap();
    let e = image::load(&cut).unwrap_err();
    assert!(matches!(e, ImageError::Decode { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("cut.png") && text.contains("not a readable PNG"),
        "{text}"
    );
    let e = image::load(&d.join("missing.jpg")).unwrap_err().to_string();
    assert!(
        e.contains("cannot read") && e.contains("missing.jpg"),
        "{e}"
    );
    let e = image::load(&d.join("image.gif")).unwrap_err().to_string();
    assert!(e.contains("image.gif") && e.contains("not a .png"), "{e}");
}

#[test]
fn masks_keep_their_indices() {
    let d = dir("mask");
    let path = d.join("mask.png");
    let palette = rgb();
    let bytes = png_bytes(
        ColorType::Indexed,
        BitDepth::Eight,
        &[0, 1, 2, 3, 4, 5],
        |e| {
            e.set_palette(palette.clone());
        },
    );
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        image::load_mask(&path).unwrap(),
        (2, 3, vec![0, 1, 2, 3, 4, 5])
    );
    std::fs::write(&path, png8(ColorType::Rgb, &rgb())).unwrap();
    let e = image::load_mask(&path).unwrap_err().to_string();
    assert!(e.contains("mask.png") && e.contains("class ids"), "{e}");
}

#[test]
fn mnist_pairs() {
    let d = dir("mnist");
    let idx = |name: &str, dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter()
            .for_each(|x| b.extend_from_slice(&x.to_be_bytes()));
        b.extend_from_slice(data);
        std::fs::write(d.join(name), b).unwrap();
    };
    idx("t10k-images-idx3-ubyte", &[2, 1, 2], &[0, 255, 51, 102]);
    idx("t10k-labels-idx1-ubyte", &[2], &[7, 3]);
    let m = mnist::load(&d, mnist::Set::Test).unwrap();
    assert_eq!((m.len(), m.height, m.width), (2, 1, 2));
    assert_eq!(
        (m.image(1), m.labels.as_slice()),
        ([0.2, 0.4].as_slice(), [7, 3].as_slice())
    );
    let e = mnist::load(&d, mnist::Set::Train).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    idx("t10k-labels-idx1-ubyte", &[3], &[7, 3, 1]);
    let e = mnist::load(&d, mnist::Set::Test).unwrap_err().to_string();
    assert!(e.contains("do not match"), "{e}");
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), b"junk").unwrap();
    let e = mnist::load(&d, mnist::Set::Test).unwrap_err().to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte") && e.contains("IDX"),
        "{e}"
    );
}
