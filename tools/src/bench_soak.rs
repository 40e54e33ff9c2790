//! `ksnn-tools bench soak`: honest clients and a hostile one at the same time against real
//! `ksnn-party serve` daemons on loopback. Every honest answer must equal the fixed-point
//! reference; the daemons' memory is sampled throughout (before, peak, after).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ksnn_formats::example::{tiny_cnn, with_weights};
use ksnn_formats::{FrameKind, Truncation};
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::exec::session::SessionCmd;
use ksnn_runtime::net::tcp::{Node, NodeConfig};
use ksnn_runtime::net::tls::{Identity, generate};
use ksnn_runtime::net::{Message, Transport};
use ksnn_runtime::reference;
use ksnn_runtime::ring::decode;
use ksnn_runtime::role::Role;

struct Daemon {
    child: Child,
    addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    ksnn_runtime::memory::rss(ksnn_runtime::memory::Process::Pid(pid)).unwrap_or(0) >> 10
}

fn start(party: &Path, cfg: &Path, log: &Path) -> Result<Daemon> {
    let mut child = Command::new(party)
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("starting {}", party.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .with_context(|| format!("the daemon did not start; see {}", log.display()))?
        .to_string();
    Ok(Daemon { child, addr })
}

/// One round of every attack the hostile client knows; returns how many it made.
fn attack(dir: &Path, program_hash: ksnn_formats::ContentHash, p1: &str, p2: &str) -> usize {
    let mut made = 0;
    // Silent TCP connections, held for a moment.
    let silent: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(p1).ok())
        .collect();
    made += silent.len();
    let Ok(node) = Node::start(NodeConfig {
        identity: match Identity::from_dir(Role::Client, &dir.join("certs")) {
            Ok(i) => i,
            Err(_) => return made,
        },
        listen: None,
        program_hash,
        timeout: Duration::from_secs(3),
        max_payload: 1 << 20,
        max_message: 1 << 30,
        limits: Default::default(),
        latency: ksnn_runtime::net::tcp::Latency::ZERO,
    }) else {
        return made;
    };
    if node.connect(Role::Server, p1.parse().unwrap()).is_ok()
        && node.connect(Role::Helper, p2.parse().unwrap()).is_ok()
    {
        // A flood of sessions never used.
        let flood: Vec<_> = (0..40).filter_map(|_| node.open_session().ok()).collect();
        made += flood.len();
        // A 64 KiB abort reason, and an inference started and abandoned.
        if let Ok(s) = node.open_session()
            && let Ok((_, mut t)) = s.establish()
        {
            let _ = t.send(
                Role::Server,
                Message {
                    kind: FrameKind::Abort,
                    depth: 0,
                    payload: b"soak\n".repeat(13_000),
                },
            );
            made += 1;
        }
        if let Ok(s) = node.open_session()
            && let Ok((_, mut t)) = s.establish()
        {
            let _ = t.send(Role::Server, SessionCmd::Infer { id: 7 }.message());
            let _ = t.send(Role::Server, SessionCmd::Infer { id: 7 }.message());
            made += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
        drop(flood);
    }
    drop(silent);
    node.shutdown();
    made
}

pub fn run(clients: usize, n: usize) -> Result<()> {
    let party = crate::party_binary()?;
    let dir = std::env::temp_dir().join(format!("ksnn-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (mut p, _) = tiny_cnn(5);
    p.protocol.truncation = Truncation::HelperExact;
    let (program, weights) = with_weights(p, 5, 0.3);
    std::fs::write(dir.join("model.ksnn"), program.encode())?;
    std::fs::write(dir.join("weights.ksnw"), weights.encode())?;
    generate(&dir.join("certs"))?;
    let full = Model::new(&program, Some(&weights))?;
    let f = program.fixed_point.frac_bits;
    let mut inputs = Vec::new();
    let mut expect: Vec<f32> = Vec::new();
    for k in 0..n {
        let px: Vec<f32> = (0..784)
            .map(|i| ((i * 7 + k * 13) % 23) as f32 / 22.0)
            .collect();
        let path = dir.join(format!("x{k}.npy"));
        std::fs::write(&path, ksnn_formats::npy::encode(&[28, 28], &px))?;
        inputs.push(path);
        for out in reference::run(&full, &encode_input(&program, &px)) {
            expect.extend(out.iter().map(|&v| decode(v, f) as f32));
        }
    }
    let cfg = |name: &str, role: &str, file: &str, extra: &str| -> Result<PathBuf> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "role = \"{role}\"\nmodel = \"model.ksnn\"\nca = \"certs/ca.pem\"\ncert = \"certs/{file}.pem\"\nkey = \"certs/{file}.key\"\ntimeout_seconds = 30\n{extra}"
            ),
        )?;
        Ok(path)
    };
    let p1 = start(
        &party,
        &cfg(
            "p1",
            "server",
            "p1",
            "weights = \"weights.ksnw\"\nlisten = \"127.0.0.1:0\"\n",
        )?,
        &dir.join("p1.log"),
    )?;
    let p2 = start(
        &party,
        &cfg(
            "p2",
            "helper",
            "p2",
            &format!("listen = \"127.0.0.1:0\"\nserver = \"{}\"\n", p1.addr),
        )?,
        &dir.join("p2.log"),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let pids = [p1.child.id(), p2.child.id()];
    let before = pids.map(rss_kib);
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let sampler = {
        let (stop, peaks) = (stop.clone(), peaks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (k, pid) in pids.iter().enumerate() {
                    peaks[k].fetch_max(rss_kib(*pid) as usize, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let hostile = {
        let (stop, dir) = (stop.clone(), dir.clone());
        let (a1, a2) = (p1.addr.clone(), p2.addr.clone());
        let hash = program.content_hash();
        std::thread::spawn(move || {
            let mut made = 0;
            while !stop.load(Ordering::Relaxed) {
                made += attack(&dir, hash, &a1, &a2);
            }
            made
        })
    };
    println!("{clients} honest clients × {n} inferences, a hostile client attacking throughout");
    let started = Instant::now();
    let honest: Vec<(usize, Child)> = (0..clients)
        .map(|k| -> Result<(usize, Child)> {
            let c = cfg(
                &format!("p0-{k}"),
                "client",
                "p0",
                &format!("server = \"{}\"\nhelper = \"{}\"\n", p1.addr, p2.addr),
            )?;
            let child = Command::new(&party)
                .args(["infer", "--config"])
                .arg(&c)
                .arg("--input")
                .args(&inputs)
                .arg("--out")
                .arg(dir.join(format!("y{k}.npy")))
                .arg("--report")
                .arg(dir.join(format!("r{k}.json")))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("p0-{k}.log")))?)
                .spawn()?;
            Ok((k, child))
        })
        .collect::<Result<_>>()?;
    let mut equal = 0usize;
    for (k, mut child) in honest {
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "honest client {k} failed; see {}",
                dir.join(format!("p0-{k}.log")).display()
            );
        }
        let got = ksnn_formats::npy::decode(&std::fs::read(dir.join(format!("y{k}.npy")))?)?.data;
        if got != expect {
            bail!("honest client {k}: outputs differ from the fixed-point reference");
        }
        equal += n;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let attacks = hostile
        .join()
        .map_err(|_| anyhow::anyhow!("attacker panicked"))?;
    let _ = sampler.join();
    std::thread::sleep(Duration::from_secs(2));
    let after = pids.map(rss_kib);
    let mut daemons = [p1, p2];
    for (d, name) in daemons.iter_mut().zip(["P1", "P2"]) {
        if d.child.try_wait()?.is_some() {
            bail!("{name} exited during the soak; see {}", dir.display());
        }
    }
    println!(
        "{equal} of {} honest inferences equal the reference, in {:.1} s ({:.1} per second); {attacks} hostile connections, sessions and messages",
        clients * n,
        took.as_secs_f64(),
        equal as f64 / took.as_secs_f64()
    );
    println!("| daemon | RSS before | peak | after |\n|---|---|---|---|");
    for (k, name) in ["P1 (server)", "P2 (helper)"].iter().enumerate() {
        println!(
            "| {name} | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
            before[k] as f64 / 1024.0,
            peaks[k].load(Ordering::Relaxed) as f64 / 1024.0,
            after[k] as f64 / 1024.0
        );
    }
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
