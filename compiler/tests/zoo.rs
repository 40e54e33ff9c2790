//! Zoo models in libtorch: parameter counts equal the IR's (and the published ones), the
//! forward runs, and training steps run and learn. Shapes and ReLU tables: `graph/tests/zoo.rs`.

use ksnn_compiler::data::Classification;
use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::train::{self, TrainConfig};
use ksnn_graph::ir::zoo::{self, ZooOptions};
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Reduction, Tensor, nn};

#[test]
fn mnist_cnn_in_libtorch() {
    let g = zoo::build("mnist-cnn").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    let trainable: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert_eq!(
        trainable as u64,
        g.parameters(),
        "the IR's count equals libtorch's"
    );
    let y = exec.forward(
        &Tensor::zeros([3, 1, 28, 28], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(y.size(), [3, 10]);
}

/// Two separable classes of 8×… images: a few steps must fit them.
#[test]
fn training_steps_learn() {
    let g = zoo::build("mnist-cnn").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    let n = 64;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = (i % 2) as u32;
        // Class 0: bright top half; class 1: bright bottom half.
        pixels.extend((0..784).map(|p| {
            if (p / 28 < 14) == (label == 0) {
                1.0f32
            } else {
                0.0
            }
        }));
        labels.push(label);
    }
    let data = Classification {
        channels: 1,
        height: 28,
        width: 28,
        pixels,
        labels,
        classes: vec![],
        masks: vec![],
    };
    let before = train::evaluate(&exec, &data, 64);
    let cfg = TrainConfig {
        epochs: 3,
        batch: 16,
        lr: 1e-3,
        warmup_steps: 0,
        progress: false,
        ..Default::default()
    };
    let epochs = train::train(&exec, &vs, &data, Some(&data), &cfg).unwrap();
    assert!(epochs.last().unwrap().loss < epochs[0].loss, "{epochs:?}");
    assert_eq!(
        epochs.last().unwrap().test_accuracy,
        Some(1.0),
        "before training: {before}"
    );
}

fn trainable(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum()
}

/// Libtorch's count of trainable variables equals `expected` (the IR's count, checked in
/// `graph/tests/zoo.rs`).
fn check_parameters(name: &str, expected: u64) {
    let g = zoo::build(name).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    Executor::new(&vs.root(), &g).unwrap();
    assert_eq!(trainable(&vs), expected, "{name}: libtorch's count");
}

/// One Adam step in train mode on random `batch×3×size×size` inputs and random labels
/// (per pixel for segmentation): the loss is finite and the first and last layers move.
fn train_step(name: &str, size: u32, batch: i64) {
    let opts = ZooOptions {
        size: Some((size, size)),
        ..Default::default()
    };
    let g = zoo::build_with(name, &opts).unwrap();
    let out = g.shapes().unwrap()[g.outputs[0] as usize];
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    assert_eq!(trainable(&vs), g.parameters(), "{name}");
    let weighted: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.op.parameters() > 0 && !n.name.ends_with("_bn"))
        .map(|n| n.name.as_str())
        .collect();
    let watched = [weighted[0], weighted[weighted.len() - 1]].map(|n| {
        let w = vs.variables()[&format!("{n}.weight")].shallow_clone();
        (n, w.copy(), w)
    });
    let size = i64::from(size);
    let x = Tensor::randn([batch, 3, size, size], (Kind::Float, Device::Cpu));
    let y = exec.forward(&x, true);
    let classes = i64::from(out.c);
    let (labels, expected) = if out.h * out.w == 1 {
        (vec![batch], vec![batch, classes])
    } else {
        let (h, w) = (i64::from(out.h), i64::from(out.w));
        assert_eq!((h, w), (size, size), "{name}: logits at the input size");
        (vec![batch, h, w], vec![batch, classes, h, w])
    };
    assert_eq!(y.size(), expected, "{name}");
    let labels = Tensor::randint(classes, labels, (Kind::Int64, Device::Cpu));
    let loss = y.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0);
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    opt.backward_step(&loss);
    let loss = loss.double_value(&[]);
    assert!(loss.is_finite(), "{name}: loss {loss}");
    for (n, before, after) in watched {
        assert!(!before.equal(&after), "{name}: `{n}` did not change");
    }
}

#[test]
fn resnet18_cifar() {
    check_parameters("resnet18-cifar", 11_220_132);
    train_step("resnet18-cifar", 32, 2);
}

#[test]
fn resnet50() {
    check_parameters("resnet50", 25_557_032);
    check_parameters("resnet50-avgpool", 25_557_032);
    train_step("resnet50", 64, 2);
    train_step("resnet50-avgpool", 64, 2);
}

#[test]
fn mobilenetv2() {
    check_parameters("mobilenetv2", 3_504_872);
    train_step("mobilenetv2", 64, 2);
}

#[test]
fn deeplabv3_resnet50() {
    check_parameters("deeplabv3-resnet50", 65_749_365);
    train_step("deeplabv3-resnet50", 64, 2);
}

#[test]
fn deeplabv3_mobilenetv2() {
    check_parameters("deeplabv3-mobilenetv2", 18_442_646);
    train_step("deeplabv3-mobilenetv2", 64, 2);
}
