//! The ring Z_2^64 on `u64` (wrapping arithmetic) and the fixed-point encoding on top of it.

/// Encodes a real as `round(x·2^f)` in two's complement. Values beyond ±2^63 saturate,
/// which the compiler's range checks rule out for real programs.
pub fn encode(x: f64, frac_bits: u8) -> u64 {
    (x * (1u64 << frac_bits) as f64).round() as i64 as u64
}

/// Decodes a ring element as a signed fixed-point number.
pub fn decode(v: u64, frac_bits: u8) -> f64 {
    v as i64 as f64 / (1u64 << frac_bits) as f64
}

/// Exact floor division by 2^f of the signed value: what the reference executor and the
/// helper-assisted truncation compute.
pub fn trunc_exact(v: u64, f: u32) -> u64 {
    ((v as i64) >> f) as u64
}

/// In-place `a += b`.
pub fn add_assign(a: &mut [u64], b: &[u64]) {
    crate::par::zip_mut(a, b, |x, y| *x = x.wrapping_add(*y));
}

/// In-place `a -= b`.
pub fn sub_assign(a: &mut [u64], b: &[u64]) {
    crate::par::zip_mut(a, b, |x, y| *x = x.wrapping_sub(*y));
}

/// `a - b`.
pub fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    crate::par::zip_map(a, b, |x, y| x.wrapping_sub(*y))
}

/// `a + b`.
pub fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    crate::par::zip_map(a, b, |x, y| x.wrapping_add(*y))
}

/// `a ⊙ b`.
pub fn mul(a: &[u64], b: &[u64]) -> Vec<u64> {
    crate::par::zip_map(a, b, |x, y| x.wrapping_mul(*y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_rounds_to_nearest() {
        assert_eq!(encode(1.0, 12), 4096);
        assert_eq!(encode(-1.0, 12), (-4096i64) as u64);
        assert_eq!(encode(0.5 / 4096.0 + 1e-12, 12), 1);
        assert_eq!(encode(-0.4 / 4096.0, 12), 0);
        assert_eq!(decode(encode(-3.25, 12), 12), -3.25);
    }

    #[test]
    fn exact_truncation_is_floor() {
        assert_eq!(trunc_exact(4096 * 3 + 5, 12), 3);
        assert_eq!(trunc_exact((-1i64) as u64, 12), u64::MAX);
        assert_eq!(trunc_exact((-4097i64) as u64, 12) as i64, -2);
    }
}
