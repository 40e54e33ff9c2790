//! A session between a client and the two daemons over any transport: the client tells the
//! server which inference to run next and when to stop, the server checks and relays each
//! command to the helper, and each daemon answers every inference with its measurements so
//! the client can write a complete report. The same code runs over the in-memory network and
//! over TCP.
//!
//! Inference ids key every per-inference randomness stream, so a repeated id would reuse
//! masks (F2 in `docs/security.md`): the daemons accept only strictly increasing ids, and the
//! helper takes its commands from the server over their authenticated link, so the client
//! cannot make the two daemons run different ids either.

use ksnn_formats::FrameKind;
use serde::{Deserialize, Serialize};

use crate::exec::engine::{Engine, ExecError, Inference, Record};
use crate::net::counting::{CountingTransport, Phase, Stats};
use crate::net::{Message, NetError, Transport};
use crate::protocol::ProtocolError;
use crate::role::Role;

/// Session commands (frame kind `Command`, postcard).
#[derive(Debug, Serialize, Deserialize)]
pub enum SessionCmd {
    /// Client → server → helper: run inference `id` now (ids strictly increase).
    Infer {
        /// Keys the inference's randomness streams; above every id used before in the session.
        id: u64,
    },
    /// Client → server → helper: the session is over.
    Close,
    /// Daemon → client: what the daemon measured in the last inference (totals only).
    Record(Record),
}

impl SessionCmd {
    /// The command as a frame (public so tests can play a client that misbehaves).
    pub fn message(&self) -> Message {
        Message {
            kind: FrameKind::Command,
            depth: 0,
            payload: postcard::to_allocvec(self).expect("encodes"),
        }
    }
}

fn step_err(role: Role, what: &'static str) -> impl Fn(NetError) -> ExecError {
    move |source| ExecError::Step {
        role,
        what,
        source: Box::new(ProtocolError::Net {
            role,
            step: what,
            source,
        }),
    }
}

fn expect_cmd<T: Transport>(
    net: &mut CountingTransport<T>,
    role: Role,
    from: Role,
) -> Result<SessionCmd, ExecError> {
    net.start_phase(Phase::Control);
    let m = net
        .recv(from)
        .map_err(step_err(role, "waiting for the next command"))?;
    let bad = |what: String| {
        step_err(role, "reading a session command")(NetError::Unexpected {
            peer: from,
            expected: "a session command".into(),
            got: what,
        })
    };
    match m.kind {
        FrameKind::Command => {
            postcard::from_bytes(&m.payload).map_err(|e| bad(format!("undecodable command: {e}")))
        }
        FrameKind::Abort => Err(step_err(role, "waiting for the next command")(
            NetError::aborted(from, &m.payload),
        )),
        other => Err(bad(format!("a {other:?} frame"))),
    }
}

/// What to tell the peers when `e` ended this party's session: the error itself, except
/// that a reason a peer sent is never passed on (it names only who aborted).
pub fn abort_reason(e: &ExecError) -> String {
    let net = match e {
        ExecError::Layer { source, .. } | ExecError::Step { source, .. } => match &**source {
            ProtocolError::Net { source, .. } => Some(source),
            _ => None,
        },
        _ => None,
    };
    match net {
        Some(NetError::Aborted { peer, .. }) => {
            format!("{}: the session ended because {peer} aborted it", e.role())
        }
        _ => e.to_string(),
    }
}

/// Tells the other parties that this one gives up, so they need not wait for a timeout.
pub fn abort<T: Transport>(net: &mut T, reason: &str) {
    for peer in net.role().others() {
        let _ = net.send(
            peer,
            Message {
                kind: FrameKind::Abort,
                depth: 0,
                payload: reason.as_bytes().to_vec(),
            },
        );
    }
}

/// Daemon side (P1 or P2): set-up, then inferences until the client closes. The server takes
/// commands from the client and relays them to the helper; the helper takes them from the
/// server. Returns the number of inferences served.
pub fn serve<T: Transport>(
    engine: &mut Engine,
    net: &mut CountingTransport<T>,
) -> Result<u64, ExecError> {
    serve_for(engine, net, None)
}

/// [`serve`], refusing further commands once the session has lasted `deadline`, however
/// active it is (the per-message timeout alone would let one session live forever).
pub fn serve_for<T: Transport>(
    engine: &mut Engine,
    net: &mut CountingTransport<T>,
    deadline: Option<std::time::Duration>,
) -> Result<u64, ExecError> {
    let started = std::time::Instant::now();
    let role = net.role();
    let commander = if role == Role::Helper {
        Role::Server
    } else {
        Role::Client
    };
    // The set-up's traffic travels in the first `Record`, so the client can report it.
    let mut setup = Some(engine.setup(net)?);
    let mut served = 0;
    let mut last: Option<u64> = None;
    loop {
        let cmd = expect_cmd(net, role, commander)?;
        if let Some(d) = deadline
            && started.elapsed() > d
        {
            return Err(step_err(role, "checking the session's deadline")(
                NetError::Unexpected {
                    peer: commander,
                    expected: format!("the session to end within {:.0} s", d.as_secs_f64()),
                    got: "another command after the deadline; open a new session".into(),
                },
            ));
        }
        if let SessionCmd::Infer { id } = cmd
            && last.is_some_and(|l| id <= l)
        {
            return Err(step_err(role, "checking the inference id")(
                NetError::Unexpected {
                    peer: commander,
                    expected: format!("an inference id above {}", last.unwrap_or(0)),
                    got: format!("{id}: a replayed or reordered id would reuse masks, refused"),
                },
            ));
        }
        if role == Role::Server && !matches!(cmd, SessionCmd::Record(_)) {
            net.send(Role::Helper, cmd.message())
                .map_err(step_err(role, "relaying the command to the helper"))?;
        }
        match cmd {
            SessionCmd::Infer { id } => {
                last = Some(id);
                let mut record = engine.infer(net, id, None)?.record;
                // Only totals leave a daemon: per-layer times would time the server's work.
                record.layer_seconds.clear();
                if let Some(s) = setup.take() {
                    record.stats.absorb(s);
                }
                net.start_phase(Phase::Control);
                net.send(Role::Client, SessionCmd::Record(record).message())
                    .map_err(step_err(role, "sending the measurements"))?;
                served += 1;
            }
            SessionCmd::Close => return Ok(served),
            SessionCmd::Record(_) => {
                return Err(step_err(role, "reading a session command")(
                    NetError::Unexpected {
                        peer: commander,
                        expected: "Infer or Close".into(),
                        got: "Record".into(),
                    },
                ));
            }
        }
    }
}

/// One inference as the client saw it, with the daemons' measurements.
pub struct ClientResult {
    /// P0's own result: the revealed outputs and its record.
    pub inference: Inference,
    /// P1's and P2's records.
    pub daemons: [Record; 2],
}

/// Client side (P0): set-up, then one inference per input; `each` sees every result as it
/// arrives. Returns the session set-up traffic.
pub fn run_client<T: Transport>(
    engine: &mut Engine,
    net: &mut CountingTransport<T>,
    inputs: impl Iterator<Item = Vec<u64>>,
    mut each: impl FnMut(u64, ClientResult) -> Result<(), ExecError>,
) -> Result<Stats, ExecError> {
    let role = Role::Client;
    let setup = engine.setup(net)?;
    for (id, x) in inputs.enumerate() {
        let id = id as u64;
        net.start_phase(Phase::Control);
        net.send(Role::Server, SessionCmd::Infer { id }.message())
            .map_err(step_err(role, "starting an inference"))?;
        let inference = engine.infer(net, id, Some(&x))?;
        let mut daemons = [Record::default(), Record::default()];
        for (k, peer) in [Role::Server, Role::Helper].into_iter().enumerate() {
            match expect_cmd(net, role, peer)? {
                SessionCmd::Record(r) => daemons[k] = r,
                _ => {
                    return Err(step_err(role, "collecting measurements")(
                        NetError::Unexpected {
                            peer,
                            expected: "Record".into(),
                            got: "another command".into(),
                        },
                    ));
                }
            }
        }
        each(id, ClientResult { inference, daemons })?;
    }
    net.start_phase(Phase::Control);
    net.send(Role::Server, SessionCmd::Close.message())
        .map_err(step_err(role, "closing the session"))?;
    Ok(setup)
}
