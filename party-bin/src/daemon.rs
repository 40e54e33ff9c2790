//! `ksnn-party serve`: P1 or P2 as a long-running daemon. Every client session runs on its
//! own thread, isolated by session id; a failed session is logged, its peers are told, and the
//! daemon goes on serving.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ksnn_runtime::exec::engine::Engine;
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::exec::session;
use ksnn_runtime::net::counting::CountingTransport;
use ksnn_runtime::net::tcp::node::short_id;
use ksnn_runtime::net::tcp::{Node, NodeEvent};
use ksnn_runtime::role::Role;

use crate::config::{Config, resolve};
use crate::setup::{load_party, node_config};

pub fn serve(cfg: Config) -> Result<()> {
    let (program, weights) = load_party(&cfg)?;
    let program = Box::leak(Box::new(program));
    let weights = weights.map(|w| &*Box::leak(Box::new(w)));
    let model: &'static Model<'static> = Box::leak(Box::new(Model::new(program, weights)?));
    let role = cfg.role;
    let node = Node::start(node_config(&cfg, program)?).context("starting the network")?;
    let addr = node.local_addr.context("no listen address")?;
    // The first line of stdout is the address, for launchers that asked for port 0.
    println!("listening {addr}");
    eprintln!(
        "[{role}] serving `{}` ({}) on {addr}",
        program.name,
        program.content_hash().short()
    );
    let server = match role {
        Role::Helper => Some(resolve("server", cfg.server.as_deref().expect("checked"))?),
        _ => None,
    };
    let mut last_try: Option<Instant> = None;
    loop {
        // The helper keeps its link to the server up.
        if let Some(addr) = server
            && !node.linked(Role::Server)
            && last_try.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            last_try = Some(Instant::now());
            if let Err(e) = node.connect(Role::Server, addr) {
                eprintln!("[{role}] cannot reach the server at {addr}: {e}; retrying");
            }
        }
        match node.next_event(Duration::from_millis(200)) {
            Some(NodeEvent::Session(s)) => {
                let id = s.id;
                std::thread::Builder::new()
                    .name(format!("session-{}", short_id(id)))
                    .spawn(move || {
                        let id = short_id(id);
                        let (keys, transport) = match s.establish() {
                            Ok(k) => k,
                            Err(e) => return eprintln!("[{role}] session {id} did not start: {e}"),
                        };
                        let mut engine = Engine::new(model, keys);
                        let mut net = CountingTransport::new(transport);
                        match session::serve(&mut engine, &mut net) {
                            Ok(n) => eprintln!("[{role}] session {id}: served {n} inferences"),
                            Err(e) => {
                                eprintln!("[{role}] session {id} failed: {e}");
                                session::abort(&mut net, &format!("{e}"));
                            }
                        }
                    })?;
            }
            Some(NodeEvent::Log(line)) => eprintln!("[{role}] {line}"),
            None => {}
        }
    }
}
