//! The limb route: a convolution over Z_2^64 as exact f64 GEMMs (cuBLAS DGEMM on a device)
//! over 16-bit limbs (`kernels::gemm::limbs`), for GPUs whose f64 rate beats their 64-bit
//! integer rate. The CUDA device times both routes when it opens and takes the faster.
//!
//! Per group and per chunk of output pixels: the weights and the input's im2col matrix are
//! split into four f64 limb matrices each (`split_limbs`, `im2col_limbs`); the ten limb
//! products that survive mod 2^64 are DGEMMs, and those of one shift `16·s` accumulate into
//! one f64 matrix (at most four products below `k·2^32` each: exact while `k <` [`MAX_K`]);
//! `recombine` shifts the four sums into the ring. This module is the plan and the three
//! kernels' arithmetic on the CPU ([`emulate`], with CPU GEMMs), which the tests check
//! against `kernels::conv2d`; `cuda.rs` runs the same plan with the CUDA kernels
//! (`conv_u64.cu`) and cuBLAS.

use super::geometry::Geometry;
use super::{BackendError, ConvJob};
use crate::kernels::gemm::limbs::{LIMB_BITS, LIMBS, pairs};

/// Longest reduction: four products of one shift, each below `k·2^32`, sum below 2^53.
pub const MAX_K: usize = 1 << 19;

/// Most rows of the im2col kernel's grid (its y dimension).
const MAX_ROWS: usize = 65_535;

/// Most bytes of one chunk's im2col limb matrices on a device.
pub const CHUNK_BYTES: usize = 256 << 20;

/// How a convolution runs by limbs: per group, the output pixels in chunks of `cols`.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Groups.
    pub groups: usize,
    /// Output channels per group (the GEMM's rows).
    pub m: usize,
    /// The reduction, `cin_g·kh·kw`.
    pub k: usize,
    /// Output pixels.
    pub plane: usize,
    /// Output pixels per chunk.
    pub cols: usize,
}

impl Plan {
    /// The plan for `g` with chunks of at most `chunk_bytes` of im2col limbs (at least one
    /// column); an error when the route cannot take it (the u64 kernels can).
    pub fn of(g: &Geometry, chunk_bytes: usize) -> Result<Self, BackendError> {
        let (m, k, plane) = (g.cout_g(), g.k(), g.plane());
        if k >= MAX_K || k > MAX_ROWS {
            return Err(BackendError::Cuda(format!(
                "a reduction of {k} is beyond the limb route"
            )));
        }
        let per_col = (LIMBS * k * std::mem::size_of::<f64>()).max(1);
        let cols = (chunk_bytes / per_col).clamp(1, plane.max(1));
        Ok(Plan {
            groups: g.groups(),
            m,
            k,
            plane,
            cols,
        })
    }

    /// The chunks of output pixels: `(first, count)`.
    pub fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.plane)
            .step_by(self.cols)
            .map(|c0| (c0, self.cols.min(self.plane - c0)))
    }
}

/// The limb pairs `(i, j)` of each shift `16·s`, `s` = 0..4: the DGEMMs of one shift add into
/// one matrix.
pub fn by_shift() -> [Vec<(usize, usize)>; LIMBS] {
    let mut out: [Vec<(usize, usize)>; LIMBS] = Default::default();
    for (i, j, shift) in pairs() {
        out[(shift / LIMB_BITS) as usize].push((i, j));
    }
    out
}

/// The `split_limbs` kernel: limb `l` of `v[i]` at `out[l·len + i]`.
pub fn split_limbs(v: &[u64], out: &mut [f64]) {
    let len = v.len();
    for (i, &e) in v.iter().enumerate() {
        for l in 0..LIMBS {
            out[l * len + i] = ((e >> (LIMB_BITS as usize * l)) & 0xffff) as f64;
        }
    }
}

/// The `im2col_limbs` kernel: the im2col matrix of one group's input `xg` at output pixels
/// `c0..c0 + cols`, limb `l` of row `r` and column `c` at `out[(l·k + r)·cols + c]`.
pub fn im2col_limbs(g: &Geometry, xg: &[u64], (c0, cols): (usize, usize), out: &mut [f64]) {
    let k = g.k();
    for r in 0..k {
        for c in 0..cols {
            let e = g.gather(xg, r, c0 + c);
            for l in 0..LIMBS {
                out[(l * k + r) * cols + c] = ((e >> (LIMB_BITS as usize * l)) & 0xffff) as f64;
            }
        }
    }
}

/// The `recombine_limbs` kernel: `y[r·plane + c0 + c] = Σ_s p[(s·m + r)·cols + c] · 2^{16s}`
/// mod 2^64, `y` one group's output.
pub fn recombine(p: &[f64], y: &mut [u64], (m, plane): (usize, usize), (c0, cols): (usize, usize)) {
    for r in 0..m {
        for c in 0..cols {
            let mut acc = 0u64;
            for s in 0..LIMBS {
                let v = p[(s * m + r) * cols + c] as u64;
                acc = acc.wrapping_add(v << (LIMB_BITS as usize * s));
            }
            y[r * plane + c0 + c] = acc;
        }
    }
}

/// The route on the CPU: the plan (chunks of `chunk_bytes`), the three kernels' arithmetic,
/// and plain f64 GEMMs where the device calls cuBLAS (`p_s += W_i · X_j`, row-major `m×k` by
/// `k×cols`).
pub fn emulate(
    job: &ConvJob,
    x: &[u64],
    w: &[u64],
    chunk_bytes: usize,
) -> Result<Vec<u64>, BackendError> {
    let g = Geometry::of(job)?;
    let plan = Plan::of(&g, chunk_bytes)?;
    let (m, k) = (plan.m, plan.k);
    let mut y = vec![0u64; g.y_len()];
    let x_group = g.x_len() / plan.groups;
    let shifts = by_shift();
    for grp in 0..plan.groups {
        let wg = &w[grp * m * k..(grp + 1) * m * k];
        let mut wl = vec![0f64; LIMBS * m * k];
        split_limbs(wg, &mut wl);
        let xg = &x[grp * x_group..(grp + 1) * x_group];
        let yg = &mut y[grp * m * plan.plane..(grp + 1) * m * plan.plane];
        for (c0, cols) in plan.chunks() {
            let mut xl = vec![0f64; LIMBS * k * cols];
            im2col_limbs(&g, xg, (c0, cols), &mut xl);
            let mut p = vec![0f64; LIMBS * m * cols];
            for (s, pairs) in shifts.iter().enumerate() {
                let ps = &mut p[s * m * cols..(s + 1) * m * cols];
                for &(i, j) in pairs {
                    let (wi, xj) = (&wl[i * m * k..], &xl[j * k * cols..]);
                    for r in 0..m {
                        for q in 0..k {
                            let a = wi[r * k + q];
                            for c in 0..cols {
                                ps[r * cols + c] += a * xj[q * cols + c];
                            }
                        }
                    }
                }
            }
            recombine(&p, yg, (m, plan.plane), (c0, cols));
        }
    }
    Ok(y)
}
