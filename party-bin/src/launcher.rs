//! `ksnn-party local`: the three parties as separate processes on 127.0.0.1, with fresh
//! certificates, for one run; then the daemons are torn down. With the weights at hand it
//! also checks every secure prediction against the cleartext fixed-point reference and
//! completes the report.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use ksnn_formats::{OutputKind, Report};
use ksnn_runtime::backend::BackendChoice;
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::memory::{self, Process};
use ksnn_runtime::net::tls;
use ksnn_runtime::reference;
use ksnn_runtime::ring::decode;
use ksnn_runtime::role::Role;

use crate::input::{Sample, decode_npy};
use crate::setup::load_files;

/// Kills the daemons however the run ends.
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(exe: &Path, config: &Path) -> Result<(Child, String)> {
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("listening ") else {
        let _ = child.kill();
        bail!(
            "the daemon for {} did not start (see its messages above)",
            config.display()
        );
    };
    Ok((child, addr.to_string()))
}

#[allow(clippy::too_many_arguments)]
/// The parties' settings `local` takes from its command line.
pub struct Knobs {
    /// Seconds a party waits for a peer.
    pub timeout: f64,
    /// The client's offline ahead.
    pub ahead: usize,
    /// Simulated one-way latency per protocol message, in milliseconds (every party).
    pub latency_ms: f64,
    /// Every party's `backend`.
    pub backend: BackendChoice,
}

pub fn local(
    model: &Path,
    weights: &Path,
    samples: &[Sample],
    client_args: &[String],
    out: Option<&Path>,
    report: &Path,
    Knobs {
        timeout,
        ahead,
        latency_ms,
        backend,
    }: Knobs,
) -> Result<()> {
    // Check the files before starting anything (`main` checked the settings).
    let (program, w) = load_files(model, Some(weights))?;
    let w = w.context("the weights did not load")?;

    let dir = std::env::temp_dir().join(format!("ksnn-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    tls::generate(&dir.join("certs"))?;
    let abs = |p: &Path| -> Result<PathBuf> {
        std::path::absolute(p).with_context(|| format!("{}", p.display()))
    };
    let (model, weights) = (abs(model)?, abs(weights)?);
    let common = |role: Role| {
        let (name, file) = (format!("{role:?}").to_lowercase(), tls::role_file(role));
        format!(
            "role = \"{name}\"\nmodel = {:?}\nca = \"certs/ca.pem\"\ncert = \"certs/{file}.pem\"\nkey = \"certs/{file}.key\"\ntimeout_seconds = {timeout}\nlatency_ms = {latency_ms:?}\nbackend = \"{}\"\n",
            model.display().to_string(),
            backend.as_str()
        )
    };
    let write = |name: &str, text: String| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let exe = std::env::current_exe()?;
    let p1 = write(
        "p1.toml",
        common(Role::Server)
            + &format!(
                "weights = {:?}\nlisten = \"127.0.0.1:0\"\n",
                weights.display().to_string()
            ),
    )?;
    let (c1, a1) = start(&exe, &p1)?;
    let mut daemons = Daemons(vec![c1]);
    let p2 = write(
        "p2.toml",
        common(Role::Helper) + &format!("listen = \"127.0.0.1:0\"\nserver = \"{a1}\"\n"),
    )?;
    let (c2, a2) = start(&exe, &p2)?;
    daemons.0.push(c2);
    let p0 = write(
        "p0.toml",
        common(Role::Client) + &format!("server = \"{a1}\"\nhelper = \"{a2}\"\nahead = {ahead}\n"),
    )?;

    let outputs = dir.join("outputs.npy");
    let status = Command::new(&exe)
        .arg("infer")
        .arg("--config")
        .arg(&p0)
        .args(client_args)
        .arg("--out")
        .arg(&outputs)
        .arg("--report")
        .arg(report)
        .status()
        .context("starting the client")?;
    // The daemons are idle now, so their high-water marks are this run's peaks.
    let peaks: Vec<Option<u64>> = daemons
        .0
        .iter()
        .map(|c| memory::peak_rss(Process::Pid(c.id())))
        .collect();
    drop(daemons);
    if !status.success() {
        bail!("the client failed ({status}); see its messages above");
    }

    // Secure vs the cleartext fixed-point reference, image by image: the same prediction
    // (class, or every pixel's class) from the same decoding of the values.
    let model = Model::new(&program, Some(&w))?;
    let (_, _, cols, secure) = decode_npy(&std::fs::read(&outputs)?)?;
    let first = &program.outputs[0];
    let shape = model.shapes[first.tensor as usize];
    let f = program.fixed_point.frac_bits;
    let (mut equal, mut correct, mut labelled) = (0u64, 0u64, 0u64);
    let (mut pixels, mut agreeing) = (0u64, 0u64);
    for (i, s) in samples.iter().enumerate() {
        let expect = reference::run(&model, &encode_input(&program, &s.pixels));
        let row = &secure[i * cols..(i + 1) * cols];
        // A classifier's row is its decoded logits (both sides decoded alike), a segmentor's
        // the client's label map.
        let (want, got) = match first.kind {
            OutputKind::Logits => {
                let decoded: Vec<f32> = expect[0].iter().map(|&v| decode(v, f) as f32).collect();
                (
                    reference::predict(first.kind, shape, &decoded),
                    reference::predict(first.kind, shape, row),
                )
            }
            OutputKind::SegmentationLogits => (
                reference::predict_ring(first.kind, shape, &expect[0]),
                row.iter().map(|&k| k as u32).collect(),
            ),
        };
        equal += u64::from(want == got);
        // Per pixel too: a segmentor's map can differ from the reference's in a few pixels
        // (local truncation's last bit flipping a near tie) without being wrong.
        pixels += want.len() as u64;
        agreeing += want.iter().zip(&got).filter(|(a, b)| a == b).count() as u64;
        if let (Some(l), OutputKind::Logits) = (s.label, first.kind) {
            labelled += 1;
            correct += u64::from(want[0] == u32::from(l));
        }
    }
    let mut rep = Report::from_json(&std::fs::read_to_string(report)?)?;
    rep.secure_equals_reference = equal;
    (rep.peak_rss.p1, rep.peak_rss.p2) = (peaks[0], peaks[1]);
    if labelled > 0 {
        rep.accuracy.plain = correct as f64 / labelled as f64;
    }
    std::fs::write(report, rep.to_json())?;
    println!(
        "secure predictions equal to the fixed-point reference: {equal}/{}{}{}",
        samples.len(),
        if first.kind == OutputKind::SegmentationLogits {
            format!("; pixels of the label maps that agree: {agreeing}/{pixels}")
        } else {
            String::new()
        },
        if labelled > 0 {
            format!("; reference accuracy {:.2}%", 100.0 * rep.accuracy.plain)
        } else {
            String::new()
        }
    );
    if let Some(o) = out {
        std::fs::copy(&outputs, o).with_context(|| format!("cannot write {}", o.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
