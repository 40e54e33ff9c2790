//! A convolution's geometry as the CUDA kernels (`conv_u64.cu`) take it, and their index
//! arithmetic on the CPU ([`emulate`]): what the tests check against `kernels::conv2d`, with
//! or without a device, and what the emulated test device runs.

use super::{BackendError, ConvJob};

/// The implicit GEMM's tile side (the kernels' `TILE`).
pub const TILE: usize = 16;

/// Threads per block of the depthwise kernel.
pub const DEPTHWISE_THREADS: usize = 256;

/// The largest grid dimension in y and z.
const GRID_YZ: usize = 65_535;

/// A convolution's geometry as the kernels take it (`int`s, checked to fit), and its grid.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub(super) groups: usize,
    pub(super) h: i32,
    pub(super) wd: i32,
    pub(super) cin_g: i32,
    pub(super) cout_g: i32,
    pub(super) kh: i32,
    pub(super) kw: i32,
    pub(super) sh: i32,
    pub(super) sw: i32,
    pub(super) dh: i32,
    pub(super) dw: i32,
    pub(super) pt: i32,
    pub(super) pl: i32,
    pub(super) oh: i32,
    pub(super) ow: i32,
}

/// `v` as the kernels' `int`, or an error that names `what`.
pub(super) fn int(v: u64, what: &str) -> Result<i32, BackendError> {
    i32::try_from(v).map_err(|_| BackendError::Cuda(format!("{what} {v} does not fit the kernel")))
}

impl Geometry {
    /// The kernels' view of `job`; an error when a size does not fit them.
    pub fn of(job: &ConvJob) -> Result<Self, BackendError> {
        let c = &job.op;
        let groups = c.groups.max(1) as usize;
        let g = Geometry {
            groups,
            h: int(job.x.h.into(), "input height")?,
            wd: int(job.x.w.into(), "input width")?,
            cin_g: int((c.in_channels as usize / groups) as u64, "input channels")?,
            cout_g: int((c.out_channels as usize / groups) as u64, "output channels")?,
            kh: int(c.kernel[0].into(), "kernel height")?,
            kw: int(c.kernel[1].into(), "kernel width")?,
            sh: int(c.stride[0].into(), "stride")?,
            sw: int(c.stride[1].into(), "stride")?,
            dh: int(c.dilation[0].into(), "dilation")?,
            dw: int(c.dilation[1].into(), "dilation")?,
            pt: int(c.padding.top.into(), "padding")?,
            pl: int(c.padding.left.into(), "padding")?,
            oh: int(job.y.h.into(), "output height")?,
            ow: int(job.y.w.into(), "output width")?,
        };
        int(job.y.elements(), "output size")?;
        int(g.k() as u64, "reduction length")?;
        let tall = if g.depthwise() {
            groups
        } else {
            groups.max((g.cout_g as usize).div_ceil(TILE))
        };
        if tall > GRID_YZ {
            return Err(BackendError::Cuda(format!(
                "{tall} channel blocks exceed the grid's {GRID_YZ}"
            )));
        }
        Ok(g)
    }

    /// One input and one output channel per group: the depthwise kernel's case.
    pub fn depthwise(&self) -> bool {
        self.cin_g == 1 && self.cout_g == 1
    }

    /// Groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.cout_g as usize
    }

    fn taps(&self) -> usize {
        self.kh as usize * self.kw as usize
    }

    /// The reduction per output element, `cin_g·kh·kw`.
    pub fn k(&self) -> usize {
        self.cin_g as usize * self.taps()
    }

    /// Output pixels per channel.
    pub fn plane(&self) -> usize {
        (self.oh * self.ow) as usize
    }

    /// Elements of the input.
    pub fn x_len(&self) -> usize {
        self.groups * self.cin_g as usize * self.h as usize * self.wd as usize
    }

    /// Elements of the output.
    pub fn y_len(&self) -> usize {
        self.groups * self.cout_g as usize * self.plane()
    }

    /// The launch's grid and block dimensions.
    pub fn grid(&self) -> ((u32, u32, u32), (u32, u32, u32)) {
        if self.depthwise() {
            (
                (
                    self.plane().div_ceil(DEPTHWISE_THREADS) as u32,
                    self.groups as u32,
                    1,
                ),
                (DEPTHWISE_THREADS as u32, 1, 1),
            )
        } else {
            (
                (
                    self.plane().div_ceil(TILE) as u32,
                    (self.cout_g as usize).div_ceil(TILE) as u32,
                    self.groups as u32,
                ),
                (TILE as u32, TILE as u32, 1),
            )
        }
    }

    /// Input element `xk` of the implicit im2col matrix's column `col` in group `g`'s input
    /// `xg`, or 0 in the padding: the kernel's gather.
    pub(super) fn gather(&self, xg: &[u64], xk: usize, col: usize) -> u64 {
        let (taps, kw, kh) = (self.taps() as i32, self.kw, self.kh);
        let (xk, col) = (xk as i32, col as i32);
        let (oy, ox) = (col / self.ow, col % self.ow);
        let (ci, ky, kx) = (xk / taps, (xk / kw) % kh, xk % kw);
        let iy = oy * self.sh + ky * self.dh - self.pt;
        let ix = ox * self.sw + kx * self.dw - self.pl;
        if iy >= 0 && iy < self.h && ix >= 0 && ix < self.wd {
            let (h, wd) = (self.h as usize, self.wd as usize);
            xg[(ci as usize * h + iy as usize) * wd + ix as usize]
        } else {
            0
        }
    }
}

/// The kernels' index arithmetic on the CPU: the implicit GEMM block by block and tile by
/// tile, each thread's shared-memory loads and sums as the kernel does them, or the
/// depthwise kernel thread by thread. Wrapping sums do not depend on order, so this equals
/// `kernels::conv2d`; the test keeps the gather, the tiling and the edges honest.
// The loops index by thread (ty, tx) and block as the kernels do, not by iterator.
#[allow(clippy::needless_range_loop)]
pub fn emulate(job: &ConvJob, x: &[u64], w: &[u64]) -> Result<Vec<u64>, BackendError> {
    let g = Geometry::of(job)?;
    let mut y = vec![0u64; g.y_len()];
    let (plane, k, taps) = (g.plane(), g.k(), g.taps());
    let cout_g = g.cout_g as usize;
    let x_group = g.x_len() / g.groups;
    if g.depthwise() {
        for ch in 0..g.groups {
            let xg = &x[ch * x_group..(ch + 1) * x_group];
            for p in 0..plane {
                let mut acc = 0u64;
                for t in 0..taps {
                    let v = g.gather(xg, t, p);
                    acc = acc.wrapping_add(w[ch * taps + t].wrapping_mul(v));
                }
                y[ch * plane + p] = acc;
            }
        }
        return Ok(y);
    }
    for bz in 0..g.groups {
        let wg = &w[bz * cout_g * k..(bz + 1) * cout_g * k];
        let xg = &x[bz * x_group..(bz + 1) * x_group];
        for by in 0..cout_g.div_ceil(TILE) {
            for bx in 0..plane.div_ceil(TILE) {
                let mut acc = [[0u64; TILE]; TILE];
                for t in (0..k).step_by(TILE) {
                    let (mut ws, mut xs) = ([[0u64; TILE]; TILE], [[0u64; TILE]; TILE]);
                    for ty in 0..TILE {
                        for tx in 0..TILE {
                            let (row, col) = (by * TILE + ty, bx * TILE + tx);
                            let (wk, xk) = (t + tx, t + ty);
                            if row < cout_g && wk < k {
                                ws[ty][tx] = wg[row * k + wk];
                            }
                            if xk < k && col < plane {
                                xs[ty][tx] = g.gather(xg, xk, col);
                            }
                        }
                    }
                    for ty in 0..TILE {
                        for tx in 0..TILE {
                            for p in 0..TILE {
                                acc[ty][tx] =
                                    acc[ty][tx].wrapping_add(ws[ty][p].wrapping_mul(xs[p][tx]));
                            }
                        }
                    }
                }
                for ty in 0..TILE {
                    for tx in 0..TILE {
                        let (row, col) = (by * TILE + ty, bx * TILE + tx);
                        if row < cout_g && col < plane {
                            y[(bz * cout_g + row) * plane + col] = acc[ty][tx];
                        }
                    }
                }
            }
        }
    }
    Ok(y)
}
