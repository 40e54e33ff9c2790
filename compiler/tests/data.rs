//! Every dataset loader on a tiny fixture written in the real on-disk format, and the errors
//! for missing or malformed data.

use std::path::{Path, PathBuf};

use ksnn_compiler::data::segmentation::{self, Layout};
use ksnn_compiler::data::{Split, cifar, folders, image, mnist};
use ksnn_formats::image::Image;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    dims.iter()
        .for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

fn png_file(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(color);
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(data).unwrap();
}

const JPEG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../formats/tests/fixtures/tiny.jpg"
);

#[test]
fn mnist_idx() {
    let d = dir("mnist");
    idx(
        &d.join("t10k-images-idx3-ubyte"),
        &[2, 2, 2],
        &[0, 255, 51, 102, 1, 2, 3, 4],
    );
    idx(&d.join("t10k-labels-idx1-ubyte"), &[2], &[7, 3]);
    let m = mnist::load(&d, Split::Test).unwrap();
    assert_eq!((m.len(), m.channels, m.height, m.width), (2, 1, 2, 2));
    assert_eq!(m.labels, [7, 3]);
    assert_eq!(m.image(0), [0.0, 1.0, 0.2, 0.4]);
    let err = mnist::load(&d, Split::Train).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    idx(&d.join("t10k-labels-idx1-ubyte"), &[3], &[7, 3, 1]);
    assert!(
        mnist::load(&d, Split::Test)
            .unwrap_err()
            .to_string()
            .contains("do not match")
    );
}

#[test]
fn cifar_binaries() {
    let d = dir("cifar");
    let record = |label: &[u8], v: u8| {
        let mut r = label.to_vec();
        r.extend(std::iter::repeat_n(v, 3072));
        r
    };
    std::fs::write(
        d.join("test_batch.bin"),
        [record(&[4], 255), record(&[9], 0)].concat(),
    )
    .unwrap();
    let c = cifar::load(&d, 10, Split::Test).unwrap();
    assert_eq!(c.labels, [4, 9]);
    assert_eq!(c.image(0)[3071], 1.0);
    std::fs::write(d.join("test.bin"), [record(&[1, 42], 0)].concat()).unwrap();
    assert_eq!(
        cifar::load(&d, 100, Split::Test).unwrap().labels,
        [42],
        "the fine label"
    );
    std::fs::write(d.join("test_batch.bin"), vec![0u8; 3000]).unwrap();
    let err = cifar::load(&d, 10, Split::Test).unwrap_err().to_string();
    assert!(err.contains("whole number of records"), "{err}");
    std::fs::write(d.join("test_batch.bin"), record(&[12], 0)).unwrap();
    assert!(
        cifar::load(&d, 10, Split::Test)
            .unwrap_err()
            .to_string()
            .contains("label 12")
    );
}

#[test]
fn class_folders() {
    let d = dir("folders");
    std::fs::create_dir_all(d.join("zebra")).unwrap();
    std::fs::create_dir_all(d.join("ant")).unwrap();
    std::fs::copy(JPEG, d.join("zebra/a.jpg")).unwrap();
    png_file(
        &d.join("ant/b.png"),
        4,
        2,
        png::ColorType::Grayscale,
        &[255; 8],
    );
    let c = folders::load(&d, 8, 8).unwrap();
    assert_eq!(c.classes, ["ant", "zebra"]);
    assert_eq!(c.labels, [0, 1]);
    assert_eq!((c.channels, c.height, c.width), (3, 8, 8));
    assert!(
        c.image(0).iter().all(|&v| (v - 1.0).abs() < 1e-6),
        "white grey image to RGB"
    );
    let jpeg = ksnn_formats::image::load(Path::new(JPEG)).unwrap();
    assert_eq!((jpeg.channels, jpeg.height, jpeg.width), (3, 16, 16));
    assert!(
        folders::load(&dir("empty"), 8, 8)
            .unwrap_err()
            .to_string()
            .contains("class folders")
    );
}

#[test]
fn ade20k_and_voc_layouts() {
    let d = dir("ade");
    for sub in ["images/training", "annotations/training"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::copy(JPEG, d.join("images/training/ADE_1.jpg")).unwrap();
    png_file(
        &d.join("annotations/training/ADE_1.png"),
        16,
        16,
        png::ColorType::Grayscale,
        &[3; 256],
    );
    let pairs = segmentation::list(&d, Layout::Ade20k, Split::Train).unwrap();
    let (img, mask) = segmentation::load(&pairs[0]).unwrap();
    assert_eq!((img.height, img.width, mask.len()), (16, 16, 256));
    assert!(mask.iter().all(|&m| m == 3));
    png_file(
        &d.join("annotations/training/ADE_1.png"),
        8,
        8,
        png::ColorType::Grayscale,
        &[3; 64],
    );
    assert!(
        segmentation::load(&pairs[0])
            .unwrap_err()
            .to_string()
            .contains("mask is 8x8")
    );
    assert!(
        segmentation::list(&d, Layout::Ade20k, Split::Test)
            .unwrap_err()
            .to_string()
            .contains("ADE20K")
    );

    let v = dir("voc");
    for sub in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"] {
        std::fs::create_dir_all(v.join(sub)).unwrap();
    }
    std::fs::copy(JPEG, v.join("JPEGImages/2007_000032.jpg")).unwrap();
    png_file(
        &v.join("SegmentationClass/2007_000032.png"),
        16,
        16,
        png::ColorType::Grayscale,
        &[255; 256],
    );
    std::fs::write(v.join("ImageSets/Segmentation/train.txt"), "2007_000032\n").unwrap();
    let pairs = segmentation::list(&v, Layout::Voc, Split::Train).unwrap();
    assert_eq!(
        segmentation::load(&pairs[0]).unwrap().1[0],
        255,
        "the ignore label survives"
    );
    std::fs::write(
        v.join("ImageSets/Segmentation/train.txt"),
        "2007_000032\n2007_999999\n",
    )
    .unwrap();
    let err = segmentation::list(&v, Layout::Voc, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2007_999999") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn resize_and_crop() {
    let img = Image {
        channels: 1,
        height: 2,
        width: 4,
        pixels: vec![0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    };
    let r = image::resize_center_crop(&img, 4, 4);
    assert_eq!((r.height, r.width), (4, 4));
    let same = image::resize(&img, 2, 4);
    assert_eq!(same, img, "resizing to the same size is the identity");
}
