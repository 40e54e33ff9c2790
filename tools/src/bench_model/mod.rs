//! `ksnn-tools bench model`: a zoo model with random parameters, lowered with a chosen block
//! spec and protocol, run by the three `ksnn-party` processes over TLS on loopback; prints
//! time, traffic, rounds, per-layer costs and memory, and checks every secure prediction
//! against the cleartext reference. Needs no dataset, no training and no libtorch.

mod params;
mod spec;
mod summary;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use ksnn_formats::program::{FixedPoint, OutputKind};
use ksnn_formats::{ApproxCompare, DreluProtocol, ProtocolConfig, Report, Truncation, npy};
use ksnn_graph::ir::zoo;
use ksnn_graph::lower::{LowerOptions, Lowered, lower};
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::reference;
use ksnn_runtime::ring::decode;

use crate::synthetic::Rng;
use ksnn_runtime::backend::BackendChoice;

/// Seconds a party waits for a peer: generous, since a big model's layer can keep a peer
/// busy for a long time.
const PARTY_TIMEOUT: u32 = 1800;

/// `bench model`'s options.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Zoo model: mnist-cnn, resnet18-cifar, resnet50, resnet50-avgpool, mobilenetv2,
    /// deeplabv3-resnet50, deeplabv3-mobilenetv2 (random parameters).
    #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
    model: Option<String>,
    /// An ONNX model instead, with its own weights (e.g.
    /// graph/tests/fixtures/onnx/mobilenetv3_small.onnx); its leaky ReLU, PReLU, hard sigmoid
    /// and hard swish layers are budgeted with its ReLUs.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Input size `HxW` instead of the model's default (e.g. 512x683 for an ADE20K image
    /// with short side 512): segmentors take any size, and their DReLUs are counted at it.
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Output classes instead of the model's dataset's.
    #[arg(long)]
    classes: Option<u32>,
    /// Block spec file (JSON, ksnn binary, or the original's pickle).
    #[arg(long, group = "blocks")]
    spec: Option<PathBuf>,
    /// One block size `HxW` for every channel of every ReLU layer (clipped to smaller maps).
    #[arg(long, group = "blocks", value_parser = parse_block)]
    uniform: Option<(u16, u16)>,
    /// Blocks chosen by the knapsack on synthetic distortions, keeping this share of all
    /// ReLUs' DReLUs (e.g. 0.06).
    #[arg(long, group = "blocks")]
    budget: Option<f64>,
    /// Approximate comparison `K,G`: drop K low bits, ignore G high bits (docs/original.md §7.9).
    #[arg(long, value_parser = parse_approx, default_value = "0,0")]
    approx: ApproxCompare,
    /// DReLU protocol: securenn (4 online rounds, 205 B) or fss (1 online round, 16 B;
    /// 2 KB of helper-dealt keys offline).
    #[arg(long, value_enum, default_value = "securenn")]
    drelu: DreluProtocol,
    /// Truncation after products.
    #[arg(long, value_enum, default_value = "local")]
    truncation: Truncation,
    /// Inferences in the session, back to back (one random image each).
    #[arg(long, default_value_t = 1)]
    images: usize,
    /// Inferences whose offline pass runs ahead of their input (`ksnn-party local --ahead`).
    #[arg(long, default_value_t = 0)]
    ahead: usize,
    /// Simulated one-way latency added to every protocol message, in milliseconds
    /// (`ksnn-party local --latency-ms`): each message is held this long after it arrives.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Fractional bits of the fixed point.
    #[arg(long, default_value_t = 12)]
    frac_bits: u8,
    /// Where the parties' linear layers run (`ksnn-party local --backend`): auto, cpu, or
    /// cuda (an error without a CUDA driver).
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Seed for the parameters, the images and the synthetic distortions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the run's report.json here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keep model.ksnn, weights.ksnw, spec.json, the inputs, report.json and the parties'
    /// log in this directory (created) instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// `HxW` → `(H, W)`.
fn parse_block(s: &str) -> Result<(u16, u16), String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}`: give the block as HxW, e.g. 4x4"))?;
    let side = |v: &str| {
        v.trim()
            .parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("`{s}`: sides are integers from 1 to 65535"))
    };
    Ok((side(h)?, side(w)?))
}

/// `HxW` → an input size `(H, W)`.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (h, w) = parse_block(s)?;
    Ok((u32::from(h), u32::from(w)))
}

/// `K,G` → the approximate comparison (each at most 62).
fn parse_approx(s: &str) -> Result<ApproxCompare, String> {
    let (k, g) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give K,G, e.g. 5,48"))?;
    let bits = |v: &str| {
        v.trim()
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= ApproxCompare::MAX_BITS)
            .ok_or_else(|| format!("`{s}`: K and G are 0..={}", ApproxCompare::MAX_BITS))
    };
    Ok(ApproxCompare {
        k: bits(k)?,
        g: bits(g)?,
    })
}

/// The model's graph, random parameters and the chosen spec, lowered; the spec's claimed
/// DReLUs checked against the program's cost model.
fn build(a: &ModelArgs) -> Result<Lowered> {
    let (graph, params, name) = match (&a.model, &a.onnx) {
        (_, Some(path)) => {
            ensure!(
                a.size.is_none() && a.classes.is_none(),
                "--size and --classes apply to zoo models; an ONNX model has its own"
            );
            let file = ksnn_graph::onnx::import(path, &Default::default())
                .with_context(|| format!("importing {}", path.display()))?;
            let name = file.graph.name.clone();
            (file.graph, file.params, name)
        }
        (Some(model), None) => {
            let opts = zoo::ZooOptions {
                classes: a.classes,
                size: a.size,
            };
            let graph = zoo::build_with(model, &opts).with_context(|| {
                if zoo::MODELS.contains(&model.as_str()) {
                    format!(
                        "{model} cannot take input {:?} with {:?} classes (too small for its strides?)",
                        a.size, a.classes
                    )
                } else {
                    format!("unknown model `{model}`: the zoo has {}", zoo::MODELS.join(", "))
                }
            })?;
            let params = params::random(&graph, a.seed);
            (graph, params, model.clone())
        }
        (None, None) => anyhow::bail!("give --model or --onnx"),
    };
    let chosen = match (&a.spec, a.uniform, a.budget) {
        (Some(path), _, _) => spec::file(path)?,
        (_, Some((h, w)), _) => spec::uniform(&graph, h, w)?,
        (_, _, Some(ratio)) => spec::budget(&graph, ratio, a.seed)?,
        _ => spec::Chosen {
            spec: Default::default(),
            drelus: Some(spec::all_relus(&graph)?),
        },
    };
    let opts = LowerOptions {
        fixed_point: FixedPoint {
            frac_bits: a.frac_bits,
            ..FixedPoint::default()
        },
        protocol: ProtocolConfig {
            drelu: a.drelu,
            approx: a.approx,
            truncation: a.truncation,
        },
    };
    let lowered =
        lower(&graph, &params, &chosen.spec, &opts).with_context(|| format!("lowering {name}"))?;
    if let Some(claimed) = chosen.drelus {
        let counted = lowered.program.spec_drelus()?;
        ensure!(
            counted == claimed,
            "the spec was built for {claimed} DReLUs but the program costs {counted}"
        );
    }
    Ok(lowered)
}

pub fn run(a: &ModelArgs) -> Result<()> {
    ensure!(a.images > 0, "--images must be at least 1");
    ensure!(
        (0.0..=10_000.0).contains(&a.latency_ms),
        "--latency-ms is {}; it must be between 0 and 10000 milliseconds",
        a.latency_ms
    );
    let t = Instant::now();
    let Lowered { program, weights } = build(a)?;
    let built = t.elapsed().as_secs_f64();
    let party = crate::party_binary()?;
    let dir = match &a.keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ksnn-bench-model-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (model_path, weights_path) = (dir.join("model.ksnn"), dir.join("weights.ksnw"));
    std::fs::write(&model_path, program.encode())?;
    std::fs::write(&weights_path, weights.encode())?;
    std::fs::write(dir.join("spec.json"), program.block_spec().to_json())?;

    let shape = program.input.shape;
    let mut rng = Rng::new(a.seed ^ 0x1A6E_5EED);
    let mut inputs = Vec::new();
    let mut first = Vec::new();
    for i in 0..a.images {
        let px: Vec<f32> = (0..shape.elements()).map(|_| rng.unit() as f32).collect();
        let path = dir.join(format!("x{i}.npy"));
        let dims = [shape.c, shape.h, shape.w].map(|d| d as usize);
        std::fs::write(&path, npy::encode(&dims, &px))?;
        if i == 0 {
            first = px;
        }
        inputs.push(path);
    }

    let costs = program.costs()?;
    let all: u64 = costs.iter().map(|c| c.drelus).sum();
    println!(
        "{}: {} layers, {} spec DReLUs ({} with pools and clips), {} images; {:?} DReLU, approx {},{}, {:?} truncation, f = {}; one-way latency {} ms; built in {built:.1} s",
        program.name,
        program.layers.len(),
        program.spec_drelus()?,
        all,
        a.images,
        a.drelu,
        a.approx.k,
        a.approx.g,
        a.truncation,
        a.frac_bits,
        a.latency_ms,
    );
    let range = activation_range(&program, &weights, &first)?;
    println!("{range}");

    let report_path = dir.join("report.json");
    let log = dir.join("parties.log");
    let t = Instant::now();
    let status = Command::new(&party)
        .arg("local")
        .arg("--model")
        .arg(&model_path)
        .arg("--weights")
        .arg(&weights_path)
        .arg("--input")
        .args(&inputs)
        .arg("--report")
        .arg(&report_path)
        .arg("--timeout")
        .arg(PARTY_TIMEOUT.to_string())
        .arg("--ahead")
        .arg(a.ahead.to_string())
        .arg("--latency-ms")
        .arg(a.latency_ms.to_string())
        .arg("--backend")
        .arg(a.backend.as_str())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.join("parties.err"))?)
        .status()
        .with_context(|| format!("starting {}", party.display()))?;
    let local_seconds = t.elapsed().as_secs_f64();
    if !status.success() {
        let err = std::fs::read_to_string(dir.join("parties.err")).unwrap_or_default();
        bail!(
            "ksnn-party local failed ({status}); files kept in {}:\n{}",
            dir.display(),
            tail(&err, 20)
        );
    }
    let rep = Report::from_json(&std::fs::read_to_string(&report_path)?)?;
    // Where the server ran its linear layers (each party logs its backend in one line).
    let err = std::fs::read_to_string(dir.join("parties.err")).unwrap_or_default();
    if let Some(line) = err
        .lines()
        .find(|l| l.starts_with("[P1") && l.contains("linear layers on"))
    {
        println!("{line}");
    }
    print!("{}", summary::text(&rep, local_seconds));
    if let Some(out) = &a.report {
        std::fs::write(out, rep.to_json())
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("report written to {}", out.display());
    }
    // Why an honest run can still differ: both approximations move a share by a raw unit or
    // a few, which flips a block whose value is that close to 0; random weights (unlike a
    // trained model) carry such a flip to the argmax.
    let mut hint = String::new();
    if a.truncation == Truncation::LocalShift {
        hint += "; with local truncation each product may be off by one raw unit, which flips a block decision whose value is within a few raw units of 0 (--truncation exact is bit-exact)";
    }
    if a.approx.k > 0 {
        hint += &format!(
            "; with --approx k = {}, each share's local shift may flip a block's decision when its value is within 2^{} raw units of 0 (runtime/src/protocol/drelu/mod.rs)",
            a.approx.k, a.approx.k
        );
    }
    ensure!(
        rep.secure_equals_reference == rep.images && rep.images == a.images as u64,
        "secure predictions differ from the reference on {} of {} images (files in {}){hint}",
        a.images as u64 - rep.secure_equals_reference.min(a.images as u64),
        a.images,
        dir.display()
    );
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The cleartext reference on the first image: the largest activation anywhere and the
/// spread of the logits, to show random parameters keep values in a realistic range
/// (neither growing towards the ring's limits nor collapsing to a constant).
fn activation_range(
    program: &ksnn_formats::Program,
    weights: &ksnn_formats::Weights,
    pixels: &[f32],
) -> Result<String> {
    let model = Model::new(program, Some(weights))?;
    let f = program.fixed_point.frac_bits;
    // Streamed (each tensor dropped after its last reader): a 512×512 segmentor's every
    // activation at once would be gigabytes.
    let (mut peak, mut at) = (0.0f64, 0);
    let outputs = reference::run_visiting(&model, &encode_input(program, pixels), |i, t| {
        let m = t.iter().map(|&v| decode(v, f).abs()).fold(0.0, f64::max);
        if m > peak {
            (peak, at) = (m, i + 1);
        }
    });
    let out = &outputs[0];
    let logits: Vec<f64> = out.iter().map(|&v| decode(v, f)).collect();
    let mean = logits.iter().sum::<f64>() / logits.len().max(1) as f64;
    let std = (logits.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / logits.len().max(1) as f64)
        .sqrt();
    ensure!(
        std > 0.0,
        "the reference's logits are all equal ({mean}): random parameters collapsed the model"
    );
    let mut sorted = logits.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let margin = sorted[0] - sorted.get(1).copied().unwrap_or(sorted[0]);
    Ok(format!(
        "reference on image 0: largest |activation| {peak:.2} (layer {}), logits std {std:.3}, argmax {} ahead by {margin:.4}",
        program.layers[at - 1].name,
        reference::predict_ring(OutputKind::Logits, model.shapes[0], out)[0]
    ))
}
