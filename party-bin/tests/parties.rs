//! The three parties as separate processes over mutual TLS on loopback: results equal the
//! in-memory run, and every failure — a killed or stalled party, garbage on a port, a wrong
//! certificate, another program — ends in a precise error, not a hang.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ksnn_formats::example::tiny_cnn;
use ksnn_runtime::net::tls;
use ksnn_runtime::role::Role;

mod common;
use common::*;

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
    use ksnn_formats::example::with_weights;
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
