//! The budgeted activations besides ReLU ([`ActivationKind`]), from block ReLU's and clip's
//! selects, so each costs its sign decisions and a product or two:
//!
//! - leaky ReLU and PReLU: `r = block_relu(x)`, then `y = r + a·(x − r)` — the slope's
//!   product is local for leaky ReLU's public slope and the server-weighted per-channel scale
//!   ([`crate::protocol::linear`]) for PReLU's learned slopes, then one truncation;
//! - hard sigmoid: `z = α·x + β` (a local product and its truncation), then
//!   [`clip::block_clip`] to `[0, 1]`: both clip points in one select;
//! - hard swish: `x · g` with one gate per block, `g = clip(α·x̄ + β, 0, 1)` on the block's
//!   mean x̄ (as block ReLU is `x · [x̄ > 0]`): the sum's scaling by `α/n` and its truncation,
//!   the two-point clip on the block values, then a product compressed like block ReLU's (one
//!   gate per block) and its truncation. `|y| ≤ |x|` whatever the block; one-pixel blocks are
//!   the exact hard swish, identity channels keep x (its upper piece), zero channels 0.
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
            ActivationKind::HardSwish { alpha, beta } => self.hard_swish(a, x, alpha, beta),
        }
    }

    /// `x · clip(α·x̄ + β, 0, 1)` with x̄ each block's mean.
    fn hard_swish<A: Arith>(
        &self,
        a: &mut A,
        x: &[u64],
        alpha: i64,
        beta: i64,
    ) -> Result<Vec<u64>> {
        let l = &self.layout;
        let shape = MulShape {
            n_x: l.pixels.len(),
            n_y: l.blocks,
            map: Some(l.block_of.clone()),
        };
        let holds = a.holds();
        let pixels = if holds { l.gather(x) } else { Vec::new() };
        // α·x̄ = S·(α/n) for the block sum S of n pixels: one rounded public factor per
        // block, so one truncation per block (exact α for one-pixel blocks).
        let scaled = if holds {
            let mut count = vec![0u32; l.blocks];
            l.block_of.iter().for_each(|&k| count[k as usize] += 1);
            shape
                .sums(&pixels)
                .iter()
                .zip(&count)
                .map(|(&s, &c)| s.wrapping_mul((alpha as f64 / f64::from(c)).round() as i64 as u64))
                .collect()
        } else {
            Vec::new()
        };
        let gates = self.clip_affine(
            a,
            scaled,
            beta,
            &BlockLayout::singletons(l.blocks),
            (l.blocks, l.blocks),
        )?;
        let y = a.mul(crate::prf::Label::Product(1), &shape, &pixels, &gates)?;
        let y = a.truncate(1, y, l.pixels.len())?;
        let mut out = x.to_vec();
        if holds {
            l.scatter(&mut out, &y, self.plane, 0);
        }
        Ok(out)
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
        self.clip_affine(a, scaled, beta, &self.layout, (self.n, self.plane))
    }

    /// `clip(trunc(scaled) + β, 0, 1)` over `layout` (identity channels unclipped) for `n`
    /// values of `plane` per channel: the truncation at `Truncate(0)`, the clip's select at
    /// level 0. `layout` is the input's tiling (hard sigmoid) or one value per block gate
    /// (hard swish, one channel of them).
    fn clip_affine<A: Arith>(
        &self,
        a: &mut A,
        scaled: Vec<u64>,
        beta: i64,
        layout: &BlockLayout,
        (n, plane): (usize, usize),
    ) -> Result<Vec<u64>> {
        let mut z = a.truncate(0, scaled, n)?;
        let beta = a.constant(beta as u64);
        z.iter_mut().for_each(|v| *v = v.wrapping_add(beta));
        let one = 1i64 << self.frac_bits;
        clip::block_clip(a, 0, layout, &z, plane, 0, one)
    }
}
