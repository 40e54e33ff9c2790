//! Distributed comparison functions (Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar, Rathee,
//! "Function Secret Sharing for Mixed-Mode and Fixed-Point Secure Computation", 2021, Fig. 1):
//! the dealer turns f(x) = β·[x < α] on n-bit inputs into two keys; each evaluates to an
//! additive share (mod 2^64) of f(x) at any public x, and each key alone is pseudorandom.
//!
//! The keys form one root-to-leaf path in a GGM tree: at every level both parties' seeds
//! agree off the path to α (their sum cancels) and differ on it, and the correction words
//! carry β into every left turn where α goes right — exactly the inputs below α.
//! Pure functions: the protocol that deals and opens is elsewhere.

use crate::fss::prg::Prg;

/// One level's correction word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    /// Corrects the seed that leaves α's path.
    pub seed: u128,
    /// Corrects the value words (and carries β).
    pub value: u64,
    /// Corrects the left and right control bits.
    pub bit: [bool; 2],
}

/// One party's key: its root seed, and the correction words both keys share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// 0 or 1: which share this key evaluates to.
    pub party: u8,
    /// The root seed.
    pub seed: u128,
    /// One correction word per input bit, most significant first.
    pub levels: Vec<Correction>,
    /// The leaf correction.
    pub last: u64,
}

impl Key {
    /// Input bits.
    pub fn bits(&self) -> u32 {
        self.levels.len() as u32
    }

    /// Bytes the dealer sends for this key when the root seed comes from a stream the dealer
    /// shares with the party (the correction words and the leaf word): 16 + 8 + 1 per level
    /// (the two control bits packed in a byte) and 8.
    pub fn sent_bytes(&self) -> usize {
        self.levels.len() * 25 + 8
    }
}

fn neg_if(c: bool, v: u64) -> u64 {
    if c { v.wrapping_neg() } else { v }
}

/// The low 64 bits of a seed, as a value.
fn low(s: u128) -> u64 {
    s as u64
}

/// The two keys of f(x) = β·[x < α] on `n`-bit inputs (1 ≤ n ≤ 64, α < 2^n), from the root
/// seeds `roots` (uniform, secret, one per party).
pub fn deal(prg: &impl Prg, n: u32, alpha: u64, beta: u64, roots: [u128; 2]) -> [Key; 2] {
    assert!((1..=64).contains(&n), "DCF inputs of 1 to 64 bits");
    assert!(n == 64 || alpha >> n == 0, "α has more than {n} bits");
    let mut s = roots;
    let mut t = [false, true];
    let mut v_alpha = 0u64;
    let mut levels = Vec::with_capacity(n as usize);
    for i in 0..n {
        let a = (alpha >> (n - 1 - i)) & 1 == 1;
        let e = [prg.expand(s[0]), prg.expand(s[1])];
        let (keep, lose) = if a { (1, 0) } else { (0, 1) };
        let seed = e[0].seed[lose] ^ e[1].seed[lose];
        let mut value = neg_if(
            t[1],
            e[1].value[lose]
                .wrapping_sub(e[0].value[lose])
                .wrapping_sub(v_alpha),
        );
        if lose == 0 {
            // α turns right here: every input that turns left is below α and gets β.
            value = value.wrapping_add(neg_if(t[1], beta));
        }
        v_alpha = v_alpha
            .wrapping_sub(e[1].value[keep])
            .wrapping_add(e[0].value[keep])
            .wrapping_add(neg_if(t[1], value));
        let bit = [
            e[0].bit[0] ^ e[1].bit[0] ^ a ^ true,
            e[0].bit[1] ^ e[1].bit[1] ^ a,
        ];
        for b in 0..2 {
            let next_t = e[b].bit[keep] ^ (t[b] & bit[keep]);
            s[b] = e[b].seed[keep] ^ if t[b] { seed } else { 0 };
            t[b] = next_t;
        }
        levels.push(Correction { seed, value, bit });
    }
    let last = neg_if(
        t[1],
        low(s[1]).wrapping_sub(low(s[0])).wrapping_sub(v_alpha),
    );
    [0u8, 1].map(|party| Key {
        party,
        seed: roots[party as usize],
        levels: levels.clone(),
        last,
    })
}

/// This key's share of f(x) (x < 2^n). Shares of the two keys add up to β·[x < α] mod 2^64.
pub fn eval(prg: &impl Prg, key: &Key, x: u64) -> u64 {
    let n = key.bits();
    let minus = key.party == 1;
    let (mut s, mut t, mut v) = (key.seed, minus, 0u64);
    for (i, cw) in key.levels.iter().enumerate() {
        let d = ((x >> (n - 1 - i as u32)) & 1) as usize;
        let e = prg.expand(s);
        let value = e.value[d].wrapping_add(if t { cw.value } else { 0 });
        v = v.wrapping_add(neg_if(minus, value));
        let next_s = e.seed[d] ^ if t { cw.seed } else { 0 };
        t = e.bit[d] ^ (t & cw.bit[d]);
        s = next_s;
    }
    v.wrapping_add(neg_if(
        minus,
        low(s).wrapping_add(if t { key.last } else { 0 }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fss::prg::{AesPrg, ChaChaPrg};
    use crate::testing::rand_u64;

    fn roots() -> [u128; 2] {
        let r = || (u128::from(rand_u64()) << 64) | u128::from(rand_u64());
        [r(), r()]
    }

    /// Every key pair evaluates to β·[x < α] at α and around it, at the ends of the domain,
    /// and at random points, for widths from 1 to 64 bits and both PRGs.
    fn exact(prg: &impl Prg) {
        for n in [1u32, 2, 5, 16, 20, 63, 64] {
            let m = crate::prf::mask(n);
            for round in 0..40 {
                let alpha = match round {
                    0 => 0,
                    1 => m,
                    2 => m >> 1,
                    3 => (m >> 1) + 1,
                    _ => rand_u64() & m,
                };
                let beta = if round % 2 == 0 { 1 } else { rand_u64() };
                let keys = deal(prg, n, alpha, beta, roots());
                let mut xs = vec![
                    0,
                    m,
                    alpha,
                    alpha.wrapping_sub(1) & m,
                    alpha.wrapping_add(1) & m,
                ];
                xs.extend((0..20).map(|_| rand_u64() & m));
                for x in xs {
                    let got = eval(prg, &keys[0], x).wrapping_add(eval(prg, &keys[1], x));
                    let want = if x < alpha { beta } else { 0 };
                    assert_eq!(got, want, "n {n} α {alpha} β {beta} x {x}");
                }
            }
        }
    }

    #[test]
    fn shares_sum_to_the_comparison_with_aes() {
        exact(&AesPrg::default());
    }

    #[test]
    fn shares_sum_to_the_comparison_with_chacha() {
        exact(&ChaChaPrg);
    }

    /// One key alone says nothing about α: P1's share at a fixed x, over fresh keys, is as
    /// likely to have its top bit set for α below x as above (a leaky key would tie the
    /// share to the answer). Positive control: the sum of both shares does depend on it.
    #[test]
    fn one_key_alone_does_not_show_the_answer() {
        let prg = AesPrg::default();
        let (n, x) = (16u32, 30_000u64);
        let mut top = [0u32; 2];
        let mut sums = [0u32; 2];
        for k in 0..2000 {
            let below = k % 2 == 0;
            let alpha = if below { 1000 } else { 60_000 };
            let keys = deal(&prg, n, alpha, 1, roots());
            let share = eval(&prg, &keys[1], x);
            top[below as usize] += (share >> 63) as u32;
            sums[below as usize] += eval(&prg, &keys[0], x).wrapping_add(share) as u32;
        }
        for c in top {
            assert!((420..580).contains(&c), "{top:?}");
        }
        assert_eq!(sums, [1000, 0], "the control: together the keys answer");
    }
}
