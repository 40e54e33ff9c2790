//! Zoo models: shapes, the seed's ReLU layer tables (docs/original.md §3.3, §3.5) and parameter
//! counts against the published ones. Libtorch's parameter counts and training steps:
//! `compiler/tests/zoo.rs`.

use std::collections::HashSet;

use ksnn_formats::Shape;
use ksnn_graph::ir::Graph;
use ksnn_graph::ir::zoo::{self, ZooOptions};

#[test]
fn mnist_cnn_shapes_and_relu_layers() {
    let g = zoo::build("mnist-cnn").unwrap();
    let shapes = g.shapes().unwrap();
    assert_eq!(shapes[g.outputs[0] as usize], Shape::vector(10));
    assert_eq!(
        g.relu_layers(),
        [
            "stem",
            "layer1_0_1",
            "layer1_1_1",
            "layer1_1_2",
            "layer2_0_1"
        ]
    );
    assert!(zoo::build("nope").is_none());
}

/// The shape of the tensor node `name` writes.
fn shape_of(g: &Graph, shapes: &[Shape], name: &str) -> Shape {
    let i = g.nodes.iter().position(|n| n.name == name).unwrap();
    shapes[i + 1]
}

/// Checks the default-size graph: the output shape, and against the seed's tables the ReLU
/// names in order, their total channels and DReLUs (Σ C·H·W, docs/original.md §3.3) and a few
/// `(name, C, H=W)` rows of §3.5; node names are unique.
fn check_model(
    name: &str,
    out: Shape,
    relus: &[String],
    table: (u64, u64),
    rows: &[(&str, u32, u32)],
) {
    let g = zoo::build(name).unwrap();
    let shapes = g.shapes().unwrap();
    assert_eq!(shapes[g.outputs[0] as usize], out, "{name}: output");
    assert_eq!(g.relu_layers(), relus, "{name}");
    let relu_shapes: Vec<Shape> = relus.iter().map(|r| shape_of(&g, &shapes, r)).collect();
    let channels: u64 = relu_shapes.iter().map(|s| u64::from(s.c)).sum();
    let drelus: u64 = relu_shapes.iter().map(Shape::elements).sum();
    assert_eq!((channels, drelus), table, "{name}: channels and DReLUs");
    for &(layer, c, d) in rows {
        assert_eq!(
            shape_of(&g, &shapes, layer),
            Shape::new(c, d, d),
            "{name} {layer}"
        );
    }
    let names: HashSet<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), g.nodes.len(), "{name}: node names are unique");
}

/// The IR's parameter count equals `expected`.
fn check_parameters(name: &str, expected: u64) {
    let g = zoo::build(name).unwrap();
    assert_eq!(g.parameters(), expected, "{name}");
}

/// `stem` names and `layerS_B_k` for k = 1..=`relus` in every block.
fn resnet_relus(stem: &[&str], blocks: [u32; 4], relus: u32) -> Vec<String> {
    let mut v: Vec<String> = stem.iter().map(|s| s.to_string()).collect();
    for (s, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            v.extend((1..=relus).map(|k| format!("layer{}_{b}_{k}", s + 1)));
        }
    }
    v
}

/// `conv1`, then per inverted residual `_0` (expand, or depthwise in stage 1) and `_1`.
fn mobilenet_relus() -> Vec<String> {
    let mut v = vec!["conv1".to_string(), "layer1_0_0".to_string()];
    for (s, n) in [2, 3, 4, 3, 3, 1].into_iter().enumerate() {
        for b in 0..n {
            v.extend((0..2).map(|k| format!("layer{}_{b}_{k}", s + 2)));
        }
    }
    v
}

fn decode_relus() -> Vec<String> {
    (0..6).map(|i| format!("decode_{i}")).collect()
}

#[test]
fn every_model_builds_with_its_options() {
    for name in zoo::MODELS {
        let g = zoo::build(name).unwrap();
        assert_eq!(g.name, *name);
    }
    assert_eq!(zoo::mnist_cnn(), zoo::build("mnist-cnn").unwrap());
    let ten = ZooOptions {
        classes: Some(10),
        size: Some((64, 48)),
    };
    for (name, out) in [
        ("resnet50", Shape::vector(10)),
        ("mobilenetv2", Shape::vector(10)),
        ("deeplabv3-mobilenetv2", Shape::new(10, 64, 48)),
    ] {
        let g = zoo::build_with(name, &ten).unwrap();
        assert_eq!(g.input, Shape::new(3, 64, 48));
        assert_eq!(g.shapes().unwrap()[g.outputs[0] as usize], out, "{name}");
    }
    let empty = ZooOptions {
        size: Some((0, 0)),
        ..Default::default()
    };
    assert!(zoo::build_with("resnet50", &empty).is_none());
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
    let g = zoo::build("resnet50").unwrap();
    assert!(close(&g.mean, &[0.485, 0.456, 0.406]) && close(&g.std, &[0.229, 0.224, 0.225]));
    let g = zoo::build("resnet18-cifar").unwrap();
    assert!(close(&g.mean, &[0.5071, 0.4865, 0.4409]), "{:?}", g.mean);
    assert!(close(&g.std, &[0.2673, 0.2564, 0.2762]), "{:?}", g.std);
}

#[test]
fn resnet18_cifar() {
    let relus = resnet_relus(&["stem"], [2, 2, 2, 2], 2);
    assert_eq!((relus.len(), relus[16].as_str()), (17, "layer4_1_2"));
    let rows = [
        ("stem", 64, 32),
        ("layer2_0_1", 128, 16),
        ("layer4_1_2", 512, 4),
    ];
    check_model(
        "resnet18-cifar",
        Shape::vector(100),
        &relus,
        (3_904, 557_056),
        &rows,
    );
    check_parameters("resnet18-cifar", 11_220_132);
}

#[test]
fn resnet50() {
    let relus = resnet_relus(&["stem"], [3, 4, 6, 3], 3);
    assert_eq!((relus.len(), relus[4].as_str()), (49, "layer1_1_1"));
    let rows = [
        ("stem", 64, 112),
        ("layer1_0_3", 256, 56),
        ("layer2_0_1", 128, 56),
        ("layer2_0_2", 128, 28),
        ("layer3_0_1", 256, 28),
        ("layer4_0_1", 512, 14),
        ("layer4_2_3", 2048, 7),
    ];
    for name in ["resnet50", "resnet50-avgpool"] {
        check_model(
            name,
            Shape::vector(1000),
            &relus,
            (22_720, 9_608_704),
            &rows,
        );
    }
    check_parameters("resnet50", 25_557_032);
    check_parameters("resnet50-avgpool", 25_557_032);
}

#[test]
fn mobilenetv2() {
    let mut relus = mobilenet_relus();
    relus.push("conv2".into());
    assert_eq!(relus.len(), 35);
    let rows = [
        ("conv1", 32, 112),
        ("layer2_0_1", 96, 56),
        ("layer7_0_1", 960, 7),
        ("conv2", 1280, 7),
    ];
    // The DeepLab backbone's 14,272 channels (docs/original.md §3.3: 17,344 less the head's 6 × 512)
    // plus `conv2`; DReLUs summed by hand over the torchvision strides.
    check_model(
        "mobilenetv2",
        Shape::vector(1000),
        &relus,
        (15_552, 6_105_792),
        &rows,
    );
    check_parameters("mobilenetv2", 3_504_872);
}

#[test]
fn deeplabv3_resnet50() {
    let mut relus = resnet_relus(&["stem_2", "stem_5", "stem_8"], [3, 4, 6, 3], 3);
    relus.extend(decode_relus());
    assert_eq!((relus.len(), relus[51].as_str()), (57, "decode_0"));
    let rows = [
        ("stem_2", 32, 256),
        ("stem_8", 64, 256),
        ("layer1_2_3", 256, 128),
        ("layer2_0_1", 128, 128),
        ("layer2_0_2", 128, 64),
        ("layer4_2_3", 2048, 64),
        ("decode_0", 512, 1),
        ("decode_5", 512, 64),
    ];
    // The original's VOC budget, `--max_cost 7644149`, is 6 % of these DReLUs (floored).
    for name in ["deeplabv3-resnet50", "deeplabv3-resnet50-avgpool"] {
        check_model(
            name,
            Shape::new(21, 512, 512),
            &relus,
            (25_856, 127_402_496),
            &rows,
        );
    }
    // ResNet-50 without fc, with the V1c stem (+19,232), and the ASPP head
    // (42,222,101 for 21 classes); mmseg's 68.1 M adds the training-only FCN head.
    check_parameters("deeplabv3-resnet50", 65_749_365);
    check_parameters("deeplabv3-resnet50-avgpool", 65_749_365);
}

#[test]
fn deeplabv3_mobilenetv2() {
    let mut relus = mobilenet_relus();
    relus.extend(decode_relus());
    assert_eq!((relus.len(), relus[33].as_str()), (40, "layer7_0_1"));
    let rows = [
        ("conv1", 32, 256),
        ("layer1_0_0", 32, 256),
        ("layer2_0_0", 96, 256),
        ("layer2_0_1", 96, 128),
        ("layer3_0_1", 144, 64),
        ("layer6_2_1", 960, 64),
        ("layer7_0_1", 960, 64),
        ("decode_0", 512, 1),
        ("decode_4", 512, 64),
    ];
    check_model(
        "deeplabv3-mobilenetv2",
        Shape::new(150, 512, 512),
        &relus,
        (17_344, 85_262_848),
        &rows,
    );
    // MobileNetV2 without conv2 and fc (1,811,712) and the ASPP head on 320 channels.
    check_parameters("deeplabv3-mobilenetv2", 18_442_646);
}
