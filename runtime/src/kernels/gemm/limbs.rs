//! Balanced limb splitting: a ring element as a few small signed digits that f64 multiplies
//! exactly, `v ≡ Σ d_i·2^(i·w) (mod 2^64)`. Lower digits lie in `[−2^(w−1), 2^(w−1))`; the
//! last takes all remaining bits, sign-extended, so it is exact mod 2^64 for any value and
//! small for values declared narrow.

/// The most digits any plan uses.
pub const MAX_LIMBS: usize = 3;

/// How one operand is cut into digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limbs {
    /// Digit width w in bits; every digit has |d| ≤ 2^(w−1).
    pub width: u32,
    /// Digits per value (at most [`MAX_LIMBS`]).
    pub count: usize,
}

impl Limbs {
    /// Any ring element: three digits of 22, 22 and 20 bits.
    pub const FULL: Limbs = Limbs {
        width: 22,
        count: 3,
    };

    /// The digits for values declared to fit `bits` signed bits (16, 32; anything wider is
    /// a full ring element).
    pub fn for_bits(bits: u8) -> Limbs {
        match bits {
            0..=16 => Limbs {
                width: 16,
                count: 1,
            },
            17..=32 => Limbs {
                width: 16,
                count: 2,
            },
            _ => Limbs::FULL,
        }
    }

    /// Digit `i` weighs 2^shift(i).
    pub fn shift(self, i: usize) -> u32 {
        self.width * i as u32
    }

    /// log2 of the largest |digit| (the last digit of a full value is smaller still).
    pub fn magnitude_bits(self) -> u32 {
        self.width - 1
    }

    /// The digits of `v`, lowest first (`count` of them are meaningful).
    #[inline]
    pub fn digits(self, v: u64) -> [i64; MAX_LIMBS] {
        let mut out = [0i64; MAX_LIMBS];
        let mut rest = v;
        for (i, o) in out.iter_mut().enumerate().take(self.count) {
            if i + 1 == self.count {
                // The rest, as a signed number of the bits left (64 − i·w).
                *o = sign_extend(rest, 64 - self.shift(i));
            } else {
                let d = sign_extend(rest, self.width);
                *o = d;
                rest = rest.wrapping_sub(d as u64) >> self.width;
            }
        }
        out
    }
}

/// The low `bits` bits of `v` as a signed number (`bits` in 1..=64).
#[inline]
fn sign_extend(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuild(l: Limbs, d: [i64; MAX_LIMBS]) -> u64 {
        (0..l.count).fold(0u64, |acc, i| {
            acc.wrapping_add((d[i] as u64).wrapping_shl(l.shift(i)))
        })
    }

    #[test]
    fn digits_rebuild_the_value_and_stay_small() {
        let mut s = 0x243F_6A88_85A3_08D3u64;
        let mut values: Vec<u64> = vec![0, 1, u64::MAX, 1 << 63, (1 << 63) - 1];
        for _ in 0..10_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            values.push(s);
        }
        for v in values {
            let d = Limbs::FULL.digits(v);
            assert_eq!(rebuild(Limbs::FULL, d), v);
            assert!(d.iter().all(|x| x.abs() <= 1 << 21), "{v:#x}: {d:?}");
        }
    }

    #[test]
    fn narrow_values_have_narrow_digits() {
        for (bits, lo, hi) in [(16u8, -(1i64 << 15), 1i64 << 15), (32, -(1 << 31), 1 << 31)] {
            let l = Limbs::for_bits(bits);
            for v in [lo, lo + 1, -1, 0, 1, hi - 1, 12345 % hi, -(54321 % hi)] {
                let d = l.digits(v as u64);
                assert_eq!(rebuild(l, d), v as u64, "{bits} bits: {v}");
                assert!(
                    d[..l.count]
                        .iter()
                        .all(|x| x.abs() <= 1 << l.magnitude_bits()),
                    "{bits} bits: {v} -> {d:?}"
                );
            }
        }
    }
}
