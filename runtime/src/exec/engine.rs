//! The secure interpreter: walks the program as one role. Per session it runs the set-up
//! (the server's masked weights); per inference an offline pass (everything that does not
//! depend on the input: the helper's triples, P0's precomputed products) and an online pass.
//! Traffic and rounds are attributed per phase and per layer by the counting transport.

use std::time::Instant;

use thiserror::Error;

use crate::exec::model::Model;
use crate::exec::secure::{Pass, Pre, Secure};
use crate::net::Transport;
use crate::net::counting::{CountingTransport, Phase, Stats};
use crate::prf::{Addr, Keys, Label, Scope};
use crate::protocol::{Party, ProtocolError, linear, share};
use crate::role::Role;

/// An inference failed somewhere; says who, where and what.
#[derive(Debug, Error)]
pub enum ExecError {
    /// A layer's protocol failed; the layer's position and name locate it in the program.
    #[error("{role}, {phase:?} phase, layer {index} `{name}` ({op}): {source}")]
    Layer {
        /// The party that saw the failure.
        role: Role,
        /// The pass the layer was in: set-up, offline or online.
        phase: Phase,
        /// The layer's position in the program, from 0.
        index: usize,
        /// The layer's name in the program.
        name: String,
        /// The layer's op kind, e.g. `conv2d`.
        op: &'static str,
        /// The protocol's error (boxed to keep `ExecError` small).
        source: Box<ProtocolError>,
    },
    /// A step outside every layer failed: revealing the output or a session command.
    #[error("{role}, {what}: {source}")]
    Step {
        /// The party that saw the failure.
        role: Role,
        /// What the party was doing, e.g. `revealing the output`.
        what: &'static str,
        /// The protocol's or the transport's error (boxed to keep `ExecError` small).
        source: Box<ProtocolError>,
    },
    /// P0 could not write a decoded output, such as a segmentation map, to disk.
    #[error("writing an output: {what}")]
    Output {
        /// The file and the underlying error.
        what: String,
    },
    /// P0's input does not have the program's input size.
    #[error("{role}: input has {got} values, the program takes {expected}")]
    InputSize {
        /// The party given the input (P0).
        role: Role,
        /// Elements of the program's input tensor.
        expected: usize,
        /// Elements passed.
        got: usize,
    },
    /// The program or the weights cannot be run (refused by `Model::new`).
    #[error("{role}: {source}")]
    Model {
        /// The party that loaded them.
        role: Role,
        /// What is wrong.
        source: ksnn_formats::FormatError,
    },
}

impl ExecError {
    /// The party that reports the error (output errors are the client's).
    pub fn role(&self) -> Role {
        match self {
            ExecError::Layer { role, .. }
            | ExecError::Step { role, .. }
            | ExecError::InputSize { role, .. }
            | ExecError::Model { role, .. } => *role,
            ExecError::Output { .. } => Role::Client,
        }
    }
}

/// What one inference gave this party.
#[derive(Debug, Default)]
pub struct Inference {
    /// P0 only: the reconstructed outputs, in program order.
    pub outputs: Vec<Vec<u64>>,
    /// With `keep_shares`: this party's share of every tensor (tests).
    pub shares: Vec<Vec<u64>>,
    /// This party's timings and traffic in the inference.
    pub record: Record,
}

/// What one party measured in one inference; daemons send theirs to the client for its report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Wall-clock seconds of the offline pass: dealing and precomputing, before the input.
    pub offline_seconds: f64,
    /// Wall-clock seconds from sharing the input to revealing the output.
    pub online_seconds: f64,
    /// Per-layer online seconds.
    pub layer_seconds: Vec<f64>,
    /// This party's bytes, messages and depths per phase and layer, counted since the set-up
    /// or its previous record (control traffic included; reports leave it out). A daemon's
    /// first record of a session also carries its set-up traffic (phase `Setup`).
    pub stats: Stats,
}

/// An inference whose offline pass has run (of its first segment, [`Model::segments`]): its
/// material, waiting for the online pass. Deliberately not `Clone`: the masks in it must serve
/// one online pass only.
pub struct Prepared {
    inference: u64,
    stashes: Vec<Vec<Pre>>,
    seconds: f64,
    stats: Stats,
    /// The offline phase's depth at the end of the pass, where a later segment resumes.
    depth: u32,
}

impl Prepared {
    /// The inference id the material belongs to.
    pub fn inference(&self) -> u64 {
        self.inference
    }
}

/// One party's interpreter for one session.
pub struct Engine<'m> {
    model: &'m Model<'m>,
    role: Role,
    keys: Keys,
    /// What each linear layer keeps for the session (P2's masked weights B, device copies).
    linear: Vec<linear::Session>,
    /// Keep every tensor's share (for tests).
    pub keep_shares: bool,
}

impl<'m> Engine<'m> {
    /// An interpreter for the party that holds `keys`; P1's `model` must carry the weights.
    /// Run [`Engine::setup`] once before the first inference.
    pub fn new(model: &'m Model<'m>, keys: Keys) -> Self {
        Self {
            model,
            role: keys.role(),
            keys,
            linear: (0..model.program.layers.len())
                .map(|_| linear::Session::default())
                .collect(),
            keep_shares: false,
        }
    }

    /// This party at `label` of inference `inference`'s address tree.
    fn party<'a>(&'a self, net: &'a mut dyn Transport, inference: u64, label: Label) -> Party<'a> {
        Party {
            role: self.role,
            keys: &self.keys,
            net,
            at: Addr::root(Scope::Inference(inference)).child(label),
            config: self.model.program.protocol,
            frac_bits: self.model.program.fixed_point.frac_bits,
        }
    }

    /// What layer `i` keeps for the session, from set-up.
    fn session(&self, i: usize) -> Option<&linear::Session> {
        self.linear.get(i)
    }

    fn layer_err(&self, phase: Phase, index: usize) -> impl Fn(ProtocolError) -> ExecError + '_ {
        move |source| {
            let layer = &self.model.program.layers[index];
            ExecError::Layer {
                role: self.role,
                phase,
                index,
                name: layer.name.clone(),
                op: layer.op.kind(),
                source: Box::new(source),
            }
        }
    }

    /// Session set-up: the server sends P2 its masked weights, once. Returns its traffic.
    pub fn setup<T: Transport>(
        &mut self,
        net: &mut CountingTransport<T>,
    ) -> Result<Stats, ExecError> {
        net.start_phase(Phase::Setup);
        for (i, step) in self.model.steps.iter().enumerate() {
            let Some(map) = step.linear_map() else {
                continue;
            };
            net.set_slot((Phase::Setup, Some(i as u32)));
            // The weight masks live for the session: `linear` draws them in session scope.
            let mut p = self.party(net, 0, Label::Layer(i as u32));
            let kept = linear::setup(&mut p, map, step.weight())
                .map_err(self.layer_err(Phase::Setup, i))?;
            self.linear[i] = kept;
        }
        Ok(net.take_stats())
    }

    /// One inference: its offline pass, then its online pass. P0 passes the encoded input;
    /// the others `None`.
    pub fn infer<T: Transport>(
        &self,
        net: &mut CountingTransport<T>,
        inference: u64,
        input: Option<&[u64]>,
    ) -> Result<Inference, ExecError> {
        self.check_input(input)?;
        let prepared = self.offline(net, inference)?;
        self.online(net, prepared, input)
    }

    /// The input's size against the program's; returns the program's.
    fn check_input(&self, input: Option<&[u64]>) -> Result<usize, ExecError> {
        let n_in = self.model.shapes[0].elements() as usize;
        match input {
            Some(x) if x.len() != n_in => Err(ExecError::InputSize {
                role: self.role,
                expected: n_in,
                got: x.len(),
            }),
            _ => Ok(n_in),
        }
    }

    /// Inference `inference`'s offline pass: every step with nothing to compute on, dealing
    /// and precomputing what does not depend on the input. It can run while the parties wait
    /// for the input ("offline ahead"); [`Engine::online`] then consumes it, once. A model in
    /// several segments deals its first one here and the others in the online pass.
    pub fn offline<T: Transport>(
        &self,
        net: &mut CountingTransport<T>,
        inference: u64,
    ) -> Result<Prepared, ExecError> {
        let started = Instant::now();
        net.start_phase(Phase::Offline);
        let stashes = self.deal(net, inference, self.model.segments[0].clone())?;
        Ok(Prepared {
            inference,
            stashes,
            seconds: started.elapsed().as_secs_f64(),
            depth: net.depth(),
            stats: net.take_stats(),
        })
    }

    /// The offline steps of `layers`: one stash per layer (empty for the client's own).
    fn deal<T: Transport>(
        &self,
        net: &mut CountingTransport<T>,
        inference: u64,
        layers: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<Pre>>, ExecError> {
        let mut stashes = Vec::with_capacity(layers.len());
        for i in layers {
            let mut stash = Vec::new();
            if !self.model.client_side[i] {
                net.set_slot((Phase::Offline, Some(i as u32)));
                let p = self.party(net, inference, Label::Layer(i as u32));
                let mut a = Secure::new(p, Pass::Offline(&mut stash), self.session(i));
                let empty = vec![&[][..]; self.model.program.layers[i].inputs.len()];
                self.model.steps[i]
                    .eval(&mut a, &empty)
                    .map_err(self.layer_err(Phase::Offline, i))?;
            }
            stashes.push(stash);
        }
        Ok(stashes)
    }

    /// The online pass of a prepared inference. P0 passes the encoded input; the others
    /// `None`. The record carries the offline pass's time and traffic too.
    pub fn online<T: Transport>(
        &self,
        net: &mut CountingTransport<T>,
        prepared: Prepared,
        input: Option<&[u64]>,
    ) -> Result<Inference, ExecError> {
        let model = self.model;
        let layers = &model.program.layers;
        let n_in = self.check_input(input)?;
        let Prepared {
            inference,
            stashes,
            seconds: mut offline_seconds,
            stats: offline_stats,
            depth: mut offline_depth,
        } = prepared;

        // Online: the same steps on the shares; later segments' material dealt on the way.
        let started = Instant::now();
        let mut dealing = 0.0;
        let mut stashes = stashes.into_iter();
        let mut later = model.segments[1..].iter().peekable();
        net.start_phase(Phase::Online);
        let mut tensors: Vec<Vec<u64>> = Vec::with_capacity(model.shapes.len());
        {
            let mut p = self.party(net, inference, Label::Input);
            tensors.push(share::share_input(&mut p, input, n_in));
        }
        let mut layer_seconds = Vec::with_capacity(layers.len());
        for (i, step) in model.steps.iter().enumerate() {
            if let Some(segment) = later.next_if(|s| s.start == i) {
                let t0 = Instant::now();
                let online_depth = net.depth();
                net.resume_phase(Phase::Offline, offline_depth);
                stashes = self.deal(net, inference, segment.clone())?.into_iter();
                offline_depth = net.depth();
                net.resume_phase(Phase::Online, online_depth);
                let t = t0.elapsed().as_secs_f64();
                (offline_seconds, dealing) = (offline_seconds + t, dealing + t);
            }
            let stash = stashes.next().expect("one stash per layer");
            if model.client_side[i] {
                tensors.push(Vec::new());
                layer_seconds.push(0.0);
                continue;
            }
            let t0 = Instant::now();
            net.set_slot((Phase::Online, Some(i as u32)));
            let p = self.party(net, inference, Label::Layer(i as u32));
            let mut a = Secure::new(p, Pass::Online(stash.into_iter()), self.session(i));
            let y = step
                .eval(&mut a, &model.inputs(i, &tensors))
                .map_err(self.layer_err(Phase::Online, i))?;
            tensors.push(y);
            if !self.keep_shares {
                for &t in &layers[i].inputs {
                    if model.last_use[t as usize] == i {
                        tensors[t as usize] = Vec::new();
                    }
                }
            }
            layer_seconds.push(t0.elapsed().as_secs_f64());
        }

        net.set_slot((Phase::Online, None));
        let mut outputs = Vec::new();
        for (k, &t) in model.revealed.iter().enumerate() {
            let n = model.shapes[t as usize].elements() as usize;
            let mut p = self.party(net, inference, Label::Output);
            let step_err = |what| {
                let role = self.role;
                move |source| ExecError::Step {
                    role,
                    what,
                    source: Box::new(source),
                }
            };
            let opened = share::reveal_to_client(&mut p, &tensors[t as usize], n)
                .map_err(step_err("revealing the output"))?;
            if let Some(opened) = opened {
                let y = model
                    .finish_output(k, opened)
                    .map_err(step_err("upsampling the revealed output"))?;
                outputs.push(y);
            }
        }
        let online_seconds = started.elapsed().as_secs_f64() - dealing;
        let mut stats = net.take_stats();
        stats.absorb(offline_stats);
        Ok(Inference {
            outputs,
            shares: if self.keep_shares {
                tensors
            } else {
                Vec::new()
            },
            record: Record {
                offline_seconds,
                online_seconds,
                layer_seconds,
                stats,
            },
        })
    }
}
