//! Measured traffic and rounds of a small CNN, per layer and phase, against the protocols'
//! cost formulas. Prints the per-layer table (`cargo test -p ksnn-runtime --test traffic --
//! --nocapture`).

use ksnn_formats::example::tiny_cnn;
use ksnn_formats::layer::{ActivationKind, Op};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::exec::model::encode_input;
use ksnn_runtime::exec::step::Step;
use ksnn_runtime::net::counting::{Phase, rounds};
use ksnn_runtime::prf::Keys;

#[test]
fn per_layer_traffic_matches_the_cost_model() {
    let (program, weights) = tiny_cnn(5);
    let model = Model::new(&program, Some(&weights)).unwrap();
    let input = encode_input(&program, &vec![0.5; 784]);
    let runs = run_three(
        &program,
        &weights,
        &[input],
        Keys::random_triple(),
        &LocalOptions::default(),
    )
    .unwrap();
    let stats: Vec<_> = runs.iter().map(|r| &r.inferences[0].record.stats).collect();
    let bytes = |phase: Phase, layer: Option<u32>| -> u64 {
        stats.iter().map(|s| s.sent_at((phase, layer)).bytes).sum()
    };
    let (layer_rounds, total_rounds) = rounds(&stats, Phase::Online, program.layers.len());
    let rounds = |_: Phase, layer: Option<u32>| layer_rounds[layer.unwrap() as usize];
    let drelu_bytes = 26 + 3 * 63u64;

    println!(
        "{:<12} {:<16} {:>8} {:>12} {:>12} {:>7}",
        "layer", "op", "DReLUs", "online B", "offline B", "rounds"
    );
    let costs = program.costs().unwrap();
    let (mut total_on, mut total_off) = (0, 0);
    for (i, layer) in program.layers.iter().enumerate() {
        let slot = Some(i as u32);
        let (on, off) = (bytes(Phase::Online, slot), bytes(Phase::Offline, slot));
        total_on += on;
        total_off += off;
        println!(
            "{:<12} {:<16} {:>8} {:>12} {:>12} {:>7}",
            layer.name,
            layer.op.kind(),
            costs[i].drelus,
            on,
            off,
            rounds(Phase::Online, slot)
        );
        let x = model.input_shape(i).elements();
        let y = model.output_shape(i).elements();
        match (&layer.op, &model.steps[i]) {
            // One activation-sized message online; the helper's C0 offline.
            (Op::Conv2d(_) | Op::Linear(_), _) => {
                assert_eq!(on, 8 * x, "{}: 8 bytes per input element", layer.name);
                assert_eq!(off, 8 * y, "{}", layer.name);
                assert!(
                    rounds(Phase::Online, slot) <= 1,
                    "one message, which may overlap the previous layer"
                );
            }
            (Op::BlockRelu(_), Step::BlockRelu { layout: l, .. }) => {
                let (pix, blocks) = (l.pixels.len() as u64, l.blocks as u64);
                assert_eq!(blocks, costs[i].drelus);
                assert_eq!(
                    on,
                    blocks * drelu_bytes + 16 * (pix + blocks),
                    "{}",
                    layer.name
                );
                assert_eq!(off, 8 * pix);
                assert_eq!(rounds(Phase::Online, slot), 5, "DReLU 4 + product 1");
            }
            (Op::MaxPool(_), _) => {
                assert_eq!(rounds(Phase::Online, slot), 2 * 5, "2x2 window: 2 levels")
            }
            (Op::Clip(_), _) => assert_eq!(on, 2 * y * drelu_bytes + 16 * (2 * y + 2 * y)),
            // Block ReLU's select, or clip's two-point one over the tiling (hard swish: over the
            // block gates); PReLU adds the slopes' linear protocol, hard swish a Beaver product
            // (local truncation: free).
            (Op::Activation(a), Step::Activation { plan, .. }) => {
                let (pix, blocks) = (plan.layout.pixels.len() as u64, plan.layout.blocks as u64);
                let d = a.kind.decisions();
                assert_eq!(d * blocks, costs[i].drelus, "{}", layer.name);
                let (select, select_off) = match a.kind {
                    // The clip runs on the block gates, one value per block.
                    ActivationKind::HardSwish { .. } => (
                        d * (blocks * drelu_bytes + 16 * (blocks + blocks)),
                        d * 8 * blocks,
                    ),
                    _ => (
                        d * (blocks * drelu_bytes + 16 * (pix + blocks)),
                        d * 8 * pix,
                    ),
                };
                let (extra_on, extra_off, extra_rounds) = match a.kind {
                    ActivationKind::Prelu => (8 * x, 8 * y, 1),
                    // x times its block's gate: compressed like block ReLU's product.
                    ActivationKind::HardSwish { .. } => (16 * (pix + blocks), 8 * pix, 1),
                    _ => (0, 0, 0),
                };
                assert_eq!(on, select + extra_on, "{}", layer.name);
                assert_eq!(off, select_off + extra_off, "{}", layer.name);
                assert_eq!(
                    rounds(Phase::Online, slot),
                    5 + extra_rounds,
                    "{}",
                    layer.name
                );
            }
            // One Beaver product: x − A both ways per element, y − B per gate value; the
            // helper's C0 offline.
            (Op::Mul, Step::Mul { shape }) => {
                let (nx, ny) = (shape.n_x as u64, shape.n_y as u64);
                assert!(ny < nx, "{}: the gate is per channel", layer.name);
                assert_eq!(on, 16 * (nx + ny), "{}", layer.name);
                assert_eq!(off, 8 * nx, "{}", layer.name);
                assert_eq!(rounds(Phase::Online, slot), 1, "{}", layer.name);
            }
            (_, Step::Local { .. }) => assert_eq!(on, 0, "{} is local", layer.name),
            _ => {}
        }
    }
    let reveal = bytes(Phase::Online, None);
    assert_eq!(reveal, 8 * 10, "P1 sends its 10 output shares");
    println!("{:<12} {:<16} {:>8} {:>12}", "output", "reveal", "", reveal);
    println!(
        "total online {} B, offline {} B, online rounds {total_rounds}",
        total_on + reveal,
        total_off
    );
    assert_eq!(
        total_rounds,
        layer_rounds.iter().sum::<u32>() + 1,
        "layers then the reveal"
    );
    let setup: u64 = runs
        .iter()
        .map(|r| r.setup.sent_in(Phase::Setup).bytes)
        .sum();
    // The weight file's non-bias coefficients, counted independently of the cost model.
    let weights_len: u64 = weights
        .content
        .tensors
        .iter()
        .filter(|t| t.role != ksnn_formats::WeightRole::Bias)
        .map(|t| 8 * t.data.len() as u64)
        .sum();
    assert_eq!(setup, weights_len, "set-up sends the masked weights once");
    assert_eq!(
        setup,
        program.setup_bytes().unwrap(),
        "the cost model's set-up"
    );
    println!("set-up (once per session): {setup} B");
}
