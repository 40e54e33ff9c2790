//! Zoo models: shapes, parameter counts against libtorch's, and that training learns.

use ksnn_compiler::data::Classification;
use ksnn_compiler::ir::zoo;
use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::train::{self, TrainConfig};
use ksnn_formats::Shape;
use tch::{Device, Kind, Tensor, nn};

#[test]
fn mnist_cnn_shapes_and_parameters() {
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
    assert!(zoo::build("nope").is_none());
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
