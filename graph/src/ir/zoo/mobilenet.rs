//! MobileNetV2 (width 1.0) as torchvision/mmcls build it for ImageNet and mmseg for
//! DeepLabV3. Activations are ReLU, not ReLU6: the seed's secure protocol has no ReLU6 and
//! its "relu" configs fine-tune with ReLU (docs/original.md §7.10). Names follow mmseg: `conv1`,
//! `layerS_B_k` (the k-th activated conv of inverted-residual block B of stage S) and the
//! classifier's final 1×1 conv `conv2`.

use super::{Builder, Conv, IMAGENET, ZooOptions};
use crate::ir::{Graph, IrOp};

/// Per stage: expand ratio, output channels, blocks.
const STAGES: [(u32, u32, u32); 7] = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 32, 3),
    (6, 64, 4),
    (6, 96, 3),
    (6, 160, 3),
    (6, 320, 1),
];

/// The ImageNet classifier: features at output stride 32, a 1×1 conv to 1280, dropout, fc.
pub(super) fn mobilenetv2(opts: &ZooOptions) -> Option<Graph> {
    let mut b = Builder::rgb("mobilenetv2", opts.size.unwrap_or((224, 224)), &IMAGENET);
    let (x, c) = features(&mut b, [1, 2, 2, 2, 1, 2, 1], [1; 7]);
    let x = b.conv_bn_relu("conv2_conv", "conv2", x, Conv::new(c, 1280, 1));
    let x = b.classifier(x, 1280, opts.classes.unwrap_or(1000), true);
    Some(b.finish(x))
}

/// The stem `conv1` and stages `layer1`…`layer7` with the given per-stage strides and
/// dilations (mmseg dilates every block of a stage alike). Returns the output and channels.
pub(super) fn features(b: &mut Builder, strides: [u32; 7], dilations: [u32; 7]) -> (u32, u32) {
    let mut x = b.conv_bn_relu("conv1_conv", "conv1", 0, Conv::new(3, 32, 3).stride(2));
    let mut cin = 32;
    for (s, &(expand, cout, blocks)) in STAGES.iter().enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 { strides[s] } else { 1 };
            let dw = Conv::new(cin * expand, cin * expand, 3)
                .stride(stride)
                .dilation(dilations[s])
                .depthwise();
            x = inverted_residual(b, &format!("layer{}_{i}", s + 1), x, cin, dw, cout);
            cin = cout;
        }
    }
    (x, cin)
}

/// 1×1 expand from `cin` (unless the ratio is 1), the depthwise conv `dw`, a linear 1×1
/// projection to `cout`, and a residual addition when the shape is kept. Convs are
/// `{name}_convK` and their activations `{name}_K`, as mmseg's `conv` Sequential indexes them.
fn inverted_residual(b: &mut Builder, name: &str, x: u32, cin: u32, dw: Conv, cout: u32) -> u32 {
    let mut y = x;
    let mut k = 0;
    if dw.cin != cin {
        let expand = Conv::new(cin, dw.cin, 1);
        y = b.conv_bn_relu(&format!("{name}_conv0"), &format!("{name}_0"), y, expand);
        k = 1;
    }
    let y = b.conv_bn_relu(&format!("{name}_conv{k}"), &format!("{name}_{k}"), y, dw);
    let project = Conv::new(dw.cout, cout, 1);
    let y = b.conv_bn(&format!("{name}_conv{}", k + 1), y, project);
    if dw.stride == 1 && cin == cout {
        b.node(&format!("{name}_add"), IrOp::Add, &[x, y])
    } else {
        y
    }
}
