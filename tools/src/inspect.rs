//! `ksnn-tools inspect`: recognise a ksnn file by its contents and print it for people.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ksnn_formats::envelope::Magic;
use ksnn_formats::{BlockKind, BlockSpec, Op, Program, Report, Weights};

pub fn run(file: &Path, program: Option<&Path>) -> Result<()> {
    let bytes = read(file)?;
    let program = program
        .map(|p| -> Result<Program> {
            Program::decode(&read(p)?).with_context(|| format!("{}", p.display()))
        })
        .transpose()?;
    let text = match Magic::sniff(&bytes) {
        Some(Magic::Program) => {
            let p = Program::decode(&bytes).with_context(|| format!("{}", file.display()))?;
            program_text(&p)?
        }
        Some(Magic::Weights) => {
            let w = Weights::decode(&bytes).with_context(|| format!("{}", file.display()))?;
            if let Some(p) = &program {
                w.check_against(p).with_context(|| {
                    format!("{} does not belong to the program", file.display())
                })?;
            }
            weights_text(&w, program.is_some())
        }
        Some(Magic::Spec) => {
            let s = BlockSpec::decode(&bytes).with_context(|| format!("{}", file.display()))?;
            spec_text(&s, program)?
        }
        Some(Magic::Graph) => bail!(
            "{} is a compiler graph (model.ksnn-graph); `ksnn info {}` describes it",
            file.display(),
            file.display()
        ),
        None => json_text(file, &bytes, program)?,
    };
    print!("{text}");
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn json_text(file: &Path, bytes: &[u8], program: Option<Program>) -> Result<String> {
    let looks_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    let Ok(text) = std::str::from_utf8(bytes) else {
        bail!(not_ksnn(file, bytes));
    };
    if !looks_json {
        bail!(not_ksnn(file, bytes));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{}: invalid JSON", file.display()))?;
    if value.get("per_inference").is_some() {
        let r = Report::from_json(text).with_context(|| format!("{}", file.display()))?;
        return Ok(r.to_table());
    }
    let spec = BlockSpec::from_json(text).with_context(|| format!("{}", file.display()))?;
    spec_text(&spec, program)
}

fn not_ksnn(file: &Path, bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}: not a ksnn program, weight file, block spec or report (it starts with {})",
        file.display(),
        if head.is_empty() {
            "nothing: the file is empty".to_string()
        } else {
            head.join(" ")
        }
    )
}

fn program_text(p: &Program) -> Result<String> {
    let shapes = p.validate()?;
    let costs = p.costs()?;
    let mut s = String::new();
    writeln!(s, "program     {}", p.name)?;
    writeln!(s, "hash        {}", p.content_hash())?;
    writeln!(s, "weights     {} (content hash expected)", p.weights_hash)?;
    writeln!(
        s,
        "ring        Z_2^{}, {} fractional bits",
        p.fixed_point.ring_bits, p.fixed_point.frac_bits
    )?;
    writeln!(
        s,
        "input       {}  mean {:?}  std {:?}",
        p.input.shape, p.input.mean, p.input.std
    )?;
    let a = p.protocol.approx;
    writeln!(
        s,
        "protocol    DReLU {:?}, {}, truncation {:?}",
        p.protocol.drelu,
        if a.k == 0 && a.g == 0 {
            "exact comparison".to_string()
        } else {
            format!(
                "approximate comparison (k={}, g={}: {} bits)",
                a.k,
                a.g,
                a.compared_bits()
            )
        },
        p.protocol.truncation
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "{:>4}  {:<20} {:<16} {:<10} {:<12} {:>10}  params",
        "#", "layer", "op", "inputs", "output", "DReLUs"
    )?;
    for (layer, cost) in p.layers.iter().zip(&costs) {
        let inputs: Vec<String> = layer.inputs.iter().map(|i| format!("t{i}")).collect();
        writeln!(
            s,
            "{:>4}  {:<20} {:<16} {:<10} {:<12} {:>10}  {}",
            cost.index,
            layer.name,
            layer.op.kind(),
            inputs.join(","),
            cost.shape.to_string(),
            cost.drelus,
            layer.op.summary()
        )?;
    }
    let total: u64 = costs.iter().map(|c| c.drelus).sum();
    let spec = p.spec_drelus()?;
    let full: u64 = p
        .layers
        .iter()
        .filter(|l| l.op.blocks().is_some())
        .map(|l| l.op.decisions_per_block() * shapes[l.inputs[0] as usize].elements())
        .sum();
    writeln!(s)?;
    writeln!(
        s,
        "DReLUs      {total} per inference: {spec} in budgeted activation layers ({:.2}% of the {full} per-element activations would need), {} in pooling and clipping",
        if full > 0 {
            100.0 * spec as f64 / full as f64
        } else {
            0.0
        },
        total - spec
    )?;
    for o in &p.outputs {
        writeln!(
            s,
            "output      t{} {:?} {}",
            o.tensor, o.kind, shapes[o.tensor as usize]
        )?;
    }
    Ok(s)
}

fn weights_text(w: &Weights, checked: bool) -> String {
    let mut s = String::new();
    let scale = f64::from(1u32 << w.content.frac_bits);
    let _ = writeln!(s, "weight file for program {}", w.program_hash);
    let _ = writeln!(s, "content hash {}", w.content_hash());
    let _ = writeln!(s, "fixed point  {} fractional bits", w.content.frac_bits);
    if checked {
        let _ = writeln!(s, "matches the given program");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<28} {:<18} {:>10} {:>12} {:>12}",
        "tensor", "shape", "elements", "min", "max"
    );
    let mut total = 0usize;
    for t in &w.content.tensors {
        let min = t.data.iter().min().map_or(0.0, |&v| v as f64 / scale);
        let max = t.data.iter().max().map_or(0.0, |&v| v as f64 / scale);
        let shape: Vec<String> = t.shape.iter().map(u32::to_string).collect();
        total += t.data.len();
        let _ = writeln!(
            s,
            "{:<28} {:<18} {:>10} {:>12.5} {:>12.5}",
            t.key(),
            shape.join("x"),
            t.data.len(),
            min,
            max
        );
    }
    let _ = writeln!(
        s,
        "\n{} tensors, {total} parameters",
        w.content.tensors.len()
    );
    s
}

fn spec_text(spec: &BlockSpec, program: Option<Program>) -> Result<String> {
    let mut s = String::new();
    let costed = match program {
        Some(mut p) => {
            p.apply_spec(spec)?;
            Some(p)
        }
        None => None,
    };
    writeln!(
        s,
        "block spec: {} layers, {} channels",
        spec.layers.len(),
        spec.channels()
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "{:<24} {:>8} {:>8} {:>8} {:>10}  most used blocks",
        "layer", "channels", "identity", "zero", "DReLUs"
    )?;
    let mut total = 0;
    for (name, blocks) in &spec.layers {
        let identity = blocks
            .iter()
            .filter(|b| b.kind() == BlockKind::Identity)
            .count();
        let zero = blocks
            .iter()
            .filter(|b| b.kind() == BlockKind::Zero)
            .count();
        let drelus = match &costed {
            Some(p) => {
                let i = p
                    .layers
                    .iter()
                    .position(|l| &l.name == name)
                    .expect("applied");
                let d = p.costs()?[i].drelus;
                total += d;
                d.to_string()
            }
            None => "-".into(),
        };
        let summary = Op::BlockRelu(ksnn_formats::layer::BlockRelu {
            blocks: blocks.clone(),
        })
        .summary();
        writeln!(
            s,
            "{name:<24} {:>8} {identity:>8} {zero:>8} {drelus:>10}  {summary}",
            blocks.len()
        )?;
    }
    if costed.is_some() {
        writeln!(s, "\n{total} DReLUs per inference on the program's shapes")?;
    } else {
        writeln!(
            s,
            "\n(pass --program model.ksnn to count DReLUs on the real activation shapes)"
        )?;
    }
    Ok(s)
}
