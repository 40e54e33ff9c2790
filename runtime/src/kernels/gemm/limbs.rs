//! Exact Z_2^64 products from f64 GEMMs over 16-bit limbs: how a GPU's DGEMM (cuBLAS) can
//! compute the ring product `C += W·X` exactly. Each u64 splits into four 16-bit limbs;
//! `W·X = Σ_{i+j<4} 2^{16(i+j)} · (W_i · X_j) mod 2^64` (pairs with i + j ≥ 4 vanish mod
//! 2^64), ten f64 GEMMs. Each `W_i · X_j` sums k products below 2^32, exact in f64 while
//! k ≤ [`MAX_K`]; longer sums run in slices of k, added in the ring.
//!
//! This is the decomposition and recombination in plain Rust, generic over the f64 GEMM:
//! the CUDA backend runs only those GEMMs on the device, and the tests run them on the CPU
//! against the u64 loop, bit for bit. (On the CPU itself it loses to the u64 loop:
//! `super`'s notes.)

/// Bits per limb.
pub const LIMB_BITS: u32 = 16;
/// Limbs per ring element.
pub const LIMBS: usize = 4;
/// Longest exact sum: `(2^16 − 1)^2 · 2^21 < 2^53`.
pub const MAX_K: usize = 1 << 21;

/// The limb pairs whose products survive mod 2^64, with their shifts.
pub fn pairs() -> impl Iterator<Item = (usize, usize, u32)> {
    (0..LIMBS).flat_map(|i| (0..LIMBS - i).map(move |j| (i, j, LIMB_BITS * (i + j) as u32)))
}

/// Limb `l` of every element, as f64 (exact: below 2^16).
pub fn limb(v: &[u64], l: usize) -> Vec<f64> {
    let shift = LIMB_BITS * l as u32;
    v.iter().map(|&e| ((e >> shift) & 0xffff) as f64).collect()
}

/// `c += part · 2^shift` mod 2^64, `part` an f64 GEMM's exact integer result.
pub fn recombine(c: &mut [u64], part: &[f64], shift: u32) {
    for (o, &p) in c.iter_mut().zip(part) {
        debug_assert!((0.0..9.007_199_254_740_992e15).contains(&p) && p.fract() == 0.0);
        *o = o.wrapping_add((p as u64) << shift);
    }
}

/// An f64 GEMM: `W` `m×k` times `X` `k×n`, row-major, returned `m×n`.
pub type F64Gemm<'a, E> =
    dyn FnMut(&[f64], &[f64], usize, usize, usize) -> Result<Vec<f64>, E> + 'a;

/// `c += w·x` mod 2^64 by limbs, with `f64_gemm` doing the products, k in slices of at most
/// `max_k` (at most [`MAX_K`]).
pub fn gemm<E>(
    w: &[u64],
    x: &[u64],
    c: &mut [u64],
    (m, k, n): (usize, usize, usize),
    max_k: usize,
    f64_gemm: &mut F64Gemm<'_, E>,
) -> Result<(), E> {
    assert!(
        max_k > 0 && max_k <= MAX_K,
        "slices of 1 to 2^21 keep the sums exact"
    );
    let mut k0 = 0;
    while k0 < k {
        let k1 = (k0 + max_k).min(k);
        let ws: Vec<u64> = (0..m)
            .flat_map(|r| w[r * k + k0..r * k + k1].iter().copied())
            .collect();
        let xs = &x[k0 * n..k1 * n];
        let wl: Vec<Vec<f64>> = (0..LIMBS).map(|l| limb(&ws, l)).collect();
        let xl: Vec<Vec<f64>> = (0..LIMBS).map(|l| limb(xs, l)).collect();
        for (i, j, shift) in pairs() {
            let part = f64_gemm(&wl[i], &xl[j], m, k1 - k0, n)?;
            recombine(c, &part, shift);
        }
        k0 = k1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_naive(
        w: &[f64],
        x: &[f64],
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Vec<f64>, std::convert::Infallible> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                for q in 0..n {
                    c[i * n + q] += w[i * k + p] * x[p * n + q];
                }
            }
        }
        Ok(c)
    }

    /// The decomposition equals the u64 loop bit for bit: random shapes and values, all-ones
    /// words (the largest limbs), and slices of k that do not divide it.
    #[test]
    fn limbs_equal_the_ring_product() {
        let mut g = ksnn_formats::example::SplitMix(21);
        for case in 0..40 {
            let (m, k, n) = (
                1 + g.range(0, 9) as usize,
                1 + g.range(0, 70) as usize,
                1 + g.range(0, 40) as usize,
            );
            let word = |g: &mut ksnn_formats::example::SplitMix| match case % 4 {
                0 => u64::MAX,
                1 => g.next_u64() & 0xffff_0000_ffff_0000,
                _ => g.next_u64(),
            };
            let w: Vec<u64> = (0..m * k).map(|_| word(&mut g)).collect();
            let x: Vec<u64> = (0..k * n).map(|_| word(&mut g)).collect();
            let start: Vec<u64> = (0..m * n).map(|_| g.next_u64()).collect();
            let mut want = start.clone();
            super::super::tiled::gemm(&w, &x, &mut want, m, k, n);
            for max_k in [MAX_K, 1 + case % 7] {
                let mut got = start.clone();
                gemm(&w, &x, &mut got, (m, k, n), max_k, &mut f64_naive).unwrap();
                assert_eq!(got, want, "case {case}: {m}x{k}x{n}, slices of {max_k}");
            }
        }
        assert_eq!(pairs().count(), 10);
    }

    /// The exactness bound is tight where it matters: a sum of 2^21 largest limb products
    /// still converts exactly.
    #[test]
    fn the_longest_slice_is_exact_in_f64() {
        let top = (0xffffu64 * 0xffff) as f64;
        let sum = top * MAX_K as f64;
        assert_eq!(sum as u64, 0xffffu64 * 0xffff * MAX_K as u64);
        assert!(sum < 9.007_199_254_740_992e15);
    }
}
