//! Runs a program with all three parties in this process (threads over the in-memory
//! network), checks every result against the cleartext reference, prints the per-layer
//! traffic table and writes `report.json`.
//!
//! `cargo run --release -p ksnn-runtime --example three_party -- [DIR] [N]` — DIR holds
//! `model.ksnn` and `weights.ksnw` (default: the built-in example CNN), N inputs (default 4).

use anyhow::{Context, Result};
use ksnn_formats::example::{SplitMix, tiny_cnn};
use ksnn_formats::report::Accuracy;
use ksnn_formats::{Program, Weights};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::exec::report;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::reference;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next();
    let n: usize = args
        .next()
        .map_or(Ok(4), |s| s.parse())
        .context("N must be a number")?;
    let (program, weights) = match &dir {
        Some(d) => {
            let d = std::path::Path::new(d);
            let p = Program::decode(&std::fs::read(d.join("model.ksnn"))?).context("model.ksnn")?;
            let w =
                Weights::decode(&std::fs::read(d.join("weights.ksnw"))?).context("weights.ksnw")?;
            (p, w)
        }
        None => tiny_cnn(1),
    };
    let model = Model::new(&program, Some(&weights))?;
    let mut rng = SplitMix(42);
    let inputs: Vec<Vec<u64>> = (0..n)
        .map(|_| {
            let px: Vec<f32> = (0..program.input.shape.elements())
                .map(|_| (rng.next_u64() % 256) as f32 / 255.0)
                .collect();
            encode_input(&program, &px)
        })
        .collect();
    let runs = run_three(
        &program,
        &weights,
        &inputs,
        Keys::random_triple(),
        &LocalOptions::default(),
    )?;
    let mut equal = 0;
    let mut max_err = 0i64;
    let output = &program.outputs[0];
    let shape = model.shapes[output.tensor as usize];
    let predict = |v: &[u64]| reference::predict_ring(output.kind, shape, v);
    for (x, inf) in inputs.iter().zip(&runs[0].inferences) {
        let expect = reference::run(&model, x);
        if predict(&expect[0]) == predict(&inf.outputs[0]) {
            equal += 1;
        }
        for (a, b) in expect[0].iter().zip(&inf.outputs[0]) {
            max_err = max_err.max((a.wrapping_sub(*b) as i64).abs());
        }
    }
    let records = runs.each_ref().map(|r| r.records());
    let setup = runs
        .iter()
        .map(|r| {
            r.setup
                .sent_in(ksnn_runtime::net::counting::Phase::Setup)
                .bytes
        })
        .sum();
    let rep = report::build(
        &model,
        [&records[0], &records[1], &records[2]],
        setup,
        Accuracy::default(),
        equal,
    );
    print!("{}", rep.to_table());
    println!(
        "largest logit difference from the reference: {max_err} LSB ({} fractional bits)",
        program.fixed_point.frac_bits
    );
    std::fs::write("report.json", rep.to_json())?;
    println!("wrote report.json");
    Ok(())
}
