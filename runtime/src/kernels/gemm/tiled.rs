//! The wrapping-`u64` GEMM, register- and cache-tiled: four rows of `W` share each load of
//! `X`, and `X` is walked in blocks that stay in cache. The same loop is compiled three
//! times — baseline x86-64, AVX2 (four lanes) and AVX-512 DQ (eight lanes, native 64-bit
//! lane products) — and the best copy the CPU runs is used.
//!
//! This is the only module with `unsafe`: calling a function compiled for a CPU feature is
//! unsafe in Rust, and sound exactly when the feature is present, which is checked first.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// Rows of `W` per register tile.
const MR: usize = 4;
/// Columns of `X` per cache block.
const NC: usize = 512;
/// Rows of `X` (depth) per cache block: `KC·NC` values (512 KiB) stay in L2.
const KC: usize = 128;

/// The instruction sets the loop is compiled for, best last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Baseline x86-64 (or any other target): two-lane SSE2 at best.
    Portable,
    /// Four lanes; LLVM builds each 64-bit product from three 32-bit ones.
    Avx2,
    /// Eight lanes with a native 64-bit lane product (`vpmullq`, AVX-512 DQ).
    Avx512,
}

impl Isa {
    /// Every build this CPU can run, best last (detected once: `gemm_on` checks it per call).
    pub fn available() -> &'static [Isa] {
        static AVAILABLE: std::sync::OnceLock<Vec<Isa>> = std::sync::OnceLock::new();
        AVAILABLE.get_or_init(|| {
            let mut v = vec![Isa::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    v.push(Isa::Avx2);
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    v.push(Isa::Avx512);
                }
            }
            v
        })
    }

    /// The best build this CPU runs (detected once), capped by the environment variable
    /// `KSNN_GEMM_ISA` = `portable` | `avx2` | `avx512` when it is set: to compare builds
    /// end to end, or to keep a CPU that slows down under AVX-512 on AVX2.
    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = match std::env::var("KSNN_GEMM_ISA").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") => Isa::Avx2,
                _ => Isa::Avx512,
            };
            Isa::available()
                .iter()
                .copied()
                .filter(|&i| i <= cap)
                .max()
                .unwrap_or(Isa::Portable)
        })
    }
}

/// `c += w·x` mod 2^64, `w` `m×k`, `x` `k×n`, all row-major, on the best build.
pub fn gemm(w: &[u64], x: &[u64], c: &mut [u64], m: usize, k: usize, n: usize) {
    gemm_on(Isa::best(), w, x, c, m, k, n);
}

/// [`gemm`] on a given build (tests and benchmarks compare them).
///
/// # Panics
/// If this CPU cannot run `isa` (see [`Isa::available`]), or the lengths do not fit the shape.
pub fn gemm_on(isa: Isa, w: &[u64], x: &[u64], c: &mut [u64], m: usize, k: usize, n: usize) {
    assert!(
        Isa::available().contains(&isa),
        "this CPU cannot run {isa:?}"
    );
    assert_eq!((w.len(), x.len(), c.len()), (m * k, k * n, m * n));
    for q0 in (0..n).step_by(NC) {
        let q1 = (q0 + NC).min(n);
        for p0 in (0..k).step_by(KC) {
            let p1 = (p0 + KC).min(k);
            c.par_chunks_mut(MR * n).enumerate().for_each(|(b, rows)| {
                let block = Block {
                    w,
                    x,
                    r0: b * MR,
                    k,
                    n,
                    depth: p0..p1,
                    cols: q0..q1,
                };
                block.run(rows, isa);
            });
        }
    }
}

/// One register tile's rows (from `r0`) over one cache block of `X`.
struct Block<'a> {
    w: &'a [u64],
    x: &'a [u64],
    r0: usize,
    k: usize,
    n: usize,
    depth: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl Block<'_> {
    /// On the build `isa`, which [`gemm_on`] checked the CPU runs.
    fn run(&self, rows: &mut [u64], isa: Isa) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `gemm_on` checked that the CPU has AVX2.
            Isa::Avx2 => unsafe { self.run_avx2(rows) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `gemm_on` checked that the CPU has AVX-512 F and DQ.
            Isa::Avx512 => unsafe { self.run_avx512(rows) },
            _ => self.body(rows),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, rows: &mut [u64]) {
        self.body(rows);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn run_avx512(&self, rows: &mut [u64]) {
        self.body(rows);
    }

    /// The loop itself (inlined into each compiled copy).
    #[inline(always)]
    fn body(&self, rows: &mut [u64]) {
        let Block { w, x, r0, k, n, .. } = *self;
        let (p0, p1) = (self.depth.start, self.depth.end);
        let (q0, q1) = (self.cols.start, self.cols.end);
        if rows.len() / n == MR {
            let (c0, rest) = rows.split_at_mut(n);
            let (c1, rest) = rest.split_at_mut(n);
            let (c2, c3) = rest.split_at_mut(n);
            let (c0, c1, c2, c3) = (
                &mut c0[q0..q1],
                &mut c1[q0..q1],
                &mut c2[q0..q1],
                &mut c3[q0..q1],
            );
            for p in p0..p1 {
                let a0 = w[r0 * k + p];
                let a1 = w[(r0 + 1) * k + p];
                let a2 = w[(r0 + 2) * k + p];
                let a3 = w[(r0 + 3) * k + p];
                let xr = &x[p * n + q0..p * n + q1];
                for q in 0..xr.len() {
                    let b = xr[q];
                    c0[q] = c0[q].wrapping_add(a0.wrapping_mul(b));
                    c1[q] = c1[q].wrapping_add(a1.wrapping_mul(b));
                    c2[q] = c2[q].wrapping_add(a2.wrapping_mul(b));
                    c3[q] = c3[q].wrapping_add(a3.wrapping_mul(b));
                }
            }
        } else {
            // The last rows, when m is not a multiple of MR.
            for (i, out) in rows.chunks_mut(n).enumerate() {
                let out = &mut out[q0..q1];
                for p in p0..p1 {
                    let a = w[(r0 + i) * k + p];
                    let xr = &x[p * n + q0..p * n + q1];
                    for (o, &b) in out.iter_mut().zip(xr) {
                        *o = o.wrapping_add(a.wrapping_mul(b));
                    }
                }
            }
        }
    }
}
