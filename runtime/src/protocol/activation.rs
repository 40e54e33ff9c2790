//! The budgeted activations besides ReLU ([`ActivationKind`]), from block ReLU's and clip's
//! selects, so each costs its sign decisions and a product or two:
//!
//! - leaky ReLU and PReLU: `r = block_relu(x)`, then `y = r + a·(x − r)` — the slope's
//!   product is local for leaky ReLU's public slope and the server-weighted per-channel scale
//!   ([`crate::protocol::linear`]) for PReLU's learned slopes, then one truncation;
//! - hard sigmoid: `z = α·x + β` (a local product and its truncation), then
//!   [`clip::block_clip`] to `[0, 1]`: both clip points in one select;
//! - hard swish: `x · hard_sigmoid(x)`, one more Beaver product and truncation; identity
//!   channels multiply by 1 (y = x, the upper piece), not by the unclipped α·x + β.
//!
//! Two truncations in one step (hard swish) run at their own addresses (`Truncate(0)`,
//! `Truncate(1)`), as do the select (level 0) and the product (level 1).

use ksnn_formats::layer::ActivationKind;

use crate::kernels::bilinear::LinearMap;
use crate::kernels::layout::BlockLayout;
use crate::protocol::Result;
use crate::protocol::arith::Arith;
use crate::protocol::beaver::MulShape;
use crate::protocol::{clip, relu};

/// One activation layer's public plan.
pub struct Plan<'a> {
    /// Which activation, with its public constants.
    pub kind: ActivationKind,
    /// The block tiling of the input (one decision, or two, per block).
    pub layout: BlockLayout,
    /// H·W of the input.
    pub plane: usize,
    /// Elements of the input (and output).
    pub n: usize,
    /// The per-channel scale of the input, PReLU's server-weighted map (its weights are the
    /// server's slopes; unused by the other kinds).
    pub scale: LinearMap<'a>,
    /// The fixed point's fractional bits f.
    pub frac_bits: u8,
}

impl<'a> Plan<'a> {
    /// The server-weighted map PReLU runs (set up once per session like a linear layer's).
    pub fn linear_map(&self) -> Option<&LinearMap<'a>> {
        (self.kind == ActivationKind::Prelu).then_some(&self.scale)
    }

    /// Runs the activation on `x`; `slopes` are PReLU's (the server's and the reference's).
    pub fn eval<A: Arith>(&self, a: &mut A, x: &[u64], slopes: Option<&[u64]>) -> Result<Vec<u64>> {
        let holds = a.holds();
        match self.kind {
            ActivationKind::LeakyRelu { .. } | ActivationKind::Prelu => {
                let r = relu::block_relu(a, &self.layout, x, self.plane)?;
                let below = if holds {
                    crate::ring::sub(x, &r)
                } else {
                    Vec::new()
                };
                let scaled = match self.kind {
                    ActivationKind::LeakyRelu { slope } => below
                        .iter()
                        .map(|&v| v.wrapping_mul(slope as u64))
                        .collect(),
                    _ => a.linear(&self.scale, slopes, &below)?,
                };
                let t = a.truncate(0, scaled, self.n)?;
                Ok(if holds {
                    crate::ring::add(&r, &t)
                } else {
                    Vec::new()
                })
            }
            ActivationKind::HardSigmoid { alpha, beta } => self.hard_sigmoid(a, x, alpha, beta),
            ActivationKind::HardSwish { alpha, beta } => {
                let mut h = self.hard_sigmoid(a, x, alpha, beta)?;
                // An identity channel keeps x (the upper piece, h = 1), not the middle piece
                // x·(α·x + β): quadratic pieces chained through a network's identity
                // channels grow without bound.
                if a.holds() {
                    let one = a.constant(1u64 << self.frac_bits);
                    for &c in &self.layout.identity_channels {
                        h[c as usize * self.plane..(c as usize + 1) * self.plane].fill(one);
                    }
                }
                let y = a.mul(
                    crate::prf::Label::Product(1),
                    &MulShape::elementwise(self.n),
                    x,
                    &h,
                )?;
                a.truncate(1, y, self.n)
            }
        }
    }

    /// `clip(α·x + β, 0, 1)` over the tiling (identity channels: `α·x + β`).
    fn hard_sigmoid<A: Arith>(
        &self,
        a: &mut A,
        x: &[u64],
        alpha: i64,
        beta: i64,
    ) -> Result<Vec<u64>> {
        let scaled = if a.holds() {
            x.iter().map(|&v| v.wrapping_mul(alpha as u64)).collect()
        } else {
            Vec::new()
        };
        let mut z = a.truncate(0, scaled, self.n)?;
        let beta = a.constant(beta as u64);
        z.iter_mut().for_each(|v| *v = v.wrapping_add(beta));
        let one = 1i64 << self.frac_bits;
        clip::block_clip(a, 0, &self.layout, &z, self.plane, 0, one)
    }
}
