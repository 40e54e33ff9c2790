//! Shared set-up of the party-process tests: scratch files, configurations, daemons.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use ksnn_formats::example::{tiny_cnn, with_weights};
use ksnn_formats::{Program, Truncation};
use ksnn_runtime::net::tls;

pub const BIN: &str = env!("CARGO_BIN_EXE_ksnn-party");

/// A scratch directory with a program, its weights, certificates and NPY inputs.
pub struct Files {
    pub dir: PathBuf,
    pub program: Program,
    pub inputs: Vec<PathBuf>,
    pub pixels: Vec<Vec<f32>>,
}

pub fn npy(path: &Path, h: usize, w: usize, data: &[f32]) {
    std::fs::write(path, ksnn_formats::npy::encode(&[h, w], data)).unwrap();
}

pub fn files(name: &str, exact: bool, n: usize) -> Files {
    let dir = std::env::temp_dir().join(format!("ksnn-parties-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut p, _) = tiny_cnn(3);
    if exact {
        p.protocol.truncation = Truncation::HelperExact;
    }
    let (program, weights) = with_weights(p, 3, 0.3);
    std::fs::write(dir.join("model.ksnn"), program.encode()).unwrap();
    std::fs::write(dir.join("weights.ksnw"), weights.encode()).unwrap();
    tls::generate(&dir.join("certs")).unwrap();
    let mut inputs = Vec::new();
    let mut pixels = Vec::new();
    for k in 0..n {
        let px: Vec<f32> = (0..784)
            .map(|i| ((i * 7 + k * 13) % 17) as f32 / 16.0)
            .collect();
        let path = dir.join(format!("x{k}.npy"));
        npy(&path, 28, 28, &px);
        inputs.push(path);
        pixels.push(px);
    }
    Files {
        dir,
        program,
        inputs,
        pixels,
    }
}

pub fn config(f: &Files, role: &str, extra: &str) -> PathBuf {
    let file = match role {
        "client" => "p0",
        "server" => "p1",
        _ => "p2",
    };
    // Three seconds unless the caller sets its own timeout.
    let timeout = if extra.contains("timeout_seconds") {
        ""
    } else {
        "timeout_seconds = 3\n"
    };
    let text = format!(
        "role = \"{role}\"\nmodel = \"model.ksnn\"\nca = \"certs/ca.pem\"\ncert = \"certs/{file}.pem\"\nkey = \"certs/{file}.key\"\n{timeout}{extra}"
    );
    // A fresh name each time: clients started together must not share a file being rewritten.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = f.dir.join(format!("{file}-{k}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
}

impl Daemon {
    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn daemon(cfg: &Path) -> Daemon {
    let mut c = Command::new(BIN);
    c.args(["serve", "--config"]).arg(cfg);
    daemon_from(c, cfg)
}

/// Starts a daemon by `cmd` (which must exec `ksnn-party serve --config cfg`), logging to
/// `cfg` with the extension `log`, and waits for its address.
pub fn daemon_from(mut cmd: Command, cfg: &Path) -> Daemon {
    let log = cfg.with_extension("log");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("daemon prints its address")
        .to_string();
    Daemon { child, addr, log }
}

/// Starts P1 and P2 for `f`.
pub fn cluster(f: &Files) -> (Daemon, Daemon) {
    let server = daemon(&config(
        f,
        "server",
        "weights = \"weights.ksnw\"\nlisten = \"127.0.0.1:0\"\n",
    ));
    let helper = daemon(&config(
        f,
        "helper",
        &format!("listen = \"127.0.0.1:0\"\nserver = \"{}\"\n", server.addr),
    ));
    (server, helper)
}

pub fn client_cmd(
    f: &Files,
    server: &str,
    helper: &str,
    inputs: &[PathBuf],
    out: &Path,
) -> Command {
    let cfg = config(
        f,
        "client",
        &format!("server = \"{server}\"\nhelper = \"{helper}\"\n"),
    );
    let mut c = Command::new(BIN);
    c.args(["infer", "--config"])
        .arg(cfg)
        .arg("--input")
        .args(inputs)
        .arg("--out")
        .arg(out);
    c.arg("--report").arg(out.with_extension("json"));
    c
}

pub fn read_npy(path: &Path) -> Vec<f32> {
    ksnn_formats::npy::decode(&std::fs::read(path).unwrap())
        .unwrap()
        .data
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
