//! `ksnn import` → `ksnn train --from` → `ksnn eval` through the binary, on the torch
//! exports (dynamo with external data, legacy) and real MNIST digits; checkpoints resume;
//! bad input ends in one `error:` line and exit code 1.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::ksnn;

fn data() -> PathBuf {
    let d = std::env::var_os("KSNN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"));
    assert!(
        d.join("mnist/t10k-images-idx3-ubyte").is_file(),
        "MNIST is missing in {}: run tools/setup.sh",
        d.display()
    );
    d
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The accuracy in the last line mentioning `test accuracy`.
fn accuracy(text: &str) -> f64 {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("test accuracy"))
        .expect(text);
    let after = line.split("test accuracy ").nth(1).expect(line);
    after.split('%').next().unwrap().parse().expect(line)
}

fn import_train_eval(fixture: &str) {
    let dir = tmp(fixture);
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../graph/tests/fixtures/onnx/{fixture}.onnx"));
    let graph = dir.join("model.ksnn-graph");
    let (ok, text) = ksnn(&[
        "import",
        onnx.to_str().unwrap(),
        "--out",
        graph.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("1x28x28") && text.contains("output 10x1x1"),
        "{text}"
    );
    let data = data();
    let d = data.to_str().unwrap();
    let g = graph.to_str().unwrap();
    // The imported (random) weights are the starting point: evaluate, fine-tune, evaluate.
    let (ok, text) = ksnn(&["eval", "--from", g, "--data", d, "--limit", "500"]);
    assert!(ok, "{text}");
    let start = accuracy(&text);
    let ckpt = dir.join("c.safetensors");
    let c = ckpt.to_str().unwrap();
    let (ok, text) = ksnn(&[
        "train", "--from", g, "--data", d, "--limit", "1500", "--epochs", "3", "--lr", "5e-3",
        "--out", c,
    ]);
    assert!(ok, "{text}");
    let trained = accuracy(&text);
    assert!(
        trained > start + 40.0,
        "{fixture}: {start}% -> {trained}%\n{text}"
    );
    // The checkpoint holds exactly the trained parameters (eval on the same first 1500 test
    // digits gives the same accuracy), and training resumes from it.
    let (ok, text) = ksnn(&[
        "eval",
        "--from",
        g,
        "--checkpoint",
        c,
        "--data",
        d,
        "--limit",
        "1500",
    ]);
    assert!(ok, "{text}");
    assert_eq!(accuracy(&text), trained, "{text}");
    let c2 = dir.join("c2.safetensors");
    let (ok, text) = ksnn(&[
        "train",
        "--from",
        g,
        "--checkpoint",
        c,
        "--data",
        d,
        "--limit",
        "500",
        "--epochs",
        "1",
        "--lr",
        "1e-4",
        "--out",
        c2.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        accuracy(&text) > start + 40.0,
        "resumed, not restarted:\n{text}"
    );
}

#[test]
fn dynamo_export_with_external_data_imports_and_fine_tunes() {
    import_train_eval("mnist_dynamo");
}

#[test]
fn legacy_export_imports_and_fine_tunes() {
    import_train_eval("mnist_legacy");
}

#[test]
fn errors_are_one_line_with_exit_code_1() {
    let dir = tmp("errors");
    let out = dir.join("g.ksnn-graph");
    let o = out.to_str().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../graph/tests/fixtures/onnx");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "import".into(),
                fixtures
                    .join("err_sigmoid_middle.onnx")
                    .display()
                    .to_string(),
                "--out".into(),
                o.into(),
            ],
            "unsupported op Sigmoid (opset 13) at node sigmoid_mid",
        ),
        (
            vec![
                "import".into(),
                fixtures.join("err_opset8.onnx").display().to_string(),
                "--out".into(),
                o.into(),
            ],
            "unsupported opset 8",
        ),
        (
            vec![
                "train".into(),
                "--model".into(),
                "mnist-cnn".into(),
                "--out".into(),
                dir.join("x.pt").display().to_string(),
            ],
            "safetensors",
        ),
        (
            vec![
                "info".into(),
                "--from".into(),
                fixtures.join("relu.onnx").display().to_string(),
            ],
            "graph (model.ksnn-graph)",
        ),
        (
            vec![
                "eval".into(),
                "--model".into(),
                "resnet50".into(),
                "--data".into(),
                dir.display().to_string(),
            ],
            "loading mnist",
        ),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_ksnn"))
            .args(&a)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
    }
}

/// distortion (two shards + merge, resumable) → knapsack → finetune → eval with the spec,
/// on a few real digits; the spec keeps to the budget counted on the real shapes.
#[test]
fn distortion_knapsack_finetune_flow() {
    let dir = tmp("flow");
    let data = data();
    let d = data.to_str().unwrap();
    let out = dir.join("dist");
    let o = out.to_str().unwrap();
    // `ksnn distortion` of mnist-cnn on `images` digits into `o`, then `more`.
    let distort = |images: &str, more: &[&str]| {
        let mut args = vec![
            "distortion",
            "--model",
            "mnist-cnn",
            "--data",
            d,
            "--images",
            images,
            "--out",
            o,
        ];
        args.extend_from_slice(more);
        ksnn(&args)
    };
    for shard in ["0/2", "1/2"] {
        let (ok, text) = distort("4", &["--shard", shard]);
        assert!(ok, "{text}");
    }
    let (ok, text) = distort("4", &["--shard", "1/2"]);
    assert!(
        ok && text.contains(": 0 perturbations"),
        "a finished shard is skipped:\n{text}"
    );
    let (ok, text) = distort("4", &["--merge"]);
    assert!(ok && text.contains("176 channel rows"), "{text}");
    let (ok, text) = distort("5", &["--merge"]);
    assert!(!ok && text.contains("another model"), "{text}");

    let spec = dir.join("spec.json");
    let dist = out.join("distortion.json");
    let (ok, text) = ksnn(&[
        "knapsack",
        "--distortion",
        dist.to_str().unwrap(),
        "--ratio",
        "0.06",
        "--out",
        spec.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let s = ksnn_formats::BlockSpec::from_json(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let g = ksnn_graph::ir::zoo::build("mnist-cnn").unwrap();
    let shapes = g.shapes().unwrap();
    let mut used = 0;
    let mut full = 0;
    for (i, n) in g.nodes.iter().enumerate() {
        if n.op == ksnn_graph::ir::IrOp::Relu {
            let sh = shapes[i + 1];
            full += sh.elements();
            used += s.layers[&n.name]
                .iter()
                .map(|b| b.drelus(sh.h, sh.w))
                .sum::<u64>();
        }
    }
    assert!(used <= full * 6 / 100, "{used} DReLUs over 6 % of {full}");
    assert!(
        text.contains(&format!("{used} DReLUs per inference")),
        "{text}"
    );

    let ft = dir.join("ft.safetensors");
    let (ok, text) = ksnn(&[
        "finetune",
        "--model",
        "mnist-cnn",
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        d,
        "--limit",
        "256",
        "--epochs",
        "1",
        "--out",
        ft.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("fine-tuning mnist-cnn"), "{text}");
    let (ok, text) = ksnn(&[
        "eval",
        "--model",
        "mnist-cnn",
        "--checkpoint",
        ft.to_str().unwrap(),
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        d,
        "--limit",
        "256",
    ]);
    assert!(ok, "{text}");

    // The original's pickles convert, and a spec for another model is refused by name.
    let pickle = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graph/tests/fixtures/spec/mnist_int32_p4.pickle");
    let imported = dir.join("imported.json");
    let (ok, text) = ksnn(&[
        "spec",
        "import",
        pickle.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("5 layers, 176 channels"), "{text}");
    std::fs::write(&imported, "{\"decode_5\": [[1,1]]}").unwrap();
    let (ok, text) = ksnn(&[
        "eval",
        "--model",
        "mnist-cnn",
        "--spec",
        imported.to_str().unwrap(),
        "--data",
        d,
        "--limit",
        "8",
    ]);
    assert!(
        !ok && text.contains("`decode_5` is not a ReLU or other budgeted activation"),
        "{text}"
    );
}

/// `ksnn compile`'s protocol options land in the program; out-of-range bits and misspelt
/// choices are refused by name (an untrained zoo model is enough).
#[test]
fn compile_protocol_options() {
    let dir = tmp("compile");
    let data = data();
    let out = dir.join("compiled");
    let compile = |more: &[&str]| {
        let mut args = vec![
            "compile",
            "--model",
            "mnist-cnn",
            "--data",
            data.to_str().unwrap(),
            "--calibration",
            "4",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        ksnn(&args)
    };
    let (ok, text) = compile(&[
        "--truncation",
        "exact",
        "--drelu",
        "securenn",
        "--approx-k",
        "3",
        "--approx-g",
        "30",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("exact truncation, securenn DReLU, approximate comparison k = 3, g = 30"),
        "{text}"
    );
    let p = ksnn_formats::Program::decode(&std::fs::read(out.join("model.ksnn")).unwrap()).unwrap();
    assert_eq!(
        p.protocol.approx,
        ksnn_formats::ApproxCompare { k: 3, g: 30 }
    );
    assert_eq!(p.protocol.truncation, ksnn_formats::Truncation::HelperExact);
    let (ok, text) = compile(&["--approx-g", "63"]);
    assert!(
        !ok && text.contains("--approx-g") && text.contains("0..=62"),
        "{text}"
    );
    let (ok, text) = compile(&["--truncation", "lcoal"]);
    assert!(
        !ok && text.contains("possible values: local, exact"),
        "{text}"
    );
}

/// `ksnn train --init FILE --map torchvision --epochs 0` converts a torchvision-named state
/// dict into a ksnn checkpoint without reading data, listing the skipped training-only
/// tensor; the same file under a wrong --map, or --init without --map, is refused.
#[test]
fn train_init_converts_with_zero_epochs() {
    use ksnn_compiler::torch::executor::Executor;
    use ksnn_compiler::torch::pretrained;
    use ksnn_graph::ir::pretrained::Naming;
    use tch::{Device, Tensor, nn};

    let dir = tmp("init");
    let g = ksnn_graph::ir::zoo::build("mobilenetv2").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    Executor::new(&vs.root(), &g).unwrap();
    let tv = dir.join("tv.safetensors");
    pretrained::save(&vs, &g, Naming::Torchvision, &tv).unwrap();
    let mut t = Tensor::read_safetensors(&tv).unwrap();
    t.push((
        "features.0.1.num_batches_tracked".into(),
        Tensor::from_slice(&[3i64]).view([]),
    ));
    Tensor::write_safetensors(&t, &tv).unwrap();
    let out = dir.join("converted/model.safetensors");
    let train = |map: &str| {
        ksnn(&[
            "train",
            "--model",
            "mobilenetv2",
            "--init",
            tv.to_str().unwrap(),
            "--map",
            map,
            "--epochs",
            "0",
            "--data",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (ok, text) = train("torchvision");
    assert!(ok, "{text}");
    let vars = ksnn_graph::ir::variables(&g).len();
    assert!(
        text.contains(&format!("initialised {vars} tensors of mobilenetv2 from")),
        "{text}"
    );
    assert!(
        text.contains("skipped 1 training-only tensors: features.0.1.num_batches_tracked"),
        "{text}"
    );
    let mut back = nn::VarStore::new(Device::Cpu);
    Executor::new(&back.root(), &g).unwrap();
    back.load(&out).unwrap();
    let loaded = back.variables();
    for (name, v) in vs.variables() {
        assert!(v.equal(&loaded[&name]), "{name} differs after conversion");
    }

    let (ok, text) = train("mmcls");
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "no tensor name matched: the file's names look like torchvision's (--map torchvision)"
        ),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{text}"
    );
    let (ok, text) = ksnn(&[
        "train",
        "--model",
        "mobilenetv2",
        "--init",
        tv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--map <MAP>"), "{text}");
}
