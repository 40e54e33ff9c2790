//! ONNX import against committed fixtures (made once by `tools/onnx_fixtures.py`): every
//! supported case imports and every unsupported case fails with the precise message. That the
//! imported graphs compute what onnxruntime computed needs tch: `compiler/tests/onnx.rs`.

use std::path::{Path, PathBuf};

use ksnn_graph::onnx::{self, ImportOptions};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest.json");
    serde_json::from_str::<Value>(&text)
        .expect("valid JSON")
        .as_array()
        .expect("a list")
        .clone()
}

#[test]
fn every_fixture_imports_or_is_refused_with_its_message() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in manifest() {
        let name = case["name"].as_str().expect("name");
        match &case["expect"] {
            Value::String(s) if s == "ok" => match onnx::import(
                &dir().join(format!("{name}.onnx")),
                &ImportOptions::default(),
            ) {
                Ok(_) => {
                    checked += 1;
                    println!("{name:32} imports");
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            },
            Value::Object(o) => {
                let want = o["error"].as_str().expect("error text");
                let got = onnx::import(
                    &dir().join(format!("{name}.onnx")),
                    &ImportOptions::default(),
                );
                match got {
                    Err(e) if e.to_string().contains(want) => {
                        checked += 1;
                        println!("{name:32} refused: {e}");
                    }
                    Err(e) => failures.push(format!("{name}: error `{e}`, expected `{want}`")),
                    Ok(_) => failures.push(format!("{name}: imported, expected `{want}`")),
                }
            }
            other => panic!("{name}: bad expect {other}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} cases");
}

fn import_err(path: &Path) -> String {
    match onnx::import(path, &ImportOptions::default()) {
        Ok(_) => panic!("{} imported", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let tmp = tempdir("bad");
    let garbage = tmp.join("garbage.onnx");
    std::fs::write(&garbage, b"\xff\xfe not protobuf at all \x00\x01").unwrap();
    assert!(
        import_err(&garbage).contains("not an ONNX model"),
        "{}",
        import_err(&garbage)
    );

    let bytes = std::fs::read(dir().join("mnist_legacy.onnx")).unwrap();
    let cut = tmp.join("truncated.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = import_err(&cut);
    assert!(
        e.contains("not an ONNX model") || e.contains("holds"),
        "{e}"
    );

    let missing = tmp.join("missing.onnx");
    assert!(import_err(&missing).contains("cannot read"));

    // The dynamo export without its external data file.
    let lone = tmp.join("mnist_dynamo.onnx");
    std::fs::copy(dir().join("mnist_dynamo.onnx"), &lone).unwrap();
    let e = import_err(&lone);
    assert!(
        e.contains("external data file") && e.contains("mnist_dynamo.onnx.data"),
        "{e}"
    );

    // A data file that is too short.
    let data = std::fs::read(dir().join("mnist_dynamo.onnx.data")).unwrap();
    std::fs::write(
        tmp.join("mnist_dynamo.onnx.data"),
        &data[..data.len() - 100],
    )
    .unwrap();
    let e = import_err(&lone);
    assert!(e.contains("has") && e.contains("bytes"), "{e}");
}

#[test]
fn external_data_must_stay_inside_the_model_folder() {
    use onnx_protobuf::{Message, ModelProto};
    let tmp = tempdir("escape");
    let mut m =
        ModelProto::parse_from_bytes(&std::fs::read(dir().join("mnist_dynamo.onnx")).unwrap())
            .unwrap();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| !t.external_data.is_empty())
        .expect("an external tensor");
    for e in &mut t.external_data {
        if e.key == "location" {
            e.value = "../../etc/passwd".into();
        }
    }
    let path = tmp.join("escape.onnx");
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
    let e = import_err(&path);
    assert!(e.contains("relative path inside the model's folder"), "{e}");
}

#[test]
fn a_final_softmax_is_dropped_only_on_request() {
    let path = dir().join("err_softmax_end.onnx");
    let e = import_err(&path);
    assert!(e.contains("--strip-softmax"), "{e}");
    let opts = ImportOptions {
        strip_softmax: true,
        ..Default::default()
    };
    let f = onnx::import(&path, &opts).expect("imports without the softmax");
    assert!(f.graph.nodes.iter().all(|n| !n.name.contains("softmax")));
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ksnn-onnx-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The README's table of the onnx wheel's `light_*` architectures is what the importer does
/// today (imported with `--strip-softmax`; weights are ConstantOfShape fills). That the
/// imported ones build as tch modules is `compiler/tests/onnx.rs`.
#[test]
fn light_models_table_is_current() {
    let light = dir().join("light");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&light)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    assert!(files.len() >= 9);
    let opts = ImportOptions {
        strip_softmax: true,
        ..Default::default()
    };
    let mut table = String::from("| model | result |\n|---|---|\n");
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let result = match onnx::import(f, &opts) {
            Ok(g) => format!(
                "imports: {} parameters, {} ReLU layers",
                g.graph.parameters(),
                g.graph.relu_layers().len()
            ),
            Err(e) => format!("refused: {e}"),
        };
        table.push_str(&format!("| `{name}` | {result} |\n"));
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let begin = "<!-- light-models:begin -->\n";
    let end = "<!-- light-models:end -->";
    let committed = readme
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(t, _)| t)
        .unwrap_or("");
    assert_eq!(committed, table, "update graph/README.md with:\n{table}");
}
