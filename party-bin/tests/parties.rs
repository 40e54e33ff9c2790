//! The three parties as separate processes over mutual TLS on loopback: results equal the
//! in-memory run, and every failure — a killed or stalled party, garbage on a port, a wrong
//! certificate, another program — ends in a precise error, not a hang.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ksnn_formats::example::{tiny_cnn, with_weights};
use ksnn_formats::{Program, Truncation};
use ksnn_runtime::net::tls;
use ksnn_runtime::role::Role;

const BIN: &str = env!("CARGO_BIN_EXE_ksnn-party");

/// A scratch directory with a program, its weights, certificates and NPY inputs.
struct Files {
    dir: PathBuf,
    /// Read by the fixed-secrets test only.
    #[cfg_attr(not(feature = "insecure-test-secrets"), allow(dead_code))]
    program: Program,
    inputs: Vec<PathBuf>,
    #[cfg_attr(not(feature = "insecure-test-secrets"), allow(dead_code))]
    pixels: Vec<Vec<f32>>,
}

fn npy(path: &Path, h: usize, w: usize, data: &[f32]) {
    std::fs::write(path, ksnn_formats::npy::encode(&[h, w], data)).unwrap();
}

fn files(name: &str, exact: bool, n: usize) -> Files {
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

fn config(f: &Files, role: &str, extra: &str) -> PathBuf {
    let file = match role {
        "client" => "p0",
        "server" => "p1",
        _ => "p2",
    };
    let text = format!(
        "role = \"{role}\"\nmodel = \"model.ksnn\"\nca = \"certs/ca.pem\"\ncert = \"certs/{file}.pem\"\nkey = \"certs/{file}.key\"\ntimeout_seconds = 3\n{extra}"
    );
    // A fresh name each time: clients started together must not share a file being rewritten.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = f.dir.join(format!("{file}-{k}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

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

fn daemon(cfg: &Path) -> Daemon {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    Daemon { child, addr }
}

/// Starts P1 and P2 for `f`.
fn cluster(f: &Files) -> (Daemon, Daemon) {
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

fn client_cmd(f: &Files, server: &str, helper: &str, inputs: &[PathBuf], out: &Path) -> Command {
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

/// Starts a client on all of `f`'s inputs and returns once its first answer is printed.
fn busy_client(f: &Files, server: &Daemon, helper: &Daemon, out: &str) -> Child {
    let mut client = client_cmd(f, &server.addr, &helper.addr, &f.inputs, &f.dir.join(out))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    client
}

fn read_npy(path: &Path) -> Vec<f32> {
    ksnn_formats::npy::decode(&std::fs::read(path).unwrap())
        .unwrap()
        .data
}

/// A client configuration with the given program and certificate files.
fn client_with(
    f: &Files,
    name: &str,
    model: &str,
    certs: &str,
    cert: &str,
    server: &str,
    helper: &str,
) -> PathBuf {
    let cfg = f.dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!("role = \"client\"\nmodel = \"{model}\"\nca = \"{certs}/ca.pem\"\ncert = \"{certs}/{cert}.pem\"\nkey = \"{certs}/{cert}.key\"\ntimeout_seconds = 3\nserver = \"{server}\"\nhelper = \"{helper}\"\n"),
    )
    .unwrap();
    cfg
}

fn refused(f: &Files, cfg: &Path) -> String {
    let o = Command::new(BIN)
        .args(["infer", "--config"])
        .arg(cfg)
        .arg("--input")
        .args(&f.inputs)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{} was accepted", cfg.display());
    text(&o)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ksnn-party local` on `f`'s inputs with `KSNN_INSECURE_TEST_SECRETS` set.
fn local_with_test_secrets(f: &Files) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(&f.dir)
        .env("KSNN_INSECURE_TEST_SECRETS", "parties-test")
        .args([
            "local",
            "--model",
            "model.ksnn",
            "--weights",
            "weights.ksnw",
            "--input",
        ])
        .args(&f.inputs);
    c
}

/// With fixed secrets the networked parties compute exactly what the in-memory ones do. Needs
/// `--features insecure-test-secrets` (`tools/test.sh` runs it so).
#[cfg(feature = "insecure-test-secrets")]
mod fixed_secrets {
    use super::*;
    use ksnn_runtime::exec::local::{LocalOptions, run_three};
    use ksnn_runtime::exec::model::encode_input;
    use ksnn_runtime::net::tcp::keying::insecure::test_pair_secret;
    use ksnn_runtime::prf::Keys;
    use ksnn_runtime::ring::decode;
    use ksnn_runtime::role::Pair;

    #[test]
    fn local_run_equals_the_in_memory_run_bit_for_bit() {
        let f = files("local", false, 3);
        let out = f.dir.join("y.npy");
        let o = local_with_test_secrets(&f)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("equal to the fixed-point reference"),
            "{}",
            text(&o)
        );
        assert!(
            text(&o).contains("WARNING: KSNN_INSECURE_TEST_SECRETS is set"),
            "the fixed secrets must be announced loudly: {}",
            text(&o)
        );
        let got = read_npy(&out);

        let (_, weights) = with_weights(f.program.clone(), 3, 0.3);
        let keys = Keys::triple_from(Pair::ALL.map(|p| test_pair_secret("parties-test", p)));
        let inputs: Vec<Vec<u64>> = f
            .pixels
            .iter()
            .map(|p| encode_input(&f.program, p))
            .collect();
        let runs = run_three(
            &f.program,
            &weights,
            &inputs,
            keys,
            &LocalOptions::default(),
        )
        .unwrap();
        let expect: Vec<f32> = runs[0]
            .inferences
            .iter()
            .flat_map(|i| {
                i.outputs[0]
                    .iter()
                    .map(|&v| decode(v, f.program.fixed_point.frac_bits) as f32)
            })
            .collect();
        assert_eq!(got, expect);
        let report = std::fs::read_to_string(f.dir.join("report.json")).unwrap();
        assert!(
            report.contains("\"secure_equals_reference\": 3"),
            "{report}"
        );
    }
}

/// Without the feature the variable changes nothing: no fixed secrets, no warning, and the
/// run is as private as any (the unit test in `keying` checks the secrets themselves).
#[cfg(not(feature = "insecure-test-secrets"))]
#[test]
fn default_build_ignores_insecure_test_secrets() {
    let f = files("ignores", true, 1);
    let o = local_with_test_secrets(&f).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("KSNN_INSECURE_TEST_SECRETS"),
        "a default build must not honour the variable: {}",
        text(&o)
    );
}

#[test]
fn four_concurrent_sessions_equal_four_sequential_ones() {
    let f = files("concurrent", true, 2);
    let (server, helper) = cluster(&f);
    let run = |k: usize| {
        client_cmd(
            &f,
            &server.addr,
            &helper.addr,
            &f.inputs,
            &f.dir.join(format!("c{k}.npy")),
        )
        .spawn()
        .unwrap()
    };
    let sequential: Vec<Vec<f32>> = (0..4)
        .map(|k| {
            assert!(run(k).wait().unwrap().success());
            read_npy(&f.dir.join(format!("c{k}.npy")))
        })
        .collect();
    let children: Vec<Child> = (4..8).map(run).collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    for k in 4..8 {
        assert_eq!(
            read_npy(&f.dir.join(format!("c{k}.npy"))),
            sequential[0],
            "session {k}"
        );
    }
    assert!(sequential.iter().all(|s| *s == sequential[0]));
}

#[test]
fn a_killed_helper_ends_the_session_and_the_server_keeps_serving() {
    let f = files("kill", false, 40);
    let (server, mut helper) = cluster(&f);
    // Once the first answer is out, the session is under way.
    let client = busy_client(&f, &server, &helper, "k.npy");
    let killed = Instant::now();
    helper.child.kill().unwrap();
    let o = client.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the client must fail");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "failed within the timeout"
    );
    assert!(err.contains("P2 (helper)"), "names the lost peer: {err}");
    assert!(
        err.contains("layer")
            || err.contains("starting an inference")
            || err.contains("measurements"),
        "{err}"
    );
    // A new helper, a new client: the same server daemon serves it.
    let helper2 = daemon(&config(
        &f,
        "helper",
        &format!(
            "listen = \"127.0.0.1:0\"\nserver = \"{}\"\n#2\n",
            server.addr
        ),
    ));
    std::thread::sleep(Duration::from_millis(300));
    let o = client_cmd(
        &f,
        &server.addr,
        &helper2.addr,
        &f.inputs[..2],
        &f.dir.join("k2.npy"),
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    drop(helper);
}

#[cfg(unix)]
#[test]
fn a_stalled_helper_times_out() {
    let f = files("stall", false, 40);
    let (server, helper) = cluster(&f);
    // Once the first answer is out, the session is under way.
    let client = busy_client(&f, &server, &helper, "s.npy");
    let pid = helper.child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let stalled = Instant::now();
    let o = client.wait_with_output().unwrap();
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stalled.elapsed() < Duration::from_secs(10),
        "timed out in {:?}",
        stalled.elapsed()
    );
    assert!(
        err.contains("within") || err.contains("P2 (helper)"),
        "{err}"
    );
}

#[test]
fn garbage_on_a_port_is_dropped_and_the_daemon_goes_on() {
    let f = files("garbage", false, 1);
    let (server, helper) = cluster(&f);
    for junk in [
        vec![0u8; 5],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3],
        vec![0xAB; 100_000],
    ] {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let o = client_cmd(
        &f,
        &server.addr,
        &helper.addr,
        &f.inputs,
        &f.dir.join("g.npy"),
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn wrong_certificates_and_programs_are_refused_at_the_handshake() {
    let f = files("refuse", false, 1);
    let (server, helper) = cluster(&f);
    let (a, b) = (server.addr.as_str(), helper.addr.as_str());
    // Certificates from another CA.
    tls::generate(&f.dir.join("rogue")).unwrap();
    let out = refused(
        &f,
        &client_with(&f, "rogue", "model.ksnn", "rogue", "p0", a, b),
    );
    assert!(out.contains("P1 (server)"), "{out}");
    // The helper's certificate used as a client's.
    let out = refused(
        &f,
        &client_with(&f, "imposter", "model.ksnn", "certs", "p2", a, b),
    );
    assert!(out.contains("not for P0"), "{out}");
    // Another program.
    let (other, _) = tiny_cnn(99);
    std::fs::write(f.dir.join("other.ksnn"), other.encode()).unwrap();
    let out = refused(
        &f,
        &client_with(&f, "other", "other.ksnn", "certs", "p0", a, b),
    );
    assert!(out.contains("program hash mismatch"), "{out}");
}

#[test]
fn bad_configurations_say_what_is_wrong() {
    let f = files("config", false, 1);
    let cfg = f.dir.join("bad.toml");
    std::fs::write(&cfg, "role = \"helper\"\nmodel = \"model.ksnn\"\nweights = \"weights.ksnw\"\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\nlisten = \"127.0.0.1:0\"\nserver = \"127.0.0.1:1\"\n").unwrap();
    let o = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("must not hold"), "{}", text(&o));
    let _ = Role::Client;
}
