//! The three parties over TCP + mutual TLS on loopback, in one process (the party binary's
//! tests run them as separate processes): results, refusals and failures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ksnn_formats::example::tiny_cnn;
use ksnn_formats::{Program, Truncation, Weights};
use ksnn_runtime::exec::engine::Engine;
use ksnn_runtime::exec::model::{Model, encode_input};
use ksnn_runtime::exec::session;
use ksnn_runtime::net::counting::CountingTransport;
use ksnn_runtime::net::tcp::{Node, NodeConfig, NodeEvent};
use ksnn_runtime::net::tls::{Identity, generate};
use ksnn_runtime::reference;
use ksnn_runtime::role::Role;

fn certs(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ksnn-tcp-{}-{name}", std::process::id()));
    generate(&dir).unwrap();
    dir
}

fn node(dir: &std::path::Path, role: Role, program: &Program, listen: bool) -> Node {
    Node::start(NodeConfig {
        identity: Identity::from_dir(role, dir).unwrap(),
        listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
        program_hash: program.content_hash(),
        timeout: Duration::from_secs(5),
        max_payload: 1 << 20,
        max_message: 1 << 30,
    })
    .unwrap()
}

/// Serves sessions on `node` in background threads until the test ends.
fn daemon(node: Node, program: &'static Program, weights: Option<&'static Weights>) -> SocketAddr {
    let addr = node.local_addr.unwrap();
    let model: &'static Model<'static> = Box::leak(Box::new(Model::new(program, weights).unwrap()));
    std::thread::spawn(move || {
        loop {
            match node.next_event(Duration::from_millis(200)) {
                Some(NodeEvent::Session(s)) => {
                    std::thread::spawn(move || {
                        let mut engine = Engine::new(model, s.keys);
                        let mut net = CountingTransport::new(s.transport);
                        if let Err(e) = session::serve(&mut engine, &mut net) {
                            eprintln!("daemon session failed: {e}");
                            session::abort(&mut net, &e.to_string());
                        }
                    });
                }
                Some(NodeEvent::Log(l)) => eprintln!("[daemon] {l}"),
                None => {}
            }
        }
    });
    addr
}

fn exact_program() -> (&'static Program, &'static Weights) {
    let (mut p, _) = tiny_cnn(2);
    p.protocol.truncation = Truncation::HelperExact;
    let (p, w) = ksnn_formats::example::with_weights(p, 2, 0.3);
    (Box::leak(Box::new(p)), Box::leak(Box::new(w)))
}

/// Starts the server and helper daemons (helper linked to server); returns their addresses.
fn daemons(
    dir: &std::path::Path,
    program: &'static Program,
    weights: &'static Weights,
) -> (SocketAddr, SocketAddr) {
    let server = daemon(
        node(dir, Role::Server, program, true),
        program,
        Some(weights),
    );
    let helper_node = node(dir, Role::Helper, program, true);
    helper_node.connect(Role::Server, server).unwrap();
    (server, daemon(helper_node, program, None))
}

/// A client session over TLS running `inputs`, checking each result with `each`.
fn client_run(
    dir: &std::path::Path,
    program: &'static Program,
    (server, helper): (SocketAddr, SocketAddr),
    inputs: Vec<Vec<u64>>,
    each: impl FnMut(u64, session::ClientResult) -> Result<(), ksnn_runtime::exec::engine::ExecError>,
) {
    let client = node(dir, Role::Client, program, false);
    client.connect(Role::Server, server).unwrap();
    client.connect(Role::Helper, helper).unwrap();
    let s = client.open_session().unwrap();
    let model = Model::new(program, None).unwrap();
    let mut engine = Engine::new(&model, s.keys);
    let mut net = CountingTransport::new(s.transport);
    session::run_client(&mut engine, &mut net, inputs.into_iter(), each).unwrap();
}

#[test]
fn three_parties_over_tls_equal_the_reference() {
    let (program, weights) = exact_program();
    let dir = certs("ok");
    let addrs = daemons(&dir, program, weights);
    let full = Model::new(program, Some(weights)).unwrap();
    let inputs: Vec<Vec<u64>> = (0..3)
        .map(|k| encode_input(program, &vec![0.1 * k as f32; 784]))
        .collect();
    let mut seen = 0;
    client_run(&dir, program, addrs, inputs.clone(), |id, r| {
        assert_eq!(
            r.inference.outputs,
            reference::run(&full, &inputs[id as usize])
        );
        assert!(
            r.daemons[0]
                .stats
                .sent_in(ksnn_runtime::net::counting::Phase::Online)
                .bytes
                > 0
        );
        seen += 1;
        Ok(())
    });
    assert_eq!(seen, 3);
}

#[test]
fn a_program_mismatch_is_refused_at_the_greeting() {
    let (program, weights) = exact_program();
    let dir = certs("mismatch");
    let server = daemon(
        node(&dir, Role::Server, program, true),
        program,
        Some(weights),
    );
    let (other, _) = tiny_cnn(77);
    let client = node(&dir, Role::Client, &other, false);
    let err = client
        .connect(Role::Server, server)
        .unwrap_err()
        .to_string();
    assert!(err.contains("program hash mismatch"), "{err}");
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let (program, weights) = exact_program();
    let dir = certs("ca1");
    let rogue = certs("ca2");
    let server = daemon(
        node(&dir, Role::Server, program, true),
        program,
        Some(weights),
    );
    let client = node(&rogue, Role::Client, program, false);
    assert!(client.connect(Role::Server, server).is_err());
}

#[test]
fn a_wrong_role_certificate_is_refused() {
    let (program, _) = exact_program();
    let dir = certs("role");
    // A helper accepts only clients: another helper's certificate is refused.
    let helper = node(&dir, Role::Helper, program, true);
    let addr = helper.local_addr.unwrap();
    let _keep = daemon(helper, program, None);
    let imposter = node(&dir, Role::Helper, program, false);
    assert!(imposter.connect(Role::Helper, addr).is_err());
}

/// An authenticated peer that sends an oversized or malformed frame is cut off before
/// anything is allocated for it, and the daemon goes on serving.
#[test]
fn malformed_frames_from_an_authenticated_peer_close_only_that_connection() {
    use ksnn_formats::FrameKind;
    use ksnn_formats::frame::FrameHeader;
    use std::io::{Read, Write};

    let (program, weights) = exact_program();
    let dir = certs("frames");
    let (server, helper) = daemons(&dir, program, weights);

    let id = Identity::from_dir(Role::Client, &dir).unwrap();
    let bad_frames: Vec<Vec<u8>> = vec![
        // Claims 4 GiB.
        FrameHeader {
            session: 5,
            seq: 0,
            depth: 0,
            kind: FrameKind::Ring,
            more: false,
            len: u32::MAX,
        }
        .encode()
        .to_vec(),
        // Not a frame at all.
        b"this is not a ksnn frame, just text.".to_vec(),
    ];
    // A correct greeting first, so the bad frame arrives on an accepted connection.
    let hello = ksnn_runtime::net::tcp::control::Control::Hello {
        role: Role::Client as u8,
        program: program.content_hash().0,
        protocol: ksnn_runtime::net::tcp::control::PROTOCOL_VERSION,
    }
    .message();
    let mut greeting = FrameHeader {
        session: 0,
        seq: 0,
        depth: 0,
        kind: FrameKind::Hello,
        more: false,
        len: hello.payload.len() as u32,
    }
    .encode()
    .to_vec();
    greeting.extend_from_slice(&hello.payload);
    for bad in bad_frames {
        let mut bytes = greeting.clone();
        bytes.extend_from_slice(&bad);
        let name = rustls::pki_types::ServerName::try_from("p1.ksnn").unwrap();
        let conn = rustls::ClientConnection::new(id.client_config().unwrap(), name).unwrap();
        let sock = std::net::TcpStream::connect(server).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(&bytes).unwrap();
        tls.flush().unwrap();
        let mut buf = [0u8; 4096];
        let closed = Instant::now();
        // The server's greeting may arrive first; then the connection must end.
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => assert!(
                    closed.elapsed() < Duration::from_secs(4),
                    "the server kept the connection"
                ),
            }
        }
    }
    // A well-behaved client is still served.
    let x = encode_input(program, &vec![0.3; 784]);
    client_run(&dir, program, (server, helper), vec![x], |_, r| {
        assert_eq!(r.inference.outputs.len(), 1);
        Ok(())
    });
}
