//! `C += W·X` on Z_2^64, with `W` `m×k` (coefficients) and `X` `k×n` (activations or
//! masks), both row-major.
//!
//! Large products run as exact f64 GEMMs on limbs ([`limbs`]): each operand is cut into a
//! few balanced digits, every digit product is an f64 GEMM whose sums stay below 2^53 (so
//! nothing rounds), and the partial results are shifted back together mod 2^64. Narrow
//! coefficients need fewer digits: the server's weights, declared to fit 16 bits by the
//! program, give 3 digit GEMMs; masked (full) coefficients 6. f64 FMA units are the
//! fastest multipliers a CPU has, so this beats the scalar `u64` loop by several times.
//! Small products (and matrix–vector ones) stay on the scalar loop.
//!
//! Which path runs, how the work is tiled and how many digits are used depend only on the
//! shapes and on the public weight width, never on values: the server's running time must
//! not tell a client anything about its weights (nor about zeros among them).

pub mod limbs;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use limbs::Limbs;

/// Below this many multiply-adds, or with fewer rows or columns than [`MIN_SIDE`], the
/// scalar loop is as fast (splitting costs `O(mk + kn + mn)` conversions).
const SCALAR_BELOW: usize = 1 << 16;
/// See [`SCALAR_BELOW`].
const MIN_SIDE: usize = 8;
/// Columns of `X` per tile: bounds the f64 buffers (`3·k·TILE` digits) whatever the image
/// size, and keeps a tile's digits in cache across the digit GEMMs.
const TILE: usize = 1024;

/// `c += w·x` mod 2^64 for `w` `m×k` whose values fit `w_bits` signed bits (16, 32 or 64;
/// 64 means any ring element) and any `x` `k×n`.
pub fn gemm(w: &[u64], w_bits: u8, x: &[u64], c: &mut [u64], m: usize, k: usize, n: usize) {
    debug_assert_eq!((w.len(), x.len(), c.len()), (m * k, k * n, m * n));
    if m * k * n < SCALAR_BELOW || m < MIN_SIDE || n < MIN_SIDE {
        scalar(w, x, c, k, n);
    } else {
        limbs_f64(w, Limbs::for_bits(w_bits), x, c, m, k, n);
    }
}

/// `c += w·x` with a row-parallel scalar loop: the path for small and matrix–vector
/// products, and the baseline the benchmarks compare the limb path with.
pub fn scalar(w: &[u64], x: &[u64], c: &mut [u64], k: usize, n: usize) {
    c.par_chunks_mut(n).enumerate().for_each(|(i, out)| {
        let row = &w[i * k..(i + 1) * k];
        for (p, &a) in row.iter().enumerate() {
            let xrow = &x[p * n..(p + 1) * n];
            for (o, &b) in out.iter_mut().zip(xrow) {
                *o = o.wrapping_add(a.wrapping_mul(b));
            }
        }
    });
}

/// The limb path (module docs). Column tiles run one after the other (bounding the digit
/// buffers); within a tile, blocks of rows run in parallel, each a sequential f64 GEMM: the
/// parties share the cores, and a GEMM library's own spinning thread team would burn the
/// cycles another party is waiting for.
fn limbs_f64(w: &[u64], lw: Limbs, x: &[u64], c: &mut [u64], m: usize, k: usize, n: usize) {
    let lx = Limbs::FULL;
    // Each digit product is below 2^(bw + bx); a sum of `depth` of them stays ≤ 2^53.
    let depth = 1usize << (53 - lw.magnitude_bits() - lx.magnitude_bits());
    let wd = split_planes(w, lw);
    let rows_per_task = m.div_ceil(rayon::current_num_threads()).max(MIN_SIDE);
    let mut xd = Vec::new();
    for q0 in (0..n).step_by(TILE) {
        let nt = TILE.min(n - q0);
        let stride = lx.count * nt;
        // X's digits for this tile: row p is [digit 0 of x[p, tile] | digit 1 | digit 2].
        xd.clear();
        xd.resize(k * stride, 0.0);
        xd.par_chunks_mut(stride).enumerate().for_each(|(p, row)| {
            for (q, &v) in x[p * n + q0..p * n + q0 + nt].iter().enumerate() {
                let d = lx.digits(v);
                for (i, &di) in d.iter().enumerate().take(lx.count) {
                    row[i * nt + q] = di as f64;
                }
            }
        });
        let xd = &xd;
        let wd = &wd;
        c.par_chunks_mut(rows_per_task * n)
            .enumerate()
            .for_each(|(b, cb)| {
                let r0 = b * rows_per_task;
                let mb = cb.len() / n;
                let mut s = Vec::new();
                for p0 in (0..k).step_by(depth) {
                    let kd = depth.min(k - p0);
                    for (j, wj) in wd.iter().enumerate() {
                        // X digits whose weight 2^(shift_j + shift_i) is still below 2^64.
                        let ni = (0..lx.count)
                            .take_while(|&i| lw.shift(j) + lx.shift(i) < 64)
                            .count();
                        let cols = ni * nt;
                        s.clear();
                        s.resize(mb * cols, 0.0);
                        matmul(
                            MatMut::from_row_major_slice_mut(&mut s, mb, cols),
                            Accum::Replace,
                            MatRef::from_row_major_slice_with_stride(&wj[r0 * k + p0..], mb, kd, k),
                            MatRef::from_row_major_slice_with_stride(
                                &xd[p0 * stride..],
                                kd,
                                cols,
                                stride,
                            ),
                            1.0,
                            Par::Seq,
                        );
                        for (out, srow) in cb.chunks_mut(n).zip(s.chunks(cols)) {
                            let out = &mut out[q0..q0 + nt];
                            for i in 0..ni {
                                let sh = lw.shift(j) + lx.shift(i);
                                for (o, &v) in out.iter_mut().zip(&srow[i * nt..(i + 1) * nt]) {
                                    *o = o.wrapping_add((v as i64 as u64) << sh);
                                }
                            }
                        }
                    }
                }
            });
    }
}

/// The digits of `values` as `count` separate f64 arrays.
fn split_planes(values: &[u64], l: Limbs) -> Vec<Vec<f64>> {
    (0..l.count)
        .map(|j| values.par_iter().map(|&v| l.digits(v)[j] as f64).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// The definition, one wrapping product at a time.
    fn naive(w: &[u64], x: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
        let mut c = vec![0u64; m * n];
        for i in 0..m {
            for p in 0..k {
                for q in 0..n {
                    c[i * n + q] =
                        c[i * n + q].wrapping_add(w[i * k + p].wrapping_mul(x[p * n + q]));
                }
            }
        }
        c
    }

    /// Random values that fit `bits` signed bits, including both extremes.
    fn narrow(r: &mut impl FnMut() -> u64, len: usize, bits: u8) -> Vec<u64> {
        (0..len)
            .map(|i| {
                let v = match i % 7 {
                    0 => -(1i64 << (bits - 1)),
                    1 => (1i64 << (bits - 1)) - 1,
                    _ => ((r() as i64) << (64 - bits)) >> (64 - bits),
                };
                v as u64
            })
            .collect()
    }

    #[test]
    fn every_path_equals_the_definition() {
        let mut r = rng(7);
        // Shapes on both sides of the scalar threshold, several tiles, several depth chunks
        // for full coefficients (k > 2048), odd sizes.
        let shapes = [
            (3, 5, 4),
            (16, 64, 70),
            (24, 300, 1500),
            (9, 2500, 20),
            (40, 17, 2100),
        ];
        for (m, k, n) in shapes {
            let x: Vec<u64> = (0..k * n).map(|_| r()).collect();
            for bits in [16u8, 32, 64] {
                let w = if bits == 64 {
                    (0..m * k).map(|_| r()).collect()
                } else {
                    narrow(&mut r, m * k, bits)
                };
                let mut c = vec![0u64; m * n];
                gemm(&w, bits, &x, &mut c, m, k, n);
                assert!(c == naive(&w, &x, m, k, n), "{m}x{k}x{n} at {bits} bits");
            }
        }
    }

    #[test]
    fn a_narrow_plan_is_wrong_for_wide_values() {
        // Positive control: declaring full values narrow must give a different result, so
        // the test above really depends on the digit plan.
        let mut r = rng(9);
        let (m, k, n) = (16, 64, 64);
        let w: Vec<u64> = (0..m * k).map(|_| r()).collect();
        let x: Vec<u64> = (0..k * n).map(|_| r()).collect();
        let mut c = vec![0u64; m * n];
        gemm(&w, 16, &x, &mut c, m, k, n);
        assert!(c != naive(&w, &x, m, k, n));
    }
}
