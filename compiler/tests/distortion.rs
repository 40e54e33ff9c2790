//! Distortion: batched measurements equal one-at-a-time ones and a direct evaluation with
//! the block spec applied; `[1,1]` costs nothing; shards and resumption give the same result
//! as one run.

use ksnn_compiler::distortion::store::{Meta, Shard, Store, items};
use ksnn_compiler::distortion::{self, Clean, LayerOptions, Measure};
use ksnn_compiler::torch::executor::Executor;
use ksnn_formats::BlockSpec;
use ksnn_formats::spec::Block;
use ksnn_graph::ir::zoo;
use tch::{Device, Kind, Tensor, nn};

fn setup() -> (nn::VarStore, Executor, Tensor) {
    tch::manual_seed(3);
    let g = zoo::build("mnist-cnn").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    (vs, exec, x)
}

/// Equal up to float rounding. The noise is the mean square of `y − y0`, a small
/// difference of outputs of size `rms`; the sparse tail computes `y` in another order (it
/// adds the first convolution's change to the clean output), so each output may move by
/// a rounding error `e ≈ 1e-6·rms` and the noise by about `2·√noise·e`. A wrong channel,
/// parameter or branch moves it by the order of the noise itself.
fn agree(fast: &[Vec<f64>], single: &[Vec<f64>], rms: f64, what: &str) {
    assert!(
        single.iter().flatten().any(|&v| v.sqrt() > 1e-4 * rms),
        "{what}: no perturbation moved the outputs: {single:?}, rms {rms}"
    );
    for (b, s) in fast.iter().zip(single) {
        for (vb, vs) in b.iter().zip(s) {
            assert!(
                (vb - vs).abs() <= 1e-4 * vs.sqrt() * rms + 1e-10 * rms * rms,
                "{what}: {vb} vs {vs} (outputs rms {rms})"
            );
        }
    }
}

/// Root mean square of the network's outputs on `x`.
fn rms(exec: &Executor, x: &Tensor) -> f64 {
    let y = tch::no_grad(|| exec.forward(x, false));
    f64::try_from(y.square().mean(Kind::Double)).unwrap().sqrt()
}

/// The sparse tail through residual additions with clean and perturbed sides, a
/// downsampling shortcut fed by a clean tensor, depthwise convolutions and BatchNorm, and
/// the last ReLU (only pooling and the classifier follow).
#[test]
fn sparse_tail_equals_dense_on_resnet_and_mobilenet() {
    for (model, names) in [
        (
            "resnet18-cifar",
            &[
                "stem",
                "layer1_0_2",
                "layer2_0_1",
                "layer4_1_1",
                "layer4_1_2",
            ][..],
        ),
        (
            "mobilenetv2",
            &["layer6_0_0", "layer6_1_1", "layer7_0_0", "conv2"][..],
        ),
    ] {
        tch::manual_seed(5);
        let g = zoo::build(model).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let exec = Executor::new(&vs.root(), &g).unwrap();
        let s = g.input;
        let x = Tensor::randn(
            [2, s.c.into(), s.h.into(), s.w.into()],
            (Kind::Float, Device::Cpu),
        );
        // As after training: BatchNorm affine parameters away from the identity, then
        // running statistics of the data (nonzero means, so that a dropped shift shows).
        tch::no_grad(|| {
            for (name, mut w) in vs.variables() {
                let r = Tensor::rand_like(&w);
                match name.rsplit('.').next() {
                    Some("weight") if w.dim() == 1 => w.copy_(&(r * 0.5 + 0.75)),
                    Some("bias") if w.dim() == 1 => w.copy_(&((r - 0.5) * 0.2)),
                    _ => {}
                }
            }
            for _ in 0..40 {
                let _ = exec.forward(&x, true);
            }
        });
        let clean = Clean::new(&exec, &x);
        let layers = distortion::layers(&g);
        for name in names {
            let mut l = layers.iter().find(|l| &l.name == name).unwrap().clone();
            l.options.truncate(5);
            l.options.push(Block::IDENTITY);
            let fast =
                distortion::measure(&exec, &clean, &l, 3..5, Measure::fast(7), &mut |_| {}).noise;
            let single = distortion::measure(
                &exec,
                &clean,
                &l,
                3..5,
                Measure::one_at_a_time(2),
                &mut |_| {},
            )
            .noise;
            agree(&fast, &single, rms(&exec, &x), &format!("{model} {name}"));
        }
    }
}

/// The noise of giving channel `c` of layer `l` block `b` (every other channel `[1,1]`),
/// by applying that spec and running the whole network; `y0` are the clean outputs on `x`.
fn direct_noise(
    exec: &mut Executor,
    x: &Tensor,
    y0: &Tensor,
    l: &LayerOptions,
    c: usize,
    b: Block,
) -> f64 {
    let mut blocks = vec![Block::RELU; l.channels as usize];
    blocks[c] = b;
    let spec = BlockSpec {
        layers: [(l.name.clone(), blocks)].into_iter().collect(),
    };
    exec.set_spec(&spec).unwrap();
    let y = tch::no_grad(|| exec.forward(x, false));
    exec.set_spec(&BlockSpec::default()).unwrap();
    f64::try_from((y - y0).square().mean(Kind::Double)).unwrap()
}

#[test]
fn batched_equals_single_and_direct() {
    let (_vs, mut exec, x) = setup();
    let clean = Clean::new(&exec, &x);
    let layers = distortion::layers(exec.graph());
    assert_eq!(layers.len(), 5);
    for l in [&layers[0], &layers[2], &layers[4]] {
        let batched =
            distortion::measure(&exec, &clean, l, 1..3, Measure::fast(64), &mut |_| {}).noise;
        let single = distortion::measure(
            &exec,
            &clean,
            l,
            1..3,
            Measure::one_at_a_time(3),
            &mut |_| {},
        )
        .noise;
        agree(&batched, &single, rms(&exec, &x), &l.name);
        let relu = l.options.iter().position(|&b| b == Block::RELU).unwrap();
        assert_eq!(batched[0][relu], 0.0, "an ordinary ReLU changes nothing");
        // Direct: apply the spec (channel 2 gets option o, others ReLU) and compare outputs.
        let y0 = tch::no_grad(|| exec.forward(&x, false));
        for o in [1, l.options.len() / 2, l.options.len() - 1] {
            let direct = direct_noise(&mut exec, &x, &y0, l, 2, l.options[o]);
            let measured = batched[1][o];
            assert!(
                (direct - measured).abs() <= 1e-6 * (1.0 + direct.abs()),
                "{} option {}: direct {direct} vs measured {measured}",
                l.name,
                l.options[o]
            );
        }
    }
}

#[test]
fn shards_and_resumption_agree_with_one_run() {
    let (_vs, exec, x) = setup();
    let clean = Clean::new(&exec, &x);
    let mut layers = distortion::layers(exec.graph());
    // Keep the test quick: two layers, few options.
    layers.truncate(2);
    for l in &mut layers {
        l.options.truncate(4);
    }
    let meta = Meta {
        model: "mnist-cnn".into(),
        fingerprint: "test".into(),
        images: 3,
        layers: layers.clone(),
    };
    let run = |dir: &std::path::Path, shard: Shard| -> usize {
        let store = Store::open(dir, meta.clone()).unwrap();
        let mut measured = 0;
        for (i, item) in items(&layers).iter().enumerate() {
            if shard.owns(i) && !store.done(item) {
                let noise = distortion::measure(
                    &exec,
                    &clean,
                    &layers[item.layer],
                    item.channels.clone(),
                    Measure::fast(32),
                    &mut |_| {},
                )
                .noise;
                store.save(item, &noise).unwrap();
                measured += 1;
            }
        }
        measured
    };
    let base = std::env::temp_dir().join(format!("ksnn-dist-{}", std::process::id()));
    let (one, sharded) = (base.join("one"), base.join("sharded"));
    let _ = std::fs::remove_dir_all(&base);
    let total = items(&layers).len();
    assert_eq!(run(&one, Shard::ALL), total);
    assert_eq!(run(&one, Shard::ALL), 0, "a second run measures nothing");
    let store = Store::open(&sharded, meta.clone()).unwrap();
    let e = store.merge().unwrap_err().to_string();
    assert!(e.contains(&format!("{total} of {total}")), "{e}");
    let a = run(&sharded, Shard::parse("0/2").unwrap());
    let b = run(&sharded, Shard::parse("1/2").unwrap());
    assert_eq!(a + b, total);
    let m1 = Store::open(&one, meta.clone()).unwrap().merge().unwrap();
    let m2 = store.merge().unwrap();
    assert_eq!(m1, m2);
    assert!(base.join("one/distortion.json").is_file());
    // Another model's measurements are refused, not mixed in.
    let mut other = meta.clone();
    other.fingerprint = "other".into();
    assert!(Store::open(&one, other).is_err());
    assert!(Shard::parse("2/2").is_err() && Shard::parse("x").is_err());
}

/// Leaky ReLU, PReLU, hard swish and hard sigmoid are measured like ReLUs: the layers list
/// them with their decisions per block, `[1,1]` costs nothing, batched (sparse tail) equals
/// one at a time, and a measurement equals applying the spec directly.
#[test]
fn other_activations_are_measured_like_relus() {
    use ksnn_formats::Shape;
    use ksnn_formats::layer::{Conv2d, Linear, Padding};
    use ksnn_graph::ir::{Graph, IrActivation, IrOp, Node};

    let conv = |cin, cout| {
        IrOp::Conv(Conv2d {
            in_channels: cin,
            out_channels: cout,
            kernel: [3, 3],
            stride: [1, 1],
            padding: Padding::uniform(1),
            dilation: [1, 1],
            groups: 1,
            bias: true,
        })
    };
    let act = |a| IrOp::Activation(a);
    let ops = [
        conv(2, 4),
        act(IrActivation::LeakyRelu { slope: 0.1 }),
        conv(4, 4),
        act(IrActivation::Prelu { channels: 4 }),
        conv(4, 4),
        act(IrActivation::HardSwish {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        }),
        conv(4, 4),
        act(IrActivation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        }),
        IrOp::GlobalAvgPool,
        IrOp::Linear(Linear {
            in_features: 4,
            out_features: 3,
            bias: true,
        }),
    ];
    let mut g = Graph {
        name: "activations".into(),
        input: Shape::new(2, 12, 12),
        mean: vec![0.0; 2],
        std: vec![1.0; 2],
        nodes: Vec::new(),
        outputs: vec![ops.len() as u32],
    };
    let mut shapes = vec![g.input];
    for (i, op) in ops.into_iter().enumerate() {
        let node = Node {
            name: format!("n{i}"),
            op,
            inputs: vec![i as u32],
        };
        g.push(node, &mut shapes).unwrap();
    }
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut exec = Executor::new(&vs.root(), &g).unwrap();
    let x = Tensor::randn([3, 2, 12, 12], (Kind::Float, Device::Cpu)) * 3.0;
    let clean = Clean::new(&exec, &x);
    let layers = distortion::layers(&g);
    let decisions: Vec<u64> = layers.iter().map(|l| l.decisions).collect();
    assert_eq!(decisions, [1, 1, 2, 2]);
    let y0 = tch::no_grad(|| exec.forward(&x, false));
    for l in &layers {
        let mut l = l.clone();
        l.options.truncate(6);
        l.options.push(Block::IDENTITY);
        let fast = distortion::measure(&exec, &clean, &l, 0..4, Measure::fast(16), &mut |_| {});
        let single = distortion::measure(
            &exec,
            &clean,
            &l,
            0..4,
            Measure::one_at_a_time(3),
            &mut |_| {},
        );
        agree(&fast.noise, &single.noise, rms(&exec, &x), &l.name);
        let relu = l.options.iter().position(|&b| b == Block::RELU).unwrap();
        assert!(
            fast.noise.iter().all(|n| n[relu] == 0.0),
            "{}: [1,1] is the activation itself",
            l.name
        );
        for o in [1, l.options.len() - 1] {
            let direct = direct_noise(&mut exec, &x, &y0, &l, 1, l.options[o]);
            let measured = fast.noise[1][o];
            assert!(
                (direct - measured).abs() <= 1e-6 * (1.0 + direct.abs()),
                "{} option {}: direct {direct} vs measured {measured}",
                l.name,
                l.options[o]
            );
        }
    }
}
