//! `ksnn-tools bench net`: how fast bytes move between two parties, over TLS on loopback and
//! over the in-memory network, with the real transports.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ksnn_formats::FrameKind;
use ksnn_formats::example::tiny_cnn;
use ksnn_runtime::net::mem;
use ksnn_runtime::net::tcp::{Node, NodeConfig, NodeEvent};
use ksnn_runtime::net::tls::{Identity, generate};
use ksnn_runtime::net::{Message, Transport};
use ksnn_runtime::role::Role;

const CHUNK: usize = 8 << 20;

fn pump(tx: &mut dyn Transport, rx: &mut dyn Transport, total: usize) -> Result<f64> {
    let to = rx.role();
    let from = tx.role();
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let h = s.spawn(move || -> Result<usize> {
            let mut got = 0;
            while got < total {
                got += rx.recv(from)?.payload.len();
            }
            Ok(got)
        });
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            tx.send(
                to,
                Message {
                    kind: FrameKind::Bytes,
                    depth: 0,
                    payload: vec![0xA5; n],
                },
            )?;
            sent += n;
        }
        let got = h
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        if got != total {
            bail!("received {got} bytes, sent {total}");
        }
        Ok(())
    })?;
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Median round-trip seconds of `n` one-word messages bounced between two parties: what
/// each protocol round costs on this transport beyond its bytes.
fn ping_pong(a: &mut dyn Transport, b: &mut dyn Transport, n: usize) -> Result<f64> {
    let (ra, rb) = (a.role(), b.role());
    std::thread::scope(|s| -> Result<f64> {
        let h = s.spawn(move || -> Result<()> {
            for _ in 0..n {
                let m = b.recv(ra)?;
                b.send(ra, m)?;
            }
            Ok(())
        });
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            a.send(
                rb,
                Message {
                    kind: FrameKind::Bytes,
                    depth: 0,
                    payload: vec![0; 8],
                },
            )?;
            a.recv(rb)?;
            times.push(t.elapsed().as_secs_f64());
        }
        h.join()
            .map_err(|_| anyhow::anyhow!("the echo side panicked"))??;
        times.sort_by(f64::total_cmp);
        Ok(times[n / 2])
    })
}

pub fn net(mib: usize) -> Result<()> {
    let total = mib << 20;
    let [a, b, _c] = mem::triple(Duration::from_secs(60));
    let (mut a, mut b) = (a, b);
    let mem_rate = pump(&mut a, &mut b, total)?;
    println!("in-memory : {mib} MiB P0 -> P1 at {mem_rate:.0} MB/s");
    let rtt = ping_pong(&mut a, &mut b, 1000)?;
    println!(
        "in-memory : round trip {:.1} µs (median of 1000)",
        rtt * 1e6
    );

    let dir = std::env::temp_dir().join(format!("ksnn-bench-net-{}", std::process::id()));
    generate(&dir)?;
    let (program, _) = tiny_cnn(1);
    let cfg = |role, listen: bool| -> Result<NodeConfig> {
        Ok(NodeConfig {
            identity: Identity::from_dir(role, &dir)?,
            listen: listen.then(|| "127.0.0.1:0".parse().expect("addr")),
            program_hash: program.content_hash(),
            timeout: Duration::from_secs(60),
            max_payload: 64 << 20,
            max_message: 1 << 30,
            limits: Default::default(),
            latency: ksnn_runtime::net::tcp::Latency::ZERO,
        })
    };
    let server = Node::start(cfg(Role::Server, true)?)?;
    let helper = Node::start(cfg(Role::Helper, true)?)?;
    helper.connect(Role::Server, server.local_addr.context("bound")?)?;
    let client = Node::start(cfg(Role::Client, false)?)?;
    client.connect(Role::Server, server.local_addr.context("bound")?)?;
    client.connect(Role::Helper, helper.local_addr.context("bound")?)?;
    let mut s0 = client.open_session()?.transport_only();
    let mut s1 = loop {
        match server.next_event(Duration::from_secs(10)) {
            Some(NodeEvent::Session(s)) => break s.transport_only(),
            Some(NodeEvent::Log(_)) => {}
            None => bail!("the server saw no session"),
        }
    };
    let tls_rate = pump(&mut s0, &mut s1, total)?;
    println!("TLS (mio, loopback): {mib} MiB P0 -> P1 at {tls_rate:.0} MB/s");
    let rtt = ping_pong(&mut s0, &mut s1, 1000)?;
    println!(
        "TLS (mio, loopback): round trip {:.1} µs (median of 1000)",
        rtt * 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
