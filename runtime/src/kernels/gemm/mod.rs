//! `C += W·X` on Z_2^64 (wrapping `u64`), `W` `m×k`, `X` `k×n`, row-major: the product
//! behind every convolution and fully connected layer, for the reference and for shares
//! alike.
//!
//! One loop ([`tiled`]): register tiles of four rows of `W`, cache blocks of `X`, rows in
//! parallel on rayon, and AVX2 and AVX-512 builds of the same loop picked at run time (LLVM
//! turns the 64-bit products into four- or eight-lane vector code). Exact f64 GEMMs over 16–22-bit limbs were
//! tried first and lost: even at 26 G f64 multiply-adds per second, the three to six digit
//! products a ring product needs ran at 2.8–5.5 G ring MAC/s against 7 for this loop
//! (`docs/results/performance.md`).
//!
//! The work depends only on the shapes: no branch on values, so the server's time does not
//! tell a client anything about its weights (nor about zeros among them).

pub mod limbs;
pub mod tiled;

/// `c += w·x` mod 2^64 on the CPU (a device, when one is installed, takes whole layers:
/// `crate::backend`).
pub fn gemm(w: &[u64], x: &[u64], c: &mut [u64], m: usize, k: usize, n: usize) {
    tiled::gemm(w, x, c, m, k, n);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn equals_the_definition_on_every_tiling_edge() {
        let mut g = ksnn_formats::example::SplitMix(7);
        let mut r = || g.next_u64();
        // Rows not a multiple of the register tile, several cache blocks in both directions,
        // a matrix–vector product, and a product that accumulates onto a non-zero C.
        let shapes = [
            (1, 1, 1),
            (3, 5, 4),
            (4, 129, 513),
            (7, 300, 1030),
            (10, 17, 1),
            (16, 64, 70),
        ];
        for (m, k, n) in shapes {
            let w: Vec<u64> = (0..m * k).map(|_| r()).collect();
            let x: Vec<u64> = (0..k * n).map(|_| r()).collect();
            let start: Vec<u64> = (0..m * n).map(|_| r()).collect();
            let mut c = start.clone();
            gemm(&w, &x, &mut c, m, k, n);
            let want: Vec<u64> = naive(&w, &x, m, k, n)
                .iter()
                .zip(&start)
                .map(|(a, b)| a.wrapping_add(*b))
                .collect();
            assert!(c == want, "{m}x{k}x{n}");
            for &isa in tiled::Isa::available() {
                let mut p = start.clone();
                tiled::gemm_on(isa, &w, &x, &mut p, m, k, n);
                assert!(p == want, "{m}x{k}x{n}, {isa:?} build");
            }
        }
    }
}
