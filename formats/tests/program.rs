//! Programs, weights and specs: round trips, costs, and one targeted test per validation rule.

use ksnn_formats::example::{ALL_KINDS, kinds, random_program, tiny_cnn};
use ksnn_formats::layer::{Conv2d, Padding};
use ksnn_formats::*;

fn assert_layer_error(program: &Program, layer: &str, expect: impl Fn(&Problem) -> bool) {
    match program.validate() {
        Err(FormatError::Layer { name, problem, .. }) => {
            assert_eq!(name, layer, "wrong layer named: {problem}");
            assert!(expect(&problem), "unexpected problem: {problem}");
        }
        other => panic!("expected a layer error at {layer}, got {other:?}"),
    }
}

#[test]
fn tiny_cnn_round_trips_and_uses_every_kind() {
    let (program, weights) = tiny_cnn(1);
    let shapes = program.validate().unwrap();
    assert_eq!(shapes.last().unwrap(), &Shape::vector(10));
    let decoded = Program::decode(&program.encode()).unwrap();
    assert_eq!(decoded, program);
    assert_eq!(decoded.content_hash(), program.content_hash());
    let w = Weights::decode(&weights.encode()).unwrap();
    assert_eq!(w, weights);
    w.check_against(&decoded).unwrap();
    let used = kinds(&program);
    for kind in ALL_KINDS {
        assert!(used.iter().any(|k| k == kind), "tiny_cnn lacks {kind}");
    }
}

#[test]
fn drelu_costs_come_from_real_shapes() {
    let (program, _) = tiny_cnn(1);
    let costs = program.costs().unwrap();
    let by_name = |n: &str| {
        costs
            .iter()
            .find(|c| program.layers[c.index].name == n)
            .unwrap()
            .drelus
    };
    // relu1 on 28x28: [1,1] 784, [2,2] 196, [3,3] 100, identity 0, zero 0, [4,7] 28,
    // [28,28] 1, [5,3] 6*10 = 60.
    assert_eq!(by_name("relu1"), 784 + 196 + 100 + 28 + 1 + 60);
    // relu3 on 14x14: 12 channels of [2,2] (49 each) and 4 of [1,1] (196 each).
    assert_eq!(by_name("relu3"), 12 * 49 + 4 * 196);
    // pool1: 8x14x14 outputs, 3 comparisons each; relu6: 2 per element of 16x14x14.
    assert_eq!(by_name("pool1"), 8 * 14 * 14 * 3);
    assert_eq!(by_name("relu6_2"), 2 * 16 * 14 * 14);
    assert_eq!(by_name("conv1"), 0);
    // The activation chain on 8x14x14: [1,1] 196 twice, [2,2] 49, [3,5] 5*3 = 15, [14,14] 1,
    // [4,4] 16, identity and zero 0: 473 blocks, one decision each for leaky ReLU and PReLU,
    // two for hard sigmoid and hard swish.
    assert_eq!(by_name("leaky4"), 473);
    assert_eq!(by_name("prelu4"), 473);
    assert_eq!(by_name("hsig4"), 2 * 473);
    assert_eq!(by_name("hswish4"), 2 * 473);
    assert_eq!(
        program.spec_drelus().unwrap(),
        1169 + 1372 + 2 * 473 + 4 * 473
    );
}

#[test]
fn random_programs_cover_every_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let (p, w) = random_program(seed, 10);
        p.validate()
            .unwrap_or_else(|e| panic!("seed {seed} built an invalid program: {e}"));
        w.check_against(&p).unwrap();
        seen.extend(kinds(&p));
    }
    for kind in ALL_KINDS {
        assert!(seen.contains(kind), "random programs never use {kind}");
    }
}

#[test]
fn shape_rules_are_enforced_per_layer() {
    let (base, _) = tiny_cnn(1);

    let mut p = base.clone();
    let ksnn_formats::Op::Conv2d(c) = &mut p.layers[3].op else {
        unreachable!()
    };
    c.in_channels = 7;
    assert_layer_error(&p, "conv2", |pr| {
        matches!(
            pr,
            Problem::Mismatch {
                field: "in_channels",
                expected: 8,
                got: 7
            }
        )
    });

    let mut p = base.clone();
    p.layers[3].op = Op::Conv2d(Conv2d {
        in_channels: 8,
        out_channels: 16,
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 3,
        bias: true,
    });
    assert_layer_error(&p, "conv2", |pr| {
        matches!(pr, Problem::NotDivisible { by: 3, .. })
    });

    let mut p = base.clone();
    let Op::BlockRelu(b) = &mut p.layers[1].op else {
        unreachable!()
    };
    b.blocks.pop();
    assert_layer_error(&p, "relu1", |pr| {
        matches!(
            pr,
            Problem::SpecLength {
                expected: 8,
                got: 7
            }
        )
    });

    let mut p = base.clone();
    let Op::BlockRelu(b) = &mut p.layers[1].op else {
        unreachable!()
    };
    b.blocks[2] = Block(29, 1);
    assert_layer_error(&p, "relu1", |pr| {
        matches!(pr, Problem::BlockTooLarge { channel: 2, .. })
    });

    let mut p = base.clone();
    let Op::BlockRelu(b) = &mut p.layers[1].op else {
        unreachable!()
    };
    b.blocks[0] = Block(0, 3);
    assert_layer_error(&p, "relu1", |pr| {
        matches!(pr, Problem::BadBlock { channel: 0, .. })
    });

    let mut p = base.clone();
    p.layers[7].inputs = vec![6, 3];
    assert_layer_error(&p, "res3", |pr| matches!(pr, Problem::ShapeMismatch { .. }));

    let mut p = base.clone();
    p.layers[7].inputs = vec![6];
    assert_layer_error(&p, "res3", |pr| matches!(pr, Problem::Arity { got: 1, .. }));

    let mut p = base.clone();
    p.layers[2].inputs = vec![9];
    assert_layer_error(&p, "pool1", |pr| {
        matches!(pr, Problem::UnknownTensor { id: 9, defined: 2 })
    });

    let mut p = base.clone();
    p.layers[5].name = "conv1".into();
    assert_layer_error(&p, "conv1", |pr| matches!(pr, Problem::Duplicate { .. }));

    let mut p = base.clone();
    let Op::Linear(l) = &mut p.layers[14].op else {
        unreachable!()
    };
    l.in_features = 100;
    assert_layer_error(&p, "fc_spatial", |pr| {
        matches!(pr, Problem::ShapeMismatch { .. })
    });

    let mut p = base.clone();
    p.layers[5].op = Op::Clip(ksnn_formats::layer::Clip { min: 5, max: 5 });
    assert_layer_error(&p, "relu6_2", |pr| matches!(pr, Problem::Order { .. }));
}

#[test]
fn program_fields_are_checked() {
    let (base, _) = tiny_cnn(1);
    let field_of = |p: &Program| match p.validate() {
        Err(FormatError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    };
    let mut p = base.clone();
    p.input.std[0] = 0.0;
    assert_eq!(field_of(&p), "input.std");
    let mut p = base.clone();
    p.input.mean.push(0.5);
    assert_eq!(field_of(&p), "input.mean");
    let mut p = base.clone();
    p.fixed_point.frac_bits = 40;
    assert_eq!(field_of(&p), "fixed_point.frac_bits");
    let mut p = base.clone();
    p.fixed_point.ring_bits = 32;
    assert_eq!(field_of(&p), "fixed_point.ring_bits");
    let mut p = base.clone();
    p.outputs[0].tensor = 99;
    assert_eq!(field_of(&p), "outputs[0]");
    let mut p = base.clone();
    p.protocol.approx.g = 64;
    assert_eq!(field_of(&p), "protocol.approx");
    let mut p = base.clone();
    p.layers.clear();
    assert_eq!(field_of(&p), "layers");
    // An invalid program never decodes, even with a correct hash.
    let mut p = base.clone();
    p.input.std[0] = -1.0;
    assert!(matches!(
        Program::decode(&p.encode()),
        Err(FormatError::Field { .. })
    ));
}

#[test]
fn specs_apply_only_where_they_fit() {
    let (mut program, _) = tiny_cnn(1);
    let mut spec = program.block_spec();
    // Two block ReLUs (8 + 16 channels) and four other activations (8 each).
    assert_eq!(spec.layers.len(), 6);
    assert_eq!(spec.channels(), 24 + 4 * 8);
    spec.layers.insert("relu1".into(), vec![Block(4, 4); 8]);
    program.apply_spec(&spec).unwrap();
    assert_eq!(program.block_spec(), spec);

    let before = program.clone();
    let mut bad = spec.clone();
    bad.layers.insert("conv1".into(), vec![Block::RELU; 8]);
    let err = program.apply_spec(&bad).unwrap_err();
    assert!(
        matches!(&err, FormatError::Spec { layer, problem: Problem::NotBudgeted } if layer == "conv1"),
        "{err}"
    );
    let mut bad = spec.clone();
    bad.layers.insert("nope".into(), vec![Block::RELU]);
    assert!(program.apply_spec(&bad).is_err());
    let mut bad = spec.clone();
    bad.layers.insert("relu3".into(), vec![Block(15, 1); 16]);
    let msg = program.apply_spec(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("relu3") && msg.contains("[15,1]") && msg.contains("14x14"),
        "{msg}"
    );
    assert_eq!(
        program, before,
        "a failed apply leaves the program unchanged"
    );
}

#[test]
fn weights_must_belong_to_the_program() {
    let (program, weights) = tiny_cnn(1);
    let (other, other_weights) = tiny_cnn(2);
    assert!(matches!(
        other_weights.check_against(&program),
        Err(FormatError::WrongProgram { .. })
    ));
    assert_eq!(
        program.layers, other.layers,
        "same architecture, other weights"
    );

    // Right program hash, other tensors.
    let mut swapped = other_weights.clone();
    swapped.program_hash = program.content_hash();
    assert!(matches!(
        swapped.check_against(&program),
        Err(FormatError::WrongWeights { .. })
    ));

    // Each tampering is caught: a missing tensor, an extra one, a wrong shape.
    let check = |mutate: &dyn Fn(&mut Weights)| {
        let mut w = weights.clone();
        mutate(&mut w);
        let mut p = program.clone();
        p.weights_hash = w.content_hash();
        w.program_hash = p.content_hash();
        w.check_against(&p).unwrap_err()
    };
    let err = check(&|w| {
        w.content.tensors.remove(0);
    });
    assert!(err.to_string().contains("conv1.weight"), "{err}");
    let err = check(&|w| {
        let mut t = w.content.tensors[0].clone();
        t.layer = "ghost".into();
        w.content.tensors.push(t);
    });
    assert!(err.to_string().contains("ghost.weight"), "{err}");
    let err = check(&|w| {
        w.content.tensors[0].shape = vec![8, 1, 9];
    });
    assert!(err.to_string().contains("conv1.weight"), "{err}");
    // Data that does not match its declared shape is refused at decode.
    let mut w = weights.clone();
    w.content.tensors[1].data.pop();
    assert!(matches!(
        Weights::decode(&w.encode()),
        Err(FormatError::Weight {
            problem: Problem::Mismatch { .. },
            ..
        })
    ));
}

#[test]
fn errors_read_well() {
    let (mut p, _) = tiny_cnn(1);
    let ksnn_formats::Op::Conv2d(c) = &mut p.layers[3].op else {
        unreachable!()
    };
    c.in_channels = 7;
    let msg = p.validate().unwrap_err().to_string();
    assert_eq!(
        msg,
        "program layer 3 `conv2` (conv2d): `in_channels` is 7 but the program implies 8"
    );
}
