//! Rewrites that need no forward pass (folding needs the parameters, the opt-in substitutions
//! do what they say), and graph files round-trip and reject corruption. That the rewrites keep
//! what a graph computes needs tch: `compiler/tests/rewrite.rs`.

use std::path::Path;

use ksnn_graph::ir::{GraphFile, IrOp, rewrite, zoo};
use ksnn_graph::onnx::{self, ImportOptions};

#[test]
fn folding_needs_the_parameters() {
    let mut g = zoo::build("mnist-cnn").unwrap();
    let e = rewrite::fold_batchnorm(&mut g, &mut Default::default()).unwrap_err();
    assert!(e.to_string().contains("conv1_bn.weight"), "{e}");
}

#[test]
fn opt_in_substitutions() {
    let mut g = zoo::build("mnist-cnn").unwrap();
    assert_eq!(rewrite::maxpool_to_avgpool(&mut g), 1);
    assert!(
        g.nodes
            .iter()
            .any(|n| matches!(&n.op, IrOp::AvgPool(p) if p.count_include_pad))
    );
    g.shapes().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
    let mut m = onnx::import(
        &fixtures.join("clip11_relu6.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(m.graph.relu_layers().len(), 0);
    assert_eq!(rewrite::relu6_to_relu(&mut m.graph), 1);
    assert_eq!(m.graph.relu_layers().len(), 1);
}

#[test]
fn graph_files_round_trip_and_reject_corruption() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
    let f = onnx::import(
        &fixtures.join("mnist_dynamo.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let bytes = f.encode();
    assert_eq!(GraphFile::decode(&bytes).unwrap(), f);
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = GraphFile::decode(&bad).unwrap_err().to_string();
    assert!(e.contains("graph") && e.contains("corrupted"), "{e}");
    let e = GraphFile::decode(&bytes[..30]).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    let program = ksnn_formats::example::tiny_cnn(1).0.encode();
    assert!(
        GraphFile::decode(&program).is_err(),
        "a program is not a graph file"
    );
}
