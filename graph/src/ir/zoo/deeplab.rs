//! mmseg DeepLabV3 segmentors: a backbone with output stride 8, the ASPP decode head, and a
//! bilinear resize of the logits to the input. The head's ReLUs are `decode_0` (image pool)
//! to `decode_5` (bottleneck), as the seed's parameter files name them (docs/original.md §3.5).
//! The auxiliary FCN head is training-only and left out.

use super::{Builder, Conv, IMAGENET, ZooOptions, mobilenet, resnet};
use crate::ir::{Graph, IrOp};

/// `deeplabv3_r50-d8` on Pascal VOC (21 classes), with the stem's max pool or, as the
/// original's `AvgPoolResNetSeg` (docs/original.md §8), an average pool.
pub(super) fn deeplabv3_resnet50(opts: &ZooOptions, pool: resnet::StemPool) -> Option<Graph> {
    let name = match pool {
        resnet::StemPool::Max => "deeplabv3-resnet50",
        resnet::StemPool::Avg => "deeplabv3-resnet50-avgpool",
    };
    segmentor(name, opts, 21, |b| resnet::resnet50_v1c_d8(b, pool))
}

/// `deeplabv3_m-v2-d8` on ADE20K (150 classes): stages 4–7 at stride 1, dilated 2, 2, 4, 4.
pub(super) fn deeplabv3_mobilenetv2(opts: &ZooOptions) -> Option<Graph> {
    segmentor("deeplabv3-mobilenetv2", opts, 150, |b| {
        mobilenet::features(b, [1, 2, 2, 1, 1, 1, 1], [1, 1, 1, 2, 2, 4, 4])
    })
}

/// Input 3×512×512 by default; `backbone` returns its features and their channels.
fn segmentor(
    name: &str,
    opts: &ZooOptions,
    classes: u32,
    backbone: impl FnOnce(&mut Builder) -> (u32, u32),
) -> Option<Graph> {
    let size = opts.size.unwrap_or((512, 512));
    let mut b = Builder::rgb(name, size, &IMAGENET);
    let (x, c) = backbone(&mut b);
    let y = aspp_head(&mut b, x, c, opts.classes.unwrap_or(classes))?;
    let y = b.resize("resize", y, size);
    Some(b.finish(y))
}

/// mmseg ASPPHead, 512 channels: image pooling (GAP → 1×1 conv → resize back), a 1×1 branch
/// and 3×3 branches dilated 12, 24, 36, concatenated; a 3×3 bottleneck, dropout (identity at
/// inference) and the 1×1 `conv_seg` logits. `None` if `x`'s shape does not hold.
fn aspp_head(b: &mut Builder, x: u32, cin: u32, classes: u32) -> Option<u32> {
    const CHANNELS: u32 = 512;
    let s = b.shape(x)?;
    let pooled = b.node("decode_image_pool", IrOp::GlobalAvgPool, &[x]);
    let pooled = b.conv_bn_relu(
        "decode_image_pool_conv",
        "decode_0",
        pooled,
        Conv::new(cin, CHANNELS, 1),
    );
    let mut branches = vec![b.resize("decode_image_pool_resize", pooled, (s.h, s.w))];
    for (i, d) in [1, 12, 24, 36].into_iter().enumerate() {
        let k = if d == 1 { 1 } else { 3 };
        let c = Conv::new(cin, CHANNELS, k).dilation(d);
        branches.push(b.conv_bn_relu(
            &format!("decode_aspp{i}"),
            &format!("decode_{}", i + 1),
            x,
            c,
        ));
    }
    let y = b.node("decode_concat", IrOp::Concat, &branches);
    let c = Conv::new(CHANNELS * branches.len() as u32, CHANNELS, 3);
    let y = b.conv_bn_relu("decode_bottleneck", "decode_5", y, c);
    let y = b.node("decode_dropout", IrOp::Identity, &[y]);
    Some(b.conv("decode_conv_seg", y, Conv::new(CHANNELS, classes, 1), true))
}
