//! All three parties in one process, as threads over the in-memory network: tests,
//! benchmarks and the compile-time cross-check use it. A failing party drops its channels,
//! so the others stop with a "disconnected" error instead of waiting.

use std::time::Duration;

use ksnn_formats::{Program, Weights};

use crate::exec::engine::{Engine, ExecError, Inference};
use crate::exec::model::Model;
use crate::net::counting::{CountingTransport, Stats};
use crate::net::mem;
use crate::prf::Keys;
use crate::role::Role;

/// What one party did in a session.
#[derive(Debug)]
pub struct PartyRun {
    /// The party whose measurements and results these are.
    pub role: Role,
    /// Traffic of the session set-up (P1's masked weights to P2).
    pub setup: Stats,
    /// One result per input, in input order.
    pub inferences: Vec<Inference>,
}

impl PartyRun {
    /// The per-inference records, for [`crate::exec::report::build`].
    pub fn records(&self) -> Vec<crate::exec::engine::Record> {
        self.inferences.iter().map(|i| i.record.clone()).collect()
    }
}

/// Options for [`run_three`].
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Keep every tensor's shares (tests).
    pub keep_shares: bool,
    /// How long a party waits for a message before failing.
    pub timeout: Duration,
    /// Offline segments of at most this many bytes instead of
    /// [`crate::exec::model::OFFLINE_SEGMENT_BYTES`] (tests cut small models into many).
    pub segment_budget: Option<u64>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            keep_shares: false,
            timeout: Duration::from_secs(60),
            segment_budget: None,
        }
    }
}

/// Runs `f` once per role, each on its own thread over a fresh in-memory network, and
/// returns the three results in role order: the one three-party harness of the crate
/// (`run_three`, the tests' `testing::on_three`, benchmarks).
pub fn on_three_with<T: Send>(
    keys: &[Keys; 3],
    timeout: Duration,
    f: impl Fn(&Keys, mem::MemTransport) -> T + Sync,
) -> [T; 3] {
    let nets = mem::triple(timeout);
    std::thread::scope(|s| {
        let handles: Vec<_> = nets
            .into_iter()
            .zip(keys)
            .map(|(net, k)| {
                let f = &f;
                s.spawn(move || f(k, net))
            })
            .collect();
        let mut it = handles
            .into_iter()
            .map(|h| h.join().expect("party thread panicked"));
        [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
    })
}

/// Runs one session with one inference per input (encoded) and returns each party's record,
/// or the first error (a party's own error is preferred over the "disconnected" it causes).
pub fn run_three(
    program: &Program,
    weights: &Weights,
    inputs: &[Vec<u64>],
    keys: [Keys; 3],
    options: &LocalOptions,
) -> Result<[PartyRun; 3], ExecError> {
    let model_error = |role| move |source| ExecError::Model { role, source };
    let mut client_model = Model::new(program, None).map_err(model_error(Role::Client))?;
    let mut server_model = Model::new(program, Some(weights)).map_err(model_error(Role::Server))?;
    if let Some(budget) = options.segment_budget {
        let held = program
            .offline_held_bytes()
            .map_err(model_error(Role::Client))?;
        client_model.segments = Model::segments(&held, budget);
        server_model.segments = client_model.segments.clone();
    }
    let results: [Result<PartyRun, ExecError>; 3] =
        on_three_with(&keys, options.timeout, |k, net| {
            let role = k.role();
            let model = if role == Role::Server {
                &server_model
            } else {
                &client_model
            };
            let mut engine = Engine::new(model, k.clone());
            engine.keep_shares = options.keep_shares;
            let mut net = CountingTransport::new(net);
            let setup = engine.setup(&mut net)?;
            let mut inferences = Vec::with_capacity(inputs.len());
            for (i, x) in inputs.iter().enumerate() {
                let input = (role == Role::Client).then_some(x.as_slice());
                inferences.push(engine.infer(&mut net, i as u64, input)?);
            }
            Ok(PartyRun {
                role,
                setup,
                inferences,
            })
        });
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(run) => ok.push(run),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let root = errors
            .iter()
            .position(|e| !e.to_string().contains("disconnected"))
            .unwrap_or(0);
        return Err(errors.swap_remove(root));
    }
    let mut it = ok.into_iter();
    Ok([it.next().unwrap(), it.next().unwrap(), it.next().unwrap()])
}
