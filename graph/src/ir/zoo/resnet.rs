//! ResNets: mmcls's CIFAR ResNet-18, the torchvision/mmcls ImageNet ResNet-50 with the seed's
//! average-pool stem variant, and mmseg's dilated ResNet50-V1c backbone for DeepLabV3. The
//! ReLU positions are `stem` (or the deep stem's `stem_2/5/8`) and `layerS_B_k`: the seed's
//! custom ResNets make each block's k-th ReLU a module `relu_k` (docs/original.md §3.5, §8).

use ksnn_formats::layer::{AvgPool, MaxPool, Padding};

use super::{Builder, CIFAR100, Conv, IMAGENET, ZooOptions};
use crate::ir::{Graph, IrOp};

/// The ImageNet stem's 3×3/2/pad 1 pooling: torchvision's max pool, or the seed's average
/// pool (padding counted), which is linear and so local in the secure protocol (§7.10).
#[derive(Clone, Copy)]
pub(super) enum StemPool {
    Max,
    Avg,
}

#[derive(Clone, Copy)]
enum Block {
    Basic,
    Bottleneck,
}

/// The residual stages `layer1`…`layer4`; stage i has `64·2^i` planes.
struct Layout {
    block: Block,
    blocks: [u32; 4],
    strides: [u32; 4],
    dilations: [u32; 4],
}

const CIFAR18: Layout = Layout {
    block: Block::Basic,
    blocks: [2, 2, 2, 2],
    strides: [1, 2, 2, 2],
    dilations: [1; 4],
};

const IMAGENET50: Layout = Layout {
    block: Block::Bottleneck,
    blocks: [3, 4, 6, 3],
    strides: [1, 2, 2, 2],
    dilations: [1; 4],
};

/// Output stride 8 (mmseg `-d8`): stages 3 and 4 keep their resolution and dilate instead.
const DILATED50: Layout = Layout {
    dilations: [1, 1, 2, 4],
    strides: [1, 2, 1, 1],
    ..IMAGENET50
};

/// mmcls ResNet_CIFAR: a 3×3 stride-1 stem without pooling keeps 32×32 inputs at 32×32.
pub(super) fn resnet18_cifar(opts: &ZooOptions) -> Option<Graph> {
    let mut b = Builder::rgb("resnet18-cifar", opts.size.unwrap_or((32, 32)), &CIFAR100);
    let x = b.conv_bn_relu("conv1", "stem", 0, Conv::new(3, 64, 3));
    let (x, c) = res_layers(&mut b, x, 64, &CIFAR18);
    let x = b.classifier(x, c, opts.classes.unwrap_or(100), false);
    Some(b.finish(x))
}

/// torchvision/mmcls ImageNet ResNet-50: 7×7/2 stem conv, 3×3/2 pool, bottlenecks [3, 4, 6, 3].
pub(super) fn resnet50(opts: &ZooOptions, pool: StemPool) -> Option<Graph> {
    let name = match pool {
        StemPool::Max => "resnet50",
        StemPool::Avg => "resnet50-avgpool",
    };
    let mut b = Builder::rgb(name, opts.size.unwrap_or((224, 224)), &IMAGENET);
    let x = b.conv_bn_relu("conv1", "stem", 0, Conv::new(3, 64, 7).stride(2));
    let x = stem_pool(&mut b, x, pool);
    let (x, c) = res_layers(&mut b, x, 64, &IMAGENET50);
    let x = b.classifier(x, c, opts.classes.unwrap_or(1000), false);
    Some(b.finish(x))
}

/// mmseg ResNetV1c with output stride 8: a deep stem of three 3×3 convolutions
/// (`stem_0`…`stem_8` like mmseg's `stem` Sequential) and a max pool (or the seed's average
/// pool), then the dilated stages. Returns the features and their channels.
pub(super) fn resnet50_v1c_d8(b: &mut Builder, pool: StemPool) -> (u32, u32) {
    let mut x = 0;
    for (i, (cin, cout, stride)) in [(3, 32, 2), (32, 32, 1), (32, 64, 1)]
        .into_iter()
        .enumerate()
    {
        let c = Conv::new(cin, cout, 3).stride(stride);
        x = b.conv(&format!("stem_{}", 3 * i), x, c, false);
        x = b.bn(&format!("stem_{}", 3 * i + 1), x, cout);
        x = b.node(&format!("stem_{}", 3 * i + 2), IrOp::Relu, &[x]);
    }
    let x = stem_pool(b, x, pool);
    res_layers(b, x, 64, &DILATED50)
}

fn stem_pool(b: &mut Builder, x: u32, pool: StemPool) -> u32 {
    let (kernel, stride, padding) = ([3, 3], [2, 2], Padding::uniform(1));
    let op = match pool {
        StemPool::Max => IrOp::MaxPool(MaxPool {
            kernel,
            stride,
            padding,
            ceil_mode: false,
        }),
        StemPool::Avg => IrOp::AvgPool(AvgPool {
            kernel,
            stride,
            padding,
            ceil_mode: false,
            count_include_pad: true,
        }),
    };
    b.node("stem_pool", op, &[x])
}

/// The stages `layerS_B`. In a dilated stage the first block uses half the dilation, as
/// mmseg's `contract_dilation` (set for V1c) does. Returns the output and its channels.
fn res_layers(b: &mut Builder, mut x: u32, mut cin: u32, layout: &Layout) -> (u32, u32) {
    for s in 0..4 {
        let planes = 64 << s;
        for i in 0..layout.blocks[s] {
            let name = format!("layer{}_{i}", s + 1);
            let d = layout.dilations[s];
            let (stride, dilation) = if i == 0 {
                (layout.strides[s], d.div_ceil(2))
            } else {
                (1, d)
            };
            let conv = Conv::new(cin, planes, 3).stride(stride).dilation(dilation);
            (x, cin) = match layout.block {
                Block::Basic => (basic_block(b, &name, x, conv), planes),
                Block::Bottleneck => (bottleneck(b, &name, x, conv), 4 * planes),
            };
        }
    }
    (x, cin)
}

/// Two 3×3 convolutions; `conv` is the first (input → planes, with the block's stride).
/// ReLUs `{name}_1` and, after the addition, `{name}_2`.
fn basic_block(b: &mut Builder, name: &str, x: u32, conv: Conv) -> u32 {
    let y = b.conv_bn_relu(&format!("{name}_conv1"), &format!("{name}_1"), x, conv);
    let c2 = Conv::new(conv.cout, conv.cout, 3).dilation(conv.dilation);
    let y = b.conv_bn(&format!("{name}_conv2"), y, c2);
    let proj = Conv::new(conv.cin, conv.cout, 1).stride(conv.stride);
    residual(b, name, x, y, proj, 2)
}

/// 1×1 reduce, 3×3 `conv` (stride and dilation here, PyTorch style), 1×1 expand to 4×
/// planes. ReLUs `{name}_1`, `{name}_2` and, after the addition, `{name}_3`.
fn bottleneck(b: &mut Builder, name: &str, x: u32, conv: Conv) -> u32 {
    let planes = conv.cout;
    let c1 = Conv::new(conv.cin, planes, 1);
    let y = b.conv_bn_relu(&format!("{name}_conv1"), &format!("{name}_1"), x, c1);
    let c2 = Conv {
        cin: planes,
        ..conv
    };
    let y = b.conv_bn_relu(&format!("{name}_conv2"), &format!("{name}_2"), y, c2);
    let y = b.conv_bn(
        &format!("{name}_conv3"),
        y,
        Conv::new(planes, 4 * planes, 1),
    );
    let proj = Conv::new(conv.cin, 4 * planes, 1).stride(conv.stride);
    residual(b, name, x, y, proj, 3)
}

/// `relu(y + shortcut(x))`: the shortcut is the 1×1 convolution `proj` + BN (`downsample`)
/// when it changes the shape, else the identity. The ReLU is the block's `k`-th.
fn residual(b: &mut Builder, name: &str, x: u32, y: u32, proj: Conv, k: u32) -> u32 {
    let shortcut = if proj.stride != 1 || proj.cin != proj.cout {
        b.conv_bn(&format!("{name}_downsample"), x, proj)
    } else {
        x
    };
    let sum = b.node(&format!("{name}_add"), IrOp::Add, &[y, shortcut]);
    b.node(&format!("{name}_{k}"), IrOp::Relu, &[sum])
}
