//! Golden run of `ksnn pipeline` on a reduced MNIST experiment: import/train → distortion →
//! knapsack → fine-tune → compile → three `ksnn-party` processes over TLS; the report's
//! fields hold together, the secure run agrees with the reference, the stages are cached.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ksnn_formats::{Program, Report};

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
    for stage in [
        "== import",
        "== train",
        "== distortion",
        "== knapsack",
        "== finetune",
        "== compile",
        "== secure",
    ] {
        assert!(text.contains(stage), "{stage} missing:\n{text}");
    }
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
