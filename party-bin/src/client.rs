//! `ksnn-party infer`: the client. Connects to the server and the helper, opens a session,
//! runs one inference per input, prints each answer and writes `report.json` (and the
//! outputs as NPY on request).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ksnn_formats::OutputKind;
use ksnn_formats::report::Accuracy;
use ksnn_runtime::exec::engine::{Engine, Record};
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::exec::{report, session};
use ksnn_runtime::memory::{self, Process};
use ksnn_runtime::net::counting::{CountingTransport, Phase};
use ksnn_runtime::net::tcp::Node;
use ksnn_runtime::reference;
use ksnn_runtime::ring::decode;
use ksnn_runtime::role::Role;

use crate::config::{Config, resolve};
use crate::input::{Sample, write_npy};
use crate::setup::{load_party, node_config};

/// Whether a failed connect may succeed if tried again: the peer was not listening yet, or
/// closed the connection before its greeting (a busy daemon turns new connections away
/// under a flood). Refusals with a reason and TLS errors are final.
fn transient(e: &ksnn_runtime::net::NetError) -> bool {
    use ksnn_runtime::net::NetError;
    match e {
        NetError::Io { .. } | NetError::Disconnected { .. } => true,
        NetError::ConnectFailed { reason, .. } => !reason.starts_with("TLS error"),
        _ => false,
    }
}

/// Connects, retrying while the peer may still be starting or is turning connections away
/// (up to the timeout).
fn connect(node: &Node, role: Role, addr: &str, timeout: Duration) -> Result<()> {
    let at = resolve(&format!("{role}"), addr)?;
    let started = Instant::now();
    loop {
        match node.connect(role, at) {
            Ok(()) => return Ok(()),
            Err(e) if transient(&e) && started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {role} at {addr}")),
        }
    }
}

pub fn infer(
    cfg: Config,
    samples: Vec<Sample>,
    out: Option<&Path>,
    report_path: &Path,
) -> Result<()> {
    if samples.is_empty() {
        bail!("no inputs: give --input FILE… or --dataset mnist --n N");
    }
    let (program, _) = load_party(&cfg)?;
    let model = Model::new(&program, None)?;
    let node = Node::start(node_config(&cfg, &program)?).context("starting the network")?;
    connect(
        &node,
        Role::Server,
        cfg.server.as_deref().expect("checked"),
        cfg.timeout,
    )?;
    connect(
        &node,
        Role::Helper,
        cfg.helper.as_deref().expect("checked"),
        cfg.timeout,
    )?;
    let s = node.open_session().context("opening a session")?;
    let id = ksnn_runtime::net::tcp::short_id(s.id);
    let (keys, transport) = s
        .establish()
        .with_context(|| format!("agreeing on fresh keys for session {id}"))?;
    eprintln!("[P0 (client)] session {id} open with P1 and P2");
    let mut engine = Engine::new(&model, keys);
    let mut net = CountingTransport::new(transport);
    let f = program.fixed_point.frac_bits;
    let inputs: Vec<Vec<u64>> = samples
        .iter()
        .map(|x| encode_input(&program, &x.pixels))
        .collect();
    let mut records: [Vec<Record>; 3] = Default::default();
    let mut rows = Vec::new();
    let (mut correct, mut labelled) = (0u64, 0u64);
    let started = Instant::now();
    let ahead = cfg.ahead;
    let output = &program.outputs[0];
    let shape = model.shapes[output.tensor as usize];
    let result = session::run_client(&mut engine, &mut net, inputs.into_iter(), ahead, |id, r| {
        let sample = &samples[id as usize];
        let values = &r.inference.outputs[0];
        let labels = reference::predict_ring(output.kind, shape, values);
        match output.kind {
            OutputKind::Logits => {
                let label = labels[0] as usize;
                let truth = sample
                    .label
                    .map(|l| format!(" (label {l})"))
                    .unwrap_or_default();
                println!("{}: {label}{truth}", sample.name);
                if let Some(l) = sample.label {
                    labelled += 1;
                    correct += u64::from(label == l as usize);
                }
                rows.push(values.iter().map(|&v| decode(v, f) as f32).collect());
            }
            OutputKind::SegmentationLogits => {
                let path = report_path.with_file_name(format!("seg-{id}.png"));
                write_segmentation(&path, &labels, shape).map_err(|e| {
                    ksnn_runtime::exec::engine::ExecError::Output {
                        what: format!("{}: {e:#}", path.display()),
                    }
                })?;
                println!("{}: segmentation map in {}", sample.name, path.display());
                rows.push(labels.iter().map(|&k| k as f32).collect());
            }
        }
        records[0].push(r.inference.record);
        let [p1, p2] = r.daemons;
        records[1].push(p1);
        records[2].push(p2);
        Ok(())
    });
    let setup = match result {
        Ok(s) => s,
        Err(e) => {
            session::abort(&mut net, &session::abort_reason(&e));
            return Err(e.into());
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    // Make sure the daemons get our `Close` before the process ends.
    drop(net);
    node.shutdown();
    let accuracy = Accuracy {
        plain: -1.0,
        secure: if labelled > 0 {
            correct as f64 / labelled as f64
        } else {
            -1.0
        },
    };
    // Everything sent at set-up, by any party: P0's own, and the daemons' from their first
    // record (the masked weights go from P1 to P2, past the client).
    let setup_bytes = setup.sent_in(Phase::Setup).bytes
        + records[1..]
            .iter()
            .filter_map(|r| r.first())
            .map(|r| r.stats.sent_in(Phase::Setup).bytes)
            .sum::<u64>();
    let mut rep = report::build(
        &model,
        [&records[0], &records[1], &records[2]],
        setup_bytes,
        accuracy,
        0,
    );
    rep.wall_seconds = seconds;
    // The daemons serve other clients too: only `ksnn-party local`, which owns them, adds theirs.
    rep.peak_rss.p0 = memory::peak_rss(Process::This);
    std::fs::write(report_path, rep.to_json())
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    if let Some(path) = out {
        write_npy(path, &rows)?;
    }
    if labelled > 0 {
        println!(
            "accuracy {correct}/{labelled} = {:.2}%",
            100.0 * correct as f64 / labelled as f64
        );
    }
    let p = &rep.per_inference;
    println!(
        "{} inferences in {seconds:.2} s: {:.3} s, {:.2} MB ({:.2} offline + {:.2} online) and {} rounds each; report in {}",
        samples.len(),
        p.seconds.total,
        p.bytes.total as f64 / 1e6,
        p.phase_bytes.offline as f64 / 1e6,
        p.phase_bytes.online as f64 / 1e6,
        p.rounds,
        report_path.display()
    );
    Ok(())
}

/// Writes the per-pixel argmax of `classes×H×W` logits as an 8-bit grey PNG of class ids.
/// Writes a label map (class per pixel, `shape`'s H×W) as an indexed PNG.
fn write_segmentation(path: &Path, labels: &[u32], shape: ksnn_formats::Shape) -> Result<()> {
    let ids: Vec<u8> = labels.iter().map(|&k| k.min(255) as u8).collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), shape.w, shape.h);
    // Indexed: the pixel values are the class ids (the datasets' mask format), and the
    // palette shows them in colour.
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(palette());
    enc.write_header()?.write_image_data(&ids)?;
    Ok(())
}

/// The Pascal VOC colour map, used by ADE20K tools too: class k's RGB spreads k's bits
/// over the three channels from the top bit down, so neighbouring ids get distant colours.
fn palette() -> Vec<u8> {
    (0..256u32)
        .flat_map(|k| {
            let mut rgb = [0u8; 3];
            for bit in 0..8 {
                for (c, v) in rgb.iter_mut().enumerate() {
                    *v |= (((k >> (3 * bit + c)) & 1) << (7 - bit)) as u8;
                }
            }
            rgb
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_maps_are_per_pixel_argmax() {
        // Two classes on a 1x3 map: class 1 wins at pixels 0 and 2.
        let logits: Vec<u64> = [1i64, 5, -2, 3, 2, 7].iter().map(|&v| v as u64).collect();
        let shape = ksnn_formats::Shape::new(2, 1, 3);
        let labels = reference::predict_ring(OutputKind::SegmentationLogits, shape, &logits);
        let path = std::env::temp_dir().join(format!("ksnn-seg-{}.png", std::process::id()));
        write_segmentation(&path, &labels, shape).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut r = dec.read_info().unwrap();
        // Class ids as palette indices; VOC's colours (class 1 dark red, 2 dark green).
        let pal = r.info().palette.clone().expect("an indexed PNG");
        assert_eq!(&pal[..9], &[0, 0, 0, 128, 0, 0, 0, 128, 0]);
        assert_eq!(pal.len(), 256 * 3);
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        r.next_frame(&mut buf).unwrap();
        assert_eq!(&buf[..3], &[1, 0, 1]);
    }
}
