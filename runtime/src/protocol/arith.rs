//! The operations the layers are written in, once, for both executors (swanky's
//! `Fancy`/`Dummy` idea): [`crate::reference::Clear`] computes on cleartext ring values,
//! [`crate::exec::secure::Secure`] runs the three-party protocols on shares. Block ReLU, clip
//! and the max tree ([`super::relu`], [`super::clip`], [`super::maxpool`]) are generic over
//! this trait, so the reference cannot drift from what the protocols compute.
//!
//! Values are slices of ring elements. A party that holds nothing — P2, or any party in the
//! secure offline pass — sees empty slices ([`Arith::holds`] is false) and must still make
//! the same calls with the same counts, because the counts are what the protocols' messages
//! and randomness depend on.

use crate::kernels::bilinear::Bilinear;
use crate::prf::Label;
use crate::protocol::Result;
use crate::protocol::beaver::MulShape;

/// Arithmetic on (shared or cleartext) ring vectors.
pub trait Arith {
    /// Whether this party holds values (else its slices are empty).
    fn holds(&self) -> bool;

    /// This party's part of the public constant `c`: `c` in the clear, P0 adds it, P1 not.
    fn constant(&self, c: u64) -> u64;

    /// Adds a per-channel value only the server knows (a bias), broadcast over `y`'s
    /// channels of equal size.
    fn add_bias(&self, y: &mut [u64], bias: Option<&[u64]>);

    /// `[v ≥ 0]` as 0/1 ring elements for `n` values, with the program's approximate
    /// comparison. `at` names this batch among the step's others.
    fn drelu(&mut self, at: Label, v: &[u64], n: usize) -> Result<Vec<u64>>;

    /// `x[i] · y[map[i]]` for the product's shape; with `y` a DReLU's bits, a selection.
    fn mul(&mut self, at: Label, shape: &MulShape, x: &[u64], y: &[u64]) -> Result<Vec<u64>>;

    /// `x[i] · DReLU(Σ x over the elements sharing i's y index)` ([`super::select`]): what
    /// block ReLU, max pool and clip end in. By parts unless a protocol fuses it. `level`
    /// names this batch among the step's others.
    fn select(&mut self, level: u32, shape: &MulShape, x: &[u64]) -> Result<Vec<u64>> {
        super::select::by_parts(self, level, shape, x)
    }

    /// `n` products brought back to f fractional bits. `level` names this truncation among
    /// the step's others.
    fn truncate(&mut self, level: u32, y: Vec<u64>, n: usize) -> Result<Vec<u64>>;

    /// `x ⊛ W` for a server-weighted map (`weights`: the server's and the reference's).
    fn linear(
        &mut self,
        map: &dyn Bilinear,
        weights: Option<&[u64]>,
        x: &[u64],
    ) -> Result<Vec<u64>>;
}

/// Adds `bias[c]` to every element of channel `c` (channels are equal, contiguous runs).
pub fn add_per_channel(y: &mut [u64], bias: &[u64]) {
    if y.is_empty() || bias.is_empty() {
        return;
    }
    let per = y.len() / bias.len();
    y.iter_mut()
        .enumerate()
        .for_each(|(k, e)| *e = e.wrapping_add(bias[k / per]));
}
