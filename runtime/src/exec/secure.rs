//! [`Arith`] on shares: the three-party protocols. One step runs twice per inference with the
//! same code: the offline pass deals and precomputes everything that does not depend on the
//! input (Beaver triples, the linear layers' `C0`) and leaves it in a stash; the online pass
//! takes it back, in the same order, and exchanges the masked values.

use crate::kernels::bilinear::Bilinear;
use crate::prf::Label;
use crate::protocol::arith::{Arith, add_per_channel};
use crate::protocol::beaver::{self, MulShape};
use crate::protocol::drelu;
use crate::protocol::linear::{self, ClientPre, Session};
use crate::protocol::{Party, ProtocolError, Result, select, trunc};
use crate::role::Role;
use ksnn_formats::DreluProtocol;

/// What the offline pass leaves for one sub-step of the online pass.
pub enum Pre {
    /// A product's triple share `C0` (P0's; the others `None`).
    Product(Option<Vec<u64>>),
    /// A linear layer's precomputation (P0's; the others `None`).
    Linear(Option<ClientPre>),
    /// A DReLU batch's dealt material (`fss`: P0's and P1's keys; otherwise `None`).
    Drelu(drelu::Offline),
    /// A fused select's dealt material (`fss`: P0's shares of δ and δ·A, P0's and P1's keys).
    Select(select::Dealt),
}

/// Which pass a [`Secure`] runs.
pub enum Pass<'s> {
    /// Deal and precompute into the stash; no values yet.
    Offline(&'s mut Vec<Pre>),
    /// Compute on shares, taking the stash back in order.
    Online(std::vec::IntoIter<Pre>),
}

/// One party running one step's protocols.
pub struct Secure<'s, 'p> {
    party: Party<'p>,
    pass: Pass<'s>,
    /// This layer's session state, if it is linear (P2's `B`, device copies).
    session: Option<&'s Session>,
}

impl<'s, 'p> Secure<'s, 'p> {
    /// `party` is addressed at the step's layer.
    pub fn new(party: Party<'p>, pass: Pass<'s>, session: Option<&'s Session>) -> Self {
        Self {
            party,
            pass,
            session,
        }
    }

    /// The party running the step.
    pub fn role(&self) -> Role {
        self.party.role
    }

    fn online(&self) -> bool {
        matches!(self.pass, Pass::Online(_))
    }

    /// The next stashed item (online only).
    fn take(&mut self) -> Option<Pre> {
        match &mut self.pass {
            Pass::Online(stash) => stash.next(),
            Pass::Offline(_) => None,
        }
    }

    /// The error when the stash does not hold what the online pass expects.
    fn missing(&self, what: &'static str) -> ProtocolError {
        ProtocolError::Preprocessing {
            role: self.party.role,
            what,
        }
    }

    fn stash(&mut self, pre: Pre) {
        if let Pass::Offline(stash) = &mut self.pass {
            stash.push(pre);
        }
    }
}

/// Runs `step` as one step of one inference: its offline pass, then its online pass (for
/// protocol tests and benchmarks that drive a layer's protocol without a program).
pub fn both_passes<T>(p: &mut Party, step: impl Fn(&mut Secure<'_, '_>) -> Result<T>) -> Result<T> {
    let mut stash = Vec::new();
    step(&mut Secure::new(
        p.reborrow(),
        Pass::Offline(&mut stash),
        None,
    ))?;
    step(&mut Secure::new(
        p.reborrow(),
        Pass::Online(stash.into_iter()),
        None,
    ))
}

impl Arith for Secure<'_, '_> {
    fn holds(&self) -> bool {
        self.online() && self.party.role != Role::Helper
    }

    fn constant(&self, c: u64) -> u64 {
        if self.party.role == Role::Client {
            c
        } else {
            0
        }
    }

    fn add_bias(&self, y: &mut [u64], bias: Option<&[u64]>) {
        if self.party.role == Role::Server
            && let Some(b) = bias
        {
            add_per_channel(y, b);
        }
    }

    fn drelu(&mut self, at: Label, v: &[u64], n: usize) -> Result<Vec<u64>> {
        if !self.online() {
            let pre = drelu::offline(&mut self.party.sub(at), n)?;
            self.stash(Pre::Drelu(pre));
            return Ok(Vec::new());
        }
        let Some(Pre::Drelu(pre)) = self.take() else {
            return Err(self.missing("a DReLU batch's material"));
        };
        drelu::online(&mut self.party.sub(at), v, n, pre)
    }

    fn mul(&mut self, at: Label, shape: &MulShape, x: &[u64], y: &[u64]) -> Result<Vec<u64>> {
        if !self.online() {
            let c0 = beaver::offline(&mut self.party.sub(at), shape)?;
            self.stash(Pre::Product(c0));
            return Ok(Vec::new());
        }
        let Some(Pre::Product(c0)) = self.take() else {
            return Err(self.missing("a product's triple"));
        };
        beaver::online(&mut self.party.sub(at), shape, x, y, c0.as_deref())
    }

    fn select(&mut self, level: u32, shape: &MulShape, x: &[u64]) -> Result<Vec<u64>> {
        if self.party.config.drelu != DreluProtocol::Fss {
            return select::by_parts(self, level, shape, x);
        }
        if !self.online() {
            let dealt = select::offline(&mut self.party, level, shape)?;
            self.stash(Pre::Select(dealt));
            return Ok(Vec::new());
        }
        let Some(Pre::Select(dealt)) = self.take() else {
            return Err(self.missing("a select's dealt shares and keys"));
        };
        select::online(&mut self.party, level, shape, x, dealt)
    }

    fn truncate(&mut self, level: u32, y: Vec<u64>, n: usize) -> Result<Vec<u64>> {
        if !self.online() {
            return Ok(Vec::new());
        }
        trunc::truncate(&mut self.party.sub(Label::Truncate(level)), y, n)
    }

    fn linear(
        &mut self,
        map: &dyn Bilinear,
        weights: Option<&[u64]>,
        x: &[u64],
    ) -> Result<Vec<u64>> {
        let none = Session::default();
        let session = self.session.unwrap_or(&none);
        if !self.online() {
            let pre = linear::offline(&mut self.party, map, session)?;
            self.stash(Pre::Linear(pre));
            return Ok(Vec::new());
        }
        let Some(Pre::Linear(pre)) = self.take() else {
            return Err(self.missing("a linear layer's precomputation"));
        };
        linear::online(&mut self.party, map, x, weights, session, pre)
    }
}
