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
use ksnn_runtime::net::tcp::{Latency, Node, NodeConfig, NodeEvent};
use ksnn_runtime::net::tls::{Identity, generate};
use ksnn_runtime::reference;
use ksnn_runtime::role::Role;

/// Every daemon log line of this test process (tests look for their refusals in it).
static LOGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn certs(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ksnn-tcp-{}-{name}", std::process::id()));
    // A directory left by an earlier process with the same id would hold a CA already.
    let _ = std::fs::remove_dir_all(&dir);
    generate(&dir).unwrap();
    dir
}

/// The client opens a session; returns its transport and the server's for the same session.
fn client_and_server_session(
    client: &Node,
    server: &Node,
) -> (
    ksnn_runtime::net::tcp::TcpTransport,
    ksnn_runtime::net::tcp::TcpTransport,
) {
    let s0 = client.open_session().unwrap().transport_only();
    let s1 = loop {
        match server.next_event(Duration::from_secs(5)) {
            Some(NodeEvent::Session(s)) => break s.transport_only(),
            Some(NodeEvent::Log(_)) => {}
            None => panic!("the server saw no session"),
        }
    };
    (s0, s1)
}

fn node(dir: &std::path::Path, role: Role, program: &Program, listen: bool) -> Node {
    node_with_latency(dir, role, program, listen, Latency::ZERO)
}

/// A node whose session messages are held `latency` after they arrive (benchmarks).
fn node_with_latency(
    dir: &std::path::Path,
    role: Role,
    program: &Program,
    listen: bool,
    latency: Latency,
) -> Node {
    Node::start(NodeConfig {
        identity: Identity::from_dir(role, dir).unwrap(),
        listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
        program_hash: program.content_hash(),
        timeout: Duration::from_secs(5),
        max_payload: 1 << 20,
        max_message: 1 << 30,
        limits: Default::default(),
        latency,
    })
    .unwrap()
}

/// The three nodes (client, server, helper), each holding messages as `latency` says, with
/// the helper and the client linked to the daemons.
fn linked_nodes(
    dir: &std::path::Path,
    program: &Program,
    latency: impl Fn(Role) -> Latency,
) -> [Node; 3] {
    let start = |role, listen| node_with_latency(dir, role, program, listen, latency(role));
    let server = start(Role::Server, true);
    let helper = start(Role::Helper, true);
    helper
        .connect(Role::Server, server.local_addr.unwrap())
        .unwrap();
    let client = start(Role::Client, false);
    client
        .connect(Role::Server, server.local_addr.unwrap())
        .unwrap();
    client
        .connect(Role::Helper, helper.local_addr.unwrap())
        .unwrap();
    [client, server, helper]
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
                        let (keys, transport) = match s.establish() {
                            Ok(k) => k,
                            Err(e) => return eprintln!("daemon session failed to start: {e}"),
                        };
                        let mut engine = Engine::new(model, keys);
                        let mut net = CountingTransport::new(transport);
                        if let Err(e) = session::serve(&mut engine, &mut net) {
                            eprintln!("daemon session failed: {e}");
                            session::abort(&mut net, &e.to_string());
                        }
                    });
                }
                Some(NodeEvent::Log(l)) => {
                    eprintln!("[daemon] {l}");
                    LOGS.lock().unwrap().push(l);
                }
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
    ahead: usize,
    each: impl FnMut(u64, session::ClientResult) -> Result<(), ksnn_runtime::exec::engine::ExecError>,
) {
    let client = node(dir, Role::Client, program, false);
    client.connect(Role::Server, server).unwrap();
    client.connect(Role::Helper, helper).unwrap();
    let (keys, transport) = client.open_session().unwrap().establish().unwrap();
    let model = Model::new(program, None).unwrap();
    let mut engine = Engine::new(&model, keys);
    let mut net = CountingTransport::new(transport);
    session::run_client(&mut engine, &mut net, inputs.into_iter(), ahead, each).unwrap();
}

/// Sessions with and without offline ahead give the reference's outputs, and ahead the
/// daemons' records still carry each inference's offline traffic.
#[test]
fn three_parties_over_tls_equal_the_reference() {
    use ksnn_runtime::net::counting::Phase;
    let (program, weights) = exact_program();
    let dir = certs("ok");
    let addrs = daemons(&dir, program, weights);
    let full = Model::new(program, Some(weights)).unwrap();
    let inputs: Vec<Vec<u64>> = (0..3)
        .map(|k| encode_input(program, &vec![0.1 * k as f32; 784]))
        .collect();
    for ahead in [0, 2] {
        let mut seen = 0;
        client_run(&dir, program, addrs, inputs.clone(), ahead, |id, r| {
            assert_eq!(
                r.inference.outputs,
                reference::run(&full, &inputs[id as usize]),
                "ahead {ahead}, inference {id}"
            );
            for rec in [&r.inference.record, &r.daemons[1]] {
                assert!(rec.stats.sent_in(Phase::Online).bytes > 0);
            }
            // The helper's offline traffic (C0 to P0) travels in the record of the inference
            // it was for, also when it was prepared ahead.
            assert!(r.daemons[1].stats.sent_in(Phase::Offline).bytes > 0);
            seen += 1;
            Ok(())
        });
        assert_eq!(seen, 3);
    }
}

/// Offline ahead cannot be turned into mask reuse or hoarding: prepared ids strictly
/// increase, an inference must take the next prepared material, and a daemon keeps at most
/// `MAX_AHEAD` passes. Each refusal is an abort that says why; the daemons serve on.
#[test]
fn prepared_inferences_are_used_once_in_order_and_bounded() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::exec::session::{MAX_AHEAD, SessionCmd};
    use ksnn_runtime::net::Transport;

    let (program, weights) = exact_program();
    let dir = certs("ahead");
    let addrs = daemons(&dir, program, weights);
    let model = Model::new(program, None).unwrap();
    let prepare = |id| SessionCmd::Prepare { id };
    let infer = |id| SessionCmd::Infer { id };
    let too_many: Vec<SessionCmd> = (0..=MAX_AHEAD as u64).map(prepare).collect();
    let cases: Vec<(Vec<SessionCmd>, &str)> = vec![
        (vec![prepare(3), prepare(3)], "at least 4"),
        (vec![prepare(3), prepare(1)], "at least 4"),
        (vec![prepare(2), infer(1)], "next prepared inference, 2"),
        (vec![prepare(2), infer(3)], "next prepared inference, 2"),
        (vec![prepare(2), infer(2), infer(2)], "above 2"),
        (vec![infer(2), prepare(2)], "at least 3"),
        // The last id there is: nothing may follow it (no wrap back to 0).
        (
            vec![infer(u64::MAX), infer(0)],
            "above 18446744073709551615",
        ),
        (
            vec![prepare(u64::MAX), prepare(0)],
            "at least 18446744073709551616",
        ),
        (too_many, "at most"),
    ];
    for (cmds, why) in cases {
        let client = client_node(&dir, program, addrs);
        let (keys, transport) = client.open_session().unwrap().establish().unwrap();
        let mut engine = Engine::new(&model, keys);
        let mut net = CountingTransport::new(transport);
        engine.setup(&mut net).unwrap();
        let (last, accepted) = cmds.split_last().unwrap();
        let x = encode_input(program, &vec![0.3; 784]);
        let mut kept = std::collections::VecDeque::new();
        for cmd in accepted {
            net.send(Role::Server, cmd.message()).unwrap();
            // Play the client's part, so the daemons' passes complete.
            match *cmd {
                SessionCmd::Prepare { id } => kept.push_back(engine.offline(&mut net, id).unwrap()),
                SessionCmd::Infer { id } => {
                    let ready = match kept.pop_front() {
                        Some(p) => p,
                        None => engine.offline(&mut net, id).unwrap(),
                    };
                    engine.online(&mut net, ready, Some(&x)).unwrap();
                    for peer in [Role::Server, Role::Helper] {
                        let m = next_frame(&mut net, peer).unwrap();
                        assert_eq!(m.kind, FrameKind::Command, "a record from {peer}");
                    }
                }
                _ => unreachable!(),
            }
        }
        net.send(Role::Server, last.message()).unwrap();
        let m = next_frame(&mut net, Role::Server).unwrap();
        let reason = String::from_utf8_lossy(&m.payload).into_owned();
        assert_eq!(
            m.kind,
            FrameKind::Abort,
            "{cmds:?} must be refused: {reason}"
        );
        assert!(reason.contains(why), "{cmds:?}: {reason}");
        client.shutdown();
    }
    honest_session(&dir, program, weights, addrs);
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
        depth: 0,
        kind: FrameKind::Link,
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
    client_run(&dir, program, (server, helper), vec![x], 0, |_, r| {
        assert_eq!(r.inference.outputs.len(), 1);
        Ok(())
    });
}

// A client that misbehaves on purpose (the client is the untrusted side of the service).

/// Connects a client node to both daemons.
fn client_node(
    dir: &std::path::Path,
    program: &Program,
    (server, helper): (SocketAddr, SocketAddr),
) -> Node {
    let client = node(dir, Role::Client, program, false);
    client.connect(Role::Server, server).unwrap();
    client.connect(Role::Helper, helper).unwrap();
    client
}

/// One honest session with reference checks: the daemons still serve after an attack.
fn honest_session(
    dir: &std::path::Path,
    program: &'static Program,
    weights: &'static Weights,
    addrs: (SocketAddr, SocketAddr),
) {
    let full = Model::new(program, Some(weights)).unwrap();
    let x = encode_input(program, &vec![0.2; 784]);
    let expect = reference::run(&full, &x);
    let mut seen = 0;
    client_run(dir, program, addrs, vec![x.clone(), x], 1, |_, r| {
        assert_eq!(r.inference.outputs, expect);
        seen += 1;
        Ok(())
    });
    assert_eq!(seen, 2);
}

/// Waits for the next message from `from` that is not a measurement record.
fn next_frame(
    net: &mut CountingTransport<ksnn_runtime::net::tcp::TcpTransport>,
    from: Role,
) -> Result<ksnn_runtime::net::Message, ksnn_runtime::net::NetError> {
    use ksnn_runtime::net::Transport;
    net.recv(from)
}

#[test]
fn replayed_inference_id_is_refused() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::exec::session::SessionCmd;
    use ksnn_runtime::net::Transport;

    let (program, weights) = exact_program();
    let dir = certs("replay");
    let addrs = daemons(&dir, program, weights);
    let x = encode_input(program, &vec![0.1; 784]);
    let model = Model::new(program, None).unwrap();
    for ids in [[3u64, 3], [3, 2]] {
        let client = client_node(&dir, program, addrs);
        let (keys, transport) = client.open_session().unwrap().establish().unwrap();
        let mut engine = Engine::new(&model, keys);
        let mut net = CountingTransport::new(transport);
        engine.setup(&mut net).unwrap();
        // The first inference runs; the second id is a replay or goes backwards.
        net.send(Role::Server, SessionCmd::Infer { id: ids[0] }.message())
            .unwrap();
        engine.infer(&mut net, ids[0], Some(&x)).unwrap();
        for peer in [Role::Server, Role::Helper] {
            let m = next_frame(&mut net, peer).unwrap();
            assert_eq!(m.kind, FrameKind::Command, "a record from {peer}");
        }
        net.send(Role::Server, SessionCmd::Infer { id: ids[1] }.message())
            .unwrap();
        let m = next_frame(&mut net, Role::Server).unwrap();
        assert_eq!(m.kind, FrameKind::Abort, "{ids:?}: the server must refuse");
        let reason = String::from_utf8_lossy(&m.payload).into_owned();
        assert!(reason.contains("replayed or reordered id"), "{reason}");
        assert!(reason.contains(&format!("above {}", ids[0])), "{reason}");
        client.shutdown();
    }
    honest_session(&dir, program, weights, addrs);
}

#[test]
fn reused_session_id_is_refused() {
    let (program, weights) = exact_program();
    let dir = certs("reuse");
    let addrs = daemons(&dir, program, weights);
    let id = 0x5eed_0000_0000_0001;
    let model = Model::new(program, None).unwrap();
    let x = encode_input(program, &vec![0.4; 784]);
    {
        let client = client_node(&dir, program, addrs);
        let (keys, transport) = client.open_session_as(id).unwrap().establish().unwrap();
        let mut engine = Engine::new(&model, keys);
        let mut net = CountingTransport::new(transport);
        session::run_client(
            &mut engine,
            &mut net,
            std::iter::once(x.clone()),
            0,
            |_, _| Ok(()),
        )
        .unwrap();
        client.shutdown();
    }
    // The same id again, on a new connection, after the first session ended.
    let client = client_node(&dir, program, addrs);
    let err = match client.open_session_as(id).unwrap().establish() {
        Ok(_) => panic!("a reused session id was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("the id was used before"), "{err}");
    client.shutdown();
    honest_session(&dir, program, weights, addrs);
}

#[test]
fn frames_from_another_connection_are_dropped() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::exec::session::SessionCmd;
    use ksnn_runtime::net::Message;

    let (program, weights) = exact_program();
    let dir = certs("inject");
    let addrs = daemons(&dir, program, weights);
    let full = Model::new(program, Some(weights)).unwrap();
    let model = Model::new(program, None).unwrap();
    let x = encode_input(program, &vec![0.6; 784]);
    let victim = client_node(&dir, program, addrs);
    let s = victim.open_session().unwrap();
    let id = s.id;
    let (keys, transport) = s.establish().unwrap();
    // Another client with a valid P0 certificate injects frames into the victim's session.
    let intruder = client_node(&dir, program, addrs);
    for to in [Role::Server, Role::Helper] {
        intruder.send_raw(
            id,
            to,
            Message {
                kind: FrameKind::Abort,
                depth: 0,
                payload: b"forged".to_vec(),
            },
        );
        intruder.send_raw(id, to, SessionCmd::Infer { id: 99 }.message());
        intruder.send_raw(id, to, SessionCmd::Close.message());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !LOGS
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("not the session's"))
    {
        assert!(
            Instant::now() < deadline,
            "the daemons never logged the dropped frames"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The victim's session is untouched.
    let mut engine = Engine::new(&model, keys);
    let mut net = CountingTransport::new(transport);
    let mut seen = 0;
    session::run_client(
        &mut engine,
        &mut net,
        vec![x.clone(), x.clone()].into_iter(),
        0,
        |_, r| {
            assert_eq!(r.inference.outputs, reference::run(&full, &x));
            seen += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(seen, 2);
    intruder.shutdown();
    victim.shutdown();
}

/// `flush` waits until a session's messages have left the sender's memory: after it, nothing
/// is queued, and the receiver gets everything intact. To a peer that is gone it returns
/// promptly (the loop drops what it cannot deliver) instead of waiting out the timeout.
#[test]
fn flush_waits_for_the_queue_and_never_hangs() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::net::{Message, Transport};

    let (program, _) = exact_program();
    let dir = certs("flush");
    let server = node(&dir, Role::Server, program, true);
    let helper = node(&dir, Role::Helper, program, true);
    helper
        .connect(Role::Server, server.local_addr.unwrap())
        .unwrap();
    let client = client_node(
        &dir,
        program,
        (server.local_addr.unwrap(), helper.local_addr.unwrap()),
    );
    let (mut s0, mut s1) = client_and_server_session(&client, &server);
    let piece = 8 << 20;
    let pieces = 8;
    let message = |i: usize| Message {
        kind: FrameKind::Bytes,
        depth: 0,
        payload: vec![i as u8; piece],
    };
    std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            (0..pieces)
                .map(|i| {
                    let m = s1.recv(Role::Client).unwrap();
                    assert!(m.payload.iter().all(|&b| b == i as u8), "piece {i}");
                    m.payload.len()
                })
                .sum::<usize>()
        });
        for i in 0..pieces {
            s0.send(Role::Server, message(i)).unwrap();
            s0.flush(Role::Server).unwrap();
            assert_eq!(s0.unsent(Role::Server), 0, "after flush, piece {i}");
        }
        assert_eq!(reader.join().unwrap(), piece * pieces);
    });

    // The server goes away: flushes return promptly.
    drop(s1);
    server.shutdown();
    let t = Instant::now();
    for i in 0..pieces {
        let _ = s0.send(Role::Server, message(i));
        let _ = s0.flush(Role::Server);
    }
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "flushing to a gone peer took {:?}",
        t.elapsed()
    );
}

/// A simulated latency holds every session message that long after it arrives, but messages
/// in flight overlap: five sent back to back all arrive about one latency later, not five.
#[test]
fn simulated_latency_delays_each_message_once_and_keeps_pipelining() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::net::tcp::TcpTransport;
    use ksnn_runtime::net::{Message, Transport};

    let latency = Duration::from_millis(30);
    let (program, _) = exact_program();
    let dir = certs("latency");
    let [client, server, _helper] = linked_nodes(&dir, program, |_| Latency::uniform(latency));
    let (mut s0, mut s1) = client_and_server_session(&client, &server);
    let message = |i: u8| Message {
        kind: FrameKind::Bytes,
        depth: 0,
        payload: vec![i; 1000],
    };

    // One message, each way: held at least the latency.
    let one_way = |a: &mut TcpTransport, b: &mut TcpTransport, from: Role, to: Role| {
        let sent = Instant::now();
        a.send(to, message(7)).unwrap();
        let m = b.recv(from).unwrap();
        let took = sent.elapsed();
        assert_eq!(m.payload, vec![7; 1000]);
        assert!(
            took >= latency,
            "{from} -> {to} took {took:?}, under {latency:?}"
        );
    };
    one_way(&mut s0, &mut s1, Role::Client, Role::Server);
    one_way(&mut s1, &mut s0, Role::Server, Role::Client);

    // Five back to back: all within about one latency, in order.
    let sent = Instant::now();
    for i in 0..5 {
        s0.send(Role::Server, message(i)).unwrap();
    }
    for i in 0..5 {
        let m = s1.recv(Role::Client).unwrap();
        assert_eq!(m.payload[0], i);
        if i == 0 {
            assert!(
                sent.elapsed() >= latency,
                "the first came in {:?}",
                sent.elapsed()
            );
        }
    }
    let took = sent.elapsed();
    assert!(
        took >= latency && took < Duration::from_millis(120),
        "five pipelined messages took {took:?} with a latency of {latency:?}"
    );
}

/// The latency is per peer: a client that holds only the server's messages gets them late,
/// while the server, which holds nothing from the client, gets the client's at once.
#[test]
fn simulated_latency_is_per_peer() {
    use ksnn_formats::FrameKind;
    use ksnn_runtime::net::{Message, Transport};

    let held = Duration::from_millis(400);
    let (program, _) = exact_program();
    let dir = certs("latency-peer");
    // The server holds what the helper sends, not the client's; the client holds the server's.
    let [client, server, _helper] = linked_nodes(&dir, program, |role| match role {
        Role::Server => Latency::uniform(held).with(Role::Client, Duration::ZERO),
        Role::Client => Latency::ZERO.with(Role::Server, held),
        Role::Helper => Latency::ZERO,
    });
    let (mut s0, mut s1) = client_and_server_session(&client, &server);
    let message = Message {
        kind: FrameKind::Bytes,
        depth: 0,
        payload: vec![3; 100],
    };
    let sent = Instant::now();
    s0.send(Role::Server, message.clone()).unwrap();
    s1.recv(Role::Client).unwrap();
    let fast = sent.elapsed();
    assert!(fast < held * 3 / 4, "client -> server took {fast:?}");
    let sent = Instant::now();
    s1.send(Role::Client, message).unwrap();
    s0.recv(Role::Server).unwrap();
    let slow = sent.elapsed();
    assert!(
        slow >= held,
        "server -> client took {slow:?}, under {held:?}"
    );
}
