//! The secure interpreter: walks the program as one role. Per session it runs the set-up
//! (the server's masked weights); per inference an offline pass (everything that does not
//! depend on the input: the helper's triples, P0's precomputed products) and an online pass.
//! Traffic and rounds are attributed per phase and per layer by the counting transport.

use std::time::Instant;

use ksnn_formats::layer::Op;
use thiserror::Error;

use crate::exec::model::{Model, Plan};
use crate::net::Transport;
use crate::net::counting::{CountingTransport, Phase, Stats};
use crate::prf::Keys;
use crate::protocol::linear::{self, ClientPre};
use crate::protocol::{Party, ProtocolError, clip, maxpool, relu, share, trunc};
use crate::role::Role;

/// An inference failed somewhere; says who, where and what.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error("{role}, {phase:?} phase, layer {index} `{name}` ({op}): {source}")]
    Layer {
        role: Role,
        phase: Phase,
        index: usize,
        name: String,
        op: &'static str,
        source: Box<ProtocolError>,
    },
    #[error("{role}, {what}: {source}")]
    Step {
        role: Role,
        what: &'static str,
        source: Box<ProtocolError>,
    },
    #[error("writing an output: {what}")]
    Output { what: String },
    #[error("{role}: input has {got} values, the program takes {expected}")]
    InputSize {
        role: Role,
        expected: usize,
        got: usize,
    },
}

impl ExecError {
    /// The party that reports the error (output errors are the client's).
    pub fn role(&self) -> Role {
        match self {
            ExecError::Layer { role, .. }
            | ExecError::Step { role, .. }
            | ExecError::InputSize { role, .. } => *role,
            ExecError::Output { .. } => Role::Client,
        }
    }
}

/// Index of the truncation's randomness within a layer (apart from its other sub-protocols).
const TRUNC_INDEX: u32 = 1000;

/// What one inference gave this party.
#[derive(Debug, Default)]
pub struct Inference {
    /// P0 only: the reconstructed outputs, in program order.
    pub outputs: Vec<Vec<u64>>,
    /// With `keep_shares`: this party's share of every tensor (tests).
    pub shares: Vec<Vec<u64>>,
    pub record: Record,
}

/// What one party measured in one inference; daemons send theirs to the client for its report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub offline_seconds: f64,
    pub online_seconds: f64,
    /// Per-layer online seconds.
    pub layer_seconds: Vec<f64>,
    pub stats: Stats,
}

/// Per-layer offline material.
enum Pre {
    None,
    Linear(Option<ClientPre>),
    Mul(Option<Vec<u64>>),
    Levels(Vec<Option<Vec<u64>>>),
}

/// One party's interpreter for one session.
pub struct Engine<'m> {
    model: &'m Model<'m>,
    role: Role,
    keys: Keys,
    /// P0: the masked weights F of each linear layer, from set-up.
    masked_weights: Vec<Option<Vec<u64>>>,
    /// Keep every tensor's share (for tests).
    pub keep_shares: bool,
}

impl<'m> Engine<'m> {
    pub fn new(model: &'m Model<'m>, keys: Keys) -> Self {
        Self {
            model,
            role: keys.role(),
            keys,
            masked_weights: vec![None; model.program.layers.len()],
            keep_shares: false,
        }
    }

    fn party<'a>(&'a self, net: &'a mut dyn Transport, inference: u64, layer: usize) -> Party<'a> {
        Party {
            role: self.role,
            keys: &self.keys,
            net,
            inference,
            layer: layer as u32,
            config: self.model.program.protocol,
            frac_bits: self.model.program.fixed_point.frac_bits,
        }
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

    /// Session set-up: the server sends P0 its masked weights, once. Returns its traffic.
    pub fn setup<T: Transport>(
        &mut self,
        net: &mut CountingTransport<T>,
    ) -> Result<Stats, ExecError> {
        net.start_phase(Phase::Setup);
        for i in 0..self.model.program.layers.len() {
            let Some(map) = self.model.linear_map(i) else {
                continue;
            };
            net.set_slot((Phase::Setup, Some(i as u32)));
            let params = &self.model.params[i];
            let w = params.weight.as_deref().or(params.scale.as_deref());
            let mut p = self.party(net, 0, i);
            let f = linear::setup(&mut p, &map, w).map_err(self.layer_err(Phase::Setup, i))?;
            self.masked_weights[i] = f;
        }
        Ok(net.take_stats())
    }

    /// One inference. P0 passes the encoded input; the others `None`.
    pub fn infer<T: Transport>(
        &self,
        net: &mut CountingTransport<T>,
        inference: u64,
        input: Option<&[u64]>,
    ) -> Result<Inference, ExecError> {
        let model = self.model;
        let layers = &model.program.layers;
        let n_in = model.shapes[0].elements() as usize;
        if let Some(x) = input
            && x.len() != n_in
        {
            return Err(ExecError::InputSize {
                role: self.role,
                expected: n_in,
                got: x.len(),
            });
        }

        // Offline: everything that does not depend on the input.
        let started = Instant::now();
        net.start_phase(Phase::Offline);
        let mut pre = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            net.set_slot((Phase::Offline, Some(i as u32)));
            let mut p = self.party(net, inference, i);
            let err = self.layer_err(Phase::Offline, i);
            let x = model.input_shape(i);
            let item = if let Some(map) = model.linear_map(i) {
                Pre::Linear(
                    linear::offline(&mut p, &map, self.masked_weights[i].as_deref())
                        .map_err(err)?,
                )
            } else {
                match (&layer.op, &model.plans[i]) {
                    (Op::BlockRelu(_), Plan::Blocks(layout)) => {
                        Pre::Mul(relu::offline(&mut p, layout).map_err(err)?)
                    }
                    (Op::Clip(_), _) => {
                        Pre::Mul(clip::offline(&mut p, x.elements() as usize).map_err(err)?)
                    }
                    (Op::MaxPool(_), Plan::MaxTaps(taps)) => {
                        let n = model.output_shape(i).elements() as usize;
                        Pre::Levels(maxpool::offline(&mut p, taps.len(), n).map_err(err)?)
                    }
                    _ => Pre::None,
                }
            };
            pre.push(item);
        }
        let offline_seconds = started.elapsed().as_secs_f64();

        // Online.
        let started = Instant::now();
        net.start_phase(Phase::Online);
        let mut tensors: Vec<Vec<u64>> = Vec::with_capacity(model.shapes.len());
        {
            let mut p = self.party(net, inference, 0);
            tensors.push(share::share_input(&mut p, input, n_in));
        }
        let mut layer_seconds = Vec::with_capacity(layers.len());
        let helper = self.role == Role::Helper;
        for (i, pre_i) in pre.into_iter().enumerate() {
            let t0 = Instant::now();
            net.set_slot((Phase::Online, Some(i as u32)));
            let layer = &layers[i];
            let xs = model.input_shape(i);
            let n_out = model.output_shape(i).elements() as usize;
            let err = self.layer_err(Phase::Online, i);
            let mut p = self.party(net, inference, i);
            let inputs: Vec<&[u64]> = layer
                .inputs
                .iter()
                .map(|&t| tensors[t as usize].as_slice())
                .collect();
            let params = &model.params[i];
            let add_bias = |role: Role, mut v: Vec<u64>| {
                if role == Role::Server
                    && let Some(b) = &params.bias
                {
                    let per = v.len() / b.len();
                    v.iter_mut()
                        .enumerate()
                        .for_each(|(k, e)| *e = e.wrapping_add(b[k / per]));
                }
                v
            };
            let y = if let Some(map) = model.linear_map(i) {
                let Pre::Linear(lp) = pre_i else {
                    unreachable!("linear layers have linear pre")
                };
                let w = params.weight.as_deref().or(params.scale.as_deref());
                let y = linear::online(&mut p, &map, inputs[0], w, lp).map_err(&err)?;
                let y = trunc::truncate(&mut p, TRUNC_INDEX, y, n_out).map_err(&err)?;
                add_bias(self.role, y)
            } else if let Some(needs_trunc) = model.local(i) {
                let y = if helper {
                    Vec::new()
                } else {
                    model.eval_local(i, &inputs)
                };
                if needs_trunc {
                    trunc::truncate(&mut p, TRUNC_INDEX, y, n_out).map_err(&err)?
                } else {
                    y
                }
            } else {
                match (&layer.op, &model.plans[i], pre_i) {
                    (Op::ScaleBias(_), _, _) => add_bias(self.role, inputs[0].to_vec()),
                    (Op::BlockRelu(_), Plan::Blocks(layout), Pre::Mul(c0)) => relu::online(
                        &mut p,
                        layout,
                        inputs[0].to_vec(),
                        xs.plane() as usize,
                        c0.as_deref(),
                    )
                    .map_err(&err)?,
                    (Op::Clip(c), _, Pre::Mul(c0)) => {
                        clip::online(&mut p, inputs[0], n_out, c.min, c.max, c0.as_deref())
                            .map_err(&err)?
                    }
                    (Op::MaxPool(_), Plan::MaxTaps(taps), Pre::Levels(levels)) => {
                        let gathered = taps
                            .iter()
                            .map(|t| {
                                if helper {
                                    Vec::new()
                                } else {
                                    t.iter().map(|&k| inputs[0][k as usize]).collect()
                                }
                            })
                            .collect();
                        maxpool::online(&mut p, gathered, n_out, &levels).map_err(&err)?
                    }
                    (op, _, _) => unreachable!("no secure evaluation for {}", op.kind()),
                }
            };
            tensors.push(y);
            if !self.keep_shares {
                for &t in &layer.inputs {
                    if model.last_use[t as usize] == i {
                        tensors[t as usize] = Vec::new();
                    }
                }
            }
            layer_seconds.push(t0.elapsed().as_secs_f64());
        }

        net.set_slot((Phase::Online, None));
        let mut outputs = Vec::new();
        for o in &model.program.outputs {
            let n = model.shapes[o.tensor as usize].elements() as usize;
            let mut p = self.party(net, inference, 0);
            let share = &tensors[o.tensor as usize];
            let opened =
                share::reveal_to_client(&mut p, share, n).map_err(|source| ExecError::Step {
                    role: self.role,
                    what: "revealing the output",
                    source: Box::new(source),
                })?;
            outputs.extend(opened);
        }
        let online_seconds = started.elapsed().as_secs_f64();
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
                stats: net.take_stats(),
            },
        })
    }
}
