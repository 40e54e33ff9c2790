//! The original's four experiments as shipped recipes (`experiments/*.toml`): each runs its
//! stages — zoo model, training with the recipe's optimiser and schedule, distortion, knapsack,
//! fine-tuning, compile, one secure inference by three `ksnn-party` processes — on a tiny
//! dataset written here in the real on-disk layout (CIFAR-100 binary records, ImageNet class
//! folders of JPEGs, ADE20K images and annotations, VOC JPEGImages / SegmentationClass /
//! ImageSets), with the recipe's sizes cut down: 32×32 inputs, a step or an epoch of two
//! images, the distortion of one layer on two images. A missing dataset names its layout and
//! where it is obtained.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use ksnn_compiler::data::{DataError, Dataset, Split};
use ksnn_compiler::experiment::Experiment;

mod common;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const JPEG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../formats/tests/fixtures/tiny.jpg"
);

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-recipe-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 16×16 mask PNG: grey, or indexed with a palette (VOC's SegmentationClass files are).
fn mask_png(path: &Path, ids: &[u8], indexed: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), 16, 16);
    if indexed {
        e.set_color(png::ColorType::Indexed);
        e.set_palette(
            (0..=255u8)
                .flat_map(|i| [i, i / 2, 255 - i])
                .collect::<Vec<u8>>(),
        );
    } else {
        e.set_color(png::ColorType::Grayscale);
    }
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(ids).unwrap();
}

/// A 16×16 map: class `a` on the left half, `b` on the right, a `border` column between.
fn halves(a: u8, b: u8, border: u8) -> Vec<u8> {
    (0..256)
        .map(|p| match p % 16 {
            7 => border,
            x if x < 7 => a,
            _ => b,
        })
        .collect()
}

fn copy_jpeg(to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(JPEG, to).unwrap();
}

/// `cifar-100-binary/{train,test}.bin`: records of a coarse and a fine label byte and 3072
/// pixel bytes.
fn cifar100(root: &Path) {
    let d = root.join("cifar-100-binary");
    std::fs::create_dir_all(&d).unwrap();
    for (name, n) in [("train.bin", 4u8), ("test.bin", 2)] {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend([i % 20, 7 * i + 3]);
            b.extend((0..3072u32).map(|p| ((p * (u32::from(i) + 3)) % 251) as u8));
        }
        std::fs::write(d.join(name), b).unwrap();
    }
}

/// `train/<class>/*.JPEG` and `val/<class>/*.JPEG`, two classes; the training folders also
/// hold a PNG each, so that the images differ (one JPEG fixture is all there is, and a batch
/// of identical images has no variance for the batch norms of ResNet-50's 1×1 stage).
fn imagenet(root: &Path) {
    for (k, class) in ["n01440764", "n01443537"].iter().enumerate() {
        copy_jpeg(&root.join(format!("train/{class}/{class}_0.JPEG")));
        copy_jpeg(&root.join(format!("val/{class}/{class}_0.JPEG")));
        let f = std::fs::File::create(root.join(format!("train/{class}/{class}_1.png"))).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 16, 16);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let px: Vec<u8> = (0..16 * 16 * 3)
            .map(|p| ((p * (k + 3) * 37) % 256) as u8)
            .collect();
        e.write_header().unwrap().write_image_data(&px).unwrap();
    }
}

/// `ADEChallengeData2016/{images,annotations}/{training,validation}/`; annotation 0 is
/// "other" (ignored), classes 1–150.
fn ade20k(root: &Path) {
    let d = root.join("ADEChallengeData2016");
    for (sub, n) in [("training", 2), ("validation", 1)] {
        for i in 0..n {
            let stem = format!("ADE_{sub}_{:08}", i + 1);
            copy_jpeg(&d.join(format!("images/{sub}/{stem}.jpg")));
            mask_png(
                &d.join(format!("annotations/{sub}/{stem}.png")),
                &halves(1 + i, 13, 0),
                false,
            );
        }
    }
}

/// `VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation}` with indexed
/// masks and the 255 border.
fn voc(root: &Path) {
    let d = root.join("VOCdevkit/VOC2012");
    let ids = ["2007_000032", "2007_000039", "2007_000063"];
    for (i, id) in ids.iter().enumerate() {
        copy_jpeg(&d.join(format!("JPEGImages/{id}.jpg")));
        mask_png(
            &d.join(format!("SegmentationClass/{id}.png")),
            &halves(0, 1 + i as u8, 255),
            true,
        );
    }
    let sets = d.join("ImageSets/Segmentation");
    std::fs::create_dir_all(&sets).unwrap();
    std::fs::write(sets.join("train.txt"), format!("{}\n{}\n", ids[0], ids[1])).unwrap();
    std::fs::write(sets.join("val.txt"), format!("{}\n", ids[2])).unwrap();
}

/// The recipe `name` with tiny sizes: its schedules, optimiser and stages as shipped, on 32×32
/// inputs, a step or an epoch of up to four images, one measured layer, one secure image.
fn tiny(name: &str, dir: &Path, root: &Path, layer: &str) -> PathBuf {
    let mut cfg = Experiment::load(&repo().join(format!("experiments/{name}.toml"))).unwrap();
    cfg.run_dir = dir.join("run");
    cfg.data.root = root.to_path_buf();
    cfg.model.size = Some([32, 32]);
    for t in [&mut cfg.train, &mut cfg.finetune] {
        if t.iterations.is_some() {
            t.iterations = Some(1);
        } else if t.epochs > 0 {
            t.epochs = 1;
        }
        t.batch = Some(4);
    }
    cfg.distortion.images = 2;
    cfg.distortion.layers = Some(vec![layer.into()]);
    cfg.compile.calibration = 2;
    cfg.secure.images = 1;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    path
}

/// Runs the tiny recipe through `ksnn pipeline`; the output.
fn run(name: &str, layer: &str, fixture: fn(&Path)) -> String {
    let party = Path::new(env!("CARGO_BIN_EXE_ksnn")).with_file_name("ksnn-party");
    assert!(
        party.is_file(),
        "build ksnn-party first (cargo build -p ksnn-party): {}",
        party.display()
    );
    let dir = tmp(name);
    let root = dir.join("data");
    fixture(&root);
    let config = tiny(name, &dir, &root, layer);
    let started = std::time::Instant::now();
    let (ok, text) = common::ksnn_in(
        Some(&repo()),
        &[
            OsStr::new("pipeline"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
    );
    assert!(ok, "{text}");
    eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    common::assert_stages_ran(
        &text,
        &["distortion", "knapsack", "finetune", "compile", "secure"],
    );
    let run = dir.join("run");
    assert!(run.join("compiled/model.ksnn").is_file());
    assert!(run.join("report.json").is_file());
    let spec = std::fs::read_to_string(run.join("spec.json")).unwrap();
    assert!(
        spec.contains(layer),
        "the spec chooses blocks for {layer}:\n{spec}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    text
}

#[test]
fn cifar100_resnet18_recipe() {
    let text = run("cifar100-resnet18", "layer4_1_2", cifar100);
    assert!(text.contains("== train"), "{text}");
    assert!(
        text.contains("accuracy, secure (three parties, TLS)"),
        "{text}"
    );
}

#[test]
fn imagenet_resnet50_recipe() {
    let text = run("imagenet-resnet50", "layer4_2_3", imagenet);
    assert!(text.contains("== train"), "{text}");
    assert!(
        text.contains("accuracy, secure (three parties, TLS)"),
        "{text}"
    );
}

#[test]
fn ade20k_mobilenetv2_recipe() {
    let text = run("ade20k-mobilenetv2", "decode_5", ade20k);
    assert!(
        !text.contains("== train"),
        "the original does not train first:\n{text}"
    );
    assert!(text.contains("test mIoU"), "{text}");
    assert!(text.contains("mIoU, secure (three parties, TLS)"), "{text}");
}

#[test]
fn voc_resnet50_recipe() {
    let text = run("voc-resnet50", "decode_5", voc);
    assert!(text.contains("== train"), "{text}");
    assert!(text.contains("mIoU, secure (three parties, TLS)"), "{text}");
}

/// The segmentation loaders on the fixtures: sizes, nearest-sampled masks, ADE20K's
/// annotation 0 → ignore and classes shifted down, VOC's border kept as 255.
#[test]
fn segmentation_datasets_load_at_the_model_size() {
    let dir = tmp("seg-load");
    ade20k(&dir);
    voc(&dir);
    let a = Dataset::Ade20k.load(&dir, Split::Train, 32).unwrap();
    assert_eq!((a.len(), a.channels, a.height, a.width), (2, 3, 32, 32));
    assert!(a.is_segmentation() && a.labels.is_empty());
    let m = a.mask(0);
    assert_eq!(m.len(), 32 * 32);
    // 16 → 32 doubles every column: 0..14 class 1 − 1 = 0, 14..16 the ignored "other".
    assert_eq!(
        (m[0], m[13], m[14], m[15], m[16], m[31]),
        (0, 0, 255, 255, 12, 12)
    );
    let v = Dataset::Voc.load(&dir, Split::Test, 32).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((v.mask(0)[13], v.mask(0)[14], v.mask(0)[16]), (0, 255, 3));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dataset that is not under the root is named with its layout and where it comes from.
#[test]
fn a_missing_dataset_names_its_layout_and_source() {
    let empty = tmp("missing");
    for (dataset, layout, source) in [
        (
            Dataset::Cifar100,
            "cifar-100-binary/{train.bin, test.bin}",
            "cifar-100-binary.tar.gz",
        ),
        (
            Dataset::Folders,
            "ROOT/train/<class>/",
            "ILSVRC2012_img_train.tar",
        ),
        (
            Dataset::Ade20k,
            "ADEChallengeData2016/images/{training,validation}",
            "ADEChallengeData2016.zip",
        ),
        (
            Dataset::Voc,
            "VOCdevkit/VOC2012/{JPEGImages/<id>.jpg, SegmentationClass/<id>.png",
            "VOCtrainval_11-May-2012.tar",
        ),
    ] {
        let e = dataset.load(&empty, Split::Train, 32).unwrap_err();
        assert!(matches!(e, DataError::Missing { .. }), "{e}");
        let e = e.to_string();
        for want in [layout, source, "downloads nothing"] {
            assert!(e.contains(want), "{dataset:?}: {want} not in: {e}");
        }
    }
    // Through the pipeline: the stage's error carries the layout.
    let dir = tmp("missing-run");
    let mut cfg = Experiment::load(&repo().join("experiments/voc-resnet50.toml")).unwrap();
    cfg.run_dir = dir.join("run");
    cfg.data.root = empty.clone();
    let config = dir.join("voc.toml");
    std::fs::write(&config, toml::to_string(&cfg).unwrap()).unwrap();
    let (ok, text) = common::ksnn_in(
        Some(&repo()),
        &[
            OsStr::new("pipeline"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("VOCtrainval_11-May-2012.tar") && text.contains("SegmentationClass"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
