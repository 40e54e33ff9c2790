//! `ksnn-party serve`: P1 or P2 as a long-running daemon. Every client session runs on its
//! own thread, isolated by session id; a failed session is logged, its peers are told, and the
//! daemon goes on serving.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ksnn_runtime::exec::engine::Engine;
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::exec::session;
use ksnn_runtime::net::NetError;
use ksnn_runtime::net::counting::CountingTransport;
use ksnn_runtime::net::tcp::{Node, NodeEvent, Session, short_id};
use ksnn_runtime::role::Role;

use crate::config::{Config, resolve};
use crate::setup::{load_party, node_config};

pub fn serve(cfg: Config) -> Result<()> {
    let (program, weights) = load_party(&cfg)?;
    let program = Box::leak(Box::new(program));
    // The model borrows the server's tensors from the weight file: one copy, for the process.
    let weights = weights.map(|w| &*Box::leak(Box::new(w)));
    let model: &'static Model<'static> = Box::leak(Box::new(Model::new(program, weights)?));
    let role = cfg.role;
    let files = raise_fd_limit();
    let node_cfg = node_config(&cfg, program)?;
    if files > 0 && (files as usize) < node_cfg.limits.max_connections + 64 {
        eprintln!(
            "[{role}] warning: only {files} open files allowed; `max_connections` ({}) may not be reachable",
            node_cfg.limits.max_connections
        );
    }
    let session_deadline = node_cfg.limits.session_deadline;
    let node = Node::start(node_cfg).context("starting the network")?;
    let addr = node.local_addr.context("no listen address")?;
    // The first line of stdout is the address, for launchers that asked for port 0.
    // The helper links to the server before it announces itself, so a launcher that starts a
    // client as soon as both daemons listen never finds the helper unlinked. If the server is
    // not up within the timeout, the helper starts anyway and keeps trying in the background.
    let mut link = match role {
        Role::Helper => Some(ServerLink::new(resolve(
            "server",
            cfg.server.as_deref().expect("checked"),
        )?)),
        _ => None,
    };
    if let Some(link) = link.as_mut() {
        let deadline = Instant::now() + cfg.timeout;
        while !node.linked(Role::Server) && Instant::now() < deadline {
            link.keep_up(&node, role, Duration::from_millis(100));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("listening {addr}");
    eprintln!(
        "[{role}] serving `{}` ({}) on {addr}",
        program.name,
        program.content_hash().short()
    );
    loop {
        // The helper keeps its link to the server up, without ever waiting for it here.
        if let Some(link) = link.as_mut() {
            link.keep_up(&node, role, Duration::from_secs(1));
        }
        match node.next_event(Duration::from_millis(200)) {
            Some(NodeEvent::Session(s)) => {
                // The session goes to its thread through a channel, so that if the thread
                // cannot be made the session is still ours to refuse, and the daemon goes on.
                let (tx, rx) = std::sync::mpsc::channel::<Session>();
                let spawned = std::thread::Builder::new()
                    .name(format!("session-{}", short_id(s.id)))
                    .spawn(move || {
                        if let Ok(s) = rx.recv() {
                            run_session(role, model, s, session_deadline);
                        }
                    });
                match spawned {
                    Ok(_) => {
                        let _ = tx.send(s);
                    }
                    Err(e) => {
                        let id = short_id(s.id);
                        eprintln!("[{role}] refused session {id}: cannot start its thread: {e}");
                        let mut t = s.transport_only();
                        session::abort(
                            &mut t,
                            &format!("{role} is out of threads; try again later"),
                        );
                    }
                }
            }
            Some(NodeEvent::Log(line)) => eprintln!("[{role}] {line}"),
            None => {}
        }
    }
}

/// One session on its own thread: fresh keys, set-up, inferences until the client closes.
fn run_session(role: Role, model: &'static Model<'static>, s: Session, deadline: Duration) {
    let id = short_id(s.id);
    let (keys, transport) = match s.establish() {
        Ok(k) => k,
        Err(e) => return eprintln!("[{role}] session {id} did not start: {e}"),
    };
    let mut engine = Engine::new(model, keys);
    let mut net = CountingTransport::new(transport);
    match session::serve_for(&mut engine, &mut net, Some(deadline)) {
        Ok(n) => eprintln!("[{role}] session {id}: served {n} inferences"),
        Err(e) => {
            eprintln!("[{role}] session {id} failed: {e}");
            session::abort(&mut net, &session::abort_reason(&e));
        }
    }
}

/// The helper's link to the server: connects in the background and tries again after a
/// failure, so neither start-up nor serving ever waits on it.
struct ServerLink {
    addr: SocketAddr,
    last_try: Option<Instant>,
    connecting: Option<Receiver<Result<(), NetError>>>,
}

impl ServerLink {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            last_try: None,
            connecting: None,
        }
    }

    /// Collects the outcome of a connect under way (logging a failure), and starts another
    /// if the link is down and the last try is at least `retry` old.
    fn keep_up(&mut self, node: &Node, role: Role, retry: Duration) {
        if let Some(rx) = &self.connecting {
            match rx.try_recv() {
                Ok(Ok(())) | Err(TryRecvError::Disconnected) => self.connecting = None,
                Ok(Err(e)) => {
                    eprintln!(
                        "[{role}] cannot reach the server at {}: {e}; retrying",
                        self.addr
                    );
                    self.connecting = None;
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        if self.connecting.is_none()
            && !node.linked(Role::Server)
            && self.last_try.is_none_or(|t| t.elapsed() >= retry)
        {
            self.last_try = Some(Instant::now());
            self.connecting = Some(node.connect_in_background(Role::Server, self.addr));
        }
    }
}

/// Raises the open-file limit to its hard maximum, so the connection limits, not the
/// descriptor table, decide who is turned away. Returns the limit in force (0 if unknown).
fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}
