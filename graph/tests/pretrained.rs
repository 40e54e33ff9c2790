//! Pretrained name tables against real state-dict key lists (`fixtures/pretrained/keys.json`,
//! written by tools/pretrained_fixtures.py from the frameworks' module trees), and the
//! complete error report on missing, extra and mis-shaped tensors. Loading values through
//! libtorch: `compiler/tests/pretrained.rs`.

use std::collections::BTreeSet;

use ksnn_graph::ir::pretrained::{self, Naming, PretrainedError};
use ksnn_graph::ir::zoo::{self, ZooOptions};
use ksnn_graph::ir::{Graph, variables};
use serde_json::Value;

/// A file's tensors: `(name, dims)`.
type Keys = Vec<(String, Vec<u32>)>;

/// `(case, zoo model, classes, keys)` for every case of keys.json.
fn cases() -> Vec<(String, String, u32, Keys)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pretrained/keys.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(case, c)| {
            let keys = c["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    let dims = k[1].as_array().unwrap();
                    let dims = dims.iter().map(|d| d.as_u64().unwrap() as u32).collect();
                    (k[0].as_str().unwrap().to_string(), dims)
                })
                .collect();
            let zoo = c["zoo"].as_str().unwrap().to_string();
            (
                case.clone(),
                zoo,
                c["classes"].as_u64().unwrap() as u32,
                keys,
            )
        })
        .collect()
}

fn case(name: &str) -> (Graph, Keys) {
    let (_, zoo, classes, keys) = cases().into_iter().find(|c| c.0 == name).unwrap();
    (model(&zoo, classes), keys)
}

/// Small inputs keep segmentation graphs cheap; parameter shapes do not depend on them.
fn model(name: &str, classes: u32) -> Graph {
    let opts = ZooOptions {
        classes: Some(classes),
        size: Some((64, 64)),
    };
    zoo::build_with(name, &opts).unwrap()
}

fn naming(case: &str) -> Naming {
    let fw = case.split('/').next().unwrap();
    *Naming::ALL.iter().find(|n| n.as_str() == fw).unwrap()
}

fn mismatch(e: PretrainedError) -> pretrained::Mismatch {
    match e {
        PretrainedError::Mismatch(m) => *m,
        e => panic!("not a mismatch: {e}"),
    }
}

/// Every real key list fills its zoo model completely, skipping exactly the training-only
/// tensors; torchvision's resnet18 differs from ksnn's CIFAR variant only in the 7×7 stem.
#[test]
fn real_key_lists_fill_the_zoo_models() {
    for (case, zoo, classes, keys) in cases() {
        let g = model(&zoo, classes);
        let n = naming(&case);
        let mut trainonly: Vec<String> = keys
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.ends_with(".num_batches_tracked") || k.starts_with("auxiliary_head."))
            .collect();
        trainonly.sort();
        assert!(!trainonly.is_empty(), "{case}");
        match pretrained::plan(&g, n, &keys) {
            Ok(plan) => {
                assert_eq!(plan.skipped, trainonly, "{case}");
                assert_eq!(plan.names.len(), variables(&g).len(), "{case}");
                assert_eq!(plan.names.len() + trainonly.len(), keys.len(), "{case}");
            }
            Err(e) if case == "torchvision/resnet18" => {
                let m = mismatch(e);
                assert!(m.missing.is_empty() && m.extra.is_empty(), "{m}");
                assert_eq!(m.misshaped.len(), 1, "{m}");
                let s = &m.misshaped[0];
                assert_eq!(
                    (s.name.file.as_str(), s.name.model.as_str()),
                    ("conv1.weight", "conv1.weight")
                );
                assert_eq!(
                    (s.got.clone(), s.name.dims.clone()),
                    (vec![64, 3, 7, 7], vec![64, 3, 3, 3])
                );
            }
            Err(e) => panic!("{case}: {e}"),
        }
    }
}

/// The seed's average-pool variants have the max-pool models' parameters and names.
#[test]
fn avgpool_variants_take_the_same_files() {
    for (name, variant, classes) in [
        ("torchvision/resnet50", "resnet50-avgpool", 1000),
        ("mmcls/resnet50_8xb32_in1k", "resnet50-avgpool", 1000),
        (
            "mmseg/deeplabv3_r50-d8_512x512_20k_voc12aug",
            "deeplabv3-resnet50-avgpool",
            21,
        ),
    ] {
        let (_, keys) = case(name);
        let g = model(variant, classes);
        let plan = pretrained::plan(&g, naming(name), &keys).unwrap();
        assert_eq!(plan.names.len(), variables(&g).len(), "{name}");
    }
}

/// keys.json's torchvision lists agree with names derived here from the documented layer
/// counts: ResNet-50 bottlenecks [3, 4, 6, 3] (downsample in each stage's first block) and
/// MobileNetV2's 17 inverted residuals (t = 1 for the first: no expansion conv).
#[test]
fn key_lists_agree_with_documented_layer_counts() {
    let bn = |p: &str| {
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ]
        .map(|w| format!("{p}.{w}"))
    };
    let mut r50: Vec<String> = vec!["conv1.weight".into()];
    r50.extend(bn("bn1"));
    for (s, n) in [3, 4, 6, 3].into_iter().enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{b}", s + 1);
            for k in 1..=3 {
                r50.push(format!("{p}.conv{k}.weight"));
                r50.extend(bn(&format!("{p}.bn{k}")));
            }
            if b == 0 {
                r50.push(format!("{p}.downsample.0.weight"));
                r50.extend(bn(&format!("{p}.downsample.1")));
            }
        }
    }
    r50.extend(["fc.weight".into(), "fc.bias".into()]);
    let mut mv2: Vec<String> = vec!["features.0.0.weight".into()];
    mv2.extend(bn("features.0.1"));
    for j in 1..=17 {
        let f = format!("features.{j}.conv");
        let last = if j == 1 { 1 } else { 2 };
        for k in 0..last {
            mv2.push(format!("{f}.{k}.0.weight"));
            mv2.extend(bn(&format!("{f}.{k}.1")));
        }
        mv2.push(format!("{f}.{last}.weight"));
        mv2.extend(bn(&format!("{f}.{}", last + 1)));
    }
    mv2.push("features.18.0.weight".into());
    mv2.extend(bn("features.18.1"));
    mv2.extend(["classifier.1.weight".into(), "classifier.1.bias".into()]);
    for (name, want) in [
        ("torchvision/resnet50", r50),
        ("torchvision/mobilenet_v2", mv2),
    ] {
        let (_, keys) = case(name);
        let have: BTreeSet<String> = keys.into_iter().map(|k| k.0).collect();
        assert_eq!(have, want.into_iter().collect::<BTreeSet<_>>(), "{name}");
    }
}

/// ksnn's own names are the identity on any model, the imported ones included.
#[test]
fn ksnn_naming_is_the_identity() {
    for name in zoo::MODELS {
        let g = model(name, 10);
        let vars = variables(&g);
        let plan = pretrained::plan(&g, Naming::Ksnn, &vars).unwrap();
        assert!(plan.names.iter().all(|n| n.file == n.model), "{name}");
    }
}

/// One missing, one extra and one mis-shaped tensor are all reported, each with both names
/// and the shapes; training-only tensors never count as extra.
#[test]
fn missing_extra_and_misshaped_are_all_listed() {
    let (g, mut keys) = case("torchvision/resnet50");
    keys.retain(|(k, _)| k != "layer3.5.bn2.running_var");
    keys.push(("layer5.0.conv1.weight".into(), vec![8, 8, 1, 1]));
    let fc = keys.iter_mut().find(|(k, _)| k == "fc.weight").unwrap();
    fc.1 = vec![10, 2048];
    let e = pretrained::plan(&g, Naming::Torchvision, &keys).unwrap_err();
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "the tensors do not fit `resnet50` under --map torchvision: 1 missing, 1 extra, 1 mis-shaped",
            "  missing: `layer3.5.bn2.running_var` [256] (for the model's `layer3_5_conv2_bn.running_var`)",
            "  extra: `layer5.0.conv1.weight` [8, 8, 1, 1] maps to nothing in the model",
            "  mis-shaped: `fc.weight` is [10, 2048] in the file, the model's `fc.weight` is [1000, 2048]",
        ],
        "{text}"
    );
}

/// A file in another naming matches nothing: every tensor is reported, and the message says
/// which --map the names look like.
#[test]
fn wrong_map_names_the_likely_one() {
    let (g, keys) = case("mmcls/resnet50_8xb32_in1k");
    let m = mismatch(pretrained::plan(&g, Naming::Torchvision, &keys).unwrap_err());
    assert_eq!(m.missing.len(), variables(&g).len());
    // Every tensor is extra except the 53 num_batches_tracked, which are skipped.
    assert_eq!(m.extra.len(), keys.len() - 53);
    assert!(m.misshaped.is_empty());
    let first = m.to_string().lines().next().unwrap().to_string();
    assert_eq!(
        first,
        "the tensors do not fit `resnet50` under --map torchvision: 267 missing, 267 extra, 0 mis-shaped; \
         no tensor name matched: the file's names look like mmcls's (--map mmcls)"
    );
}

/// A naming without a table for the model is refused by name, listing what it maps.
#[test]
fn unsupported_model_and_naming() {
    let g = model("resnet50", 1000);
    let e = pretrained::plan(&g, Naming::Mmseg, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--map mmseg has no names for model `resnet50`; it maps deeplabv3-resnet50, \
         deeplabv3-resnet50-avgpool, deeplabv3-mobilenetv2; use --map ksnn for files in ksnn's own names"
    );
    let g = model("mnist-cnn", 10);
    let e = pretrained::plan(&g, Naming::Torchvision, &[]).unwrap_err();
    assert!(matches!(e, PretrainedError::Unsupported { .. }), "{e}");
}
