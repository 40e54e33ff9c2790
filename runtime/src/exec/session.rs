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
//!
//! Offline ahead: `Prepare { id }` runs inference `id`'s offline pass and keeps it, so that
//! when the input comes only the online pass is left. Prepared ids strictly increase too,
//! each is consumed by the `Infer` of the same id and by nothing else, and a daemon holds at
//! most [`MAX_AHEAD`] of them: a client cannot replay material or make a daemon hoard it.

use ksnn_formats::FrameKind;
use serde::{Deserialize, Serialize};

use crate::exec::engine::{Engine, ExecError, Inference, Prepared, Record};
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
    /// Client → server → helper: run inference `id`'s offline pass now and keep it for its
    /// `Infer` (ids strictly increase; at most [`MAX_AHEAD`] kept).
    Prepare {
        /// The inference the material is for; above every id prepared or run before.
        id: u64,
    },
}

/// Most inferences a daemon keeps prepared for a session (each holds a pass's material).
pub const MAX_AHEAD: usize = 4;

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
    let mut order = IdOrder::default();
    let mut prepared: std::collections::VecDeque<Prepared> = Default::default();
    loop {
        let cmd = match expect_cmd(net, role, commander) {
            Ok(cmd) => cmd,
            Err(e) if role == Role::Helper && client_closed_first(net, &e) => return Ok(served),
            Err(e) => return Err(e),
        };
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
        order
            .check(&cmd, &prepared)
            .map_err(|(what, expected, got)| {
                step_err(role, what)(NetError::Unexpected {
                    peer: commander,
                    expected,
                    got,
                })
            })?;
        if role == Role::Server && !matches!(cmd, SessionCmd::Record(_)) {
            net.send(Role::Helper, cmd.message())
                .map_err(step_err(role, "relaying the command to the helper"))?;
        }
        match cmd {
            SessionCmd::Prepare { id } => prepared.push_back(engine.offline(net, id)?),
            SessionCmd::Infer { id } => {
                let ready = match prepared.pop_front() {
                    Some(p) => p,
                    None => engine.offline(net, id)?,
                };
                let mut record = engine.online(net, ready, None)?.record;
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
            // Refused by `IdOrder::check` above.
            SessionCmd::Record(_) => {}
        }
    }
}

/// Whether the helper's wait for P1's next command failed only because the client left
/// right after closing: the client sends its `Close` to P2 too, and its connection delivers
/// that before its end, so when the client's disconnect overtakes P1's relayed `Close`, the
/// client's own is already in P2's inbox. Anything else there (no `Close`) is a failure.
fn client_closed_first<T: Transport>(net: &mut CountingTransport<T>, e: &ExecError) -> bool {
    let client_gone = matches!(
        e,
        ExecError::Step { source, .. } if matches!(
            &**source,
            ProtocolError::Net { source: NetError::Disconnected { peer: Role::Client }, .. }
        )
    );
    // The disconnect reached every inbox of the session, so this returns at once.
    client_gone
        && net.recv(Role::Client).is_ok_and(|m| {
            m.kind == FrameKind::Command
                && matches!(postcard::from_bytes(&m.payload), Ok(SessionCmd::Close))
        })
}

/// The order rules on inference ids, which keep every id's masks to one use.
#[derive(Default)]
struct IdOrder {
    /// The last id run online.
    inferred: Option<u64>,
    /// The last id prepared.
    prepared: Option<u64>,
}

impl IdOrder {
    /// Accepts `cmd` (and records its id) or says why not: `(step, expected, got)`.
    /// `Prepare` needs an id above all before and room among the [`MAX_AHEAD`]; `Infer` an id
    /// above every one run, and it is the next prepared one if any is kept (else above every
    /// one prepared, so no id's offline pass ever runs twice).
    fn check(
        &mut self,
        cmd: &SessionCmd,
        kept: &std::collections::VecDeque<Prepared>,
    ) -> Result<(), (&'static str, String, String)> {
        // The lowest id still allowed, in u128: after u64::MAX nothing is (no wrap to 0).
        let above = |v: Option<u64>| v.map_or(0, |v| u128::from(v) + 1);
        let floor = above(self.inferred).max(above(self.prepared));
        match *cmd {
            SessionCmd::Prepare { id } => {
                if u128::from(id) < floor {
                    return Err((
                        "checking the inference id",
                        format!("an id to prepare of at least {floor}"),
                        format!("{id}: a replayed or reordered id would reuse masks, refused"),
                    ));
                }
                if kept.len() >= MAX_AHEAD {
                    return Err((
                        "checking the inferences prepared ahead",
                        format!("at most {MAX_AHEAD} inferences prepared ahead"),
                        format!("a Prepare for {id} with {} kept", kept.len()),
                    ));
                }
                self.prepared = Some(id);
            }
            SessionCmd::Infer { id } => {
                let want = match kept.front() {
                    Some(p) => (p.inference() == id).then_some(id),
                    None => (u128::from(id) >= floor).then_some(id),
                };
                if want.is_none() {
                    let expected = match kept.front() {
                        Some(p) => format!("the next prepared inference, {}", p.inference()),
                        None if floor == 0 => "any inference id".into(),
                        None => format!("an inference id above {}", floor - 1),
                    };
                    return Err((
                        "checking the inference id",
                        expected,
                        format!("{id}: a replayed or reordered id would reuse masks, refused"),
                    ));
                }
                self.inferred = Some(id);
            }
            SessionCmd::Close => {}
            SessionCmd::Record(_) => {
                return Err((
                    "reading a session command",
                    "Infer, Prepare or Close".into(),
                    "Record".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The client's inferences prepared ahead: ids `next − kept.len() .. next`, none at or past
/// `end` (the number of inputs), so no offline pass is wasted.
struct Ahead {
    kept: std::collections::VecDeque<Prepared>,
    next: u64,
    end: u64,
}

impl Ahead {
    /// Prepares every id below `until` (and `end`) not prepared yet, telling the daemons.
    fn prepare_until<T: Transport>(
        &mut self,
        engine: &Engine,
        net: &mut CountingTransport<T>,
        until: u64,
    ) -> Result<(), ExecError> {
        while self.next < until.min(self.end) {
            net.start_phase(Phase::Control);
            net.send(
                Role::Server,
                SessionCmd::Prepare { id: self.next }.message(),
            )
            .map_err(step_err(Role::Client, "preparing an inference ahead"))?;
            self.kept.push_back(engine.offline(net, self.next)?);
            self.next += 1;
        }
        Ok(())
    }

    /// Inference `id`'s material: prepared ahead, or its offline pass run now (the daemons
    /// do the same on `Infer`).
    fn take<T: Transport>(
        &mut self,
        engine: &Engine,
        net: &mut CountingTransport<T>,
        id: u64,
    ) -> Result<Prepared, ExecError> {
        match self.kept.pop_front() {
            Some(p) => Ok(p),
            None => {
                self.next = self.next.max(id + 1);
                engine.offline(net, id)
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
/// arrives. With `ahead` > 0 the offline passes of the next `ahead` inferences run before
/// their inputs are taken up (after `each` returns), so an input that arrives later waits
/// only for its online pass. Returns the session set-up traffic.
pub fn run_client<T: Transport>(
    engine: &mut Engine,
    net: &mut CountingTransport<T>,
    inputs: impl ExactSizeIterator<Item = Vec<u64>>,
    ahead: usize,
    mut each: impl FnMut(u64, ClientResult) -> Result<(), ExecError>,
) -> Result<Stats, ExecError> {
    let role = Role::Client;
    let n = inputs.len() as u64;
    let depth = ahead.min(MAX_AHEAD) as u64;
    let setup = engine.setup(net)?;
    let mut ahead = Ahead {
        kept: Default::default(),
        next: 0,
        end: n,
    };
    ahead.prepare_until(engine, net, depth)?;
    for (id, x) in inputs.enumerate() {
        let id = id as u64;
        net.start_phase(Phase::Control);
        net.send(Role::Server, SessionCmd::Infer { id }.message())
            .map_err(step_err(role, "starting an inference"))?;
        let ready = ahead.take(engine, net, id)?;
        let inference = engine.online(net, ready, Some(&x))?;
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
        ahead.prepare_until(engine, net, id + 1 + depth)?;
    }
    net.start_phase(Phase::Control);
    // P1 relays it to P2; P2 also gets it directly, in case this party's disconnect reaches
    // P2 before the relay does (`client_closed_first`).
    for peer in [Role::Server, Role::Helper] {
        net.send(peer, SessionCmd::Close.message())
            .map_err(step_err(role, "closing the session"))?;
    }
    Ok(setup)
}
