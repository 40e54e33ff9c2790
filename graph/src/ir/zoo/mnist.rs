//! The demo model.

use ksnn_formats::Shape;
use ksnn_formats::layer::{Linear, MaxPool, Padding};

use super::{Builder, Conv, ZooOptions};
use crate::ir::{Graph, IrOp};

/// 1×28×28 → 10 logits: a 16-channel stem, a strided 32-channel stage with a residual
/// block, max pooling, a 64-channel layer and a linear head; five ReLU positions.
pub fn mnist_cnn() -> Graph {
    mnist_cnn_with(&ZooOptions::default()).expect("the default mnist-cnn holds together")
}

pub(super) fn mnist_cnn_with(opts: &ZooOptions) -> Option<Graph> {
    let (h, w) = opts.size.unwrap_or((28, 28));
    let mut b = Builder::new("mnist-cnn", Shape::new(1, h, w), &[0.1307], &[0.3081]);
    let conv = |cin, cout| Conv::new(cin, cout, 3);
    let x = b.conv_bn_relu("conv1", "stem", 0, conv(1, 16));
    let x = b.conv_bn_relu("conv2", "layer1_0_1", x, conv(16, 32).stride(2));
    let y = b.conv_bn_relu("conv3", "layer1_1_1", x, conv(32, 32));
    let y = b.conv_bn("conv4", y, conv(32, 32));
    let x = b.node("res1", IrOp::Add, &[x, y]);
    let x = b.node("layer1_1_2", IrOp::Relu, &[x]);
    let pool = IrOp::MaxPool(MaxPool {
        kernel: [2, 2],
        stride: [2, 2],
        padding: Padding::default(),
        ceil_mode: false,
    });
    let x = b.node("pool1", pool, &[x]);
    let x = b.conv_bn_relu("conv5", "layer2_0_1", x, conv(32, 64));
    let x = b.node("flatten", IrOp::Flatten, &[x]);
    let fc = IrOp::Linear(Linear {
        in_features: b.shape(x)?.c,
        out_features: opts.classes.unwrap_or(10),
        bias: true,
    });
    let x = b.node("fc", fc, &[x]);
    Some(b.finish(x))
}
