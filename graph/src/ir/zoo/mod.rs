//! Built-in models. `mnist-cnn` is the demo default: small, several ReLU layers and a
//! residual connection. The others are the seed's four networks (docs/original.md §8) plus the
//! ImageNet MobileNetV2; their ReLU nodes carry the seed's layer names (docs/original.md §3.5), so
//! the original's block specs apply unchanged.

mod deeplab;
mod mnist;
mod mobilenet;
mod resnet;

pub use mnist::mnist_cnn;

use ksnn_formats::Shape;
use ksnn_formats::layer::{Conv2d, Linear, Padding, Upsample, UpsampleMode};

use super::{Graph, IrOp, Node};

/// The zoo's model names.
pub const MODELS: &[&str] = &[
    "mnist-cnn",
    "resnet18-cifar",
    "resnet50",
    "resnet50-avgpool",
    "mobilenetv2",
    "deeplabv3-resnet50",
    "deeplabv3-resnet50-avgpool",
    "deeplabv3-mobilenetv2",
];

/// Overrides of a model's defaults (its dataset's classes and input size), e.g. small
/// inputs for tests. Segmentation graphs depend on the size through their resizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZooOptions {
    /// Output classes instead of the model's dataset's (10, 100, 1000, 21 or 150).
    pub classes: Option<u32>,
    /// `(height, width)`.
    pub size: Option<(u32, u32)>,
}

/// Builds a zoo model by name with its defaults.
pub fn build(name: &str) -> Option<Graph> {
    build_with(name, &ZooOptions::default())
}

/// Builds a zoo model by name; `None` for an unknown name or an input the model cannot take.
pub fn build_with(name: &str, opts: &ZooOptions) -> Option<Graph> {
    let g = match name {
        "mnist-cnn" => mnist::mnist_cnn_with(opts),
        "resnet18-cifar" => resnet::resnet18_cifar(opts),
        "resnet50" => resnet::resnet50(opts, resnet::StemPool::Max),
        "resnet50-avgpool" => resnet::resnet50(opts, resnet::StemPool::Avg),
        "mobilenetv2" => mobilenet::mobilenetv2(opts),
        "deeplabv3-resnet50" => deeplab::deeplabv3_resnet50(opts, resnet::StemPool::Max),
        "deeplabv3-resnet50-avgpool" => deeplab::deeplabv3_resnet50(opts, resnet::StemPool::Avg),
        "deeplabv3-mobilenetv2" => deeplab::deeplabv3_mobilenetv2(opts),
        _ => None,
    }?;
    g.shapes().is_ok().then_some(g)
}

/// A dataset's `img_norm_cfg` as in the mmcls/mmseg configs, in 0–255 pixel units.
struct Norm {
    mean: [f32; 3],
    std: [f32; 3],
}

const IMAGENET: Norm = Norm {
    mean: [123.675, 116.28, 103.53],
    std: [58.395, 57.12, 57.375],
};

const CIFAR100: Norm = Norm {
    mean: [129.304, 124.070, 112.434],
    std: [68.170, 65.392, 70.418],
};

/// A convolution's geometry. Padding is always "same" (`dilation·(k − 1)/2`), as in every
/// zoo model, so call sites only state what differs from a plain stride-1 convolution.
#[derive(Clone, Copy)]
struct Conv {
    cin: u32,
    cout: u32,
    k: u32,
    stride: u32,
    dilation: u32,
    groups: u32,
}

impl Conv {
    const fn new(cin: u32, cout: u32, k: u32) -> Self {
        Self {
            cin,
            cout,
            k,
            stride: 1,
            dilation: 1,
            groups: 1,
        }
    }

    const fn stride(self, stride: u32) -> Self {
        Self { stride, ..self }
    }

    const fn dilation(self, dilation: u32) -> Self {
        Self { dilation, ..self }
    }

    /// One group per input channel.
    const fn depthwise(self) -> Self {
        Self {
            groups: self.cin,
            ..self
        }
    }

    fn op(self, bias: bool) -> IrOp {
        IrOp::Conv(Conv2d {
            in_channels: self.cin,
            out_channels: self.cout,
            kernel: [self.k, self.k],
            stride: [self.stride, self.stride],
            padding: Padding::uniform(self.dilation * (self.k - 1) / 2),
            dilation: [self.dilation, self.dilation],
            groups: self.groups,
            bias,
        })
    }
}

/// Appends nodes; each call returns the tensor it wrote.
struct Builder {
    g: Graph,
}

impl Builder {
    fn new(name: &str, input: Shape, mean: &[f32], std: &[f32]) -> Self {
        Self {
            g: Graph {
                name: name.into(),
                input,
                mean: mean.to_vec(),
                std: std.to_vec(),
                nodes: Vec::new(),
                outputs: Vec::new(),
            },
        }
    }

    /// An RGB model with the dataset's normalisation rescaled to [0, 1] pixels.
    fn rgb(name: &str, (h, w): (u32, u32), norm: &Norm) -> Self {
        let scale = |v: [f32; 3]| v.map(|x| x / 255.0);
        Self::new(
            name,
            Shape::new(3, h, w),
            &scale(norm.mean),
            &scale(norm.std),
        )
    }

    fn node(&mut self, name: &str, op: IrOp, inputs: &[u32]) -> u32 {
        self.g.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
        });
        self.g.nodes.len() as u32
    }

    /// A tensor's shape, for the few ops (resizes, the flattened head) that depend on it.
    fn shape(&self, t: u32) -> Option<Shape> {
        self.g.shapes().ok().map(|s| s[t as usize])
    }

    fn conv(&mut self, name: &str, x: u32, c: Conv, bias: bool) -> u32 {
        self.node(name, c.op(bias), &[x])
    }

    /// conv (no bias) → batch norm `{name}_bn`.
    fn conv_bn(&mut self, name: &str, x: u32, c: Conv) -> u32 {
        let y = self.conv(name, x, c, false);
        self.bn(&format!("{name}_bn"), y, c.cout)
    }

    /// conv → batch norm → the ReLU position `relu`.
    fn conv_bn_relu(&mut self, name: &str, relu: &str, x: u32, c: Conv) -> u32 {
        let y = self.conv_bn(name, x, c);
        self.node(relu, IrOp::Relu, &[y])
    }

    fn bn(&mut self, name: &str, x: u32, channels: u32) -> u32 {
        self.node(
            name,
            IrOp::BatchNorm {
                channels,
                eps: 1e-5,
            },
            &[x],
        )
    }

    /// Bilinear, `align_corners = false` (mmseg's `resize`).
    fn resize(&mut self, name: &str, x: u32, (h, w): (u32, u32)) -> u32 {
        let op = IrOp::Upsample(Upsample {
            mode: UpsampleMode::Bilinear {
                align_corners: false,
            },
            size: [h, w],
        });
        self.node(name, op, &[x])
    }

    /// The classifiers' neck and head: global average pool (`gap`), dropout (an identity at
    /// inference) when the model has one, and the linear layer `fc`.
    fn classifier(&mut self, x: u32, channels: u32, classes: u32, dropout: bool) -> u32 {
        let mut x = self.node("gap", IrOp::GlobalAvgPool, &[x]);
        if dropout {
            x = self.node("dropout", IrOp::Identity, &[x]);
        }
        let fc = IrOp::Linear(Linear {
            in_features: channels,
            out_features: classes,
            bias: true,
        });
        self.node("fc", fc, &[x])
    }

    fn finish(mut self, output: u32) -> Graph {
        self.g.outputs = vec![output];
        self.g
    }
}
