//! ONNX import against committed fixtures (made once by `tools/onnx_fixtures.py`, expected
//! outputs computed by onnxruntime): every supported case imports and the tch forward of the
//! imported graph matches; every unsupported case fails with the precise message.

use std::path::{Path, PathBuf};

use ksnn_compiler::onnx::{self, ImportOptions};
use ksnn_compiler::torch::executor::{Executor, set_params};
use ksnn_formats::npy;
use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

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

fn load_npy(path: &Path) -> npy::Npy {
    npy::decode(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Imports `name.onnx` and runs it on `name.in.npy`; returns (max |error|, max |expected|).
fn run_case(name: &str) -> Result<(f32, f32), String> {
    let file = onnx::import(
        &dir().join(format!("{name}.onnx")),
        &ImportOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let vs = nn::VarStore::new(Device::Cpu);
    let exec = Executor::new(&vs.root(), &file.graph).map_err(|e| e.to_string())?;
    set_params(&vs, &file.params).map_err(|e| e.to_string())?;
    let input = load_npy(&dir().join(format!("{name}.in.npy")));
    let expected = load_npy(&dir().join(format!("{name}.out.npy")));
    let dims: Vec<i64> = input.dims.iter().map(|&d| d as i64).collect();
    let x = Tensor::from_slice(&input.data).view(dims.as_slice());
    let y = tch::no_grad(|| exec.forward(&x, false)).to_kind(Kind::Float);
    let want: Vec<i64> = expected.dims.iter().map(|&d| d as i64).collect();
    let got_elems: i64 = y.size().iter().product();
    if got_elems != want.iter().product::<i64>() {
        return Err(format!("output shape {:?}, expected {want:?}", y.size()));
    }
    let got: Vec<f32> = y
        .flatten(0, -1)
        .try_into()
        .map_err(|e: tch::TchError| e.to_string())?;
    let err = got
        .iter()
        .zip(&expected.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = expected.data.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    Ok((err, scale))
}

#[test]
fn every_fixture_imports_and_matches_onnxruntime() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in manifest() {
        let name = case["name"].as_str().expect("name");
        match &case["expect"] {
            Value::String(s) if s == "ok" => match run_case(name) {
                Ok((err, scale)) if err <= 1e-4 => {
                    checked += 1;
                    println!("{name:32} ok   max |err| {err:.1e} (outputs up to {scale:.2})");
                }
                Ok((err, _)) => failures.push(format!("{name}: max |err| {err:e} > 1e-4")),
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
/// today (imported with `--strip-softmax`; weights are ConstantOfShape fills).
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
            Ok(g) => {
                // The imported graph also builds as a tch module with the file's weights.
                let vs = nn::VarStore::new(Device::Cpu);
                Executor::new(&vs.root(), &g.graph).unwrap();
                set_params(&vs, &g.params).unwrap();
                format!(
                    "imports: {} parameters, {} ReLU layers",
                    g.graph.parameters(),
                    g.graph.relu_layers().len()
                )
            }
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
    assert_eq!(committed, table, "update compiler/README.md with:\n{table}");
}
