//! Built-in models. `mnist-cnn` is the demo default: small, several ReLU layers and a
//! residual connection.

use ksnn_formats::Shape;
use ksnn_formats::layer::{Conv2d, Linear, MaxPool, Padding};

use super::{Graph, IrOp, Node};

/// The zoo's model names.
pub const MODELS: &[&str] = &["mnist-cnn"];

/// Builds a zoo model by name.
pub fn build(name: &str) -> Option<Graph> {
    match name {
        "mnist-cnn" => Some(mnist_cnn()),
        _ => None,
    }
}

/// Appends nodes and tracks the last tensor id.
struct Builder {
    g: Graph,
}

impl Builder {
    fn node(&mut self, name: &str, op: IrOp, inputs: &[u32]) -> u32 {
        self.g.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
        });
        self.g.nodes.len() as u32
    }

    /// conv (no bias) → batch norm; returns the tensor.
    fn conv_bn(&mut self, name: &str, x: u32, cin: u32, cout: u32, stride: u32) -> u32 {
        let c = self.node(
            name,
            IrOp::Conv(Conv2d {
                in_channels: cin,
                out_channels: cout,
                kernel: [3, 3],
                stride: [stride, stride],
                padding: Padding::uniform(1),
                dilation: [1, 1],
                groups: 1,
                bias: false,
            }),
            &[x],
        );
        self.node(
            &format!("{name}_bn"),
            IrOp::BatchNorm {
                channels: cout,
                eps: 1e-5,
            },
            &[c],
        )
    }
}

/// 1×28×28 → 10 logits: a 16-channel stem, a strided 32-channel stage with a residual
/// block, max pooling, a 64-channel layer and a linear head; five ReLU positions.
pub fn mnist_cnn() -> Graph {
    let mut b = Builder {
        g: Graph {
            name: "mnist-cnn".into(),
            input: Shape::new(1, 28, 28),
            mean: vec![0.1307],
            std: vec![0.3081],
            nodes: Vec::new(),
            outputs: Vec::new(),
        },
    };
    let x = b.conv_bn("conv1", 0, 1, 16, 1);
    let x = b.node("stem", IrOp::Relu, &[x]);
    let x = b.conv_bn("conv2", x, 16, 32, 2);
    let x = b.node("layer1_0_1", IrOp::Relu, &[x]);
    let y = b.conv_bn("conv3", x, 32, 32, 1);
    let y = b.node("layer1_1_1", IrOp::Relu, &[y]);
    let y = b.conv_bn("conv4", y, 32, 32, 1);
    let x = b.node("res1", IrOp::Add, &[x, y]);
    let x = b.node("layer1_1_2", IrOp::Relu, &[x]);
    let x = b.node(
        "pool1",
        IrOp::MaxPool(MaxPool {
            kernel: [2, 2],
            stride: [2, 2],
            padding: Padding::default(),
            ceil_mode: false,
        }),
        &[x],
    );
    let x = b.conv_bn("conv5", x, 32, 64, 1);
    let x = b.node("layer2_0_1", IrOp::Relu, &[x]);
    let x = b.node("flatten", IrOp::Flatten, &[x]);
    let x = b.node(
        "fc",
        IrOp::Linear(Linear {
            in_features: 64 * 7 * 7,
            out_features: 10,
            bias: true,
        }),
        &[x],
    );
    b.g.outputs = vec![x];
    b.g
}
