//! ONNX import against the fixtures in `graph/tests/fixtures/onnx` (made once by
//! `tools/onnx_fixtures.py`, expected outputs computed by onnxruntime): the tch forward of every
//! supported case matches, and the importable `light_*` models build as tch modules. Import
//! and refusal without tch: `graph/tests/onnx.rs`.

use std::path::{Path, PathBuf};

use ksnn_compiler::torch::executor::{Executor, set_params};
use ksnn_formats::npy;
use ksnn_graph::onnx::{self, ImportOptions};
use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../graph/tests/fixtures/onnx")
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
fn every_supported_fixture_matches_onnxruntime() {
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
            Value::Object(_) => {}
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

/// Every `light_*` architecture that imports (the table in `graph/README.md`) also builds as a
/// tch module with the file's weights.
#[test]
fn light_models_build_as_tch_modules() {
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
    for f in &files {
        if let Ok(g) = onnx::import(f, &opts) {
            let vs = nn::VarStore::new(Device::Cpu);
            Executor::new(&vs.root(), &g.graph).unwrap();
            set_params(&vs, &g.params).unwrap();
        }
    }
}
