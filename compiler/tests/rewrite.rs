//! Rewrites must not change what a graph computes (batch-norm folding, pad folding), checked
//! with the tch forward. The rewrites' other tests: `graph/tests/rewrite.rs`.

use ksnn_compiler::torch::executor::{Executor, get_params, set_params};
use ksnn_graph::ir::{IrOp, rewrite, zoo};
use tch::{Device, Kind, Tensor, nn};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

/// mnist-cnn with random weights and non-trivial batch-norm statistics.
fn randomised_mnist() -> (ksnn_graph::ir::Graph, ksnn_graph::ir::Params) {
    tch::manual_seed(7);
    let g = zoo::build("mnist-cnn").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    Executor::new(&vs.root(), &g).unwrap();
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.ends_with("running_var") {
                v.copy_(&(Tensor::rand_like(&v) + 0.5));
            } else if name.contains("_bn.") {
                v.copy_(&(Tensor::randn_like(&v) * 0.3));
            }
        }
    });
    (g, get_params(&vs).unwrap())
}

fn forward(g: &ksnn_graph::ir::Graph, p: &ksnn_graph::ir::Params, x: &Tensor) -> Tensor {
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), g).unwrap();
    set_params(&vs, p).unwrap();
    tch::no_grad(|| exec.forward(x, false))
}

#[test]
fn batchnorm_folding_keeps_the_outputs() {
    let (g, p) = randomised_mnist();
    let x = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let before = forward(&g, &p, &x);
    let (mut g2, mut p2) = (g.clone(), p.clone());
    let n = rewrite::fold_batchnorm(&mut g2, &mut p2).unwrap();
    assert_eq!(n, 5);
    assert!(
        g2.nodes
            .iter()
            .all(|n| !matches!(n.op, IrOp::BatchNorm { .. }))
    );
    assert_eq!(g2.nodes.len(), g.nodes.len() - 5);
    assert_eq!(g2.relu_layers(), g.relu_layers(), "ReLU names survive");
    let after = forward(&g2, &p2, &x);
    let d = max_diff(&before, &after);
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn a_batchnorm_after_an_add_becomes_an_affine() {
    let (mut g, mut p) = randomised_mnist();
    // Re-route: the BN after conv4 now reads the residual sum instead of the conv.
    let res = g.nodes.iter().position(|n| n.name == "res1").unwrap();
    let bn_after_res = ksnn_graph::ir::Node {
        name: "res_bn".into(),
        op: IrOp::BatchNorm {
            channels: 32,
            eps: 1e-5,
        },
        inputs: vec![res as u32 + 1],
    };
    for what in ["weight", "bias", "running_mean", "running_var"] {
        let src = p[&format!("conv4_bn.{what}")].clone();
        p.insert(format!("res_bn.{what}"), src);
    }
    g.nodes.insert(res + 1, bn_after_res);
    for n in &mut g.nodes[res + 2..] {
        for t in &mut n.inputs {
            if *t > res as u32 + 1 {
                *t += 1;
            }
        }
    }
    g.outputs = vec![g.nodes.len() as u32];
    g.shapes().unwrap();
    let x = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let before = forward(&g, &p, &x);
    rewrite::fold_batchnorm(&mut g, &mut p).unwrap();
    assert!(
        g.nodes
            .iter()
            .any(|n| n.name == "res_bn" && matches!(n.op, IrOp::Affine { .. }))
    );
    let d = max_diff(&before, &forward(&g, &p, &x));
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn zero_pads_fold_into_the_next_convolution() {
    use ksnn_formats::Shape;
    use ksnn_formats::layer::{Conv2d, Padding};
    use ksnn_graph::ir::{Graph, Node};
    let pad = Padding {
        top: 1,
        left: 2,
        bottom: 0,
        right: 1,
    };
    let node = |name: &str, op, inputs: Vec<u32>| Node {
        name: name.into(),
        op,
        inputs,
    };
    let conv = Conv2d {
        in_channels: 3,
        out_channels: 4,
        kernel: [3, 3],
        stride: [1, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        bias: true,
    };
    let g = Graph {
        name: "pad".into(),
        input: Shape::new(3, 9, 9),
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        nodes: vec![
            node("pad", IrOp::Pad(pad), vec![0]),
            node("conv", IrOp::Conv(conv), vec![1]),
            node("pad2", IrOp::Pad(pad), vec![2]),
            node("relu", IrOp::Relu, vec![3]),
        ],
        outputs: vec![4],
    };
    let vs = nn::VarStore::new(Device::Cpu);
    Executor::new(&vs.root(), &g).unwrap();
    let p = get_params(&vs).unwrap();
    let x = Tensor::randn([2, 3, 9, 9], (Kind::Float, Device::Cpu));
    let before = forward(&g, &p, &x);
    let mut g2 = g.clone();
    assert_eq!(
        rewrite::fold_pad(&mut g2),
        1,
        "the pad before the ReLU stays"
    );
    assert_eq!(g2.nodes.len(), 3);
    let IrOp::Conv(c) = &g2.nodes[0].op else {
        panic!("{:?}", g2.nodes)
    };
    assert_eq!(
        c.padding,
        Padding {
            top: 2,
            left: 3,
            bottom: 1,
            right: 2
        }
    );
    assert_eq!(
        g2.shapes().unwrap(),
        [
            g.shapes().unwrap()[0..1].to_vec(),
            g.shapes().unwrap()[2..].to_vec()
        ]
        .concat()
    );
    let d = max_diff(&before, &forward(&g2, &p, &x));
    assert!(d < 1e-5, "max |diff| {d}");
}
