//! [`Arith`] on cleartext ring values: what the protocols compute, without them. Exact
//! floor truncation, DReLU(0) = 1 and the program's approximate comparison.

use ksnn_formats::{ApproxCompare, Program};

use crate::kernels::bilinear::Bilinear;
use crate::prf::Label;
use crate::protocol::arith::{Arith, add_per_channel};
use crate::protocol::beaver::MulShape;
use crate::protocol::{ProtocolError, Result};
use crate::ring::trunc_exact;

/// The cleartext implementation.
pub struct Clear {
    approx: ApproxCompare,
    frac_bits: u32,
}

impl Clear {
    /// For `program`'s comparison and fixed point.
    pub fn new(program: &Program) -> Self {
        Self {
            approx: program.protocol.approx,
            frac_bits: program.fixed_point.frac_bits as u32,
        }
    }
}

impl Arith for Clear {
    fn holds(&self) -> bool {
        true
    }

    fn constant(&self, c: u64) -> u64 {
        c
    }

    fn add_bias(&self, y: &mut [u64], bias: Option<&[u64]>) {
        if let Some(b) = bias {
            add_per_channel(y, b);
        }
    }

    fn drelu(&mut self, _: Label, v: &[u64], _: usize) -> Result<Vec<u64>> {
        Ok(v.iter()
            .map(|&e| super::drelu(e, self.approx) as u64)
            .collect())
    }

    fn mul(&mut self, _: Label, shape: &MulShape, x: &[u64], y: &[u64]) -> Result<Vec<u64>> {
        Ok(x.iter()
            .enumerate()
            .map(|(i, &e)| e.wrapping_mul(y[shape.y_of(i)]))
            .collect())
    }

    fn truncate(&mut self, _: u32, y: Vec<u64>, _: usize) -> Result<Vec<u64>> {
        Ok(y.into_iter()
            .map(|e| trunc_exact(e, self.frac_bits))
            .collect())
    }

    fn linear(
        &mut self,
        map: &dyn Bilinear,
        weights: Option<&[u64]>,
        x: &[u64],
    ) -> Result<Vec<u64>> {
        let w = weights.ok_or(ProtocolError::NoWeights)?;
        Ok(map.apply(x, w))
    }
}
