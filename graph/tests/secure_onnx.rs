//! Imported ONNX fixtures lowered to programs and run by the three parties in one process:
//! the secure outputs equal the cleartext fixed-point reference bit for bit (helper-exact
//! truncation) and onnxruntime's outputs within the fixed-point error. The error budget is
//! documented in `docs/design.md` §4.15: at f = 16 fractional bits, rounding a constant to
//! 2^-16 costs up to 2^-17·|x|, the input's rounding and each truncation a unit (2^-16);
//! these one-layer cases (|x| up to about 14) measure 1e-5 to 8e-5, bound 2e-4.

use std::path::{Path, PathBuf};

use ksnn_formats::program::{FixedPoint, ProtocolConfig};
use ksnn_formats::{BlockSpec, Truncation, npy};
use ksnn_graph::lower::{LowerOptions, lower};
use ksnn_graph::onnx::{self, ImportOptions};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::reference;
use ksnn_runtime::ring::{decode, encode};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

const F: u8 = 16;

/// Max |secure − onnxruntime| over both images of fixture `name`.
fn secure_error(name: &str) -> f64 {
    let file = onnx::import(
        &dir().join(format!("{name}.onnx")),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let opts = LowerOptions {
        fixed_point: FixedPoint {
            ring_bits: 64,
            frac_bits: F,
        },
        protocol: ProtocolConfig {
            truncation: Truncation::HelperExact,
            ..ProtocolConfig::default()
        },
    };
    let lowered = lower(&file.graph, &file.params, &BlockSpec::default(), &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (program, weights) = (lowered.program, lowered.weights);
    let read = |what: &str| {
        let path = dir().join(format!("{name}.{what}.npy"));
        npy::decode(&std::fs::read(&path).unwrap()).unwrap()
    };
    let (input, expected) = (read("in"), read("out"));
    let per = program.input.shape.elements() as usize;
    let images: Vec<Vec<u64>> = input
        .data
        .chunks(per)
        .map(|x| x.iter().map(|&v| encode(f64::from(v), F)).collect())
        .collect();
    let model = Model::new(&program, Some(&weights)).unwrap();
    let runs = run_three(
        &program,
        &weights,
        &images,
        Keys::random_triple(),
        &LocalOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let out_per = expected.data.len() / images.len();
    let mut worst = 0.0f64;
    for (k, x) in images.iter().enumerate() {
        let secure = &runs[0].inferences[k].outputs[0];
        assert_eq!(
            secure,
            &reference::run(&model, x)[0],
            "{name}: image {k}: secure ≠ reference"
        );
        for (s, &want) in secure.iter().zip(&expected.data[k * out_per..]) {
            worst = worst.max((decode(*s, F) - f64::from(want)).abs());
        }
    }
    worst
}

/// Max |onnxruntime's output| of fixture `name`.
fn expected_scale(name: &str) -> f64 {
    let path = dir().join(format!("{name}.out.npy"));
    let out = npy::decode(&std::fs::read(&path).unwrap()).unwrap();
    out.data.iter().fold(0.0, |m, &v| m.max(f64::from(v).abs()))
}

#[test]
fn activations_match_onnxruntime_through_three_parties() {
    let cases = [
        "leakyrelu6_default",
        "leakyrelu16_alpha",
        "prelu9_channel",
        "prelu16_shared",
        "prelu16_vector",
        "hardsigmoid6_default",
        "hardsigmoid6_torch",
        "hardswish14",
        "hardswish17",
        "clip11_relu6",
    ];
    for name in cases {
        let err = secure_error(name);
        println!("{name:24} max |secure - onnxruntime| {err:.2e}");
        assert!(err <= 2e-4, "{name}: max error {err:e}");
    }
}

/// Products of computed tensors and whole architectures: torchvision's MobileNetV3-small
/// (hard swish, squeeze-and-excitation gates of hard sigmoid × map, ReLU; int8-stored
/// weights) and a LeakyReLU/PReLU CNN. Here the error grows with the values: a product's
/// error is |x|·e_y + |y|·e_x (`mul_two_tensors` squares values up to 7, outputs up to 44), a
/// weight rounded to 2^-16 is off by up to 2^-17 times its input, summed over the fan-in (the
/// LeakyReLU/PReLU net's folded batch norms give weights and inputs of several units). With
/// helper-exact truncation secure = reference bit for bit, so the error is deterministic; the
/// bounds are about 3× the measured errors (`docs/design.md` §4.16).
#[test]
fn products_and_whole_models_match_onnxruntime_through_three_parties() {
    let cases = [
        ("mul_two_tensors", 3e-3),
        ("mul_gate", 3e-4),
        ("leaky_prelu_net", 1e-3),
        ("mobilenetv3_small", 2e-4),
    ];
    let mut failed = Vec::new();
    for (name, bound) in cases {
        let err = secure_error(name);
        let scale = expected_scale(name);
        println!(
            "{name:24} max |secure - onnxruntime| {err:.2e}, max |output| {scale:.3}, bound {bound:.0e}"
        );
        if err > bound {
            failed.push(format!("{name}: max error {err:e} > {bound:e}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
