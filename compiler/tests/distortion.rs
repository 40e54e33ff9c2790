//! Distortion: batched measurements equal one-at-a-time ones and a direct evaluation with
//! the block spec applied; `[1,1]` costs nothing; shards and resumption give the same result
//! as one run.

use ksnn_compiler::distortion::store::{Meta, Shard, Store, items};
use ksnn_compiler::distortion::{self, Clean, Measure};
use ksnn_compiler::ir::zoo;
use ksnn_compiler::torch::executor::Executor;
use ksnn_formats::BlockSpec;
use ksnn_formats::spec::Block;
use tch::{Device, Kind, Tensor, nn};

fn setup() -> (nn::VarStore, Executor, Tensor) {
    tch::manual_seed(3);
    let g = zoo::build("mnist-cnn").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &g).unwrap();
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    (vs, exec, x)
}

#[test]
fn batched_equals_single_and_direct() {
    let (_vs, mut exec, x) = setup();
    let clean = Clean::new(&exec, &x);
    let layers = distortion::layers(exec.graph());
    assert_eq!(layers.len(), 5);
    for l in [&layers[0], &layers[2], &layers[4]] {
        let batched = distortion::measure(
            &exec,
            &clean,
            l,
            1..3,
            Measure {
                per_pass: 64,
                dedup: true,
            },
            &mut |_| {},
        );
        let single = distortion::measure(
            &exec,
            &clean,
            l,
            1..3,
            Measure {
                per_pass: 1,
                dedup: false,
            },
            &mut |_| {},
        );
        for (b, s) in batched.iter().zip(&single) {
            for (vb, vs) in b.iter().zip(s) {
                assert!(
                    (vb - vs).abs() <= 1e-9 * (1.0 + vs.abs()),
                    "{}: {vb} vs {vs}",
                    l.name
                );
            }
        }
        let relu = l.options.iter().position(|&b| b == Block::RELU).unwrap();
        assert_eq!(batched[0][relu], 0.0, "an ordinary ReLU changes nothing");
        // Direct: apply the spec (channel 2 gets option o, others ReLU) and compare outputs.
        let y0 = tch::no_grad(|| exec.forward(&x, false));
        for o in [1, l.options.len() / 2, l.options.len() - 1] {
            let mut blocks = vec![Block::RELU; l.channels as usize];
            blocks[2] = l.options[o];
            let spec = BlockSpec {
                layers: [(l.name.clone(), blocks)].into_iter().collect(),
            };
            exec.set_spec(&spec).unwrap();
            let y = tch::no_grad(|| exec.forward(&x, false));
            exec.set_spec(&BlockSpec::default()).unwrap();
            let direct = f64::try_from((y - &y0).square().mean(Kind::Double)).unwrap();
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
                    Measure {
                        per_pass: 32,
                        dedup: true,
                    },
                    &mut |_| {},
                );
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
