//! Golden run of `ksnn pipeline` on a reduced MNIST experiment: import/train → distortion →
//! knapsack → fine-tune → compile → three `ksnn-party` processes over TLS; the report's
//! fields hold together, the secure run agrees with the reference, the stages are cached.
//! Experiment files: every shipped one loads, typos fail at load naming the key and the
//! allowed values, and the compile settings reach the lowered program.

use std::error::Error as _;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ksnn_compiler::check;
use ksnn_compiler::experiment::Experiment;
use ksnn_compiler::torch::executor::{Executor, get_params};
use ksnn_formats::program::{ApproxCompare, DreluProtocol, ProtocolConfig, Truncation};
use ksnn_formats::{BlockSpec, Program, Report};
use ksnn_graph::lower::{LowerOptions, lower};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

mod common;

fn pipeline(config: &Path) -> String {
    let args = [
        OsStr::new("pipeline"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    let (ok, text) = common::ksnn_in(Some(&repo()), &args);
    assert!(ok, "{text}");
    text
}

#[test]
fn reduced_pipeline_end_to_end() {
    let party = Path::new(env!("CARGO_BIN_EXE_ksnn")).with_file_name("ksnn-party");
    assert!(
        party.is_file(),
        "build ksnn-party first (cargo build -p ksnn-party): {}",
        party.display()
    );
    let dir = std::env::temp_dir().join(format!("ksnn-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tiny.toml");
    let data =
        std::env::var("KSNN_DATA").unwrap_or_else(|_| repo().join("data").display().to_string());
    std::fs::write(
        &config,
        format!(
            r#"run_dir = "{run}"
[model]
onnx = "{onnx}"
[data]
root = "{data}"
limit = 600
[train]
epochs = 2
lr = 5e-3
[distortion]
images = 4
[knapsack]
ratio = 0.1
[finetune]
epochs = 1
lr = 2e-3
[compile]
calibration = 8
[secure]
images = 12
"#,
            run = dir.join("run").display(),
            onnx = repo()
                .join("graph/tests/fixtures/onnx/mnist_legacy.onnx")
                .display(),
        ),
    )
    .unwrap();
    let text = pipeline(&config);
    common::assert_stages_ran(
        &text,
        &[
            "import",
            "train",
            "distortion",
            "knapsack",
            "finetune",
            "compile",
            "secure",
        ],
    );
    let run = dir.join("run");
    let report =
        Report::from_json(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.images, 12);
    assert!(
        report.secure_equals_reference >= 11,
        "{} of 12 equal",
        report.secure_equals_reference
    );
    assert!(report.per_inference.bytes.total > 0 && report.per_inference.rounds > 0);
    assert!(report.per_inference.seconds.total > 0.0);
    // DReLUs: the report's per-layer figures are the compiled program's costs (what
    // `ksnn-tools inspect` prints), and its block-ReLU part is the spec's count.
    let program =
        Program::decode(&std::fs::read(run.join("compiled/model.ksnn")).unwrap()).unwrap();
    let costs = program.costs().unwrap();
    for (l, c) in report.per_layer.iter().zip(&costs) {
        assert_eq!(l.drelus, c.drelus, "layer {}", l.name);
    }
    assert_eq!(report.spec_drelus, program.spec_drelus().unwrap());
    let tools = Path::new(env!("CARGO_BIN_EXE_ksnn")).with_file_name("ksnn-tools");
    if tools.is_file() {
        let out = Command::new(tools)
            .arg("inspect")
            .arg(run.join("compiled/model.ksnn"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let total: u64 = costs.iter().map(|c| c.drelus).sum();
        assert!(
            text.contains(&format!("DReLUs      {total} per inference")),
            "{text}"
        );
    }
    assert!(run.join("bytes_per_layer.png").is_file());
    assert!(text.contains("secure = reference"), "{text}");

    // Everything is cached: a second run redoes only nothing.
    let again = pipeline(&config);
    assert_eq!(again.matches("unchanged, skipped").count(), 7, "{again}");
}

#[test]
fn every_experiment_file_loads() {
    let dir = repo().join("experiments");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Experiment::load(&path).unwrap_or_else(|e| panic!("{e}: {:?}", e.source()));
            n += 1;
        }
    }
    assert!(n >= 2, "{n} experiment files in {}", dir.display());
}

/// `ksnn pipeline --config` with `body`: it fails before any stage runs; the error text.
fn refused(tag: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ksnn-pipeline-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("typo.toml");
    std::fs::write(
        &config,
        format!("run_dir = \"{}\"\n{body}", dir.join("run").display()),
    )
    .unwrap();
    let (ok, text) = common::ksnn_in(
        Some(&repo()),
        &[
            OsStr::new("pipeline"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
    );
    assert!(!ok, "{text}");
    assert!(!text.contains("== "), "a stage ran:\n{text}");
    assert!(!dir.join("run").exists(), "{text}");
    assert!(text.contains("typo.toml"), "the file is named:\n{text}");
    text
}

#[test]
fn a_misspelt_choice_fails_at_load_with_the_allowed_values() {
    let text = refused(
        "choice",
        "[model]\nzoo = \"mnist-cnn\"\n[knapsack]\nsolver = \"lagrangain\"\n",
    );
    for want in [
        "solver = \"lagrangain\"",
        "unknown value `lagrangain`",
        "lagrangian, exact",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    for (key, bad, allowed) in [
        ("[compile]\ntruncation", "lcoal", "local, exact"),
        ("[compile]\ndrelu", "secure-nn", "securenn, fss"),
        (
            "[data]\ndataset",
            "cifar-10",
            "mnist, cifar10, cifar100, folders",
        ),
    ] {
        let e = Experiment::parse(&format!("run_dir = \"r\"\n{key} = \"{bad}\"\n")).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains(&format!(
                "unknown value `{bad}`; expected one of: {allowed}"
            )),
            "{e}"
        );
    }
}

/// `[model] init` names a starting checkpoint with its naming; either alone, or a naming that
/// does not exist, is refused at load. Sweep baselines are spelt as `--baseline`.
#[test]
fn starting_checkpoints_and_baselines_are_checked_at_load() {
    let ok = Experiment::parse(
        "run_dir = \"r\"\n[model]\nzoo = \"deeplabv3-mobilenetv2\"\ninit = \"m.safetensors\"\nmap = \"mmseg\"\n[sweep]\nbaselines = [\"uniform\", \"layerwise\"]\n",
    )
    .unwrap();
    assert_eq!(
        ok.model.map,
        Some(ksnn_graph::ir::pretrained::Naming::Mmseg)
    );
    assert_eq!(ok.sweep.unwrap().baselines.len(), 2);
    for (text, want) in [
        ("init = \"m.safetensors\"\n", "`init` needs `map`"),
        ("map = \"mmseg\"\n", "`map` applies to `init`"),
        (
            "init = \"m.safetensors\"\nmap = \"timm\"\n",
            "unknown value `timm`; expected one of: ksnn, torchvision, mmcls, mmseg",
        ),
    ] {
        let e = Experiment::parse(&format!("run_dir = \"r\"\n[model]\n{text}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
    let e = Experiment::parse("run_dir = \"r\"\n[sweep]\nbaselines = [\"channel\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected one of: layerwise, uniform"), "{e}");
}

#[test]
fn an_unknown_key_fails_at_load() {
    let text = refused(
        "key",
        "[model]\nzoo = \"mnist-cnn\"\n[knapsack]\nratoi = 0.1\n",
    );
    assert!(text.contains("unknown field `ratoi`"), "{text}");
    assert!(
        text.contains("`ratio`"),
        "the allowed keys are listed:\n{text}"
    );
}

#[test]
fn approximate_comparison_bits_are_checked_at_load() {
    let text = refused(
        "approx",
        "[model]\nzoo = \"mnist-cnn\"\n[compile]\napprox_g = 63\n",
    );
    assert!(text.contains("approx_g = 63"), "{text}");
    assert!(
        text.contains("63 is out of range: expected 0..=62"),
        "{text}"
    );
    let e = Experiment::parse("run_dir = \"r\"\n[compile]\napprox_k = -1\n").unwrap_err();
    assert!(e.to_string().contains("approx_k"), "{e}");
}

/// The compile settings of an experiment file reach the program (and the calibration
/// check's comparison limit), on an untrained zoo model.
#[test]
fn compile_settings_reach_the_program() {
    let cfg = Experiment::parse(
        r#"run_dir = "r"
[model]
zoo = "mnist-cnn"
[compile]
truncation = "exact"
drelu = "securenn"
approx_k = 5
approx_g = 40
frac_bits = 14
"#,
    )
    .unwrap();
    let protocol = ProtocolConfig {
        drelu: DreluProtocol::SecureNn,
        approx: ApproxCompare { k: 5, g: 40 },
        truncation: Truncation::HelperExact,
    };
    assert_eq!(cfg.compile.protocol(), protocol);
    let graph = ksnn_graph::ir::zoo::build("mnist-cnn").unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _exec = Executor::new(&vs.root(), &graph).unwrap();
    let params = get_params(&vs).unwrap();
    let opts = LowerOptions {
        fixed_point: cfg.compile.fixed_point(),
        protocol: cfg.compile.protocol(),
    };
    let lowered = lower(&graph, &params, &BlockSpec::default(), &opts).unwrap();
    let program = Program::decode(&lowered.program.encode()).unwrap();
    assert_eq!(program.protocol, protocol);
    assert_eq!(program.fixed_point.frac_bits, 14);
    assert_eq!(check::compare_limit(&program), 2f64.powi(63 - 40 + 5 - 14));
}
