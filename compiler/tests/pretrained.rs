//! Pretrained state dicts through libtorch: a model saved in torchvision/mmcls/mmseg names
//! loads back into a fresh model with identical parameters and outputs, the names written
//! are exactly the real ones (graph/tests/fixtures/pretrained/keys.json), and a file that
//! does not fit is refused with every problem listed and the model left untouched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::pretrained::{self, Init};
use ksnn_graph::ir::pretrained::Naming;
use ksnn_graph::ir::zoo::{self, ZooOptions};
use ksnn_graph::ir::{Graph, variables};
use tch::{Device, Kind, Tensor, nn};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../graph/tests/fixtures/pretrained")
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-pretrained-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The key names of one keys.json case.
fn real_keys(case: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(fixtures().join("keys.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[case]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[0].as_str().unwrap().to_string())
        .collect()
}

fn build(name: &str, classes: u32, side: u32) -> (Graph, nn::VarStore, Executor) {
    let opts = ZooOptions {
        classes: Some(classes),
        size: Some((side, side)),
    };
    let g = zoo::build_with(name, &opts).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    (g, vs, exec)
}

/// Every variable random (running variances positive), so each one matters to the output.
fn randomise(vs: &nn::VarStore, seed: i64) {
    tch::manual_seed(seed);
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            let r = Tensor::randn(v.size(), (Kind::Float, Device::Cpu)) * 0.1;
            let r = if name.ends_with("running_var") {
                r.abs() + 0.5
            } else {
                r
            };
            v.copy_(&r);
        }
    });
}

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.equal(&y.1))
}

/// Rewrites a safetensors file through `edit` (names and tensors).
fn edit(path: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let mut t = Tensor::read_safetensors(path).unwrap();
    edit(&mut t);
    Tensor::write_safetensors(&t, path).unwrap();
}

fn load(vs: &nn::VarStore, g: &Graph, path: &Path, naming: Naming) -> Result<Vec<String>, String> {
    let init = Init {
        path: path.to_path_buf(),
        naming,
    };
    pretrained::load(vs, g, &init)
        .map(|p| p.skipped)
        .map_err(|e| e.to_string())
}

/// Saves in `naming`, checks the names are the real checkpoint's (training-only ones aside),
/// adds those training-only tensors, loads into a fresh model: same parameters, same output,
/// and exactly the training-only tensors reported as skipped.
fn round_trip(model: &str, classes: u32, side: u32, naming: Naming, case: &str) {
    let dir = tmp(&format!("{model}-{naming}"));
    let file = dir.join("state.safetensors");
    let (g, vs, exec) = build(model, classes, side);
    randomise(&vs, 1);
    pretrained::save(&vs, &g, naming, &file).unwrap();
    let real = real_keys(case);
    let training_only: BTreeSet<String> = real
        .iter()
        .filter(|k| naming.training_only(k))
        .cloned()
        .collect();
    let written: BTreeSet<String> = Tensor::read_safetensors(&file)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        written,
        real.difference(&training_only).cloned().collect(),
        "{model} in {naming} names"
    );
    edit(&file, |t| {
        for k in &training_only {
            t.push((k.clone(), Tensor::from_slice(&[7i64]).view([])));
        }
    });

    let (_, fresh, fresh_exec) = build(model, classes, side);
    randomise(&fresh, 2);
    assert!(!same(&snapshot(&vs), &snapshot(&fresh)));
    let skipped = load(&fresh, &g, &file, naming).unwrap();
    assert_eq!(skipped.into_iter().collect::<BTreeSet<_>>(), training_only);
    assert!(
        same(&snapshot(&vs), &snapshot(&fresh)),
        "{model}: parameters differ"
    );
    let x = Tensor::randn([2, 3, side as i64, side as i64], (Kind::Float, Device::Cpu));
    let (a, b) = (exec.forward(&x, false), fresh_exec.forward(&x, false));
    assert!(a.equal(&b), "{model}: outputs differ");
}

#[test]
fn torchvision_mobilenetv2_round_trip() {
    round_trip(
        "mobilenetv2",
        1000,
        32,
        Naming::Torchvision,
        "torchvision/mobilenet_v2",
    );
}

#[test]
fn mmcls_resnet18_cifar_round_trip() {
    round_trip(
        "resnet18-cifar",
        100,
        32,
        Naming::Mmcls,
        "mmcls/resnet18_8xb16_cifar100",
    );
}

#[test]
fn mmseg_deeplabv3_mobilenetv2_round_trip() {
    round_trip(
        "deeplabv3-mobilenetv2",
        150,
        32,
        Naming::Mmseg,
        "mmseg/deeplabv3_m-v2-d8_512x512_160k_ade20k",
    );
}

/// A torchvision file with one tensor missing, one extra, one mis-shaped: all three in
/// the error, and the model keeps its parameters.
#[test]
fn misfits_are_listed_and_nothing_loads() {
    let dir = tmp("misfit");
    let file = dir.join("tv.safetensors");
    let (g, vs, _) = build("mobilenetv2", 10, 32);
    pretrained::save(&vs, &g, Naming::Torchvision, &file).unwrap();
    edit(&file, |t| {
        t.retain(|(n, _)| n != "features.7.conv.1.1.running_mean");
        t.push((
            "features.19.0.weight".into(),
            Tensor::zeros([4, 4, 1, 1], (Kind::Float, Device::Cpu)),
        ));
        let fc = t
            .iter_mut()
            .find(|(n, _)| n == "classifier.1.weight")
            .unwrap();
        fc.1 = Tensor::zeros([1000, 1280], (Kind::Half, Device::Cpu));
    });
    let (_, other, _) = build("mobilenetv2", 10, 32);
    randomise(&other, 3);
    let before = snapshot(&other);
    let e = load(&other, &g, &file, Naming::Torchvision).unwrap_err();
    let path = file.display();
    assert_eq!(
        e.lines().collect::<Vec<_>>(),
        [
            format!("{path}: the tensors do not fit `mobilenetv2` under --map torchvision: 1 missing, 1 extra, 1 mis-shaped").as_str(),
            "  missing: `features.7.conv.1.1.running_mean` [192] (for the model's `layer4_0_conv1_bn.running_mean`)",
            "  extra: `features.19.0.weight` [4, 4, 1, 1] maps to nothing in the model",
            "  mis-shaped: `classifier.1.weight` is [1000, 1280] in the file, the model's `fc.weight` is [10, 1280]",
        ]
    );
    assert!(same(&before, &snapshot(&other)), "nothing loaded");
}

/// The same file under another --map matches nothing and says which naming it looks like.
#[test]
fn wrong_map_is_named() {
    let dir = tmp("wrongmap");
    let file = dir.join("mmcls.safetensors");
    let (g, vs, _) = build("resnet18-cifar", 100, 32);
    pretrained::save(&vs, &g, Naming::Mmcls, &file).unwrap();
    let e = load(&vs, &g, &file, Naming::Torchvision).unwrap_err();
    let n = variables(&g).len();
    assert!(
        e.lines().next().unwrap().ends_with(&format!(
            "under --map torchvision: {n} missing, {n} extra, 0 mis-shaped; no tensor name matched: the file's names look like mmcls's (--map mmcls)"
        )),
        "{e}"
    );
    assert!(e.contains("\n  missing: `layer4.1.bn2.running_var` [512] (for the model's `layer4_1_conv2_bn.running_var`)"), "{e}");
    assert!(
        e.contains(
            "\n  extra: `backbone.layer4.1.bn2.running_var` [512] maps to nothing in the model"
        ),
        "{e}"
    );
    let e = load(&vs, &g, &file, Naming::Mmseg).unwrap_err();
    assert!(
        e.contains("--map mmseg has no names for model `resnet18-cifar`"),
        "{e}"
    );
    let e = load(&vs, &g, &dir.join("nope.safetensors"), Naming::Mmcls).unwrap_err();
    assert!(e.ends_with("nope.safetensors: no such file"), "{e}");
}

/// The committed real-naming file (torchvision resnet18, 10 classes: conv1, bn1, fc only)
/// against ksnn's CIFAR ResNet-18: the 7×7 stem and the classifier are mis-shaped, every
/// residual-stage tensor is missing, and nothing is extra.
#[test]
fn committed_torchvision_resnet18_file() {
    let file = fixtures().join("torchvision_resnet18_stem_fc.safetensors");
    let (g, vs, _) = build("resnet18-cifar", 100, 32);
    let e = load(&vs, &g, &file, Naming::Torchvision).unwrap_err();
    let missing = variables(&g).len() - 7;
    let lines: Vec<&str> = e.lines().collect();
    assert!(
        lines[0].ends_with(&format!(
            "the tensors do not fit `resnet18-cifar` under --map torchvision: {missing} missing, 0 extra, 3 mis-shaped"
        )),
        "{e}"
    );
    assert_eq!(lines.len(), 1 + missing + 3, "{e}");
    assert_eq!(
        lines[lines.len() - 3..],
        [
            "  mis-shaped: `conv1.weight` is [64, 3, 7, 7] in the file, the model's `conv1.weight` is [64, 3, 3, 3]",
            "  mis-shaped: `fc.weight` is [10, 512] in the file, the model's `fc.weight` is [100, 512]",
            "  mis-shaped: `fc.bias` is [10] in the file, the model's `fc.bias` is [100]",
        ]
    );
    assert!(lines.contains(&"  missing: `layer1.0.conv1.weight` [64, 64, 3, 3] (for the model's `layer1_0_conv1.weight`)"), "{e}");
    assert!(lines.contains(&"  missing: `layer2.0.downsample.1.running_var` [128] (for the model's `layer2_0_downsample_bn.running_var`)"), "{e}");
}
