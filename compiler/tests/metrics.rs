//! mIoU on hand-counted cases, and on a segmentation zoo model's logits.

use ksnn_compiler::torch::executor::Executor;
use ksnn_compiler::torch::metrics::Confusion;
use ksnn_graph::ir::zoo::{self, ZooOptions};
use tch::{Device, Kind, Tensor, nn};

/// Logits whose argmax is `pred` (one-hot), `N×K×H×W`.
fn logits(pred: &[i64], k: i64, h: i64, w: i64) -> Tensor {
    Tensor::from_slice(pred)
        .view([1, h, w])
        .one_hot(k)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
}

#[test]
fn mean_iou_by_hand() {
    // 2×3 image, 3 classes; one pixel ignored (255).
    let labels = Tensor::from_slice(&[0i64, 0, 1, 1, 2, 255]).view([1, 2, 3]);
    let pred = [0i64, 1, 1, 1, 0, 2];
    let mut c = Confusion::new(3);
    c.add(&logits(&pred, 3, 2, 3), &labels);
    // class 0: tp 1, label 2, pred 2 → 1/3; class 1: tp 2, label 2, pred 3 → 2/3;
    // class 2: tp 0, label 1, pred 0 (the ignored pixel does not count) → 0.
    assert_eq!(c.counts, [1, 1, 0, 0, 2, 0, 1, 0, 0]);
    let want = (1.0 / 3.0 + 2.0 / 3.0 + 0.0) / 3.0;
    assert!((c.mean_iou() - want).abs() < 1e-12, "{}", c.mean_iou());
    assert!((c.pixel_accuracy() - 3.0 / 5.0).abs() < 1e-12);
    // Perfect prediction.
    let mut p = Confusion::new(3);
    p.add(&logits(&[0, 0, 1, 1, 2, 2], 3, 2, 3), &labels);
    assert_eq!(p.mean_iou(), 1.0);
}

#[test]
fn segmentation_model_logits_feed_the_metric() {
    let opts = ZooOptions {
        classes: Some(5),
        size: Some((32, 32)),
    };
    let g = zoo::build_with("deeplabv3-mobilenetv2", &opts).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = tch::no_grad(|| exec.forward(&x, false));
    assert_eq!(y.size(), [1, 5, 32, 32]);
    // Labels = the model's own argmax: mIoU 1; shifted labels: below 1.
    let own = y.argmax(1, false);
    let mut c = Confusion::new(5);
    c.add(&y, &own);
    assert_eq!(c.mean_iou(), 1.0);
    let mut d = Confusion::new(5);
    d.add(&y, &((own + 1).remainder(5)));
    assert!(d.mean_iou() < 0.5);
}
