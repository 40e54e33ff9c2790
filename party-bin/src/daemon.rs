//! `ksnn-party serve`: P1 or P2 as a long-running daemon. Every client session runs on its
//! own thread, isolated by session id; a failed session is logged, its peers are told, and the
//! daemon goes on serving.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ksnn_runtime::exec::engine::Engine;
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::exec::session;
use ksnn_runtime::net::NetError;
use ksnn_runtime::net::counting::CountingTransport;
use ksnn_runtime::net::tcp::node::short_id;
use ksnn_runtime::net::tcp::{Node, NodeEvent, Session};
use ksnn_runtime::role::Role;

use crate::config::{Config, resolve};
use crate::setup::{load_party, node_config};

pub fn serve(cfg: Config) -> Result<()> {
    let (program, weights) = load_party(&cfg)?;
    let program = Box::leak(Box::new(program));
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
    let node_deadline = node_cfg.limits.session_deadline;
    let node = Node::start(node_cfg).context("starting the network")?;
    let addr = node.local_addr.context("no listen address")?;
    // The first line of stdout is the address, for launchers that asked for port 0.
    // The helper links to the server before it announces itself, so a launcher that starts a
    // client as soon as both daemons listen never finds the helper unlinked. If the server is
    // not up within the timeout, the helper starts anyway and keeps trying in the background.
    if role == Role::Helper {
        let at = resolve("server", cfg.server.as_deref().expect("checked"))?;
        let deadline = Instant::now() + cfg.timeout;
        while !node.linked(Role::Server) && Instant::now() < deadline {
            if node.connect(Role::Server, at).is_err() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
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
    let mut connecting: Option<std::sync::mpsc::Receiver<Result<(), NetError>>> = None;
    let deadline = node_deadline;
    loop {
        // The helper keeps its link to the server up, without ever waiting for it here.
        if let Some(addr) = server
            && connecting.is_none()
            && !node.linked(Role::Server)
            && last_try.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            last_try = Some(Instant::now());
            connecting = Some(node.connect_in_background(Role::Server, addr));
        }
        if let Some(rx) = &connecting {
            match rx.try_recv() {
                Ok(Ok(())) => connecting = None,
                Ok(Err(e)) => {
                    eprintln!(
                        "[{role}] cannot reach the server at {}: {e}; retrying",
                        server.expect("only the helper connects")
                    );
                    connecting = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => connecting = None,
            }
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
                            run_session(role, model, s, deadline);
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

/// Raises the open-file limit to its hard maximum, so the connection limits, not the
/// descriptor table, decide who is turned away. Returns the limit in force.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}
